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
