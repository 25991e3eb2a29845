"""Security and resilience of the replication path, per flavor, on the local
Kubernetes (issue 19): no password in any binary or relay log; replication
and CLONE over TLS with the source verified against the cluster's own CA;
replicas that ride through a primary that is briefly not Ready, never give
up on a primary that is away, and resume within seconds of its return.

The read-only checks use the suite's shared cluster of each flavor. The
checks that take the primary away use a second, small cluster with
podManagementPolicy Parallel (with OrderedReady the StatefulSet would not
start a new replica while ordinal 0 is not Ready)."""
import hashlib
import re
import threading
import time
import uuid

import pytest

from kube import PASSWORDS

LIB = "source /etc/stateful-mysql/scripts/lib.sh; set +e; "
SECRET_KEYS = {
    "root-password": "mysql_cluster_root_password",
    "replication-password": "mysql_cluster_replication_password",
    "clone-password": "mysql_cluster_clone_password",
}


def fqdn(c, ordinal):
    return "%s-%d.%s.%s.svc" % (c.name, ordinal, c.name, c.namespace)


def io_state(st):
    return st.get("Replica_IO_Running", st.get("Slave_IO_Running"))


def sql_state(st):
    return st.get("Replica_SQL_Running", st.get("Slave_SQL_Running"))


def words(c):
    return ("REPLICA", "SOURCE") if c.flavor == "mysql" else ("SLAVE", "MASTER")


def pod_ready(c, name):
    try:
        pod = c.core.read_namespaced_pod(name, c.namespace)
    except Exception:  # not created yet, or being replaced
        return False
    return pod.metadata.deletion_timestamp is None and any(
        cond.type == "Ready" and cond.status == "True" for cond in pod.status.conditions or [])


