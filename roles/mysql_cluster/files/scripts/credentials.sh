#!/usr/bin/env bash
# Run by the credentials_rotate module inside the pods; no password crosses
# the exec's command line. Both modes read a count N on stdin, then N lines.
#
# credentials.sh refresh [TIMEOUT_SECONDS], in each container that logs in,
# once the module wrote new passwords to the credentials Secret: waits until
# the kubelet has updated this pod's mounted copy to the values the module
# expects (lines "KEY SHA256"; keys this container does not mount are
# skipped), then rewrites the container's option files from it, so that the
# probes and the donor log in with the new passwords before the servers
# forget the old ones.
#
# credentials.sh sql: runs the N lines (SQL statements) as root over the
# socket. MariaDB's root@localhost holds READ_ONLY ADMIN, which a replica's
# account statements need (root@'%' does not: it must not write there).
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh

read -r n
case $n in '' | *[!0-9]*) die "expected a count on stdin, got '$n'" ;; esac

if [ "${1:-}" = sql ]; then
  lines=()
  for ((i = 0; i < n; i++)); do
    IFS= read -r line
    lines+=("$line")
  done
  printf '%s\n' "${lines[@]}" | sql "$CLIENT_DIR/root.cnf"
  exit 0
fi
[ "${1:-}" = refresh ] || die "usage: credentials.sh refresh [TIMEOUT_SECONDS] | credentials.sh sql"
timeout_s=${2:-180}
declare -A want=()
for ((i = 0; i < n; i++)); do
  read -r key sum
  want[$key]=$sum
done

deadline=$((SECONDS + timeout_s))
while :; do
  stale=()
  for key in "${!want[@]}"; do
    [ -f "$SECRETS/$key" ] || continue
    sum=$(sha256sum <"$SECRETS/$key")
    [ "${sum%% *}" = "${want[$key]}" ] || stale+=("$key")
  done
  [ ${#stale[@]} -gt 0 ] || break
  [ "$SECONDS" -lt "$deadline" ] ||
    die "the mounted Secret still holds the previous ${stale[*]} after ${timeout_s}s: the kubelet has not updated it"
  sleep 1
done
if [ -f "$CLIENT_DIR/root.cnf" ]; then write_client_cnf "$CLIENT_DIR/root.cnf" root root-password; fi
if [ -f "$CLIENT_DIR/donor.cnf" ]; then write_client_cnf "$CLIENT_DIR/donor.cnf" "$DONOR_USER" clone-password; fi
log "option files rewritten from the updated Secret after ${SECONDS}s"
