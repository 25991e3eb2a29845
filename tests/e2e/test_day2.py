"""Day-2 playbooks on the local Kubernetes: scale.yml, verify.yml and
teardown.yml on one MySQL 9.7 cluster deployed once for this module (plus a
small second cluster in the same namespace for the teardown's isolation).
The tests run in file order: the last one removes the cluster."""
import os
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kube import PASSWORDS, PREFIX, ROOT, Cluster, delete_namespace, deploy_args, run_playbook

NAMESPACE = "%s-day2" % PREFIX
NAME = "db"
OTHER = "other"
SCALE = os.path.join(ROOT, "scale.yml")
SITE = os.path.join(ROOT, "site.yml")
VERIFY = os.path.join(ROOT, "verify.yml")
TEARDOWN = os.path.join(ROOT, "teardown.yml")
TABLE_HEADER = ["pod", "role", "server_id", "IO", "SQL", "lag", "executed", "GTID", "set", "last", "error"]


@pytest.fixture(scope="module")
def day2(kube_ready, tmp_path_factory):
    """One MySQL 9.7 cluster, the replica count left unset (site.yml's 3)."""
    delete_namespace(NAMESPACE)
    started = time.monotonic()
    args = deploy_args("mysql", "9.7", NAME, NAMESPACE, str(tmp_path_factory.mktemp("day2")))
    out, recap = run_playbook(SITE, *args)
    c = Cluster(NAME, NAMESPACE, "mysql", "9.7")
    c.deploy_args = args
    c.deploy_output = out
    c.tmp = str(tmp_path_factory.mktemp("day2-other"))
    print("day2: deployed in %.0f s" % (time.monotonic() - started))
    yield c
    if os.environ.get("E2E_KEEP") != "1":
        delete_namespace(NAMESPACE)


def versions(c, name=None):
    """resourceVersion (the PDB's generation) of every object site.yml made for one cluster."""
    core, apps = c.core, c.apps
    ns, name = c.namespace, name or c.name
    return {
        "StatefulSet": apps.read_namespaced_stateful_set(name, ns).metadata.resource_version,
        "Service": core.read_namespaced_service(name, ns).metadata.resource_version,
        "Service read": core.read_namespaced_service(name + "-read", ns).metadata.resource_version,
        "ConfigMap config": core.read_namespaced_config_map(name + "-config", ns).metadata.resource_version,
        "ConfigMap scripts": core.read_namespaced_config_map(name + "-scripts", ns).metadata.resource_version,
        "Secret": core.read_namespaced_secret(name + "-credentials", ns).metadata.resource_version,
        # The disruption controller rewrites its status as pods come and go:
        # its spec's generation shows our writes.
        "PDB": client.PolicyV1Api().read_namespaced_pod_disruption_budget(name, ns).metadata.generation,
        "NetworkPolicy": client.NetworkingV1Api().read_namespaced_network_policy(name, ns).metadata.resource_version,
    }


def no_password(out):
    for key, password in PASSWORDS.items():
        assert password not in out, "%s in the playbook's output" % key


def pvcs(c, name=None):
    """{PVC name: (uid, bound PV)} of one cluster's claim template."""
    prefix = "data-%s-" % (name or c.name)
    items = c.core.list_namespaced_persistent_volume_claim(c.namespace).items
    return {p.metadata.name: (p.metadata.uid, p.spec.volume_name) for p in items
            if p.metadata.name.startswith(prefix) and p.metadata.name[len(prefix):].isdigit()}


def pv_names(c):
    return {v.metadata.name for v in c.core.list_persistent_volume().items}


def write_rows(c, step, count=50):
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS day2; CREATE TABLE IF NOT EXISTS day2.t "
                    "(id INT AUTO_INCREMENT PRIMARY KEY, step VARCHAR(16) NOT NULL, pad CHAR(64) NOT NULL)")
    c.sql(c.pod(0), "USE day2; INSERT INTO t (step, pad) SELECT '%s', SHA2(RAND(), 256) FROM "
                    "(SELECT 1 FROM information_schema.columns LIMIT %d) AS x" % (step, count))


