"""Smoke tests of the local test cluster (tests/cluster, issue 9).

Each proves one thing the collection relies on: pods run, a StatefulSet's
pods find each other by DNS through a headless Service, a ClusterIP Service
balances across pods, a volumeClaimTemplates PVC binds and keeps its data
when the pod is replaced, exec works, and the API server's port-forward
gives Python a socket to a pod, and NetworkPolicy is enforced (kube-router's
firewall): a default deny blocks pod-to-pod traffic within seconds, an allow
rule admits it again, and deleting the policies restores it.
"""
import os
import time

import pytest
from kubernetes import client
from kubernetes.stream import portforward, stream

# The smallest of our images: bash, coreutils, getent, socat.
IMAGE = os.environ.get("CLUSTER_SMOKE_IMAGE", "localhost/stateful-mysql/mariadb:10.11")
PORT = 8080
STS = "smoke"
# Each pod answers its own hostname to every TCP connection on PORT.
SERVER = f"exec socat TCP-LISTEN:{PORT},fork,reuseaddr SYSTEM:'cat /etc/hostname'"


def wait(what, predicate, timeout=120, step=0.5):
    deadline = time.time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def run(core, ns, pod, command, timeout=30):
    """exec `command` in pod, return (stdout, stderr, exit code)."""
    resp = stream(core.connect_get_namespaced_pod_exec, pod, ns, command=command,
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=timeout)
    out, err = resp.read_stdout(), resp.read_stderr()
    code = resp.returncode
    resp.close()
    return out, err, code


def pod_ready(core, ns, name):
    try:
        pod = core.read_namespaced_pod(name, ns)
    except client.ApiException:
        return None
    if pod.metadata.deletion_timestamp:
        return None
    for cond in pod.status.conditions or []:
        if cond.type == "Ready" and cond.status == "True":
            return pod
    return None


@pytest.fixture(scope="module")
def statefulset(core, apps, namespace):
    """Two pods behind a headless Service and a ClusterIP Service, each with a
    PVC from volumeClaimTemplates (default StorageClass)."""
    labels = {"app": STS}
    for name, cluster_ip in ((STS, "None"), (STS + "-lb", None)):
        core.create_namespaced_service(namespace, client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(selector=labels, cluster_ip=cluster_ip,
                                      ports=[client.V1ServicePort(name="tcp", port=PORT)])))
    container = client.V1Container(
        name="server", image=IMAGE, image_pull_policy="IfNotPresent",
        command=["bash", "-c", SERVER],
        ports=[client.V1ContainerPort(container_port=PORT)],
        readiness_probe=client.V1Probe(tcp_socket=client.V1TCPSocketAction(port=PORT),
                                       period_seconds=1),
        volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")])
    apps.create_namespaced_stateful_set(namespace, client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=STS),
        spec=client.V1StatefulSetSpec(
            service_name=STS, replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            pod_management_policy="Parallel",
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=1,
                                      automount_service_account_token=False)),
            volume_claim_templates=[client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="data"),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "64Mi"})))])))
    pods = [f"{STS}-0", f"{STS}-1"]
    for p in pods:
        wait(f"pod {p} Ready", lambda p=p: pod_ready(core, namespace, p))
    return pods


def test_pod_runs_to_completion(core, namespace):
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="once"),
        spec=client.V1PodSpec(restart_policy="Never", automount_service_account_token=False,
                              containers=[client.V1Container(
                                  name="once", image=IMAGE, image_pull_policy="Never",
                                  command=["bash", "-c", "echo done-$((6*7))"])])))
    phase = wait("pod once to finish", lambda: (
        core.read_namespaced_pod("once", namespace).status.phase in ("Succeeded", "Failed")
        and core.read_namespaced_pod("once", namespace).status.phase))
    assert phase == "Succeeded"
    assert core.read_namespaced_pod_log("once", namespace).strip() == "done-42"


def test_exec(core, namespace, statefulset):
    out, err, code = run(core, namespace, statefulset[0], ["bash", "-c", "echo out; echo err >&2; exit 3"])
    assert (out.strip(), err.strip(), code) == ("out", "err", 3)


