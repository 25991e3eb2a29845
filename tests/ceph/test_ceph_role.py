"""The ceph_rbd role through playbooks/ceph.yml against the real Ceph and
Kubernetes: the v1.30 control plane for the in-tree provisioner (full tier)
and the main v1.34 cluster for the CSI content, the in-tree refusal and the
role's input refusals."""
import base64
import json
import os
import re

import pytest

from conftest import ROOT, k8s_api

PLAYBOOK = os.path.join(ROOT, "playbooks", "ceph.yml")
POOL = "e2e-kube"
CLIENT = "e2e-k8s"


def recap(out):
    """{host: changed} from the PLAY RECAP; fails on failed/unreachable."""
    res = {}
    for host, ok, changed, unreachable, failed in re.findall(
            r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M):
        res[host] = int(changed)
        assert int(failed) == 0 and int(unreachable) == 0, out[-3000:]
    return res


def role_vars(**kw):
    v = dict(ceph_rbd_pool=POOL, ceph_rbd_pool_size=1, ceph_rbd_pool_pg_num=8, ceph_rbd_client_name=CLIENT,
             ceph_rbd_namespace="ceph-e2e", ceph_rbd_secret_name="ceph-e2e-rbd",
             ceph_rbd_storage_class="ceph-e2e-rbd")
    v.update(kw)
    return v


def read_k8s(kubeconfig, v):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    api = k8s_api(kubeconfig)
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    out = {}
    try:
        s = core.read_namespaced_secret(v["ceph_rbd_secret_name"], v["ceph_rbd_namespace"])
        out["secret"] = {"type": s.type, "data": {k: base64.b64decode(d).decode() for k, d in (s.data or {}).items()}}
    except ApiException as e:
        assert e.status == 404
        out["secret"] = None
    try:
        cm = core.read_namespaced_config_map("ceph-csi-config", v["ceph_rbd_namespace"])
        out["configmap"] = cm.data
    except ApiException as e:
        assert e.status == 404
        out["configmap"] = None
    try:
        sc = storage.read_storage_class(v["ceph_rbd_storage_class"])
        out["sc"] = {"provisioner": sc.provisioner, "parameters": sc.parameters, "reclaimPolicy": sc.reclaim_policy,
                     "allowVolumeExpansion": sc.allow_volume_expansion, "volumeBindingMode": sc.volume_binding_mode}
    except ApiException as e:
        assert e.status == 404
        out["sc"] = None
    return out


def cleanup_k8s(kubeconfig, v):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    api = k8s_api(kubeconfig)
    for call, args in ((client.StorageV1Api(api).delete_storage_class, (v["ceph_rbd_storage_class"],)),
                       (client.CoreV1Api(api).delete_namespace, (v["ceph_rbd_namespace"],))):
        try:
            call(*args)
        except ApiException as e:
            assert e.status == 404


def all_secret_values(kubeconfig):
    from kubernetes import client
    values = []
    for s in client.CoreV1Api(k8s_api(kubeconfig)).list_secret_for_all_namespaces().items:
        for d in (s.data or {}).values():
            values.append(base64.b64decode(d).decode(errors="replace"))
    return values


def admin_key(ceph):
    return ceph.entity("client.admin")["key"]


def observe(ceph, kubeconfig, v):
    return {"pool": ceph.pool(POOL), "client": ceph.entity("client." + CLIENT), "k8s": read_k8s(kubeconfig, v)}


@pytest.fixture
def clean(ceph, module):
    """Start and end without the test's pool, client and Kubernetes objects."""
    def wipe():
        module("ceph_client_key", dict(name="client." + CLIENT, state="absent", **ceph.conn()))
        module("ceph_pool", dict(name=POOL, state="absent", **ceph.conn()))
    wipe()
    yield
    wipe()


