#!/usr/bin/env bash
# tests/ci.sh landing|full: one tier of the tests (README "Tests"), as
# `make test` (landing, what CI runs) and `make test-full` run it.
#
# 1. The local cluster's build and start go first, in the background: cold,
#    they are about 20 minutes of Go builds and debootstraps.
# 2. Meanwhile the checks that need no cluster: venv, lint, units, sanity.
# 3. Once the cluster is up, the cluster suites in two lanes (tests/lanes.sh).
# Every step's wall time goes to $CACHE/timings.tsv and each pytest suite's
# junit file to $CACHE/junit/; tests/ci_report.py reads them (.ci/run ends
# with its report).
set -uo pipefail
tier=${1:?usage: tests/ci.sh landing|full}
case $tier in landing | full) ;; *) echo "tests/ci.sh: tier '$tier': use landing or full" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.." || exit 2
CACHE=${STATEFUL_MYSQL_CACHE:-$HOME/.cache/stateful-mysql}
export STATEFUL_MYSQL_CACHE=$CACHE STATEFUL_MYSQL_TIER=$tier STATEFUL_MYSQL_REQUIRE_CLUSTER=1
mkdir -p "$CACHE/logs"
timings=$CACHE/timings.tsv
# The previous run's junit files stay one generation.
rm -rf "$CACHE/junit.prev"
[ -d "$CACHE/junit" ] && mv "$CACHE/junit" "$CACHE/junit.prev"
mkdir -p "$CACHE/junit"
# Warm means the cluster's binaries are built already (tests/cluster/up.sh).
if compgen -G "$CACHE/bin/kubernetes-*/kube-apiserver" >/dev/null; then cache=warm; else cache=cold; fi
printf 'tier\t%s\t%s\t%s\n' "$tier" "$cache" "$(date +%s)" >"$timings"
export CI_TIMINGS=$timings

# timed NAME CMD...: run CMD, recording its wall time and status.
timed() {
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  echo "=== $name ($(date -u +%H:%M:%S))"
  "$@"
  rc=$?
  printf 'step\t%s\t%s\t%s\t%s\n' "$name" "$t0" "$(date +%s)" "$rc" >>"$timings"
  echo "=== $name: rc=$rc after $(( $(date +%s) - t0 )) s"
  return $rc
}

up_log=$CACHE/logs/cluster-up.log
echo "cluster-up in the background (log $up_log)"
timed cluster-up make --no-print-directory cluster-up >"$up_log" 2>&1 &
up_pid=$!

# A failed check does not hold back the cluster suites (one CI run then
# reports every failure); without the virtualenv or the cluster nothing runs.
failed="" fatal=""
for goal in venv lint units sanity runtime-venv; do
  if ! timed "$goal" make --no-print-directory "$goal"; then
    failed="$failed $goal"
    case $goal in venv | runtime-venv) fatal=1 ;; esac
  fi
  [ -z "$fatal" ] || break
done

echo "=== waiting for cluster-up (log $up_log)"
if ! wait "$up_pid"; then
  echo "cluster-up FAILED; the last lines of $up_log:"
  tail -n 40 "$up_log"
  failed="$failed cluster-up" fatal=1
fi
grep -E '^\[.*(done in|imported in|Ready)' "$up_log" | tail -n 20 || true

if [ -n "$fatal" ]; then
  echo "tests/ci.sh $tier: FAILED before the cluster suites:$failed"
  exit 1
fi

# The two lanes hold about the same work (README "Tests").
if [ "$tier" = landing ]; then
  # units-oldest at the end of the shorter lane: e2e-own is the longest suite.
  tests/lanes.sh "e2e-shared molecule units-oldest" "integration ceph-e2e e2e-own"
else
  tests/lanes.sh "e2e-shared molecule" "oldest integration ceph-e2e bench-smoke e2e-own"
fi
rc=$?
if [ -n "$failed" ]; then
  echo "tests/ci.sh $tier: FAILED before the lanes:$failed (see above)"
  exit 1
fi
[ $rc -eq 0 ] && echo "tests/ci.sh $tier: all checks and suites passed"
exit $rc
