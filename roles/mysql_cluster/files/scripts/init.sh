#!/usr/bin/env bash
# Init container: write this pod's server config and, on the first start
# only, give the volume its data: a fresh datadir and the users on the
# primary (ordinal 0); a one-time copy from the primary on a replica, then
# point it at the primary. The done-marker is written only after all of it
# succeeded, so a restart never copies or re-points twice, and an
# interrupted first start is redone from scratch.
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh
# shellcheck source=backup-info.sh
source /etc/stateful-mysql/scripts/backup-info.sh
# shellcheck source=returning.sh
source /etc/stateful-mysql/scripts/returning.sh

# As PID 1, bash would ignore SIGTERM: stop at once instead (no done-marker,
# so the next start redoes the copy).
trap 'die "stopped by SIGTERM before finishing"' TERM

TEMP_SOCKET=$RUN_DIR/init.sock
TEMP_PORT=33062
TEMP_PID=
ROOT_CNF=$CLIENT_DIR/root.cnf
NOPASS_CNF=$CLIENT_DIR/nopass.cnf
# ConfigMap <name>-state, one file per key: `initialised` once the role saw
# the cluster run; `reseed-donor[-address]` while reseed_primary.yml runs.
CLUSTER_STATE=/etc/stateful-mysql/state

write_server_config() {
  local role=replica
  [ "$ORDINAL" -eq 0 ] && role=primary
  mkdir -p "$CONF_DIR"
  {
    cat /etc/stateful-mysql/config/common.cnf
    printf '\n# this pod\nserver-id=%s\nreport-host=%s.%s\n\n' "$SERVER_ID" "$HOST" "$SERVICE"
    cat "/etc/stateful-mysql/config/$role.cnf"
    printf '\n'
    cat /etc/stateful-mysql/config/extra.cnf
  } >"$CONF_DIR/my.cnf"
  chmod 644 "$CONF_DIR/my.cnf"
  log "wrote $role config, server-id $SERVER_ID"
}

# start_temp_server [extra mysqld options]: a private server for setup,
# reachable only through its own socket unless the caller opens a port.
start_temp_server() {
  rm -f "$TEMP_SOCKET"
  "$MYSQLD" --defaults-file="$CONF_DIR/my.cnf" "${SERVER_USER_OPT[@]}" \
    --socket="$TEMP_SOCKET" --pid-file="$RUN_DIR/init.pid" \
    --read-only=OFF "$@" &
  TEMP_PID=$!
  local i
  for i in $(seq 1 300); do
    if [ -S "$TEMP_SOCKET" ] && echo 'SELECT 1' | sql "$NOPASS_CNF" >/dev/null 2>&1; then return 0; fi
    if [ -S "$TEMP_SOCKET" ] && [ -f "$ROOT_CNF" ] && echo 'SELECT 1' | sql "$ROOT_CNF" >/dev/null 2>&1; then return 0; fi
    kill -0 "$TEMP_PID" 2>/dev/null || die "the temporary server exited during start-up (see the log above)"
    [ "$i" -eq 1 ] || sleep 1
  done
  die "the temporary server did not answer within 300 s"
}

wait_temp_exit() {
  local i
  for i in $(seq 1 300); do
    kill -0 "$TEMP_PID" 2>/dev/null || {
      wait "$TEMP_PID" || true
      return 0
    }
    sleep 1
  done
  die "the temporary server did not stop within 300 s"
}

stop_temp_server() {
  echo 'SHUTDOWN' | sql "$1" || kill "$TEMP_PID"
  wait_temp_exit
}

initialize_datadir() {
  mkdir -p "$DATADIR"
  chown_if_root mysql:mysql "$DATADIR"
  if [ "$FLAVOR" = mariadb ]; then
    local installer
    installer=$(command -v mariadb-install-db || command -v mysql_install_db) || die "no mariadb-install-db in the image"
    "$installer" --defaults-file="$CONF_DIR/my.cnf" "${SERVER_USER_OPT[@]}" \
      --auth-root-authentication-method=normal --skip-test-db >/dev/null
  else
    "$MYSQLD" --defaults-file="$CONF_DIR/my.cnf" "${SERVER_USER_OPT[@]}" --initialize-insecure
  fi
}

# account_plan: the grants of the cluster's accounts (create_users and
# restore_accounts): DONOR_ACCOUNT_HOST, DONOR_GRANT, DONOR_TLS, REPL_READS.
account_plan() {
  DONOR_ACCOUNT_HOST=% DONOR_TLS=''
  if [ "$FLAVOR" = mariadb ] || [ "$COPY_METHOD" = xtrabackup ]; then
    # The backup tool runs in the donor sidecar of the same pod: local only.
    DONOR_ACCOUNT_HOST=localhost
    if [ "$FLAVOR" = mariadb ]; then
      DONOR_GRANT='RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR'
    else
      DONOR_GRANT='RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT'
    fi
  else
    DONOR_GRANT=BACKUP_ADMIN
    # CLONE comes over the network: TLS only (clone_ssl_* on the recipient).
    DONOR_TLS=' REQUIRE SSL'
  fi
  # The replication user also answers the peers' status questions (replica
  # status, binary log lists: returning.sh) and reads the verify marker
  # through the read Service (replication_verify), so root need not be
  # reachable from other pods (mysql_cluster_root_host). Read-only grants:
  # REPLICATION SLAVE already lets it read every binary log.
  if [ "$FLAVOR" = mariadb ]; then
    REPL_READS='BINLOG MONITOR, SLAVE MONITOR'
  else
    REPL_READS='REPLICATION CLIENT'
  fi
}

