# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Account statements run on every server of a cluster without a binary log
(credentials_rotate, mysql_accounts), and the privilege lists of
mysql_accounts: parsed, compared with SHOW GRANTS, turned into GRANTs.

Account statements carry passwords (MariaDB binlogs ``PASSWORD('...')`` in
plain text, MySQL a hash), so they run on each server with
``sql_log_bin=0`` instead of replicating. A replica refuses them while
read-only: on MySQL its ``super_read_only`` is lifted for these statements
only; on MariaDB they run in the pod as ``root@localhost``, whose
``READ_ONLY ADMIN`` passes ``read_only`` (``root@'%'`` lacks it, on purpose).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.stateful.mysql.plugins.module_utils.connection import exec_in_pod
from ansible_collections.stateful.mysql.plugins.module_utils.k8s import ApiException
from ansible_collections.stateful.mysql.plugins.module_utils.sql import is_on, render_query

try:
    from pymysql.converters import escape_string
except ImportError:  # pragma: no cover - reported by the modules
    escape_string = None

SCRIPT = "/etc/stateful-mysql/scripts/credentials.sh"
IDENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")
USER_NAME = re.compile(r"^[A-Za-z0-9_]{1,32}$")
# Privileges an application account may be given on a database or table.
PRIVILEGES = frozenset((
    "ALL PRIVILEGES", "ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES",
    "CREATE VIEW", "DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES",
    "SELECT", "SHOW VIEW", "TRIGGER", "UPDATE",
))
# The accounts a server has of its own, besides the cluster's (root, the
# replication and clone users) and replication_verify's probe.
SYSTEM_USERS = ("mysql.sys", "mysql.session", "mysql.infoschema", "mariadb.sys", "PUBLIC", "stateful_verify_probe")
SYSTEM_DATABASES = ("mysql", "sys", "information_schema", "performance_schema", "stateful_verify")


class AccountError(Exception):
    pass


def secret_positions(args):
    """Which arguments of an account statement are passwords (all after user and host)."""
    return tuple(range(2, len(args)))


class UnloggedRunner(object):
    """Runs account statements on one server, unlogged (see the module doc)."""

    def __init__(self, core_api, namespace, queries):
        self.core_api = core_api
        self.namespace = namespace
        self.queries = queries

    def run(self, conn, statements, positions=secret_positions):
        """``statements``: ``(sql, args)`` pairs; ``positions(args)`` says which args are secret."""
        if not statements:
            return
        if conn.dialect.server.is_mariadb:
            self.in_pod(conn.target.pod, [("SET SESSION sql_log_bin = 0", ())] + list(statements), positions)
            return
        was = is_on(conn.scalar("SELECT @@GLOBAL.super_read_only"))
        conn.execute("SET SESSION sql_log_bin = 0")
        try:
            if was:
                conn.execute("SET GLOBAL super_read_only = OFF")
            for sql, args in statements:
                conn.execute(sql, args, secret_positions=positions(args))
        finally:
            if was:
                conn.execute("SET GLOBAL super_read_only = ON")
            conn.execute("SET SESSION sql_log_bin = 1")

    def in_pod(self, pod, statements, positions=secret_positions):
        """Statements run by root over the pod's socket; their text goes on stdin."""
        lines = []
        for sql, args in statements:
            masked = render_query(sql, args, positions(args))
            if masked not in self.queries:
                self.queries.append(masked)
            lines.append((sql % tuple("'%s'" % escape_string(a) for a in args)) + ";")
        rc, out, err = exec_in_pod(self.core_api, pod, self.namespace, ["/bin/bash", SCRIPT, "sql"],
                                   stdin_data="%d\n%s\n" % (len(lines), "\n".join(lines)))
        if rc != 0:
            raise AccountError("%s: the account statements failed (%s): %s" % (pod, rc, (err or out).strip()[-400:]))


