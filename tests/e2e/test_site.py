"""site.yml on the local Kubernetes, once per flavor (MySQL 9.7, MariaDB
10.11, MariaDB 11.8): the cluster replicates, as it should, and keeps doing
so across restarts without copying or re-pointing twice."""
import base64
import glob
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kube import (BIN, CACHE, CLIENT_CNF, KUBECONFIG, NO_PASSWORDS, PREFIX, ROOT, Cluster, api, count, deploy_args,
                  run_playbook)

REPLICAS = 3


def replicas(cluster, count=REPLICAS):
    return [cluster.pod(i) for i in range(1, count)]


def primary_host(cluster):
    # The name replicas use: the cluster certificate holds *.<name>.<namespace>.svc.
    return "%s-0.%s.%s.svc" % (cluster.name, cluster.name, cluster.namespace)


def test_first_run_deploys_three_ready_pods(deployed_cluster):
    c = deployed_cluster
    assert c.first_run["recap"]["failed"] == 0 and c.first_run["recap"]["changed"] > 0
    c.wait_ready(REPLICAS, timeout=60)
    assert [p.metadata.name for p in c.pods()] == [c.pod(i) for i in range(REPLICAS)]
    ids = {c.sql(c.pod(i), "SELECT @@server_id") for i in range(REPLICAS)}
    assert len(ids) == REPLICAS, "server ids collide: %s" % ids


def test_replicas_replicate_as_the_dedicated_user(deployed_cluster):
    c = deployed_cluster
    for pod in replicas(c):
        st = c.replica_status(pod)
        assert st.get("Replica_IO_Running", st.get("Slave_IO_Running")) == "Yes", st
        assert st.get("Replica_SQL_Running", st.get("Slave_SQL_Running")) == "Yes", st
        assert st.get("Source_User", st.get("Master_User")) == "repl"
        assert st.get("Source_Host", st.get("Master_Host")) == primary_host(c)
        if c.flavor == "mysql":
            assert st["Auto_Position"] == "1"
        else:
            assert st["Using_Gtid"] == "Slave_Pos"
    grants = c.sql(c.pod(0), "SHOW GRANTS FOR 'repl'@'%'")
    assert "REPLICATION SLAVE" in grants and "ALL PRIVILEGES" not in grants
    assert "INSERT" not in grants and "SUPER" not in grants


def test_row_written_to_primary_is_read_on_every_replica_and_read_service(deployed_cluster):
    c = deployed_cluster
    marker = uuid.uuid4().hex
    # Written from another pod through the primary's stable name.
    c.sql(c.pod(1), "CREATE DATABASE IF NOT EXISTS e2e; CREATE TABLE IF NOT EXISTS e2e.t "
                    "(id VARCHAR(64) PRIMARY KEY); INSERT INTO e2e.t VALUES ('%s')" % marker,
          host=primary_host(c))
    query = "SELECT COUNT(*) FROM e2e.t WHERE id = '%s'" % marker
    for pod in replicas(c):
        deadline = time.monotonic() + 30
        while c.sql(pod, query) != "1":
            assert time.monotonic() < deadline, "%s never received the row" % pod
            time.sleep(0.5)
    answered = set()
    for attempt in range(20):
        out = c.sql(c.pod(2), "SELECT @@hostname, (%s)" % query, host="%s-read" % c.name)
        host, count = out.split("\t")
        assert count == "1", "%s answered through %s-read without the row" % (host, c.name)
        answered.add(host)
    assert answered <= {c.pod(i) for i in range(REPLICAS)}
    assert answered, "nobody answered through the read Service"