# Users of a new cluster; every later member gets them with the copied data.
# Nothing here is binary-logged (sql_log_bin=0 in each session): the
# statements carry the passwords (MySQL would log their hashes), and any
# holder of REPLICATION SLAVE can read a binlog.
create_users() {
  local root repl donor
  root=$(sql_quote "$(secret root-password)")
  repl=$(sql_quote "$(secret replication-password)")
  donor=$(sql_quote "$(secret clone-password)")
  account_plan
  local cleanup=
  if [ "$FLAVOR" = mariadb ]; then
    # mariadb-install-db also makes root@127.0.0.1, root@::1 and
    # root@<hostname> without a password, and anonymous users: a port-forward
    # (from 127.0.0.1) would land on them. Only our accounts stay.
    cleanup="DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$HOST', ''@'localhost', ''@'$HOST';"
  fi
  sql "$NOPASS_CNF" <<SQL
SET SESSION sql_log_bin = 0;
$cleanup
ALTER USER 'root'@'localhost' IDENTIFIED BY $root;
CREATE USER 'root'@'$ROOT_HOST' IDENTIFIED BY $root;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'$ROOT_HOST' WITH GRANT OPTION;
CREATE USER '$REPL_USER'@'%' IDENTIFIED BY $repl REQUIRE SSL;
GRANT REPLICATION SLAVE, $REPL_READS ON *.* TO '$REPL_USER'@'%';
GRANT SELECT ON stateful_verify.* TO '$REPL_USER'@'%';
CREATE USER '$DONOR_USER'@'$DONOR_ACCOUNT_HOST' IDENTIFIED BY $donor$DONOR_TLS;
GRANT $DONOR_GRANT ON *.* TO '$DONOR_USER'@'$DONOR_ACCOUNT_HOST';
SQL
  if [ "$FLAVOR" = mariadb ]; then
    revoke_read_only_admin
    # One binlogged statement without a secret gives the server its first
    # GTID: a backup of a server without any records no GTID to start from.
    echo 'FLUSH PRIVILEGES' | sql "$ROOT_CNF"
  fi
  event "created users root@$ROOT_HOST, $REPL_USER@% (replication and status reads, TLS required), $DONOR_USER@$DONOR_ACCOUNT_HOST ($DONOR_GRANT$DONOR_TLS), not binlogged"
}

# MariaDB lets READ_ONLY ADMIN write on a read-only replica; remote root
# must be refused there like every other client.
revoke_read_only_admin() {
  sql "$ROOT_CNF" <<SQL
SET SESSION sql_log_bin = 0;
REVOKE READ_ONLY ADMIN ON *.* FROM 'root'@'$ROOT_HOST';
SQL
}

# restore_accounts: a restored backup holds the accounts of the cluster it
# came from, with that cluster's passwords: this cluster's accounts get this
# cluster's (its Secret), on a private server that skips the grant tables
# until FLUSH PRIVILEGES loads them; not binary-logged. Other accounts of
# the backup (applications') stay as they were.
restore_accounts() {
  local root repl donor
  root=$(sql_quote "$(secret root-password)")
  repl=$(sql_quote "$(secret replication-password)")
  donor=$(sql_quote "$(secret clone-password)")
  account_plan
  sql "$NOPASS_CNF" <<SQL
SET SESSION sql_log_bin = 0;
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS 'root'@'localhost' IDENTIFIED BY $root;
ALTER USER 'root'@'localhost' IDENTIFIED BY $root;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'root'@'$ROOT_HOST' IDENTIFIED BY $root;
ALTER USER 'root'@'$ROOT_HOST' IDENTIFIED BY $root;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'$ROOT_HOST' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '$REPL_USER'@'%' IDENTIFIED BY $repl REQUIRE SSL;
ALTER USER '$REPL_USER'@'%' IDENTIFIED BY $repl REQUIRE SSL;
GRANT REPLICATION SLAVE, $REPL_READS ON *.* TO '$REPL_USER'@'%';
GRANT SELECT ON stateful_verify.* TO '$REPL_USER'@'%';
CREATE USER IF NOT EXISTS '$DONOR_USER'@'$DONOR_ACCOUNT_HOST' IDENTIFIED BY $donor$DONOR_TLS;
ALTER USER '$DONOR_USER'@'$DONOR_ACCOUNT_HOST' IDENTIFIED BY $donor$DONOR_TLS;
GRANT $DONOR_GRANT ON *.* TO '$DONOR_USER'@'$DONOR_ACCOUNT_HOST';
SQL
  [ "$FLAVOR" != mariadb ] || revoke_read_only_admin
  drop_source_accounts "$@"
  event "restore: accounts root@$ROOT_HOST, $REPL_USER@%, $DONOR_USER@$DONOR_ACCOUNT_HOST given this cluster's passwords, not binlogged"
}

# drop_source_accounts SOURCE_REPL SOURCE_DONOR: the backup's cluster may have
# reached root from elsewhere, or named its replication and donor users
# otherwise: such an account of root or of those users, which this cluster
# does not use, would still take that cluster's password. It goes.
drop_source_accounts() {
  local names="'root', '$REPL_USER', '$DONOR_USER'" acct_user acct_host dropped=()
  [ -z "${1:-}" ] || names="$names, '$1'"
  [ -z "${2:-}" ] || names="$names, '$2'"
  while IFS=$'\t' read -r acct_user acct_host; do
    case "$acct_user@$acct_host" in
    "root@localhost" | "root@$ROOT_HOST" | "$REPL_USER@%" | "$DONOR_USER@$DONOR_ACCOUNT_HOST") continue ;;
    esac
    printf "SET SESSION sql_log_bin = 0; DROP USER %s@%s;\n" "$(sql_quote "$acct_user")" "$(sql_quote "$acct_host")" | sql "$ROOT_CNF"
    dropped+=("$acct_user@$acct_host")
  done < <(sql "$ROOT_CNF" <<<"SELECT user, host FROM mysql.user WHERE user IN ($names)")
  [ "${#dropped[@]}" -eq 0 ] || event "restore: dropped the backup's cluster accounts this cluster does not use: ${dropped[*]}"
}

