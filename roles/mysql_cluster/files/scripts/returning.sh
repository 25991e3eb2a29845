#!/usr/bin/env bash
# A replica's dealings with its peers, sourced by init.sh: may a returning
# replica (kept volume, done-marker) resume by replication alone, and which
# peers may a new copy come from. The init container asks peers over TCP as
# the replication user, which may read replica status and binary log lists
# (create_users), so root need not be reachable from other pods. Only reads
# are sent. The GTID rules (mariadb_gtid_verdict, mariadb_ahead,
# mysql_gtid_split) are pure and unit-tested on their own.
#
# Data is wiped only when it is provably this server's own divergence
# (transactions of its own server_uuid / server_id) or it is merely behind,
# and only after a donor holding everything else it holds has been found.
# A primary that lacks transactions a replica got from the cluster's primary
# is behind: the replica keeps its data and says so (reseed_primary.yml).

PEER_CLIENT_CNF=${CLIENT_DIR:-/run/stateful-mysql/client}/peer.cnf
# Seconds a returning replica waits for the primary before it starts
# unchecked (replication retries; nothing is wiped).
PRIMARY_CHECK_WAIT=${PRIMARY_CHECK_WAIT:-90}
# Seconds a new replica waits, in all, for a donor to be free, and between
# two rounds of asking (a CLONE donor serves one copy at a time).
DONOR_WAIT=${DONOR_WAIT:-3600}
DONOR_RETRY_SECONDS=${DONOR_RETRY_SECONDS:-3}
# Seconds without a byte after which a backup stream is given up (a donor
# frozen or cut off), and the next donor asked.
STREAM_IDLE_SECONDS=${STREAM_IDLE_SECONDS:-60}

# Who peers are asked as: the replication user. A cluster made before it got
# its status grants refuses it those reads (1227, 1142); such a cluster has
# root@'%' (root's only host then), so the rest of this run asks as root. A
# file, as peer_client runs in subshells; named for this run only, so that a
# later start (root moved since, the grants given) asks as the user again.
PEER_AS_ROOT=$(mktemp -u "${TMPDIR:-/tmp}/peer-as-root.XXXXXX")

# peer_client HOST CLIENT-OPTIONS...: SQL from stdin on HOST's server.
peer_client() {
  local host=$1 input err rc user key
  shift
  input=$(cat)
  err=$(mktemp)
  while :; do
    user=$REPL_USER key=replication-password
    [ ! -f "$PEER_AS_ROOT" ] || user=root key=root-password
    write_peer_cnf "$PEER_CLIENT_CNF" "$host" "$user" "$key"
    rc=0
    "$CLIENT" --defaults-extra-file="$PEER_CLIENT_CNF" "${CLIENT_QUIET[@]}" "$@" <<<"$input" 2>"$err" || rc=$?
    if [ "$rc" -ne 0 ] && [ "$user" != root ] && grep -Eq 'ERROR (1227|1142)' "$err"; then
      event "$host refuses $user status reads (a cluster made before it had them): asking peers as root"
      touch "$PEER_AS_ROOT"
      continue
    fi
    # Callers parse what a success prints, stderr often included.
    [ "$rc" -eq 0 ] || cat "$err" >&2
    rm -f "$err"
    return "$rc"
  done
}

# peer_sql HOST: SQL from stdin on HOST's server, tab-separated, no headers.
peer_sql() { peer_client "$1" --batch --skip-column-names; }

# peer_answers HOST SECONDS: HOST resolves and its server answers.
peer_answers() {
  local host=$1 until=$((SECONDS + $2))
  while :; do
    if getent hosts "$host" >/dev/null 2>&1 && echo 'SELECT 1' | peer_sql "$host" >/dev/null 2>&1; then
      return 0
    fi
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 3
  done
}

