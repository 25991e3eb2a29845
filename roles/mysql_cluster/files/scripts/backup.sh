#!/usr/bin/env bash
# Backup Job (backup.yml, and the CronJob of mysql_cluster_backup_schedule):
# one consistent physical backup of this cluster, from a Ready replica (the
# primary only when the cluster has one pod, and it says so), streamed into
# BACKUP_ROOT/<id>/ with its checksum and manifest. Nothing of it is held in
# memory or on a data volume: MariaDB's comes as the donor's backup stream,
# MySQL's is cloned into this Job's own scratch volume (CLONE ... DATA
# DIRECTORY), then streamed. The manifest is written last, in a directory
# renamed into place only then: a backup without one is unfinished, never
# listed nor restored. Prints the manifest as its last line.
# shellcheck source=init.sh
source /etc/stateful-mysql/scripts/init.sh
# shellcheck source=backup-key.sh
source /etc/stateful-mysql/scripts/backup-key.sh

BACKUP_ROOT=${BACKUP_ROOT:-/backups}
ID=${BACKUP_ID:-$NAME-$(date -u +%Y%m%dT%H%M%SZ)}
# Retention (0: no limit): the newest KEEP_COUNT of this cluster's backups,
# none older than KEEP_DAYS; the newest one is always kept.
KEEP_COUNT=${KEEP_COUNT:-0}
KEEP_DAYS=${KEEP_DAYS:-0}
WORK=$BACKUP_ROOT/.$ID.partial
DEST=$BACKUP_ROOT/$ID

trap 'rm -rf "$WORK"' EXIT

choose_source() {
  find_donors
  [ "${#DONORS[@]}" -gt 0 ] || die "no server to back up from:$NO_DONOR_WHY"
  SOURCE=${DONORS[0]}
  if [ "$SOURCE" = "$PRIMARY_HOST" ]; then
    # find_donors falls back to the primary when no replica is healthy: a
    # backup of a cluster with replicas never loads its primary.
    getent hosts "$(pod_host 1)" >/dev/null 2>&1 &&
      die "no Ready replica to back up from (see 'not a donor' above): a cluster with replicas is never backed up from its primary. Bring a replica back (verify.yml says what is wrong) and run it again"
    log "a one-pod cluster: backing up from the primary $SOURCE"
  fi
  log "backing up from $SOURCE"
}

# stream_to FILE: stdin into FILE (encrypted first when a key is mounted)
# and the sha256 of what is stored into $TMPDIR/sum (it runs at the end of a
# pipeline: stream_result reads both back). The checksum is the stored
# file's: restore.yml checks it without the key.
stream_to() {
  local fifo=$TMPDIR/sum.fifo pid
  rm -f "$fifo"
  mkfifo "$fifo"
  sha256sum <"$fifo" >"$TMPDIR/sum" &
  pid=$!
  if [ -n "$ENCRYPTION" ]; then
    encrypt | tee "$fifo" >"$1"
  else
    tee "$fifo" >"$1"
  fi
  wait "$pid"
}

# stream_result FILE: SUM and SIZE of what stream_to wrote.
stream_result() {
  SUM=$(cut -c1-64 "$TMPDIR/sum")
  SIZE=$(stat -c %s "$1")
  [ "${#SUM}" -eq 64 ] || die "no checksum of $1"
}

# MariaDB: the donor sidecar's stream (the client certificate of this
# cluster), kept as it comes; xbstream-pick.sh takes the binlog position and
# checkpoints out of it on the way (mbstream would write every file).
take_stream() {
  local meta=$TMPDIR/meta fifo=$TMPDIR/meta.fifo pid rc=0
  FILE=data.xbstream${ENCRYPTION:+.enc} FORMAT=xbstream METHOD=mariadb-backup
  mkdir -p "$meta"
  rm -f "$fifo"
  mkfifo "$fifo"
  bash /etc/stateful-mysql/scripts/xbstream-pick.sh "$meta" mariadb_backup_binlog_info xtrabackup_binlog_info \
    mariadb_backup_checkpoints xtrabackup_checkpoints <"$fifo" &
  pid=$!
  copy_start
  socat -d -d -T "$STREAM_IDLE_SECONDS" -u "OPENSSL:$SOURCE:$DONOR_PORT,cert=$TLS_DIR/tls.crt,key=$TLS_DIR/tls.key,cafile=$TLS_DIR/ca.crt,commonname=$PEER_CN" \
    STDOUT 2>"$TMPDIR/socat.log" | tee "$fifo" | stream_to "$WORK/$FILE" || rc=$?
  wait "$pid" || rc=$?
  copy_end
  grep -E ' [EW] ' "$TMPDIR/socat.log" >&2 || true
  ! grep -q 'inactivity timeout triggered' "$TMPDIR/socat.log" || die "the stream from $SOURCE stalled: no byte for ${STREAM_IDLE_SECONDS}s"
  [ "$rc" -eq 0 ] || die "receiving the stream from $SOURCE failed (status $rc)"
  check_backup "$meta" || die "the stream from $SOURCE is incomplete: $BACKUP_PROBLEM"
  stream_result "$WORK/$FILE"
  GTID=$BINLOG_GTID
}

