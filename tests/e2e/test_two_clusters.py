"""Two clusters with different names in one namespace never touch each
other: the second deploy changes none of the first's objects, each Service
selects only its own pods, and each replicates its own data."""
import os
import time
import uuid

from kube import PREFIX, ROOT, Cluster, delete_namespace, deploy_args, run_playbook

NAMESPACE = "%s-two-clusters" % PREFIX


def objects_of(cluster):
    """resourceVersion of every object the role made for one cluster."""
    core, apps = cluster.core, cluster.apps
    ns, name = cluster.namespace, cluster.name
    versions = {
        "sts": apps.read_namespaced_stateful_set(name, ns).metadata.resource_version,
        "svc": core.read_namespaced_service(name, ns).metadata.resource_version,
        "svc-read": core.read_namespaced_service(name + "-read", ns).metadata.resource_version,
        "cm-config": core.read_namespaced_config_map(name + "-config", ns).metadata.resource_version,
        "cm-scripts": core.read_namespaced_config_map(name + "-scripts", ns).metadata.resource_version,
        "secret": core.read_namespaced_secret(name + "-credentials", ns).metadata.resource_version,
    }
    return versions


def test_two_clusters_side_by_side(kube_ready, tmp_path):
    delete_namespace(NAMESPACE)
    clusters = {}
    try:
        for name in ("alpha", "beta"):
            args = deploy_args("mysql", "9.7", name, NAMESPACE, str(tmp_path), {"mysql_cluster_replicas": 2})
            before = objects_of(clusters["alpha"]) if clusters else None
            out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *args)
            assert recap["failed"] == 0, out[-3000:]
            clusters[name] = Cluster(name, NAMESPACE, "mysql", "9.7")
            if before is not None:
                assert objects_of(clusters["alpha"]) == before, "deploying beta changed alpha's objects"
        alpha, beta = clusters["alpha"], clusters["beta"]
        for c in (alpha, beta):
            c.wait_ready(2, timeout=120)
            endpoints = c.core.read_namespaced_endpoints(c.name + "-read", NAMESPACE)
            ips = {a.target_ref.name for s in endpoints.subsets or [] for a in s.addresses or []}
            assert ips == {c.pod(0), c.pod(1)}, ips
            st = c.replica_status(c.pod(1))
            assert st["Source_Host"] == "%s-0.%s.%s.svc" % (c.name, c.name, NAMESPACE) and st["Replica_SQL_Running"] == "Yes"
        marker = uuid.uuid4().hex
        alpha.sql(alpha.pod(0), "CREATE DATABASE two; CREATE TABLE two.t (id VARCHAR(64) PRIMARY KEY); "
                                "INSERT INTO two.t VALUES ('%s')" % marker)
        deadline = time.monotonic() + 30
        while alpha.sql(alpha.pod(1), "SELECT COUNT(*) FROM two.t") != "1":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        # beta's servers never saw alpha's writes.
        for pod in (beta.pod(0), beta.pod(1)):
            assert beta.sql(pod, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'two'") == "0"
    finally:
        if os.environ.get("E2E_KEEP") != "1":
            delete_namespace(NAMESPACE)
