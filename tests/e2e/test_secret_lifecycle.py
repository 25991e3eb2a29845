"""A cluster's Secrets over its life (issue 27), on the local Kubernetes:

- no Secret keeps a copy of its data in an annotation (a run cleans the
  last-applied copy an older apply left), and no annotation of any object
  in the namespace holds a password or the private key;
- a live cluster whose credentials and TLS Secrets are deleted is refused
  by site.yml, scale.yml and verify.yml before any change, and the restore
  the message gives (from a running pod's mounted copy) brings back Secrets
  the servers accept: every pod restarted afterwards replicates again;
- rotate_certificates.yml under a write load rolls the pods onto a new CA
  and certificate, the replica first, with no TLS or SQL error on the
  replica and every acknowledged write kept;
- rotate_credentials.yml under a write load changes every password on
  every server with no pod restart, no failed probe, no replication error
  and no lost write; the old passwords are refused afterwards, no binary log
  holds a password or an account statement, and a replica restarted on the
  new Secret replicates; a rotation stopped half-way is refused by site.yml
  and finished by the next rotate_credentials.yml with the passwords it chose;
- a password changed in a Secret the user names reaches the servers on the
  next site.yml the same way, while the pods mount the role's copy;
- a certificate Secret in cert-manager's layout serves a new cluster (one
  that does not name the pods is refused first), and a new issuer put in it
  rolls the pods on the next site.yml with both CAs trusted meanwhile;
- application databases and users: the user writes on the primary only
  and only over TLS, its password in no binary log, a user shadowing the
  cluster's own refused before any change;
- verify.yml fails on an expired certificate, naming it;
- site.yml refuses the root volume-owner step in a namespace that enforces
  Pod Security restricted, and fails at once, quoting the API, when the API
  refuses to create the pods (a quota).

Each cluster has generated passwords, as a user's first deploy has."""
import base64
import datetime
import glob
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pymysql
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client
from kubernetes.client.rest import ApiException

from kube import (Background, CACHE, KUBECONFIG, NO_PASSWORDS, POD_SECURITY_BASELINE, POD_SECURITY_RESTRICTED, PREFIX, REMOTE_ROOT,
                  ROOT, Cluster, api, create_namespace, delete_namespace, deploy_args, replicating, run_playbook, wait_until)

PLAYBOOKS = ("site.yml", "scale.yml", "verify.yml", "rotate_certificates.yml", "rotate_credentials.yml")
SITE, SCALE, VERIFY, ROTATE, ROTATE_CREDENTIALS = (os.path.join(ROOT, p) for p in PLAYBOOKS)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NAME = "sl"
FLAVORS = [pytest.param(("mysql", "9.7"), id="mysql-9.7"), pytest.param(("mariadb", "11.8"), id="mariadb-11.8")]


def flat(out):
    return " ".join(out.split())


def kubectl():
    found = sorted(glob.glob(os.path.join(CACHE, "bin", "kubernetes-*", "kubectl")))
    assert found, "no kubectl under %s/bin (make cluster-up builds it)" % CACHE
    return found[-1]


@pytest.fixture(scope="module", params=FLAVORS)
def own_cluster(request, kube_ready, tmp_path_factory):
    """Two pods with generated passwords; each test leaves it replicating."""
    flavor, version = request.param
    ns = "%s-secrets-%s" % (PREFIX, flavor)
    delete_namespace(ns)
    create_namespace(ns, POD_SECURITY_BASELINE)
    args = deploy_args(flavor, version, NAME, ns, str(tmp_path_factory.mktemp(flavor)),
                       dict(NO_PASSWORDS, **REMOTE_ROOT, mysql_cluster_replicas=2))
    run_playbook(SITE, *args)
    yield Cluster(NAME, ns, flavor, version), args
    delete_namespace(ns, wait=False)


def secret_values(c):
    """Every value of the cluster's Secrets, decoded (the generated passwords, the private key)."""
    out = {}
    for s in ("-credentials", "-tls"):
        data = c.core.read_namespaced_secret(c.name + s, c.namespace).data
        out.update({"%s%s/%s" % (c.name, s, k): base64.b64decode(v).decode() for k, v in data.items()})
    return out


def annotations_everywhere(c):
    """(object, key, value) of every annotation of every object in the namespace."""
    core, apps = c.core, c.apps
    policy, net = client.PolicyV1Api(), client.NetworkingV1Api()
    lists = [core.list_namespaced_secret, core.list_namespaced_config_map, core.list_namespaced_service,
             core.list_namespaced_pod, core.list_namespaced_persistent_volume_claim, core.list_namespaced_endpoints,
             core.list_namespaced_service_account, apps.list_namespaced_stateful_set,
             apps.list_namespaced_controller_revision, policy.list_namespaced_pod_disruption_budget,
             net.list_namespaced_network_policy]
    out = []
    objects = [core.read_namespace(c.namespace)]
    for lister in lists:
        objects += lister(c.namespace).items
    for obj in objects:
        for key, value in (obj.metadata.annotations or {}).items():
            out.append(("%s %s" % (obj.kind or type(obj).__name__, obj.metadata.name), key, value))
    # The StatefulSet's pod template carries annotations of its own.
    for sts in apps.list_namespaced_stateful_set(c.namespace).items:
        for key, value in (sts.spec.template.metadata.annotations or {}).items():
            out.append(("StatefulSet %s template" % sts.metadata.name, key, value))
    return out


