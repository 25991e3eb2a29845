#!/usr/bin/env bash
# Benchmark 4's measurements, run inside a cluster pod's mysql container by
# bench/copy_throughput.py. Each prints one line "key=value ..." with
# microsecond timestamps ($EPOCHREALTIME: every pod shares the node's clock)
# and the bytes that landed. Every copy ends with `sync -f` on the volume, so
# each method is timed until its data is on disk, as dd's fdatasync is.
# Secrets come from the mounted files through lib.sh, never argv or env.
#   copy.sh dd MIB               sequential write with fdatasync on the volume
#   copy.sh clone [CONCURRENCY]  CLONE from pod 0 into a scratch directory
#   copy.sh stream               the backup stream from pod 0's donor sidecar
#   copy.sh raw-listen PORT      receive `tar` over plain TCP into a scratch directory
#   copy.sh raw-send HOST PORT   send this pod's datadir as `tar` over plain TCP
#   copy.sh load ROWS            ROWS rows of 3968 bytes into bench.copy (not binlogged;
#                                SHA2, as MySQL 9.7 has no MD5())
# shellcheck source=/dev/null
source /etc/stateful-mysql/scripts/lib.sh
set +E
trap - ERR

SCRATCH=$DATA_ROOT/bench-copy
ROOT_CLIENT_CNF=$CLIENT_DIR/root.cnf

finish() { # finish START: the copy's end (after sync), its bytes, then the scratch is gone
  sync -f "$SCRATCH"
  local end=$EPOCHREALTIME bytes
  bytes=$(du -sb "$SCRATCH" | cut -f1)
  rm -rf "$SCRATCH"
  echo "start=$1 end=$end bytes=$bytes"
}

case $1 in
dd)
  start=$EPOCHREALTIME
  dd if=/dev/zero of="$DATA_ROOT/bench-dd" bs=1M count="$2" conv=fdatasync status=none
  end=$EPOCHREALTIME
  rm -f "$DATA_ROOT/bench-dd"
  echo "start=$start end=$end bytes=$(($2 * 1048576))"
  ;;
clone)
  rm -rf "$SCRATCH"
  donor=$(sql_quote "$(secret clone-password)")
  start=$EPOCHREALTIME
  # The same statement as init.sh's copy_by_clone, into a directory of its
  # own: the running server keeps its data and needs no restart.
  sql "$ROOT_CLIENT_CNF" <<SQL
SET GLOBAL clone_valid_donor_list = '$(pod_host 0):$PORT';
SET GLOBAL clone_max_concurrency = ${2:-16};
CLONE INSTANCE FROM '$DONOR_USER'@'$(pod_host 0)':$PORT IDENTIFIED BY $donor DATA DIRECTORY = '$SCRATCH' REQUIRE SSL;
SQL
  finish "$start"
  ;;
stream)
  rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
  start=$EPOCHREALTIME
  # The same pipe as init.sh's copy_by_stream (TLS, the cluster's client
  # certificate), without the prepare step that follows it there.
  socat -u "OPENSSL:$(pod_host 0):$DONOR_PORT,cert=$TLS_DIR/tls.crt,key=$TLS_DIR/tls.key,cafile=$TLS_DIR/ca.crt,commonname=$PEER_CN" STDOUT |
    "$STREAM_TOOL" -x -C "$SCRATCH"
  finish "$start"
  ;;
raw-listen)
  rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
  echo "listening" >&2
  socat -u "TCP-LISTEN:$2,reuseaddr" STDOUT | tar -x -C "$SCRATCH"
  finish 0
  ;;
raw-send)
  start=$EPOCHREALTIME
  # A live datadir: tar says some files changed while read (rc 1); the
  # bytes are what is timed, not a consistent copy.
  { tar -C "$DATADIR" --warning=no-file-changed -cf - . || [ $? -eq 1 ]; } |
    socat -u STDIN "TCP:$2:$3,retry=20,interval=0.2"
  echo "start=$start end=$EPOCHREALTIME"
  ;;
load)
  # Doubling INSERT ... SELECT: ROWS is rounded up to a power of two. Not
  # binlogged: the copies under test read the datadir, not the binlog.
  sql "$ROOT_CLIENT_CNF" <<SQL
SET SESSION sql_log_bin = 0;
CREATE DATABASE IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.copy;
CREATE TABLE bench.copy (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(4000) NOT NULL);
INSERT INTO bench.copy (pad) VALUES (REPEAT(SHA2(RAND(), 256), 62));
SQL
  rows=1
  while [ "$rows" -lt "$2" ]; do
    echo "SET SESSION sql_log_bin = 0; INSERT INTO bench.copy (pad) SELECT REPEAT(SHA2(RAND(), 256), 62) FROM bench.copy;" |
      sql "$ROOT_CLIENT_CNF"
    rows=$((rows * 2))
  done
  echo "rows=$rows datadir_bytes=$(du -sb "$DATADIR" | cut -f1)"
  ;;
drop)
  echo "SET SESSION sql_log_bin = 0; DROP TABLE IF EXISTS bench.copy;" | sql "$ROOT_CLIENT_CNF"
  ;;
*)
  echo "usage: copy.sh dd|clone|stream|raw-listen|raw-send|load|drop ..." >&2
  exit 2
  ;;
esac
