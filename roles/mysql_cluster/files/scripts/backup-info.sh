#!/usr/bin/env bash
# Reading what a physical backup recorded: sourced by init.sh, and by the
# unit tests on their own (no server, no cluster needed).

# backup_file DIR NAME: the backup's NAME file under its MariaDB 11.1+ name
# (mariadb_backup_NAME) or its older one (xtrabackup_NAME); fails if neither.
backup_file() {
  local f
  for f in "$1/mariadb_backup_$2" "$1/xtrabackup_$2"; do
    if [ -s "$f" ]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  return 1
}

# read_binlog_info FILE: sets BINLOG_FILE and BINLOG_POS, and BINLOG_GTID
# when there is a third field (MariaDB: 'binlog.000002<TAB>339<TAB>0-100-8').
# Fails on anything else.
read_binlog_info() {
  BINLOG_FILE='' BINLOG_POS='' BINLOG_GTID=''
  # shellcheck disable=SC2034 # BINLOG_GTID is read by the sourcing script
  IFS=$'\t ' read -r BINLOG_FILE BINLOG_POS BINLOG_GTID <"$1" || true
  [ -n "$BINLOG_FILE" ] || return 1
  case $BINLOG_POS in '' | *[!0-9]*) return 1 ;; esac
  return 0
}

# check_backup DIR: what init.sh checks in a received backup before preparing
# it (the unit tests run this same function). Sets BINLOG_*; when something is
# missing or unreadable, sets BACKUP_PROBLEM to what is wrong and fails.
check_backup() {
  local info
  # shellcheck disable=SC2034 # BACKUP_PROBLEM is read by the sourcing script
  BACKUP_PROBLEM=""
  if ! backup_file "$1" checkpoints >/dev/null; then
    BACKUP_PROBLEM="incomplete backup: no mariadb_backup_checkpoints or xtrabackup_checkpoints"
  elif ! info=$(backup_file "$1" binlog_info); then
    BACKUP_PROBLEM="incomplete backup: no mariadb_backup_binlog_info or xtrabackup_binlog_info"
  elif ! read_binlog_info "$info"; then
    BACKUP_PROBLEM="cannot parse $info: $(head -c 200 "$info")"
  fi
  [ -z "$BACKUP_PROBLEM" ]
}