def assert_same_data(c, replicas, timeout=180):
    """CHECKSUM TABLE and row count equal on every pod (replicas catch up first)."""
    primary = c.sql(c.pod(0), "CHECKSUM TABLE day2.t").split("\t")[1]
    rows = c.sql(c.pod(0), "SELECT COUNT(*) FROM day2.t")
    want = (primary, rows)
    deadline = time.monotonic() + timeout
    for i in range(1, replicas):
        while True:
            got = (c.sql(c.pod(i), "CHECKSUM TABLE day2.t").split("\t")[1],
                   c.sql(c.pod(i), "SELECT COUNT(*) FROM day2.t"))
            if got == want:
                break
            assert time.monotonic() < deadline, "%s holds %s, the primary %s" % (c.pod(i), got, want)
            time.sleep(1)
    return want


def table(out):
    """The rows of the last replication table in a playbook's output, split on blanks."""
    lines = [line.strip() for line in out.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.split()[:3] == ["pod", "role", "server_id"]]
    assert starts, "no replication table in the output:\n" + out[-3000:]
    rows = []
    for line in lines[starts[-1] + 1:]:
        if not line.startswith(NAME + "-"):
            break
        rows.append(line.split())
    return rows


def scale(c, replicas, *extra, check=True):
    started = time.monotonic()
    out, recap = run_playbook(SCALE, *c.deploy_args, "-e", "replicas=%s" % replicas, *extra, check=check)
    print("scale.yml -e replicas=%s %s: %.0f s, %s" % (replicas, " ".join(extra), time.monotonic() - started, recap))
    no_password(out)
    return out, recap


def test_scale_refuses_bad_counts_before_any_change(day2):
    c = day2
    c.wait_ready(3, timeout=120)
    before = versions(c)
    for bad in ("0", "-1", "abc"):
        out, recap = scale(c, bad, check=False)
        assert recap.get("failed") == 1 and recap["changed"] == 0, out[-3000:]
        assert "-e replicas must be a whole number from 1 to 50 (got " in " ".join(out.split()), out[-3000:]
    assert versions(c) == before
    assert c.apps.read_namespaced_stateful_set(NAME, NAMESPACE).spec.replicas == 3


def test_scale_to_the_current_count_writes_nothing(day2):
    c = day2
    before = versions(c)
    out, recap = scale(c, 3)
    assert recap["changed"] == 0 and recap["failed"] == 0, out[-3000:]
    assert versions(c) == before, "scale.yml to the current count wrote to the API"
    # It still waits and ends with the table and how to connect.
    header = [line for line in out.splitlines() if line.split()[:3] == ["pod", "role", "server_id"]]
    assert header and header[0].split() == TABLE_HEADER, out[-3000:]
    assert "write host: db-0.db.%s.svc" % NAMESPACE in out and "read host:  db-read.%s.svc" % NAMESPACE in out
    assert "password in Secret db-credentials key root-password" in out
    # --check says what would change and changes nothing.
    out, recap = scale(c, 4, "--check")
    assert recap["changed"] == 1 and recap["failed"] == 0, out[-3000:]
    assert "would go from 3 to 4 replicas" in " ".join(out.split()), out[-3000:]
    assert versions(c) == before


def test_scale_up_then_down_keeps_every_pod_equal(day2):
    """3 -> 4 -> 2 with rows written between steps: only the StatefulSet
    changes, every pod holds the primary's rows, and scale-down deletes the
    removed replicas' PVCs and PVs (the default whenScaled: Delete)."""
    c = day2
    write_rows(c, "at3")
    assert_same_data(c, 3)
    original = pvcs(c)
    assert set(original) == {"data-db-0", "data-db-1", "data-db-2"}
    c.original_pvcs = original

    before = versions(c)
    out, recap = scale(c, 4)
    assert recap["changed"] == 1 and recap["failed"] == 0, out[-3000:]
    after = versions(c)
    assert {k for k in before if before[k] != after[k]} == {"StatefulSet"}
    c.wait_ready(4, timeout=60)
    assert [row[0] for row in table(out)] == ["db-0", "db-1", "db-2", "db-3"], out[-3000:]
    write_rows(c, "at4")
    assert_same_data(c, 4)
    events = c.events(c.pod(3))
    assert events.count("clone started") == 1 and events.count("done-marker written") == 1, events

    volumes = pvcs(c)
    before = versions(c)
    out, recap = scale(c, 2)
    assert recap["changed"] == 1 and recap["failed"] == 0, out[-3000:]
    assert "pods db-2, db-3 are removed and their volumes deleted" in " ".join(out.split()), out[-3000:]
    after = versions(c)
    assert {k for k in before if before[k] != after[k]} == {"StatefulSet"}
    c.wait_ready(2, timeout=60)
    assert set(pvcs(c)) == {"data-db-0", "data-db-1"}
    gone = {volumes["data-db-2"][1], volumes["data-db-3"][1]}
    deadline = time.monotonic() + 120
    while gone & pv_names(c):
        assert time.monotonic() < deadline, "PVs %s still there" % (gone & pv_names(c))
        time.sleep(2)
    write_rows(c, "at2")
    assert_same_data(c, 2)


