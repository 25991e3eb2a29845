#!/usr/bin/env bash
# mark-recopy.sh REASON: run by the role (exec in the server container) on a
# replica that waiting cannot heal. Marks its volume so that the next start
# of the pod wipes it and copies afresh; the role then deletes the pod.
# shellcheck source=lib.sh
source /etc/stateful-mysql/scripts/lib.sh

[ "$ORDINAL" -gt 0 ] || die "refusing to mark the primary ($HOST) for a re-copy"
[ -f "$STATE_DIR/done" ] || die "no done-marker on $HOST: its first copy has not finished, nothing to re-copy"
printf '%s\n' "${1:-requested by the role}" >"$STATE_DIR/recopy"
event "marked for a re-copy: ${1:-requested by the role}"
