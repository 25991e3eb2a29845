"""Day-2 playbooks on the shared MySQL 9.7 cluster (conftest's
deployed_cluster): what scale.yml, verify.yml and teardown.yml must refuse or
leave alone, and what verify.yml reports. Nothing here changes the cluster
for good. The scale sequences, site.yml after a scale and a teardown beside
a second cluster are the molecule scenarios' (molecule/README.md)."""
import os
import time

import pytest
from kubernetes import client

from kube import PASSWORDS, ROOT, run_playbook

SCALE = os.path.join(ROOT, "scale.yml")
VERIFY = os.path.join(ROOT, "verify.yml")
TEARDOWN = os.path.join(ROOT, "teardown.yml")
TABLE_HEADER = ["pod", "role", "server_id", "IO", "SQL", "lag", "executed", "GTID", "set", "last", "error"]
MYSQL = pytest.mark.only_flavors("mysql-9.7")


def versions(c):
    """resourceVersion (the PDB's generation) of every object site.yml made for the cluster."""
    core, apps, ns, name = c.core, c.apps, c.namespace, c.name
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


def pvc_names(c):
    prefix = "data-%s-" % c.name
    return sorted(p.metadata.name for p in c.core.list_namespaced_persistent_volume_claim(c.namespace).items
                  if p.metadata.name.startswith(prefix) and p.metadata.name[len(prefix):].isdigit())


def no_password(out):
    for key, password in PASSWORDS.items():
        assert password not in out, "%s in the playbook's output" % key


def table(c, out):
    """The rows of the last replication table in a playbook's output, split on blanks."""
    lines = [line.strip() for line in out.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.split()[:3] == ["pod", "role", "server_id"]]
    assert starts, "no replication table in the output:\n" + out[-3000:]
    rows = []
    for line in lines[starts[-1] + 1:]:
        if not line.startswith(c.name + "-"):
            break
        rows.append(line.split())
    return rows


def live_replicas(c):
    return c.apps.read_namespaced_stateful_set(c.name, c.namespace).spec.replicas


@MYSQL
def test_scale_refuses_bad_counts_before_any_change(deployed_cluster):
    c = deployed_cluster
    count = live_replicas(c)
    c.wait_ready(count, timeout=300)
    before = versions(c)
    for bad in ("0", "-1", "abc"):
        out, recap = run_playbook(SCALE, *c.deploy_args, "-e", "replicas=%s" % bad, check=False)
        no_password(out)
        assert recap.get("failed") == 1 and recap["changed"] == 0, out[-3000:]
        assert "-e replicas must be a whole number from 1 to 50 (got " in " ".join(out.split()), out[-3000:]
    assert versions(c) == before
    assert live_replicas(c) == count


@MYSQL
def test_scale_to_the_current_count_writes_nothing(deployed_cluster):
    c = deployed_cluster
    count = live_replicas(c)
    before = versions(c)
    out, recap = run_playbook(SCALE, *c.deploy_args, "-e", "replicas=%d" % count)
    no_password(out)
    assert recap["changed"] == 0 and recap["failed"] == 0, out[-3000:]
    assert versions(c) == before, "scale.yml to the current count wrote to the API"
    # It still waits and ends with the table and how to connect.
    header = [line for line in out.splitlines() if line.split()[:3] == ["pod", "role", "server_id"]]
    assert header and header[0].split() == TABLE_HEADER, out[-3000:]
    assert "write host: %s-0.%s.%s.svc" % (c.name, c.name, c.namespace) in out
    assert "read host:  %s-read.%s.svc" % (c.name, c.namespace) in out
    assert "password in Secret %s-credentials key root-password" % c.name in out
    # --check says what would change and changes nothing.
    out, recap = run_playbook(SCALE, *c.deploy_args, "-e", "replicas=%d" % (count + 1), "--check")
    assert recap["changed"] == 1 and recap["failed"] == 0, out[-3000:]
    assert "would go from %d to %d replicas" % (count, count + 1) in " ".join(out.split()), out[-3000:]
    assert versions(c) == before


