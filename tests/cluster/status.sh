#!/usr/bin/env bash
# What of the local test cluster runs, with pids and logs. Exits 0; with
# --check: 0 when every component runs, 3 when none does, 1 when some do.
# shellcheck source=lib/cluster-lib.sh
. "$(dirname "$0")/lib/cluster-lib.sh"

up=0 total=0
for c in "${COMPONENTS[@]}"; do
  if pid=$(pid_of "$c"); then
    kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$(( total + kib ))
    rss="$(( kib / 1024 )) MiB"
    printf '%-24s running  pid %-7s %-9s log %s\n' "$c" "$pid" "$rss" "$LOG_DIR/$c.log"
    up=$(( up + 1 ))
  else
    printf '%-24s stopped                    log %s\n' "$c" "$LOG_DIR/$c.log"
  fi
done
(( up == 0 )) || echo "resident memory of these processes: $(( total / 1024 )) MiB"
echo "kubeconfig: $ADMIN_KUBECONFIG"
echo "versions: kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, containerd $CONTAINERD_VERSION, runc $RUNC_VERSION, coredns $COREDNS_VERSION, kube-router $KUBE_ROUTER_VERSION"
if is_running kube-apiserver; then
  kctl get nodes -o wide 2>&1 | sed 's/^/  /' || true
fi
if is_running containerd; then
  echo "images:"
  "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" -n k8s.io images ls 2>/dev/null |
    awk 'NR>1 && $1 ~ /^localhost\/stateful-mysql\// {print "  " $1 "  " $3}' || true
fi
check=0; [[ ${1:-} == --check ]] && check=1
if (( up == ${#COMPONENTS[@]} )); then echo "cluster: up"; exit 0; fi
if (( up == 0 )); then echo "cluster: down"; exit $(( check * 3 )); fi
echo "cluster: partly up ($up of ${#COMPONENTS[@]} components)"; exit "$check"