@pytest.mark.landing("mariadb-11.8")
def test_secrets_keep_no_copy_in_annotations_and_a_lost_secret_is_refused(own_cluster):
    c, args = own_cluster
    values = secret_values(c)
    assert len(values) == 6, sorted(values)

    # What an older version left: Secrets applied client-side, their data in the annotation.
    for s in ("-credentials", "-tls"):
        live = c.core.read_namespaced_secret(c.name + s, c.namespace)
        copy = {"apiVersion": "v1", "kind": "Secret", "data": live.data,
                "metadata": {"name": live.metadata.name, "namespace": c.namespace}}
        c.core.patch_namespaced_secret(live.metadata.name, c.namespace,
                                       {"metadata": {"annotations": {LAST_APPLIED: json.dumps(copy)}}})
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] >= 1, recap
    for s in ("-credentials", "-tls"):
        meta = c.core.read_namespaced_secret(c.name + s, c.namespace).metadata
        assert LAST_APPLIED not in (meta.annotations or {}), (meta.name, sorted(meta.annotations or {}))
    assert secret_values(c) == values, "the rewrite changed a Secret's data"
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] == 0, recap

    # No annotation anywhere holds a password or the key, plain or base64.
    found = annotations_everywhere(c)
    assert any(key == LAST_APPLIED for _obj, key, _value in found), "the scan saw no last-applied annotation at all"
    for what, secret in values.items():
        lines = [line for line in secret.splitlines() if len(line) > 16] if "BEGIN" in secret else [secret]
        for needle in lines + [base64.b64encode(secret.encode()).decode()]:
            hits = [(obj, key) for obj, key, value in found if needle in value]
            assert not hits, "%s appears in the annotations %s" % (what, hits)

    # Both Secrets deleted on the live cluster: every playbook refuses before any change.
    sts_version = c.apps.read_namespaced_stateful_set(c.name, c.namespace).metadata.resource_version
    for s in ("-credentials", "-tls"):
        c.core.delete_namespaced_secret(c.name + s, c.namespace)
    for playbook, extra in ((SITE, ()), (SCALE, ("-e", "replicas=3")), (VERIFY, ())):
        out, recap = run_playbook(playbook, *args, *extra, check=False)
        text = flat(out)
        assert recap.get("failed") == 1, (playbook, text[-3000:])
        assert ("Secrets %s-credentials and %s-tls are missing" % (c.name, c.name)) in text, (playbook, text[-3000:])
        assert "TASK [stateful.mysql.mysql_cluster : Refuse a live cluster whose credentials or TLS Secret" in out
    names = [s.metadata.name for s in c.core.list_namespaced_secret(c.namespace).items]
    assert c.name + "-credentials" not in names and c.name + "-tls" not in names, names
    live = c.apps.read_namespaced_stateful_set(c.name, c.namespace)
    assert live.metadata.resource_version == sts_version and live.spec.replicas == 2

    # The restore the message gives, run as it stands: the values never on a command line.
    # (The message shows twice: in the error and in the result's msg.)
    recipes = list(dict.fromkeys(re.findall(r'\(umask 077; .*?rm -r "\$d"\)', text)))
    assert len(recipes) == 2, text[-3000:]
    env = dict(os.environ, KUBECONFIG=KUBECONFIG, PATH=os.path.dirname(kubectl()) + os.pathsep + os.environ["PATH"])
    for recipe in recipes:
        proc = subprocess.run(["bash", "-c", recipe], env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (recipe, proc.stdout, proc.stderr)
    assert secret_values(c) == values, "the restored Secrets differ"
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] == 0, recap

    # Every server restarts on the restored Secrets and replicates again.
    for ordinal in (1, 0):
        uid = c.core.read_namespaced_pod(c.pod(ordinal), c.namespace).metadata.uid
        c.core.delete_namespaced_pod(c.pod(ordinal), c.namespace)
        wait_until(lambda: _new_pod(c, ordinal, uid), 120, "%s recreated" % c.pod(ordinal))
    c.wait_ready(2, timeout=300)
    wait_until(lambda: replicating(c, [c.pod(1)]), 120, "%s replicating" % c.pod(1))
    out, recap = run_playbook(VERIFY, *args)
    assert "marker" in out and recap["failed"] == 0


def _new_pod(c, ordinal, old_uid):
    try:
        return c.core.read_namespaced_pod(c.pod(ordinal), c.namespace).metadata.uid != old_uid
    except ApiException as e:
        if e.status == 404:
            return False
        raise