def wait_until(predicate, timeout, what, step=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "%s: not within %s s" % (what, timeout)
        time.sleep(step)


def replicating(c, pods):
    return all(io_state(c.replica_status(p)) == "Yes" and sql_state(c.replica_status(p)) == "Yes" for p in pods)


# --- No password in any binary or relay log ---------------------------------

BINLOG_SCAN = LIB + r'''
pat=$(mktemp)
for k in root-password replication-password clone-password; do
  v=$(secret "$k")
  echo "SHA $k $(printf '%s' "$v" | sha256sum | cut -d' ' -f1)"
  q=$(sql_quote "$v"); q=${q#\'}; q=${q%\'}
  printf '%s\n%s\n' "$v" "$q" >>"$pat"
done
tool=$(command -v mariadb-binlog || command -v mysqlbinlog)
for f in "$DATADIR"/binlog.[0-9]* "$DATADIR"/relay-bin*.[0-9]*; do
  # Every log on disk; not MariaDB's GTID indexes (binlog.000001.idx).
  case $f in *.idx | *.index) continue ;; esac
  [ -f "$f" ] || continue
  printf 'FILE %s ' "${f##*/}"
  "$tool" --no-defaults --base64-output=DECODE-ROWS -v "$f" 2>&1 | awk -v patfile="$pat" '
    BEGIN { while ((getline p < patfile) > 0) pats[++n] = p }
    { lines++; for (i = 1; i <= n; i++) if (index($0, pats[i])) hits++
      if (toupper($0) ~ /IDENTIFIED +(BY|WITH)/) ident++ }
    END { printf "%d %d %d\n", lines, hits + 0, ident + 0 }'
done
rm -f "$pat"
'''


def test_no_password_in_any_binlog_or_relay_log(deployed_cluster):
    """mysqlbinlog / mariadb-binlog over every binary and relay log of every
    pod: none holds a password, raw or SQL-escaped, nor any statement that
    sets one (MySQL would log CREATE USER with the password's hash)."""
    c = deployed_cluster
    for pod in c.pods():
        name = pod.metadata.name
        out = c.sh(name, BINLOG_SCAN)
        # The pod's Secret holds the test's passwords: the scan looked for them.
        shas = dict(line.split()[1:3] for line in out.splitlines() if line.startswith("SHA "))
        for key, var in SECRET_KEYS.items():
            assert shas[key] == hashlib.sha256(PASSWORDS[var].encode()).hexdigest(), (name, key)
        files = {}
        for line in out.splitlines():
            if line.startswith("FILE "):
                fname, lines, hits, ident = line.split()[1:]
                files[fname] = (int(lines), int(hits), int(ident))
        assert any(f.startswith("binlog.") for f in files), (name, out)
        if not name.endswith("-0"):
            assert any(f.startswith("relay-bin") for f in files), (name, out)
        for fname, (lines, hits, ident) in files.items():
            assert lines > 5, "%s/%s decoded to nothing: %s" % (name, fname, out)
            assert hits == 0, "%s/%s holds a password (%d lines)" % (name, fname, hits)
            assert ident == 0, "%s/%s holds %d IDENTIFIED BY/WITH statements" % (name, fname, ident)


# --- Replication and CLONE over TLS, the source verified ----------------------

LOGIN = LIB + r'''
user=$1 key=$2 mode=$3
f=$CLIENT_DIR/sec-test-$$.cnf
write_client_cnf "$f" "$user" "$key"
if [ "$FLAVOR" = mariadb ]; then
  if [ "$mode" = plain ]; then tls=(--skip-ssl); else tls=(--ssl --ssl-ca="$SERVER_TLS_DIR/ca.crt" --ssl-verify-server-cert); fi
else
  # The server's RSA key lets caching_sha2 finish without TLS whether or not the
  # password is cached (else 2061 hides the REQUIRE SSL refusal, 1045, under test).
  if [ "$mode" = plain ]; then tls=(--ssl-mode=DISABLED --get-server-public-key); else tls=(--ssl-mode=VERIFY_IDENTITY --ssl-ca="$SERVER_TLS_DIR/ca.crt"); fi
fi
out=$("$CLIENT" --defaults-extra-file="$f" --host="$PRIMARY_HOST" --protocol=TCP "${tls[@]}" -N -B \
  -e "SHOW SESSION STATUS LIKE 'Ssl_version'" 2>&1)
echo "rc=$?"
echo "$out"
rm -f "$f"
'''


def login(c, pod, user, key, mode):
    rc, out, err = c.exec(pod, ["bash", "-c", LOGIN, "login", user, key, mode])
    assert rc == 0, err
    first, rest = out.partition("\n")[::2]
    return int(first.split("=")[1]), rest


def test_replication_and_donor_users_require_tls(deployed_cluster):
    """From a replica's pod, over the network to the primary's name: without
    TLS the replication user (and MySQL's CLONE donor) is refused; with TLS
    and the server certificate verified against the cluster CA for that name,
    it logs in."""
    c = deployed_cluster
    users = [("repl", "replication-password")]
    if c.flavor == "mysql":
        users.append(("donor", "clone-password"))
    for user, key in users:
        rc, out = login(c, c.pod(1), user, key, "plain")
        assert rc != 0 and "1045" in out, "%s logged in without TLS: %s" % (user, out)
        rc, out = login(c, c.pod(1), user, key, "verified")
        assert rc == 0 and re.search(r"Ssl_version\s+TLSv1\.[23]", out), "%s over verified TLS: %s" % (user, out)
        assert c.sql(c.pod(0), "SELECT ssl_type FROM mysql.user WHERE user = '%s'" % user) == "ANY"


def test_every_replica_replicates_over_verified_tls(deployed_cluster):
    c = deployed_cluster
    source = words(c)[1]
    replicas = [p.metadata.name for p in c.pods()[1:]]
    assert replicas
    for pod in replicas:
        st = c.replica_status(pod)
        assert io_state(st) == "Yes" and sql_state(st) == "Yes", st
        assert st["%s_Host" % source.capitalize()] == fqdn(c, 0), st
        assert st["%s_SSL_Allowed" % source.capitalize()] == "Yes", st
        assert st["%s_SSL_Verify_Server_Cert" % source.capitalize()] == "Yes", st
        assert st["%s_SSL_CA_File" % source.capitalize()] == "/run/stateful-mysql/tls/ca.crt", st
    if c.flavor == "mysql":
        # The primary's side: every binlog dump connection is TLS.
        kinds = c.sql(c.pod(0), "SELECT CONNECTION_TYPE FROM performance_schema.threads "
                                "WHERE PROCESSLIST_COMMAND LIKE 'Binlog Dump%'").split()
        assert kinds == ["SSL/TLS"] * len(replicas), kinds
        # Every replica was cloned, and only over TLS (the donor requires it).
        for pod in replicas:
            assert "clone completed" in c.events(pod)


def _set_source_tls(c, pod, ca=None, host=None):
    words_ = words(c)
    parts = []
    if ca:
        parts.append("%s_SSL_CA = '%s'" % (words_[1], ca))
    if host:
        parts.append("%s_HOST = '%s'" % (words_[1], host))
    change = "CHANGE REPLICATION SOURCE TO" if c.flavor == "mysql" else "CHANGE MASTER TO"
    c.sql(pod, "STOP %s; %s %s; START %s" % (words_[0], change, ", ".join(parts), words_[0]))


def _refused(c, pod):
    st = c.replica_status(pod)
    return st if io_state(st) != "Yes" and st.get("Last_IO_Errno") == "2026" else None


def test_replica_refuses_a_source_it_cannot_verify(deployed_cluster):
    """A replica that trusts another CA than the source's, or reaches the
    source by a name its certificate does not hold (its address), refuses
    it (error 2026); with the cluster CA and name again, it replicates."""
    c = deployed_cluster
    pod = c.pods()[-1].metadata.name
    foreign = "/run/stateful-mysql/tls/foreign-ca.crt"
    c.sh(pod, LIB + "cd \"$TMPDIR\" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                    "-keyout foreign.key -out %s -days 1 -subj /CN=foreign-ca 2>/dev/null && rm -f foreign.key"
                    % foreign)
    primary_ip = c.core.read_namespaced_pod(c.pod(0), c.namespace).status.pod_ip
    try:
        _set_source_tls(c, pod, ca=foreign)
        st = wait_until(lambda: _refused(c, pod), 60, "%s refusing a source signed by another CA" % pod)
        assert "certificate" in st["Last_IO_Error"].lower() or "ssl" in st["Last_IO_Error"].lower(), st
        _set_source_tls(c, pod, ca="/run/stateful-mysql/tls/ca.crt", host=primary_ip)
        wait_until(lambda: _refused(c, pod), 60, "%s refusing a source reached by its address %s" % (pod, primary_ip))
    finally:
        _set_source_tls(c, pod, ca="/run/stateful-mysql/tls/ca.crt", host=fqdn(c, 0))
        c.sh(pod, "rm -f %s" % foreign)
    wait_until(lambda: replicating(c, [pod]), 60, "%s replicating again" % pod)


# --- A primary briefly not Ready, away, or restarting --------------------------

# The longest the primary is kept away: far longer than the old 10 attempts
# at one a second take, short enough that replicas stay within the lag bound
# (they stay Ready). The drill ends the absence once the replicas have shown
# they keep trying.
AWAY = 40
# Reads through <name>-read while the primary is NotReady, one a second.
WINDOW_READS = 5


# Primary away/not-Ready drills: MySQL 9.7 and MariaDB 11.8 (10.11 takes 11.8's
# path). In the landing tier on MySQL 9.7: its replicas count their attempts,
# and the drills share its Parallel cluster with the scale-out of
# test_returning.py.
DRILL_FLAVORS = pytest.mark.landing("mysql-9.7")


@pytest.fixture
def par_cluster(parallel_cluster):
    """The shared Parallel cluster (tests/e2e/conftest.py), Ready."""
    parallel_cluster.wait_ready(len(parallel_cluster.pods()), timeout=300)
    return parallel_cluster


def _write_row(c):
    marker = uuid.uuid4().hex
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS sec; CREATE TABLE IF NOT EXISTS sec.t (id VARCHAR(64) PRIMARY KEY); "
                    "INSERT INTO sec.t VALUES ('%s')" % marker)
    return "SELECT COUNT(*) FROM sec.t WHERE id = '%s'" % marker


