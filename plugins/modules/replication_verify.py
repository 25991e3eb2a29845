#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: replication_verify
short_description: Prove that a MySQL/MariaDB StatefulSet replicates, serves reads and protects its replicas
version_added: 0.1.0
description:
  - Writes a unique marker row on the primary (pod C(<name>-0)) into its own schema and table,
    created when missing, and waits until every replica has it, reporting the propagation time per replica.
  - Reads the marker back several times through the read Service C(<name>-read) from inside the
    cluster, by running the server image's client (C(mariadb) or C(mysql)) in a pod, and reports
    which servers answered. The password reaches that client through an option file written from
    stdin into a private temporary file, never through its command line or environment.
  - Confirms that every replica refuses writes. The test write runs in a transaction that is always
    rolled back, so it never changes a replica. When the login user may write despite C(read_only)
    (for example C(root) on MariaDB, which holds C(READ ONLY ADMIN)), the check is repeated as a
    temporary unprivileged user created on that replica alone, with C(sql_log_bin=0), and dropped
    again, so its password never reaches a binary log and no replica gains a transaction of its own.
  - Removes the marker at the end unless O(keep_marker=true).
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
  - stateful.mysql.mysql_login
attributes:
  check_mode:
    support: none
    description: Verifying means writing a marker; in check mode the module is skipped.
  diff_mode:
    support: none
    description: No diff is produced.
  idempotent:
    support: partial
    description:
      - Reports a change only when it created the schema or the table. Each run writes (and then deletes)
        a marker row, which leaves events in the binary logs; the probe user is never binlogged.
      - Those writes are not reported as changes on purpose, because the run removes them again and leaves
        the servers as it found them; reporting them would make every C(verify.yml) run say changed and
        hide a real change (the schema or table created) among routine ones.
options:
  schema:
    description:
      - Schema of the marker table; created when missing. Letters, digits and C(_) only.
    type: str
    default: stateful_verify
  table:
    description:
      - Marker table; created when missing. Letters, digits and C(_) only.
    type: str
    default: marker
  timeout:
    description:
      - Seconds to wait for the marker to reach every replica.
    type: int
    default: 120
  read_attempts:
    description:
      - How many times to read the marker through the read Service, each on a new connection.
      - V(0) skips the read check.
    type: int
    default: 6
  read_service:
    description:
      - Name of the read Service. Defaults to C(<name>-read).
    type: str
  read_port:
    description:
      - Port of the read Service.
    type: int
    default: 3306
  read_from_pod:
    description:
      - Pod whose C(mysql) container runs the client for the read check, with O(connection=port_forward).
        Defaults to C(<name>-0).
    type: str
  read_user:
    description:
      - With O(connection=port_forward), the account the read check logs in as from the pod, over TLS.
        A cluster the C(stateful.mysql.mysql_cluster) role made lets its replication user (C(repl) unless
        renamed) read O(schema), so root need not be reachable from other pods; the role passes its name.
      - When that account cannot read (none of that name, 1045; no grant, 1142 or 1044, as on a cluster made
        before that grant; or no O(read_password_secret_key) in the Secret), the read is made as the login user,
        and a failure then names both refusals.
    type: str
    default: repl
  read_password_secret_key:
    description:
      - Key of the O(read_user)'s password in the login password Secret.
    type: str
    default: replication-password
  read_host:
    description:
      - With O(connection=direct), the address the read check connects to (each attempt a new TCP
        connection). Defaults to C(<read_service>.<namespace>.svc.<cluster_domain>).
    type: str
  check_writes_refused:
    description:
      - Check that every replica refuses writes.
    type: bool
    default: true
  probe_user:
    description:
      - Name of the temporary user for the write check, created on the primary with C(SELECT, INSERT) on
        O(schema) only and a random password, and dropped at the end.
    type: str
    default: stateful_verify_probe
  keep_marker:
    description:
      - Leave the marker row in place.
    type: bool
    default: false
requirements:
  - kubernetes >= 24.2.0 (Python library), unless O(connection=direct) with O(hosts) and O(login_password)
  - PyMySQL >= 1.0 (Python library)
notes:
  - The login user must be able to create schemas, tables and users on the primary (C(root) can).
  - With O(connection=port_forward), the Kubernetes user needs C(create) on C(pods/portforward) and C(pods/exec).