def test_headless_service_dns(core, namespace, statefulset):
    ips = {p: core.read_namespaced_pod(p, namespace).status.pod_ip for p in statefulset}
    for me, other in (statefulset, reversed(statefulset)):
        fqdn = f"{other}.{STS}.{namespace}.svc.cluster.local"

        def resolved(me=me, fqdn=fqdn):
            out, _err, code = run(core, namespace, me, ["getent", "hosts", fqdn])
            return code == 0 and out.split()[0]
        assert wait(f"{me} resolving {fqdn}", resolved, timeout=30) == ips[other]


def test_clusterip_service_reaches_both_pods(core, namespace, statefulset):
    svc = core.read_namespaced_service(STS + "-lb", namespace)
    assert svc.spec.cluster_ip and svc.spec.cluster_ip != "None"
    seen = set()
    # From inside a pod (one of the two backends, so hairpin traffic too),
    # by name and by ClusterIP.
    script = (f"for i in $(seq 40); do socat -T2 -u TCP:{STS}-lb.{namespace}.svc.cluster.local:{PORT} -;"
              f" socat -T2 -u TCP:{svc.spec.cluster_ip}:{PORT} -; done")
    deadline = time.time() + 60
    while seen != set(statefulset) and time.time() < deadline:
        out, _err, _code = run(core, namespace, statefulset[0], ["bash", "-c", script], timeout=60)
        seen |= set(out.split())
    assert seen == set(statefulset)


def test_pvc_bound_and_data_survives_pod_deletion(core, namespace, statefulset):
    for p in statefulset:
        pvc = core.read_namespaced_persistent_volume_claim(f"data-{p}", namespace)
        assert pvc.status.phase == "Bound"
        assert pvc.spec.storage_class_name == "standard"
    pod = statefulset[0]
    _out, _err, code = run(core, namespace, pod, ["bash", "-c", "echo kept-$HOSTNAME > /data/marker"])
    assert code == 0
    old_uid = core.read_namespaced_pod(pod, namespace).metadata.uid
    core.delete_namespaced_pod(pod, namespace)

    def replaced():
        p = pod_ready(core, namespace, pod)
        return p is not None and p.metadata.uid != old_uid
    wait(f"{pod} replaced and Ready", replaced)
    out, _err, code = run(core, namespace, pod, ["cat", "/data/marker"])
    assert (out.strip(), code) == (f"kept-{pod}", 0)


def test_port_forward_from_python(core, namespace, statefulset):
    pod = statefulset[1]
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(PORT))
    sock = pf.socket(PORT)
    sock.settimeout(10)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    sock.close()
    pf.close()
    assert data.decode().strip() == pod


@pytest.mark.skipif(os.geteuid() != 0, reason="reading iptables needs root")
def test_pod_traffic_cannot_leave_the_machine():
    """The first mangle FORWARD rule (which runs before any filter rule of
    kube-proxy's) sends pod traffic to our chain, which drops what would leave
    through the external interface."""
    import subprocess

    def rules(*args):
        return subprocess.run(["iptables", "-t", "mangle", "-S", *args], check=True,
                              capture_output=True, text=True).stdout.splitlines()
    forward = rules("FORWARD")
    assert forward[1] == "-A FORWARD -j SMYSQL-POD-EGRESS", forward[:3]
    chain = rules("SMYSQL-POD-EGRESS")
    assert len(chain) == 2 and chain[1].startswith("-A SMYSQL-POD-EGRESS -s 10.244.0.0/16 -o ")
    assert chain[1].endswith(" -j DROP")


CLIENT = "smoke-client"
# How soon a policy change must show in the pods' traffic, the probe's exec
# included (1-3 s on a quiet machine, 7 s seen at a load average of 60).
POLICY_SECONDS = 15


@pytest.fixture(scope="module")
def client_pod(core, namespace):
    """A pod that is no backend of the Services: traffic from it is what the
    policies below allow or deny."""
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=CLIENT, labels={"role": CLIENT}),
        spec=client.V1PodSpec(termination_grace_period_seconds=0, automount_service_account_token=False,
                              containers=[client.V1Container(
                                  name="client", image=IMAGE, image_pull_policy="IfNotPresent",
                                  command=["sleep", "infinity"])])))
    wait(f"pod {CLIENT} Ready", lambda: pod_ready(core, namespace, CLIENT))
    return CLIENT


