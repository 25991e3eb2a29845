"""Pod Security "restricted" with real pods (issue 27): three MySQL 9.7 pods
Ready and replicating in a namespace that enforces restricted, with
mysql_cluster_volume_owner_init false, on storage that honours fsGroup.

Which storage, and why: `local` PersistentVolumes (a directory of the node,
made by this test) on a no-provisioner StorageClass. The kubelet applies
fsGroup to a local volume when it mounts it (it does not to the hostPath
volumes of the local cluster's `standard` class), so the server, which runs
as the mysql uid without any capability, can write its datadir; no CSI
driver or image has to be built, and the whole proof runs on the one node.
Ceph RBD honours fsGroup as well (a filesystem on a block device), but the
harness's Ceph has no CSI driver to mount it in pods (README "Storage")."""
import os
import shutil

import pytest
from kubernetes import client

from kube import (POD_SECURITY_RESTRICTED, PREFIX, ROOT, Cluster, api, checksums_equal, create_namespace,
                  delete_namespace, deploy_args, replicating, run_playbook, wait_until, write_rows)

NAMESPACE = "%s-restricted" % PREFIX
STORAGE_CLASS = "%s-local-fsgroup" % PREFIX
# Outside /tmp/hostpath_pv (the standard class's), removed at the end.
LOCAL_DIR = "/var/lib/stateful-mysql-e2e/%s" % STORAGE_CLASS
REPLICAS = 3
NAME = "rs"


def _cleanup(core, storage):
    delete_namespace(NAMESPACE)
    for pv in core.list_persistent_volume(label_selector="stateful-mysql-test/storage=" + STORAGE_CLASS).items:
        core.delete_persistent_volume(pv.metadata.name)
    try:
        storage.delete_storage_class(STORAGE_CLASS)
    except client.ApiException as e:
        if e.status != 404:
            raise
    shutil.rmtree(LOCAL_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def local_storage(kube_ready):
    """A StorageClass of local PVs, one per pod, on the node; gone afterwards."""
    core = api()[0]
    storage = client.StorageV1Api()
    _cleanup(core, storage)
    node = core.list_node().items[0].metadata.name
    storage.create_storage_class(client.V1StorageClass(
        metadata=client.V1ObjectMeta(name=STORAGE_CLASS), provisioner="kubernetes.io/no-provisioner",
        volume_binding_mode="WaitForFirstConsumer", reclaim_policy="Retain"))
    for i in range(REPLICAS):
        path = os.path.join(LOCAL_DIR, "pv%d" % i)
        # root-owned and closed, as a fresh disk: only fsGroup lets the server in.
        os.makedirs(path, mode=0o700)
        core.create_persistent_volume(client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name="%s-%d" % (STORAGE_CLASS, i),
                                         labels={"stateful-mysql-test/storage": STORAGE_CLASS}),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "1Gi"}, access_modes=["ReadWriteOnce"], storage_class_name=STORAGE_CLASS,
                persistent_volume_reclaim_policy="Retain", local=client.V1LocalVolumeSource(path=path),
                node_affinity=client.V1VolumeNodeAffinity(required=client.V1NodeSelector(node_selector_terms=[
                    client.V1NodeSelectorTerm(match_expressions=[client.V1NodeSelectorRequirement(
                        key="kubernetes.io/hostname", operator="In", values=[node])])])))))
    yield STORAGE_CLASS
    _cleanup(core, storage)


# Full tier only since stop 37: the landing tier ran 53 min on the slower kind.
@pytest.mark.full_tier
def test_three_pods_replicate_under_pod_security_restricted(local_storage, tmp_path):
    create_namespace(NAMESPACE, POD_SECURITY_RESTRICTED)
    args = deploy_args("mysql", "9.7", NAME, NAMESPACE, str(tmp_path), {
        "mysql_cluster_replicas": REPLICAS, "mysql_cluster_storage_class": local_storage,
        "mysql_cluster_volume_owner_init": False})
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *args)
    c = Cluster(NAME, NAMESPACE, "mysql", "9.7")
    pods = c.pods()
    assert len(pods) == REPLICAS and all(p.status.phase == "Running" for p in pods)
    # The pods run as admitted under restricted: no init container as root, no capability.
    for pod in pods:
        for ctr in (pod.spec.init_containers or []) + pod.spec.containers:
            assert ctr.name != "volume-owner", pod.metadata.name
            sc = ctr.security_context
            assert sc.run_as_non_root is not False and sc.allow_privilege_escalation is False, (pod.metadata.name, ctr.name)
            assert sc.capabilities.drop == ["ALL"] and not sc.capabilities.add, (pod.metadata.name, ctr.name)
    # The volumes are the local PVs, given to the pods' group by fsGroup.
    claims = {p.metadata.name: p.spec.volume_name for p in c.core.list_namespaced_persistent_volume_claim(NAMESPACE).items}
    assert sorted(claims.values()) == ["%s-%d" % (STORAGE_CLASS, i) for i in range(REPLICAS)], claims
    gids = {os.stat(os.path.join(LOCAL_DIR, "pv%d" % i)).st_gid for i in range(REPLICAS)}
    assert gids == {999}, gids
    wait_until(lambda: replicating(c, [c.pod(i) for i in range(1, REPLICAS)]), 120, "replicas replicating")
    c.sql(c.pod(0), "CREATE DATABASE e2e; CREATE TABLE e2e.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))")
    write_rows(c)
    checksums_equal(c, REPLICAS)
    out, recap = run_playbook(os.path.join(ROOT, "verify.yml"), *args)
    assert recap["failed"] == 0