seealso:
  - module: stateful.mysql.replication_status
"""

EXAMPLES = r"""
- name: Prove replication end to end
  stateful.mysql.replication_verify:
    name: mysql
    namespace: db
  register: proof

- name: Which servers answered through the read Service
  ansible.builtin.debug:
    var: proof.read_servers

- name: Lab servers outside Kubernetes
  stateful.mysql.replication_verify:
    name: lab
    connection: direct
    hosts:
      - host: 10.0.0.10
      - host: 10.0.0.11
    read_host: 10.0.0.20
    login_password: "{{ vault_root_password }}"
"""

RETURN = r"""
marker:
  description: The marker's id.
  returned: always
  type: str
  sample: 5f0c3e0d2a8b4b1e9f6c1d2e3f4a5b6c
primary:
  description: The server the marker was written on.
  returned: always
  type: str
  sample: mysql-0
propagation:
  description: Per replica, seconds from the write's commit until the marker could be read there.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "mysql-1", "seconds": 0.041}, {"name": "mysql-2", "seconds": 0.052}]
reads:
  description: Each read through the read Service, with the server that answered and whether it had the marker.
  returned: when O(read_attempts) > 0
  type: list
  elements: dict
  sample: [{"attempt": 1, "hostname": "mysql-2", "server_id": 102, "found": true}]
read_servers:
  description: Host names of the servers that answered through the read Service.
  returned: always
  type: list
  elements: str
  sample: [mysql-1, mysql-2]
writes_refused:
  description:
    - Per replica, whether it refused a write, as which user (C(login) or C(probe)), and the server's error.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "mysql-1", "refused": true, "user": "probe", "login_user_refused": false,
            "error": "error 1290: The MariaDB server is running with the --read-only option"}]
read_user:
  description: The account the in-pod read through the read Service logged in as.
  returned: when the read ran from a pod
  type: str
  sample: repl
elapsed:
  description: Seconds the whole verification took, from a monotonic clock.
  returned: always
  type: float
  sample: 3.2
queries:
  description: Statements run through PyMySQL, once each, passwords masked.
  returned: always
  type: list
  elements: str
  sample: ["CREATE DATABASE IF NOT EXISTS `stateful_verify`"]
"""

import re
import secrets
import time
import uuid

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.args import (
    K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, merge_specs,
)
from ansible_collections.stateful.mysql.plugins.module_utils.connection import (
    PYMYSQL_IMPORT_ERROR, ConnectError, Target, connect, error_text, exec_in_pod,
)
from ansible_collections.stateful.mysql.plugins.module_utils.replication import (
    Cluster, cluster_status,
)
from ansible_collections.stateful.mysql.plugins.module_utils.k8s import K8sError
from ansible_collections.stateful.mysql.plugins.module_utils.sql import READ_ONLY_ERRNOS, option_file, server_errno

_IDENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")

# Runs in the pod: the option file arrives on stdin (three lines) and lives in
# a mode-600 temporary file removed on exit; the password is never an argument.
READ_SCRIPT = r"""
set -eu
umask 077
f=$(mktemp)
trap 'rm -f "$f"' EXIT
head -n 3 > "$f"
client=
for c in mariadb mysql; do
  if command -v "$c" >/dev/null 2>&1; then client=$c; break; fi
done
[ -n "$client" ] || { echo "no mariadb or mysql client in the container" >&2; exit 127; }
# TLS, the server checked against the cluster CA, and its name too where the
# certificate holds the Service's (certificates made before it did, and a
# user's certificate, may hold only the pods' names). MariaDB's client checks
# the CA only along with the name.
tls=/run/stateful-mysql/tls
named=
if openssl x509 -in "$tls/tls.crt" -noout -ext subjectAltName 2>/dev/null | tr ', ' '\n\n' | grep -qx "DNS:$1"; then
  named=1
fi
if [ ! -f "$tls/ca.crt" ]; then
  # A server the role did not make (no cluster CA in the pod): the client's defaults.
  [ "$client" != mariadb ] || set -- "$@" --skip-ssl-verify-server-cert
elif [ "$client" = mariadb ]; then
  set -- "$@" --ssl --ssl-ca="$tls/ca.crt"
  if [ -n "$named" ]; then set -- "$@" --ssl-verify-server-cert; else set -- "$@" --skip-ssl-verify-server-cert; fi
