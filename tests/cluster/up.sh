#!/usr/bin/env bash
# Bring up the local single-node test cluster (see README.md). Idempotent:
# builds what is missing, starts what is not running, and returns once the
# node is Ready and a pod has resolved a cluster name through CoreDNS.
_T0=$(date +%s)
export _T0
# shellcheck source=lib/cluster-lib.sh
. "$(dirname "$0")/lib/cluster-lib.sh"

[[ $(id -u) -eq 0 ]] || die "the local cluster needs root (network, mounts, cgroups)"
trap 'say "cluster-up FAILED (exit $?) at up.sh line $LINENO: $BASH_COMMAND"' ERR

# ---------------------------------------------------------------- build --
"$CLUSTER_DIR/deps.sh"
for c in "${K8S_COMPONENTS[@]}"; do
  if [[ ! -x $K8S_BIN/$c ]]; then
    "$CLUSTER_DIR/lib/build-kubernetes.sh" "$KUBERNETES_VERSION" "${K8S_COMPONENTS[@]}"
    break
  fi
done
"$CLUSTER_DIR/lib/build-tools.sh" etcd "$ETCD_VERSION"
"$CLUSTER_DIR/lib/build-tools.sh" containerd "$CONTAINERD_VERSION"
"$CLUSTER_DIR/lib/build-tools.sh" runc "$RUNC_VERSION"
"$CLUSTER_DIR/lib/build-tools.sh" coredns "$COREDNS_VERSION"
"$CLUSTER_DIR/lib/build-tools.sh" kube-router "$KUBE_ROUTER_VERSION"
"$CLUSTER_DIR/images/build-image.sh" "${CLUSTER_IMAGES[@]}"
say "binaries and images are in $CACHE"

detect_network
say "node $NODE_NAME, IP $NODE_IP on $EXT_IF; pods $POD_SUBNET, services $SERVICE_CIDR"

ctr_() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
import_image() {  # recipe name
  local dir ref digest have t0
  dir=$("$CLUSTER_DIR/images/build-image.sh" --path "$1")
  ref=$(cat "$dir/ref") digest=$(cat "$dir/digest")
  have=$(ctr_ images ls "name==$ref" 2>/dev/null | awk 'NR>1 {print $3}')
  if [[ $have == "$digest" ]]; then say "image $ref: already in containerd ($digest)"; return; fi
  t0=$(date +%s)
  say "image $ref: importing $(du -h "$dir/image.tar" | cut -f1) into containerd"
  # Unpacked into overlayfs snapshots; the layer blob is then dropped from
  # the content store (the snapshot is what pods use).
  ctr_ images import --local --snapshotter overlayfs --discard-unpacked-layers "$dir/image.tar" \
    >>"$LOG_DIR/image-import.log" 2>&1 || fail_component image-import "import of $ref failed"
  ctr_ images label "$ref" io.cri-containerd.pinned=pinned >/dev/null 2>&1 || true
  say "image $ref: imported in $(( $(date +%s) - t0 ))s (server version $(cat "$dir/version"))"
}

# Fully up already? Then this is a no-op (but for an image built since).
all=1
for c in "${COMPONENTS[@]}"; do is_running "$c" || all=0; done
if (( all )) && kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; then
  for img in "${CLUSTER_IMAGES[@]}"; do import_image "$img"; done
  say "cluster already running, node $NODE_NAME Ready"
  echo "KUBECONFIG=$ADMIN_KUBECONFIG"
  exit 0
fi

mkdir -p "$RUN_DIR" "$CONF_DIR" "$PKI_DIR" "$CNI_STATE/net.d" "$CONTAINERD_ROOT"
if ! is_running etcd && ! is_running kube-apiserver; then
  # A fresh start: keep the previous run's logs one generation.
  if [[ -d $LOG_DIR ]]; then rm -rf "$LOG_DIR.prev"; mv "$LOG_DIR" "$LOG_DIR.prev"; fi
fi
mkdir -p "$LOG_DIR"