class Load(Background):
    """Writes numbered rows on the primary (its pod IP, found again after
    each failure) and samples the replica's status, from the host, as root
    with the password read from the Secret (in this process only). Keeps
    the acknowledged ids and every replica sample."""

    def __init__(self, c):
        self.c = c
        data = c.core.read_namespaced_secret(c.name + "-credentials", c.namespace).data
        self.password = base64.b64decode(data["root-password"]).decode()
        self.acked, self.failed, self.samples = [], 0, []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, daemon=True),
                        threading.Thread(target=self._sample, daemon=True)]

    def connect(self, ordinal, **kw):
        ip = self.c.core.read_namespaced_pod(self.c.pod(ordinal), self.c.namespace).status.pod_ip
        return pymysql.connect(host=ip, port=3306, user="root", password=self.password, autocommit=True,
                               connect_timeout=3, read_timeout=10, write_timeout=10, **kw)

    def _write(self):
        conn, i = None, 0
        while not self.stop.is_set():
            try:
                conn = conn or self.connect(0)
                i += 1
                conn.cursor().execute("INSERT INTO rot.t (id) VALUES (%s)", (i,))
                self.acked.append(i)
                time.sleep(0.02)
            except Exception:  # noqa: BLE001 - a restart: not acknowledged, try again
                self.failed += 1
                conn = None
                time.sleep(0.3)

    def _sample(self):
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or self.connect(1, cursorclass=pymysql.cursors.DictCursor)
                cur = conn.cursor()
                cur.execute("SHOW REPLICA STATUS")
                row = cur.fetchone() or {}
                self.samples.append({k: row.get(k, row.get(k.replace("Replica", "Slave")))
                                     for k in ("Replica_SQL_Running", "Replica_IO_Running", "Last_SQL_Errno",
                                               "Last_IO_Errno", "Last_IO_Error", "Last_SQL_Error")})
            except Exception:  # noqa: BLE001 - the replica restarting
                conn = None
                self.samples.append(None)
            time.sleep(0.5)