# gtid_entry LIST DOMAIN: "server_id seq_no" of DOMAIN in a MariaDB GTID list.
gtid_entry() {
  local e d s n IFS=,
  for e in ${1//[[:space:]]/}; do
    IFS=- read -r d s n <<<"$e"
    if [ "$d" = "$2" ]; then
      printf '%s %s\n' "$s" "$n"
      return 0
    fi
  done
  return 1
}

# mariadb_ahead POS OTHER: the GTIDs of POS that OTHER (a MariaDB GTID
# position) lacks, comma-separated: a domain OTHER does not have, a higher
# seq_no, or the same seq_no from another server (a divergence). Empty: none.
mariadb_ahead() {
  local pos=${1//[[:space:]]/} other=${2//[[:space:]]/}
  local e d s n ps pn ahead=() IFS=,
  for e in $pos; do
    IFS=- read -r d s n <<<"$e"
    if ! IFS=' ' read -r ps pn < <(gtid_entry "$other" "$d"); then
      ahead+=("$e")
    elif [ "$n" -gt "$pn" ] || { [ "$n" -eq "$pn" ] && [ "$s" != "$ps" ]; }; then
      ahead+=("$e")
    fi
  done
  (IFS=,; printf '%s' "${ahead[*]}")
}

# mariadb_own STATE SERVER_ID: the entries of a gtid_binlog_state that this
# server_id wrote (the state keeps one GTID per domain and server_id, so an
# errant transaction followed by replicated ones still shows).
mariadb_own() {
  local e d s n written=() IFS=,
  for e in ${1//[[:space:]]/}; do
    IFS=- read -r d s n <<<"$e"
    [ "$s" != "$2" ] || written+=("$e")
  done
  (IFS=,; printf '%s' "${written[*]}")
}

# mariadb_gtid_verdict SLAVE_POS BINLOG_STATE OWN_SERVER_ID PRIMARY_BINLOG_POS FIRST_GTID_LIST
# A returning MariaDB replica may resume when it holds nothing the primary
# lacks and the primary's oldest binary log starts at or before its position
# (the Gtid_list that opens that log). Prints why not: status 3 when the
# primary lacks what this replica replicated from the cluster's primary (the
# primary is behind: keep the data), 1 when a re-copy would lose nothing but
# this replica's own divergence (errant transactions of its server_id) or it
# is only behind a purge.
mariadb_gtid_verdict() {
  local slave=${1//[[:space:]]/} binlog=${2//[[:space:]]/} own=$3
  local primary=${4//[[:space:]]/} first=${5//[[:space:]]/}
  local e d s n ps pn mine ahead errant IFS=,
  ahead=$(mariadb_ahead "$slave" "$primary")
  if [ -n "$ahead" ]; then
    echo "the primary is behind: this replica holds $ahead, replicated from the cluster's primary, which the primary (at $primary) lacks"
    return 3
  fi
  errant=$(mariadb_own "$binlog" "$own")
  if [ -n "$errant" ]; then
    echo "errant transactions: $errant was written on this replica (server_id $own), not replicated from the primary"
    return 1
  fi
  for e in $first; do
    IFS=- read -r d s n <<<"$e"
    mine=0
    if IFS=' ' read -r ps pn < <(gtid_entry "$slave" "$d"); then mine=$pn; fi
    if [ "$mine" -lt "$n" ]; then
      echo "binary logs purged: the primary's oldest binary log starts after $e, this replica is at seq_no $mine of domain $d"
      return 1
    fi
  done
  return 0
}

# mysql_gtid_split SET UUID: prints "OWN|FOREIGN", the parts of a MySQL GTID
# set written by the server UUID and by any other.
mysql_gtid_split() {
  local e own=() foreign=() IFS=,
  for e in ${1//[[:space:]]/}; do
    [ -n "$e" ] || continue
    if [ "${e%%:*}" = "$2" ]; then own+=("$e"); else foreign+=("$e"); fi
  done
  printf '%s|%s' "${own[*]}" "${foreign[*]}"
}

# A GTID set or list, checked before it goes into SQL text.
gtid_text_ok() { [[ $1 =~ ^[A-Za-z0-9_:,-]*$ ]]; }

# Local state of a returning replica, read from a private server with
# replication held back.
read_local_gtid() {
  local skip=--skip-replica-start
  [ "$FLAVOR" = mariadb ] && skip=--skip-slave-start
  start_temp_server --skip-networking "$skip"
  if [ "$FLAVOR" = mariadb ]; then
    LOCAL_SLAVE_POS=$(echo 'SELECT @@GLOBAL.gtid_slave_pos' | sql "$ROOT_CNF")
    # The state, not the position: the position keeps one GTID per domain, so
    # an errant transaction followed by replicated ones would hide in it.
    LOCAL_BINLOG_POS=$(echo 'SELECT @@GLOBAL.gtid_binlog_state' | sql "$ROOT_CNF")
  else
    LOCAL_GTID=$(printf '%s\n' "SELECT REPLACE(@@GLOBAL.gtid_executed, '\\n', '')" | sql "$ROOT_CNF")
    LOCAL_UUID=$(echo 'SELECT @@GLOBAL.server_uuid' | sql "$ROOT_CNF")
  fi
  stop_temp_server "$ROOT_CNF"
  LOCAL_READ=1
}

# What a re-copy must find in its donor: this server's transactions but its
# own errant ones (MySQL: the GTID set of other servers; MariaDB: the
# position replicated from the cluster's primary).
local_held_by_others() {
  if [ "$FLAVOR" = mariadb ]; then
    printf '%s' "${LOCAL_SLAVE_POS//[[:space:]]/}"
  else
    local parts
    parts=$(mysql_gtid_split "$LOCAL_GTID" "$LOCAL_UUID")
    printf '%s' "${parts#*|}"
  fi
}

# mysql_gtid_verdict: the primary compares (GTID_SUBSET) this replica's
# gtid_executed with its own gtid_executed and gtid_purged. Status 3: the
# primary lacks transactions of other servers that this replica holds (it is
# behind); 1: a re-copy loses only this server's own errant transactions, or
# the primary purged what it needs; 2: the primary could not be asked.
mysql_gtid_verdict() {
  local out extra missing parts own foreign
  gtid_text_ok "$LOCAL_GTID" || {
    echo "unreadable gtid_executed '$LOCAL_GTID'"
    return 2
  }
  out=$(peer_sql "$PRIMARY_HOST" <<SQL
SELECT REPLACE(CONCAT(GTID_SUBTRACT('$LOCAL_GTID', @@GLOBAL.gtid_executed), '|',
                      GTID_SUBTRACT(@@GLOBAL.gtid_purged, '$LOCAL_GTID')), '\\n', '');
SQL
  ) || {
    echo "cannot compare GTID sets on $PRIMARY_HOST"
    return 2
  }
  # '|', not a tab: read would merge an empty first field into the second.
  IFS='|' read -r extra missing <<<"$out"
  parts=$(mysql_gtid_split "$extra" "$LOCAL_UUID")
  own=${parts%%|*} foreign=${parts#*|}
  if [ -n "$foreign" ]; then
    echo "the primary is behind: this replica holds $foreign, replicated from the cluster's primary, which the primary lacks"
    return 3
  fi
  if [ -n "$own" ]; then
    echo "errant transactions: $own was written on this replica (server_uuid $LOCAL_UUID), not replicated from the primary"
    return 1
  fi
  if [ -n "$missing" ]; then
    echo "binary logs purged: the primary no longer has $missing, which this replica needs"
    return 1
  fi
  return 0
}

# The primary's GTID position and the Gtid_list opening its oldest binary log.
read_primary_mariadb() {
  local first
  PRIMARY_BINLOG_POS=$(echo 'SELECT @@GLOBAL.gtid_binlog_pos' | peer_sql "$PRIMARY_HOST") || return 1
  first=$(echo 'SHOW BINARY LOGS' | peer_sql "$PRIMARY_HOST" | awk 'NR == 1 { print $1 }') || return 1
  [[ $first =~ ^[A-Za-z0-9_.-]+$ ]] || return 1
  PRIMARY_FIRST_LIST=$(echo "SHOW BINLOG EVENTS IN '$first' LIMIT 4" | peer_sql "$PRIMARY_HOST" |
    awk -F'\t' '$3 == "Gtid_list" { gsub(/[][]/, "", $6); print $6; exit }') || return 1
  PRIMARY_FIRST_LOG=$first
}

# returning_replica_check: sets RECOPY_REASON when this volume's data cannot
# resume by replication and a re-copy would lose nothing but its own
# divergence; leaves it empty to start as it is. A primary that is behind
# this replica leaves the data as it is, recorded in $STATE_DIR/primary-behind
# (the readiness probe says why it is not Ready).
# shellcheck disable=SC2034 # RECOPY_REASON is read by init.sh
returning_replica_check() {
  RECOPY_REASON=
  if [ -f "$STATE_DIR/recopy" ]; then
    RECOPY_REASON="re-copy requested: $(head -c 500 "$STATE_DIR/recopy" | tr '\n' ' ')"
    return 0
  fi
  if ! peer_answers "$PRIMARY_HOST" "$PRIMARY_CHECK_WAIT"; then
    event "returning replica: primary $PRIMARY_HOST did not answer within ${PRIMARY_CHECK_WAIT}s; starting unchecked, nothing wiped (replication retries)"
    return 0
  fi
  read_local_gtid
  local verdict rc=0
  if [ "$FLAVOR" = mariadb ]; then
    if ! read_primary_mariadb; then
      event "returning replica: cannot read the binary logs of $PRIMARY_HOST; starting unchecked, nothing wiped"
      return 0
    fi
    verdict=$(mariadb_gtid_verdict "$LOCAL_SLAVE_POS" "$LOCAL_BINLOG_POS" "$SERVER_ID" \
      "$PRIMARY_BINLOG_POS" "$PRIMARY_FIRST_LIST") || rc=$?
    [ "$rc" -ne 0 ] || verdict="at $LOCAL_SLAVE_POS; the primary is at $PRIMARY_BINLOG_POS, its oldest binary log $PRIMARY_FIRST_LOG starts at [${PRIMARY_FIRST_LIST}]"
  else
    verdict=$(mysql_gtid_verdict) || rc=$?
    if [ "$rc" -eq 2 ]; then
      event "returning replica: $verdict; starting unchecked, nothing wiped"
      return 0
    fi
    [ "$rc" -ne 0 ] || verdict="gtid_executed ${LOCAL_GTID:-empty} is within the primary's, which still holds every binary log after it"
  fi
  if [ "$rc" -eq 3 ]; then
    printf '%s\n' "$verdict" >"$STATE_DIR/primary-behind"
    event "returning replica: $verdict; keeping every transaction of this replica, nothing wiped (recover the primary with reseed_primary.yml)"
    return 0
  fi
  rm -f "$STATE_DIR/primary-behind"
  if [ "$rc" -ne 0 ]; then
    RECOPY_REASON=$verdict
    return 0
  fi
  event "returning replica catches up by replication, no copy: $verdict"
}

# recopy_replica REASON: wipe this volume's data (ours: the done-marker says
# so) and copy afresh, once a donor holding every transaction of it but its
# own errant ones has been found; else keep the data and stop, saying so.
# Marked in-progress first, so an interruption redoes it.
recopy_replica() {
  [ -n "${LOCAL_READ:-}" ] || read_local_gtid
  DONOR_MUST_HOLD=$(local_held_by_others)
  wait_for_primary_dns
  find_donors
  [ "${#DONORS[@]}" -gt 0 ] ||
    die "a re-copy is due ($1), but no donor holds every transaction this replica holds (${DONOR_MUST_HOLD:-none}): keeping its data. $NO_DONOR_WHY"
  event "re-copy: $1 (donors holding all of ${DONOR_MUST_HOLD:-nothing}: ${DONORS[*]})"
  touch "$STATE_DIR/in-progress"
  rm -f "$STATE_DIR/done" "$STATE_DIR/recopy"
  wipe_datadir
  DONORS_CHOSEN=1 copy_replica
  record_version
  touch "$STATE_DIR/done"
  rm -f "$STATE_DIR/in-progress"
  event "done-marker written"
}

# SQL that says whether a server holds transactions of its own (written on
# it, not replicated): 1 or 0. MariaDB: its server_id in gtid_binlog_state
# (the position keeps one GTID per domain and would hide it).
own_transactions_sql() {
  if [ "$FLAVOR" = mariadb ]; then
    printf '%s' "CONCAT(',', REPLACE(@@GLOBAL.gtid_binlog_state, ' ', '')) REGEXP CONCAT(',[0-9]+-', @@GLOBAL.server_id, '-')"
  else
    printf '%s' "LOCATE(@@GLOBAL.server_uuid, @@GLOBAL.gtid_executed) > 0"
  fi
}

# peer_health HOST: a Ready replica's state: read-only, holding no
# transaction of its own, both threads running without error, lag within
# MAX_LAG_SECONDS. Prints why not.
peer_health() {
  local status words=SLAVE ro io sqlt ioe sqle lag out own
  [ "$REPLICA_WORDS" = replica ] && words=REPLICA
  # Seen here: a pod's first connections, right after it starts, may be
  # refused by peers that serve everyone else; ask a few times.
  local try
  for try in 1 2 3; do
    out=$(echo "SELECT @@GLOBAL.read_only, $(own_transactions_sql)" | peer_sql "$1" 2>&1) && break
    [ "$try" -lt 3 ] || {
      echo "does not answer: $(tr '\n' ' ' <<<"$out" | head -c 200)"
      return 1
    }
    sleep 2
  done
  IFS=$'\t' read -r ro own <<<"$out"
  [ "$own" = 0 ] || {
    echo "holds transactions of its own (written on it, not replicated): never a donor"
    return 1
  }
  status=$(echo "SHOW $words STATUS" | peer_client "$1" --vertical 2>/dev/null) || {
    echo "cannot read its replica status"
    return 1
  }
  pick() { awk -v k="$1" -v k2="$2" -F': ' '{ sub(/^ +/, "", $1) } $1 == k || $1 == k2 { print $2; exit }' <<<"$status"; }
  io=$(pick Replica_IO_Running Slave_IO_Running)
  sqlt=$(pick Replica_SQL_Running Slave_SQL_Running)
  ioe=$(pick Last_IO_Errno Last_IO_Errno)
  sqle=$(pick Last_SQL_Errno Last_SQL_Errno)
  lag=$(pick Seconds_Behind_Source Seconds_Behind_Master)
  case $ro in 1 | ON) ;; *)
    echo "not read-only"
    return 1
    ;;
  esac
  if [ "$io" != Yes ] || [ "$sqlt" != Yes ] || [ "$ioe" != 0 ] || [ "$sqle" != 0 ]; then
    echo "not replicating (IO '$io' errno '$ioe', SQL '$sqlt' errno '$sqle')"
    return 1
  fi
  case $lag in '' | NULL | *[!0-9]*)
    echo "lag unknown"
    return 1
    ;;
  esac
  [ "$lag" -le "$MAX_LAG_SECONDS" ] || {
    echo "lag ${lag}s"
    return 1
  }
}

# donor_holds HOST: HOST holds every transaction of DONOR_MUST_HOLD (MySQL:
# a GTID set; MariaDB: a GTID position). Prints what it lacks.
donor_holds() {
  local out
  if [ "$FLAVOR" = mariadb ]; then
    out=$(echo 'SELECT @@GLOBAL.gtid_current_pos' | peer_sql "$1") || {
      echo "cannot read its position"
      return 1
    }
    out=$(mariadb_ahead "$DONOR_MUST_HOLD" "$out")
  else
    gtid_text_ok "$DONOR_MUST_HOLD" || {
      echo "unreadable GTID set"
      return 1
    }
    out=$(printf "SELECT REPLACE(GTID_SUBTRACT('%s', @@GLOBAL.gtid_executed), '\\\\n', '')\n" "$DONOR_MUST_HOLD" | peer_sql "$1") || {
      echo "cannot compare GTID sets"
      return 1
    }
  fi
  [ -z "$out" ] || {
    echo "lacks $out"
    return 1
  }
}

# A copy needs donor and recipient on one server version (server_version):
# during a roll to another version, a new replica copies from a pod already
# on its version, or waits for one (copy_replica).
LOCAL_VERSION=
! declare -F server_version >/dev/null || LOCAL_VERSION=$(server_version)

# version_differs HOST: succeeds when HOST runs this pod's server version;
# else prints which it runs. (Named for its use: `why=$(...)` is the reason.)
version_differs() {
  local v
  v=$(echo 'SELECT VERSION()' | peer_sql "$1" 2>/dev/null | grep -oE '^[0-9]+[.][0-9]+[.][0-9]+') || {
    echo "cannot read its version"
    return 1
  }
  [ "$v" = "$LOCAL_VERSION" ] || {
    echo "runs server $v, this pod $LOCAL_VERSION"
    return 1
  }
}

# find_donors: sets DONORS to the Ready replicas found through the headless
# Service's DNS and a health check (DNS lists NotReady pods too), starting
# at this pod's ordinal so that new replicas spread over them; the primary
# only when there is none. With DONOR_MUST_HOLD set (a re-copy), only the
# donors that hold all of it, the primary last; NO_DONOR_WHY says why not.
find_donors() {
  local i misses=0 host why healthy=() candidates=()
  # Once the primary answers, this pod's own connections work too.
  peer_answers "$PRIMARY_HOST" 60 || log "the primary $PRIMARY_HOST does not answer yet"
  for ((i = 1; i <= 50 && misses < 3; i++)); do
    [ "$i" -ne "$ORDINAL" ] || continue
    host=$(pod_host "$i")
    if ! getent hosts "$host" >/dev/null 2>&1; then
      misses=$((misses + 1))
      continue
    fi
    misses=0
    if why=$(peer_health "$host") && why=$(version_differs "$host"); then
      healthy+=("$host")
    else
      log "not a donor: $host ($why)"
    fi
  done
  if [ "${#healthy[@]}" -eq 0 ]; then
    if why=$(version_differs "$PRIMARY_HOST"); then
      candidates=("$PRIMARY_HOST")
    else
      NO_DONOR_WHY=" no Ready replica runs server $LOCAL_VERSION and the primary $PRIMARY_HOST $why;"
      log "not a donor: $PRIMARY_HOST ($why)"
      DONORS=()
      return 0
    fi
  else
    local start=$((ORDINAL % ${#healthy[@]}))
    for ((i = 0; i < ${#healthy[@]}; i++)); do
      candidates+=("${healthy[$(((start + i) % ${#healthy[@]}))]}")
    done
    [ -z "${DONOR_MUST_HOLD:-}" ] || candidates+=("$PRIMARY_HOST")
  fi
  DONORS=()
  NO_DONOR_WHY=
  for host in "${candidates[@]}"; do
    if [ -z "${DONOR_MUST_HOLD:-}" ] || why=$(donor_holds "$host"); then
      DONORS+=("$host")
    else
      NO_DONOR_WHY="$NO_DONOR_WHY $host: $why;"
      log "not a donor for this re-copy: $host ($why)"
    fi
  done
}
