#!/usr/bin/env bash
# make ceph-e2e: start the one-node Ceph and, in the full tier, the v1.30
# control plane; run the tests in tests/ceph (the landing tier deselects
# those that need v1.30, tests/tiers.py); stop both by their recorded pids,
# even on failure. Extra arguments go to pytest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=$ROOT/.venv/bin/python
CACHE=${STATEFUL_MYSQL_CACHE:-$HOME/.cache/stateful-mysql}
TIER=${STATEFUL_MYSQL_TIER:-full}
start=$SECONDS

"$HERE/deps.sh"
cleanup() {
    rc=$?
    [ "$TIER" = landing ] || "$HERE/harness/k8s130.sh" down || true
    "$HERE/harness/ceph.sh" down || true
    echo "[ceph-e2e] exit $rc after $((SECONDS - start)) s; logs: \$CACHE/ceph-test/log, \$CACHE/ceph-k8s130/log, tests/output/ceph"
    exit $rc
}
trap cleanup EXIT

# Build first (may wait for the shared build lock), then start: a cold
# build must not count against the Ceph daemons' lifetime.
if [ "$TIER" != landing ]; then
    "$HERE/harness/k8s130.sh" build
fi
"$HERE/harness/ceph.sh" up
if [ "$TIER" != landing ]; then
    "$HERE/harness/k8s130.sh" up
    eval "$("$HERE/harness/k8s130.sh" env | sed 's/^/export /')"
fi
eval "$("$HERE/harness/ceph.sh" env | sed 's/^/export /')"

# The main cluster's kubeconfig for the CSI content test, when it runs.
if [ -z "${KUBECONFIG:-}" ] && [ -f "$CACHE/cluster/admin.kubeconfig" ]; then
    export KUBECONFIG=$CACHE/cluster/admin.kubeconfig
fi
cd "$ROOT"
mkdir -p "$CACHE/junit"
"$PY" -m pytest -q -p no:cacheprovider -rfE --junitxml="$CACHE/junit/ceph-e2e.xml" tests/ceph "$@"