# ------------------------------------------------------------- network --
sysctl_set() {  # key value: set, remembering the value we found
  local cur; cur=$(sysctl -n "$1")
  [[ -f $RUN_DIR/sysctl.$1 ]] || echo "$cur" > "$RUN_DIR/sysctl.$1"
  [[ $cur == "$2" ]] || sysctl -qw "$1=$2"
}
sysctl_set net.ipv4.ip_forward 1
sysctl_set net.bridge.bridge-nf-call-iptables 1
# Traffic never leaves the machine: forwarded packets from pods that would go
# out through the external interface are dropped. Pods still reach the node
# IP (INPUT, not FORWARD), each other (the bridge) and services (DNAT to one
# of those). The mangle table's FORWARD runs before the filter table's, where
# kube-proxy and the kubelet keep their own jumps first: nothing of theirs
# can accept such a packet before this rule sees it.
iptables -t mangle -N "$EGRESS_CHAIN" 2>/dev/null || iptables -t mangle -F "$EGRESS_CHAIN"
iptables -t mangle -A "$EGRESS_CHAIN" -s "$POD_CIDR" -o "$EXT_IF" -j DROP
iptables -t mangle -C FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || iptables -t mangle -I FORWARD 1 -j "$EGRESS_CHAIN"
echo "$EXT_IF" > "$RUN_DIR/ext-if"

# ----------------------------------------------------------------- pki --
ident="$NODE_NAME $NODE_IP $SERVICE_CIDR"
if [[ $(cat "$PKI_DIR/identity" 2>/dev/null) != "$ident" ]]; then
  say "pki: new certificates for $ident"
  rm -rf "$PKI_DIR"; mkdir -p "$PKI_DIR"
fi
pki=$CLUSTER_DIR/lib/pki.sh
"$pki" ca "$PKI_DIR" stateful-mysql-local-ca
"$pki" sa "$PKI_DIR"
"$pki" cert "$PKI_DIR" apiserver kube-apiserver - server \
  DNS:kubernetes DNS:kubernetes.default DNS:kubernetes.default.svc \
  "DNS:kubernetes.default.svc.$CLUSTER_DOMAIN" DNS:localhost "DNS:$NODE_NAME" \
  IP:127.0.0.1 "IP:$KUBERNETES_SERVICE_IP" "IP:$NODE_IP"
"$pki" cert "$PKI_DIR" apiserver-kubelet-client kube-apiserver-kubelet-client system:masters client
"$pki" cert "$PKI_DIR" admin admin system:masters client
"$pki" cert "$PKI_DIR" kubelet "system:node:$NODE_NAME" system:nodes client
"$pki" cert "$PKI_DIR" kubelet-serving "system:node:$NODE_NAME" system:nodes server \
  "DNS:$NODE_NAME" DNS:localhost "IP:$NODE_IP" IP:127.0.0.1
"$pki" cert "$PKI_DIR" controller-manager system:kube-controller-manager - client
"$pki" cert "$PKI_DIR" scheduler system:kube-scheduler - client
"$pki" cert "$PKI_DIR" kube-proxy system:kube-proxy - client
"$pki" cert "$PKI_DIR" coredns system:coredns - client
echo "$ident" > "$PKI_DIR/identity"

kubeconfig() {  # name server -> writes $PKI_DIR/<name>.kubeconfig (certs embedded)
  local name=$1 server=$2 out=$PKI_DIR/$1.kubeconfig
  cat > "$out.tmp" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: stateful-mysql-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$PKI_DIR/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 < "$PKI_DIR/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI_DIR/$name.key")
contexts:
- name: stateful-mysql-local
  context: {cluster: stateful-mysql-local, user: $name}
current-context: stateful-mysql-local
EOK
  chmod 600 "$out.tmp"; mv "$out.tmp" "$out"
}
api=https://127.0.0.1:$APISERVER_PORT
for n in admin kubelet controller-manager scheduler kube-proxy coredns; do kubeconfig "$n" "$api"; done
cp "$PKI_DIR/admin.kubeconfig" "$ADMIN_KUBECONFIG.tmp" && mv "$ADMIN_KUBECONFIG.tmp" "$ADMIN_KUBECONFIG"

# --------------------------------------------------------------- start --
port_free() {  # port name: fail early, naming who holds it
  local who
  who=$(ss -Htulnp "sport = :$1" 2>/dev/null | head -1)
  [[ -z $who ]] || die "port $1 needed by $2 is taken: $who"
}