# finish_restore: ordinal 0 of a new cluster whose volume the restore Job
# filled from a backup (marker `restored`): this cluster's accounts, a
# primary of its own (no replication source) whose GTID history carries on
# where the backup left off, then the upgrade step when the backup's server
# is older. Redone whole after an interruption (no done-marker yet).
finish_restore() {
  local id gtid skip=--skip-replica-start
  [ "$ORDINAL" -eq 0 ] ||
    die "this volume holds a restored backup, but only ordinal 0 starts from one: restore.yml fills $NAME-0's volume only; nothing was changed"
  id=$(sed -n 's/^id=//p' "$STATE_DIR/restored")
  gtid=$(sed -n 's/^gtid=//p' "$STATE_DIR/restored")
  [ "$FLAVOR" = mariadb ] && skip=--skip-slave-start
  start_temp_server --skip-networking --skip-grant-tables "$skip"
  restore_accounts "$(sed -n 's/^replication_user=//p' "$STATE_DIR/restored")" \
    "$(sed -n 's/^donor_user=//p' "$STATE_DIR/restored")"
  if [ "$FLAVOR" = mariadb ]; then
    [ -n "$gtid" ] || die "restored backup $id recorded no GTID: nothing to carry on from"
    sql "$ROOT_CNF" <<SQL
RESET SLAVE ALL;
RESET MASTER;
SET GLOBAL gtid_binlog_state = '$gtid';
SQL
  else
    sql "$ROOT_CNF" <<<'RESET REPLICA ALL;'
  fi
  # MySQL's set holds a newline per server_uuid, which the client prints as
  # "\n" in batch mode: removed in SQL, as backup.sh records it.
  event "restore: primary made from backup $id at GTID $(sql "$ROOT_CNF" <<<"SELECT REPLACE(@@GLOBAL.$([ "$FLAVOR" = mariadb ] && echo gtid_binlog_pos || echo gtid_executed), '\\n', '')")"
  stop_temp_server "$ROOT_CNF"
  upgrade_datadir
}

init_primary() {
  initialize_datadir
  start_temp_server --skip-networking
  create_users
  stop_temp_server "$ROOT_CNF"
  event "primary initialised"
}

# The headless Service publishes not-ready pods too: the name resolves once
# the primary's pod has an address, and its server listens once it started.
wait_for_primary_dns() {
  local i
  for i in $(seq 1 600); do
    if getent hosts "$PRIMARY_HOST" >/dev/null 2>&1 &&
      timeout 5 bash -c "exec 3<>/dev/tcp/$PRIMARY_HOST/$PORT" 2>/dev/null; then
      return 0
    fi
    [ $((i % 30)) -ne 1 ] || log "waiting for $PRIMARY_HOST:$PORT to resolve and accept connections"
    sleep 1
  done
  die "$PRIMARY_HOST:$PORT did not accept connections within 600 s: is the primary's pod running?"
}