def test_replicas_refuse_writes(deployed_cluster):
    c = deployed_cluster
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS e2e; CREATE TABLE IF NOT EXISTS e2e.w (id INT PRIMARY KEY)")
    for pod in replicas(c):
        # As the remote root account, the strongest a client gets.
        rc, err = c.sql(pod, "INSERT INTO e2e.w VALUES (%d)" % int(time.time()),
                        host="127.0.0.1", expect_ok=False)
        assert rc != 0 and "1290" in err, (pod, rc, err)


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory):
    """The collection as a user gets it: built with ansible-galaxy and
    installed into a virtualenv holding only requirements.txt (make
    runtime-venv), away from the checkout and its ansible.cfg."""
    runtime = os.path.join(CACHE, "venv-runtime", "bin")
    # The Makefile's stamp names the requirements' hash (.stamp-<hash>).
    if not glob.glob(os.path.join(runtime, "..", ".stamp-*")):
        pytest.fail("no runtime virtualenv at %s: run `make runtime-venv`" % runtime)
    work = tmp_path_factory.mktemp("installed")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(work), ROOT],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    tarball = next(work.glob("stateful-mysql-*.tar.gz"))
    collections = work / "collections"
    subprocess.run([os.path.join(runtime, "ansible-galaxy"), "collection", "install", "--no-deps",
                    "-p", str(collections), str(tarball)], cwd=str(work), env=env, check=True, capture_output=True)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), KUBECONFIG=KUBECONFIG, K8S_AUTH_KUBECONFIG=KUBECONFIG)
    listed = subprocess.run([os.path.join(runtime, "ansible-galaxy"), "collection", "list", "stateful.mysql"],
                            cwd=str(work), env=env, check=True, capture_output=True, text=True).stdout
    assert str(collections) in listed and ROOT not in listed, listed
    return runtime, str(work), env


# Molecule's idempotence step proves changed=0 on every flavor; this test adds
# the installed collection, which does not depend on the flavor.
@pytest.mark.only_flavors("mysql-9.7")
def test_second_run_changes_nothing(deployed_cluster, installed_collection):
    """Run again, as a user would run it (ansible-playbook stateful.mysql.site
    from the installed collection, runtime requirements only): changed=0."""
    c = deployed_cluster
    runtime, work, env = installed_collection
    args = [a.replace("@tests/", "@%s/tests/" % ROOT) for a in c.deploy_args]
    proc = subprocess.run([os.path.join(runtime, "ansible-playbook"), "stateful.mysql.site", *args],
                          cwd=work, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    m = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    assert m and m.group(2) == "0" and m.group(4) == "0", out[-4000:]
    assert "Wait until every pod is Ready and every replica replicates" in out


def resource_versions(c):
    """name -> resourceVersion of every object the role manages in the namespace."""
    from kubernetes import client
    policy, net = client.PolicyV1Api(c.core.api_client), client.NetworkingV1Api(c.core.api_client)
    lists = [c.core.list_namespaced_config_map, c.core.list_namespaced_secret, c.core.list_namespaced_service,
             c.apps.list_namespaced_stateful_set, policy.list_namespaced_pod_disruption_budget,
             net.list_namespaced_network_policy, c.core.list_namespaced_persistent_volume_claim]
    versions = {}
    for lister in lists:
        for item in lister(c.namespace).items:
            versions["%s/%s" % (item.kind or lister.__name__, item.metadata.name)] = item.metadata.resource_version
    ns = c.core.read_namespace(c.namespace)
    versions["Namespace/" + c.namespace] = ns.metadata.resource_version
    return versions


def changed_tasks(out):
    """Names of the tasks that reported changed in an ansible-playbook output."""
    names, current = [], None
    for line in out.splitlines():
        m = re.match(r"^TASK \[(?:[^:\]]+ : )?(.*)\] \*+$", line)
        if m:
            current = m.group(1)
        elif line.startswith("changed: ") and current and current not in names:
            names.append(current)
    return names


# The drills below are the same scripts on MariaDB 10.11 and 11.8: the newer
# one stands for both (CI time); 10.11 deploys, replicates and is secured here
# and scales in molecule's custom-names scenario.
SCRIPT_DRILLS = pytest.mark.only_flavors("mysql-9.7", "mariadb-11.8")


# Check mode's diff is the role's, whatever the flavor: one in the landing tier.
@SCRIPT_DRILLS
@pytest.mark.landing("mysql-9.7")
def test_check_mode_changes_nothing(deployed_cluster):
    """--check --diff with one more replica: only the StatefulSet would
    change, its diff says replicas 3 -> 4, and no object moved."""
    c = deployed_cluster
    before = resource_versions(c)
    assert len(before) >= 8, before
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), "--check", "--diff",
                              *c.deploy_args, "-e", "mysql_cluster_replicas=4")
    assert recap["failed"] == 0, out[-4000:]
    apply = "Apply the configuration, Services, policies and StatefulSet"
    assert changed_tasks(out) == [apply], (changed_tasks(out), out[-4000:])
    diff = out[out.index("TASK [stateful.mysql.mysql_cluster : %s]" % apply):]
    diff = diff[:diff.index("\nTASK [")]
    # One object's diff, under its name (k8s_apply lifts it from results[]).
    headers = re.findall(r"^\+\+\+ after: (.*)$", diff, re.M)
    assert headers == ["StatefulSet %s/%s" % (c.namespace, c.name)], diff[:4000]
    # The diff is YAML or JSON, depending on the callback.
    assert re.search(r'^-\s+"?replicas"?: 3,?$', diff, re.M) and re.search(r'^\+\s+"?replicas"?: 4,?$', diff, re.M), diff[:4000]
    assert resource_versions(c) == before
    assert c.apps.read_namespaced_stateful_set(c.name, c.namespace).spec.replicas == REPLICAS


