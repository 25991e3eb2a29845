#!/usr/bin/env bash
# Stop the local test cluster and remove what it made: processes (by the
# pids recorded at start, never by name), pod sandboxes and their shims,
# mounts under our state folders, /run/netns/cni-*, the bridge, iptables and
# ip6tables chains, runtime state. Kept: binaries, images (containerd's
# root), certificates, kubeconfigs and the last logs. Idempotent.
_T0=$(date +%s)
export _T0
# shellcheck source=lib/cluster-lib.sh
. "$(dirname "$0")/lib/cluster-lib.sh"

[[ $(id -u) -eq 0 ]] || die "cluster-down needs root"

stop_components() {  # name...: TERM each recorded pid, wait up to 10 s, then KILL
  local name pid i pids=() names=()
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      kill -TERM "$pid" 2>/dev/null && { pids+=("$pid"); names+=("$name"); }
    fi
    rm -f "$RUN_DIR/$name.pid"
  done
  for (( i = 0; i < ${#pids[@]}; i++ )); do
    local t=0
    while kill -0 "${pids[i]}" 2>/dev/null && (( t < 100 )); do sleep 0.1; t=$(( t + 1 )); done
    if kill -0 "${pids[i]}" 2>/dev/null; then
      kill -KILL "${pids[i]}" 2>/dev/null || true
      say "${names[i]}: killed (pid ${pids[i]})"
    else
      say "${names[i]}: stopped (pid ${pids[i]})"
    fi
  done
}

ctr_() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# 1. Stop what creates pods, then remove every pod (sandbox, task,
#    container) through containerd while it still runs, so the shims exit.
# (Nothing below needs the API: it goes too, at the same time.)
stop_components kube-router coredns kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver
shim_pids=()
# The shims' sockets (in containerd's fixed /run/containerd/s), to remove
# once the shims are gone.
mapfile -t shim_sockets < <(cat "$CONTAINERD_STATE"/io.containerd.runtime.v2.task/*/*/bootstrap.json 2>/dev/null |
  grep -o '"address":"unix://[^"]*"' | sed 's|.*unix://||; s|"$||' | sort -u)
if is_running containerd; then
  tasks=$(ctr_ tasks ls -q 2>/dev/null || true)
  # Each task's process (pid as containerd records it) is the child of its
  # pod's shim: note the shims, in case one outlives its containers.
  while read -r _ pid _; do
    [[ $pid =~ ^[0-9]+$ && $pid != 0 ]] || continue
    ppid=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null || true)
    [[ -n $ppid ]] && shim_pids+=("$ppid")
  done < <(ctr_ tasks ls 2>/dev/null | tail -n +2)
  # One ctr per object, all at once: a pod's teardown is mostly waiting.
  for t in $tasks; do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 & done
  wait
  for t in $tasks; do
    ( for _ in 1 2 3 4 5 6 7 8 9 10; do ctr_ tasks delete -f "$t" >/dev/null 2>&1 && break; sleep 0.2; done ) &
  done
  wait
  sandboxes=$(ctr_ sandboxes ls 2>/dev/null | awk 'NR>1 {print $1}' || true)
  for sb in $sandboxes; do ctr_ sandboxes rm -f "$sb" >/dev/null 2>&1 & done
  wait
  containers=$(ctr_ containers ls -q 2>/dev/null || true)
  for c in $containers; do ctr_ containers delete "$c" >/dev/null 2>&1 & done
  wait
  say "containerd: removed $(wc -w <<<"$sandboxes") pod sandboxes, $(wc -w <<<"$containers") containers"
fi
stop_components containerd
for pid in $(printf '%s\n' "${shim_pids[@]}" | sort -u); do
  if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$CONTAINERD_BIN/containerd-shim-runc-v2")" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    say "containerd-shim: stopped pid $pid (its pod's containers are gone)"
  fi
done
for sock in "${shim_sockets[@]}"; do [[ $sock == /run/containerd/s/* ]] && rm -f "$sock"; done
rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null || true
stop_components etcd

# 2. kube-proxy and kube-router remove their own rules; then the kubelet's
#    and CNI's chains and ours, in iptables and ip6tables.
if [[ -x $K8S_BIN/kube-proxy ]]; then
  "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
fi
# kube-router's chains and ipsets (its pid is gone by now).
"$CLUSTER_DIR/lib/kube-router.sh" cleanup || say "kube-router: cleanup incomplete (see above)"
clean_chains() {  # iptables|ip6tables
  local ipt=$1 table chain rule
  for table in filter nat mangle raw; do
    local chains
    chains=$("$ipt" -t "$table" -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/ || $2 ~ /^SMYSQL-/) {print $2}') || continue
    [[ -n $chains ]] || continue
    # Remove every rule that jumps to one of them, wherever it is.
    for chain in $chains; do
      while IFS= read -r rule; do
        eval "\"\$ipt\" -t \"\$table\" ${rule/-A/-D}" 2>/dev/null || true
      done < <("$ipt" -t "$table" -S 2>/dev/null | grep -E -- "-j $chain( |\$)" || true)
    done
    for chain in $chains; do "$ipt" -t "$table" -F "$chain" 2>/dev/null || true; done
    for chain in $chains; do "$ipt" -t "$table" -X "$chain" 2>/dev/null || true; done
  done
}
clean_chains iptables
clean_chains ip6tables

# 3. Mounts under our state folders, CNI network namespaces, the bridge.
while IFS= read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
done < <(awk '{print $5}' /proc/self/mountinfo | grep -E "^($CLUSTER_STATE|$CONTAINERD_ROOT|/run/netns/cni-)" | sort -r)
for ns in /run/netns/cni-*; do
  [[ -e $ns ]] || continue
  umount "$ns" 2>/dev/null || true
  rm -f "$ns"
done
if ip link show "$BRIDGE_NAME" >/dev/null 2>&1; then ip link delete "$BRIDGE_NAME" && say "bridge $BRIDGE_NAME removed"; fi
rm -f /var/lib/cni/results/stateful-mysql-* /var/lib/cni/results/cni-loopback-* 2>/dev/null || true
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true

# What the kubelet writes at fixed paths: the legacy /var/log/containers
# links to pod logs (the logs themselves are in $LOG_DIR/pods, kept until
# the next start; pods of older runs logged to /var/log/pods: moved there),
# and the device-plugin folder.
mkdir -p "$LOG_DIR/pods"
for d in /var/log/pods/*_*_*; do if [[ -d $d ]]; then mv "$d" "$LOG_DIR/pods/" 2>/dev/null || true; fi; done
rmdir /var/log/pods 2>/dev/null || true
for l in /var/log/containers/*.log; do
  [[ -L $l ]] || continue
  case $(readlink "$l") in "$LOG_DIR"/pods/*|/var/log/pods/*) rm -f "$l" ;; esac
done
rmdir /var/log/containers 2>/dev/null || true
rm -rf /var/lib/kubelet/device-plugins
rmdir /var/lib/kubelet 2>/dev/null || true

# 4. cgroups the kubelet made (empty once every pod is gone).
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice /sys/fs/cgroup/unified/kubepods; do
  [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
done

# 5. sysctls back to what we found, runtime state, the hostpath volumes.
for f in "$RUN_DIR"/sysctl.*; do
  [[ -f $f ]] || continue
  sysctl -qw "${f##*/sysctl.}=$(cat "$f")" 2>/dev/null || true
  rm -f "$f"
done
rm -rf "$ETCD_DATA" "$KUBELET_ROOT" "$CONTAINERD_STATE" "$CNI_STATE" "$CONF_DIR" "$RUN_DIR" "$HOSTPATH_PV_DIR"
say "cluster down (kept: binaries, images, certificates, logs in $LOG_DIR)"