# MySQL 8.4/9.7: the CLONE plugin, into a server that holds nothing yet.
# A donor serves one CLONE at a time (InnoDB's MAX_CLONES is 1: error 3634
# to any other): the donors are tried in turn, then waited for. Any other
# error of a donor sends the copy to the next one, on a fresh datadir; when
# every donor failed, the init container stops (and starts over).
# copy_by_clone [DONOR_ACCOUNT_HOST]: from that donor only (the reseed of the
# primary), else from the donors find_donors chose.
copy_by_clone() {
  local donor rc out waited_since=$SECONDS fixed='' failed=() held
  if [ $# -gt 0 ]; then
    DONORS=("$1")
    fixed=1
  fi
  start_clone_recipient
  donor=$(sql_quote "$(secret clone-password)")
  while :; do
    failed=()
    for COPY_DONOR in "${DONORS[@]}"; do
      event "clone started from $COPY_DONOR:$PORT"
      set +e
      # REQUIRE SSL: over TLS, the donor checked against the cluster CA
      # (clone_ssl_ca/cert/key in common.cnf).
      out=$(sql "$NOPASS_CNF" 2>&1 <<SQL
SET GLOBAL clone_valid_donor_list = '$COPY_DONOR:$PORT';
CLONE INSTANCE FROM '$DONOR_USER'@'$COPY_DONOR':$PORT IDENTIFIED BY $donor REQUIRE SSL;
SQL
      )
      rc=$?
      set -e
      # ERROR 3707 means the clone finished and the server wants a restart
      # that nothing here supervises: we restart it ourselves below.
      if [ "$rc" -eq 0 ] || grep -q '3707' <<<"$out"; then
        break 2
      fi
      # ERROR 3634: the donor serves another clone now; nothing was copied.
      if grep -q '3634' <<<"$out"; then
        event "clone from $COPY_DONOR refused: busy serving another clone (error 3634), nothing copied"
        continue
      fi
      event "clone from $COPY_DONOR failed: $(tr '\n' ' ' <<<"$out" | head -c 300); trying the next donor on a fresh datadir"
      failed+=("$COPY_DONOR")
      kill "$TEMP_PID" 2>/dev/null || true
      wait_temp_exit
      wipe_datadir
      start_clone_recipient
    done
    [ "${#failed[@]}" -lt "${#DONORS[@]}" ] || die "CLONE failed from every donor (${failed[*]}): see the events above"
    [ $((SECONDS - waited_since)) -lt "$DONOR_WAIT" ] ||
      die "every donor (${DONORS[*]}) stayed busy for ${DONOR_WAIT}s"
    log "every donor (${DONORS[*]}) is busy serving a clone; waiting and asking again"
    sleep "$DONOR_RETRY_SECONDS"
    if [ -z "$fixed" ]; then
      held=${DONOR_MUST_HOLD:-}
      find_donors
      [ "${#DONORS[@]}" -gt 0 ] || die "no donor holds every transaction to keep (${held:-none}): $NO_DONOR_WHY"
    fi
  done
  wait_temp_exit
  start_temp_server --skip-networking --skip-replica-start --super-read-only=OFF
  local state
  state=$(echo "SELECT STATE FROM performance_schema.clone_status" | sql "$ROOT_CNF")
  [ "$state" = Completed ] || die "clone status is '$state', not Completed"
  event "clone completed (donor $COPY_DONOR)"
}

# A fresh, empty server to clone into. It must hold nothing yet: the check
# fails closed, a server that cannot say what it holds is not cloned into.
start_clone_recipient() {
  local gtids
  initialize_datadir
  # CLONE connects out to the donor; the server listens on loopback only.
  start_temp_server --bind-address=127.0.0.1 --port="$TEMP_PORT" \
    --skip-replica-start --super-read-only=OFF
  gtids=$(echo 'SELECT @@GLOBAL.gtid_executed' | sql "$NOPASS_CNF") ||
    die "cannot read gtid_executed of the server to clone into: refusing to clone"
  [ -z "$gtids" ] || die "refusing to clone into a server that already holds transactions ($gtids)"
}

# MariaDB (mariadb-backup) and MySQL 5.7 (xtrabackup): receive the donor's
# physical backup over TLS with this cluster's client certificate. A stream
# that stalls for STREAM_IDLE_SECONDS, fails or is incomplete sends the copy
# to the next donor, on an emptied datadir; when every donor failed, the init
# container stops (and starts over).
# receive_stream: the backup from COPY_DONOR, extracted into the datadir;
# status 124 when it stalled. socat's -T ends a stream that stops sending (a
# donor frozen or cut off), but only once bytes flow (and exits 0: its
# notice says so): a donor that never completes the TLS handshake is given
# up by the watch below after as long without a first file.
receive_stream() {
  local fifo=$TMPDIR/stream.fifo socat_log=$TMPDIR/stream.log socat_pid tool_pid waited=0 rc=0
  rm -f "$fifo"
  mkfifo "$fifo"
  socat -d -d -T "$STREAM_IDLE_SECONDS" -u "OPENSSL:$COPY_DONOR:$DONOR_PORT,cert=$TLS_DIR/tls.crt,key=$TLS_DIR/tls.key,cafile=$TLS_DIR/ca.crt,commonname=$PEER_CN" \
    STDOUT >"$fifo" 2>"$socat_log" &
  socat_pid=$!
  "$STREAM_TOOL" -x -C "$DATADIR" <"$fifo" &
  tool_pid=$!
  while kill -0 "$socat_pid" 2>/dev/null && [ -z "$(ls -A "$DATADIR")" ]; do
    if [ "$waited" -ge "$STREAM_IDLE_SECONDS" ]; then
      log "no byte from $COPY_DONOR within ${STREAM_IDLE_SECONDS}s: giving it up"
      kill "$socat_pid" 2>/dev/null || true
      rc=124
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  wait "$socat_pid" || rc=$?
  wait "$tool_pid" || rc=$?
  rm -f "$fifo"
  if grep -q 'inactivity timeout triggered' "$socat_log"; then rc=124; fi
  grep -E ' [EW] ' "$socat_log" >&2 || true
  return "$rc"
}

# copy_by_stream [DONOR_ACCOUNT_HOST]: the donors find_donors chose unless told.
copy_by_stream() {
  [ -n "$BACKUP_TOOL" ] || die "the image lacks mariadb-backup/xtrabackup"
  [ -n "$STREAM_TOOL" ] || die "the image lacks the backup tool or its stream extractor (mariadb-backup/mbstream or xtrabackup/xbstream)"
  command -v socat >/dev/null || die "the image lacks socat, needed to receive the backup stream"
  local why tried=() rc
  if [ $# -gt 0 ]; then
    tried=("$1")
  else
    tried=("${DONORS[@]}")
    # The primary, last, when the replicas' streams all fail.
    if [[ " ${tried[*]} " != *" $PRIMARY_HOST "* ]] && [ -z "${DONOR_MUST_HOLD:-}" ] && version_differs "$PRIMARY_HOST" >/dev/null; then
      tried+=("$PRIMARY_HOST")
    fi
  fi
  for COPY_DONOR in "${tried[@]}"; do
    wipe_datadir
    event "backup stream started from $COPY_DONOR:$DONOR_PORT"
    rc=0
    receive_stream || rc=$?
    if [ "$rc" -eq 124 ]; then
      why="the stream stalled: no byte for ${STREAM_IDLE_SECONDS}s"
    elif [ "$rc" -ne 0 ]; then
      why="receiving the stream failed (status $rc)"
    # Check the copy before preparing it, and say what is missing.
    elif ! check_backup "$DATADIR"; then
      why=$BACKUP_PROBLEM
    elif ! "$BACKUP_TOOL" --prepare --target-dir="$DATADIR" 2>"$TMPDIR/prepare.log"; then
      why="preparing the backup failed: $(tail -n 5 "$TMPDIR/prepare.log" | tr '\n' ' ')"
    else
      chown_if_root -R mysql:mysql "$DATADIR"
      event "backup received and prepared (binlog $BINLOG_FILE:$BINLOG_POS gtid ${BINLOG_GTID:-none})"
      start_temp_server --skip-networking --skip-slave-start
      return 0
    fi
    event "backup stream from $COPY_DONOR: $why; trying the next donor"
  done
  wipe_datadir
  die "no donor gave a complete backup (${tried[*]}): see the events above"
}

# Replicas reach the primary over TLS and verify its certificate (the cluster
# CA, host name *.<service>.<namespace>.svc); they retry every
# $CONNECT_RETRY s without ever giving up (MariaDB: master-retry-count in
# common.cnf), so they resume within seconds of the primary's return.
CONNECT_RETRY=1
# SOURCE_RETRY_COUNT at its maximum (2^64-1, which MySQL 9.7 accepts).
RETRY_COUNT_MAX=18446744073709551615

point_at_primary() {
  local repl ca
  repl=$(sql_quote "$(secret replication-password)")
  ca=$SERVER_TLS_DIR/ca.crt
  case $COPY_METHOD in
  clone)
    sql "$ROOT_CNF" <<SQL
CHANGE REPLICATION SOURCE TO SOURCE_HOST='$PRIMARY_HOST', SOURCE_PORT=$PORT,
  SOURCE_USER='$REPL_USER', SOURCE_PASSWORD=$repl, SOURCE_AUTO_POSITION=1,
  SOURCE_SSL=1, SOURCE_SSL_CA='$ca', SOURCE_SSL_VERIFY_SERVER_CERT=1,
  SOURCE_CONNECT_RETRY=$CONNECT_RETRY, SOURCE_RETRY_COUNT=$RETRY_COUNT_MAX;
SQL
    ;;
  mariabackup)
    [ -n "${BINLOG_GTID:-}" ] || die "the backup recorded no GTID (3rd field of its binlog info)"
    sql "$ROOT_CNF" <<SQL
SET GLOBAL gtid_slave_pos = '$BINLOG_GTID';
CHANGE MASTER TO MASTER_HOST='$PRIMARY_HOST', MASTER_PORT=$PORT,
  MASTER_USER='$REPL_USER', MASTER_PASSWORD=$repl, MASTER_USE_GTID=slave_pos,
  MASTER_SSL=1, MASTER_SSL_CA='$ca', MASTER_SSL_VERIFY_SERVER_CERT=1,
  MASTER_CONNECT_RETRY=$CONNECT_RETRY;
SQL
    ;;
  xtrabackup)
    sql "$ROOT_CNF" <<SQL