start() {  # name args...: start a component's binary unless running
  local name=$1; shift
  if is_running "$name"; then say "$name: already running (pid $(pid_of "$name"))"; return; fi
  local bin; bin=$(component_binary "$name")
  [[ -x $bin ]] || die "$name: no binary at $bin"
  setsid "$bin" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! > "$RUN_DIR/$name.pid"
  say "$name: started pid $! (log $LOG_DIR/$name.log)"
}

wait_for() {  # name timeout-seconds description command...
  local name=$1 limit=$2 what=$3; shift 3
  local t0; t0=$(date +%s)
  local next=$(( t0 + 5 ))
  until "$@" >/dev/null 2>&1; do
    is_running "$name" || fail_component "$name" "exited while waiting for $what"
    if (( $(date +%s) - t0 >= limit )); then fail_component "$name" "$what: not within ${limit}s"; fi
    if (( $(date +%s) >= next )); then say "waiting for $what, $(( $(date +%s) - t0 ))s"; next=$(( next + 5 )); fi
    sleep 0.3
  done
  say "$what after $(( $(date +%s) - t0 ))s"
}

# etcd: fresh data on every fresh start (fsync off: this cluster is thrown away).
if ! is_running etcd; then
  port_free "$ETCD_CLIENT_PORT" etcd; port_free "$ETCD_PEER_PORT" etcd
  rm -rf "$ETCD_DATA"
fi
start etcd --name default --data-dir "$ETCD_DATA" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --log-level warn

