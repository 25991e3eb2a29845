"""The role's NetworkPolicy (on by default), enforced on the local cluster by
kube-router's firewall: only the cluster's own pods reach its server port
(3306) and its backup-stream port (3307); a pod that
`mysql_cluster_network_policy_from` lists reaches the server port and the
read Service, never the stream port; the members keep replicating and a
scale-out still copies through the stream port.

Every probe runs in a pod, against pod IPs and the Service IP: kube-router
admits whatever comes from the node's own addresses, so a probe from the
host would prove nothing. One MariaDB cluster (it has both ports) serves
every test here."""
import os
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kube import PREFIX, ROOT, Cluster, api, delete_namespace, deploy_args, run_playbook

NAMESPACE = "%s-netpol" % PREFIX
OTHER_NAMESPACE = "%s-netpol-other" % PREFIX
NAME = "np"
FLAVOR, VERSION = "mariadb", "10.11"
IMAGE = "localhost/stateful-mysql/mariadb:10.11"
# The label the deploy lists in mysql_cluster_network_policy_from.
CLIENT_LABEL = {"stateful-mysql-test/client": "app"}
PORTS = (3306, 3307)

# Prints "<ip>:<port> open|closed" for each argument: open when a TCP
# connection is established within 4 s.
PROBE = ('for t in "$@"; do if timeout 4 bash -c \'exec 3<>"/dev/tcp/${0%:*}/${0##*:}"\' "$t" 2>/dev/null; '
         'then echo "$t open"; else echo "$t closed"; fi; done')


def client_pod(core, namespace, name, labels):
    """A pod with bash, socat and the client (the MariaDB image), running as
    nobody with the restricted profile's settings."""
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(
            termination_grace_period_seconds=0, automount_service_account_token=False,
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True, run_as_user=65534, run_as_group=65534,
                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
            containers=[client.V1Container(
                name="client", image=IMAGE, image_pull_policy="IfNotPresent", command=["sleep", "infinity"],
                security_context=client.V1SecurityContext(
                    allow_privilege_escalation=False, capabilities=client.V1Capabilities(drop=["ALL"])))])))