def _pems(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", text, re.S)


def _tls_accepts(load, ordinal, ca_pem):
    """Whether the server's certificate verifies against this CA alone."""
    with tempfile.NamedTemporaryFile("w", suffix=".crt") as fh:
        fh.write(ca_pem)
        fh.flush()
        ctx = ssl.create_default_context(cafile=fh.name)
        ctx.check_hostname = False
        try:
            load.connect(ordinal, ssl=ctx).close()
            return True
        except pymysql.err.OperationalError as e:
            if "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e):
                return False
            raise


@pytest.mark.landing("mariadb-11.8")
def test_certificate_rotation_under_writes(own_cluster):
    """rotate_certificates.yml under a write load: the pods roll onto a new
    CA and certificate, the replica first; the replica never reports a TLS
    or SQL error; every acknowledged write is on every pod; afterwards the
    Secret trusts the new CA alone and every server presents a certificate
    only the new CA verifies."""
    c, args = own_cluster
    old = {k: base64.b64decode(v).decode() for k, v in
           c.core.read_namespaced_secret(c.name + "-tls", c.namespace).data.items()}
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS rot; DROP TABLE IF EXISTS rot.t; CREATE TABLE rot.t (id INT PRIMARY KEY)")
    uids = {o: c.core.read_namespaced_pod(c.pod(o), c.namespace).metadata.uid for o in (0, 1)}
    with Load(c) as load:
        time.sleep(3)
        out, recap = run_playbook(ROTATE, *args, "-e", "confirm=" + c.name)
        time.sleep(3)
    assert recap["changed"] >= 2, recap
    new = {k: base64.b64decode(v).decode() for k, v in
           c.core.read_namespaced_secret(c.name + "-tls", c.namespace).data.items()}
    assert len(_pems(new["ca.crt"])) == 1 and new["ca.crt"] not in old["ca.crt"], "the Secret trusts more than the new CA"
    assert new["tls.crt"] != old["tls.crt"] and new["tls.key"] != old["tls.key"]
    pods = {o: c.core.read_namespaced_pod(c.pod(o), c.namespace) for o in (0, 1)}
    assert all(pods[o].metadata.uid != uids[o] for o in (0, 1)), "a pod was not restarted"
    assert pods[1].metadata.creation_timestamp < pods[0].metadata.creation_timestamp, "the primary went first"

    # The replica: never a TLS error, never an SQL error, both threads running at the end.
    seen = [s for s in load.samples if s]
    assert len(seen) > 20, load.samples
    bad = [s for s in seen if s["Last_SQL_Errno"] or s["Last_IO_Errno"] == 2026
           or re.search("ssl|certificate|tls", s["Last_IO_Error"] or "", re.I)]
    assert not bad, bad[:3]
    wait_until(lambda: replicating(c, [c.pod(1)]), 60, "%s replicating" % c.pod(1))
    assert load.acked and load.failed < 200, (len(load.acked), load.failed)
    acked = set(load.acked)
    for o in (0, 1):
        have = wait_until(lambda: acked <= set(map(int, c.sql(c.pod(o), "SELECT id FROM rot.t").split())), 60,
                          "every acknowledged row on %s" % c.pod(o))
        assert have
    for o in (0, 1):
        assert _tls_accepts(load, o, new["ca.crt"]), "%s does not present the new certificate" % c.pod(o)
        assert not _tls_accepts(load, o, _pems(old["ca.crt"])[0]), "%s still presents the old certificate" % c.pod(o)
    out, recap = run_playbook(VERIFY, *args)
    assert recap["failed"] == 0


def _credentials(c):
    data = c.core.read_namespaced_secret(c.name + "-credentials", c.namespace).data
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _unhealthy(c):
    """How many failed probes the pods' events count, per pod."""
    out = {}
    for e in c.core.list_namespaced_event(c.namespace, field_selector="reason=Unhealthy").items:
        out[e.involved_object.name] = out.get(e.involved_object.name, 0) + (e.count or 1)
    return out


def _binlogs(c, ordinal):
    """Every binary log file of a pod's server, as bytes."""
    out = c.sh(c.pod(ordinal), 'for f in /var/lib/mysql/data/binlog.[0-9]*; do base64 -w0 "$f"; echo; done')
    return [base64.b64decode(line) for line in out.split()]


def _login(c, ordinal, user, password):
    """Log in from the host (TLS, which the replication and clone accounts
    require; the server's certificate is not what this checks)."""
    ip = c.core.read_namespaced_pod(c.pod(ordinal), c.namespace).status.pod_ip
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        pymysql.connect(host=ip, port=3306, user=user, password=password, ssl=ctx, connect_timeout=5).close()
        return True
    except pymysql.err.OperationalError as e:
        if e.args[0] == 1045:
            return False
        raise


def _second_passwords(c, ordinal):
    """Accounts of a server that still take a second password."""
    if c.flavor == "mariadb":
        q = ("SELECT CONCAT(User, '@', Host) FROM mysql.global_priv"
             " WHERE JSON_LENGTH(JSON_EXTRACT(Priv, '$.auth_or')) > 1")
    else:
        q = ("SELECT CONCAT(User, '@', Host) FROM mysql.user"
             " WHERE JSON_CONTAINS_PATH(User_attributes, 'one', '$.additional_password')")
    return c.sql(c.pod(ordinal), q).split()


@pytest.mark.landing("mariadb-11.8")
def test_password_rotation_under_writes(own_cluster):
    """rotate_credentials.yml under a write load: every password changes on
    both servers with no pod restart, no failed probe, no replication error
    and every write acknowledged; the old passwords are refused, none is in
    a binary log, and a replica restarted on the new Secret replicates."""
    c, args = own_cluster
    old = _credentials(c)
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS rot; DROP TABLE IF EXISTS rot.t; CREATE TABLE rot.t (id INT PRIMARY KEY)")
    pods = {o: c.core.read_namespaced_pod(c.pod(o), c.namespace) for o in (0, 1)}
    restarts = {o: sum(s.restart_count for s in pods[o].status.container_statuses) for o in (0, 1)}
    unhealthy = _unhealthy(c)
    with Load(c) as load:
        time.sleep(3)
        out, recap = run_playbook(ROTATE_CREDENTIALS, *args, "-e", "confirm=" + c.name)
        time.sleep(3)
    text = flat(out)
    new = _credentials(c)
    assert sorted(new) == sorted(old), sorted(new)
    for key in ("root-password", "replication-password", "clone-password"):
        assert new[key] != old[key] and len(new[key]) == 32, key
        assert old[key] not in out and new[key] not in out, "a password reached Ansible's output"
    assert "the old root password refused by every server" in text, text[text.find("Rotate the passwords on"):][:3000]
    for o in (0, 1):
        now = c.core.read_namespaced_pod(c.pod(o), c.namespace)
        assert now.metadata.uid == pods[o].metadata.uid, "%s was replaced" % c.pod(o)
        assert sum(s.restart_count for s in now.status.container_statuses) == restarts[o], "%s restarted" % c.pod(o)
    assert _unhealthy(c) == unhealthy, "probes failed during the rotation: %s" % _unhealthy(c)
    seen = [s for s in load.samples if s]
    assert len(seen) > 20 and len(seen) == len(load.samples), load.samples[-5:]
    assert not [s for s in seen if s["Last_SQL_Errno"] or s["Last_IO_Errno"]], [
        s for s in seen if s["Last_SQL_Errno"] or s["Last_IO_Errno"]][:3]
    assert load.acked and load.failed == 0, (len(load.acked), load.failed)
    acked = set(load.acked)
    wait_until(lambda: acked <= set(map(int, c.sql(c.pod(1), "SELECT id FROM rot.t").split())), 60,
               "every acknowledged row on %s" % c.pod(1))

    # The old passwords are refused, the new ones taken; no account keeps a second one.
    users = {"root-password": "root", "replication-password": "repl"}
    if c.flavor == "mysql":
        users["clone-password"] = "donor"  # donor@'%'; MariaDB's is donor@localhost, for the sidecar only
    for o in (0, 1):
        for key, user in users.items():
            assert not _login(c, o, user, old[key]), "%s's old password still works on %s" % (user, c.pod(o))
            assert _login(c, o, user, new[key]), "%s's new password fails on %s" % (user, c.pod(o))
        assert _second_passwords(c, o) == [], _second_passwords(c, o)
    if c.flavor == "mariadb":
        out = c.sh(c.pod(0), 'mariadb --defaults-extra-file=/run/stateful-mysql/client/donor.cnf -N -e "SELECT CURRENT_USER()"',
                   container="donor")
        assert out.strip() == "donor@localhost", out

    # No binary log holds a password or an account statement.
    for o in (0, 1):
        for log in _binlogs(c, o):
            for key in new:
                assert new[key].encode() not in log and old[key].encode() not in log, "%s in a binlog" % key
            assert b"ALTER USER" not in log and b"IDENTIFIED" not in log, "an account statement in a binlog"

    # The replica restarted on the new Secret (its init reads the mounted copy) replicates.
    c.core.delete_namespaced_pod(c.pod(1), c.namespace)
    wait_until(lambda: _new_pod(c, 1, pods[1].metadata.uid), 120, "%s recreated" % c.pod(1))
    c.wait_ready(2, timeout=300)
    wait_until(lambda: replicating(c, [c.pod(1)]), 120, "%s replicating" % c.pod(1))
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] == 0, recap


