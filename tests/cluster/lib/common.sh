# shellcheck shell=bash
# shellcheck disable=SC2034  # used by the scripts that source this
# Shared helpers for tests/cluster scripts. Source it; it sets -euo pipefail.
set -euo pipefail

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../versions.env
. "$CLUSTER_DIR/versions.env"

CACHE=${STATEFUL_MYSQL_CACHE:-$HOME/.cache/stateful-mysql}
BUILD_LOCK=$CACHE/build.lock
BIN_ROOT=$CACHE/bin
GO_ROOT=$CACHE/go
CLUSTER_STATE=$CACHE/cluster
LOG_DIR=$CLUSTER_STATE/logs
RUN_DIR=$CLUSTER_STATE/run
mkdir -p "$CACHE" "$BIN_ROOT" "$GO_ROOT"

export GOPATH=$GO_ROOT/path
export GOMODCACHE=$GO_ROOT/mod
export GOCACHE=$GO_ROOT/cache
export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
PATH=$(dirname "$GO"):$PATH
export PATH

_T0=${_T0:-$(date +%s)}
export _T0

ts() { date -u +%H:%M:%S; }
elapsed() { echo "$(( $(date +%s) - _T0 ))s"; }
say() { printf '[%s +%s] %s\n' "$(ts)" "$(elapsed)" "$*" >&2; }
die() { printf '[%s +%s] ERROR: %s\n' "$(ts)" "$(elapsed)" "$*" >&2; exit 1; }

# run_locked DESC LOGFILE CMD...: run a heavy step under the shared build
# lock, its output to LOGFILE, printing progress with elapsed time every 15 s.
# On failure prints the log's tail and returns non-zero.
run_locked() { _run_step flock "$@"; }
# run_step DESC LOGFILE CMD...: the same for a light step, without the lock.
run_step() { _run_step nolock "$@"; }
_run_step() {
  local lock=$1 desc=$2 logf=$3; shift 3
  mkdir -p "$(dirname "$logf")"
  local start; start=$(date +%s)
  [[ $lock == flock ]] && say "$desc: waiting for $BUILD_LOCK"
  (
    [[ $lock == flock ]] && flock 9
    say "$desc: started (log $logf)"
    "$@"
  ) 9>>"$BUILD_LOCK" >"$logf" 2>&1 &
  local pid=$! rc=0 next=$(( start + 15 )) state
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( $(date +%s) >= next )); then
      next=$(( next + 15 ))
      state="waiting for the build lock"
      grep -q ': started (log' "$logf" 2>/dev/null && state=running
      say "$desc: $state, $(( $(date +%s) - start ))s elapsed"
    fi
  done
  wait "$pid" || rc=$?
  if (( rc != 0 )); then
    say "$desc: FAILED after $(( $(date +%s) - start ))s (rc $rc); tail of $logf:"
    tail -n 30 "$logf" >&2
    return "$rc"
  fi
  say "$desc: done in $(( $(date +%s) - start ))s"
}

# Builds need Go (1.24 or later; these machines have 1.26 at /usr/local/go).
need_go() {
  [[ -x $GO ]] || die "Go not found at $GO: install it or set GO=/path/to/go"
}

# A short hash of files/strings, for cache keys.
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
