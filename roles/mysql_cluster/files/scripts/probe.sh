#!/usr/bin/env bash
# Probes. live: the server answers (never fails for lag or a running copy).
# ready: primary writable; replica read-only with both replication threads
# running, no error, and lag under MAX_LAG_SECONDS. A replica whose source is
# briefly away (IO thread reconnecting) stays Ready while the data it holds
# is at most MAX_LAG_SECONDS old: readiness does not cascade from a primary
# restart to every replica, and reads keep being served within the bound.
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh

CNF=$CLIENT_DIR/root.cnf
# When this replica last was in step (now - lag) with its source, in epoch s.
FRESH_FILE=$RUN_DIR/replica-fresh-as-of

# Field from `SHOW ... STATUS` printed vertically: takes the first of the
# names given (Source_* on MySQL 8.4+, Master_* elsewhere).
field() {
  local name
  for name in "$@"; do
    awk -v k="$name" -F': ' '{ sub(/^ +/, "", $1) } $1 == k { print $2; found=1; exit } END { exit !found }' <<<"$STATUS" && return 0
  done
  return 1
}

# Why a stopped replica will not heal by waiting, for the probe's message
# (the pod's events) and the role's wait step, which can re-copy it.
# MySQL 8.0+ reports the source's error 1236 as its own 13114.
broken_hint() {
  local text
  # The whole message: it holds ': ' itself, where field would cut it.
  text=$(awk '{ sub(/^ +/, "") } /^Last_IO_Error: / { sub(/^Last_IO_Error: /, ""); print; exit }' <<<"$STATUS")
  if [ "$1" = 1236 ] || { [ "$1" = 13114 ] && [[ $text == *"error 1236"* ]]; }; then
    printf '%s' ": the primary cannot serve this replica's position (error 1236: binary logs purged, or it holds transactions the primary lacks: $text); it needs a re-copy: run the role with mysql_cluster_recopy_broken_replicas=true"
  fi
}

# Transactions of this server's own identity: written on the replica, not
# replicated (no failover here, so never legitimate).
errant_check() {
  local own
  if [ "$FLAVOR" = mariadb ]; then
    own=$(echo 'SELECT @@GLOBAL.gtid_binlog_pos' | sql "$CNF")
    ! grep -Eq "(^|,)[0-9]+-$SERVER_ID-[0-9]+" <<<"${own//[[:space:]]/}"
  else
    [ "$(echo 'SELECT LOCATE(@@GLOBAL.server_uuid, @@GLOBAL.gtid_executed) > 0' | sql "$CNF")" = 0 ]
  fi || die "errant transactions: this replica wrote transactions of its own that the primary lacks; it needs a re-copy: run the role with mysql_cluster_recopy_broken_replicas=true"
}

ready_replica() {
  local ro io sqlt ioe sqle lag
  ro=$(echo "SELECT @@GLOBAL.$READ_ONLY_VAR" | sql "$CNF")
  [ "$ro" = 1 ] || die "replica is not $READ_ONLY_VAR"
  if [ "$REPLICA_WORDS" = replica ]; then
    STATUS=$(echo 'SHOW REPLICA STATUS' | "$CLIENT" --defaults-extra-file="$CNF" --vertical)
  else
    STATUS=$(echo 'SHOW SLAVE STATUS' | "$CLIENT" --defaults-extra-file="$CNF" --vertical)
  fi
  [ -n "$STATUS" ] || die "no replication configured"
  io=$(field Replica_IO_Running Slave_IO_Running)
  sqlt=$(field Replica_SQL_Running Slave_SQL_Running)
  ioe=$(field Last_IO_Errno)
  sqle=$(field Last_SQL_Errno)
  lag=$(field Seconds_Behind_Source Seconds_Behind_Master)
  [ "$sqlt" = Yes ] || die "SQL thread is '$sqlt' (errno $sqle)"
  [ "$sqle" = 0 ] || die "replication SQL error $sqle"
  if [ "$io" = Connecting ] || { [ "$io" = Yes ] && [ "$ioe" != 0 ]; }; then
    # The source is away and the IO thread retries (it never gives up).
    local now fresh
    now=$(date +%s)
    fresh=$(cat "$FRESH_FILE" 2>/dev/null || echo 0)
    case $fresh in '' | *[!0-9]*) fresh=0 ;; esac
    [ $((now - fresh)) -le "$MAX_LAG_SECONDS" ] ||
      die "IO thread is '$io' (errno $ioe) and the data is $((now - fresh))s old, over ${MAX_LAG_SECONDS}s"
    return 0
  fi
  [ "$io" = Yes ] || die "IO thread is '$io' (errno $ioe)$(broken_hint "$ioe")"
  case $lag in '' | NULL | *[!0-9]*) die "lag unknown ('$lag')" ;; esac
  [ "$lag" -le "$MAX_LAG_SECONDS" ] || die "lag ${lag}s is over ${MAX_LAG_SECONDS}s"
  errant_check
  echo $(($(date +%s) - lag)) >"$FRESH_FILE.tmp" && mv -f "$FRESH_FILE.tmp" "$FRESH_FILE"
}

case ${1:-} in
live)
  echo 'SELECT 1' | sql "$CNF" >/dev/null
  ;;
ready)
  if [ "$ORDINAL" -eq 0 ]; then
    [ "$(echo 'SELECT @@GLOBAL.read_only' | sql "$CNF")" = 0 ] || die "primary is read-only"
  else
    ready_replica
  fi
  ;;
*) die "usage: probe.sh live|ready" ;;
esac