@pytest.mark.landing("mariadb-11.8")
def test_a_stopped_password_rotation_is_refused_by_site_and_finished(own_cluster):
    """A rotation that stopped after writing its plan (rotation-next-* in the
    Secret): site.yml refuses, naming rotate_credentials.yml; the next
    rotate_credentials.yml finishes it with the password the plan holds,
    whatever it is asked to change."""
    c, args = own_cluster
    before = _credentials(c)
    chosen = "Stopped" + before["clone-password"][:20]
    c.core.patch_namespaced_secret(c.name + "-credentials", c.namespace, {"data": {
        "rotation-next-clone-password": base64.b64encode(chosen.encode()).decode()}})
    out, recap = run_playbook(SITE, *args, check=False)
    text = flat(out)
    assert recap.get("failed") == 1, text[-3000:]
    assert "holds an unfinished password rotation (rotation-next-clone-password)" in text, text[-3000:]
    assert "rotate_credentials.yml -e confirm=%s" % c.name in text
    out, recap = run_playbook(ROTATE_CREDENTIALS, *args, "-e", "confirm=" + c.name, "-e", "users=root")
    text = flat(out)
    assert "finishing a rotation stopped at step adding" in text, text[-3000:]
    after = _credentials(c)
    assert sorted(after) == ["clone-password", "replication-password", "root-password"], sorted(after)
    assert after["clone-password"] == chosen and after["root-password"] == before["root-password"]
    assert _second_passwords(c, 0) == [] and _second_passwords(c, 1) == []
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] == 0, recap


# Full tier only since stop 37: the landing tier ran 53 min on the slower kind.
@pytest.mark.full_tier
@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_changed_user_secret_reaches_the_servers_through_site(kube_ready, tmp_path, flavor):
    """mysql_cluster_credentials_secret: the pods mount the role's copy
    (<name>-credentials). The user changes two passwords in their Secret; a
    replica restarted before site.yml still starts (its copy is unchanged);
    site.yml then rotates the servers to the new values without a pod
    restart (the old ones refused, the new taken), and the next run changes
    nothing."""
    flavor, version = flavor
    c = Cluster(NAME, "%s-usersecret-%s" % (PREFIX, flavor), flavor, version)
    delete_namespace(c.namespace)
    create_namespace(c.namespace, POD_SECURITY_BASELINE)
    user = {k: "U%s-%s" % (k[:4], os.urandom(8).hex()) for k in ("root-password", "replication-password", "clone-password")}
    c.core.create_namespaced_secret(c.namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="app-db"), data={k: base64.b64encode(v.encode()).decode() for k, v in user.items()}))
    try:
        args = deploy_args(flavor, version, NAME, c.namespace, str(tmp_path),
                           dict(NO_PASSWORDS, **REMOTE_ROOT, mysql_cluster_replicas=2, mysql_cluster_credentials_secret="app-db"))
        out, recap = run_playbook(SITE, *args)
        assert _credentials(c) == user, "the copy differs from the user's Secret"
        volumes = c.apps.read_namespaced_stateful_set(c.name, c.namespace).spec.template.spec.volumes
        assert {v.secret.secret_name for v in volumes if v.secret and "credentials" in v.name} == {c.name + "-credentials"}
        assert "password in Secret app-db key root-password" in out

        changed = dict(user, **{"root-password": "Uroot-new-" + os.urandom(8).hex(),
                                "replication-password": "Urepl-new-" + os.urandom(8).hex()})
        c.core.patch_namespaced_secret("app-db", c.namespace, {"data": {
            k: base64.b64encode(v.encode()).decode() for k, v in changed.items()}})
        # A restart before site.yml: the pod mounts the copy, which its server takes.
        uid = c.core.read_namespaced_pod(c.pod(1), c.namespace).metadata.uid
        c.core.delete_namespaced_pod(c.pod(1), c.namespace)
        wait_until(lambda: _new_pod(c, 1, uid), 120, "%s recreated" % c.pod(1))
        c.wait_ready(2, timeout=300)
        uids = {o: c.core.read_namespaced_pod(c.pod(o), c.namespace).metadata.uid for o in (0, 1)}

        out, recap = run_playbook(SITE, *args)
        text = flat(out)
        assert ("Changed replication-password, root-password to the values of Secret app-db on %s-0, %s-1"
                % (c.name, c.name)) in text, text[-3000:]
        for v in list(user.values()) + list(changed.values()):
            assert v not in out, "a password reached Ansible's output"
        assert _credentials(c) == changed
        assert {o: c.core.read_namespaced_pod(c.pod(o), c.namespace).metadata.uid for o in (0, 1)} == uids
        for o in (0, 1):
            for key, name in (("root-password", "root"), ("replication-password", "repl")):
                assert not _login(c, o, name, user[key]), "%s's old password still works on %s" % (name, c.pod(o))
                assert _login(c, o, name, changed[key]), "%s's new password fails on %s" % (name, c.pod(o))
        wait_until(lambda: replicating(c, [c.pod(1)]), 60, "%s replicating" % c.pod(1))
        out, recap = run_playbook(SITE, *args)
        assert recap["changed"] == 0, recap
    finally:
        delete_namespace(c.namespace, wait=False)


