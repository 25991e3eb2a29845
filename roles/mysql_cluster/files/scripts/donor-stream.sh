#!/usr/bin/env bash
# One backup, streamed to stdout (socat hands it to the verified peer).
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh

[ -n "$BACKUP_TOOL" ] || die "the image lacks mariadb-backup/xtrabackup"
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
log "streaming a backup to a peer"
"$BACKUP_TOOL" --defaults-file="$CLIENT_DIR/donor.cnf" --backup --stream=xbstream \
  --datadir="$DATADIR" --target-dir="$target"
log "backup stream finished"