@MYSQL
def test_verify_shows_the_table_and_names_a_stopped_sql_thread(deployed_cluster):
    c = deployed_cluster
    count = live_replicas(c)
    # The short names alone describe the cluster.
    short = ["-e", "name=%s" % c.name, "-e", "namespace=%s" % c.namespace]
    out, recap = run_playbook(VERIFY, *short)
    no_password(out)
    # Each message's first line says which step failed (CI's digest shows it).
    assert recap["failed"] == 0, "verify.yml failed on the healthy cluster:\n" + out[-6000:]
    rows = {row[0]: row for row in table(c, out)}
    assert set(rows) == {c.pod(i) for i in range(count)}, "the table lists %s, not %d pods:\n%s" % (
        sorted(rows), count, out[-6000:])
    assert rows[c.pod(0)][1:5] == ["primary", "100", "-", "-"]
    for i in range(1, count):
        assert rows[c.pod(i)][1] == "replica" and rows[c.pod(i)][3:5] == ["Yes", "Yes"], rows[c.pod(i)]
    assert "read back through %s-read as repl from:" % c.name in out and "every replica refuses writes: True" in out
    # A replica's SQL thread stopped without an error: verify fails and names it.
    c.sql(c.pod(1), "STOP REPLICA SQL_THREAD")
    try:
        out, recap = run_playbook(VERIFY, *short, "-e", "mysql_cluster_verify_timeout=10", check=False)
        no_password(out)
        assert recap.get("failed") == 1, "verify.yml did not fail on a stopped SQL thread:\n" + out[-6000:]
        flat = " ".join(out.split())
        assert "is not healthy after 10 s: %s: SQL thread not running" % c.pod(1) in flat, \
            "verify.yml failed without naming the stopped SQL thread:\n" + out[-6000:]
        rows = {row[0]: row for row in table(c, out)}
        assert rows[c.pod(1)][3:5] == ["Yes", "No"] and "SQL thread not running" in " ".join(rows[c.pod(1)])
        assert c.pod(2) not in flat.split("is not healthy after")[1]
    finally:
        c.sql(c.pod(1), "START REPLICA SQL_THREAD")
    c.wait_ready(count, timeout=120)


@MYSQL
def test_teardown_refuses_without_the_name_and_check_lists(deployed_cluster):
    """Refused without confirm, with `true` and with another name; --check
    lists what would go. Nothing changes (the removal itself, beside a second
    cluster, is molecule's custom-names scenario)."""
    c = deployed_cluster
    before, volumes = versions(c), pvc_names(c)
    for confirm in ([], ["-e", "confirm=true"], ["-e", "confirm=other"]):
        out, recap = run_playbook(TEARDOWN, *c.deploy_args, *confirm, check=False)
        assert recap.get("failed") == 1 and recap["changed"] == 0, out[-3000:]
        assert "Confirm with -e confirm=%s (the cluster's name;" % c.name in " ".join(out.split()), out[-3000:]
    out, recap = run_playbook(TEARDOWN, *c.deploy_args, "--check")
    flat = " ".join(out.split())
    assert "Check mode: would remove" in flat and "PVCs: %s" % ", ".join(volumes) in flat, out[-3000:]
    assert "Service: %s, %s-read" % (c.name, c.name) in flat and "Secret: %s-credentials" % c.name in flat, out[-3000:]
    assert versions(c) == before and pvc_names(c) == volumes


@MYSQL
def test_teardown_of_a_cluster_already_gone_changes_nothing(deployed_cluster):
    """A second teardown.yml run finds nothing of its cluster: ok with
    changed=0. Here the cluster `gone` in the shared cluster's namespace (the
    state a first teardown leaves: namespace kept, nothing of the cluster in
    it), whose removal must not touch the cluster beside it."""
    c = deployed_cluster
    before, volumes = versions(c), pvc_names(c)
    out, recap = run_playbook(TEARDOWN, *c.deploy_args, "-e", "mysql_cluster_name=gone", "-e", "confirm=gone")
    assert recap["failed"] == 0 and recap["changed"] == 0, out[-3000:]
    assert versions(c) == before and pvc_names(c) == volumes


def names(items):
    return {i.metadata.name for i in items}


