#!/usr/bin/env bash
# lanes.sh "GOALS1" "GOALS2": run two lists of make goals side by side, each
# list in order, on the one local cluster. The second lane's output goes to a
# log that is printed when it ends. Why: most of an e2e run waits on pods, so
# the suites without timed assertions (Ceph, molecule, the bench smoke) run
# beside the pytest suites instead of after them (CI time, README).
# The first lane's output is kept in a log too, and the last lines printed are
# a digest of both logs' failures: CI shows only the tail of the output.
set -uo pipefail
lane1=$1 lane2=$2
logdir=${LANES_LOG_DIR:-${STATEFUL_MYSQL_CACHE:-$HOME/.cache/stateful-mysql}}
log1=$logdir/lane1.log log2=$logdir/lane2.log
mkdir -p "$logdir"
start=$(date +%s)

timings=${CI_TIMINGS:-/dev/null}
run_lane() {  # run_lane GOALS: make each goal in turn; a failure fails the lane
  # at its end, the later goals still run (one CI run shows every failure).
  local goal t0 rc failed=0
  for goal in $1; do
    echo "=== lane: make $goal ($(( $(date +%s) - start )) s)"
    t0=$(date +%s)
    make --no-print-directory "$goal"
    rc=$?
    # Each suite's wall time, for tests/ci_report.py.
    printf 'step\t%s\t%s\t%s\t%s\n' "$goal" "$t0" "$(date +%s)" "$rc" >>"$timings"
    [ $rc -eq 0 ] || { echo "=== lane: make $goal FAILED"; failed=1; }
  done
  return $failed
}

run_lane "$lane2" >"$log2" 2>&1 &
pid2=$!
echo "lanes: [$lane1] here, [$lane2] beside it (log $log2)"
run_lane "$lane1" 2>&1 | tee "$log1"
rc1=${PIPESTATUS[0]}
echo "lanes: [$lane1] ended rc=$rc1 after $(( $(date +%s) - start )) s; waiting for [$lane2]"
wait "$pid2"
rc2=$?
echo "----- lane [$lane2] (log $log2) -----"
cat "$log2"
echo "----- end of lane [$lane2]: rc=$rc2, both lanes done after $(( $(date +%s) - start )) s -----"
# Digest: pytest's FAILED/ERROR lines and counts, molecule's and make's verdicts.
echo "----- digest of both lanes (full logs: $log1, $log2) -----"
grep -ahE '^(FAILED|ERROR) |^=+ .*(passed|failed|error).* =+$|^[0-9]+ (passed|failed)|^=== lane: .*FAILED|^molecule scenario |^make(\[[0-9]+\])?: \*\*\*' \
  "$log1" "$log2" || true
# Each pytest failure's assertion: where it failed, the source line and the
# message's last lines (the short summary above keeps only its first line).
awk '
  /^___+ .* ___+$/ { name = $0; src = ""; n = 0; f = 0; next }
  /^>/ { src = $0 }
  /^E / { e[++n] = substr($0, 1, 220); if ($0 ~ /fatal:|FAILED!|msg:|\[ERROR\]/ && f < 3) fat[++f] = e[n] }
  /^[^ ]+\.py:[0-9]+: [A-Za-z]*(Error|Exception|Failed)/ && name != "" {
    print name; if (src != "") print src; print e[1]
    for (i = 1; i <= f; i++) print fat[i]
    for (i = (n > 7 ? n - 5 : 2); i <= n; i++) print e[i]
    print $0; name = ""; n = 0; f = 0
  }' "$log1" "$log2" || true
echo "lanes: [$lane1] rc=$rc1, [$lane2] rc=$rc2"
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
