#!/usr/bin/env bash
# Install the host packages the local cluster needs (Debian 12), once.
# Waits for another apt/dpkg run instead of failing on its lock.
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

pkgs=(debootstrap containernetworking-plugins libseccomp-dev pkg-config gcc libc6-dev
      iptables ipset iproute2 openssl conntrack socat ethtool util-linux ca-certificates curl
      gpgv debian-archive-keyring python3 shellcheck)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
say "installing host packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
stamp=$CACHE/apt-updated
if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +720) ]]; then
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  touch "$stamp"
fi
apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}" >&2