def probe_until(core, ns, source, targets, state, limit):
    """In pod `source`, every 0.2 s: is a TCP connection to each target
    (ip:port) `state` ('open' or 'closed')? Seconds until all were (the exec
    included), or None when not within `limit` (0: one round only)."""
    script = ('end=$((SECONDS+' + str(int(limit)) + ')); while :; do ok=1; for t in "$@"; do '
              'if timeout 2 bash -c \'exec 3<>"/dev/tcp/${0%:*}/${0##*:}"\' "$t" 2>/dev/null; '
              'then s=open; else s=closed; fi; [ "$s" = ' + state + ' ] || ok=0; done; '
              '[ "$ok" = 1 ] && exit 0; [ "$SECONDS" -ge "$end" ] && exit 1; sleep 0.2; done')
    start = time.monotonic()
    _out, err, code = run(core, ns, source, ["bash", "-c", script, "probe", *targets], timeout=limit + 60)
    assert code in (0, 1), f"probe from {source} failed: {err}"
    return time.monotonic() - start if code == 0 else None


def test_network_policy_is_enforced(core, namespace, statefulset, client_pod):
    """From pods only: kube-router admits traffic from the node's own
    addresses whatever the policy says."""
    net = client.NetworkingV1Api()
    ip = {p: core.read_namespaced_pod(p, namespace).status.pod_ip for p in statefulset}
    service_ip = core.read_namespaced_service(STS + "-lb", namespace).spec.cluster_ip
    targets = [f"{ip[statefulset[0]]}:{PORT}", f"{ip[statefulset[1]]}:{PORT}", f"{service_ip}:{PORT}"]
    # A backend to another one's pod IP: not the client, so never allowed below.
    peer, peer_target = statefulset[1], [f"{ip[statefulset[0]]}:{PORT}"]

    assert probe_until(core, namespace, client_pod, targets, "open", 30) is not None, "no traffic before any policy"
    assert probe_until(core, namespace, peer, peer_target, "open", 30) is not None

    deny = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="deny-all"),
        spec=client.V1NetworkPolicySpec(pod_selector=client.V1LabelSelector(), policy_types=["Ingress"]))
    allow = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="allow-client"),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={"app": STS}), policy_types=["Ingress"],
            ingress=[client.V1NetworkPolicyIngressRule(
                _from=[client.V1NetworkPolicyPeer(pod_selector=client.V1LabelSelector(
                    match_labels={"role": CLIENT}))],
                ports=[client.V1NetworkPolicyPort(protocol="TCP", port=PORT)])]))
    try:
        start = time.monotonic()
        net.create_namespaced_network_policy(namespace, deny)
        assert probe_until(core, namespace, client_pod, targets, "closed", POLICY_SECONDS) is not None, \
            f"the default deny did not block the pod IPs and the Service IP within {POLICY_SECONDS}s"
        blocked = time.monotonic() - start
        assert probe_until(core, namespace, peer, peer_target, "closed", POLICY_SECONDS) is not None

        start = time.monotonic()
        net.create_namespaced_network_policy(namespace, allow)
        assert probe_until(core, namespace, client_pod, targets, "open", POLICY_SECONDS) is not None, \
            "the allow rule did not admit the client"
        admitted = time.monotonic() - start
        # Only the client: the other backend stays denied.
        assert probe_until(core, namespace, peer, peer_target, "closed", 0) is not None, \
            f"{peer} got through, but only {CLIENT} is allowed"

        start = time.monotonic()
        net.delete_namespaced_network_policy("allow-client", namespace)
        net.delete_namespaced_network_policy("deny-all", namespace)
        assert probe_until(core, namespace, client_pod, targets, "open", POLICY_SECONDS) is not None
        assert probe_until(core, namespace, peer, peer_target, "open", POLICY_SECONDS) is not None, \
            "traffic not restored once the policies are gone"
        print(f"blocked {blocked:.1f}s after the deny, admitted {admitted:.1f}s after the allow, "
              f"restored {time.monotonic() - start:.1f}s after the delete")
    finally:
        for name in ("allow-client", "deny-all"):
            try:
                net.delete_namespaced_network_policy(name, namespace)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
