"""The seed's storage path for real: the in-tree kubernetes.io/rbd provisioner
on the v1.30 control plane provisions and deletes real RBD images for the
mysql_cluster StatefulSet, as the role's least-privilege client.

site.yml runs it all: the ceph_rbd role (a ceph_admin host is in the
inventory), then mysql_cluster with its storage class following
ceph_rbd_storage_class (not given here), 3 pods in Parallel, not waiting for
pods (no kubelet on that control plane)."""
import json
import os
import time

import pytest

from conftest import ROOT, k8s_api
from test_ceph_role import recap

# The v1.30 control plane is built and started in the full tier only.
pytestmark = pytest.mark.full_tier

POOL = "e2e-intree"
CLIENT = "e2e-intree"
SC = "ceph-e2e-intree"
NS = "mysql-e2e"
STS = "mysql"
CEPH_VARS = dict(ceph_rbd_provisioner="in-tree", ceph_rbd_pool=POOL, ceph_rbd_pool_size=1, ceph_rbd_pool_pg_num=8,
                 ceph_rbd_client_name=CLIENT, ceph_rbd_namespace="ceph-e2e-intree",
                 ceph_rbd_secret_name="ceph-e2e-intree", ceph_rbd_storage_class=SC)
STS_VARS = dict(mysql_cluster_name=STS, mysql_cluster_namespace=NS, mysql_cluster_replicas=3,
                mysql_cluster_storage_size="1Gi",
                mysql_cluster_wait=False, mysql_cluster_pod_management_policy="Parallel")


def wait(what, fn, timeout=120):
    start = time.monotonic()
    while True:
        got = fn()
        if got:
            return got, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(1)


def images(ceph):
    return set(ceph.cli("ls", POOL, tool="rbd").stdout.split())


@pytest.fixture
def apis(k8s130):
    from kubernetes import client
    api = k8s_api(k8s130)
    return client.CoreV1Api(api), client.AppsV1Api(api)


def claims(core):
    return {p.metadata.name: p for p in core.list_namespaced_persistent_volume_claim(NS).items}


def test_statefulset_claims_are_real_rbd_images(ceph, k8s130, inventory, playbook, module, apis):
    core, apps = apis
    env = {"K8S_AUTH_KUBECONFIG": k8s130, "KUBECONFIG": k8s130}
    t0 = time.monotonic()
    inv = inventory()
    rc, out = playbook(os.path.join(ROOT, "playbooks", "ceph.yml"), CEPH_VARS, inv, env, name="intree-ceph")
    assert rc == 0, out[-3000:]
    assert images(ceph) == set()

    # Another claim on the same StorageClass, which the teardown must not touch.
    from kubernetes import client
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    except client.ApiException as e:
        assert e.status == 409
    core.create_namespaced_persistent_volume_claim(NS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "survivor"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": SC,
                 "resources": {"requests": {"storage": "1Gi"}}}})
    survivor, secs = wait("the survivor claim to bind",
                          lambda: claims(core).get("survivor") if claims(core).get("survivor") and
                          claims(core)["survivor"].status.phase == "Bound" else None)
    survivor_pv = core.read_persistent_volume(survivor.spec.volume_name)
    survivor_image = survivor_pv.spec.rbd.image
    assert images(ceph) == {survivor_image}
    print("survivor bound in %.1f s to image %s" % (secs, survivor_image))

    rc, out = playbook(os.path.join(ROOT, "site.yml"), dict(CEPH_VARS, **STS_VARS), inv, env, name="intree-site")
    assert rc == 0, out[-3000:]
    assert recap(out)["cephhost"] == 0, "site.yml's Ceph play changed what ceph.yml had done"
    sts = apps.read_namespaced_stateful_set(STS, NS)
    assert sts.spec.pod_management_policy == "Parallel" and sts.spec.replicas == 3
    assert sts.spec.volume_claim_templates[0].spec.storage_class_name == SC, "storage class did not follow"
    template = sts.spec.volume_claim_templates[0].metadata.name
    names = {"%s-%s-%d" % (template, STS, i) for i in range(3)}

    def bound():
        c = claims(core)
        return names <= set(c) and all(c[n].status.phase == "Bound" for n in names) and c

    c, secs = wait("3 claims of the StatefulSet to bind", bound)
    print("3 StatefulSet claims bound in %.1f s" % secs)
    sts_images = set()
    for n in names:
        pv = core.read_persistent_volume(c[n].spec.volume_name)
        assert pv.spec.storage_class_name == SC
        assert pv.spec.rbd.pool == POOL
        assert pv.spec.rbd.user == CLIENT, "provisioned for another Ceph user"
        assert pv.spec.rbd.monitors == ["127.0.0.1:6789"]
        assert pv.metadata.annotations.get("pv.kubernetes.io/provisioned-by") == "kubernetes.io/rbd"
        sts_images.add(pv.spec.rbd.image)
    assert len(sts_images) == 3
    assert images(ceph) == sts_images | {survivor_image}, "rbd ls %s" % POOL
    for img in sts_images:
        info = json.loads(ceph.cli("info", "%s/%s" % (POOL, img), "--format", "json", tool="rbd").stdout)
        assert info["size"] == 1024 ** 3 and info["features"] == ["layering"]
    # The only Ceph identity Kubernetes holds is the least-privilege client.
    secret = core.read_namespaced_secret("ceph-e2e-intree", "ceph-e2e-intree")
    assert set(secret.data) == {"key"} and secret.type == "kubernetes.io/rbd"
    assert ceph.entity("client." + CLIENT)["caps"]["osd"] == "profile rbd pool=%s" % POOL

    # Teardown: the StatefulSet's pods, claims, volumes and images go; the survivor stays.
    res = module("statefulset_teardown", dict(name=STS, namespace=NS, confirm=True, wait_timeout=180,
                                              kubeconfig=k8s130))
    assert not res.get("failed"), res
    assert res["changed"]
    _ok, secs = wait("the StatefulSet's images to be removed", lambda: images(ceph) == {survivor_image}, timeout=180)
    print("teardown: images gone %.1f s after the module returned" % secs)
    left = claims(core)
    assert set(left) == {"survivor"} and left["survivor"].status.phase == "Bound"
    pvs = {pv.metadata.name for pv in core.list_persistent_volume().items}
    assert pvs == {survivor.spec.volume_name}
    # Teardown again: nothing left to do.
    res = module("statefulset_teardown", dict(name=STS, namespace=NS, confirm=True, kubeconfig=k8s130))
    assert not res.get("failed") and res["changed"] is False, res

    # Clean up the survivor too: its image goes with it (reclaimPolicy Delete).
    core.delete_namespaced_persistent_volume_claim("survivor", NS)
    wait("the survivor's image to be removed", lambda: images(ceph) == set(), timeout=120)
    print("in-tree proof took %.1f s" % (time.monotonic() - t0))