# MySQL: CLONE ... DATA DIRECTORY into this Job's scratch volume from a
# private recipient server (it holds nothing and serves no one), then a tar
# stream of that directory.
take_clone() {
  local donor target=$DATA_ROOT/clone out i status
  FILE=data.tar${ENCRYPTION:+.enc} FORMAT=tar METHOD=clone
  initialize_datadir
  start_temp_server --bind-address=127.0.0.1 --port="$TEMP_PORT" --skip-replica-start --super-read-only=OFF
  donor=$(sql_quote "$(secret clone-password)")
  # A donor serves one clone at a time (error 3634): ask again a while.
  for i in $(seq 1 60); do
    rm -rf "$target"
    copy_start
    set +e
    out=$(sql "$NOPASS_CNF" 2>&1 <<SQL
SET GLOBAL clone_valid_donor_list = '$SOURCE:$PORT';
CLONE INSTANCE FROM '$DONOR_USER'@'$SOURCE':$PORT IDENTIFIED BY $donor DATA DIRECTORY = '$target' REQUIRE SSL;
SQL
    )
    status=$?
    set -e
    copy_end
    [ "$status" -ne 0 ] || break
    grep -q 3634 <<<"$out" || die "clone from $SOURCE failed: $(tr '\n' ' ' <<<"$out" | head -c 300)"
    [ "$i" -lt 60 ] || die "$SOURCE stayed busy serving another clone for 180 s"
    log "$SOURCE serves another clone (error 3634): asking again"
    sleep 3
  done
  status=$(sql "$NOPASS_CNF" <<<"SELECT STATE FROM performance_schema.clone_status")
  [ "$status" = Completed ] || die "clone status is '$status', not Completed"
  stop_temp_server "$NOPASS_CNF"
  # clone_status names no GTID set for a clone into a directory: a private
  # server started once on the copy (grant tables skipped, no binary log, no
  # replication) says it, and proves the copy starts. Its new auto.cnf goes,
  # so that each restore gets a server_uuid of its own.
  # A small redo log (the smallest capacity) keeps the backup small: the
  # restored server resizes it to its own setting.
  start_temp_server --datadir="$target" --skip-networking --skip-grant-tables --skip-replica-start --disable-log-bin \
    --innodb-redo-log-capacity=8388608
  GTID=$(sql "$NOPASS_CNF" <<<"SELECT REPLACE(@@GLOBAL.gtid_executed, '\\n', '')")
  stop_temp_server "$NOPASS_CNF"
  rm -f "$target/auto.cnf"
  copy_start
  tar -C "$target" -cf - . | stream_to "$WORK/$FILE"
  copy_end
  stream_result "$WORK/$FILE"
  rm -rf "$target"
}