# The v1.30 control plane is built and started in the full tier only.
@pytest.mark.full_tier
def test_role_in_tree_on_v130(ceph, k8s130, inventory, playbook, clean):
    """check mode, create, again, change, again; then the key in the Secret is a least-privilege key."""
    v = role_vars(ceph_rbd_provisioner="in-tree")
    env = {"K8S_AUTH_KUBECONFIG": k8s130}
    inv = inventory()
    cleanup_k8s(k8s130, v)
    try:
        # Check mode on nothing: nothing in Ceph, nothing in Kubernetes.
        before = observe(ceph, k8s130, v)
        rc, out = playbook(PLAYBOOK, v, inv, env, check=True, name="role-intree-check-create")
        assert rc == 0, out[-3000:]
        assert recap(out)["cephhost"] > 0
        assert observe(ceph, k8s130, v) == before
        assert before["pool"] is None and before["client"] is None

        rc, out = playbook(PLAYBOOK, v, inv, env, name="role-intree-create")
        assert rc == 0, out[-3000:]
        now = observe(ceph, k8s130, v)
        assert now["pool"]["size"] == 1 and now["pool"]["applications"] == ["rbd"]
        assert now["client"]["caps"] == {"mon": "profile rbd", "osd": "profile rbd pool=%s" % POOL,
                                         "mgr": "profile rbd pool=%s" % POOL}
        key = now["client"]["key"]
        assert now["k8s"]["secret"] == {"type": "kubernetes.io/rbd", "data": {"key": key}}
        assert now["k8s"]["configmap"] is None  # in-tree needs no ceph-csi config
        sc = now["k8s"]["sc"]
        assert sc["provisioner"] == "kubernetes.io/rbd"
        assert sc["parameters"] == {
            "monitors": "127.0.0.1:6789", "pool": POOL, "adminId": CLIENT, "adminSecretName": "ceph-e2e-rbd",
            "adminSecretNamespace": "ceph-e2e", "userId": CLIENT, "userSecretName": "ceph-e2e-rbd",
            "userSecretNamespace": "ceph-e2e", "fsType": "ext4", "imageFormat": "2", "imageFeatures": "layering"}
        assert key not in out  # no_log held

        # Again: nothing changes anywhere.
        for check in (True, False):
            rc, out = playbook(PLAYBOOK, v, inv, env, check=check, name="role-intree-again-%s" % check)
            assert rc == 0, out[-3000:]
            assert recap(out) == {"cephhost": 0, "localhost": 0}, out[-3000:]
        assert observe(ceph, k8s130, v) == now

        # Change the pool's size: check mode changes nothing, then it does; then again is a no-op.
        v2 = dict(v, ceph_rbd_pool_size=2)
        rc, out = playbook(PLAYBOOK, v2, inv, env, check=True, name="role-intree-check-modify")
        assert rc == 0 and recap(out)["cephhost"] == 1, out[-3000:]
        assert observe(ceph, k8s130, v) == now
        rc, out = playbook(PLAYBOOK, v2, inv, env, name="role-intree-modify")
        assert rc == 0 and recap(out) == {"cephhost": 1, "localhost": 0}, out[-3000:]
        assert ceph.pool(POOL)["size"] == 2
        rc, out = playbook(PLAYBOOK, v2, inv, env, name="role-intree-modify-again")
        assert rc == 0 and recap(out) == {"cephhost": 0, "localhost": 0}, out[-3000:]

        # Caps changed behind the role's back are put back.
        ceph.cli("auth", "caps", "client." + CLIENT, "mon", "allow r")
        rc, out = playbook(PLAYBOOK, v2, inv, env, name="role-intree-caps-restored")
        assert rc == 0 and recap(out)["cephhost"] == 1
        assert ceph.entity("client." + CLIENT)["caps"]["osd"] == "profile rbd pool=%s" % POOL
        assert ceph.entity("client." + CLIENT)["key"] == key

        # The admin key is in no Secret of the cluster.
        assert admin_key(ceph) not in all_secret_values(k8s130)
        check_key_is_least_privilege(ceph, read_k8s(k8s130, v)["secret"]["data"]["key"], tmp_dir=ceph.state)
    finally:
        cleanup_k8s(k8s130, v)


