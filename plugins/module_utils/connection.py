# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reaching the servers of a StatefulSet: which ones, how, and as whom.

``port_forward`` gives PyMySQL a socket through the API server's port-forward
(``kubernetes.stream.portforward``), so a kubeconfig is all a control node
needs. ``direct`` opens TCP connections, for control nodes inside the pod
network or servers outside Kubernetes (the integration tests). Either way, a
server known as a pod of the StatefulSet is verified against the cluster CA
and its pod's name when the CA is at hand (``cluster_tls``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket
import time
import traceback

from ansible_collections.stateful.mysql.plugins.module_utils.sql import Dialect, ServerVersion, render_query

PYMYSQL_IMPORT_ERROR = None
try:
    import pymysql
    import pymysql.cursors
except ImportError:  # pragma: no cover - reported by the module
    pymysql = None
    PYMYSQL_IMPORT_ERROR = traceback.format_exc()

MYSQL_PORT = 3306
CONTAINER = "mysql"


class ConnectError(Exception):
    pass


class Target(object):
    """One server: its reported name, ordinal, and how to reach it."""

    def __init__(self, name, ordinal, host=None, port=MYSQL_PORT, pod=None, namespace=None, tls_name=None):
        self.name = name
        self.ordinal = ordinal
        self.host = host
        self.port = port
        self.pod = pod
        self.namespace = namespace
        # The name its certificate is checked against (server_name), when known.
        self.tls_name = tls_name or (server_name(pod, pod.rsplit("-", 1)[0], namespace) if pod and namespace else None)

    @property
    def expected_role(self):
        return "primary" if self.ordinal == 0 else "replica"

    def __repr__(self):
        return "Target(%r, %r, host=%r, port=%r)" % (self.name, self.ordinal, self.host, self.port)


def pod_ordinal(pod_name, statefulset):
    """The ordinal of ``<statefulset>-<n>``, or None for any other name."""
    match = re.match(r"^%s-(\d+)$" % re.escape(statefulset), pod_name or "")
    return int(match.group(1)) if match else None


def resolve_targets(params, replicas=None):
    """The servers to talk to, in ordinal order (0, the primary, first)."""
    name = params["name"]
    namespace = params.get("namespace") or "default"
    if params.get("connection") == "direct" and params.get("hosts"):
        out = []
        for i, h in enumerate(params["hosts"]):
            label = h.get("name") or "%s-%d" % (name, i)
            # A server named as a pod of the StatefulSet is checked as that pod.
            tls_name = server_name(label, name, namespace) if pod_ordinal(label, name) is not None else None
            out.append(Target(label, i, host=h["host"], port=h.get("port") or MYSQL_PORT, tls_name=tls_name))
        return out
    if replicas is None:
        raise ValueError("the replica count is needed to list the pods")
    out = []
    for i in range(int(replicas)):
        pod = "%s-%d" % (name, i)
        if params.get("connection") == "direct":
            host = "%s.%s.%s.svc.%s" % (pod, name, namespace, params.get("cluster_domain") or "cluster.local")
            out.append(Target(pod, i, host=host, port=MYSQL_PORT, pod=pod, namespace=namespace))
        else:
            out.append(Target(pod, i, port=MYSQL_PORT, pod=pod, namespace=namespace))
    return out


class ServerConnection(object):
    """A PyMySQL connection to one target, recording the statements it runs."""

    def __init__(self, target, conn, forward=None, queries=None):
        self.target = target
        self.conn = conn
        self._forward = forward
        self.queries = queries if queries is not None else []
        self._dialect = None

    @property
    def dialect(self):
        if self._dialect is None:
            version = self.scalar("SELECT VERSION()")
            self._dialect = Dialect(ServerVersion.parse(version))
        return self._dialect

    def _record(self, sql, args, secret_positions):
        entry = render_query(sql, args, secret_positions)
        if entry not in self.queries:
            self.queries.append(entry)

    def query(self, sql, args=None, secret_positions=()):
        """Rows as dicts (column name -> value)."""
        self._record(sql, args, secret_positions)
        with self.conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(sql, args)
            return list(cur.fetchall() or [])

    def execute(self, sql, args=None, secret_positions=()):
        self._record(sql, args, secret_positions)
        with self.conn.cursor() as cur:
            return cur.execute(sql, args)

    def scalar(self, sql, args=None):
        self._record(sql, args, ())
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
            return row[0] if row else None

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass
        if self._forward is not None:
            try:
                self._forward.close()
            except Exception:
                pass
            self._forward = None


def tls_context(ca_pem):
    """TLS that verifies a server against the cluster's CA (PEM text, a
    bundle during a rotation) and the name its certificate gives it
    (``server_name``). The CA is the cluster's own anchor: Python 3.13's
    strict RFC 5280 profile checks are left off, so that a CA an older
    version made, with fewer extensions, is still trusted."""
    import ssl
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    return ctx


def server_name(pod, statefulset, namespace):
    """The name a pod's certificate is checked against: it covers
    *.<statefulset>.<namespace>.svc (the cluster certificate's own rule)."""
    return "%s.%s.%s.svc" % (pod, statefulset, namespace)