# containerd: config version 3, its own root/state/socket.
cat > "$CONF_DIR/containerd.toml" <<EOC
version = 3
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins."io.containerd.cri.v1.runtime"]
  # No CAP_SYS_RESOURCE here: a negative oom_score_adj (kubelet asks -998
  # for sandboxes) would make every runc create fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$RUNC_BIN/runc"
        Root = "$CONTAINERD_STATE/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CNI_BIN_DIR"]
    conf_dir = "$CNI_STATE/net.d"
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
EOC
# Written whole (containerd watches the folder and would read half a file).
cat > "$CNI_STATE/10-stateful-mysql.conflist.tmp" <<EOC
{
  "cniVersion": "1.0.0",
  "name": "stateful-mysql",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE_NAME",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_STATE/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOC
mv "$CNI_STATE/10-stateful-mysql.conflist.tmp" "$CNI_STATE/net.d/10-stateful-mysql.conflist"
PATH=$CONTAINERD_BIN:$RUNC_BIN:$PATH start containerd --config "$CONF_DIR/containerd.toml" --log-level warn

etcd_healthy() { "$ETCD_BIN/etcdctl" --endpoints "http://127.0.0.1:$ETCD_CLIENT_PORT" endpoint health; }
wait_for etcd 30 "etcd healthy" etcd_healthy

# kube-apiserver
if ! is_running kube-apiserver; then port_free "$APISERVER_PORT" kube-apiserver; fi
start kube-apiserver \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address 0.0.0.0 --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
  --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
  --client-ca-file "$PKI_DIR/ca.crt" \
  --kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI_DIR/ca.crt" \
  --kubelet-preferred-address-types InternalIP,Hostname \
  --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file "$PKI_DIR/sa.pub" \
  --service-account-signing-key-file "$PKI_DIR/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --profiling=false --v=1

# containerd meanwhile: import the images it lacks (same name, same digest = skip).
wait_for containerd 30 "containerd socket" ctr_ version
for img in "${CLUSTER_IMAGES[@]}"; do import_image "$img"; done

apiserver_ready() { kctl get --raw /readyz; }
wait_for kube-apiserver 60 "kube-apiserver ready" apiserver_ready

# The rest of the control plane and the node.
start kube-controller-manager \
  --kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false \
  --service-account-private-key-file "$PKI_DIR/sa.key" --root-ca-file "$PKI_DIR/ca.crt" \
  --cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
  --use-service-account-credentials=true \
  --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" --allocate-node-cidrs=false \
  --enable-hostpath-provisioner=true --controllers '*' --v=1
start kube-scheduler \
  --kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --v=1

echo "nameserver $NODE_IP" > "$CONF_DIR/pod-resolv.conf"
cat > "$CONF_DIR/kubelet.yaml" <<EOC
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet-serving.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
imageServiceEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $CONF_DIR/pod-resolv.conf
podLogsDir: $LOG_DIR/pods
hairpinMode: hairpin-veth
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
nodeStatusReportFrequency: 10s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 10s
maxPods: 110
EOC
start kubelet --config "$CONF_DIR/kubelet.yaml" \
  --kubeconfig "$PKI_DIR/kubelet.kubeconfig" \
  --root-dir "$KUBELET_ROOT" --cert-dir "$PKI_DIR/kubelet-certs" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1

cat > "$CONF_DIR/kube-proxy.yaml" <<EOC
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOC
start kube-proxy --config "$CONF_DIR/kube-proxy.yaml" --v=1

cat > "$CONF_DIR/Corefile" <<EOC
.:$COREDNS_PORT {
    bind $NODE_IP
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $PKI_DIR/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
EOC
# No forward plugin: names outside the cluster get no answer from anyone.
if ! is_running coredns; then port_free "$COREDNS_PORT" coredns; fi
start coredns -conf "$CONF_DIR/Corefile"

# Cluster objects: CoreDNS's read access, the default StorageClass.
kctl apply -f - >/dev/null <<EOC || fail_component kube-apiserver "applying the bootstrap objects failed"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "stateful-mysql:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "stateful-mysql:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "stateful-mysql:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}
---
# The controller-manager makes it within seconds; made here, the DNS probe
# need not wait for it.
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: default}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOC

node_ready() {
  kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
wait_for kubelet 90 "node $NODE_NAME Ready" node_ready
coredns_ready() { curl -fsS http://127.0.0.1:18181/ready; }
wait_for coredns 30 "CoreDNS ready" coredns_ready
# Healthy and its KUBE-SERVICES chain written: healthz answers before the
# first sync, and kube-router (started next) checks the chain to prove that
# both use one iptables backend (a start seen to race it: CI, 2026-12-01).
kube_proxy_synced() {
  curl -fsS http://127.0.0.1:10256/healthz >/dev/null && iptables -t nat -S KUBE-SERVICES >/dev/null 2>&1
}
wait_for kube-proxy 30 "kube-proxy synced (KUBE-SERVICES through iptables)" kube_proxy_synced
# NetworkPolicy: kube-router's firewall (needs the node object: after Ready).
"$CLUSTER_DIR/lib/kube-router.sh" start

# The proof: a pod resolves a cluster name through CoreDNS.
dns_probe() {
  kctl -n default get serviceaccount default >/dev/null 2>&1 || return 1
  kctl -n default delete pod cluster-up-dns-probe --ignore-not-found --wait=true >/dev/null 2>&1 || true
  kctl apply -f - >/dev/null <<EOP
apiVersion: v1
kind: Pod
metadata: {name: cluster-up-dns-probe, namespace: default}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: probe
    image: $PROBE_IMAGE
    imagePullPolicy: Never
    command: [getent, hosts, kubernetes.default.svc.$CLUSTER_DOMAIN]
EOP
}
wait_for kube-controller-manager 60 "default service account" dns_probe
probe_done() {
  local phase
  phase=$(kctl -n default get pod cluster-up-dns-probe -o jsonpath='{.status.phase}')
  [[ $phase == Failed ]] && { say "DNS probe pod failed:"; kctl -n default logs cluster-up-dns-probe >&2 || true; kctl -n default describe pod cluster-up-dns-probe | tail -20 >&2; fail_component coredns "a pod could not resolve kubernetes.default.svc.$CLUSTER_DOMAIN"; }
  [[ $phase == Succeeded ]]
}
wait_for kubelet 90 "DNS lookup from a pod" probe_done
say "pod resolved: $(kctl -n default logs cluster-up-dns-probe)"
kctl -n default delete pod cluster-up-dns-probe --wait=false >/dev/null

say "cluster up: node $NODE_NAME Ready, DNS works, $(( $(date +%s) - _T0 ))s in all"
echo "KUBECONFIG=$ADMIN_KUBECONFIG"
echo "logs: $LOG_DIR"