@DRILL_FLAVORS
def test_replication_survives_a_primary_briefly_not_ready(par_cluster):
    """The primary's readiness fails (read_only=ON, which its probe rejects;
    the server keeps running). While it does, a replica restarts its
    replication and a new replica is started: both reach the primary by its
    name and copy or connect; reads through <name>-read keep working."""
    c = par_cluster
    count = len(c.pods())
    replica, new = c.pod(1), c.pod(count)
    c.sql(c.pod(0), "SET GLOBAL read_only = ON")
    try:
        wait_until(lambda: not pod_ready(c, c.pod(0)), 60, "primary NotReady")
        rep = words(c)[0]
        c.sql(replica, "STOP %s; START %s" % (rep, rep))
        c.apps.patch_namespaced_stateful_set_scale(c.name, c.namespace, {"spec": {"replicas": count + 1}})
        wait_until(lambda: replicating(c, [replica]), 20, "%s reconnected to a NotReady primary" % replica)

        def copy_started():
            for container in ("init", "mysql"):
                try:
                    if "started from" in c.exec(new, ["cat", "/var/lib/mysql/.stateful-mysql/events.log"],
                                                container=container)[1]:
                        return True
                except Exception:  # pod or container not there (yet, or any more)
                    pass
            return False
        wait_until(copy_started, 25, "%s starting its copy while the primary is NotReady" % new)
        reads = []
        for _i in range(WINDOW_READS):
            reads.append(c.sql(replica, "SELECT @@hostname", host="%s-read" % c.name))
            time.sleep(1)
        assert len(reads) == WINDOW_READS and c.pod(0) not in reads, reads
        assert not pod_ready(c, c.pod(0)), "the primary became Ready during the window"
    finally:
        c.sql(c.pod(0), "SET GLOBAL read_only = OFF")
    c.wait_ready(count + 1, timeout=300)
    query = _write_row(c)
    for pod in (replica, new):
        wait_until(lambda: c.sql(pod, query) == "1", 30, "%s receiving a new row" % pod)
    st = c.replica_status(new)
    assert io_state(st) == "Yes" and st.get("Source_SSL_Verify_Server_Cert", st.get("Master_SSL_Verify_Server_Cert")) == "Yes"


