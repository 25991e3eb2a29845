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

import base64
import re
import time

from ansible_collections.stateful.mysql.plugins.module_utils.connection import (
    MYSQL_PORT, ConnectError, Target, cluster_tls, connect, error_text, exec_in_pod,
)
from ansible_collections.stateful.mysql.plugins.module_utils.k8s import ApiException, K8s, K8sError, api_error_text
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


class PodServers(object):
    """What credentials_rotate and mysql_accounts share: the servers of one
    StatefulSet reached as root through the port-forward (TLS verified
    against the cluster CA), Secrets read with their values kept out of the
    log, and the unlogged runner."""

    def __init__(self, module, k8s):
        self.module = module
        self.p = module.params
        self.k8s = k8s
        self.ns = self.p["namespace"]
        self.queries = []
        self.conns = {}
        self.runner = UnloggedRunner(k8s.core, self.ns, self.queries)
        self.tls = cluster_tls(k8s.core, self.p["name"], self.ns)

    def read_secret(self, name, missing_ok=False):
        """``(object, decoded data)``; ``(None, {})`` for a missing one when ``missing_ok``."""
        try:
            obj = self.k8s.core.read_namespaced_secret(name, self.ns)
        except ApiException as e:
            if e.status == 404 and missing_ok:
                return None, {}
            raise AccountError("cannot read Secret %s/%s: %s" % (self.ns, name, api_error_text(e)))
        data = dict((k, base64.b64decode(v).decode("utf-8")) for k, v in (obj.data or {}).items())
        for value in data.values():
            self.module.no_log_values.add(value)
        return obj, data

    def write_secret(self, name, data, obj=None, labels=None):
        """Create Secret ``name`` holding ``data`` (text values), or replace the
        data of ``obj``, the Secret as read: the API refuses the replace when
        it changed since (its resourceVersion). Raises ApiException."""
        body = dict((k, base64.b64encode(v.encode("utf-8")).decode("ascii")) for k, v in data.items())
        if obj is None:
            from kubernetes import client as k8s_client
            return self.k8s.core.create_namespaced_secret(self.ns, k8s_client.V1Secret(
                metadata=k8s_client.V1ObjectMeta(name=name, namespace=self.ns, labels=labels),
                type="Opaque", data=body))
        obj.data = body
        obj.string_data = None
        return self.k8s.core.replace_namespaced_secret(name, self.ns, obj)

    def target(self, pod):
        return Target(pod, int(pod.rsplit("-", 1)[1]), port=MYSQL_PORT, pod=pod, namespace=self.ns)

    def login(self, pod, password):
        """A new connection as root (ConnectError when refused)."""
        return connect(self.target(pod), "root", password, timeout=self.p["connect_timeout"],
                       core_api=self.k8s.core, queries=self.queries, tls=self.tls)

    def connection(self, pod, passwords):
        """Root's connection to a pod's server, kept: the first password it takes."""
        if pod in self.conns:
            return self.conns[pod]
        last = None
        for password in passwords:
            try:
                self.conns[pod] = self.login(pod, password)
                return self.conns[pod]
            except ConnectError as e:
                last = e
                if not str(e).startswith("error 1045"):
                    break
        raise AccountError("cannot log in to %s as root: %s" % (pod, last))

    def close(self):
        for conn in self.conns.values():
            conn.close()


def run_module(module, servers_class, run, failure_hint=""):
    """The main() of the account modules: ``run(module, servers)`` with the
    statements it ran (passwords masked) and its time in the result."""
    started = time.monotonic()
    try:
        k8s = K8s(module.params)
    except K8sError as e:
        module.fail_json(msg=str(e))
    where = "%s/%s" % (module.params["namespace"], module.params["name"])
    servers, result = None, None
    try:
        servers = servers_class(module, k8s)
        result = run(module, servers)
    except AccountError as e:
        module.fail_json(msg="%s: %s" % (where, e), queries=servers.queries if servers else [],
                         elapsed=round(time.monotonic() - started, 3))
    except Exception as e:
        module.fail_json(msg="%s: %s%s" % (where, error_text(e), failure_hint),
                         queries=servers.queries if servers else [], elapsed=round(time.monotonic() - started, 3))
    finally:
        if servers is not None:
            servers.close()
        k8s.close()
    result.update(queries=servers.queries, elapsed=round(time.monotonic() - started, 3))
    module.exit_json(**result)


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
