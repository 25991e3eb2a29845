#!/usr/bin/env bash
# Drill e's network and write checks, run inside a cluster pod's mysql
# container by bench/security.py. Each prints "key=value" lines. Secrets
# come from the mounted files through lib.sh (option files only root
# reads), never argv or env.
#   security.sh donor-bytes     bytes a client gets from pod 0's donor without credentials, and with them
#   security.sh repl-write      the replication user's INSERT on the primary
# shellcheck source=/dev/null
source /etc/stateful-mysql/scripts/lib.sh
set +E
trap - ERR
set +e

case $1 in
donor-bytes)
  host=$(pod_host 0)
  if [ "$FLAVOR" = mariadb ]; then
    echo "plain_tcp=$(timeout 20 socat -u "TCP:$host:$DONOR_PORT" STDOUT 2>/dev/null | wc -c)"
    echo "tls_no_cert=$(timeout 20 socat -u "OPENSSL:$host:$DONOR_PORT,verify=0" STDOUT 2>/dev/null | wc -c)"
    # The control: with the cluster's certificate the same port streams.
    echo "tls_with_cert=$(timeout 60 socat -u "OPENSSL:$host:$DONOR_PORT,cert=$TLS_DIR/tls.crt,key=$TLS_DIR/tls.key,cafile=$TLS_DIR/ca.crt,commonname=$PEER_CN" STDOUT 2>/dev/null | head -c 1048576 | wc -c)"
  else
    # CLONE flavors: no stream port; CLONE with a wrong password copies nothing.
    echo "stream_port_open=$(timeout 5 bash -c "exec 3<>/dev/tcp/$host/3307" 2>/dev/null && echo 1 || echo 0)"
    dir=$DATA_ROOT/bench-sec-clone
    rm -rf "$dir"
    out=$(sql "$CLIENT_DIR/root.cnf" 2>&1 <<SQL
SET GLOBAL clone_valid_donor_list = '$host:$PORT';
CLONE INSTANCE FROM '$DONOR_USER'@'$host':$PORT IDENTIFIED BY 'not-the-password' DATA DIRECTORY = '$dir' REQUIRE SSL;
SQL
    )
    echo "clone_wrong_password_error=$(grep -o 'ERROR [0-9]*' <<<"$out" | head -1 | tr -dc 0-9)"
    bytes=$(du -sb "$dir" 2>/dev/null | cut -f1)
    echo "clone_wrong_password=${bytes:-0}"
    rm -rf "$dir"
  fi
  ;;
repl-write)
  cnf=$CLIENT_DIR/bench-repl.cnf
  write_peer_cnf "$cnf" "$(pod_host 0)" "$REPL_USER" replication-password
  out=$("$CLIENT" --defaults-extra-file="$cnf" -e "INSERT INTO bench.security VALUES (1)" 2>&1)
  rc=$?
  rm -f "$cnf"
  echo "rc=$rc"
  echo "error=$(grep -o 'ERROR [0-9]*' <<<"$out" | head -1 | tr -dc 0-9)"
  ;;
*)
  echo "usage: security.sh donor-bytes|repl-write" >&2
  exit 2
  ;;
esac
