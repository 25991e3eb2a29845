"""The modules on the local Kubernetes, run the way users run them: through
ansible-playbook, reaching the pods through the API server's port-forward.

- statefulset_teardown on a StatefulSet of our own (pause image, hostpath
  PVCs), with a scaled-down ordinal and decoy PVCs that must survive;
- replication_status and replication_verify on a one-server MariaDB
  StatefulSet of our own (port-forward, the credentials Secret, exec of the
  client through the read Service), independent of the role;
- both on the 3-pod clusters site.yml deploys (fixture ``deployed_cluster``
  from conftest.py, one per flavor).
"""
import base64
import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kube import BIN, KUBECONFIG, PASSWORDS, PREFIX, ROOT, api

PAUSE_IMAGE = "localhost/stateful-mysql/pause:1"
MARIADB_IMAGE = "localhost/stateful-mysql/mariadb:10.11"
STORAGE_CLASS = "standard"


def run_module(module, args, check=False, diff=False):
    """One task of stateful.mysql.<module> through ansible-playbook; returns its result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        play = [{
            "hosts": "localhost", "gather_facts": False, "connection": "local",
            "tasks": [
                {"name": "module under test", "stateful.mysql.%s" % module: args, "register": "r",
                 "ignore_errors": True, "check_mode": check, "diff": diff},
                {"name": "save result", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": out},
                 "check_mode": False},
            ]}]
        book = os.path.join(tmp, "play.yml")
        with open(book, "w") as fh:
            json.dump(play, fh)
        env = dict(os.environ, K8S_AUTH_KUBECONFIG=KUBECONFIG, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=os.path.join(BIN, "python"))
        env.pop("KUBECONFIG", None)  # the modules must find it through K8S_AUTH_KUBECONFIG
        proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", book],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        with open(out) as fh:
            result = json.load(fh)
        result["_output"] = proc.stdout + proc.stderr
        return result


def ensure_namespace(core, ns):
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    except ApiException as e:
        if e.status != 409:
            raise


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def delete_namespace(core, ns):
    try:
        core.delete_namespace(ns)
    except ApiException as e:
        if e.status != 404:
            raise


def pvc_body(name, labels=None):
    return client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], storage_class_name=STORAGE_CLASS,
            resources=client.V1VolumeResourceRequirements(requests={"storage": "16Mi"})))


# -- statefulset_teardown ------------------------------------------------------

def pause_statefulset(name, replicas):
    labels = {"app": name}
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1StatefulSetSpec(
            replicas=replicas, service_name=name, pod_management_policy="Parallel",
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    termination_grace_period_seconds=1,
                    containers=[client.V1Container(
                        name="main", image=PAUSE_IMAGE, image_pull_policy="IfNotPresent",
                        volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data"),
                                       client.V1VolumeMount(name="logs", mount_path="/logs")])])),
            volume_claim_templates=[
                client.V1PersistentVolumeClaim(
                    metadata=client.V1ObjectMeta(name=t),
                    spec=client.V1PersistentVolumeClaimSpec(
                        access_modes=["ReadWriteOnce"], storage_class_name=STORAGE_CLASS,
                        resources=client.V1VolumeResourceRequirements(requests={"storage": "16Mi"})))
                for t in ("data", "logs")]))


@pytest.fixture
def teardown_namespace():
    core = api()[0]
    ns = "%s-teardown-%s" % (PREFIX, uuid.uuid4().hex[:6])
    ensure_namespace(core, ns)
    yield ns
    delete_namespace(core, ns)


def bound_pvs(core, ns, names):
    out = {}
    for pvc in core.list_namespaced_persistent_volume_claim(ns).items:
        if pvc.metadata.name in names and pvc.spec.volume_name:
            out[pvc.metadata.name] = pvc.spec.volume_name
    return out


def test_statefulset_teardown(teardown_namespace):
    core, apps = api()
    ns, name = teardown_namespace, "tiny"
    apps.create_namespaced_stateful_set(ns, pause_statefulset(name, 3))
    # Decoys: a PVC of another StatefulSet whose name starts like ours, one with
    # our shape but foreign labels, one unrelated. All bound, all must survive.
    decoys = ["data-tinyx-0", "decoy", "data-tiny-7"]
    core.create_namespaced_persistent_volume_claim(ns, pvc_body("data-tinyx-0"))
    core.create_namespaced_persistent_volume_claim(ns, pvc_body("decoy"))
    core.create_namespaced_persistent_volume_claim(ns, pvc_body("data-tiny-7", labels={"app": "someone-else"}))
    ours = ["%s-tiny-%d" % (t, i) for t in ("data", "logs") for i in range(3)]
    wait_for(lambda: len(bound_pvs(core, ns, ours + decoys)) == 9, 180, "9 PVCs bound")
    wait_for(lambda: sum(1 for p in core.list_namespaced_pod(ns).items
                         if p.status.phase == "Running") == 3, 180, "3 pods running")
    # Scale down: ordinal 2's PVCs stay behind, and must still go.
    apps.patch_namespaced_stateful_set_scale(name, ns, {"spec": {"replicas": 2}})
    wait_for(lambda: len(core.list_namespaced_pod(ns).items) == 2, 120, "scale-down to 2 pods")
    pv_of = bound_pvs(core, ns, ours + decoys)
    our_pvs = sorted(pv_of[c] for c in ours)

    args = {"name": name, "namespace": ns, "wait_timeout": 180}
    refused = run_module("statefulset_teardown", args)
    assert refused.get("failed") and "confirm=true" in refused["msg"]

    preview = run_module("statefulset_teardown", args, check=True, diff=True)
    assert not preview.get("failed"), preview.get("msg")
    assert preview["changed"] is True
    assert preview["statefulset"] == name
    assert preview["pods"] == ["tiny-0", "tiny-1"]
    assert preview["pvcs"] == sorted(ours)
    assert preview["skipped_pvcs"] == ["data-tiny-7"]
    assert sorted(v["name"] for v in preview["pvs"]) == our_pvs
    assert all(v["reclaim_policy"] == "Delete" for v in preview["pvs"])
    assert preview["diff"]["after"]["pvcs"] == [] and preview["diff"]["before"]["pvcs"] == sorted(ours)
    # Check mode changed nothing.
    assert apps.read_namespaced_stateful_set(name, ns).spec.replicas == 2
    assert len(bound_pvs(core, ns, ours + decoys)) == 9

    done = run_module("statefulset_teardown", dict(args, confirm=True))
    assert not done.get("failed"), done.get("msg")
    assert done["changed"] is True and done["pvcs"] == sorted(ours)

    # Zero PVCs and PVs of the StatefulSet remain; the decoys and their PVs do.
    left = {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items}
    assert left == set(decoys)
    pvs = {v.metadata.name: v for v in core.list_persistent_volume().items}
    assert not set(our_pvs) & set(pvs)
    assert not [v for v in pvs.values() if v.spec.claim_ref and v.spec.claim_ref.namespace == ns
                and v.spec.claim_ref.name in ours]
    assert all(pv_of[d] in pvs for d in decoys)
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_stateful_set(name, ns)
    assert e.value.status == 404
    assert [p.metadata.name for p in core.list_namespaced_pod(ns).items] == []

    again = run_module("statefulset_teardown", dict(args, confirm=True))
    assert again["changed"] is False and not again.get("failed")


# -- status and verify on a one-server MariaDB StatefulSet of our own ---------

SOLO_SCRIPT = r"""
set -eu
d=/var/lib/mysql/data
mkdir -p "$d" /run/mysqld /run/solo
chown mysql:mysql "$d" /run/mysqld
chmod 755 /var/lib/mysql
# A test fixture, not the product: the server runs as root in its own pod.
console=
if command -v mariadbd >/dev/null 2>&1; then
  server=mariadbd
  [ -d "$d/mysql" ] || mariadb-install-db --user=root --datadir="$d" --skip-test-db >/dev/null
