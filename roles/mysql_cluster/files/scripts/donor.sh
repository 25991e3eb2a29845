#!/usr/bin/env bash
# Donor sidecar (stream flavors): serve a physical backup of this pod's data
# to peers that present a client certificate from the cluster's CA naming
# $PEER_CN (commonname: with a CA of the user's, one that issues for other
# applications too, the CA alone would not single out the cluster's pods).
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh

command -v socat >/dev/null || die "the image lacks socat"
mkdir -p "$CLIENT_DIR" "$TMPDIR"
write_client_cnf "$CLIENT_DIR/donor.cnf" "$DONOR_USER" clone-password
log "serving backups on port $DONOR_PORT to holders of a $PEER_CN certificate"
exec socat "OPENSSL-LISTEN:$DONOR_PORT,reuseaddr,fork,cert=$TLS_DIR/tls.crt,key=$TLS_DIR/tls.key,cafile=$TLS_DIR/ca.crt,verify=1,commonname=$PEER_CN" \
  EXEC:/etc/stateful-mysql/scripts/donor-stream.sh