CHANGE MASTER TO MASTER_HOST='$PRIMARY_HOST', MASTER_PORT=$PORT,
  MASTER_USER='$REPL_USER', MASTER_PASSWORD=$repl,
  MASTER_LOG_FILE='$BINLOG_FILE', MASTER_LOG_POS=$BINLOG_POS,
  MASTER_SSL=1, MASTER_SSL_CA='$ca', MASTER_SSL_VERIFY_SERVER_CERT=1,
  MASTER_CONNECT_RETRY=$CONNECT_RETRY, MASTER_RETRY_COUNT=$RETRY_COUNT_MAX;
SQL
    ;;
  *) die "unknown copy method '$COPY_METHOD'" ;;
  esac
  event "CHANGE: replica pointed at $PRIMARY_HOST:$PORT (TLS, source verified, retry every ${CONNECT_RETRY}s)"
}

copy_replica() {
  if [ -z "${DONORS_CHOSEN:-}" ]; then
    wait_for_primary_dns
    find_donors
    wait_for_donor_version
  fi
  log "donors, in the order asked: ${DONORS[*]}"
  case $COPY_METHOD in
  clone) copy_by_clone ;;
  mariabackup | xtrabackup) copy_by_stream ;;
  *) die "unknown copy method '$COPY_METHOD'" ;;
  esac
  point_at_primary
  stop_temp_server "$ROOT_CNF"
}

# wait_for_donor_version: in the middle of a roll to another server version
# no peer may run this pod's version yet (the primary rolls last): wait for
# one, saying so once, rather than copy across versions or crash-loop.
wait_for_donor_version() {
  local since=$SECONDS said=
  while [ "${#DONORS[@]}" -eq 0 ]; do
    [ $((SECONDS - since)) -lt "$DONOR_WAIT" ] ||
      die "no donor runs server $LOCAL_VERSION after ${DONOR_WAIT}s:$NO_DONOR_WHY"
    if [ -z "$said" ]; then
      event "waiting for a donor on server $LOCAL_VERSION (a copy needs donor and recipient on one version):$NO_DONOR_WHY"
      said=1
    fi
    sleep "$DONOR_VERSION_RETRY_SECONDS"
    find_donors
  done
  [ -z "$said" ] || event "donor on server $LOCAL_VERSION found after $((SECONDS - since))s: ${DONORS[*]}"
}
DONOR_VERSION_RETRY_SECONDS=${DONOR_VERSION_RETRY_SECONDS:-5}

