#!/usr/bin/env bash
# make ceph-e2e: start the one-node Ceph and the v1.30 control plane, run the
# tests in tests/ceph, and stop both by their recorded pids, even on failure.
# Extra arguments go to pytest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=$ROOT/.venv/bin/python
start=$SECONDS

"$HERE/deps.sh"
cleanup() {
    rc=$?
    "$HERE/harness/k8s130.sh" down || true
    "$HERE/harness/ceph.sh" down || true
    echo "[ceph-e2e] exit $rc after $((SECONDS - start)) s; logs: \$CACHE/ceph-test/log, \$CACHE/ceph-k8s130/log, tests/output/ceph"
    exit $rc
}
trap cleanup EXIT

# Build first (may wait for the shared build lock), then start: a cold
# build must not count against the Ceph daemons' lifetime.
"$HERE/harness/k8s130.sh" build
"$HERE/harness/ceph.sh" up
"$HERE/harness/k8s130.sh" up
eval "$("$HERE/harness/ceph.sh" env | sed 's/^/export /')"
eval "$("$HERE/harness/k8s130.sh" env | sed 's/^/export /')"

# The main cluster's kubeconfig for the CSI content test, when it runs.
CACHE=${STATEFUL_MYSQL_CACHE:-$HOME/.cache/stateful-mysql}
if [ -z "${KUBECONFIG:-}" ] && [ -f "$CACHE/cluster/admin.kubeconfig" ]; then
    export KUBECONFIG=$CACHE/cluster/admin.kubeconfig
fi
cd "$ROOT"
"$PY" -m pytest -q -p no:cacheprovider tests/ceph "$@"