def _ca_and_leaf(names, ca_name, other=None):
    """A CA and a certificate for these names, as a CA issuer of cert-manager
    writes them (Secret type kubernetes.io/tls with ca.crt); with ``other``,
    also (as other.crt, other.key) a certificate of the same CA for those
    names, as the issuer gives another application."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM

    def issue(dns_names, key):
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([]))
                .issuer_name(subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=90))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                      x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return (leaf.public_bytes(pem).decode(),
                key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())

    out = {"ca.crt": ca.public_bytes(pem).decode()}
    out["tls.crt"], out["tls.key"] = issue(names, key)
    if other:
        out["other.crt"], out["other.key"] = issue(other, ec.generate_private_key(ec.SECP256R1()))
    return out


def _donor_serves(c, ordinal, cert, key, ca):
    """Whether the donor sidecar starts a backup stream for this client
    certificate (its first bytes arrive), from the host over TLS."""
    ip = c.core.read_namespaced_pod(c.pod(ordinal), c.namespace).status.pod_ip
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, n) for n in ("c.crt", "c.key", "ca.crt")]
        for path, text in zip(paths, (cert, key, ca)):
            with open(path, "w") as fh:
                fh.write(text)
        ctx = ssl.create_default_context(cafile=paths[2])
        ctx.check_hostname = False
        ctx.load_cert_chain(paths[0], paths[1])
        try:
            with socket.create_connection((ip, 3307), timeout=20) as raw, ctx.wrap_socket(raw) as tls:
                return len(tls.recv(64)) > 0
        except (ssl.SSLError, ConnectionError, socket.timeout):
            return False


def _b64(data):
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


# Full tier only since stop 37 (the landing tier's budget).
@pytest.mark.full_tier
@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_cert_manager_secret_serves_the_cluster_and_its_new_issuer_rolls_in(kube_ready, tmp_path, flavor):
    """mysql_cluster_tls_secret: a Secret in cert-manager's layout that does
    not name the pods is refused before anything is made; one that does
    serves a new cluster (its replica copied over it); a certificate of a
    new CA put in it rolls the pods on the next site.yml under a write load
    with no TLS or SQL error on the replica, and ca.crt then holds the new
    CA alone; the modules refuse servers another CA does not verify."""
    flavor, version = flavor
    c = Cluster(NAME, "%s-usercert-%s" % (PREFIX, flavor), flavor, version)
    delete_namespace(c.namespace)
    create_namespace(c.namespace, POD_SECURITY_BASELINE)
    names = ["%s-peer" % NAME, "*.%s.%s.svc" % (NAME, c.namespace), NAME, NAME + "-read"]
    first = _ca_and_leaf(names, "apps-ca-1", other=["billing.apps.example"])
    other = (first.pop("other.crt"), first.pop("other.key"))
    bad = _ca_and_leaf(names[:1] + names[2:], "apps-ca-1")
    for secret, data in (("app-tls", first), ("bad-tls", bad)):
        c.core.create_namespaced_secret(c.namespace, client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret), type="kubernetes.io/tls", data=_b64(data)))
    try:
        extra = dict(NO_PASSWORDS, **REMOTE_ROOT, mysql_cluster_replicas=2)
        args = deploy_args(flavor, version, NAME, c.namespace, str(tmp_path), dict(extra, mysql_cluster_tls_secret="bad-tls"))
        out, recap = run_playbook(SITE, *args, check=False)
        text = flat(out)
        assert recap.get("failed") == 1, text[-3000:]
        assert ("Secret bad-tls in namespace %s cannot serve the cluster: tls.crt does not name *.%s.%s.svc"
                % (c.namespace, NAME, c.namespace)) in text, text[-3000:]
        assert c.apps.list_namespaced_stateful_set(c.namespace).items == []

        args = deploy_args(flavor, version, NAME, c.namespace, str(tmp_path), dict(extra, mysql_cluster_tls_secret="app-tls"))
        run_playbook(SITE, *args)
        copy = {k: base64.b64decode(v).decode() for k, v in
                c.core.read_namespaced_secret(NAME + "-tls", c.namespace).data.items()}
        assert copy == first, "the copy differs from the user's Secret"
        wait_until(lambda: replicating(c, [c.pod(1)]), 60, "%s replicating" % c.pod(1))
        probe = Load(c)
        for o in (0, 1):
            assert _tls_accepts(probe, o, first["ca.crt"]), "%s does not present the user's certificate" % c.pod(o)
        if flavor == "mariadb":
            # The donor serves the cluster's certificate, not any other the same CA issued.
            assert _donor_serves(c, 0, first["tls.crt"], first["tls.key"], first["ca.crt"]), "the donor refused a member"
            assert not _donor_serves(c, 0, other[0], other[1], first["ca.crt"]), "the donor served another application"

        # The issuer changes (a new CA): the pods roll onto it, trusting both meanwhile.
        second = _ca_and_leaf(names, "apps-ca-2")
        c.core.patch_namespaced_secret("app-tls", c.namespace, {"data": _b64(second)})
        c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS rot; DROP TABLE IF EXISTS rot.t; CREATE TABLE rot.t (id INT PRIMARY KEY)")
        uids = {o: c.core.read_namespaced_pod(c.pod(o), c.namespace).metadata.uid for o in (0, 1)}
        with Load(c) as load:
            time.sleep(3)
            out, recap = run_playbook(SITE, *args)
            time.sleep(3)
        assert all(c.core.read_namespaced_pod(c.pod(o), c.namespace).metadata.uid != uids[o] for o in (0, 1))
        seen = [s for s in load.samples if s]
        bad_samples = [s for s in seen if s["Last_SQL_Errno"] or s["Last_IO_Errno"] == 2026
                       or re.search("ssl|certificate|tls", s["Last_IO_Error"] or "", re.I)]
        assert len(seen) > 20 and not bad_samples, bad_samples[:3]
        acked = set(load.acked)
        wait_until(lambda: acked <= set(map(int, c.sql(c.pod(1), "SELECT id FROM rot.t").split())), 60,
                   "every acknowledged row on %s" % c.pod(1))
        copy = {k: base64.b64decode(v).decode() for k, v in
                c.core.read_namespaced_secret(NAME + "-tls", c.namespace).data.items()}
        assert copy == second, "after the roll, the copy should hold the new CA alone"
        for o in (0, 1):
            assert _tls_accepts(probe, o, second["ca.crt"]) and not _tls_accepts(probe, o, first["ca.crt"])
        out, recap = run_playbook(SITE, *args)
        assert recap["changed"] == 0, recap
        # The modules verify each server against the CA of <name>-tls: another
        # CA there (one of the same name), and verify.yml cannot connect.
        c.core.patch_namespaced_secret(NAME + "-tls", c.namespace, {"data": _b64({"ca.crt": bad["ca.crt"]})})
        out, recap = run_playbook(VERIFY, *args, "-e", "mysql_cluster_verify_timeout=5", check=False)
        assert recap.get("failed") == 1 and re.search("certificate verify failed", out, re.I), flat(out)[-2000:]
        out, recap = run_playbook(SITE, *args)
        assert recap["changed"] >= 1, recap
        out, recap = run_playbook(VERIFY, *args)
        out, recap = run_playbook(ROTATE, *args, "-e", "confirm=" + NAME, check=False)
        assert recap.get("failed") == 1 and "renew or reissue it there" in flat(out), flat(out)[-2000:]
    finally:
        delete_namespace(c.namespace, wait=False)


def _expired_pair(names):
    """A CA and a certificate for these names whose validity ended yesterday."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return {"ca.crt": ca.public_bytes(serialization.Encoding.PEM).decode(),
            "tls.crt": leaf.public_bytes(serialization.Encoding.PEM).decode(), "tls.key": key_pem}


