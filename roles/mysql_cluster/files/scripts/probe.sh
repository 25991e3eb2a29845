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

# One client call per probe: the read-only flag, this server's own
# transactions and the replica status, read in bash without a fork (a probe
# runs every few seconds in every pod: each client or awk process counts on
# a small node).
read_replica_state() {
  local own line key status
  # MariaDB: the state, not the position, which keeps one GTID per domain and
  # would hide an errant transaction once replicated ones follow it.
  if [ "$FLAVOR" = mariadb ]; then own='@@GLOBAL.gtid_binlog_state'; else
    own='LOCATE(@@GLOBAL.server_uuid, @@GLOBAL.gtid_executed) > 0'
  fi
  status=$(printf 'SELECT @@GLOBAL.%s AS Probe_Read_Only, %s AS Probe_Own;\nSHOW %s STATUS;\n' \
    "$READ_ONLY_VAR" "$own" "${REPLICA_WORDS^^}" | "$CLIENT" --defaults-extra-file="$CNF" --vertical)
  declare -gA F=()
  while IFS= read -r line; do
    line=${line#"${line%%[! ]*}"}
    key=${line%%: *}
    [ "$key" != "$line" ] || continue
    F[$key]=${line#*: }
  done <<<"$status"
}

# Why a stopped replica will not heal by waiting, for the probe's message
# (the pod's events) and the role's wait step, which can re-copy it.
# MySQL 8.0+ reports the source's error 1236 as its own 13114.
broken_hint() {
  local text=${F[Last_IO_Error]:-}
  if [ "$1" = 1236 ] || { [ "$1" = 13114 ] && [[ $text == *"error 1236"* ]]; }; then
    if has_own_transactions; then
      printf '%s' ": the primary cannot serve this replica's position (error 1236: $text), and it holds transactions of its own; it needs a re-copy: run the role with mysql_cluster_recopy_broken_replicas=true"
    elif [[ $text =~ more\ GTIDs\ than|not\ in\ the\ master\'s\ binlog ]]; then
      printf '%s' ": the primary is behind this replica, which holds transactions replicated from the cluster's primary that the primary lacks (error 1236: $text); this replica keeps its data. Recover the primary with: ansible-playbook reseed_primary.yml -e confirm=$NAME"
    else
      printf '%s' ": the primary no longer has the binary logs this replica needs (error 1236: $text); it needs a re-copy: run the role with mysql_cluster_recopy_broken_replicas=true"
    fi
  fi
}

# Transactions of this server's own identity: written on the replica, not
# replicated (no failover here, so never legitimate).
has_own_transactions() {
  local own=${F[Probe_Own]:-}
  if [ "$FLAVOR" = mariadb ]; then
    [[ ",${own//[[:space:]]/}" =~ ,[0-9]+-$SERVER_ID-[0-9]+ ]]
  else
    [ "$own" = 1 ]
  fi
}

# Transactions of this server's own identity: written on the replica, not
# replicated (no failover here, so never legitimate).
errant_check() {
  ! has_own_transactions ||
    die "errant transactions: this replica wrote transactions of its own that the primary lacks; it needs a re-copy: run the role with mysql_cluster_recopy_broken_replicas=true"
}

# Its returning check found the primary behind it (init.sh): say so until
# replication runs cleanly again (the primary was recovered).
primary_behind_check() {
  [ -f "$STATE_DIR/primary-behind" ] || return 0
  local io=${F[Replica_IO_Running]-${F[Slave_IO_Running]-}} ioe=${F[Last_IO_Errno]-}
  if [ "$io" = Yes ] && [ "$ioe" = 0 ]; then
    rm -f "$STATE_DIR/primary-behind"
    return 0
  fi
  die "$(head -c 600 "$STATE_DIR/primary-behind" | tr '\n' ' ')(checked when this replica started); it keeps its data. Recover the primary with: ansible-playbook reseed_primary.yml -e confirm=$NAME"
}

ready_replica() {
  local io sqlt ioe sqle lag
  read_replica_state
  [ "${F[Probe_Read_Only]:-}" = 1 ] || die "replica is not $READ_ONLY_VAR"
  primary_behind_check
  # Source_* and Replica_* on MySQL 8.4+, Master_* and Slave_* on MariaDB.
  [ -n "${F[Replica_IO_Running]+set}${F[Slave_IO_Running]+set}" ] || die "no replication configured"
  io=${F[Replica_IO_Running]-${F[Slave_IO_Running]-}}
  sqlt=${F[Replica_SQL_Running]-${F[Slave_SQL_Running]-}}
  ioe=${F[Last_IO_Errno]-}
  sqle=${F[Last_SQL_Errno]-}
  lag=${F[Seconds_Behind_Source]-${F[Seconds_Behind_Master]-}}
  [ "$sqlt" = Yes ] || die "SQL thread is '$sqlt' (errno $sqle)"
  [ "$sqle" = 0 ] || die "replication SQL error $sqle"
  if [ "$io" = Connecting ] || { [ "$io" = Yes ] && [ "$ioe" != 0 ]; }; then
    # The source is away and the IO thread retries (it never gives up).
    local fresh=0
    if [ -r "$FRESH_FILE" ]; then read -r fresh <"$FRESH_FILE" || true; fi
    case $fresh in '' | *[!0-9]*) fresh=0 ;; esac
    [ $((EPOCHSECONDS - fresh)) -le "$MAX_LAG_SECONDS" ] ||
      die "IO thread is '$io' (errno $ioe) and the data is $((EPOCHSECONDS - fresh))s old, over ${MAX_LAG_SECONDS}s"
    return 0
  fi
  [ "$io" = Yes ] || die "IO thread is '$io' (errno $ioe)$(broken_hint "$ioe")"
  case $lag in '' | NULL | *[!0-9]*) die "lag unknown ('$lag')" ;; esac
  [ "$lag" -le "$MAX_LAG_SECONDS" ] || die "lag ${lag}s is over ${MAX_LAG_SECONDS}s"
  errant_check
  echo $((EPOCHSECONDS - lag)) >"$FRESH_FILE.tmp" && mv -f "$FRESH_FILE.tmp" "$FRESH_FILE"
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