def _restarts(c, pod):
    statuses = c.core.read_namespaced_pod(pod, c.namespace).status.container_statuses
    return next(s.restart_count for s in statuses if s.name == "mysql")


def _primary_ready_then_replicating(c, replicas, timeout):
    ready_at = wait_until(lambda: pod_ready(c, c.pod(0)) and time.monotonic(), timeout, "primary Ready again")
    # Each replica is polled on its own (one exec per look), so the delay
    # measured is its own plus the exec's latency, never the others'.
    seen = {}

    def all_seen():
        for pod in replicas:
            if pod not in seen:
                st = c.replica_status(pod)
                if io_state(st) == "Yes" and sql_state(st) == "Yes":
                    seen[pod] = time.monotonic()
        return len(seen) == len(replicas)
    wait_until(all_seen, 60, "replicas replicating again", step=0.5)
    return max(seen.values()) - ready_at


@DRILL_FLAVORS
def test_primary_restart_replicas_resume_within_5s_and_stay_ready(par_cluster):
    """The primary's server restarts (its container: TERM to the server).
    Every replica replicates within 5 s of the primary being Ready again, and
    stays Ready meanwhile (its data is within the lag bound), so reads
    through <name>-read never lose their replicas."""
    c = par_cluster
    replicas = [p.metadata.name for p in c.pods()[1:]]
    before = _restarts(c, c.pod(0))
    unready, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            for pod in replicas:
                try:
                    conds = c.core.read_namespaced_pod(pod, c.namespace).status.conditions or []
                except Exception:  # an API hiccup is no sample
                    continue
                if any(cond.type == "Ready" and cond.status != "True" for cond in conds):
                    unready.add(pod)
            time.sleep(0.5)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        c.exec(c.pod(0), ["bash", "-c", "kill -TERM 1"])
        wait_until(lambda: _restarts(c, c.pod(0)) > before, 120, "primary container restarted")
        delay = _primary_ready_then_replicating(c, replicas, 120)
    finally:
        stop.set()
        watcher.join()
    assert delay <= 5, "replicas replicated %.1f s after the primary was Ready" % delay
    assert not unready, "replicas went NotReady during a primary restart: %s" % unready
    query = _write_row(c)
    for pod in replicas:
        wait_until(lambda: c.sql(pod, query) == "1", 10, "%s receiving a new row" % pod)


