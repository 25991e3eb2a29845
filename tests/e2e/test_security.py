"""Security of the replication path, per flavor, on the local Kubernetes
(issue 19): no password in any binary or relay log; replication and CLONE
over TLS with the source verified against the cluster's own CA. These use
the suite's shared cluster of each flavor; the primary-away drills are
test_primary_away.py's."""
import hashlib
import os
import re

import pytest

from kube import PASSWORDS, ROOT, io_state, replicating, run_playbook, sql_state, tcp_login, wait_until, words

LIB = "source /etc/stateful-mysql/scripts/lib.sh; set +e; "
SECRET_KEYS = {
    "root-password": "mysql_cluster_root_password",
    "replication-password": "mysql_cluster_replication_password",
    "clone-password": "mysql_cluster_clone_password",
}


def fqdn(c, ordinal):
    return "%s-%d.%s.%s.svc" % (c.name, ordinal, c.name, c.namespace)


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


# --- No password in any log --------------------------------------------------

# A statement that fails and carries a password, as the pod scripts send one
# (quoted by sql_quote): the MariaDB client would print it with its error.
FAILING_STATEMENT = LIB + r'''
q=$(sql_quote "$(secret replication-password)")
printf 'SELECT no_such_column FROM mysql.user WHERE user = %s;\n' "$q" | sql "$CLIENT_DIR/root.cnf"
echo "rc=$?"
'''


def test_a_failing_statement_never_shows_its_password(deployed_cluster):
    """lib.sh's sql(): a failing statement's error names it (error 1054)
    without printing the statement, so a password in it reaches no log."""
    c = deployed_cluster
    rc, out, err = c.exec(c.pod(1), ["bash", "-c", FAILING_STATEMENT])
    assert "rc=1" in out and "1054" in err, (rc, out, err)
    assert PASSWORDS["mysql_cluster_replication_password"] not in out + err, "the password was printed"


def test_no_password_in_any_container_log(deployed_cluster):
    """The logs of every container of every pod (init included, the
    previous run's too): none holds a password."""
    c = deployed_cluster
    for pod in c.pods():
        statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
        for st in statuses:
            for previous in (False, True):
                if previous and not st.restart_count:
                    continue
                try:
                    log = c.core.read_namespaced_pod_log(pod.metadata.name, c.namespace, container=st.name,
                                                         previous=previous)
                except Exception:  # no previous log kept
                    continue
                for key, password in PASSWORDS.items():
                    assert password not in log, "%s in the log of %s/%s" % (key, pod.metadata.name, st.name)


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
        # 3159: require_secure_transport refuses before the account's REQUIRE SSL (1045) is asked.
        assert rc != 0 and re.search(r"\b(1045|3159)\b", out), "%s logged in without TLS: %s" % (user, out)
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


# --- A cluster made before the replication user could read status --------

# What a new cluster grants its replication user besides REPLICATION SLAVE
# (init.sh create_users): an older one lacks both.
STATUS_GRANTS = {"mysql": "REPLICATION CLIENT", "mariadb": "BINLOG MONITOR, SLAVE MONITOR"}


def _accounts_everywhere(c, statements):
    """Unlogged account statements on every server; MySQL's replicas lift
    super_read_only for them only."""
    for i, pod in enumerate(p.metadata.name for p in c.pods()):
        lift = c.flavor == "mysql" and i > 0
        lift_off, lift_on = ("SET GLOBAL super_read_only = OFF; ", "; SET GLOBAL super_read_only = ON") if lift else ("", "")
        c.sql(pod, "SET SESSION sql_log_bin = 0; %s%s%s" % (lift_off, statements, lift_on))


