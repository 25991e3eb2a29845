#!/usr/bin/env bash
# Restore Job (restore.yml): fill the empty volume of a new cluster's
# ordinal 0 from backup BACKUP_ID, checking its checksum on the way, and
# leave the marker `restored` beside it. The primary's init container then
# gives it this cluster's accounts and a GTID history that carries on where
# the backup left off (init.sh finish_restore). Anything wrong: the volume is
# emptied again and the Job fails saying what.
# shellcheck source=init.sh
source /etc/stateful-mysql/scripts/init.sh
# shellcheck source=backup-key.sh
source /etc/stateful-mysql/scripts/backup-key.sh

BACKUP_ROOT=${BACKUP_ROOT:-/backups}
DIR=$BACKUP_ROOT/${BACKUP_ID:?BACKUP_ID is not set}

manifest_field() { grep -oE "\"$1\": (\"[^\"]*\"|[0-9]+)" "$DIR/manifest.json" | head -n 1 | sed -E 's/^"[^"]*": "?//; s/"$//'; }

# unpack: a stream of the backup's format on stdin into the datadir.
unpack() {
  case $FORMAT in
  xbstream) "$STREAM_TOOL" -x -C "$DATADIR" ;;
  tar) tar -x -C "$DATADIR" ;;
  esac
}

# extract FILE: the backup's data file into the datadir (decrypted on the
# way when it is encrypted), the sha256 of the stored file taken on the way
# (status 1 when it is not the manifest's).
extract() {
  local fifo=$TMPDIR/sum.fifo pid want
  rm -f "$fifo"
  mkfifo "$fifo"
  sha256sum <"$fifo" >"$TMPDIR/sum" &
  pid=$!
  if [ -n "$ENCRYPTION" ]; then
    tee "$fifo" <"$DIR/$1" | decrypt | unpack
  else
    tee "$fifo" <"$DIR/$1" | unpack
  fi
  wait "$pid"
  want=$(cut -c1-64 "$DIR/data.sha256")
  [ "$(cut -c1-64 "$TMPDIR/sum")" = "$want" ]
}

main_restore() {
  local file from_flavor server gtid start seconds
  [ -f "$DIR/manifest.json" ] || die "no backup $BACKUP_ID under the backup volume (no $BACKUP_ID/manifest.json)"
  file=$(manifest_field file)
  FORMAT=$(manifest_field format)
  from_flavor=$(manifest_field flavor)
  server=$(manifest_field server_version)
  gtid=$(manifest_field gtid)
  ENCRYPTION=$(manifest_field encryption)
  case $FORMAT in xbstream | tar) ;; *) die "unknown backup format '$FORMAT'" ;; esac
  # restore.yml checked these before it made anything; checked again here,
  # the last step before data is written.
  [ "$from_flavor" = "$FLAVOR" ] || die "backup $BACKUP_ID is of $from_flavor, this cluster runs $FLAVOR: nothing was changed"
  [ -n "$LOCAL_VERSION" ] || die "cannot read the server version of this image"
  [ "$(printf '%s\n%s\n' "$server" "$LOCAL_VERSION" | sort -V | tail -n 1)" = "$LOCAL_VERSION" ] ||
    die "backup $BACKUP_ID is of server $server, newer than this image's $LOCAL_VERSION: nothing was changed"
  if [ -n "$ENCRYPTION" ]; then
    [ "$ENCRYPTION" = "$ENCRYPTION_SCHEME" ] || die "backup $BACKUP_ID is encrypted with '$ENCRYPTION', which this release does not read; the volume was not written"
    key_mounted || die "backup $BACKUP_ID is encrypted: name the Secret holding its key with mysql_cluster_backup_encryption_secret; the volume was not written"
    check_key
    [ "$(key_check "$BACKUP_ID")" = "$(manifest_field key_check)" ] ||
      die "the key in the Secret of mysql_cluster_backup_encryption_secret is not the one backup $BACKUP_ID was encrypted with; the volume was not written"
  fi
  prepare_run_dir
  prepare_data_root
  if [ -f "$STATE_DIR/done" ] || [ -n "$(ls -A "$DATADIR")" ]; then
    die "the volume of $NAME-0 holds data already: a restore only fills a new cluster's empty volume; nothing was changed"
  fi
  event "restore: backup $BACKUP_ID ($from_flavor $server, GTID $gtid) into $NAME-0 started"
  start=$EPOCHREALTIME
  if ! extract "$file"; then
    wipe_datadir
    die "backup $BACKUP_ID: the checksum of $file is not the one its manifest records (data.sha256): the backup is damaged; the volume was emptied again"
  fi
  if [ "$FORMAT" = xbstream ]; then
    check_backup "$DATADIR" || {
      wipe_datadir
      die "backup $BACKUP_ID is incomplete: $BACKUP_PROBLEM"
    }
    "${BACKUP_TOOL:?the image lacks mariadb-backup}" --prepare --target-dir="$DATADIR" 2>"$TMPDIR/prepare.log" || {
      wipe_datadir
      die "preparing backup $BACKUP_ID failed: $(tail -n 5 "$TMPDIR/prepare.log" | tr '\n' ' ')"
    }
  fi
  printf '%s\n' "$server" >"$STATE_DIR/server-version"
  # What finish_restore reads; user names are [A-Za-z0-9_] (validate.yml).
  printf 'id=%s\ngtid=%s\nflavor=%s\nserver=%s\nreplication_user=%s\ndonor_user=%s\n' "$BACKUP_ID" "$gtid" \
    "$from_flavor" "$server" "$(manifest_field replication_user | tr -cd 'A-Za-z0-9_')" \
    "$(manifest_field donor_user | tr -cd 'A-Za-z0-9_')" >"$STATE_DIR/restored"
  sync -f "$DATADIR"
  seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  event "restore: backup $BACKUP_ID extracted, checksum verified$([ "$FORMAT" != xbstream ] || echo ', prepared') in $seconds s; the primary's first start finishes it"
  # The Job's result (stateful.mysql.job_run): what restore.yml reports.
  printf '{"id": "%s", "bytes": %s, "seconds": %s}\n' "$BACKUP_ID" "$(stat -c %s "$DIR/$file")" "$seconds"
}

main_restore