def check_key_is_least_privilege(ceph, key, tmp_dir):
    """The key from the Secret authenticates as the client: images in its pool, nothing else."""
    keyring = os.path.join(tmp_dir, "e2e-from-secret.keyring")
    fd = os.open(keyring, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[client.%s]\n\tkey = %s\n" % (CLIENT, key))
    other = "e2e-other"
    try:
        ceph.cli("osd", "pool", "create", other, "8")
        ceph.cli("pool", "init", other, tool="rbd")
        as_client = dict(user=CLIENT, keyring=keyring)
        p = ceph.cli("create", "--size", "4", "%s/from-secret" % POOL, tool="rbd", check=False, **as_client)
        assert p.returncode == 0, p.stderr
        assert "from-secret" in ceph.cli("ls", POOL, tool="rbd", **as_client).stdout.split()
        p = ceph.cli("create", "--size", "4", "%s/not-mine" % other, tool="rbd", check=False, timeout=60,
                     **as_client)
        assert p.returncode != 0 and "not-mine" not in ceph.cli("ls", other, tool="rbd").stdout
        assert "ermission" in p.stderr or "EPERM" in p.stderr or "Operation not permitted" in p.stderr, p.stderr
        p = ceph.cli("osd", "pool", "create", "e2e-forbidden", check=False, **as_client)
        assert p.returncode != 0 and ceph.pool("e2e-forbidden") is None
        p = ceph.cli("auth", "ls", check=False, **as_client)
        assert p.returncode != 0
        ceph.cli("rm", "%s/from-secret" % POOL, tool="rbd", **as_client)
    finally:
        os.unlink(keyring)
        ceph.cli("osd", "pool", "delete", other, other, "--yes-i-really-really-mean-it")


# The refusals come before any Kubernetes call, whatever the provisioner: on
# the main cluster with CSI, so that the landing tier has them without v1.30.
def test_role_refuses_admin_client(ceph, k8s134, inventory, playbook, clean):
    v = role_vars(ceph_rbd_client_name="admin")
    before = observe(ceph, k8s134, v)
    rc, out = playbook(PLAYBOOK, v, inventory(), {"K8S_AUTH_KUBECONFIG": k8s134}, name="role-refuse-admin")
    assert rc != 0 and "the admin key never goes to" in out
    assert observe(ceph, k8s134, v) == before


def test_role_bad_pool_name_changes_nothing(ceph, k8s134, inventory, playbook, clean):
    v = role_vars(ceph_rbd_pool="bad pool")
    snap = (ceph.cli("osd", "pool", "ls").stdout, ceph.cli("auth", "ls").stdout)
    rc, out = playbook(PLAYBOOK, v, inventory(), {"K8S_AUTH_KUBECONFIG": k8s134}, name="role-bad-pool")
    assert rc != 0 and "ceph_rbd_pool must be a pool name" in out
    assert (ceph.cli("osd", "pool", "ls").stdout, ceph.cli("auth", "ls").stdout) == snap


def test_role_skipped_without_ceph_admin_host(playbook, tmp_path):
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    rc, out = playbook(PLAYBOOK, {}, str(inv), {"K8S_AUTH_KUBECONFIG": "/nonexistent"}, name="role-no-ceph")
    assert rc == 0, out
    assert "skipping: no hosts matched" in out
    assert recap(out) == {"localhost": 0}


def test_csi_content_on_v134(ceph, k8s134, inventory, playbook, clean):
    """On the main cluster: the Secret, ceph-csi config and StorageClass as ceph-csi documents them;
    in-tree refused with its reason."""
    v = role_vars(ceph_rbd_mount_options=["discard"])
    env = {"K8S_AUTH_KUBECONFIG": k8s134}
    inv = inventory()
    cleanup_k8s(k8s134, v)
    try:
        before = read_k8s(k8s134, v)
        rc, out = playbook(PLAYBOOK, v, inv, env, check=True, name="role-csi-check")
        assert rc == 0, out[-3000:]
        assert read_k8s(k8s134, v) == before

        rc, out = playbook(PLAYBOOK, v, inv, env, name="role-csi-create")
        assert rc == 0, out[-3000:]
        got = read_k8s(k8s134, v)
        client = ceph.entity("client." + CLIENT)
        assert got["secret"] == {"type": "Opaque", "data": {"userID": CLIENT, "userKey": client["key"]}}
        assert json.loads(got["configmap"]["config.json"]) == [
            {"clusterID": ceph.fsid(), "monitors": ["127.0.0.1:6789"]}]
        ns = v["ceph_rbd_namespace"]
        assert got["sc"] == {
            "provisioner": "rbd.csi.ceph.com",
            "parameters": {
                "clusterID": ceph.fsid(), "pool": POOL, "imageFeatures": "layering",
                "csi.storage.k8s.io/fstype": "ext4",
                "csi.storage.k8s.io/provisioner-secret-name": "ceph-e2e-rbd",
                "csi.storage.k8s.io/provisioner-secret-namespace": ns,
                "csi.storage.k8s.io/controller-expand-secret-name": "ceph-e2e-rbd",
                "csi.storage.k8s.io/controller-expand-secret-namespace": ns,
                "csi.storage.k8s.io/node-stage-secret-name": "ceph-e2e-rbd",
                "csi.storage.k8s.io/node-stage-secret-namespace": ns},
            "reclaimPolicy": "Delete", "allowVolumeExpansion": True, "volumeBindingMode": "Immediate"}
        assert admin_key(ceph) not in all_secret_values(k8s134)

        rc, out = playbook(PLAYBOOK, v, inv, env, name="role-csi-again")
        assert rc == 0 and recap(out) == {"cephhost": 0, "localhost": 0}, out[-3000:]

        # A parameter change: refused without ceph_rbd_storage_class_replace, done with it.
        v2 = dict(v, ceph_rbd_image_features="layering,exclusive-lock")
        rc, out = playbook(PLAYBOOK, v2, inv, env, name="role-csi-sc-change-refused")
        assert rc != 0 and "ceph_rbd_storage_class_replace=true" in out
        assert read_k8s(k8s134, v)["sc"]["parameters"]["imageFeatures"] == "layering"
        rc, out = playbook(PLAYBOOK, dict(v2, ceph_rbd_storage_class_replace=True), inv, env,
                           name="role-csi-sc-replaced")
        assert rc == 0, out[-3000:]
        assert read_k8s(k8s134, v)["sc"]["parameters"]["imageFeatures"] == "layering,exclusive-lock"

        # In-tree is refused on 1.31+ with the reason, before anything in Kubernetes changes.
        now = read_k8s(k8s134, v)
        rc, out = playbook(PLAYBOOK, dict(v, ceph_rbd_provisioner="in-tree"), inv, env, name="role-csi-intree-refused")
        assert rc != 0
        assert "in-tree kubernetes.io/rbd provisioner, which was removed in Kubernetes 1.31" in " ".join(out.split())
        assert read_k8s(k8s134, v) == now
    finally:
        cleanup_k8s(k8s134, v)
