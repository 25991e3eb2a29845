#!/usr/bin/env bash
# First init container, only where the storage ignores fsGroup (hostPath):
# runs as root with CAP_CHOWN alone and hands the data volume's root to the
# server's uid, so that every other container runs as that uid.
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh

owner=$RUN_AS_USER:$RUN_AS_GROUP
# A volume written by root-run containers of an earlier release: root still
# owns the state folder. First, while root can still look inside the root.
if [ -d "$STATE_DIR" ] && [ "$(stat -c %u "$STATE_DIR")" = 0 ]; then
  chown -R "$owner" "$STATE_DIR"
fi
chown "$owner" "$DATA_ROOT"
log "data volume root owned by $owner"
# The backup volume of a backup Job (backup.sh writes there as that uid).
if [ "${JOB:-}" = backup ] && [ -d /backups ]; then
  chown "$owner" /backups
  log "backup volume root owned by $owner"
fi