# data_version: the server version that last ran this datadir: the volume's
# record (record_version), else MariaDB's own upgrade info; empty when neither.
data_version() {
  local f
  for f in "$STATE_DIR/server-version" "$DATADIR/mariadb_upgrade_info" "$DATADIR/mysql_upgrade_info"; do
    [ -s "$f" ] || continue
    grep -oE '^[0-9]+[.][0-9]+[.][0-9]+' "$f" | head -n 1 && return 0
  done
  return 0
}
record_version() { printf '%s\n' "$LOCAL_VERSION" >"$STATE_DIR/server-version"; }

# upgrade_datadir: the flavor's upgrade step, once, when this image's server
# is newer than the one that last ran the datadir, on a private server before
# the real one starts (the pod is not Ready meanwhile). MariaDB: mariadb-upgrade
# (not binary-logged, its default: no transaction of its own on a replica).
# MySQL upgrades itself at start (upgrade=AUTO): its error log says so.
upgrade_datadir() {
  local have out tool log_file=$TMPDIR/upgrade.log
  [ -n "$LOCAL_VERSION" ] || die "cannot read the server version of this image ($MYSQLD --version)"
  have=$(data_version)
  [ "$have" != "$LOCAL_VERSION" ] || return 0
  if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$have" "$LOCAL_VERSION" | sort -V | tail -n 1)" = "$have" ]; then
    die "this volume's data was last run by server $have, newer than this image's $LOCAL_VERSION: an older server cannot read it. Run this pod on a $have image again (mysql_cluster_version, mysql_cluster_image); nothing was changed"
  fi
  if [ -z "$have" ] && [ "$FLAVOR" != mariadb ]; then
    # Made before versions were recorded: the server checks its data itself.
    record_version
    return 0
  fi
  event "upgrade: data of server ${have:-unrecorded}, this image runs $LOCAL_VERSION: upgrade step started"
  if [ "$FLAVOR" = mariadb ]; then
    start_temp_server --skip-networking --skip-slave-start
    tool=$(command -v mariadb-upgrade || command -v mysql_upgrade) || die "no mariadb-upgrade in the image"
    # mariadb-upgrade hands its password on to the clients it runs, and
    # mangles one with quotes or backslashes (root's may hold any): it runs
    # as an account of this temporary server alone (no network, the pod's
    # own socket), with a throw-away password, dropped afterwards; neither
    # account statement is binary-logged.
    local pass
    pass=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    sql "$ROOT_CNF" <<SQL
SET SESSION sql_log_bin = 0;
CREATE OR REPLACE USER 'stateful_upgrade'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON *.* TO 'stateful_upgrade'@'localhost' WITH GRANT OPTION;
SQL
    (
      umask 077
      printf '[client]\nuser=stateful_upgrade\npassword=%s\nsocket=%s\n' "$pass" "$TEMP_SOCKET" >"$CLIENT_DIR/upgrade.cnf"
    )
    out=$("$tool" --defaults-extra-file="$CLIENT_DIR/upgrade.cnf" 2>&1) || {
      rm -f "$CLIENT_DIR/upgrade.cnf"
      die "mariadb-upgrade failed: $(tail -n 5 <<<"$out" | tr '\n' ' ')"
    }
    rm -f "$CLIENT_DIR/upgrade.cnf"
    echo "SET SESSION sql_log_bin = 0; DROP USER 'stateful_upgrade'@'localhost';" | sql "$ROOT_CNF"
    stop_temp_server "$ROOT_CNF"
    event "upgrade: mariadb-upgrade from ${have:-unrecorded} to $LOCAL_VERSION done"
  else
    start_temp_server --skip-networking --skip-replica-start --log-error="$log_file"
    stop_temp_server "$ROOT_CNF"
    cat "$log_file" >&2
    out=$(grep -oE "Server upgrade from '[0-9]+' to '[0-9]+' completed" "$log_file" | tail -n 1 || true)
    event "upgrade: MySQL's own upgrade at start from $have to $LOCAL_VERSION: ${out:-no upgrade reported in its log}"
  fi
  rm -f "$log_file"
  record_version
}

cluster_state() { cat "$CLUSTER_STATE/$1" 2>/dev/null || true; }

RECOVERY="Recover with: ansible-playbook reseed_primary.yml -e confirm=$NAME (copies the most advanced replica into ordinal 0)"

# reachable_replicas: REACHABLE, the replicas whose servers answer now (the
# names the headless Service publishes, three misses in a row end the list).
reachable_replicas() {
  local i misses=0 peer
  REACHABLE=()
  for ((i = 1; i <= 50 && misses < 3; i++)); do
    peer=$(pod_host "$i")
    if ! getent hosts "$peer" >/dev/null 2>&1; then
      misses=$((misses + 1))
      continue
    fi
    misses=0
    if echo 'SELECT 1' | peer_sql "$peer" >/dev/null 2>&1; then REACHABLE+=("$peer"); fi
  done
}

# replicated_gtids HOST: what a replica got from the cluster's primary
# (MySQL: its GTID set but its own server_uuid's; MariaDB: gtid_slave_pos).
replicated_gtids() {
  local out uuid set parts
  if [ "$FLAVOR" = mariadb ]; then
    echo 'SELECT @@GLOBAL.gtid_slave_pos' | peer_sql "$1"
    return
  fi
  out=$(printf '%s\n' "SELECT @@GLOBAL.server_uuid, REPLACE(@@GLOBAL.gtid_executed, '\\n', '')" | peer_sql "$1") || return 1
  IFS=$'\t' read -r uuid set <<<"$out"
  parts=$(mysql_gtid_split "$set" "$uuid")
  printf '%s' "${parts#*|}"
}