@MYSQL
def test_teardown_removes_only_its_cluster_beside_another(deployed_cluster):
    """teardown.yml of cluster `other` in the shared cluster's namespace:
    other's StatefulSet (pause pods), the PVC of its claim template and its
    PV, and its labelled Service, ConfigMap and Secret go; a PVC carrying
    other's instance label but not of its claim template, an unlabelled
    ConfigMap and a Secret named in mysql_cluster_credentials_secret stay;
    the live cluster beside it is untouched and replicating (molecule's
    custom-names scenario does the same between two real clusters)."""
    c = deployed_cluster
    ns = c.namespace
    before, volumes = versions(c), pvc_names(c)
    selector = {"app.kubernetes.io/name": "mysql-cluster", "app.kubernetes.io/instance": "other"}
    labels = dict(selector, **{"app.kubernetes.io/managed-by": "stateful.mysql"})
    meta = client.V1ObjectMeta
    c.apps.create_namespaced_stateful_set(ns, client.V1StatefulSet(
        metadata=meta(name="other", labels=labels),
        spec=client.V1StatefulSetSpec(
            replicas=1, service_name="other", selector=client.V1LabelSelector(match_labels=selector),
            template=client.V1PodTemplateSpec(
                metadata=meta(labels=selector),
                spec=client.V1PodSpec(termination_grace_period_seconds=1, containers=[client.V1Container(
                    name="main", image="localhost/stateful-mysql/pause:1", image_pull_policy="IfNotPresent",
                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")])])),
            volume_claim_templates=[client.V1PersistentVolumeClaim(
                metadata=meta(name="data"),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "16Mi"})))])))
    c.core.create_namespaced_service(ns, client.V1Service(
        metadata=meta(name="other", labels=labels),
        spec=client.V1ServiceSpec(cluster_ip="None", selector=selector, ports=[client.V1ServicePort(port=3306)])))
    c.core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta(name="other-config", labels=labels)))
    c.core.create_namespaced_secret(ns, client.V1Secret(metadata=meta(name="other-tls", labels=labels)))
    stays = {
        "PVC": c.core.create_namespaced_persistent_volume_claim(ns, client.V1PersistentVolumeClaim(
            metadata=meta(name="other-notes-claim", labels={"app.kubernetes.io/instance": "other"}),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "16Mi"})))).metadata.uid,
        "ConfigMap": c.core.create_namespaced_config_map(
            ns, client.V1ConfigMap(metadata=meta(name="other-notes"))).metadata.uid,
        "Secret": c.core.create_namespaced_secret(
            ns, client.V1Secret(metadata=meta(name="other-own-credentials"))).metadata.uid,
    }
    deadline = time.monotonic() + 120
    while True:
        claim = [p for p in c.core.list_namespaced_persistent_volume_claim(ns).items if p.metadata.name == "data-other-0"]
        if claim and claim[0].spec.volume_name:
            break
        assert time.monotonic() < deadline, "other's PVC never bound"
        time.sleep(2)
    pv = claim[0].spec.volume_name
    out, recap = run_playbook(TEARDOWN, *c.deploy_args, "-e", "mysql_cluster_name=other", "-e", "confirm=other",
                              "-e", "mysql_cluster_credentials_secret=other-own-credentials",
                              "-e", "mysql_cluster_root_password=", "-e", "mysql_cluster_replication_password=",
                              "-e", "mysql_cluster_clone_password=")
    assert recap["failed"] == 0 and recap["changed"] > 0, out[-3000:]
    no_password(out)
    assert "other" not in names(c.apps.list_namespaced_stateful_set(ns).items)
    assert "other" not in names(c.core.list_namespaced_service(ns).items)
    assert "other-config" not in names(c.core.list_namespaced_config_map(ns).items)
    assert "other-tls" not in names(c.core.list_namespaced_secret(ns).items)
    assert "data-other-0" not in names(c.core.list_namespaced_persistent_volume_claim(ns).items)
    assert pv not in names(c.core.list_persistent_volume().items)
    assert c.core.read_namespaced_persistent_volume_claim("other-notes-claim", ns).metadata.uid == stays["PVC"]
    assert c.core.read_namespaced_config_map("other-notes", ns).metadata.uid == stays["ConfigMap"]
    assert c.core.read_namespaced_secret("other-own-credentials", ns).metadata.uid == stays["Secret"]
    c.core.delete_namespaced_persistent_volume_claim("other-notes-claim", ns)
    c.core.delete_namespaced_config_map("other-notes", ns)
    c.core.delete_namespaced_secret("other-own-credentials", ns)
    # The cluster beside it: not one object moved, and it replicates.
    assert versions(c) == before and pvc_names(c) == volumes
    for pod in [p.metadata.name for p in c.pods()[1:]]:
        st = c.replica_status(pod)
        assert st["Replica_IO_Running"] == "Yes" and st["Replica_SQL_Running"] == "Yes", (pod, st)
