#!/usr/bin/env bash
# A throwaway one-node Ceph for the Ceph modules' and role's tests:
# one mon, one mgr, one memstore OSD, cephx on, everything on 127.0.0.1.
#
#   ceph.sh up       fresh cluster (old data wiped), waits until the OSD is up
#   ceph.sh down     stops the daemons by the pids recorded at start
#   ceph.sh status   pids and `ceph -s`
#   ceph.sh env      prints CEPH_CONF=... lines for the tests
#
# State (conf, keyrings, data, pids) lives in $STATE; each daemon's log in
# $STATE/log and is kept after `down`. No key ever appears on a command line.
set -euo pipefail

CACHE=${STATEFUL_MYSQL_CACHE:-$HOME/.cache/stateful-mysql}
STATE=${CEPH_TEST_STATE:-$CACHE/ceph-test}
CONF=$STATE/ceph.conf
ADMIN_KEYRING=$STATE/ceph.client.admin.keyring
LOG=$STATE/log
RUN=$STATE/run
MON_ID=a
MGR_ID=x

say() { printf '[ceph %s] %s\n' "$(date +%T)" "$*"; }
die() { printf '[ceph %s] ERROR: %s\n' "$(date +%T)" "$*" >&2; exit 1; }

need() {
    local b
    for b in ceph ceph-mon ceph-mgr ceph-osd ceph-authtool monmaptool rbd; do
        command -v "$b" >/dev/null || die "$b not found: apt-get install --no-install-recommends ceph-mon ceph-mgr ceph-osd ceph-common"
    done
}

c() { ceph --conf "$CONF" --connect-timeout 10 "$@"; }

# Show the tail of a daemon's logs and fail.
fail_daemon() {
    local name=$1
    echo "--- tail of $LOG/$name.out" >&2
    tail -n 20 "$LOG/$name.out" >&2 || true
    echo "--- tail of $LOG/ceph-$name.log" >&2
    tail -n 20 "$LOG/ceph-$name.log" >&2 || true
    die "$name failed to start (logs above; full logs in $LOG)"
}

start_daemon() { # name binary args...
    local name=$1; shift
    "$@" >"$LOG/$name.out" 2>&1 &
    echo $! >"$RUN/$name.pid"
    say "started $name (pid $!)"
}

