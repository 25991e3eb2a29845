#!/usr/bin/env bash
# kube-router's firewall (its NetworkPolicy controller) as a host process:
# the bridge CNI enforces no NetworkPolicy, this does. Its router and service
# proxy stay off (kube-proxy serves Services).
#
#   kube-router.sh start     start it unless running, wait for its first sync
#   kube-router.sh stop      stop it by its recorded pid (TERM, KILL after 10 s)
#   kube-router.sh cleanup   remove its iptables chains and ipsets (once stopped)
#   kube-router.sh leftovers list what of it is left in iptables and ipset
#
# up.sh calls start once the node is registered; down.sh calls stop and
# cleanup. Both can be run by hand against a running cluster.
# shellcheck source=lib/cluster-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

# iptables, iptables-save/-restore and ipset come from Debian (deps.sh).
PATH=/usr/sbin:/sbin:$PATH
KR_LOG=$LOG_DIR/kube-router.log
# The filter chains it makes, and the jumps to them from the built-in chains.
KR_CHAIN_RE='^(KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)|KUBE-POD-FW-[A-Z2-7]+|KUBE-NWPLCY-[A-Z2-7]+|KUBE-NWPLCY-DEFAULT)$'
# Its ipsets: a policy's sources and targets, and the temporary sets it swaps in.
KR_IPSET_RE='^(KUBE-SRC-[A-Z2-7]+|KUBE-DST-[A-Z2-7]+|TMP-[A-Z2-7]{16})$'

# The backend (nf_tables or legacy) of the `iptables` on PATH. kube-proxy and
# kube-router both run that same command, so they share it; checked below by
# seeing kube-proxy's own chain through it.
iptables_backend() { iptables -V | sed -n 's/.*(\(.*\)).*/\1/p'; }

kr_start() {
  if is_running kube-router; then say "kube-router: already running (pid $(pid_of kube-router))"; return; fi
  [[ -x $KUBE_ROUTER_BIN/kube-router ]] || die "kube-router: no binary at $KUBE_ROUTER_BIN (lib/build-tools.sh kube-router $KUBE_ROUTER_VERSION)"
  command -v ipset >/dev/null || die "kube-router: ipset is missing (tests/cluster/deps.sh installs it)"
  detect_network
  local backend; backend=$(iptables_backend)
  if is_running kube-proxy && ! iptables -t nat -S KUBE-SERVICES >/dev/null 2>&1; then
    die "kube-router: kube-proxy's KUBE-SERVICES chain is not visible through iptables ($backend): the two would use different backends"
  fi
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # Admin kubeconfig: it reads pods, namespaces, policies and its node.
  setsid "$KUBE_ROUTER_BIN/kube-router" \
    --kubeconfig "$PKI_DIR/admin.kubeconfig" \
    --run-firewall=true --run-router=false --run-service-proxy=false \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --hostname-override "$NODE_NAME" \
    --health-port 0 --metrics-port 0 --v=1 \
    >>"$KR_LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" > "$RUN_DIR/kube-router.pid"
  say "kube-router: started pid $pid (firewall only, iptables $backend, log $KR_LOG)"
  # Ready once its first full sync has appended the explicit ACCEPT of
  # policy-compliant traffic to its FORWARD chain.
  local t0; t0=$(date +%s)
  until iptables -S FORWARD 2>/dev/null | grep -q -- '-j KUBE-ROUTER-FORWARD' &&
        iptables -S KUBE-ROUTER-FORWARD 2>/dev/null | grep -q -- '--mark 0x20000/0x20000 -j ACCEPT'; do
    # (kill -0: until setsid has exec'd, the pid's exe is not kube-router yet.)
    kill -0 "$pid" 2>/dev/null || fail_component kube-router "exited before its first sync"
    (( $(date +%s) - t0 < 60 )) || fail_component kube-router "no first sync of its chains within 60s"
    sleep 0.3
  done
  is_running kube-router || fail_component kube-router "pid $pid is not kube-router"
  say "kube-router: NetworkPolicy enforced after $(( $(date +%s) - t0 ))s"
}

kr_stop() {
  local pid t=0
  if ! pid=$(pid_of kube-router); then
    rm -f "$RUN_DIR/kube-router.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && (( t < 100 )); do sleep 0.1; t=$(( t + 1 )); done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    say "kube-router: killed (pid $pid)"
  else
    say "kube-router: stopped (pid $pid)"
  fi
  rm -f "$RUN_DIR/kube-router.pid"
}

kr_chains() {  # iptables|ip6tables: kube-router's filter chains
  "$1" -t filter -S 2>/dev/null | awk '$1 == "-N" {print $2}' | grep -E "$KR_CHAIN_RE" || true
}

kr_ipsets() { ipset list -n 2>/dev/null | grep -E "$KR_IPSET_RE" || true; }

kr_leftovers() {  # prints what is left; returns 1 when something is
  local ipt c left=0
  for ipt in iptables ip6tables; do
    for c in $(kr_chains "$ipt"); do echo "$ipt chain $c"; left=1; done
  done
  for c in $(kr_ipsets); do echo "ipset $c"; left=1; done
  return "$left"
}

kr_cleanup() {
  is_running kube-router && die "kube-router is running: stop it first (it would put its rules back)"
  if [[ -x $KUBE_ROUTER_BIN/kube-router ]]; then
    # Its own cleanup first. In v2.1.0 it removes nothing of the firewall's
    # and then panics in the service proxy's part (upstream issue #1649,
    # fixed after v2.1.0), so what it leaves is removed below.
    local rc=0
    echo "--- $(date -u +%FT%TZ) kube-router --cleanup-config" >>"$KR_LOG"
    timeout 60 "$KUBE_ROUTER_BIN/kube-router" --cleanup-config >>"$KR_LOG" 2>&1 || rc=$?
    (( rc == 0 )) || say "kube-router --cleanup-config exited $rc (known in $KUBE_ROUTER_VERSION); removing its chains and ipsets here"
  fi
  local ipt chain rule chains
  for ipt in iptables ip6tables; do
    chains=$(kr_chains "$ipt")
    [[ -n $chains ]] || continue
    # The jumps from the built-in chains, then every rule of its chains (they
    # jump to each other), then the chains.
    for chain in INPUT FORWARD OUTPUT; do
      while IFS= read -r rule; do
        eval "\"\$ipt\" -t filter ${rule/-A/-D}" 2>/dev/null || true
      done < <("$ipt" -t filter -S "$chain" 2>/dev/null | grep -E -- '-j KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)( |$)' || true)
    done
    for chain in $chains; do "$ipt" -t filter -F "$chain" 2>/dev/null || true; done
    for chain in $chains; do "$ipt" -t filter -X "$chain" 2>/dev/null || true; done
  done
  # Sets only go once no rule refers to them.
  local set
  for set in $(kr_ipsets); do ipset destroy "$set" 2>/dev/null || true; done
  local left
  if left=$(kr_leftovers); then
    say "kube-router: its chains and ipsets are gone"
  else
    say "kube-router: cleanup left:"; echo "$left" >&2
    return 1
  fi
}

case ${1:-} in
  start) kr_start ;;
  stop) kr_stop ;;
  cleanup) kr_cleanup ;;
  leftovers) kr_leftovers ;;
  *) die "usage: $0 start|stop|cleanup|leftovers" ;;
esac