def cluster_tls(core_api, statefulset, namespace):
    """The TLS context for a cluster's servers, from ca.crt of Secret
    <statefulset>-tls; None when the cluster has no such Secret."""
    import base64
    from ansible_collections.stateful.mysql.plugins.module_utils.k8s import ApiException
    try:
        secret = core_api.read_namespaced_secret("%s-tls" % statefulset, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    ca = (secret.data or {}).get("ca.crt")
    return tls_context(base64.b64decode(ca).decode("ascii")) if ca else None


def _pymysql_args(user, password, timeout, database=None):
    return dict(user=user, password=password or "", database=database,
                connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
                autocommit=True, charset="utf8mb4")


def connect(target, user, password, timeout=10, core_api=None, queries=None, database=None, attempts=3, tls=None):
    """Open a :class:`ServerConnection` to ``target``; raises ConnectError.

    With ``tls`` (``tls_context``), a port-forward connection is TLS, the
    server verified against the CA and ``server_name`` of its pod.

    Through a port-forward, a handshake whose tunnel breaks (errors 2003 and
    2013) is tried again on a new tunnel, up to ``attempts`` times; any other
    error (a refused login, 1045) is final.
    """
    tries = 1 if target.host else max(1, attempts)
    for attempt in range(tries):
        try:
            return _connect(target, user, password, timeout, core_api, queries, database, tls)
        except ConnectError as e:
            if attempt + 1 >= tries or not str(e).startswith(("error 2003", "error 2013")):
                raise
            time.sleep(1)


def _connect(target, user, password, timeout, core_api, queries, database, tls=None):
    if pymysql is None:
        raise ConnectError("the PyMySQL Python library is required")
    forward = None
    try:
        if target.host and tls and target.tls_name:
            # The address is dialled; the certificate is checked for the pod's name.
            sock = socket.create_connection((target.host, target.port), timeout)
            conn = pymysql.connections.Connection(host=target.tls_name, port=target.port, defer_connect=True,
                                                  **dict(_pymysql_args(user, password, timeout, database), ssl=tls))
            try:
                conn.connect(sock=sock)
            except Exception:
                sock.close()
                raise
        elif target.host:
            conn = pymysql.connections.Connection(host=target.host, port=target.port,
                                                  **_pymysql_args(user, password, timeout, database))
        else:
            if core_api is None:
                raise ConnectError("port_forward needs the Kubernetes API")
            from kubernetes.stream import portforward
            forward = portforward(core_api.connect_get_namespaced_pod_portforward,
                                  target.pod, target.namespace, ports=str(target.port))
            sock = forward.socket(target.port)
            # The host is only the name TLS checks: the socket is the tunnel's.
            host = target.tls_name if tls else target.pod
            extra = dict(ssl=tls) if tls else {}
            conn = pymysql.connections.Connection(host=host, port=target.port, defer_connect=True,
                                                  **dict(_pymysql_args(user, password, timeout, database), **extra))
            try:
                conn.connect(sock=sock)
            except Exception as e:
                detail = None
                try:
                    detail = forward.error(target.port)
                except Exception:
                    pass
                text = _err_text(e)
                if text.startswith("error 1045"):
                    text += (" (through the port-forward the server sees the client at 127.0.0.1: an account"
                             " such as '%s'@'127.0.0.1' takes precedence over '%s'@'%%')" % (user, user))
                raise ConnectError("%s%s" % (text, " (port-forward: %s)" % detail.strip() if detail else ""))
        return ServerConnection(target, conn, forward, queries)
    except ConnectError:
        if forward is not None:
            forward.close()
        raise
    except Exception as e:
        if forward is not None:
            try:
                forward.close()
            except Exception:
                pass
        raise ConnectError(_err_text(e))


def _err_text(e):
    if pymysql is not None and isinstance(e, pymysql.err.MySQLError) and len(getattr(e, "args", ())) >= 2:
        return "error %s: %s" % (e.args[0], e.args[1])
    status = getattr(e, "status", None)
    if status:
        reason = getattr(e, "reason", "") or ""
        return "Kubernetes API %s %s" % (status, reason)
    return "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__


def error_text(e):
    return _err_text(e)


def exec_in_pod(core_api, pod, namespace, command, stdin_data=None, container=CONTAINER, timeout=60):
    """Run ``command`` (argv list) in a pod's container; feed ``stdin_data``.

    Returns ``(rc, stdout, stderr)``. Secrets belong in ``stdin_data``, never in
    ``command``. The command must not wait for end-of-file on stdin (the exec
    protocol cannot always signal it): read a known number of lines.
    """
    from kubernetes.stream import stream
    resp = stream(core_api.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                  command=command, stdin=stdin_data is not None, stdout=True, stderr=True,
                  tty=False, _preload_content=False)
    out, err = [], []
    try:
        if stdin_data is not None:
            resp.write_stdin(stdin_data)
        deadline = time.monotonic() + timeout
        while resp.is_open():
            if time.monotonic() > deadline:
                raise ConnectError("command in pod %s/%s did not finish within %ss" % (namespace, pod, timeout))
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
        if resp.peek_stdout():
            out.append(resp.read_stdout())
        if resp.peek_stderr():
            err.append(resp.read_stderr())
        rc = resp.returncode
    finally:
        resp.close()
    return rc, "".join(out), "".join(err)
