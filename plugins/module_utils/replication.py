# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication state of the servers of a StatefulSet, shared by the modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.stateful.mysql.plugins.module_utils.connection import (
    ConnectError, cluster_tls, connect, error_text, resolve_targets,
)
from ansible_collections.stateful.mysql.plugins.module_utils.k8s import K8s, K8sError
from ansible_collections.stateful.mysql.plugins.module_utils.sql import (
    BINLOGS_PURGED, PRIMARY_BEHIND, RECOPY_HINT, RESEED_HINT, broken_reason, errant_gtids, is_on,
    normalize_binlog_status, normalize_replica_status, primary_lacks, primary_problems, replica_problems,
)

# What the pods say when the primary refuses to serve (init.sh).
_FENCE_WORDS = "reseed_primary.yml"


def wait_until(check, timeout, sleep=2.0, clock=time.monotonic, sleeper=time.sleep):
    """Call ``check()`` until it returns ``(True, value)`` or ``timeout`` seconds pass.

    Returns ``(done, value, elapsed)``; ``value`` is the last one ``check``
    returned, so a caller can say why it timed out.
    """
    start = clock()
    while True:
        done, value = check()
        elapsed = clock() - start
        if done:
            return True, value, elapsed
        if elapsed >= timeout:
            return False, value, elapsed
        sleeper(max(0.0, min(sleep, timeout - elapsed)))


class Cluster(object):
    """Targets of one StatefulSet, the login, and one open connection per target."""

    def __init__(self, module, need_k8s=None):
        self.module = module
        p = module.params
        self.params = p
        self.queries = []
        self.k8s = None
        direct_hosts = p.get("connection") == "direct" and p.get("hosts")
        if need_k8s is None:
            need_k8s = not (direct_hosts and p.get("login_password") is not None)
        if need_k8s:
            try:
                self.k8s = K8s(p)
            except K8sError as e:
                module.fail_json(msg=str(e))
        self.password = p.get("login_password")
        if self.password is None:
            secret = p.get("login_password_secret") or "%s-credentials" % p["name"]
            if self.k8s is None:
                module.fail_json(msg="login_password is required when the Kubernetes API is not used")
            try:
                self.password = self.k8s.read_secret_value(secret, p["namespace"], p["login_password_secret_key"])
            except K8sError as e:
                module.fail_json(msg=str(e))
            module.no_log_values.add(self.password)
        self.statefulset = None
        replicas = None
        if not direct_hosts:
            try:
                self.statefulset = self.k8s.read_statefulset(p["name"], p["namespace"])
            except Exception as e:
                module.fail_json(msg="cannot read StatefulSet %s/%s: %s" % (p["namespace"], p["name"], error_text(e)))
            if self.statefulset is None:
                module.fail_json(msg="StatefulSet %s/%s not found" % (p["namespace"], p["name"]))
            replicas = self.statefulset.spec.replicas if self.statefulset.spec.replicas is not None else 1
        self.targets = resolve_targets(p, replicas)
        self._conns = {}
        # Every server known as a pod (through the port-forward, at its DNS
        # name, or an address in hosts named as the pod) is verified against
        # the cluster's CA and its pod's name.
        self.tls = None
        if self.k8s is not None:
            try:
                self.tls = cluster_tls(self.k8s.core, p["name"], p["namespace"])
            except Exception as e:
                module.fail_json(msg="cannot read Secret %s/%s-tls: %s" % (p["namespace"], p["name"], error_text(e)))

    @property
    def core_api(self):
        return self.k8s.core if self.k8s is not None else None

    def connection(self, target, fresh=False):
        conn = self._conns.get(target.name)
        if conn is not None and fresh:
            conn.close()
            conn = None
        if conn is None:
            conn = connect(target, self.params["login_user"], self.password,
                           timeout=self.params["connect_timeout"], core_api=self.core_api,
                           queries=self.queries, tls=self.tls)
            self._conns[target.name] = conn
        return conn

    def drop(self, target):
        conn = self._conns.pop(target.name, None)
        if conn is not None:
            conn.close()

    def close(self):
        for name in list(self._conns):
            self._conns.pop(name).close()
        if self.k8s is not None:
            self.k8s.close()