def test_site_after_a_scale_keeps_the_count_unless_it_is_set(day2):
    c = day2
    before = versions(c)
    out, recap = run_playbook(SITE, *c.deploy_args)
    no_password(out)
    assert recap["changed"] == 0 and recap["failed"] == 0, out[-3000:]
    assert "Keeping the live replica count 2" in " ".join(out.split()), out[-3000:]
    assert versions(c) == before
    assert c.apps.read_namespaced_stateful_set(NAME, NAMESPACE).spec.replicas == 2
    # Set on the command line, the count changes and site.yml says so. The
    # returning ordinal 2 gets a new volume and copies afresh, once.
    out, recap = run_playbook(SITE, *c.deploy_args, "-e", "replicas=3")
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
    assert "mysql_cluster_replicas=3 CHANGES the replica count of StatefulSet %s/db from 2 to 3" % NAMESPACE \
        in " ".join(out.split()), out[-3000:]
    c.wait_ready(3, timeout=60)
    assert pvcs(c)["data-db-2"][0] != c.original_pvcs["data-db-2"][0]
    events = c.events(c.pod(2))
    assert events.count("clone started") == 1 and events.count("done-marker written") == 1, events
    write_rows(c, "at3again")
    assert_same_data(c, 3)


def test_verify_shows_the_table_and_names_a_stopped_sql_thread(day2):
    c = day2
    # The short names alone describe the cluster.
    short = ["-e", "name=%s" % NAME, "-e", "namespace=%s" % NAMESPACE]
    out, recap = run_playbook(VERIFY, *short)
    no_password(out)
    assert recap["failed"] == 0, out[-3000:]
    rows = {row[0]: row for row in table(out)}
    assert set(rows) == {"db-0", "db-1", "db-2"}, out[-3000:]
    assert rows["db-0"][1:5] == ["primary", "100", "-", "-"]
    for pod in ("db-1", "db-2"):
        assert rows[pod][1] == "replica" and rows[pod][3:5] == ["Yes", "Yes"], rows[pod]
    assert "read back through db-read from:" in out and "every replica refuses writes: True" in out
    # A replica's SQL thread stopped without an error: verify fails and names it.
    c.sql(c.pod(1), "STOP REPLICA SQL_THREAD")
    try:
        out, recap = run_playbook(VERIFY, *short, "-e", "mysql_cluster_verify_timeout=10", check=False)
        no_password(out)
        assert recap.get("failed") == 1, out[-3000:]
        flat = " ".join(out.split())
        assert "is not healthy after 10 s: db-1: SQL thread not running" in flat, out[-3000:]
        rows = {row[0]: row for row in table(out)}
        assert rows["db-1"][3:5] == ["Yes", "No"] and "SQL thread not running" in " ".join(rows["db-1"])
        assert "db-2" not in flat.split("is not healthy after")[1]
    finally:
        c.sql(c.pod(1), "START REPLICA SQL_THREAD")
    c.wait_ready(3, timeout=120)


