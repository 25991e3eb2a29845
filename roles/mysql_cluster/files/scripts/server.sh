#!/usr/bin/env bash
# Main container: run the server on the config the init container wrote.
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh

[ -f "$STATE_DIR/done" ] || die "no done-marker on the volume: the init container did not finish"
prepare_run_dir
# The probes log in through this file; it never leaves the pod's tmpfs.
write_client_cnf "$CLIENT_DIR/root.cnf" root root-password
exec "$MYSQLD" --defaults-file="$CONF_DIR/my.cnf" "${SERVER_USER_OPT[@]}"