def _connect_as(c, ordinal, user, password, tls=True):
    ip = c.core.read_namespaced_pod(c.pod(ordinal), c.namespace).status.pod_ip
    # PyMySQL 2 tries TLS unless told not to (ssl_disabled).
    kw = {"ssl_disabled": True}
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        kw = {"ssl": ctx}
    return pymysql.connect(host=ip, port=3306, user=user, password=password, connect_timeout=5, autocommit=True, **kw)


@pytest.mark.landing("mariadb-11.8")
def test_application_users_write_on_the_primary_only_and_only_over_tls(own_cluster):
    """mysql_cluster_databases and mysql_cluster_users: a user that would
    shadow the cluster's replication account is refused before any change;
    the application user writes on the primary, is refused on the replica
    (read-only) and without TLS; its password is in no binary log; a rerun
    changes nothing; a password changed in its Secret is set on every server."""
    c, args = own_cluster
    first, second = "Shop-" + os.urandom(8).hex(), "Shop2-" + os.urandom(8).hex()
    c.core.create_namespaced_secret(c.namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="shop-db"), data=_b64({"password": first})))
    sts_version = c.apps.read_namespaced_stateful_set(c.name, c.namespace).metadata.resource_version
    out, recap = run_playbook(SITE, *args, "-e", json.dumps({"mysql_cluster_users": [
        {"name": "repl", "password_secret": "shop-db"}]}), check=False)
    text = flat(out)
    assert recap.get("failed") == 1 and "User repl would shadow an account of the cluster itself" in text, text[-2000:]
    assert c.apps.read_namespaced_stateful_set(c.name, c.namespace).metadata.resource_version == sts_version

    accounts = ["-e", json.dumps({"mysql_cluster_databases": ["shop"], "mysql_cluster_users": [
        {"name": "shop", "password_secret": "shop-db", "privileges": ["shop.*:ALL"]}]})]
    out, recap = run_playbook(SITE, *args, *accounts)
    assert recap["changed"] >= 1 and first not in out
    assert "application user shop, password in Secret shop-db key password, TLS required" in out, out[-2000:]
    out, recap = run_playbook(SITE, *args, *accounts)
    assert recap["changed"] == 0, recap

    conn = _connect_as(c, 0, "shop", first)
    conn.cursor().execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
    conn.cursor().execute("INSERT INTO shop.t VALUES (1)")
    conn.close()
    replica = _connect_as(c, 1, "shop", first)
    wait_until(lambda: replica.cursor().execute("SELECT id FROM shop.t") == 1, 60, "the row on the replica")
    with pytest.raises(pymysql.err.MySQLError) as refused:
        replica.cursor().execute("INSERT INTO shop.t VALUES (2)")
    assert refused.value.args[0] in (1290, 1836), refused.value.args
    replica.close()
    for o in (0, 1):
        with pytest.raises(pymysql.err.OperationalError) as plain:
            _connect_as(c, o, "shop", first, tls=False)
        # 3159: require_secure_transport refuses before the account's REQUIRE SSL (1045) is asked.
        assert plain.value.args[0] in (1045, 3159), plain.value.args
        assert c.sql(c.pod(o), "SELECT ssl_type FROM mysql.user WHERE user = 'shop'") == "ANY"
        for log in _binlogs(c, o):
            assert first.encode() not in log and b"CREATE USER" not in log and b"IDENTIFIED" not in log

    c.core.patch_namespaced_secret("shop-db", c.namespace, {"data": _b64({"password": second})})
    out, recap = run_playbook(SITE, *args, *accounts)
    assert recap["changed"] >= 1 and second not in out
    for o in (0, 1):
        assert _login(c, o, "shop", second) and not _login(c, o, "shop", first), c.pod(o)