def _retries(c, pod, since):
    """How the replica's IO thread retries, from the server itself: MySQL
    counts the attempts in Last_IO_Error ('attempt N/limit'); MariaDB
    10.11/11.8 count nowhere (Connects_Tried came in 12.x) and log an error
    only when it changes, with its retry time and limit."""
    if c.flavor == "mysql":
        m = re.search(r"attempt (\d+)/(\d+)", c.replica_status(pod).get("Last_IO_Error", ""))
        return (int(m.group(1)), None, int(m.group(2))) if m else (0, None, None)
    log = c.core.read_namespaced_pod_log(pod, c.namespace, container="mysql", since_seconds=int(since) + 1)
    m = re.findall(r"error reconnecting to master .* retry-time: (\d+)\s+maximum-retries: (\d+)", log)
    return (None, int(m[-1][0]), int(m[-1][1])) if m else (None, None, None)


@DRILL_FLAVORS
def test_replicas_never_give_up_on_a_primary_away(par_cluster):
    """The primary's pod is deleted and kept away (a ResourceQuota stops the
    StatefulSet from recreating it) until each replica has shown that it
    keeps trying, every second, beyond the old limit of 10 attempts (MySQL
    counts them; MariaDB logs its retry time and limit), and every replica
    replicates again within 30 s of the primary's return (checked: 5 s of
    its being Ready)."""
    c = par_cluster
    replicas = [p.metadata.name for p in c.pods()[1:]]
    pods_now = len(c.pods())
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "sec-hold-primary"},
             "spec": {"hard": {"pods": str(pods_now - 1)}}}
    c.core.create_namespaced_resource_quota(c.namespace, quota)
    try:
        wait_until(lambda: c.core.read_namespaced_resource_quota("sec-hold-primary", c.namespace).status.used,
                   30, "quota counting pods")
        c.core.delete_namespaced_pod(c.pod(0), c.namespace)
        gone = time.monotonic()
        wait_until(lambda: c.pod(0) not in [p.metadata.name for p in c.pods()], 120, "primary pod gone")
        # Away until every replica has shown it keeps trying (at most AWAY s).
        kept_trying = set()
        while len(kept_trying) < len(replicas):
            for pod in sorted(set(replicas) - kept_trying):
                st = c.replica_status(pod)
                assert io_state(st) != "No", "%s gave up: %s" % (pod, st)
                attempts, retry_time, limit = _retries(c, pod, time.monotonic() - gone)
                if (attempts > 10 if c.flavor == "mysql" else (retry_time == 1 and limit >= 2 ** 32 - 1)):
                    kept_trying.add(pod)
                elif time.monotonic() - gone > AWAY:
                    if c.flavor == "mysql":
                        raise AssertionError("%s tried only %d times in %.0f s" % (pod, attempts, time.monotonic() - gone))
                    raise AssertionError("%s retries every %s s, at most %s times" % (pod, retry_time, limit))
            time.sleep(2)
        print("\nprimary away %.0f s: every replica kept trying" % (time.monotonic() - gone))
        assert c.pod(0) not in [p.metadata.name for p in c.pods()], "the primary came back despite the quota"
    finally:
        c.core.delete_namespaced_resource_quota("sec-hold-primary", c.namespace)
        # Wake the StatefulSet controller, which backs off from refused creates.
        c.apps.patch_namespaced_stateful_set(c.name, c.namespace,
                                             {"metadata": {"annotations": {"stateful.mysql/e2e-poke": str(time.time())}}})
    delay = _primary_ready_then_replicating(c, replicas, 240)
    assert delay <= 5, "replicas replicated %.1f s after the primary was Ready" % delay
    query = _write_row(c)
    for pod in replicas:
        wait_until(lambda: c.sql(pod, query) == "1", 30, "%s receiving a new row" % pod)
