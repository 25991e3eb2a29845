#!/usr/bin/env bash
# A small PKI with openssl whose certificates pass Python 3.13's strict X.509
# verification: the CA has basicConstraints critical CA:TRUE, keyUsage
# critical keyCertSign,cRLSign and a subjectKeyIdentifier; every leaf has an
# authorityKeyIdentifier.
#
#   pki.sh ca   <dir> [CN]                         -> <dir>/ca.{crt,key}
#   pki.sh cert <dir> <name> <CN> <O|-> <client|server|both> [SAN...]
#                                                  -> <dir>/<name>.{crt,key}
#   pki.sh sa   <dir>                              -> <dir>/sa.{key,pub}
# SANs are written as DNS:name or IP:addr. Existing files are kept.
set -euo pipefail

days=3650
cmd=${1:?usage: pki.sh ca|cert|sa <dir> ...}
dir=${2:?missing dir}
mkdir -p "$dir"
umask 077

case $cmd in
  ca)
    cn=${3:-stateful-mysql-test-ca}
    [[ -f $dir/ca.crt && -f $dir/ca.key ]] && exit 0
    openssl genrsa -out "$dir/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" -subj "/CN=$cn" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -addext "subjectKeyIdentifier=hash" \
      -out "$dir/ca.crt"
    ;;
  cert)
    name=${3:?name} cn=${4:?CN} org=${5:?O or -} kind=${6:?client|server|both}
    shift 6
    [[ -f $dir/$name.crt && -f $dir/$name.key ]] && exit 0
    subj="/CN=$cn"; [[ $org != - ]] && subj="/O=$org$subj"
    case $kind in
      client) eku=clientAuth ;;
      server) eku=serverAuth ;;
      both) eku=serverAuth,clientAuth ;;
      *) echo "kind must be client, server or both" >&2; exit 2 ;;
    esac
    ext=$(mktemp)
    trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$eku"
      echo "subjectKeyIdentifier=hash"
      echo "authorityKeyIdentifier=keyid,issuer"
      if [[ $# -gt 0 ]]; then (IFS=,; echo "subjectAltName=$*"); fi
    } > "$ext"
    openssl genrsa -out "$dir/$name.key" 2048 2>/dev/null
    openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
      -CAcreateserial -sha256 -days "$days" -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
    ;;
  sa)
    [[ -f $dir/sa.key && -f $dir/sa.pub ]] && exit 0
    openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
    openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
    ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
