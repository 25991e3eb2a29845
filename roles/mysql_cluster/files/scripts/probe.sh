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
  [ "$io" = Yes ] || die "IO thread is '$io' (errno $ioe)"
  case $lag in '' | NULL | *[!0-9]*) die "lag unknown ('$lag')" ;; esac
  [ "$lag" -le "$MAX_LAG_SECONDS" ] || die "lag ${lag}s is over ${MAX_LAG_SECONDS}s"
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
