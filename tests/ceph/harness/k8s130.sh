#!/usr/bin/env bash
# A control-plane-only Kubernetes v1.30.14 (etcd, kube-apiserver,
# kube-controller-manager; no kubelet, no scheduler) for proving the in-tree
# kubernetes.io/rbd provisioner (removed in 1.31) against the one-node Ceph.
# The controller-manager runs with Debian's `rbd` on its PATH.
#
#   k8s130.sh build   builds (once, cached) etcd and the two v1.30 binaries
#                     with tests/cluster's build scripts, under the build lock
#   k8s130.sh up      fresh etcd data; starts the three; waits until ready
#   k8s130.sh down    stops them by the pids recorded at start
#   k8s130.sh status  pids and /readyz
#   k8s130.sh env     KUBECONFIG line for the tests
#
# Ports differ from the main test cluster's so both can run at once. Logs in
# $STATE/log, kept after `down`.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
LIB=$ROOT/tests/cluster/lib
# shellcheck source=/dev/null
. "$ROOT/tests/cluster/versions.env"
K8S_VERSION=${K8S130_VERSION:-v1.30.14}
CACHE=${STATEFUL_MYSQL_CACHE:-$HOME/.cache/stateful-mysql}
STATE=$CACHE/ceph-k8s130
PKI=$STATE/pki
LOG=$STATE/log
RUN=$STATE/run
K8S_BIN=$CACHE/bin/kubernetes-$K8S_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
ETCD_PORT=22379
ETCD_PEER_PORT=22380
API_PORT=16443
KCM_PORT=20257

say() { printf '[k8s130 %s] %s\n' "$(date +%T)" "$*"; }
die() { printf '[k8s130 %s] ERROR: %s\n' "$(date +%T)" "$*" >&2; exit 1; }

build() {
    local t0=$SECONDS
    "$LIB/build-etcd.sh" "$ETCD_VERSION"
    "$LIB/build-kubernetes.sh" "$K8S_VERSION" kube-apiserver kube-controller-manager
    say "binaries ready in $((SECONDS - t0)) s"
}

pki() {
    "$LIB/pki.sh" ca "$PKI" ceph-k8s130-ca
    "$LIB/pki.sh" sa "$PKI"
    "$LIB/pki.sh" cert "$PKI" apiserver kube-apiserver - server \
        DNS:kubernetes DNS:kubernetes.default DNS:kubernetes.default.svc \
        DNS:kubernetes.default.svc.cluster.local DNS:localhost IP:127.0.0.1 IP:10.98.0.1
    "$LIB/pki.sh" cert "$PKI" admin admin system:masters client
    "$LIB/pki.sh" cert "$PKI" controller-manager system:kube-controller-manager - client
}

kubeconfig() { # name cert
    cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ceph-k8s130
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $1
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: $1@ceph-k8s130
  context: {cluster: ceph-k8s130, user: $1}
current-context: $1@ceph-k8s130
EOF
    chmod 600 "$STATE/$1.kubeconfig"
}

start() { # name command...
    local name=$1; shift
    "$@" >"$LOG/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
    say "started $name (pid $!)"
}

alive() { local p; p=$(cat "$RUN/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

fail() {
    echo "--- tail of $LOG/$1.log" >&2
    tail -n 25 "$LOG/$1.log" >&2 || true
    die "$1 did not become ready (full log $LOG/$1.log)"
}

wait_for() { # name seconds command...
    local name=$1 secs=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        alive "$name" || fail "$name"
        [ $SECONDS -lt $end ] || fail "$name"
        sleep 0.3
    done
}

up() {
    if ! [ -x "$K8S_BIN/kube-apiserver" ] || ! [ -x "$K8S_BIN/kube-controller-manager" ] || ! [ -x "$ETCD_BIN/etcd" ]; then
        build
    fi
    command -v rbd >/dev/null || die "rbd not on PATH: apt-get install --no-install-recommends ceph-common"
    local t0=$SECONDS
    if ls "$RUN"/*.pid >/dev/null 2>&1; then down; fi
    rm -rf "$STATE/etcd" "$LOG" "$RUN"
    mkdir -p "$LOG" "$RUN" "$STATE/etcd"
    chmod 700 "$STATE"
    pki
    kubeconfig admin admin
    kubeconfig controller-manager controller-manager

    start etcd "$ETCD_BIN/etcd" --name ceph-k8s130 --data-dir "$STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "ceph-k8s130=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
    wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

    start kube-apiserver "$K8S_BIN/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
        --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
        --client-ca-file "$PKI/ca.crt" --authorization-mode RBAC \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
        --service-cluster-ip-range 10.98.0.0/16 --allow-privileged=true --profiling=false
    wait_for kube-apiserver 60 curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "https://127.0.0.1:$API_PORT/readyz"
    say "apiserver ready after $((SECONDS - t0)) s"

    # PATH: the in-tree RBD provisioner runs `rbd` (Debian's ceph-common).
    start kube-controller-manager env PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "$K8S_BIN/kube-controller-manager" \
        --kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
        --use-service-account-credentials=true \
        --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
        --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
        --profiling=false
    wait_for kube-controller-manager 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
    say "v1.30 control plane ready in $((SECONDS - t0)) s; KUBECONFIG=$STATE/admin.kubeconfig"
    echo "$((SECONDS - t0))" >"$STATE/startup-seconds"
}

down() {
    local name pid n
    for name in kube-controller-manager kube-apiserver etcd; do
        [ -f "$RUN/$name.pid" ] || continue
        pid=$(cat "$RUN/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            n=0
            while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
            kill -0 "$pid" 2>/dev/null && { say "$name ignored TERM: KILL"; kill -KILL "$pid" 2>/dev/null || true; }
            say "stopped $name (pid $pid)"
        fi
        rm -f "$RUN/$name.pid"
    done
    say "logs kept in $LOG"
}

status() {
    local name rc=0
    for name in etcd kube-apiserver kube-controller-manager; do
        if alive "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"
        else echo "$name: not running"; rc=1; fi
    done
    curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "https://127.0.0.1:$API_PORT/version" || rc=1
    return $rc
}

case "${1:-}" in
    build) build ;;
    up) up ;;
    down) down ;;
    status) status ;;
    env) echo "K8S130_KUBECONFIG=$STATE/admin.kubeconfig" ;;
    *) echo "usage: $0 build|up|down|status|env" >&2; exit 2 ;;
esac