# Changes the data on the volumes or the API cannot take, each refused before
# anything changes, with a message naming the variable. Rows are spread over
# the flavors (one site.yml run each) to keep the suite short.
OTHER = {"mysql": {"mysql_cluster_flavor": "mariadb", "mysql_cluster_version": "11.8"},
         "mariadb": {"mysql_cluster_flavor": "mysql", "mysql_cluster_version": "9.7"}}
REFUSALS = [
    # (id, flavors it runs on, extra vars (or a function of the cluster), words of the message)
    ("other-flavor", ("mysql-9.7", "mariadb-11.8"), lambda c: OTHER[c.flavor], "mysql_cluster_flavor is '"),
    ("downgrade", ("mysql-9.7",), {"mysql_cluster_version": "8.4"}, "mysql_cluster_version '8.4' is older than '9.7'"),
    ("downgrade", ("mariadb-11.8",), {"mysql_cluster_version": "10.11"}, "mysql_cluster_version '10.11' is older than '11.8'"),
    ("replication-user", ("mysql-9.7",), {"mysql_cluster_replication_user": "repl2"}, "mysql_cluster_replication_user is 'repl2', but"),
    ("donor-user", ("mariadb-11.8",), {"mysql_cluster_donor_user": "donor2"}, "mysql_cluster_donor_user is 'donor2', but"),
    ("storage-size", ("mysql-9.7",), {"mysql_cluster_storage_size": "2Gi"}, "mysql_cluster_storage_size '2Gi'"),
    ("storage-class", ("mariadb-11.8",), {"mysql_cluster_storage_class": "fast"}, "mysql_cluster_storage_class\n'fast'"),
    ("pod-management-policy", ("mariadb-11.8",), {"mysql_cluster_pod_management_policy": "Parallel"},
     "mysql_cluster_pod_management_policy 'Parallel' differs"),
    ("changed-password", ("mysql-9.7",), {"mysql_cluster_root_password": "Leak-Me-Not-e2e-1"},
     "mysql_cluster_root_password: differs from the password in Secret"),
    ("named-secret-missing", ("mariadb-11.8",), dict(NO_PASSWORDS, mysql_cluster_credentials_secret="no-such-secret"),
     "Secret 'no-such-secret'"),
    # The settings the cluster's safety rests on, and the ids in its GTIDs.
    ("reserved-setting", ("mysql-9.7",), {"mysql_cluster_server_config": {"sync_binlog": 0}},
     "mysql_cluster_server_config sets sync_binlog"),
    ("reserved-setting", ("mariadb-11.8",), {"mysql_cluster_server_config": {"gtid-strict-mode": "OFF", "max_connections": 50}},
     "mysql_cluster_server_config sets gtid-strict-mode"),
    ("server-id-base", ("mariadb-11.8",), {"mysql_cluster_server_id_base": 300}, "mysql_cluster_server_id_base is 300, but"),
]