alive() { local p; p=$(cat "$RUN/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

wait_for() { # what seconds command...
    local what=$1 secs=$2 daemon=$3; shift 3
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        alive "$daemon" || fail_daemon "$daemon"
        [ $SECONDS -lt $end ] || { say "timed out after ${secs}s waiting for $what"; fail_daemon "$daemon"; }
        sleep 0.5
    done
}

write_conf() {
    local fsid=$1
    cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon initial members = $MON_ID
mon host = v2:127.0.0.1:3300,v1:127.0.0.1:6789
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon data avail warn = 1
mon data avail crit = 0
run dir = $RUN
admin socket = $RUN/\$cluster-\$name.asok
pid file = $RUN/\$cluster-\$name.pidfile
log file = $LOG/\$cluster-\$name.log
mon data = $STATE/mon/\$cluster-\$id
mgr data = $STATE/mgr/\$cluster-\$id
osd data = $STATE/osd/\$cluster-\$id
[mon]
keyring = $STATE/mon/\$cluster-\$id/keyring
[mgr]
keyring = $STATE/mgr/\$cluster-\$id/keyring
mgr initial modules = iostat
[osd]
keyring = $STATE/osd/\$cluster-\$id/keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd max object name len = 256
osd max object namespace len = 64
[client]
keyring = $ADMIN_KEYRING
log file = $LOG/client.log
EOF
}

up() {
    need
    local t0=$SECONDS
    if [ -d "$RUN" ] && ls "$RUN"/*.pid >/dev/null 2>&1; then
        down
    fi
    rm -rf "$STATE"
    mkdir -p "$STATE/mon/ceph-$MON_ID" "$STATE/mgr/ceph-$MGR_ID" "$LOG" "$RUN"
    chmod 700 "$STATE"
    local fsid
    fsid=$(cat /proc/sys/kernel/random/uuid)
    write_conf "$fsid"

    say "keys and monmap (fsid $fsid)"
    ceph-authtool --create-keyring "$STATE/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$ADMIN_KEYRING" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    chmod 600 "$ADMIN_KEYRING"
    ceph-authtool "$STATE/mon.keyring" --import-keyring "$ADMIN_KEYRING" >/dev/null
    monmaptool --create --addv "$MON_ID" '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' \
        --fsid "$fsid" "$STATE/monmap" >/dev/null
    ceph-mon --conf "$CONF" --mkfs -i "$MON_ID" --monmap "$STATE/monmap" \
        --keyring "$STATE/mon.keyring" >"$LOG/mkfs-mon.out" 2>&1 || { cat "$LOG/mkfs-mon.out" >&2; die "ceph-mon --mkfs failed"; }

    start_daemon "mon.$MON_ID" ceph-mon --conf "$CONF" -i "$MON_ID" -f
    wait_for "the monitor" 30 "mon.$MON_ID" c mon stat
    say "monitor answers after $((SECONDS - t0)) s"

    c auth get-or-create "mgr.$MGR_ID" mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
        -o "$STATE/mgr/ceph-$MGR_ID/keyring" >/dev/null
    start_daemon "mgr.$MGR_ID" ceph-mgr --conf "$CONF" -i "$MGR_ID" -f

    local uuid id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(c osd new "$uuid")
    mkdir -p "$STATE/osd/ceph-$id"
    ceph-osd --conf "$CONF" -i "$id" --mkfs --mkkey --no-mon-config --osd-uuid "$uuid" >"$LOG/mkfs-osd.$id.out" 2>&1 \
        || { cat "$LOG/mkfs-osd.$id.out" >&2; die "ceph-osd --mkfs failed"; }
    # The OSD generated its own key in its keyring; register it from that file.
    c auth add "osd.$id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
        -i "$STATE/osd/ceph-$id/keyring" >/dev/null
    start_daemon "osd.$id" ceph-osd --conf "$CONF" -i "$id" -f
    wait_for "osd.$id up" 60 "osd.$id" osd_up "$id"
    wait_for "the mgr" 60 "mgr.$MGR_ID" mgr_up
    say "Ceph up in $((SECONDS - t0)) s: $(c health 2>/dev/null)"
    echo "$((SECONDS - t0))" >"$STATE/startup-seconds"
}

osd_up() { c osd dump -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(o["osd"]==int(sys.argv[1]) and o["up"] for o in d["osds"]) else 1)' "$1"; }
mgr_up() { c mgr dump -f json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("available") else 1)'; }

down() {
    local f name pid n
    [ -d "$RUN" ] || { say "not running"; return 0; }
    # Reverse start order: OSDs, mgr, then mon.
    for f in "$RUN"/osd.*.pid "$RUN"/mgr.*.pid "$RUN"/mon.*.pid; do
        [ -e "$f" ] || continue  # a pattern that matched nothing
        name=$(basename "$f" .pid)
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            n=0
            while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
            if kill -0 "$pid" 2>/dev/null; then
                say "$name (pid $pid) ignored TERM for 10 s: KILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            say "stopped $name (pid $pid)"
        fi
        rm -f "$f"
    done
    say "logs kept in $LOG"
}

status() {
    local f
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] || { echo "not running"; return 1; }
        if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"
        else echo "$(basename "$f" .pid): DEAD (pid $(cat "$f"))"; fi
    done
    c -s
}

env_lines() {
    echo "CEPH_TEST_CONF=$CONF"
    echo "CEPH_TEST_KEYRING=$ADMIN_KEYRING"
    echo "CEPH_TEST_STATE=$STATE"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_lines ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
