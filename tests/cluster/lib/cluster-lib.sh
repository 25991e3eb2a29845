# shellcheck shell=bash
# shellcheck disable=SC2034  # used by the scripts that source this
# Paths and helpers shared by up.sh, down.sh and status.sh.
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

K8S_BIN=$BIN_ROOT/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$BIN_ROOT/etcd-$ETCD_VERSION
CONTAINERD_BIN=$BIN_ROOT/containerd-$CONTAINERD_VERSION
RUNC_BIN=$BIN_ROOT/runc-$RUNC_VERSION
COREDNS_BIN=$BIN_ROOT/coredns-$COREDNS_VERSION
KUBE_ROUTER_BIN=$BIN_ROOT/kube-router-$KUBE_ROUTER_VERSION
K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
KUBECTL=$K8S_BIN/kubectl

# Runtime layout: everything below $CLUSTER_STATE except pki/, the
# kubeconfigs and logs/ is removed by cluster-down. containerd's root (its
# images and snapshots) lives outside it, so that images survive a restart.
PKI_DIR=$CLUSTER_STATE/pki
CONF_DIR=$CLUSTER_STATE/conf
ETCD_DATA=$CLUSTER_STATE/etcd
KUBELET_ROOT=$CLUSTER_STATE/kubelet
CONTAINERD_STATE=$CLUSTER_STATE/containerd-state
CONTAINERD_ROOT=$CACHE/containerd-root
CNI_STATE=$CLUSTER_STATE/cni
CONTAINERD_SOCK=$RUN_DIR/containerd.sock
ADMIN_KUBECONFIG=$CLUSTER_STATE/admin.kubeconfig
HOSTPATH_PV_DIR=/tmp/hostpath_pv   # fixed by the in-tree hostpath provisioner
# Our own iptables chain (filter table) for the egress drop rule.
EGRESS_CHAIN=SMYSQL-POD-EGRESS

# Components in start order; down stops them in reverse.
COMPONENTS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns kube-router)

component_binary() {
  case $1 in
    etcd) echo "$ETCD_BIN/etcd" ;;
    containerd) echo "$CONTAINERD_BIN/containerd" ;;
    coredns) echo "$COREDNS_BIN/coredns" ;;
    kube-router) echo "$KUBE_ROUTER_BIN/kube-router" ;;
    *) echo "$K8S_BIN/$1" ;;
  esac
}

pid_of() {  # prints the recorded pid if that process still runs our binary
  local f=$RUN_DIR/$1.pid pid exe
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$(readlink -f "$(component_binary "$1")")" ]] || return 1
  echo "$pid"
}

is_running() { pid_of "$1" >/dev/null; }

# The external interface (the default route's) and the node IP on it.
detect_network() {
  EXT_IF=${CLUSTER_EXT_IF:-$(ip -4 route show default | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')}
  if [[ -z $EXT_IF ]]; then
    EXT_IF=$(ip -4 -o addr show scope global | awk '$2 != "'"$BRIDGE_NAME"'" {print $2; exit}')
  fi
  [[ -n $EXT_IF ]] || die "cannot find an external interface (no default route, no global IPv4 address)"
  NODE_IP=${CLUSTER_NODE_IP:-$(ip -4 -o addr show dev "$EXT_IF" scope global | awk '{split($4,a,"/"); print a[1]; exit}')}
  [[ -n $NODE_IP ]] || die "no IPv4 address on $EXT_IF"
  # A DNS-1123 name: lower case, no underscores or dots.
  NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]' | tr '_.' '--')
}

kctl() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

log_tail() {  # NAME: the tail of a component's log, to stderr
  local f=$LOG_DIR/$1.log
  if [[ -f $f ]]; then
    echo "----- last 40 lines of $f -----" >&2
    tail -n 40 "$f" >&2
    echo "----- end of $f -----" >&2
  else
    echo "(no log at $f)" >&2
  fi
}

fail_component() {  # NAME MESSAGE
  say "FAILED: $1: $2"
  log_tail "$1"
  say "the cluster is left as it is for inspection; 'make cluster-down' stops it"
  exit 1
}
