"""The empty-primary rule on the shared deployed_cluster: once the cluster
has run, a primary whose volume is lost refuses to start a new, empty
cluster, and reseed_primary.yml copies the most advanced replica into it and
has every replica follow it again, losing no row any replica held. The
cluster is healthy afterwards, so the tests that follow run on a reseeded
primary (MySQL 9.7 with CLONE, MariaDB with the backup stream)."""
import os
import time

import pytest
from kubernetes.client.rest import ApiException

from kube import ROOT, run_playbook

REPLICAS = 3
REFUSAL = "reseed_primary.yml -e confirm="


def _count(c, pod, table="e2e.reseed"):
    return int(c.sql(pod, "SELECT COUNT(*) FROM %s" % table))


def _wait_count(c, pod, expected, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = _count(c, pod)
        except AssertionError:
            got = None
        if got == expected:
            return
        assert time.monotonic() < deadline, "%s holds %s rows, not %s" % (pod, got, expected)
        time.sleep(1)


def _gtid(c, pod):
    var = "gtid_executed" if c.flavor == "mysql" else "gtid_slave_pos"
    return c.sql(pod, "SELECT @@GLOBAL.%s" % var).replace("\n", "")


def _init_terminations(c, pod):
    """Termination messages of the init container (current and last state)."""
    try:
        p = c.core.read_namespaced_pod(pod, c.namespace)
    except ApiException:
        return None, []
    msgs = []
    for s in p.status.init_container_statuses or []:
        if s.name != "init":
            continue
        for state in (s.state, s.last_state):
            if state is not None and state.terminated is not None:
                msgs.append((state.terminated.exit_code, state.terminated.message or ""))
    return p, msgs


def test_reseed_wants_the_cluster_name(deployed_cluster):
    c = deployed_cluster
    out, recap = run_playbook(os.path.join(ROOT, "reseed_primary.yml"), *c.deploy_args, "-e", "confirm=other",
                              check=False)
    assert recap.get("failed") == 1 and recap.get("changed") == 0, out[-3000:]
    assert "-e confirm=%s" % c.name in out


# CI time: MariaDB 10.11 takes the same path as 11.8 (backup stream, gtid_slave_pos).
# The landing tier reseeds MariaDB 11.8, the harder path: the stream into
# ordinal 0, and gtid_binlog_state carried on from the copy.
@pytest.mark.only_flavors("mysql-9.7", "mariadb-11.8")
@pytest.mark.landing("mariadb-11.8")
def test_empty_primary_refuses_and_reseed_brings_every_row_back(deployed_cluster):
    c = deployed_cluster
    c.wait_ready(REPLICAS, timeout=300)
    primary, r1, r2 = c.pod(0), c.pod(1), c.pod(2)
    state = c.core.read_namespaced_config_map("%s-state" % c.name, c.namespace)
    assert state.data == {"initialised": "true"}
    stop = "STOP REPLICA" if c.flavor == "mysql" else "STOP SLAVE"

    c.sql(primary, "CREATE DATABASE IF NOT EXISTS e2e; DROP TABLE IF EXISTS e2e.reseed; "
                   "CREATE TABLE e2e.reseed (id INT PRIMARY KEY)")
    c.sql(primary, "INSERT INTO e2e.reseed VALUES " + ",".join("(%d)" % i for i in range(1, 51)))
    _wait_count(c, r1, 50)
    _wait_count(c, r2, 50)
    # The last rows reach replica 1 only: the recovery must take them from it,
    # and bring replica 2 up to it.
    c.sql(r2, stop)
    c.sql(primary, "INSERT INTO e2e.reseed VALUES " + ",".join("(%d)" % i for i in range(51, 61)))
    _wait_count(c, r1, 60)
    assert _count(c, r2) == 50
    before = {r1: _gtid(c, r1), r2: _gtid(c, r2)}

    # The primary's volume is lost: its claim and its pod are deleted.
    uid = c.core.read_namespaced_pod(primary, c.namespace).metadata.uid
    c.core.delete_namespaced_persistent_volume_claim("data-%s" % primary, c.namespace)
    c.core.delete_namespaced_pod(primary, c.namespace, grace_period_seconds=5)
    deadline = time.monotonic() + 300
    while True:
        pod, msgs = _init_terminations(c, primary)
        if pod is not None and pod.metadata.uid != uid and any(REFUSAL in m[1] for m in msgs):
            break
        assert time.monotonic() < deadline, "%s never refused its empty volume: %s" % (primary, msgs)
        time.sleep(2)
    assert all(m[0] != 0 for m in msgs), msgs
    assert "empty volume on the primary" in msgs[0][1], msgs
    time.sleep(10)  # it keeps refusing: never Ready, and the replicas keep their data
    pod = c.core.read_namespaced_pod(primary, c.namespace)
    assert not any(s.ready for s in pod.status.container_statuses or [])
    assert (_count(c, r1), _count(c, r2)) == (60, 50)
    assert {r1: _gtid(c, r1), r2: _gtid(c, r2)} == before

    started = time.monotonic()
    out, recap = run_playbook(os.path.join(ROOT, "reseed_primary.yml"), *c.deploy_args, "-e", "confirm=%s" % c.name)
    took = time.monotonic() - started
    assert recap["failed"] == 0 and recap["changed"] > 0, out[-4000:]
    print("reseed_primary.yml took %.0f s" % took)

    # Every row is back on every pod, from the most advanced replica.
    for pod_name in (primary, r1, r2):
        _wait_count(c, pod_name, 60)
    events = c.events(primary)
    assert "reseed: primary made from %s" % r1 in events, events
    assert "primary initialised" not in events
    # Replication runs, with GTID, from the reseeded primary.
    c.sql(primary, "INSERT INTO e2e.reseed VALUES (61)")
    for pod_name in (r1, r2):
        _wait_count(c, pod_name, 61)
        st = c.replica_status(pod_name)
        assert st.get("Replica_IO_Running", st.get("Slave_IO_Running")) == "Yes", st
        assert st.get("Replica_SQL_Running", st.get("Slave_SQL_Running")) == "Yes", st
        assert st.get("Source_Host", st.get("Master_Host")) == "%s.%s.%s.svc" % (primary, c.name, c.namespace), st
        if c.flavor == "mysql":
            assert st["Auto_Position"] == "1"
        else:
            assert st["Using_Gtid"] == "Slave_Pos"
    c.wait_ready(REPLICAS, timeout=300)
    assert c.core.read_namespaced_config_map("%s-state" % c.name, c.namespace).data == {"initialised": "true"}

    # Nothing left to do for either playbook.
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args)
    assert recap["changed"] == 0 and recap["failed"] == 0, out[-4000:]
    out, recap = run_playbook(os.path.join(ROOT, "reseed_primary.yml"), *c.deploy_args, "-e", "confirm=%s" % c.name)
    assert recap["changed"] == 0 and recap["failed"] == 0, out[-4000:]