def server_status(cluster, target, max_lag):
    """Status of one server; never raises. ``problems`` empty means healthy."""
    report = {
        "name": target.name,
        "ordinal": target.ordinal,
        "expected_role": target.expected_role,
        "reachable": False,
        "broken": None,
    }
    try:
        conn = cluster.connection(target)
        dialect = conn.dialect
        variables = conn.query(dialect.variables())[0]
        replica_rows = [normalize_replica_status(r) for r in conn.query(dialect.replica_status())]
        binlog = None
        if is_on(variables.get("log_bin")):
            rows = conn.query(dialect.binlog_status())
            binlog = normalize_binlog_status(rows[0]) if rows else None
    except Exception as e:
        cluster.drop(target)
        text = str(e) if isinstance(e, ConnectError) else error_text(e)
        report["problems"] = ["cannot query %s: %s" % (target.name, text)]
        report["healthy"] = False
        refusal = init_refusal(cluster, target)
        if refusal and target.expected_role == "primary":
            # Fenced: it will not serve until recovered; waiting cannot heal it.
            report["broken"] = PRIMARY_BEHIND
            report["problems"] = ["refuses to serve: " + refusal]
        return report
    report["reachable"] = True
    report["flavor"] = dialect.server.flavor
    report["version"] = dialect.server.raw
    report["hostname"] = variables.get("hostname")
    report["server_id"] = int(variables["server_id"]) if variables.get("server_id") is not None else None
    report["read_only"] = is_on(variables.get("read_only"))
    report["super_read_only"] = is_on(variables.get("super_read_only")) if dialect.has_super_read_only else None
    gtid = {}
    for key in ("gtid_mode", "gtid_executed", "gtid_current_pos", "gtid_binlog_pos", "gtid_slave_pos",
                "gtid_strict_mode"):
        if key in variables:
            value = variables[key]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            gtid[key] = value.replace("\n", "") if isinstance(value, str) else value
    report["gtid"] = gtid
    report["server_uuid"] = variables.get("server_uuid")
    report["binlog"] = binlog
    configured = [r for r in replica_rows if r.get("source_host")]
    replica = configured[0] if configured else None
    report["role"] = "replica" if replica else "primary"
    report["replication"] = replica
    if replica:
        report["io_running"] = replica["io_running"]
        report["sql_running"] = replica["sql_running"]
        report["lag"] = replica["lag"]
        report["source_host"] = replica["source_host"]
        report["last_io_errno"] = replica["last_io_errno"]
        report["last_io_error"] = replica["last_io_error"]
        report["last_sql_errno"] = replica["last_sql_errno"]
        report["last_sql_error"] = replica["last_sql_error"]
    else:
        for key in ("io_running", "sql_running", "lag", "source_host", "last_io_errno", "last_io_error",
                    "last_sql_errno", "last_sql_error"):
            report[key] = None
    if target.expected_role == "primary":
        problems = primary_problems(variables, replica_rows)
    elif replica is None:
        problems = ["no replication source configured (expected a replica)"]
    else:
        problems = replica_problems(replica, max_lag)
        errant = errant_gtids(variables)
        if errant:
            problems.append("errant transactions: %s written on this replica, which the primary lacks" % errant)
        report["broken"] = broken_reason(replica, errant)
        if report["broken"] == BINLOGS_PURGED:
            problems.append("the primary no longer holds the binary logs this replica needs (source error 1236): " + RECOPY_HINT)
        elif report["broken"]:
            problems.append("it holds transactions the primary lacks: " + RECOPY_HINT)
    report["problems"] = problems
    report["healthy"] = not problems
    return report


def init_refusal(cluster, target):
    """The message of a pod's init container that refuses to start it (an
    empty or stale primary, init.sh), or None."""
    if cluster.k8s is None or not target.pod:
        return None
    try:
        pod = cluster.k8s.core.read_namespaced_pod(target.pod, target.namespace or cluster.params["namespace"])
    except Exception:
        return None
    for st in (pod.status.init_container_statuses or []) if pod.status else []:
        for state in (st.state, st.last_state):
            term = state.terminated if state is not None else None
            if term is not None and term.exit_code and _FENCE_WORDS in (term.message or ""):
                lines = [line for line in term.message.splitlines() if _FENCE_WORDS in line]
                return lines[-1].split("ERROR: ", 1)[-1].strip()
    return None