else
  set -- "$@" --ssl-ca="$tls/ca.crt" --ssl-mode="$([ -n "$named" ] && echo VERIFY_IDENTITY || echo VERIFY_CA)"
fi
host=$1 port=$2 query=$3
shift 3
"$client" --defaults-extra-file="$f" "$@" --protocol=TCP --connect-timeout=10 -h "$host" -P "$port" -N -B -e "$query"
"""


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, dict(
        schema=dict(type="str", default="stateful_verify"),
        table=dict(type="str", default="marker"),
        timeout=dict(type="int", default=120),
        read_attempts=dict(type="int", default=6),
        read_service=dict(type="str"),
        read_port=dict(type="int", default=3306),
        read_from_pod=dict(type="str"),
        read_user=dict(type="str", default="repl"),
        read_password_secret_key=dict(type="str", default="replication-password", no_log=False),
        read_host=dict(type="str"),
        check_writes_refused=dict(type="bool", default=True),
        probe_user=dict(type="str", default="stateful_verify_probe"),
        keep_marker=dict(type="bool", default=False),
    ))


class Verify(object):
    def __init__(self, module, cluster):
        self.module = module
        self.cluster = cluster
        self.p = module.params
        self.fq = "`%s`.`%s`" % (self.p["schema"], self.p["table"])
        self.marker = uuid.uuid4().hex
        self.result = dict(changed=False, marker=self.marker, propagation=[], read_servers=[],
                           writes_refused=[], queries=cluster.queries)
        self.primary = cluster.targets[0]
        self.replicas = cluster.targets[1:]
        self.result["primary"] = self.primary.name
        self._read_password = None
        # Why the read user could not read (then the login user reads).
        self._read_refused = None

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)

    def primary_conn(self):
        try:
            return self.cluster.connection(self.primary)
        except ConnectError as e:
            self.fail("cannot connect to the primary %s: %s" % (self.primary.name, e))

    # -- 1. marker on the primary -------------------------------------
    def prepare(self):
        conn = self.primary_conn()
        p = self.p
        try:
            schemas = conn.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                                 (p["schema"],))
            tables = conn.query("SELECT TABLE_NAME FROM information_schema.TABLES "
                                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (p["schema"], p["table"]))
            if not schemas:
                conn.execute("CREATE DATABASE IF NOT EXISTS `%s`" % p["schema"])
            if not tables:
                conn.execute("CREATE TABLE IF NOT EXISTS %s (id VARCHAR(64) NOT NULL PRIMARY KEY, "
                             "written_at DATETIME(6) NOT NULL, source_server_id INT UNSIGNED NOT NULL, "
                             "note VARCHAR(255) NULL) ENGINE=InnoDB" % self.fq)
            self.result["changed"] = not schemas or not tables
        except Exception as e:
            self.fail("cannot prepare the marker table on %s: %s" % (self.primary.name, error_text(e)))

    def write_marker(self):
        conn = self.primary_conn()
        try:
            conn.execute("INSERT INTO %s (id, written_at, source_server_id, note) "
                         "VALUES (%%s, NOW(6), @@server_id, 'stateful.mysql.replication_verify')" % self.fq,
                         (self.marker,))
        except Exception as e:
            self.fail("cannot write the marker on %s: %s" % (self.primary.name, error_text(e)))
        return time.monotonic()

    # -- 2. propagation -----------------------------------------------
    def wait_propagation(self, written):
        pending = list(self.replicas)
        seen = {}
        last_error = {}
        deadline = written + self.p["timeout"]
        while pending:
            for target in list(pending):
                try:
                    conn = self.cluster.connection(target)
                    found = conn.query("SELECT id FROM %s WHERE id = %%s" % self.fq, (self.marker,))
                except Exception as e:
                    self.cluster.drop(target)
                    last_error[target.name] = error_text(e)
                    continue
                if found:
                    seen[target.name] = round(time.monotonic() - written, 3)
                    pending.remove(target)
            if not pending:
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.result["propagation"] = [dict(name=t.name, seconds=seen[t.name]) for t in self.replicas
                                      if t.name in seen]
        if pending:
            dummy, reports = cluster_status(self.cluster, None)
            status = dict((r["name"], r) for r in reports)
            why = []
            for t in pending:
                reasons = list(status.get(t.name, {}).get("problems") or [])
                if t.name in last_error:
                    reasons.append("last query error: %s" % last_error[t.name])
                why.append("%s (%s)" % (t.name, ", ".join(reasons) or "replication running but behind"))
            self.fail("marker %s did not reach %s within %ss" % (self.marker, "; ".join(why), self.p["timeout"]))

    # -- 3. reads through the read Service -----------------------------
    def read_checks(self):
        p = self.p
        if p["read_attempts"] <= 0:
            return
        service = p["read_service"] or "%s-read" % p["name"]
        query = ("SELECT @@hostname, @@server_id, (SELECT COUNT(*) FROM %s WHERE id = '%s')"
                 % (self.fq, self.marker))
        reads = []
        for attempt in range(1, p["read_attempts"] + 1):
            try:
                if p["connection"] == "direct":
                    row = self._read_direct(service, query)
                else:
                    row = self._read_exec(service, query)
                reads.append(dict(attempt=attempt, hostname=row[0], server_id=int(row[1]), found=int(row[2]) > 0))
            except Exception as e:
                reads.append(dict(attempt=attempt, error=str(e) if isinstance(e, ConnectError) else error_text(e),
                                  found=False))
        self.result["reads"] = reads
        self.result["read_servers"] = sorted(set(r["hostname"] for r in reads if r.get("hostname")))
        bad = [r for r in reads if not r["found"]]
        if bad:
            self.fail("reads through Service %s: %d of %d without the marker: %s" % (
                service, len(bad), len(reads),
                "; ".join("attempt %d: %s" % (r["attempt"], r.get("error") or "answered by %s without the marker"
                                              % r.get("hostname")) for r in bad)))

    def _read_direct(self, service, query):
        p = self.p
        host = p["read_host"] or "%s.%s.svc.%s" % (service, p["namespace"], p["cluster_domain"])
        target = Target("read", -1, host=host, port=p["read_port"])
        conn = connect(target, p["login_user"], self.cluster.password, timeout=p["connect_timeout"],
                       queries=self.cluster.queries)
        try:
            with conn.conn.cursor() as cur:
                cur.execute(query)
                return cur.fetchone()
        finally:
            conn.close()

    def _read_login(self):
        """The account and password of the in-pod read: the read user's, from
        the login Secret, until it could not read (then the login user's)."""
        p = self.p
        if not p["read_user"] or p["read_user"] == p["login_user"] or self._read_refused:
            return p["login_user"], self.cluster.password
        if self._read_password is None:
            secret = p["login_password_secret"] or "%s-credentials" % p["name"]
            try:
                self._read_password = self.cluster.k8s.read_secret_value(secret, p["namespace"],
                                                                         p["read_password_secret_key"])
            except K8sError as e:
                self._read_refused = str(e)
                return p["login_user"], self.cluster.password
            self.module.no_log_values.add(self._read_password)
        return p["read_user"], self._read_password

    def _read_exec(self, service, query):
        p = self.p
        pod = p["read_from_pod"] or "%s-0" % p["name"]
        argv = ["sh", "-c", READ_SCRIPT, "stateful-mysql-read", service, str(p["read_port"]), query]
        while True:
            user, password = self._read_login()
            rc, out, err = exec_in_pod(self.cluster.core_api, pod, p["namespace"], argv,
                                       stdin_data=option_file(user, password),
                                       timeout=p["connect_timeout"] + 30)
            # 1045: no such account (a server the role did not make); 1142/1044:
            # a cluster made before the read user could read the schema, which
            # still has the remote root account (root's only host then).
            if rc != 0 and user != p["login_user"] and re.search(r"ERROR (1045|1142|1044)", err or ""):
                self._read_refused = "as %s: %s" % (user, (err or out).strip()[-200:])
                continue
            self.result["read_user"] = user
            break
        if rc != 0:
            raise ConnectError("client in pod %s exited %s: %s%s" % (
                pod, rc, (err or out).strip()[-300:],
                " (as %s; before that %s)" % (user, self._read_refused) if self._read_refused else ""))
        lines = [ln for ln in out.splitlines() if ln.strip()]
        if not lines:
            raise ConnectError("client in pod %s printed nothing" % pod)
        return lines[-1].split("\t")

    # -- 4. replicas refuse writes --------------------------------------
    def write_checks(self):
        p = self.p
        if not p["check_writes_refused"]:
            return
        out = []
        for target in self.replicas:
            entry = dict(name=target.name)
            try:
                conn = self.cluster.connection(target)
                refused, error = self._try_write(conn)
            except ConnectError as e:
                refused, error = None, str(e)
            entry.update(login_user_refused=refused, refused=bool(refused), user="login", error=error)
            if refused is False:
                entry["user"] = "probe"
                try:
                    refused, error = self._try_write_as_probe(conn, target)
                except ConnectError as e:
                    refused, error = None, "probe user: %s" % e
                entry.update(refused=bool(refused), error=error)
            out.append(entry)
        self.result["writes_refused"] = out
        bad = [e for e in out if not e["refused"]]
        if bad:
            self.fail("replicas accepting writes (or not checkable): %s" % "; ".join(
                "%s (%s)" % (e["name"], e["error"] or "write accepted as %s user" % e["user"]) for e in bad))

    def _try_write_as_probe(self, conn, target):
        """The write check as an unprivileged user that exists on this replica only. The login user
        could write here (it bypasses read_only), so it may create that user; sql_log_bin=0 keeps the
        user and its password out of the binary log and adds no GTID to the replica."""
        p = self.p
        password = secrets.token_urlsafe(24)
        self.module.no_log_values.add(password)
        user = p["probe_user"]
        try:
            conn.execute("SET SESSION sql_log_bin = 0")
            try:
                conn.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password),
                             secret_positions=(1,))
                conn.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password), secret_positions=(1,))
                conn.execute("GRANT SELECT, INSERT ON `%s`.* TO %%s@'%%%%'" % p["schema"], (user,))
                probe = connect(target, user, password, timeout=p["connect_timeout"],
                                core_api=self.cluster.core_api, queries=self.cluster.queries, tls=self.cluster.tls)
                try:
                    return self._try_write(probe)
                finally:
                    probe.close()
            finally:
                conn.execute("DROP USER IF EXISTS %s@'%%'", (user,))
                conn.execute("SET SESSION sql_log_bin = 1")
        except ConnectError:
            raise
        except Exception as e:
            raise ConnectError("cannot set up the probe user on %s: %s" % (target.name, error_text(e)))

    def _try_write(self, conn):
        """``(True, error)`` when refused as read-only, ``(False, None)`` when accepted (rolled back)."""
        sql = ("INSERT INTO %s (id, written_at, source_server_id, note) VALUES (%%s, NOW(6), @@server_id, "
               "'write probe, always rolled back')" % self.fq)
        try:
            conn.execute("START TRANSACTION")
            try:
                conn.execute(sql, ("probe-" + self.marker,))
            finally:
                conn.execute("ROLLBACK")
        except Exception as e:
            if server_errno(e) in READ_ONLY_ERRNOS:
                return True, error_text(e)
            raise ConnectError("write check failed on %s: %s" % (conn.target.name, error_text(e)))
        return False, None

    # -- 5. cleanup ---------------------------------------------------
    def cleanup(self):
        try:
            conn = self.cluster.connection(self.primary)
            if not self.p["keep_marker"]:
                conn.execute("DELETE FROM %s WHERE id = %%s" % self.fq, (self.marker,))
        except Exception as e:
            self.module.warn("cleanup on %s failed: %s" % (self.primary.name, error_text(e)))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=False)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    p = module.params
    for key in ("schema", "table", "probe_user"):
        if not _IDENT.match(p[key]):
            module.fail_json(msg="%s must be 1-64 letters, digits or _: %r" % (key, p[key]))
    if p["connection"] == "port_forward" and p["read_attempts"] > 0:
        need_k8s = True
    else:
        need_k8s = None
    start = time.monotonic()
    cluster = Cluster(module, need_k8s=need_k8s)
    verify = Verify(module, cluster)
    try:
        verify.prepare()
        try:
            written = verify.write_marker()
            verify.wait_propagation(written)
            verify.read_checks()
            verify.write_checks()
        finally:
            verify.cleanup()
    finally:
        cluster.close()
    verify.result["elapsed"] = round(time.monotonic() - start, 3)
    module.exit_json(**verify.result)


if __name__ == "__main__":
    main()