@pytest.mark.only_flavors("mariadb-11.8")
def test_verify_fails_on_an_expired_certificate(own_cluster):
    """verify.yml shows each certificate's expiry; one that has expired fails
    it, named, before any connection. (The cluster's last test: its Secret
    no longer matches what the servers run.)"""
    c, args = own_cluster
    out, _recap = run_playbook(VERIFY, *args)
    text = flat(out)
    assert re.search(r"certificate tls\.crt of Secret %s-tls: CN=[^,]+, expires 20\d\d-\d\d-\d\dT[0-9:]+Z \(\d+ days\)"
                     % c.name, text), text[-3000:]
    pair = _expired_pair(["*.%s.%s.svc" % (c.name, c.namespace)])
    c.core.patch_namespaced_secret(c.name + "-tls", c.namespace, {"data": {
        k: base64.b64encode(v.encode()).decode() for k, v in pair.items()}})
    out, recap = run_playbook(VERIFY, *args, check=False)
    text = flat(out)
    assert recap.get("failed") == 1, text[-3000:]
    assert re.search(r"Secret %s-tls \(namespace %s\) holds an expired certificate: tls\.crt CN=[^ ]+ expired "
                     r"20\d\d-\d\d-\d\dT" % (c.name, c.namespace), text), text[-3000:]
    assert "Write a marker" not in out


def test_restricted_namespace_and_refused_pods_fail_at_once(kube_ready, tmp_path):
    """Pod Security restricted with the root volume-owner step: refused before
    anything is applied. Pods the API refuses (a quota of 0 pods): site.yml
    fails within 30 s of the StatefulSet's creation, quoting the API."""
    core, apps = api()
    restricted, quota = "%s-secrets-restricted" % PREFIX, "%s-secrets-quota" % PREFIX
    for ns in (restricted, quota):
        delete_namespace(ns)
    create_namespace(restricted, POD_SECURITY_RESTRICTED)
    create_namespace(quota, POD_SECURITY_BASELINE)
    core.create_namespaced_resource_quota(quota, client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="no-pods"), spec=client.V1ResourceQuotaSpec(hard={"pods": "0"})))
    try:
        out, recap = run_playbook(SITE, *deploy_args("mariadb", "11.8", NAME, restricted, str(tmp_path), NO_PASSWORDS),
                                  check=False)
        text = flat(out)
        assert recap.get("failed") == 1, text[-3000:]
        assert ("Namespace '%s' enforces Pod Security 'restricted'" % restricted) in text, text[-3000:]
        assert "mysql_cluster_volume_owner_init: false" in text, text[-3000:]
        assert apps.list_namespaced_stateful_set(restricted).items == []
        assert core.list_namespaced_secret(restricted).items == [] or all(
            s.type == "kubernetes.io/service-account-token" for s in core.list_namespaced_secret(restricted).items)

        started = time.time()
        out, recap = run_playbook(SITE, *deploy_args("mariadb", "11.8", NAME, quota, str(tmp_path), NO_PASSWORDS),
                                  check=False)
        ended = time.time()
        text = flat(out)
        assert recap.get("failed") == 1, text[-3000:]
        assert "the API refuses to create its pods, so waiting cannot help" in text, text[-3000:]
        assert 'is forbidden: exceeded quota: no-pods' in text, text[-3000:]
        created = apps.read_namespaced_stateful_set(NAME, quota).metadata.creation_timestamp.timestamp()
        assert ended - created < 30, "failed %.1f s after the StatefulSet was created" % (ended - created)
        assert ended - started < 90, ended - started
    finally:
        for ns in (restricted, quota):
            delete_namespace(ns, wait=False)