@SCRIPT_DRILLS
def test_changes_the_volumes_or_the_api_cannot_take_are_refused(deployed_cluster):
    c = deployed_cluster
    key = "%s-%s" % (c.flavor, c.version)
    rows = [r for r in REFUSALS if key in r[1]]
    assert len(rows) >= 3
    before = resource_versions(c)
    for row_id, _flavors, extra, words in rows:
        extra = extra(c) if callable(extra) else extra
        out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args, "-e", json.dumps(extra), check=False)
        assert recap.get("failed") == 1, "%s was not refused:\n%s" % (row_id, out[-3000:])
        failure = out[out.rindex("TASK ["):]
        task = [line for line in out.splitlines() if line.startswith("TASK [")][-1]
        assert "Refuse" in task or "Check" in task, (row_id, task)
        # The message shows (no_log hides values, not failures), folded or not.
        flat = " ".join(failure.split())
        assert " ".join(words.split()) in flat, "%s: %s" % (row_id, failure[:3000])
        assert "censored" not in failure and "Leak-Me-Not" not in out, row_id
    assert resource_versions(c) == before


def test_durable_settings_on_every_server(deployed_cluster):
    """sync_binlog=1 and innodb_flush_log_at_trx_commit=1 on every running
    server of every flavor (MariaDB's own default is sync_binlog=0)."""
    c = deployed_cluster
    for pod in c.pods():
        got = c.sql(pod.metadata.name, "SELECT @@GLOBAL.sync_binlog, @@GLOBAL.innodb_flush_log_at_trx_commit")
        assert got.split() == ["1", "1"], (pod.metadata.name, got)


# A Secret the user provides, with what the servers cannot take.
BAD_SECRETS = [
    ("replication-password", "r" * 33, "replication-password is 33 characters, over the 32"),
    ("root-password", "root-with-a-newline\n", "root-password holds a line break"),
    ("clone-password", "", "clone-password is empty"),
]


@pytest.mark.landing("mysql-9.7")
def test_bad_content_in_a_given_secret_is_refused_before_any_change(deployed_cluster):
    """mysql_cluster_credentials_secret naming a Secret whose password is
    too long for replication, ends in a newline, or is empty: refused before
    anything changes, naming the key and what is wrong."""
    c = deployed_cluster
    good = {"root-password": "Root-ok-1", "replication-password": "Repl-ok-1", "clone-password": "Clone-ok-1"}
    names = []
    for key, value, _words in BAD_SECRETS:
        name = "bad-%s" % key
        data = dict(good, **{key: value})
        c.core.create_namespaced_secret(c.namespace, client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()}))
        names.append(name)
    try:
        before = resource_versions(c)
        for (key, value, words), name in zip(BAD_SECRETS, names):
            out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args, "-e", json.dumps(dict(
                mysql_cluster_credentials_secret=name, mysql_cluster_root_password="",
                mysql_cluster_replication_password="", mysql_cluster_clone_password="")), check=False)
            assert recap.get("failed") == 1, "%s was not refused:\n%s" % (key, out[-3000:])
            flat = " ".join(out[out.rindex("TASK ["):].split())
            assert "Secret %s" % name in flat and words in flat, (key, flat[:3000])
            if value.strip():
                assert value.strip() not in out, "%s: the password reached the output" % key
        assert resource_versions(c) == before
    finally:
        for name in names:
            c.core.delete_namespaced_secret(name, c.namespace)


def test_no_login_without_password(deployed_cluster):
    """Neither root nor an anonymous user gets in without a password, over
    TCP from inside the pod (where a port-forward arrives) or the socket."""
    c = deployed_cluster
    for pod in c.pods():
        name = pod.metadata.name
        for user in ("root", "", "repl", "donor"):
            for where in (["--host=127.0.0.1", "--protocol=TCP"], ["--socket=/run/stateful-mysql/mysqld.sock"]):
                cmd = ["bash", "-c", 'c=$(command -v mariadb || command -v mysql); exec "$c" --no-defaults "$@"',
                       "sql", "--user=" + user, "--skip-password", "-e", "SELECT 1"] + where
                rc = c.exec(name, cmd)[0]
                assert rc != 0, "%s lets user %r in without a password (%s)" % (name, user, where)