# elapsed: seconds since START_TIME, to the millisecond.
elapsed() { awk -v a="$START_TIME" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
# COPY_SECONDS: the time spent moving data (the stream; the clone and its
# tar), without the private servers' start-up: what the manifest and the
# bench set against the disk's speed.
COPY_SECONDS=0
copy_start() { COPY_FROM=$EPOCHREALTIME; }
copy_end() { COPY_SECONDS=$(awk -v s="$COPY_SECONDS" -v a="$COPY_FROM" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", s + b - a }'); }

json_string() {
  local v=${1//\\/\\\\}
  printf '"%s"' "${v//\"/\\\"}"
}

write_manifest() {
  local now
  now=$(date -u +%FT%TZ)
  printf '%s  %s\n' "$SUM" "$FILE" >"$WORK/data.sha256"
  printf '{"id": %s, "cluster": %s, "namespace": %s, "flavor": %s, "version": %s, "server_version": %s, "method": %s, "source": %s, "file": %s, "format": %s, "size": %s, "sha256": %s, "gtid": %s, "binlog_file": %s, "binlog_position": %s, "replication_user": %s, "donor_user": %s, "encryption": %s, "key_check": %s, "started": %s, "finished": %s, "seconds": %s, "copy_seconds": %s}\n' \
    "$(json_string "$ID")" "$(json_string "$NAME")" "$(json_string "$NAMESPACE")" "$(json_string "$FLAVOR")" \
    "$(json_string "$VERSION")" "$(json_string "$LOCAL_VERSION")" "$(json_string "$METHOD")" \
    "$(json_string "${SOURCE%%.*}")" "$(json_string "$FILE")" "$(json_string "$FORMAT")" "$SIZE" \
    "$(json_string "$SUM")" "$(json_string "$GTID")" "$(json_string "${BINLOG_FILE:-}")" "${BINLOG_POS:-0}" \
    "$(json_string "$REPL_USER")" "$(json_string "$DONOR_USER")" \
    "$(json_string "$ENCRYPTION")" "$(json_string "$KEY_CHECK")" \
    "$(json_string "$STARTED")" "$(json_string "$now")" "$(elapsed)" "$COPY_SECONDS" >"$WORK/manifest.json"
}

# id_epoch ID: the time in a backup id (<name>-YYYYmmddTHHMMSSZ), in seconds.
id_epoch() {
  local t=${1##*-}
  date -u -d "${t:0:4}-${t:4:2}-${t:6:2}T${t:9:2}:${t:11:2}:${t:13:2}Z" +%s
}

# prune: retention over this cluster's finished backups (newest first).
prune() {
  local ids=() id n=0 cutoff=0
  [ "$KEEP_COUNT" -gt 0 ] || [ "$KEEP_DAYS" -gt 0 ] || return 0
  [ "$KEEP_DAYS" -le 0 ] || cutoff=$((EPOCHSECONDS - KEEP_DAYS * 86400))
  while IFS= read -r id; do ids+=("$id"); done < <(
    for f in "$BACKUP_ROOT/$NAME"-*/manifest.json; do
      [ -f "$f" ] || continue
      grep -q "\"cluster\": $(json_string "$NAME"), \"namespace\": $(json_string "$NAMESPACE")," "$f" || continue
      f=${f%/manifest.json}
      printf '%s\n' "${f##*/}"
    done | sort -r
  )
  for id in "${ids[@]}"; do
    n=$((n + 1))
    [ "$n" -gt 1 ] || continue
    if { [ "$KEEP_COUNT" -gt 0 ] && [ "$n" -gt "$KEEP_COUNT" ]; } || [ "$(id_epoch "$id")" -lt "$cutoff" ]; then
      rm -rf "${BACKUP_ROOT:?}/$id"
      log "retention: deleted backup $id"
    fi
  done
}

main_backup() {
  case $ID in "$NAME"-[0-9]*T[0-9]*Z) ;; *) die "backup id '$ID' is not <name>-YYYYmmddTHHMMSSZ" ;; esac
  [ -d "$BACKUP_ROOT" ] || die "no backup volume at $BACKUP_ROOT"
  ENCRYPTION="" KEY_CHECK=""
  if key_mounted; then
    check_key
    ENCRYPTION=$ENCRYPTION_SCHEME KEY_CHECK=$(key_check "$ID")
    [ -n "$KEY_CHECK" ] || die "cannot use the backup encryption key (openssl enc failed)"
  fi
  [ ! -e "$DEST" ] || die "backup $ID exists already"
  STARTED=$(date -u +%FT%TZ)
  START_TIME=$EPOCHREALTIME
  prepare_run_dir
  write_server_config
  write_client_cnf "$NOPASS_CNF" root "" "$TEMP_SOCKET"
  prepare_data_root
  [ -n "$LOCAL_VERSION" ] || die "cannot read the server version of this image"
  choose_source
  rm -rf "$WORK"
  mkdir -p "$WORK"
  case $COPY_METHOD in
  clone) take_clone ;;
  mariabackup) take_stream ;;
  *) die "backups need the CLONE plugin or mariadb-backup (copy method '$COPY_METHOD')" ;;
  esac
  # On disk before the manifest says it is there.
  sync "$WORK/$FILE"
  write_manifest
  sync "$WORK/manifest.json" "$WORK/data.sha256"
  mv "$WORK" "$DEST"
  sync -f "$DEST"
  log "backup $ID: $SIZE bytes from ${SOURCE%%.*} at GTID $GTID in $(elapsed) s${ENCRYPTION:+, encrypted ($ENCRYPTION)}"
  prune
  cat "$DEST/manifest.json"
}

main_backup