@pytest.mark.full_tier
def test_a_cluster_made_before_the_status_grants_is_asked_as_root(deployed_cluster):
    """Clusters made before this version: their replication user may not read
    replica status, binary log lists or the verify schema, and their root is
    root@'%'. A replica re-copied there asks its peers as root (once said in
    its events), copies and replicates; verify.yml reads through the read
    Service as root."""
    c = deployed_cluster
    grants = STATUS_GRANTS[c.flavor]
    last = c.pods()[-1].metadata.name
    before = c.events(last)
    _accounts_everywhere(c, "REVOKE %s ON *.* FROM 'repl'@'%%'; REVOKE SELECT ON stateful_verify.* FROM 'repl'@'%%'"
                         % grants)
    try:
        c.sh(last, "bash /etc/stateful-mysql/scripts/mark-recopy.sh 'test: an older cluster'")
        c.core.delete_namespaced_pod(last, c.namespace)
        c.wait_ready(len(c.pods()))
        new = c.events(last)[len(before):]
        assert "done-marker written" in new, new
        assert new.count("asking peers as root") == 1, new
        assert re.search(r"started from %s-1\." % c.name, new), "not copied from the replica %s-1: %s" % (c.name, new)
        assert "re-copy: re-copy requested: test: an older cluster" in new, new
        wait_until(lambda: replicating(c, [last]), 60, "%s replicating" % last)
        out, recap = run_playbook(os.path.join(ROOT, "verify.yml"), *c.deploy_args)
        assert recap["failed"] == 0 and "read back through %s-read as root from:" % c.name in out, out[-3000:]
    finally:
        _accounts_everywhere(c, "GRANT %s ON *.* TO 'repl'@'%%'; GRANT SELECT ON stateful_verify.* TO 'repl'@'%%'"
                             % grants)


@pytest.mark.full_tier
def test_root_host_moved_on_a_live_cluster_and_back(deployed_cluster):
    """mysql_cluster_root_host changed on a live cluster made before this
    version (root@'%', the replication user without its status grants):
    site.yml moves root to 127.0.0.1 on every server with no pod replaced and
    grants the replication user its reads; root from another pod is then
    refused, from its own pod taken; verify.yml reads as the replication
    user; the next run changes nothing; moved back to %, root from another
    pod logs in again."""
    c = deployed_cluster
    site = os.path.join(ROOT, "site.yml")
    pods = dict((p.metadata.name, p.metadata.uid) for p in c.pods())
    grants = STATUS_GRANTS[c.flavor]
    _accounts_everywhere(c, "REVOKE %s ON *.* FROM 'repl'@'%%'; REVOKE SELECT ON stateful_verify.* FROM 'repl'@'%%'"
                         % grants)
    try:
        out, recap = run_playbook(site, *c.deploy_args, "-e", "mysql_cluster_root_host=127.0.0.1")
        text = " ".join(out.split())
        assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
        assert "root@% is now root@127.0.0.1 on every server" in text, text[-3000:]
        for i, pod in enumerate(sorted(pods)):
            other = sorted(pods)[(i + 1) % len(pods)]
            rc, got = tcp_login(c, other, "%s.%s.%s.svc" % (pod, c.name, c.namespace), "tls")
            assert rc != 0 and re.search(r"ERROR (1045|1130)", got), "root from %s to %s: %s" % (other, pod, got)
            rc, got = tcp_login(c, pod, "127.0.0.1", "tls")
            assert rc == 0 and got.startswith("root@127.0.0.1"), "root in %s: %s" % (pod, got)
            held = c.sql(pod, "SHOW GRANTS FOR 'repl'@'%'")
            assert "stateful_verify" in held and grants.split(",")[0] in held, "%s: %s" % (pod, held)
        assert dict((p.metadata.name, p.metadata.uid) for p in c.pods()) == pods, "a pod was replaced"
        out, recap = run_playbook(site, *c.deploy_args, "-e", "mysql_cluster_root_host=127.0.0.1")
        assert recap["changed"] == 0, out[-3000:]
        out, recap = run_playbook(os.path.join(ROOT, "verify.yml"), *c.deploy_args)
        assert recap["failed"] == 0 and "read back through %s-read as repl from:" % c.name in out, out[-3000:]
    finally:
        out, recap = run_playbook(site, *c.deploy_args)
        assert "root@127.0.0.1 is now root@% on every server" in " ".join(out.split()), out[-3000:]
    rc, got = tcp_login(c, c.pod(1), "%s.%s.%s.svc" % (c.pod(0), c.name, c.namespace), "tls")
    assert rc == 0 and got.startswith("root@%"), got
    assert dict((p.metadata.name, p.metadata.uid) for p in c.pods()) == pods, "a pod was replaced"