def test_backup_stream_serves_only_cluster_certificates(deployed_cluster):
    """A peer without the cluster's client certificate gets no backup."""
    c = deployed_cluster
    containers = [s.name for s in c.pods()[0].spec.containers]
    if c.flavor == "mysql":
        # CLONE flavors have no stream sidecar and no stream port at all.
        assert containers == ["mysql"]
        rc = c.exec(c.pod(1), ["bash", "-c", "exec 3<>/dev/tcp/%s/3307" % primary_host(c)])[0]
        assert rc != 0
        return
    assert containers == ["mysql", "donor"]
    attempts = {
        "plain TCP": "timeout 20 socat -u TCP:%s:3307 STDOUT | wc -c",
        "TLS without a client certificate":
            "timeout 20 socat -u OPENSSL:%s:3307,verify=0 STDOUT | wc -c",
    }
    for what, script in attempts.items():
        out = c.sh(c.pod(1), script % primary_host(c)).strip()
        assert out == "0", "%s received %s bytes of backup" % (what, out)
    # With the certificate it does stream (the same path the init container uses).
    ok = c.sh(c.pod(1), "timeout 60 socat -u OPENSSL:%s:3307,cert=/etc/stateful-mysql/tls/tls.crt,"
                        "key=/etc/stateful-mysql/tls/tls.key,cafile=/etc/stateful-mysql/tls/ca.crt,"
                        "commonname=%s-peer STDOUT | head -c 1048576 | wc -c" % (primary_host(c), c.name))
    assert int(ok.strip()) > 0


def server_identity(c, pod):
    """What a new copy of the data would change: the server's UUID (MySQL,
    auto.cnf on the volume) and the inode of the system tablespace (a copy
    replaces the file)."""
    uuid_ = c.sql(pod, "SELECT @@server_uuid") if c.flavor == "mysql" else ""
    inode = c.sh(pod, "stat -c %i /var/lib/mysql/data/ibdata1").strip()
    assert inode.isdigit(), inode
    return uuid_, inode


def replication_sources(c, pod):
    """Every replication source the server has configured (all channels / connections)."""
    if c.flavor == "mysql":
        return c.sql(pod, "SELECT HOST FROM performance_schema.replication_connection_configuration").split()
    out = c.sh(pod, 'mariadb --defaults-extra-file=%s --vertical -e "SHOW ALL SLAVES STATUS"' % CLIENT_CNF)
    return re.findall(r"^\s*Master_Host: (.*)$", out, re.M)


# The restart and mid-copy drills in the landing tier on MariaDB 11.8, where
# they are hardest: two containers per pod, and a copy over in seconds.
@SCRIPT_DRILLS
@pytest.mark.landing("mariadb-11.8")
def test_restarts_never_copy_or_repoint_again(deployed_cluster):
    c = deployed_cluster
    identities = {c.pod(i): server_identity(c, c.pod(i)) for i in range(REPLICAS)}
    before = {p.metadata.name: p.status.container_statuses[0].restart_count for p in c.pods()}
    # The main process of every container: the server handles TERM and exits.
    for pod in c.pods():
        for container in [s.name for s in pod.spec.containers]:
            c.exec(pod.metadata.name, ["bash", "-c", "kill -TERM 1"], container=container)
    deadline = time.monotonic() + 240
    while True:
        now = {p.metadata.name: p.status.container_statuses[0].restart_count for p in c.pods()}
        if all(now[k] > before[k] for k in before):
            break
        assert time.monotonic() < deadline, "containers did not restart: %s -> %s" % (before, now)
        time.sleep(2)
    c.wait_ready(REPLICAS, timeout=300)
    for i in range(REPLICAS):
        uid = c.core.read_namespaced_pod(c.pod(i), c.namespace).metadata.uid
        c.core.delete_namespaced_pod(c.pod(i), c.namespace)
        deadline = time.monotonic() + 300
        while True:
            pods = {p.metadata.name: p for p in c.pods()}
            p = pods.get(c.pod(i))
            if p is not None and p.metadata.uid != uid and p.status.container_statuses and \
                    all(s.ready for s in p.status.container_statuses):
                break
            assert time.monotonic() < deadline, "%s did not come back Ready" % c.pod(i)
            time.sleep(2)
    c.wait_ready(REPLICAS, timeout=300)
    primary_events = c.events(c.pod(0))
    # Initialised once, or (test_primary_recovery.py ran first) reseeded once.
    assert count(primary_events, "primary initialised") + count(primary_events, "reseed: primary made from") == 1, \
        primary_events
    for pod in replicas(c):
        events = c.events(pod)
        copies = count(events, "clone started") + count(events, "backup stream started")
        # A re-copy a test asked for (test_security.py's older-cluster drill) is one more.
        asked = count(events, "re-copy: re-copy requested")
        assert copies == 1 + asked, events
        assert count(events, "CHANGE:") == 1 + asked, events
        assert count(events, "done-marker written") == 1 + asked, events
        st = c.replica_status(pod)
        assert st.get("Replica_SQL_Running", st.get("Slave_SQL_Running")) == "Yes"
    # The servers themselves: same data (no second copy), one source each.
    for i in range(REPLICAS):
        assert server_identity(c, c.pod(i)) == identities[c.pod(i)], c.pod(i)
    assert replication_sources(c, c.pod(0)) == []
    for pod in replicas(c):
        assert replication_sources(c, pod) == [primary_host(c)], pod