def test_teardown_removes_this_cluster_and_nothing_else(day2):
    c = day2
    # A second cluster and a foreign PVC and ConfigMap in the same namespace.
    args = deploy_args("mysql", "9.7", OTHER, NAMESPACE, c.tmp, {"mysql_cluster_replicas": 2})
    run_playbook(SITE, *args)
    other = Cluster(OTHER, NAMESPACE, "mysql", "9.7")
    other.wait_ready(2, timeout=120)
    foreign_pvc = client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="foreign-claim", labels={"app.kubernetes.io/instance": NAME}),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], storage_class_name="standard",
            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Mi"})))
    c.core.create_namespaced_persistent_volume_claim(NAMESPACE, foreign_pvc)
    c.core.create_namespaced_config_map(NAMESPACE, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="db-notes"), data={"note": "not the cluster's"}))
    others_before = versions(c, OTHER)
    ours_before = versions(c)
    volumes = pvcs(c)
    assert set(volumes) == {"data-db-0", "data-db-1", "data-db-2"}

    # Refused without the name, with `true` and with the other cluster's name.
    for confirm in ([], ["-e", "confirm=true"], ["-e", "confirm=%s" % OTHER]):
        out, recap = run_playbook(TEARDOWN, *c.deploy_args, *confirm, check=False)
        assert recap.get("failed") == 1 and recap["changed"] == 0, out[-3000:]
        assert "Confirm with -e confirm=db (the cluster's name;" in " ".join(out.split()), out[-3000:]
    assert versions(c) == ours_before and versions(c, OTHER) == others_before

    # --check lists what would go and removes nothing.
    out, recap = run_playbook(TEARDOWN, *c.deploy_args, "--check")
    flat = " ".join(out.split())
    assert "Check mode: would remove" in flat and "PVCs: data-db-0, data-db-1, data-db-2" in flat, out[-3000:]
    assert "Service: db, db-read" in flat and "Secret: db-credentials" in flat, out[-3000:]
    assert versions(c) == ours_before and pvcs(c) == volumes

    started = time.monotonic()
    out, recap = run_playbook(TEARDOWN, *c.deploy_args, "-e", "confirm=db")
    print("teardown.yml: %.0f s, %s" % (time.monotonic() - started, recap))
    assert recap["changed"] >= 1, out[-3000:]
    # Nothing of db is left: no PVC, no PV, no object the role made.
    assert pvcs(c) == {}
    assert not ({v[1] for v in volumes.values()} & pv_names(c))
    for read in (lambda: c.apps.read_namespaced_stateful_set(NAME, NAMESPACE),
                 lambda: c.core.read_namespaced_service(NAME, NAMESPACE),
                 lambda: c.core.read_namespaced_service(NAME + "-read", NAMESPACE),
                 lambda: c.core.read_namespaced_config_map(NAME + "-config", NAMESPACE),
                 lambda: c.core.read_namespaced_config_map(NAME + "-scripts", NAMESPACE),
                 lambda: c.core.read_namespaced_secret(NAME + "-credentials", NAMESPACE),
                 lambda: client.PolicyV1Api().read_namespaced_pod_disruption_budget(NAME, NAMESPACE),
                 lambda: client.NetworkingV1Api().read_namespaced_network_policy(NAME, NAMESPACE)):
        with pytest.raises(ApiException) as err:
            read()
        assert err.value.status == 404
    assert c.pods() == []
    # The rest stays: the foreign PVC and ConfigMap, and the other cluster,
    # untouched and still replicating.
    c.core.read_namespaced_persistent_volume_claim("foreign-claim", NAMESPACE)
    c.core.read_namespaced_config_map("db-notes", NAMESPACE)
    assert versions(c, OTHER) == others_before
    assert set(pvcs(c, OTHER)) == {"data-other-0", "data-other-1"}
    other.sql(other.pod(0), "CREATE DATABASE alive; CREATE TABLE alive.t (id INT PRIMARY KEY); "
                            "INSERT INTO alive.t VALUES (1)")
    deadline = time.monotonic() + 60
    while True:
        rc, dummy = other.sql(other.pod(1), "SELECT 1 FROM alive.t", expect_ok=False)
        if rc == 0 and other.sql(other.pod(1), "SELECT COUNT(*) FROM alive.t") == "1":
            break
        assert time.monotonic() < deadline, "the other cluster stopped replicating"
        time.sleep(1)

    out, recap = run_playbook(TEARDOWN, *c.deploy_args, "-e", "confirm=db")
    assert recap["changed"] == 0 and recap["failed"] == 0, out[-3000:]
