#!/usr/bin/env bash
# Shared by every script of the cluster: sourced, never run on its own.
# Settings come from the role (cluster.env); secrets only from mounted files.
# The variables below are used by the scripts that source this file.
# shellcheck disable=SC2034
set -Eeuo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# shellcheck source=/dev/null
source /etc/stateful-mysql/config/cluster.env

DATA_ROOT=/var/lib/mysql
DATADIR=$DATA_ROOT/data
# Markers and the event log live on the volume, beside the data they describe.
STATE_DIR=$DATA_ROOT/.stateful-mysql
CONF_DIR=/etc/stateful-mysql/server
RUN_DIR=/run/stateful-mysql
CLIENT_DIR=$RUN_DIR/client
SECRETS=/etc/stateful-mysql/credentials
TLS_DIR=/etc/stateful-mysql/tls
# The server's copy of the cluster certificate (the Secret's files are root's).
SERVER_TLS_DIR=/run/stateful-mysql/tls
SOCKET=$RUN_DIR/mysqld.sock
export TMPDIR=$RUN_DIR/tmp

HOST=${HOSTNAME:-$(hostname)}
ORDINAL=${HOST##*-}
# A backup or restore Job's pod (JOB=backup|restore) has no ordinal: it
# takes the primary's settings where a script needs one.
[ -z "${JOB:-}" ] || ORDINAL=0
case $ORDINAL in '' | *[!0-9]*)
  echo "cannot read the ordinal from hostname '$HOST'" >&2
  exit 1
  ;;
esac
SERVER_ID=$((SERVER_ID_BASE + ORDINAL))
# pod_host ORDINAL: a pod's name as peers dial it. The cluster certificate is
# valid for *.<service>.<namespace>.svc: OpenSSL accepts a wildcard only with
# two more labels after it, so the short <pod>.<service> would not verify.
pod_host() { printf '%s-%s.%s.%s.svc' "$NAME" "$1" "$SERVICE" "$NAMESPACE"; }
PRIMARY_HOST=$(pod_host 0)

# Say which command failed before set -e ends the script.
trap 'printf "%s %s [%s] ERROR: line %s failed: %s\n" "$(date -u +%FT%TZ)" "$HOST" "${0##*/}" "$LINENO" "$BASH_COMMAND" >&2' ERR