@SCRIPT_DRILLS
@pytest.mark.landing("mariadb-11.8")
def test_replica_deleted_mid_copy_copies_again_cleanly(deployed_cluster):
    """Scale to 4, freeze the new pod's init container as its copy starts,
    delete the pod, and check it redoes the copy from scratch."""
    c = deployed_cluster
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS e2e; DROP TABLE IF EXISTS e2e.big; "
                    "CREATE TABLE e2e.big (id INT AUTO_INCREMENT PRIMARY KEY, pad CHAR(250) NOT NULL)")
    c.sql(c.pod(0), "INSERT INTO e2e.big (pad) VALUES (REPEAT('x', 250))")
    for doubling in range(16):
        c.sql(c.pod(0), "INSERT INTO e2e.big (pad) SELECT pad FROM e2e.big")
    rows = c.sql(c.pod(0), "SELECT COUNT(*) FROM e2e.big")
    # MariaDB's copy starts as its init container starts and takes seconds,
    # less than an exec takes to start: the donors' stream servers (socat,
    # PID 1 of each donor container) are held from the node (SIGSTOP) until
    # the freezer below runs. MySQL's CLONE starts seconds later, after a
    # datadir and a server are initialised.
    held = [c.pod(i) for i in range(3)] if c.flavor == "mariadb" else []
    for pod in held:
        c.signal_from_node(pod, "donor", signal.SIGSTOP)
    try:
        run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args,
                     "-e", "mysql_cluster_replicas=4", "-e", "mysql_cluster_wait=false")
        new = c.pod(3)
        deadline = time.monotonic() + 300
        while not _init_running(c, new):
            assert time.monotonic() < deadline, "%s: its init container never ran" % new
            time.sleep(0.5)
        # The freezer polls inside the container, so it sees the copy's
        # first bytes at once (a poll through the API missed the copy in CI).
        # Its own client: an exec stream patches the client it runs on.
        token = "freezer-%s" % uuid.uuid4().hex
        freezer = Cluster(c.name, c.namespace, c.flavor, c.version)
        frozen = {}
        thread = threading.Thread(target=lambda: frozen.update(result=freezer.exec(
            new, ["bash", "-c", FREEZE_AT_COPY, token], container="init", timeout=330)), daemon=True)
        thread.start()
        # "[f]" keeps the check's own command line from matching.
        while c.exec(new, ["bash", "-c", "grep -qs '[f]%s' /proc/[0-9]*/cmdline" % token[1:]], container="init")[0]:
            assert thread.is_alive() and time.monotonic() < deadline, "the freezer never ran in %s: %s" % (new, frozen)
            time.sleep(0.5)
    finally:
        for pod in held:
            c.signal_from_node(pod, "donor", signal.SIGCONT)
    thread.join(340)
    rc, out, err = frozen.get("result", (None, "", "no result"))
    assert rc == 0, "%s never started copying (rc %s): %s %s" % (new, rc, out, err)
    assert "done-marker written" not in out and "CHANGE:" not in out, "the copy got too far before it was frozen: %s" % out
    # Frozen, the copy cannot finish; a 1 s grace then kills the pod.
    c.core.delete_namespaced_pod(new, c.namespace, grace_period_seconds=1)
    run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args, "-e", "mysql_cluster_replicas=4")
    c.wait_ready(4, timeout=600)
    events = c.events(new)
    # Redone from scratch (again, should a redo itself be interrupted) until
    # one copy completes; it is pointed at the primary once.
    assert count(events, "unfinished first start found") >= 1, events
    assert count(events, "done-marker written") == 1, events
    assert count(events, "CHANGE:") == 1, events
    deadline = time.monotonic() + 120
    while c.sql(new, "SELECT COUNT(*) FROM e2e.big") != rows:
        assert time.monotonic() < deadline
        time.sleep(1)