def ready_pods(k8s, name, namespace, before):
    """Every pod of the StatefulSet, each Ready; else AccountError naming
    those that are not (nothing is changed on a cluster that is not whole)."""
    sts = k8s.read_statefulset(name, namespace)
    if sts is None:
        raise AccountError("StatefulSet %s/%s not found" % (namespace, name))
    replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
    pods, waiting = [], []
    for i in range(replicas):
        pod_name = "%s-%d" % (name, i)
        try:
            pod = k8s.core.read_namespaced_pod(pod_name, namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            waiting.append("%s (no pod)" % pod_name)
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        if not ready or pod.metadata.deletion_timestamp:
            waiting.append("%s (not Ready)" % pod_name)
        pods.append(pod)
    if waiting:
        raise AccountError("every pod must be Ready before %s, and %s %s not: nothing was changed; wait for them"
                           " (verify.yml says why) and run again"
                           % (before, ", ".join(waiting), "is" if len(waiting) == 1 else "are"))
    return pods


# -- privileges -------------------------------------------------------------

def parse_privileges(entries):
    """``["shop.*:SELECT,INSERT", "*.*:PROCESS"]`` -> ``{"shop.*": {"SELECT", "INSERT"}, ...}``.

    Raises AccountError naming the entry that cannot be granted."""
    out = {}
    for entry in entries or ():
        if not isinstance(entry, str) or ":" not in entry:
            raise AccountError("privilege %r: write it as DATABASE.TABLE:PRIV[,PRIV...], e.g. shop.*:SELECT,INSERT"
                               % (entry,))
        obj, privs = entry.rsplit(":", 1)
        parts = obj.split(".")
        if len(parts) != 2 or not all(p == "*" or IDENT.match(p) for p in parts) or (parts[0] == "*" and parts[1] != "*"):
            raise AccountError("privilege %r: the object must be *.*, DATABASE.* or DATABASE.TABLE" % entry)
        if parts[0] in SYSTEM_DATABASES:
            raise AccountError("privilege %r: %s is the server's own database" % (entry, parts[0]))
        wanted = set(normalize_privilege(p) for p in privs.split(",") if p.strip())
        bad = sorted(wanted - PRIVILEGES)
        if bad or not wanted:
            allowed = ", ".join(sorted(PRIVILEGES))
            raise AccountError("privilege %r: %s not among %s" % (entry, ", ".join(bad) or "none given", allowed))
        out.setdefault(obj, set()).update(wanted)
    return out


def normalize_privilege(text):
    words = " ".join(text.upper().split())
    return "ALL PRIVILEGES" if words == "ALL" else words


_GRANT = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<obj>\S+) TO ", re.S)


def granted(show_grants_rows):
    """What SHOW GRANTS says an account holds, as ``parse_privileges`` gives
    it (USAGE alone is nothing; GRANT OPTION shows as a privilege)."""
    out = {}
    for row in show_grants_rows:
        m = _GRANT.match(row)
        if not m:
            continue
        obj = m.group("obj").replace("`", "")
        privs = set(normalize_privilege(p) for p in m.group("privs").split(","))
        if row.rstrip().endswith("WITH GRANT OPTION"):
            privs.add("GRANT OPTION")
        privs.discard("USAGE")
        if privs:
            out.setdefault(obj, set()).update(privs)
    return out


def quote_object(obj):
    return ".".join(p if p == "*" else "`%s`" % p for p in obj.split("."))


def grant_statements(user, host, wanted, held):
    """``(sql, args)`` that turn ``held`` into ``wanted``: nothing when equal,
    else a REVOKE of everything and a GRANT per object."""
    if wanted == held:
        return []
    out = []
    if held:
        out.append(("REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s@%s", (user, host)))
    for obj in sorted(wanted):
        out.append(("GRANT %s ON %s TO %%s@%%s" % (", ".join(sorted(wanted[obj])), quote_object(obj)), (user, host)))
    return out
