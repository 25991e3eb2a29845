"""Data safety (issue 25) on the local Kubernetes: losing one thing (a
volume, the StatefulSet and its ConfigMaps, a donor mid-copy) never makes a
replica wipe its data, and a primary behind its replicas refuses to serve
until reseed_primary.yml copies the most advanced replica into it.

One cluster per flavor (MySQL 9.7, MariaDB 11.8), OrderedReady (the
default), serves the tests in order; the errant replica's test runs on the
session's Parallel cluster. The durability settings and a given
Secret's bad content are test_site.py's (the suite's shared clusters)."""
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
from kubernetes.client.rest import ApiException

from kube import (PREFIX, ROOT, Cluster, budgets, checksums_equal, count, delete_namespace, deploy_args, executions,
                  pod_ready, run_playbook, scale, wait_claims, wait_until, write_rows)

FLAVORS = [("mysql", "9.7"), ("mariadb", "11.8")]
# The landing tier on MariaDB 11.8 (one cluster for every drill here): its
# fence compares GTID domains and server ids, its reseed streams into
# ordinal 0 and carries gtid_binlog_state on. MySQL 9.7's: the full tier.
pytestmark = pytest.mark.landing("mariadb-11.8")
REPLICAS = 3
RESEED = "reseed_primary.yml -e confirm="
# What a wipe of a replica's data writes in its events.log (init.sh).
WIPES = ("re-copy:", "unfinished first start found")
# init.sh / returning.sh: a stalled backup stream is given up after this.
STREAM_IDLE_SECONDS = 60


@pytest.fixture(scope="module", params=FLAVORS, ids=["%s-%s" % f for f in FLAVORS])
def safe(request, kube_ready, tmp_path_factory):
    flavor, version = request.param
    namespace = "%s-safe-%s-%s" % (PREFIX, flavor, version.replace(".", ""))
    delete_namespace(namespace)
    args = deploy_args(flavor, version, "db", namespace, str(tmp_path_factory.mktemp("vars")))
    run_playbook(os.path.join(ROOT, "site.yml"), *args)
    c = Cluster("db", namespace, flavor, version)
    c.deploy_args = args
    c.sql(c.pod(0), "CREATE DATABASE e2e; CREATE TABLE e2e.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))")
    write_rows(c, 50)
    checksums_equal(c, REPLICAS)
    yield c
    if os.environ.get("E2E_KEEP") != "1":
        delete_namespace(namespace, wait=False)


def rows(c, pod):
    return int(c.sql(pod, "SELECT COUNT(*) FROM e2e.t"))


def wipes(c, pod):
    events = c.events(pod)
    return sum(count(events, w) for w in WIPES)


def init_refusal(c, pod, uid=None, timeout=300):
    """The init container's termination message once it refuses (a new pod
    when uid, the old pod's, is given)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            p = c.core.read_namespaced_pod(pod, c.namespace)
        except ApiException:
            p = None
        if p is not None and p.metadata.uid != uid:
            for st in p.status.init_container_statuses or []:
                for state in (st.state, st.last_state):
                    term = state.terminated if state is not None else None
                    if st.name == "init" and term is not None and term.exit_code and RESEED in (term.message or ""):
                        return term.message
                    if term is not None:
                        seen.append((st.name, term.exit_code, (term.message or "")[-300:]))
        time.sleep(2)
    raise AssertionError("%s never refused: %s" % (pod, seen[-3:]))


class HeldAway:
    """Keep a pod of the StatefulSet from being created again (a
    ResourceQuota one pod short), so that its volume can be worked on."""

    def __init__(self, c, ordinal):
        self.c, self.pod = c, c.pod(ordinal)

    def __enter__(self):
        c = self.c
        quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "e2e-hold"},
                 "spec": {"hard": {"pods": str(len(c.pods()) - 1)}}}
        c.core.create_namespaced_resource_quota(c.namespace, quota)
        deadline = time.monotonic() + 30
        while not c.core.read_namespaced_resource_quota("e2e-hold", c.namespace).status.used:
            assert time.monotonic() < deadline, "quota not counting pods"
            time.sleep(1)
        c.core.delete_namespaced_pod(self.pod, c.namespace, grace_period_seconds=30)
        deadline = time.monotonic() + 120
        while self.pod in [p.metadata.name for p in c.pods()]:
            assert time.monotonic() < deadline, "%s not gone" % self.pod
            time.sleep(1)
        return self

    def __exit__(self, *exc):
        c = self.c
        c.core.delete_namespaced_resource_quota("e2e-hold", c.namespace)
        # Wake the StatefulSet controller, which backs off from refused creates.
        c.apps.patch_namespaced_stateful_set(c.name, c.namespace,
                                             {"metadata": {"annotations": {"stateful.mysql/e2e-poke": str(time.time())}}})
        return False


def volume_path(c, pod):
    """The hostPath directory of a pod's data volume (the node is this machine)."""
    pvc = c.core.read_namespaced_persistent_volume_claim("data-%s" % pod, c.namespace)
    return c.core.read_persistent_volume(pvc.spec.volume_name).spec.host_path.path