# Run in the new pod's init container: once its copy has started and put
# its first files in the datadir, stop the container's other processes (the
# copy, its server; PID 1, the script, ignores it) and print the events.
# Bash builtins only in the loop (no grep, ls or sleep started 50 times a
# second): a read with a timeout on a pipe that never writes is the pause.
# The pipe's writer holds none of the exec's other streams (they would stay
# open after the script ends, and the exec with them).
FREEZE_AT_COPY = r"""
f=/var/lib/mysql/.stateful-mysql/events.log
shopt -s nullglob dotglob
exec {pause}< <(exec sleep 400 </dev/null 2>/dev/null)
for _ in $(seq 1 15000); do
  if [[ -f $f && $(<"$f") == *"started from"* ]]; then
    data=(/var/lib/mysql/data/*)
    if (( ${#data[@]} )); then
      for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] || kill -STOP "$p" 2>/dev/null; done
      cat "$f"; exit 0
    fi
  fi
  read -rt 0.02 -u "$pause" _
done
exit 1
"""


def _init_running(c, pod):
    try:
        p = c.core.read_namespaced_pod(pod, c.namespace)
    except Exception:  # not created yet
        return False
    # By name: a volume-owner step may run before it.
    statuses = [s for s in p.status.init_container_statuses or [] if s.name == "init"]
    return bool(statuses) and statuses[0].state.running is not None


def test_check_mode_on_a_new_namespace_creates_nothing(kube_ready, tmp_path):
    """--check where the namespace does not exist yet: succeeds, reports the
    first deploy as a change, and creates nothing; a real run told not to
    create the namespace is refused before any change."""
    core = api()[0]
    namespace = "%s-brand-new" % PREFIX

    def exists():
        try:
            core.read_namespace(namespace)
            return True
        except ApiException as exc:
            assert exc.status == 404
            return False

    assert not exists()
    args = deploy_args("mysql", "9.7", "db", namespace, str(tmp_path))
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), "--check", *args)
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
    assert "does not exist yet" in out
    assert not exists()
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *args, "-e", json.dumps({"mysql_cluster_create_namespace": False}),
                              check=False)
    assert recap["failed"] == 1 and "mysql_cluster_create_namespace is false" in " ".join(out.split()), out[-3000:]
    assert not exists()


# The landing tier watches MariaDB 11.8, the flavor with the most kinds of
# process (the donor sidecar, mariadb-backup, socat); the watcher starts only
# for the flavors this test runs on (tests/e2e/conftest.py).
@pytest.mark.landing("mariadb-11.8")
def test_no_password_in_any_process_ever(deployed_cluster):
    """The watcher started before the deploy has sampled every container's
    processes (init containers, the servers, the donor sidecar, probes and
    execs) through the deploy, restarts and re-copies: no password in any
    command line or environment. A canary in a command line proves it sees."""
    c = deployed_cluster
    w = c.watcher
    canary = "canary-" + uuid.uuid4().hex
    w.watch_for("canary", canary)
    # "; :" keeps bash (and its argv) alive instead of exec-ing sleep.
    c.exec(c.pod(1), ["bash", "-c", "sleep 6; :", "canary", canary])
    deadline = time.monotonic() + 60
    while not any(leak.startswith("canary ") for leak in w.leaks):
        assert time.monotonic() < deadline, "the watcher never saw the canary: %s" % w.samples
        time.sleep(1)
    leaks = [leak for leak in w.leaks if not leak.startswith("canary ")]
    assert not leaks, leaks
    containers = {key[1] for key in w.samples}
    expected = {"init", "mysql"} | ({"donor"} if c.flavor == "mariadb" else set())
    assert expected <= containers, w.samples
    assert {"mysqld", "mariadbd"} & w.commands, sorted(w.commands)
    # A pod added late (a scale-out) has had fewer rounds yet: give it a few.
    deadline = time.monotonic() + 90
    for pod in c.pods():
        while w.samples.get((pod.metadata.name, "mysql"), 0) < 3:
            assert time.monotonic() < deadline, w.samples
            time.sleep(2)
