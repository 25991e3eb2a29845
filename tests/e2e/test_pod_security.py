"""Pod Security on the local cluster, for every flavor, on the shared
deployed_cluster (no extra deploy): its namespace enforces "baseline" before
site.yml creates the pods (conftest.py); the processes run as the mysql uid
with no capability, no privilege escalation, seccomp RuntimeDefault and no
API token; the donor sidecar sees no root password. "restricted" cannot run
on the local hostPath storage (it ignores fsGroup, so a root CAP_CHOWN step
is needed): the spec rendered for storage that honours fsGroup is admitted
by the API server under "restricted" (server-side dry run), the default one
is refused there, and admitted under "baseline"."""
import json
import os
import subprocess
import sys

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
        # Every file the sidecar can read where the pod keeps config, secrets and sockets.
        seen = c.sh(name, "find /etc/stateful-mysql /run/stateful-mysql -type f -readable -exec cat {} + "
                          "2>/dev/null; true", container="donor")
        assert "[client]" in seen, "the donor's own option file should be readable"
        for key in ("mysql_cluster_root_password", "mysql_cluster_replication_password"):
            assert PASSWORDS[key] not in seen, "%s readable in %s/donor" % (key, name)


def _render_statefulset(tmp_path, flavor, version, extra):
    """The StatefulSet the role renders for these variables (tests/unit/roles/render.yml)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(dict(extra, render_dir=str(tmp_path))))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "tests/unit/roles/render.yml", "-e", "@tests/e2e/vars/local.yml",
                           "-e", "@tests/e2e/vars/%s-%s.yml" % (flavor, version), "-e", "@" + str(varfile)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return yaml.safe_load((tmp_path / "statefulset.yaml").read_text())


def _admitted(core, namespace, sts):
    template = sts["spec"]["template"]
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dry-run", "labels": template["metadata"]["labels"]},
            "spec": template["spec"]}
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


def test_restricted_where_storage_honours_fsgroup(deployed_cluster, pod_security_namespaces, tmp_path):
    c = deployed_cluster
    core = api()[0]
    ns = pod_security_namespaces
    restricted = _render_statefulset(tmp_path / "r", c.flavor, c.version, {"mysql_cluster_volume_owner_init": False})
    ok, why = _admitted(core, ns["restricted"], restricted)
    assert ok, "the fsGroup variant is refused under restricted: %s" % why
    # The hostPath default has a root CAP_CHOWN step: baseline, not restricted.
    default = _render_statefulset(tmp_path / "d", c.flavor, c.version, {})
    ok, why = _admitted(core, ns["restricted"], default)
    assert not ok and "volume-owner" in why, why
    assert _admitted(core, ns["baseline"], default)[0]