def mark_primary_behind(reports, name, refresh=None):
    """A replica that holds transactions of the cluster's primary that the
    primary lacks: the primary is behind. Never a reason to re-copy the
    replica: it keeps its data, and the primary is recovered instead.

    The primary was read before its replicas: under writes a replica can
    hold what the primary wrote after that read. So a replica that seems
    ahead is compared again with the primary read afresh (``refresh()``, its
    GTID variables, or None when it cannot be read), which holds everything
    the replica had when it was read unless the primary is truly behind."""
    primary = [r for r in reports if r.get("expected_role") == "primary" and r.get("reachable")]
    if not primary:
        return
    primary_vars = dict(primary[0].get("gtid") or {})
    refreshed = refresh is None
    for r in reports:
        if r.get("expected_role") != "replica" or not r.get("reachable"):
            continue
        replica_vars = dict(r.get("gtid") or {}, server_uuid=r.get("server_uuid"))
        try:
            lacks = primary_lacks(replica_vars, primary_vars)
            if lacks and not refreshed:
                refreshed = True
                fresh = refresh()
                if fresh is None:
                    return
                primary_vars = dict(fresh)
                lacks = primary_lacks(replica_vars, primary_vars)
        except ValueError:
            continue
        if lacks:
            r["broken"] = PRIMARY_BEHIND
            r["problems"] = [p for p in r["problems"] if "re-copy" not in p] + [
                "the primary is behind: it lacks %s, which this replica holds (replicated from the cluster's primary); %s"
                % (lacks, RESEED_HINT % name)]
            r["healthy"] = False


def cluster_status(cluster, max_lag):
    """``(all_healthy, [server reports])`` in ordinal order."""
    reports = [server_status(cluster, t, max_lag) for t in cluster.targets]

    def primary_gtid_now():
        target = [t for t in cluster.targets if t.expected_role == "primary"]
        fresh = server_status(cluster, target[0], max_lag) if target else {}
        return fresh.get("gtid") if fresh.get("reachable") else None

    mark_primary_behind(reports, cluster.params.get("name"), refresh=primary_gtid_now)
    return all(r["healthy"] for r in reports), reports


def rollout_problems(cluster):
    """What the StatefulSet's rollout still lacks, read afresh; [] when done.

    Done means: the latest generation observed, every replica of spec.replicas
    updated and Ready and no pod above them, and, with whenScaled Delete, the
    volumes of removed ordinals gone (a later scale-up must not meet a PVC
    still being deleted)."""
    p = cluster.params
    if cluster.k8s is None:
        return []
    sts = cluster.k8s.read_statefulset(p["name"], p["namespace"])
    if sts is None:
        return ["StatefulSet %s/%s not found" % (p["namespace"], p["name"])]
    return statefulset_rollout_problems(sts, _claim_names(cluster, sts))


def pod_creation_refusals(cluster, since):
    """The API's refusals to create this StatefulSet's pods (Pod Security,
    quota, an admission webhook) seen since ``since`` (epoch seconds), while
    fewer pods run than declared: waiting cannot heal them, so the wait ends
    at once with the API's own words. [] when there are none."""
    p = cluster.params
    if cluster.k8s is None:
        return []
    sts = cluster.k8s.read_statefulset(p["name"], p["namespace"])
    if sts is None or (sts.status is not None and (sts.status.replicas or 0) >= (sts.spec.replicas or 0)):
        return []
    events = cluster.k8s.core.list_namespaced_event(
        p["namespace"], field_selector="involvedObject.kind=StatefulSet,involvedObject.name=%s,reason=FailedCreate"
        % p["name"]).items
    return failed_create_messages(events, sts.metadata.uid, since)


def failed_create_messages(events, uid, since):
    """The messages of FailedCreate events of the StatefulSet with this uid
    last seen at or after ``since``, newest first."""
    out = []
    for e in events:
        if e.involved_object is not None and e.involved_object.uid and e.involved_object.uid != uid:
            continue
        when = e.last_timestamp or e.event_time or e.first_timestamp or e.metadata.creation_timestamp
        if when is None or when.timestamp() < since:
            continue
        out.append((when.timestamp(), "%s (%s x%d)" % (e.message, when.strftime("%H:%M:%SZ"), e.count or 1)))
    return [message for _when, message in sorted(out, reverse=True)]