def _donor_containers(c):
    """container id of each pod's donor sidecar -> pod name."""
    out = {}
    for p in c.pods():
        for st in p.status.container_statuses or []:
            if st.name == "donor" and st.container_id:
                out[st.container_id.split("://", 1)[-1]] = p.metadata.name
    return out


def _pids_of(cid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cgroup" % entry) as fh:
                    if fh.read().rstrip().endswith(cid):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def _freeze_first_stream(donors, stop, frozen):
    """From the node: the first donor sidecar whose backup tool has written
    bytes (a stream under way) has every process stopped (SIGSTOP)."""
    while not stop.is_set():
        for cid, pod in donors.items():
            for pid in _pids_of(cid):
                try:
                    with open("/proc/%d/comm" % pid) as fh:
                        comm = fh.read().strip()
                    with open("/proc/%d/io" % pid) as fh:
                        wchar = int([line.split()[1] for line in fh if line.startswith("wchar:")][0])
                except (OSError, IndexError, ValueError):
                    continue
                if comm.startswith(("mariadb-backup", "mariabackup")) and wchar > 0:
                    pids = _pids_of(cid)
                    for p in pids:
                        os.kill(p, signal.SIGSTOP)
                    frozen.update(pod=pod, pids=pids, at=time.monotonic())
                    return
        time.sleep(0.02)


@pytest.mark.only_flavors("mariadb-11.8")
@pytest.mark.full_tier  # since stop 37: the landing tier's budget
def test_a_donor_frozen_mid_stream_is_given_up_for_another(safe):
    """A new replica's donor stops mid-stream (every process of its donor
    sidecar SIGSTOPped from the node once the backup has written bytes): the
    recipient gives the stream up within STREAM_IDLE_SECONDS and copies from
    another donor; one copy finished, one CHANGE, every row."""
    c = safe
    write_rows(c, 200)
    checksums_equal(c, REPLICAS)
    stop, frozen = threading.Event(), {}
    watcher = threading.Thread(target=_freeze_first_stream, args=(_donor_containers(c), stop, frozen), daemon=True)
    watcher.start()
    new = c.pod(REPLICAS)
    try:
        c.apps.patch_namespaced_stateful_set(c.name, c.namespace, {"spec": {"replicas": REPLICAS + 1}})
        c.wait_ready(REPLICAS + 1, timeout=STREAM_IDLE_SECONDS + 300)
    finally:
        stop.set()
        watcher.join(10)
        for p in frozen.get("pids", []):
            try:
                os.kill(p, signal.SIGCONT)
            except OSError:
                pass
    assert frozen, "no donor stream was seen to start"
    events = c.events(new)
    lines = events.splitlines()
    started = [i for i, line in enumerate(lines) if "backup stream started from %s." % frozen["pod"] in line]
    gave_up = [i for i, line in enumerate(lines) if "backup stream from %s." % frozen["pod"] in line and "stalled" in line]
    assert started and gave_up and gave_up[0] > started[0], events
    after = lines[gave_up[0] + 1:]
    assert any("backup stream started from" in line and frozen["pod"] not in line for line in after), events
    assert count(events, "backup received and prepared") == 1 and count(events, "CHANGE:") == 1, events
    assert count(events, "done-marker written") == 1, events
    checksums_equal(c, REPLICAS + 1)
    scale(c, REPLICAS)


@pytest.mark.only_flavors("mariadb-11.8")
def test_errant_then_replicated_is_never_a_donor_and_recopied_only_when_asked(parallel_cluster):
    """MariaDB with gtid_strict_mode off (set at runtime, in the test): a
    replica writes a transaction of its own, then replicated ones follow, so
    gtid_binlog_pos no longer shows it. It is NotReady, a new replica does not
    copy from it, nothing wipes it by itself, and the role re-copies it only
    when asked (mysql_cluster_recopy_broken_replicas).

    On the Parallel cluster (conftest.parallel_cluster), at the two pods its
    site.yml arguments declare: an OrderedReady StatefulSet creates no new
    pod while the errant one is NotReady, so there the new replica only met
    it in the seconds before its probe failed (CI's run of 5438d69 lost that
    race)."""
    c = parallel_cluster
    # A drill of test_primary_away.py may have left a third pod; site.yml
    # below would remove it.
    start = 2
    scale(c, start, timeout=300)
    # A new pod 2 must find no volume left (whenScaled Delete), so it copies.
    wait_claims(c, start)
    primary, errant, new = c.pod(0), c.pod(1), c.pod(start)
    others = [c.pod(i) for i in range(start) if i != 1]
    c.sql(primary, "CREATE DATABASE IF NOT EXISTS e2e; "
                   "CREATE TABLE IF NOT EXISTS e2e.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))")
    server_id = c.sql(errant, "SELECT @@GLOBAL.server_id")
    c.sql(errant, "SET GLOBAL gtid_strict_mode = OFF; CREATE TABLE e2e.errant (id INT PRIMARY KEY)")
    write_rows(c, 10)
    checksums_equal(c, start)
    pos = c.sql(errant, "SELECT @@GLOBAL.gtid_binlog_pos")
    state = c.sql(errant, "SELECT @@GLOBAL.gtid_binlog_state")
    assert "-%s-" % server_id not in pos and "-%s-" % server_id in state, (pos, state)
    rc, _out, err = c.exec(errant, ["bash", "/etc/stateful-mysql/scripts/probe.sh", "ready"])
    assert rc != 0 and "errant transactions" in err, (rc, err)
    # Its Ready condition gone (the kubelet's probe), it still resolves (the
    # headless Service publishes NotReady pods): the donor check must refuse it.
    wait_until(lambda: not pod_ready(c, errant), 120, "%s NotReady" % errant, step=1)
    c.apps.patch_namespaced_stateful_set(c.name, c.namespace, {"spec": {"replicas": start + 1}})
    wait_until(lambda: pod_ready(c, new), 600, "%s Ready" % new, step=2)
    events = c.events(new)
    source = [line for line in events.splitlines() if "backup stream started from" in line]
    assert source and all(errant not in line for line in source), events
    log = c.core.read_namespaced_pod_log(new, c.namespace, container="init")
    assert "not a donor: %s" % errant in log and "holds transactions of its own" in log, log[-3000:]
    sums = {p: c.sql(p, "CHECKSUM TABLE e2e.t").split("\t")[-1] for p in others + [new]}
    assert len(set(sums.values())) == 1, sums
    assert all(pod_ready(c, p) for p in others), "a pod beside the errant one is NotReady"
    assert not pod_ready(c, errant)
    c.apps.patch_namespaced_stateful_set(c.name, c.namespace, {"spec": {"replicas": start}})
    wait_until(lambda: len(c.pods()) == start, 300, "back to %s pods" % start, step=2)
    # Nothing wipes it by itself; the role names it, and re-copies it when asked.
    assert wipes(c, errant) == 0
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args, check=False)
    assert recap.get("failed") == 1, out[-3000:]
    flat = " ".join(out.split())
    assert "waiting cannot heal %s" % errant in flat and "errant_transactions" in flat, out[-3000:]
    assert c.sql(errant, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'errant'") == "1"
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args,
                              "-e", "mysql_cluster_recopy_broken_replicas=true")
    assert recap["failed"] == 0, out[-3000:]
    assert c.sql(errant, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'errant'") == "0"
    assert count(c.events(errant), "re-copy: re-copy requested: errant_transactions") == 1
    checksums_equal(c, start)
    c.wait_ready(start, timeout=300)


def test_primary_on_an_older_copy_of_its_volume_refuses_to_serve(safe):
    """Pod 0 starts on an older copy of its own volume (saved while it was
    away): it refuses to serve, naming the recovery; the replicas keep every
    row and wipe nothing; reseed_primary.yml brings every row back on every
    pod and sets the stale data aside on pod 0's volume."""
    c = safe
    primary = c.pod(0)
    saved = "/tmp/%s-%s-old-%s" % (c.namespace, primary, uuid.uuid4().hex[:6])
    path = volume_path(c, primary)
    try:
        # Removed whatever fails below (CI's run of 5438d69 left one in /tmp).
        with HeldAway(c, 0):
            subprocess.run(["cp", "-a", path, saved], check=True)
        c.wait_ready(REPLICAS, timeout=300)
        write_rows(c, 30)
        sums = checksums_equal(c, REPLICAS)
        held = rows(c, c.pod(1))
        wiped = {c.pod(i): wipes(c, c.pod(i)) for i in range(1, REPLICAS)}
        with HeldAway(c, 0):
            subprocess.run(["bash", "-c", 'find "$1" -mindepth 1 -delete && cp -a "$2"/. "$1"/', "restore", path, saved],
                           check=True)
        message = init_refusal(c, primary)
    finally:
        subprocess.run(["rm", "-rf", saved], check=False)
    assert "this primary is behind its replicas" in message, message
    # It never served: never Ready, and the replicas keep their data.
    assert not any(s.ready for s in c.core.read_namespaced_pod(primary, c.namespace).status.container_statuses or [])
    for i in range(1, REPLICAS):
        assert rows(c, c.pod(i)) == held and wipes(c, c.pod(i)) == wiped[c.pod(i)], c.pod(i)
    out, recap = run_playbook(os.path.join(ROOT, "reseed_primary.yml"), *c.deploy_args, "-e", "confirm=%s" % c.name)
    assert recap["failed"] == 0 and recap["changed"] > 0, out[-4000:]
    assert checksums_equal(c, REPLICAS) == sums
    assert rows(c, primary) == held
    events = c.events(primary)
    assert count(events, "reseed: the data this primary held is set aside") == 1, events
    assert os.listdir(os.path.join(path, "set-aside")), "the stale data is not kept"
    write_rows(c, 5)
    checksums_equal(c, REPLICAS)


def test_statefulset_recreated_without_the_primary_volume(safe, tmp_path):
    """The StatefulSet deleted (foreground: its pods go, its PVCs stay) with
    its state ConfigMap, pod 0's PVC deleted, then site.yml run again: pod 0
    refuses and site.yml fails at once naming the recovery; every replica
    keeps every row and wipes nothing; reseed_primary.yml (which starts the
    replicas as Parallel for the recovery, the StatefulSet being
    OrderedReady) brings every row back on every pod."""
    c = safe
    write_rows(c, 20)
    sums = checksums_equal(c, REPLICAS)
    held = rows(c, c.pod(1))
    wiped = {c.pod(i): wipes(c, c.pod(i)) for i in range(1, REPLICAS)}
    c.apps.delete_namespaced_stateful_set(c.name, c.namespace, propagation_policy="Foreground")
    c.core.delete_namespaced_config_map("%s-state" % c.name, c.namespace)
    deadline = time.monotonic() + 300
    while c.pods():
        assert time.monotonic() < deadline, "pods not gone"
        time.sleep(2)
    c.core.delete_namespaced_persistent_volume_claim("data-%s" % c.pod(0), c.namespace)
    deadline = time.monotonic() + 120
    while "data-%s" % c.pod(0) in [p.metadata.name for p in c.core.list_namespaced_persistent_volume_claim(c.namespace).items]:
        assert time.monotonic() < deadline, "pod 0's PVC not gone"
        time.sleep(2)
    started = time.monotonic()
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args, check=False)
    assert recap.get("failed") == 1, out[-4000:]
    flat = " ".join(out.split())
    assert "reseed_primary.yml" in flat and "empty volume on the primary" in flat, out[-4000:]
    assert time.monotonic() - started < 600
    assert c.core.read_namespaced_config_map("%s-state" % c.name, c.namespace).data.get("initialised") == "true"
    message = init_refusal(c, c.pod(0))
    assert "empty volume on the primary" in message, message
    out, recap = run_playbook(os.path.join(ROOT, "reseed_primary.yml"), *c.deploy_args, "-e", "confirm=%s" % c.name,
                              count=tmp_path / "reseed.json")
    assert recap["failed"] == 0 and recap["changed"] > 0, out[-4000:]
    # The longest recovery (StatefulSet recreated Parallel and back) within README "Execution budgets".
    total, tasks = executions(tmp_path / "reseed.json")
    assert total <= budgets()["reseed_primary.yml -e confirm=<name>"], (total, tasks)
    assert checksums_equal(c, REPLICAS) == sums
    for i in range(REPLICAS):
        assert rows(c, c.pod(i)) == held, c.pod(i)
    for i in range(1, REPLICAS):
        assert wipes(c, c.pod(i)) == wiped[c.pod(i)], c.events(c.pod(i))
    assert c.apps.read_namespaced_stateful_set(c.name, c.namespace).spec.pod_management_policy == "OrderedReady"
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args)
    assert recap["failed"] == 0, out[-3000:]
    write_rows(c, 5)
    checksums_equal(c, REPLICAS)
