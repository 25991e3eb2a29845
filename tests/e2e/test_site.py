"""site.yml on the local Kubernetes, once per flavor (MySQL 9.7, MariaDB
10.11, MariaDB 11.8): the cluster replicates, as it should, and keeps doing
so across restarts without copying or re-pointing twice."""
import os
import time
import uuid

from kube import PASSWORDS, ROOT, run_playbook

REPLICAS = 3


def replicas(cluster, count=REPLICAS):
    return [cluster.pod(i) for i in range(1, count)]


def primary_host(cluster):
    return "%s-0.%s" % (cluster.name, cluster.name)


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


def test_second_run_changes_nothing(deployed_cluster):
    c = deployed_cluster
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args)
    assert recap["changed"] == 0 and recap["failed"] == 0, out[-4000:]


def test_check_mode_changes_nothing(deployed_cluster):
    c = deployed_cluster
    before = c.apps.read_namespaced_stateful_set(c.name, c.namespace).metadata.resource_version
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), "--check", "--diff",
                              *c.deploy_args, "-e", "mysql_cluster_replicas=4")
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-4000:]
    assert "replicas" in out
    after = c.apps.read_namespaced_stateful_set(c.name, c.namespace)
    assert after.metadata.resource_version == before and after.spec.replicas == REPLICAS


def test_no_password_in_any_process_command_line(deployed_cluster):
    c = deployed_cluster
    script = ('for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do '
              'tr "\\0" " " < "$f" 2>/dev/null; echo; done')
    for pod in c.pods():
        for container in [s.name for s in pod.spec.containers]:
            seen = c.sh(pod.metadata.name, script, container=container)
            assert "mysqld" in seen or "mariadbd" in seen or "socat" in seen
            for key, password in PASSWORDS.items():
                assert password not in seen, "%s found in %s/%s" % (key, pod.metadata.name, container)


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


def count(events, word):
    return sum(1 for line in events.splitlines() if word in line)


def test_restarts_never_copy_or_repoint_again(deployed_cluster):
    c = deployed_cluster
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
        assert copies == 1, events
        assert count(events, "CHANGE:") == 1, events
        assert count(events, "done-marker written") == 1, events
        st = c.replica_status(pod)
        assert st.get("Replica_SQL_Running", st.get("Slave_SQL_Running")) == "Yes"


def test_replica_deleted_mid_copy_copies_again_cleanly(deployed_cluster):
    """Scale to 4 with enough data that the copy takes a while, delete the
    new pod while it copies, and check it redoes the copy from scratch."""
    c = deployed_cluster
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS e2e; DROP TABLE IF EXISTS e2e.big; "
                    "CREATE TABLE e2e.big (id INT AUTO_INCREMENT PRIMARY KEY, pad CHAR(250) NOT NULL)")
    c.sql(c.pod(0), "INSERT INTO e2e.big (pad) VALUES (REPEAT('x', 250))")
    for doubling in range(19):
        c.sql(c.pod(0), "INSERT INTO e2e.big (pad) SELECT pad FROM e2e.big")
    rows = c.sql(c.pod(0), "SELECT COUNT(*) FROM e2e.big")
    run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args,
                 "-e", "mysql_cluster_replicas=4", "-e", "mysql_cluster_wait=false")
    new = c.pod(3)
    deadline = time.monotonic() + 300
    while True:
        rc, out = c.exec(new, ["bash", "-c", "cat /var/lib/mysql/.stateful-mysql/events.log"],
                         container="init")[:2] if _init_running(c, new) else (1, "")
        if rc == 0 and "started from" in out:
            break
        assert time.monotonic() < deadline, "%s never started copying" % new
        time.sleep(0.2)
    assert "done-marker written" not in out
    # Not a force delete (grace 0), which may start the new pod while the old
    # one still writes to the volume; a 1 s grace kills the copy at once.
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


def _init_running(c, pod):
    try:
        p = c.core.read_namespaced_pod(pod, c.namespace)
    except Exception:  # not created yet
        return False
    # By name: a volume-owner step may run before it.
    statuses = [s for s in p.status.init_container_statuses or [] if s.name == "init"]
    return bool(statuses) and statuses[0].state.running is not None