else
  server=mysqld
  console=--console
  [ -d "$d/mysql" ] || mysqld --initialize-insecure --user=root --datadir="$d" --console
fi
# The init file holds the password: private, outside the volume, made from the Secret.
umask 077
esc=$(sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" /secret/root-password)
{
  printf "CREATE USER IF NOT EXISTS 'root'@'%%' IDENTIFIED BY '%s';\n" "$esc"
  printf "ALTER USER 'root'@'%%' IDENTIFIED BY '%s';\n" "$esc"
  printf "GRANT ALL ON *.* TO 'root'@'%%' WITH GRANT OPTION;\n"
} > /run/solo/init.sql
chown mysql /run/solo/init.sql  # Debian's mysqld reads it as mysql whatever --user says
exec "$server" $console --user=root --datadir="$d" --bind-address=0.0.0.0 --port=3306 --server-id=100 \
  --log-bin=binlog --skip-name-resolve --secure-file-priv=/run/solo --init-file=/run/solo/init.sql
"""

SOLO_IMAGES = {"mariadb": MARIADB_IMAGE, "mysql": "localhost/stateful-mysql/mysql:9.7"}


def node_has_image(core, image):
    for node in core.list_node().items:
        for img in node.status.images or []:
            if any(n == image or n.endswith("/" + image) or n == "docker.io/" + image for n in img.names or []):
                return True
    return False


@pytest.fixture(scope="module", params=sorted(SOLO_IMAGES))
def solo_mariadb(request):
    core, apps = api()
    flavor = request.param
    image = SOLO_IMAGES[flavor]
    if not node_has_image(core, image):
        pytest.fail("image %s is not imported on the node: run `make cluster-up`" % image)
    ns, name = "%s-modules-%s-%s" % (PREFIX, flavor, uuid.uuid4().hex[:6]), "solo"
    ensure_namespace(core, ns)
    password = PASSWORDS["mysql_cluster_root_password"]
    core.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="%s-credentials" % name),
        data={"root-password": base64.b64encode(password.encode()).decode()}))
    labels = {"app": name}
    for svc, headless in ((name, True), ("%s-read" % name, False)):
        core.create_namespaced_service(ns, client.V1Service(
            metadata=client.V1ObjectMeta(name=svc),
            spec=client.V1ServiceSpec(selector=labels, cluster_ip="None" if headless else None,
                                      ports=[client.V1ServicePort(name="mysql", port=3306)])))
    apps.create_namespaced_stateful_set(ns, client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1StatefulSetSpec(
            replicas=1, service_name=name, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    termination_grace_period_seconds=5,
                    containers=[client.V1Container(
                        name="mysql", image=image, image_pull_policy="IfNotPresent",
                        command=["bash", "-c", SOLO_SCRIPT],
                        ports=[client.V1ContainerPort(container_port=3306)],
                        readiness_probe=client.V1Probe(
                            tcp_socket=client.V1TCPSocketAction(port=3306), period_seconds=2),
                        volume_mounts=[client.V1VolumeMount(name="data", mount_path="/var/lib/mysql"),
                                       client.V1VolumeMount(name="secret", mount_path="/secret",
                                                            read_only=True)])],
                    volumes=[client.V1Volume(name="secret", secret=client.V1SecretVolumeSource(
                        secret_name="%s-credentials" % name))])),
            volume_claim_templates=[client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="data"),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"], storage_class_name=STORAGE_CLASS,
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "512Mi"})))])))

    def ready():
        try:
            pod = core.read_namespaced_pod("%s-0" % name, ns)
        except ApiException:
            return False
        statuses = pod.status.container_statuses or []
        if statuses and statuses[0].restart_count >= 2:
            log = core.read_namespaced_pod_log(pod.metadata.name, ns, previous=True, tail_lines=20)
            raise AssertionError("solo-0 (%s) keeps crashing:\n%s" % (image, log))
        return bool(statuses) and statuses[0].ready
    try:
        wait_for(ready, 240, "pod solo-0 Ready")
    except BaseException:
        delete_namespace(core, ns)
        raise
    yield {"name": name, "namespace": ns, "password": password, "flavor": flavor}
    run_module("statefulset_teardown", {"name": name, "namespace": ns, "confirm": True,
                                        "delete_namespace": True, "wait_timeout": 180})


# The modules' port-forward path is the same for both images: one in the landing tier.
@pytest.mark.landing("mariadb")
def test_status_through_port_forward_with_the_secret(solo_mariadb):
    args = {"name": solo_mariadb["name"], "namespace": solo_mariadb["namespace"], "wait": True,
            "wait_timeout": 120}
    result = run_module("replication_status", args)
    assert not result.get("failed"), result.get("msg")
    assert result["healthy"] is True
    (server,) = result["servers"]
    assert server["name"] == "solo-0" and server["role"] == "primary"
    assert server["flavor"] == solo_mariadb["flavor"]
    assert server["server_id"] == 100 and server["read_only"] is False
    assert server["binlog"]["file"].startswith("binlog.")
    assert solo_mariadb["password"] not in result["_output"]
    # Check mode is the same read.
    result = run_module("replication_status", args, check=True)
    assert result["healthy"] is True
    # A wrong explicit password overrides the Secret and is reported, not shown.
    # (Through the port-forward the server's 1045 may not arrive before the tunnel
    # drops: then the report says the connection was lost. Either way: not healthy.)
    result = run_module("replication_status", dict(args, wait=False, login_password="wrong-password-x",
                                                   connect_timeout=5))
    assert result["healthy"] is False
    assert result["servers"][0]["problems"][0].startswith("cannot query solo-0: error ")
    assert "wrong-password-x" not in json.dumps({k: v for k, v in result.items() if k != "invocation"})


@pytest.mark.landing("mariadb")
def test_verify_reads_through_the_read_service_in_cluster(solo_mariadb):
    args = {"name": solo_mariadb["name"], "namespace": solo_mariadb["namespace"], "read_attempts": 3}
    result = run_module("replication_verify", args)
    assert not result.get("failed"), result.get("msg")
    assert result["propagation"] == [] and result["writes_refused"] == []
    assert [r["found"] for r in result["reads"]] == [True, True, True]
    assert result["read_servers"] == ["solo-0"]
    assert solo_mariadb["password"] not in result["_output"]


# -- on the clusters site.yml deploys (fixture from conftest.py) ---------------

def _cluster_args(cluster):
    get = cluster.get if isinstance(cluster, dict) else lambda k: getattr(cluster, k)
    return {"name": get("name"), "namespace": get("namespace")}, get("flavor")


def test_status_on_deployed_cluster(deployed_cluster):
    args, flavor = _cluster_args(deployed_cluster)
    result = run_module("replication_status", dict(args, wait=True, wait_timeout=600))
    assert not result.get("failed"), result.get("msg")
    servers = result["servers"]
    assert [s["name"] for s in servers] == ["%s-%d" % (args["name"], i) for i in range(3)]
    assert [s["role"] for s in servers] == ["primary", "replica", "replica"]
    assert {s["flavor"] for s in servers} == {flavor}
    assert len({s["server_id"] for s in servers}) == 3
    assert servers[0]["read_only"] is False
    for s in servers[1:]:
        assert (s["io_running"], s["sql_running"]) == ("Yes", "Yes")
        assert s["read_only"] is True and s["lag"] is not None
        assert s["source_host"].startswith("%s-0" % args["name"])
        if flavor == "mysql":
            assert s["super_read_only"] is True and s["replication"]["auto_position"] == 1
        else:
            assert s["replication"]["using_gtid"] == "Slave_Pos"
    for password in PASSWORDS.values():
        assert password not in result["_output"]


def test_verify_on_deployed_cluster(deployed_cluster):
    args, flavor = _cluster_args(deployed_cluster)
    result = run_module("replication_verify", dict(args, read_attempts=8))
    assert not result.get("failed"), result.get("msg")
    assert [p["name"] for p in result["propagation"]] == ["%s-%d" % (args["name"], i) for i in (1, 2)]
    assert all(r["found"] for r in result["reads"])
    assert set(result["read_servers"]) <= {"%s-%d" % (args["name"], i) for i in range(3)}
    assert [w["refused"] for w in result["writes_refused"]] == [True, True]
    if flavor == "mysql":  # super_read_only refuses root itself
        assert all(w["user"] == "login" for w in result["writes_refused"])
    for password in PASSWORDS.values():
        assert password not in result["_output"]


def test_direct_connections_verify_each_server_against_the_cluster_ca(deployed_cluster):
    """connection: direct from a control node in the pod network (this node
    routes pod addresses), the servers listed by address and named as their
    pods: each is reached over TLS, verified against ca.crt of <name>-tls and
    its pod's name. Another CA there, and the module cannot connect."""
    c = deployed_cluster
    args, _flavor = _cluster_args(c)
    pods = sorted(c.pods(), key=lambda p: p.metadata.name)
    direct = dict(args, connection="direct", hosts=[{"name": p.metadata.name, "host": p.status.pod_ip} for p in pods])
    result = run_module("replication_status", direct)
    assert not result.get("failed"), result.get("msg")
    assert [s["name"] for s in result["servers"]] == [p.metadata.name for p in pods]
    assert all(s["reachable"] and s["healthy"] for s in result["servers"]), result["servers"]
    core = api()[0]
    secret = "%s-tls" % c.name
    kept = core.read_namespaced_secret(secret, c.namespace).data["ca.crt"]
    foreign = subprocess.run(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null -days 1 "
        "-subj /CN=foreign-ca -addext keyUsage=critical,keyCertSign 2>/dev/null",
        shell=True, capture_output=True, text=True, check=True).stdout
    core.patch_namespaced_secret(secret, c.namespace, {"data": {"ca.crt": base64.b64encode(foreign.encode()).decode()}})
    try:
        result = run_module("replication_status", direct)
    finally:
        core.patch_namespaced_secret(secret, c.namespace, {"data": {"ca.crt": kept}})
    for server in result["servers"]:
        assert not server["reachable"] and "certificate verify failed" in " ".join(server["problems"]).lower(), server
