"""Pod Security on the local cluster, for every flavor, on the shared
deployed_cluster (no extra deploy): its namespace enforces "baseline" before
site.yml creates the pods (conftest.py); the processes run as the mysql uid
with no capability, no privilege escalation, seccomp RuntimeDefault and no
API token; the donor sidecar sees no root password. "restricted" cannot run
on the local hostPath storage (it ignores fsGroup, so a root CAP_CHOWN step
is needed): the pod for storage that honours fsGroup is admitted by the API
server under "restricted" (server-side dry run), the hostPath default is
refused there and admitted under "baseline"."""
import os

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from kube import PASSWORDS, PREFIX, ROOT, api, create_namespace, delete_namespace

# The role's default (the official images' mysql uid) unless the local vars set it.
RUN_AS_USER = (yaml.safe_load(open(os.path.join(ROOT, "tests/e2e/vars/local.yml"))) or {}).get(
    "mysql_cluster_run_as_user", 999)
NO_CAPS = "0000000000000000"


def _status(cluster, pod, container, pid):
    out = cluster.sh(pod, "cat /proc/%s/status" % pid, container=container)
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)


def test_namespace_enforces_baseline(deployed_cluster):
    c = deployed_cluster
    ns = c.core.read_namespace(c.namespace)
    assert ns.metadata.labels.get("pod-security.kubernetes.io/enforce") == "baseline"
    # The label is enforced: a privileged pod is refused there.
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="privileged"), spec=client.V1PodSpec(containers=[
        client.V1Container(name="c", image="localhost/stateful-mysql/pause:1",
                           security_context=client.V1SecurityContext(privileged=True))]))
    with pytest.raises(ApiException) as err:
        c.core.create_namespaced_pod(c.namespace, pod, dry_run="All")
    assert err.value.status == 403 and "PodSecurity" in err.value.body
    c.wait_ready(3, timeout=120)


def test_pod_spec_is_hardened(deployed_cluster):
    c = deployed_cluster
    for pod in c.pods():
        spec = pod.spec
        assert spec.automount_service_account_token is False
        assert not [v.name for v in spec.volumes if v.projected is not None], "an API token is mounted"
        psc = spec.security_context
        assert psc.run_as_non_root is True and psc.run_as_user == RUN_AS_USER
        assert psc.seccomp_profile.type == "RuntimeDefault"
        for container in spec.init_containers + spec.containers:
            sc = container.security_context
            assert sc.allow_privilege_escalation is False and sc.capabilities.drop == ["ALL"]
            assert sc.capabilities.add in (None, ["CHOWN"]) and sc.privileged is not True
            if sc.capabilities.add:
                assert container.name == "volume-owner"


def test_processes_run_as_mysql_without_capabilities(deployed_cluster):
    c = deployed_cluster
    for pod in c.pods():
        name = pod.metadata.name
        for container in [s.name for s in pod.spec.containers]:
            # PID 1 is the server (exec'd by server.sh) or the donor's socat.
            for pid in ("1", "self"):
                st = _status(c, name, container, pid)
                assert st["Uid"].split() == [str(RUN_AS_USER)] * 4, (name, container, pid, st["Uid"])
                assert st["CapEff"].strip() == NO_CAPS and st["CapPrm"].strip() == NO_CAPS, (name, container, pid)
                assert st["NoNewPrivs"].strip() == "1" and st["Seccomp"].strip() == "2", (name, container, pid)
            rc = c.exec(name, ["test", "-e", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
                        container=container)[0]
            assert rc != 0, "%s/%s has a service-account token" % (name, container)


def test_donor_sidecar_sees_no_root_password(deployed_cluster):
    c = deployed_cluster
    for pod in c.pods():
        name = pod.metadata.name
        containers = [s.name for s in pod.spec.containers]
        if c.flavor == "mysql":
            assert containers == ["mysql"]  # CLONE: no sidecar at all
            continue
        assert c.sh(name, "ls /etc/stateful-mysql/credentials", container="donor").split() == ["clone-password"]
        # Every file the sidecar can read where the pod keeps config, secrets and
        # sockets, and every small file of the volume it serves (master.info,
        # which holds the replication password, would be one).
        seen = c.sh(name, "find /etc/stateful-mysql /run/stateful-mysql -type f -readable -exec cat {} + "
                          "2>/dev/null; find /var/lib/mysql -type f -readable -size -1M -exec cat {} + "
                          "2>/dev/null; true", container="donor")
        assert "[client]" in seen, "the donor's own option file should be readable"
        for key in ("mysql_cluster_root_password", "mysql_cluster_replication_password"):
            assert PASSWORDS[key] not in seen, "%s readable in %s/donor" % (key, name)
        # It serves the datadir and nothing else of the volume.
        listing = c.sh(name, "ls -A /var/lib/mysql", container="donor").split()
        assert "data" in listing and ".stateful-mysql" not in listing, (name, listing)


def _admitted(core, namespace, sts):
    """Whether the API server admits a pod of this StatefulSet (server-side dry run)."""
    template = sts["spec"]["template"]
    spec = dict(template["spec"])
    # What the StatefulSet controller adds: one claim per volumeClaimTemplate.
    spec["volumes"] = list(spec.get("volumes") or []) + [
        {"name": t["metadata"]["name"], "persistentVolumeClaim": {"claimName": "dry-run"}}
        for t in sts["spec"].get("volumeClaimTemplates") or []]
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dry-run", "labels": template["metadata"]["labels"]},
            "spec": spec}
    try:
        core.create_namespaced_pod(namespace, body, dry_run="All")
        return True, ""
    except ApiException as e:
        assert e.status == 403, e.body
        return False, e.body


@pytest.fixture(scope="module")
def pod_security_namespaces(kube_ready):
    names = {}
    for level in ("restricted", "baseline"):
        names[level] = "%s-podsec-%s" % (PREFIX, level)
        delete_namespace(names[level])
        create_namespace(names[level], {"pod-security.kubernetes.io/enforce": level,
                                        "pod-security.kubernetes.io/enforce-version": "latest"})
    yield names
    for ns in names.values():
        delete_namespace(ns)


def test_hostpath_default_is_baseline_not_restricted(deployed_cluster, pod_security_namespaces):
    """The StatefulSet site.yml applied (hostPath default, with the root
    CAP_CHOWN step): admitted under baseline, refused under restricted."""
    c = deployed_cluster
    core = api()[0]
    live = c.apps.api_client.sanitize_for_serialization(c.apps.read_namespaced_stateful_set(c.name, c.namespace))
    ok, why = _admitted(core, pod_security_namespaces["restricted"], live)
    assert not ok and "volume-owner" in why, why
    ok, why = _admitted(core, pod_security_namespaces["baseline"], live)
    assert ok, why


def test_restricted_where_storage_honours_fsgroup(deployed_cluster, pod_security_namespaces):
    """With mysql_cluster_volume_owner_init false (storage that honours
    fsGroup) the role renders the same pod without the volume-owner step
    (tests/unit/roles/test_mysql_cluster_templates.py proves that): that pod
    passes restricted."""
    c = deployed_cluster
    core = api()[0]
    sts = c.apps.api_client.sanitize_for_serialization(c.apps.read_namespaced_stateful_set(c.name, c.namespace))
    spec = sts["spec"]["template"]["spec"]
    spec["initContainers"] = [i for i in spec["initContainers"] if i["name"] != "volume-owner"]
    assert [i["name"] for i in spec["initContainers"]] == ["init"]
    ok, why = _admitted(core, pod_security_namespaces["restricted"], sts)
    assert ok, "refused under restricted: %s" % why