# lacks_gtids HELD: what this server (its temporary server, ROOT_CNF) lacks
# of HELD; everything when there is no server (an empty volume).
lacks_gtids() {
  local held=$1 own
  [ -n "$held" ] || return 0
  if [ -z "${2:-}" ]; then
    printf '%s' "$held"
  elif [ "$FLAVOR" = mariadb ]; then
    own=$(echo 'SELECT @@GLOBAL.gtid_binlog_pos' | sql "$ROOT_CNF") || die "cannot read this server's gtid_binlog_pos"
    mariadb_ahead "$held" "$own"
  else
    gtid_text_ok "$held" || die "unreadable GTID set '$held'"
    printf "SELECT REPLACE(GTID_SUBTRACT('%s', @@GLOBAL.gtid_executed), '\\\\n', '')\n" "$held" | sql "$ROOT_CNF" ||
      die "cannot compare GTID sets on this server"
  fi
}

# primary_fence [server]: FENCE_WHY names every replica that answers and
# holds transactions of the cluster's primary that this server lacks (with
# "server", its temporary server is running; without, its volume is empty).
# A primary behind its replicas must not serve: whatever it accepted would
# diverge from what they hold, and a re-copy of them would lose data.
primary_fence() {
  local peer held lacks
  FENCE_WHY=
  [ -n "${REACHABLE_KNOWN:-}" ] || reachable_replicas
  for peer in "${REACHABLE[@]}"; do
    held=$(replicated_gtids "$peer") || continue
    lacks=$(lacks_gtids "$held" "${1:-}")
    [ -z "$lacks" ] || FENCE_WHY="$FENCE_WHY ${peer%%.*} holds $lacks;"
  done
  [ -z "$FENCE_WHY" ]
}

# A primary with data, at each start: checked against the replicas it can
# reach before it serves. Status 1 with FENCE_WHY when one is ahead.
check_primary_against_replicas() {
  local skip=--skip-replica-start
  [ "$FLAVOR" = mariadb ] && skip=--skip-slave-start
  reachable_replicas
  if [ "${#REACHABLE[@]}" -eq 0 ]; then
    log "no replica answers yet: nothing to check this primary against"
    return 0
  fi
  start_temp_server --skip-networking "$skip"
  local rc=0
  REACHABLE_KNOWN=1 primary_fence server || rc=1
  stop_temp_server "$ROOT_CNF"
  [ "$rc" -eq 0 ] || return 1
  event "primary: checked against ${REACHABLE[*]%%.*}: no replica holds a transaction this server lacks"
}

# The reseed donor reseed_primary.yml named, if it is still valid: named for
# a recovery that has not expired (a failed run leaves it behind).
reseed_requested() {
  local donor until
  donor=$(cluster_state reseed-donor)
  [ -n "$donor" ] || return 1
  until=$(cluster_state reseed-donor-until)
  case $until in '' | *[!0-9]*) until=0 ;; esac
  if [ "$EPOCHSECONDS" -gt "$until" ]; then
    log "reseed-donor $donor in ConfigMap $NAME-state is stale (its recovery ended at epoch $until): not used"
    return 1
  fi
}

# Ordinal 0 without data in a cluster that has run (the role recorded it in
# ConfigMap <name>-state, or a replica that answers holds its data): its
# data lives on on the replicas, and a new empty primary would strand them.
refuse_empty_primary() {
  reseed_requested && return 0
  die "empty volume on the primary of an initialised cluster ($1): refusing to start a new, empty cluster under the replicas that hold its data. $RECOVERY"
}

# Set a stale primary's data aside on its volume (kept, not deleted) before a
# reseed replaces it.
set_aside_datadir() {
  local dir
  dir=$DATA_ROOT/set-aside/$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$dir"
  mv "$DATADIR" "$dir/data"
  [ ! -d "$STATE_DIR/replication" ] || mv "$STATE_DIR/replication" "$dir/replication"
  mkdir -p "$DATADIR" "$STATE_DIR/replication"
  rm -f "$STATE_DIR/done"
  event "reseed: the data this primary held is set aside in $dir (delete it once the cluster is verified)"
}

# The reseed donor must still be what reseed_primary.yml chose it for: the
# replica holding every transaction any replica that answers holds, and none
# of its own.
check_reseed_donor() {
  local from=$1 peer held out lacks own
  own=$(echo "SELECT $(own_transactions_sql)" | peer_sql "$from") || die "reseed donor $from does not answer"
  [ "$own" = 0 ] || die "reseed donor $from holds transactions of its own (written on it, not replicated): it cannot be the primary. $RECOVERY"
  reachable_replicas
  for peer in "${REACHABLE[@]}"; do
    [ "$peer" != "$from" ] || continue
    held=$(replicated_gtids "$peer") || continue
    [ -n "$held" ] || continue
    if [ "$FLAVOR" = mariadb ]; then
      out=$(echo 'SELECT @@GLOBAL.gtid_current_pos' | peer_sql "$from") || die "reseed donor $from does not answer"
      lacks=$(mariadb_ahead "$held" "$out")
    else
      lacks=$(printf "SELECT REPLACE(GTID_SUBTRACT('%s', @@GLOBAL.gtid_executed), '\\\\n', '')\n" "$held" | peer_sql "$from") ||
        die "reseed donor $from does not answer"
    fi
    [ -z "$lacks" ] || die "reseed donor $from is no longer the most advanced replica: ${peer%%.*} holds $lacks, which it lacks. $RECOVERY"
  done
}