def _claim_names(cluster, sts):
    policy = sts.spec.persistent_volume_claim_retention_policy
    if policy is None or policy.when_scaled != "Delete" or not sts.spec.volume_claim_templates:
        return []
    claims = cluster.k8s.core.list_namespaced_persistent_volume_claim(sts.metadata.namespace)
    return [c.metadata.name for c in claims.items]


def statefulset_rollout_problems(sts, claim_names=()):
    """The rollout check on a StatefulSet object (kubernetes client model)."""
    want = sts.spec.replicas if sts.spec.replicas is not None else 1
    st = sts.status
    problems = []
    if st is None or (st.observed_generation or 0) < (sts.metadata.generation or 0):
        return ["generation %s not yet observed by the controller" % sts.metadata.generation]
    ready, updated, current = st.ready_replicas or 0, st.updated_replicas or 0, st.replicas or 0
    if updated < want:
        problems.append("%d of %d pods updated" % (updated, want))
    if ready < want:
        problems.append("%d of %d pods Ready" % (ready, want))
    if current > want:
        problems.append("%d pods, %d declared" % (current, want))
    name = sts.metadata.name
    for tpl in sts.spec.volume_claim_templates or []:
        prefix = "%s-%s-" % (tpl.metadata.name, name)
        gone = sorted(c for c in claim_names if c.startswith(prefix) and c[len(prefix):].isdigit()
                      and int(c[len(prefix):]) >= want)
        if gone:
            problems.append("volumes of removed pods still there: %s" % ", ".join(gone))
    return problems


def broken_servers(reports):
    """Replicas that waiting cannot heal, with the reason."""
    return [dict(name=r["name"], reason=r["broken"], problems=r["problems"]) for r in reports if r.get("broken")]


def unhealthy_summary(reports):
    return "; ".join("%s: %s" % (r["name"], ", ".join(r["problems"])) for r in reports if not r["healthy"])


TABLE_COLUMNS = ("pod", "role", "server_id", "IO", "SQL", "lag", "executed GTID set", "last error")
_UUID_HEAD = 8


def short_gtid(gtid_set, width=40):
    """MySQL ``uuid:1-25,uuid:1-3`` with each UUID cut to its first 8 hex
    digits; MariaDB ``0-100-12`` as it is; cut to ``width`` characters."""
    if not gtid_set:
        return "-"
    parts = []
    for part in str(gtid_set).replace("\n", "").split(","):
        part = part.strip()
        head, sep, tail = part.partition(":")
        if sep and len(head) == 36 and head.count("-") == 4:
            part = "%s..:%s" % (head[:_UUID_HEAD], tail)
        parts.append(part)
    text = ",".join(parts)
    return text if len(text) <= width else text[:width - 3] + "..."


def _executed_gtid(server):
    gtid = server.get("gtid") or {}
    for key in ("gtid_executed", "gtid_current_pos", "gtid_binlog_pos"):
        if gtid.get(key):
            return gtid[key]
    return (server.get("binlog") or {}).get("executed_gtid_set")


def _last_error(server, width):
    errors = []
    for kind in ("io", "sql"):
        errno = server.get("last_%s_errno" % kind)
        if errno:
            errors.append("%s %s: %s" % (kind.upper(), errno, server.get("last_%s_error" % kind) or ""))
    if not errors and not server.get("healthy", True):
        errors = list(server.get("problems") or [])
    text = "; ".join(e.replace("\n", " ").strip() for e in errors) or "-"
    return text if len(text) <= width else text[:width - 3] + "..."


def table_rows(servers, error_width=100):
    """One row of strings per server, in TABLE_COLUMNS order."""
    rows = []
    for s in servers:
        reachable = s.get("reachable")
        lag = s.get("lag")
        rows.append([
            s.get("name") or "?",
            (s.get("role") or "?") if reachable else "unreachable",
            str(s["server_id"]) if s.get("server_id") is not None else "-",
            s.get("io_running") or "-",
            s.get("sql_running") or "-",
            "-" if lag is None else "%ss" % lag,
            short_gtid(_executed_gtid(s)) if reachable else "-",
            _last_error(s, error_width),
        ])
    return rows


def format_table(servers, error_width=100):
    """The servers as lines of aligned columns a person reads at a glance;
    no trailing blanks (so YAML output keeps them as a block)."""
    rows = [list(TABLE_COLUMNS)] + table_rows(servers, error_width)
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS) - 1)]
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    return lines