log() { printf '%s %s [%s] %s\n' "$(date -u +%FT%TZ)" "$HOST" "${0##*/}" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
# A persistent record of what was done to this volume: the tests count the
# copy and CHANGE events in it across container and pod restarts.
event() {
  mkdir -p "$STATE_DIR"
  printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$HOST" "$*" >>"$STATE_DIR/events.log"
  log "$*"
}

if [ "$FLAVOR" = mariadb ]; then
  MYSQLD=$(command -v mariadbd || command -v mysqld) || die "no mariadbd in the image"
  CLIENT=$(command -v mariadb || command -v mysql) || die "no mariadb client in the image"
  BACKUP_TOOL=$(command -v mariadb-backup || command -v mariabackup || true)
  STREAM_TOOL=$(command -v mbstream || true)
  READ_ONLY_VAR=read_only
else
  MYSQLD=$(command -v mysqld) || die "no mysqld in the image"
  CLIENT=$(command -v mysql) || die "no mysql client in the image"
  BACKUP_TOOL=$(command -v xtrabackup || true)
  STREAM_TOOL=$(command -v xbstream || true)
  READ_ONLY_VAR=super_read_only
fi

# server_version: this image's server version, X.Y.Z. A copy needs donor and
# recipient on the same one (CLONE refuses others; a backup is prepared by
# the recipient's mariadb-backup), and a volume records the last that ran it.
server_version() { "$MYSQLD" --version 2>/dev/null | grep -oE '[0-9]+[.][0-9]+[.][0-9]+' | head -n 1; }

# The pods run as the mysql uid (mysql_cluster_run_as_user); only a server
# started as root needs to be told to drop to the mysql user.
if [ "$(id -u)" -eq 0 ]; then SERVER_USER_OPT=(--user=mysql); else SERVER_USER_OPT=(); fi
# chown_if_root ARGS...: hand files to mysql when running as root; as the
# mysql uid they are ours already.
chown_if_root() { if [ "$(id -u)" -eq 0 ]; then chown "$@"; fi; }

# One secret value, read from the mounted Secret (never argv, never env).
secret() { cat "$SECRETS/$1"; }

# Quote for an option file: double quotes keep '#' and spaces; the parser
# understands \\ and \" inside them.
opt_quote() {
  local v=$1
  v=${v//\\/\\\\}
  v=${v//\"/\\\"}
  printf '"%s"' "$v"
}

# Quote for an SQL string literal (backslash escapes are on by default).
sql_quote() {
  local v=$1
  v=${v//\\/\\\\}
  v=${v//\'/\\\'}
  printf "'%s'" "$v"
}

# write_client_cnf FILE USER [SECRET_KEY] [SOCKET]: an option file only root reads.
write_client_cnf() {
  local file=$1 user=$2 key=${3:-} sock=${4:-$SOCKET}
  mkdir -p "$CLIENT_DIR"
  # A volume of its own in the pods (not ours to chmod); the files are 0600.
  if [ -O "$CLIENT_DIR" ]; then chmod 700 "$CLIENT_DIR"; fi
  # Written aside and renamed: a probe never reads half a file (credentials.sh
  # rewrites them while the probes run).
  (
    umask 077
    {
      for group in client mariadb-backup xtrabackup; do
        printf '[%s]\nuser=%s\nsocket=%s\n' "$group" "$user" "$sock"
        if [ -n "$key" ]; then printf 'password=%s\n' "$(opt_quote "$(secret "$key")")"; fi
      done
    } >"$file.new"
    mv -f "$file.new" "$file"
  )
}

# peer_tls_options: [client] lines for connections to another pod's server:
# TLS, the peer's certificate checked against the cluster CA and its name
# (<pod>.<service>.<namespace>.svc, see pod_host), for every peer connection.
peer_tls_options() {
  printf 'ssl-ca=%s\n' "$TLS_DIR/ca.crt"
  if [ "$FLAVOR" = mariadb ]; then
    printf 'ssl-verify-server-cert\n'
  else
    printf 'ssl-mode=VERIFY_IDENTITY\n'
  fi
}

# write_peer_cnf FILE HOST [USER] [SECRET_KEY]: an option file (only root
# reads it) for SQL over TCP to another pod's server; root by default.
write_peer_cnf() {
  local file=$1 host=$2 user=${3:-root} key=${4:-root-password}
  mkdir -p "$CLIENT_DIR"
  # As in write_client_cnf: the pods' volume is not ours to chmod.
  if [ -O "$CLIENT_DIR" ]; then chmod 700 "$CLIENT_DIR"; fi
  (
    umask 077
    {
      printf '[client]\nuser=%s\nhost=%s\nport=%s\nprotocol=TCP\nconnect-timeout=5\n' "$user" "$host" "$PORT"
      printf 'password=%s\n' "$(opt_quote "$(secret "$key")")"
      peer_tls_options
    } >"$file"
  )
}

# The MariaDB client prints a failing statement with its error (its
# print-query-on-error is on by default): statements that carry a password
# would put it in the container's log. MySQL's client has no such echo.
CLIENT_QUIET=()
[ "$FLAVOR" != mariadb ] || CLIENT_QUIET=(--skip-print-query-on-error)

# sql CNF: run SQL from stdin over the socket named in CNF.
sql() {
  local cnf=$1
  shift
  "$CLIENT" --defaults-extra-file="$cnf" --batch --skip-column-names "${CLIENT_QUIET[@]}" "$@"
}

# wipe_datadir: empty the datadir (ours: the caller has checked) and forget
# its replication connection, which lives beside it (common.cnf) and names
# relay logs of the data that goes.
wipe_datadir() {
  mkdir -p "$DATADIR"
  find "$DATADIR" -mindepth 1 -delete
  rm -rf "$STATE_DIR/replication"
  mkdir -p "$STATE_DIR/replication"
}

# The volume root may come root-only from the provisioner: the server
# (user mysql) must reach its datadir below it.
prepare_data_root() {
  mkdir -p "$DATADIR" "$STATE_DIR"
  chown_if_root mysql:mysql "$DATA_ROOT" "$DATADIR"
  # Storage that applies fsGroup leaves the root to root (group-writable).
  if [ -O "$DATA_ROOT" ]; then chmod 0750 "$DATA_ROOT"; fi
  chmod 0700 "$STATE_DIR"
}

prepare_run_dir() {
  mkdir -p "$RUN_DIR" "$TMPDIR"
  chown_if_root mysql:mysql "$RUN_DIR"
  if [ -O "$RUN_DIR" ]; then chmod 755 "$RUN_DIR"; fi
  chmod 700 "$TMPDIR"
  install_server_tls
}

# The server (user mysql) reads the CA, its certificate and key from the
# pod's memory volume; common.cnf names these paths.
install_server_tls() {
  local f
  for f in ca.crt tls.crt tls.key; do
    [ -s "$TLS_DIR/$f" ] || die "no $f in the TLS Secret mounted at $TLS_DIR"
  done
  mkdir -p "$SERVER_TLS_DIR"
  (
    umask 077
    # The init container's copies are read-only (the Secret's mode): replace
    # them rather than write into them, which only root could.
    for f in ca.crt tls.crt tls.key; do
      rm -f "$SERVER_TLS_DIR/$f"
      cp "$TLS_DIR/$f" "$SERVER_TLS_DIR/$f"
    done
  )
  chown_if_root -R mysql:mysql "$SERVER_TLS_DIR"
  chmod 700 "$SERVER_TLS_DIR"
}