# Copy the replica that reseed_primary.yml chose, then make the copy the
# primary: no replication source, and (MariaDB) a binlog state that carries
# on the GTIDs the replicas hold, so they follow it with GTID.
reseed_primary() {
  local donor from pos
  donor=$(cluster_state reseed-donor)
  case $donor in "$NAME"-[1-9]*) ;; *) die "reseed-donor '$donor' in ConfigMap $NAME-state is no replica of $NAME" ;; esac
  # By name when it resolves; else the pod address the playbook recorded
  # (the headless Service may not publish a replica whose source is away).
  # The name the cluster certificate covers (TLS checks the donor by it).
  from=$(pod_host "${donor##*-}")
  getent hosts "$from" >/dev/null 2>&1 || from=$(cluster_state reseed-donor-address)
  [ -n "$from" ] || die "cannot reach reseed donor $donor: its name does not resolve and no address was recorded"
  check_reseed_donor "$from"
  event "reseed: copying replica $donor ($from) into the primary"
  case $COPY_METHOD in
  clone)
    copy_by_clone "$from"
    sql "$ROOT_CNF" <<<'RESET REPLICA ALL;'
    ;;
  mariabackup)
    copy_by_stream "$from"
    pos=$(sql "$ROOT_CNF" <<<'SELECT @@GLOBAL.gtid_slave_pos')
    pos=${pos:-$BINLOG_GTID}
    [ -n "$pos" ] || die "the copy of $donor holds no GTID position"
    sql "$ROOT_CNF" <<SQL
RESET SLAVE ALL;
RESET MASTER;
SET GLOBAL gtid_binlog_state = '$pos';
SQL
    ;;
  *) die "reseeding the primary needs GTID: not supported with copy method '$COPY_METHOD'" ;;
  esac
  event "reseed: primary made from $donor at GTID $(sql "$ROOT_CNF" <<<"SELECT @@GLOBAL.$([ "$FLAVOR" = mariadb ] && echo gtid_binlog_pos || echo gtid_executed)" | tr -d '\n')"
  stop_temp_server "$ROOT_CNF"
}

# Stream flavors keep the replication connection (its password included)
# off the datadir, which the donor sidecar reads to serve backups: a volume
# of an older version has them in the datadir, moved here once.
place_replication_info() {
  [ "$COPY_METHOD" = mariabackup ] || [ "$COPY_METHOD" = xtrabackup ] || return 0
  local f
  mkdir -p "$STATE_DIR/replication"
  for f in master.info relay-log.info; do
    if [ -f "$DATADIR/$f" ] && [ ! -e "$STATE_DIR/replication/$f" ]; then
      mv "$DATADIR/$f" "$STATE_DIR/replication/$f"
      log "moved $f out of the datadir"
    fi
  done
}

# done: the volume holds this cluster's data; said on the volume itself too.
mark_done() {
  record_version
  touch "$STATE_DIR/done"
  [ -f "$STATE_DIR/cluster" ] || printf 'cluster %s/%s, data since %s\n' "$NAMESPACE" "$NAME" "$(date -u +%FT%TZ)" >"$STATE_DIR/cluster"
  rm -f "$STATE_DIR/in-progress"
  event "done-marker written"
}

main() {
  prepare_run_dir
  write_server_config
  write_client_cnf "$NOPASS_CNF" root "" "$TEMP_SOCKET"
  write_client_cnf "$ROOT_CNF" root root-password "$TEMP_SOCKET"
  prepare_data_root
  place_replication_info
  if [ -f "$STATE_DIR/done" ]; then
    if [ "$ORDINAL" -gt 0 ]; then
      # A returning replica: resume only what the primary can still serve.
      returning_replica_check
      if [ -n "$RECOPY_REASON" ]; then
        recopy_replica "$RECOPY_REASON"
        return 0
      fi
    elif ! check_primary_against_replicas; then
      if reseed_requested; then
        set_aside_datadir
        touch "$STATE_DIR/in-progress"
        reseed_primary
        mark_done
        return 0
      fi
      die "this primary is behind its replicas:$FENCE_WHY refusing to serve, so that nothing they hold is lost or diverges (its volume may be an older copy, or lost writes in a crash). $RECOVERY; its own data is set aside on its volume, not deleted"
    fi
    upgrade_datadir
    log "data present (done-marker found): nothing to copy, not re-pointing"
    return 0
  fi
  if [ -f "$STATE_DIR/restored" ]; then
    finish_restore
    mark_done
    return 0
  fi
  if [ -d "$DATADIR" ] && [ -n "$(ls -A "$DATADIR")" ]; then
    # Only data we started to write ourselves is ever wiped.
    [ -f "$STATE_DIR/in-progress" ] ||
      die "$DATADIR holds data that stateful.mysql did not create; refusing to touch it (move it away or restore the done-marker)"
    event "unfinished first start found (no done-marker): wiping the partial datadir and starting over"
    wipe_datadir
  fi
  local initialised=
  if [ "$ORDINAL" -eq 0 ]; then
    if [ "$(cluster_state initialised)" = true ]; then
      initialised=yes
      refuse_empty_primary "ConfigMap $NAME-state"
    elif ! primary_fence; then
      initialised=yes
      refuse_empty_primary "replicas hold its data:$FENCE_WHY"
    fi
  fi
  touch "$STATE_DIR/in-progress"
  if [ "$ORDINAL" -ne 0 ]; then
    copy_replica
  elif [ -n "$initialised" ]; then
    reseed_primary
  else
    init_primary
  fi
  mark_done
}

# Sourced by the backup and restore Jobs for its functions; run in the pods.
[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