def wait_running(core, namespace, name, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase == "Running" and pod.status.pod_ip:
            return pod
        time.sleep(1)
    raise AssertionError("pod %s/%s not Running within %s s" % (namespace, name, timeout))


def ensure_namespace(core, namespace):
    delete_namespace(namespace)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    deadline = time.monotonic() + 60
    while True:  # pods need the namespace's default ServiceAccount
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException:
            assert time.monotonic() < deadline, "no default ServiceAccount in %s" % namespace
            time.sleep(0.5)


class Probes:
    """Client pods, one of each kind, and what they reach."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.core = cluster.core
        self.here = Cluster(NAME, NAMESPACE, FLAVOR, VERSION)
        self.other = Cluster(NAME, OTHER_NAMESPACE, FLAVOR, VERSION)
        # name -> (exec helper, container)
        self.pods = {
            "listed": (self.here, "client"),      # matched by mysql_cluster_network_policy_from
            "stranger": (self.here, "client"),    # same namespace, not listed, not a member
            "outsider": (self.other, "client"),   # another namespace, with the listed label
        }

    def targets(self, ordinals, ports=PORTS):
        ips = {p.metadata.name: p.status.pod_ip for p in self.cluster.pods()}
        return ["%s:%d" % (ips[self.cluster.pod(i)], port) for i in ordinals for port in ports]

    def read_service(self):
        return "%s:3306" % self.core.read_namespaced_service(NAME + "-read", NAMESPACE).spec.cluster_ip

    def reach(self, pod, targets, container=None, via=None):
        """{target: True when a connection was established} from `pod`."""
        helper, default_container = self.pods.get(pod, (via, "mysql"))
        rc, out, err = helper.exec(pod, ["bash", "-c", PROBE, "probe"] + targets,
                                   container=container or default_container, timeout=120)
        assert rc == 0, "probe from %s failed: %s" % (pod, err)
        seen = dict(line.rsplit(" ", 1) for line in out.split("\n") if line)
        assert sorted(seen) == sorted(targets), out
        return {t: seen[t] == "open" for t in targets}


@pytest.fixture(scope="module")
def guarded(kube_ready, tmp_path_factory):
    """A 2-pod MariaDB cluster whose policy lists CLIENT_LABEL, and the three
    client pods."""
    core = api()[0]
    delete_namespace(NAMESPACE)
    tmp = str(tmp_path_factory.mktemp("netpol"))
    extra = {"mysql_cluster_replicas": 2,
             "mysql_cluster_network_policy_from": [{"podSelector": {"matchLabels": CLIENT_LABEL}}]}
    started = time.monotonic()
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *deploy_args(FLAVOR, VERSION, NAME, NAMESPACE, tmp, extra))
    assert recap["failed"] == 0, out[-3000:]
    cluster = Cluster(NAME, NAMESPACE, FLAVOR, VERSION)
    cluster.wait_ready(2, timeout=600)
    cluster.tmp, cluster.extra = tmp, extra
    ensure_namespace(core, OTHER_NAMESPACE)
    client_pod(core, NAMESPACE, "listed", CLIENT_LABEL)
    client_pod(core, NAMESPACE, "stranger", {"stateful-mysql-test/client": "stranger"})
    client_pod(core, OTHER_NAMESPACE, "outsider", CLIENT_LABEL)
    for ns, pod in ((NAMESPACE, "listed"), (NAMESPACE, "stranger"), (OTHER_NAMESPACE, "outsider")):
        wait_running(core, ns, pod)
    print("netpol cluster ready in %.0f s" % (time.monotonic() - started))
    yield Probes(cluster)
    if os.environ.get("E2E_KEEP") != "1":
        delete_namespace(OTHER_NAMESPACE, wait=False)
        delete_namespace(NAMESPACE, wait=False)


def test_policy_is_the_roles(guarded):
    """The deploy made the policy these tests rely on, listing our label."""
    net = client.NetworkingV1Api()
    policy = net.read_namespaced_network_policy(NAME, NAMESPACE)
    peers = [p.pod_selector.match_labels for rule in policy.spec.ingress for p in rule._from]
    assert CLIENT_LABEL in peers, peers


def test_members_reach_both_ports(guarded):
    """The control: both ports listen, and the members reach them."""
    for me, other in ((0, 1), (1, 0)):
        seen = guarded.reach(guarded.cluster.pod(me), guarded.targets([other]) + [guarded.read_service()],
                             via=guarded.cluster)
        assert all(seen.values()), "member %s is refused: %s" % (guarded.cluster.pod(me), seen)


def test_non_members_reach_no_port(guarded):
    """Neither a pod of the same namespace nor one of another namespace (even
    with the listed label: a podSelector peer means this namespace) reaches
    either port of any cluster pod, or the read Service."""
    targets = guarded.targets([0, 1]) + [guarded.read_service()]
    for pod in ("stranger", "outsider"):
        seen = guarded.reach(pod, targets)
        assert not any(seen.values()), "%s got through: %s" % (pod, seen)
    # Their network works otherwise: the outsider resolves the cluster's names.
    rc, out, _err = guarded.other.exec("outsider", ["getent", "hosts", "%s-0.%s.%s.svc.cluster.local"
                                                    % (NAME, NAME, NAMESPACE)], container="client")
    assert rc == 0 and out.split()[0] == guarded.targets([0], (3306,))[0].split(":")[0]


def test_listed_peer_reaches_server_port_only(guarded):
    """mysql_cluster_network_policy_from admits its peer to 3306 of every pod
    and to the read Service (where the server greets it), never to 3307."""
    server = guarded.targets([0, 1], (3306,)) + [guarded.read_service()]
    stream = guarded.targets([0, 1], (3307,))
    seen = guarded.reach("listed", server + stream)
    assert all(seen[t] for t in server), seen
    assert not any(seen[t] for t in stream), seen
    greeting = guarded.here.sh("listed", "timeout 10 socat -T5 -u TCP:%s - | head -c 128 | tr -c '[:print:]' ." %
                               guarded.read_service(), container="client")
    assert "MariaDB" in greeting, greeting


def test_members_replicate_and_a_scale_out_copies(guarded):
    """Replication (3306) and the new replica's copy (3307) run between
    members; the new member is guarded as soon as it runs."""
    c = guarded.cluster
    marker = uuid.uuid4().hex
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS np; CREATE TABLE IF NOT EXISTS np.t "
                    "(id VARCHAR(64) PRIMARY KEY); INSERT INTO np.t VALUES ('%s')" % marker)
    query = "SELECT COUNT(*) FROM np.t WHERE id = '%s'" % marker
    deadline = time.monotonic() + 60
    while c.sql(c.pod(1), query) != "1":
        assert time.monotonic() < deadline, "%s never received the row" % c.pod(1)
        time.sleep(0.5)
    started = time.monotonic()
    extra = dict(c.extra, mysql_cluster_replicas=3)
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *deploy_args(FLAVOR, VERSION, NAME, NAMESPACE, c.tmp, extra))
    assert recap["failed"] == 0, out[-3000:]
    c.wait_ready(3, timeout=600)
    print("scale-out to 3 Ready in %.0f s" % (time.monotonic() - started))
    events = c.events(c.pod(2))
    assert "backup received and prepared" in events, events
    # One stream is what we have seen; a second one would mean the first was
    # refused because the firewall had not yet learnt the new pod's address
    # (the kubelet retries the init container, so it still copies).
    print("np-2 streams: %d" % events.count("backup stream started"))
    assert c.sql(c.pod(2), query) == "1"
    st = c.replica_status(c.pod(2))
    assert st["Slave_IO_Running"] == "Yes" and st["Slave_SQL_Running"] == "Yes", st
    seen = guarded.reach("stranger", guarded.targets([2]))
    assert not any(seen.values()), "the new member lets a stranger in: %s" % seen
