# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL per server flavor and version, in one place.

One intent (read the replica status, read the binary log position, stop the
IO thread, point a replica at its source...) maps to the statement each
server understands. Status rows are normalised so that callers never look at
``Master_*``/``Slave_*`` or ``Source_*``/``Replica_*`` column names
themselves.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYSQL = "mysql"
MARIADB = "mariadb"

# Errors a server returns when read_only / super_read_only refuses a write.
READ_ONLY_ERRNOS = frozenset((1290, 1836))
# MariaDB refuses CHANGE MASTER while a replication thread runs.
SLAVE_RUNNING_ERRNO = 1198


def server_errno(e):
    """The server's error number of a PyMySQL error (its first argument), else None."""
    args = getattr(e, "args", None) or ()
    return args[0] if args and isinstance(args[0], int) else None


_VERSION_RE = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?")


class ServerVersion(object):
    """A server's flavor and numeric version, parsed from ``SELECT VERSION()``."""

    def __init__(self, flavor, version, raw=None):
        if flavor not in (MYSQL, MARIADB):
            raise ValueError("unknown flavor %r" % (flavor,))
        self.flavor = flavor
        self.version = tuple(version)
        self.raw = raw if raw is not None else ".".join(str(p) for p in self.version)

    @classmethod
    def parse(cls, version_string):
        """``10.11.6-MariaDB-0+deb12u1-log`` -> mariadb (10, 11, 6); ``9.7.4`` -> mysql."""
        text = str(version_string or "")
        match = _VERSION_RE.match(text)
        if not match:
            raise ValueError("cannot parse server version %r" % (text,))
        numbers = tuple(int(p) if p is not None else 0 for p in match.groups())
        # MariaDB 5.5-10.x once advertised "5.5.5-10.x.y-MariaDB" on the wire.
        if text.startswith("5.5.5-") and "mariadb" in text.lower():
            inner = _VERSION_RE.match(text[len("5.5.5-"):])
            if inner:
                numbers = tuple(int(p) if p is not None else 0 for p in inner.groups())
        flavor = MARIADB if "mariadb" in text.lower() else MYSQL
        return cls(flavor, numbers, raw=text)

    def at_least(self, *version):
        return self.version >= tuple(version)

    @property
    def is_mariadb(self):
        return self.flavor == MARIADB

    def __repr__(self):
        return "ServerVersion(%r, %r)" % (self.flavor, self.version)


class Dialect(object):
    """Maps an intent to the SQL of one server flavor and version."""

    def __init__(self, server_version):
        if not isinstance(server_version, ServerVersion):
            server_version = ServerVersion.parse(server_version)
        self.server = server_version

    # -- vocabulary ------------------------------------------------------
    @property
    def _replica_words(self):
        """True when the server takes REPLICA / SOURCE statements."""
        if self.server.is_mariadb:
            return self.server.at_least(10, 5, 1)
        return self.server.at_least(8, 0, 22)

    @property
    def has_super_read_only(self):
        return not self.server.is_mariadb and self.server.at_least(5, 7, 8)

    @property
    def has_gtid_executed(self):
        return not self.server.is_mariadb and self.server.at_least(5, 6, 5)

    # -- reading state ---------------------------------------------------
    def replica_status(self):
        return "SHOW REPLICA STATUS" if self._replica_words else "SHOW SLAVE STATUS"

    def binlog_status(self):
        if self.server.is_mariadb:
            return "SHOW BINLOG STATUS" if self.server.at_least(10, 5, 2) else "SHOW MASTER STATUS"
        # SHOW BINARY LOG STATUS arrived in 8.2.0; 8.4 removed SHOW MASTER STATUS.
        return "SHOW BINARY LOG STATUS" if self.server.at_least(8, 2, 0) else "SHOW MASTER STATUS"

    def variables(self):
        """One row of the global variables a status report needs."""
        cols = [
            "@@GLOBAL.server_id AS server_id",
            "@@GLOBAL.read_only AS read_only",
            "@@hostname AS hostname",
            "@@GLOBAL.log_bin AS log_bin",
        ]
        if self.has_super_read_only:
            cols.append("@@GLOBAL.super_read_only AS super_read_only")
        if self.server.is_mariadb:
            cols += [
                "@@GLOBAL.gtid_current_pos AS gtid_current_pos",
                "@@GLOBAL.gtid_binlog_pos AS gtid_binlog_pos",
                "@@GLOBAL.gtid_slave_pos AS gtid_slave_pos",
                "@@GLOBAL.gtid_binlog_state AS gtid_binlog_state",
                "@@GLOBAL.gtid_strict_mode AS gtid_strict_mode",
            ]
        elif self.has_gtid_executed:
            cols += [
                "@@GLOBAL.gtid_mode AS gtid_mode",
                "@@GLOBAL.gtid_executed AS gtid_executed",
                "@@GLOBAL.server_uuid AS server_uuid",
            ]
        return "SELECT " + ", ".join(cols)

    # -- acting on replication (primary_reseed) ----------------------------
    def start_replica(self, thread=None):
        return self._thread_stmt("START", thread)

    def stop_replica(self, thread=None):
        return self._thread_stmt("STOP", thread)

    def _thread_stmt(self, verb, thread):
        word = "REPLICA" if self._replica_words else "SLAVE"
        stmt = "%s %s" % (verb, word)
        if thread:
            if thread not in ("IO_THREAD", "SQL_THREAD"):
                raise ValueError("thread must be IO_THREAD or SQL_THREAD")
            stmt += " " + thread
        return stmt

    def change_source_host(self, host):
        """Point a stopped replica at another host, keeping every other
        setting (user, password, TLS, GTID positioning). ``(sql, args)``."""
        if not self.server.is_mariadb and self.server.at_least(8, 0, 23):
            return "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s", (host,)
        return "CHANGE MASTER TO MASTER_HOST=%s", (host,)

    def change_source_password(self, password):
        """The replication password a replica logs in to its source with,
        every other setting kept. ``(sql, args)``; args[0] is the secret."""
        if not self.server.is_mariadb and self.server.at_least(8, 0, 23):
            return "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD=%s", (password,)
        return "CHANGE MASTER TO MASTER_PASSWORD=%s", (password,)

    def gtid_position(self):
        """The transactions a server holds: MySQL ``gtid_executed``; MariaDB
        ``gtid_slave_pos``, what a replica applied from its source."""
        if self.server.is_mariadb:
            return "SELECT @@GLOBAL.gtid_slave_pos"
        return "SELECT @@GLOBAL.gtid_executed"


def render_query(sql, args=None, secret_positions=()):
    """A statement as reported in ``queries``: bound arguments inlined,
    secrets masked."""
    if not args:
        return sql
    shown = []
    for i, arg in enumerate(args):
        if i in secret_positions:
            shown.append("'********'")
        elif isinstance(arg, int):
            shown.append(str(arg))
        else:
            shown.append("'%s'" % str(arg).replace("'", "''"))
    return sql.replace("%s", "{}").format(*shown)


# -- status rows --------------------------------------------------------

# canonical key -> column names, newest first.
_STATUS_COLUMNS = {
    "io_running": ("Replica_IO_Running", "Slave_IO_Running"),
    "sql_running": ("Replica_SQL_Running", "Slave_SQL_Running"),
    "io_state": ("Replica_IO_State", "Slave_IO_State"),
    "sql_state": ("Replica_SQL_Running_State", "Slave_SQL_Running_State"),
    "lag": ("Seconds_Behind_Source", "Seconds_Behind_Master"),
    "source_host": ("Source_Host", "Master_Host"),
    "source_port": ("Source_Port", "Master_Port"),
    "source_user": ("Source_User", "Master_User"),
    "source_server_id": ("Source_Server_Id", "Master_Server_Id"),
    "source_log_file": ("Source_Log_File", "Master_Log_File"),
    "read_source_log_pos": ("Read_Source_Log_Pos", "Read_Master_Log_Pos"),
    "relay_source_log_file": ("Relay_Source_Log_File", "Relay_Master_Log_File"),
    "exec_source_log_pos": ("Exec_Source_Log_Pos", "Exec_Master_Log_Pos"),
    "last_io_errno": ("Last_IO_Errno",),
    "last_io_error": ("Last_IO_Error",),
    "last_sql_errno": ("Last_SQL_Errno",),
    "last_sql_error": ("Last_SQL_Error",),
    "last_errno": ("Last_Errno",),
    "last_error": ("Last_Error",),
    "sql_delay": ("SQL_Delay",),
    "sql_remaining_delay": ("SQL_Remaining_Delay",),
    "auto_position": ("Auto_Position",),
    "retrieved_gtid_set": ("Retrieved_Gtid_Set",),
    "executed_gtid_set": ("Executed_Gtid_Set",),
    "using_gtid": ("Using_Gtid",),
    "gtid_io_pos": ("Gtid_IO_Pos",),
    "gtid_slave_pos": ("Gtid_Slave_Pos",),
    "connection_name": ("Connection_name",),
}

_INT_KEYS = frozenset((
    "lag", "source_port", "source_server_id", "read_source_log_pos",
    "exec_source_log_pos", "last_io_errno", "last_sql_errno", "last_errno",
    "sql_delay", "sql_remaining_delay", "auto_position",
))


def _to_int(value):
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def normalize_replica_status(row):
    """One row of SHOW REPLICA/SLAVE STATUS (any flavor) -> canonical dict."""
    row = dict((k, _text(v)) for k, v in (row or {}).items())
    out = {}
    for key, names in _STATUS_COLUMNS.items():
        value = None
        for name in names:
            if name in row:
                value = row[name]
                break
        if key in _INT_KEYS:
            value = _to_int(value)
        elif isinstance(value, str):
            value = value.strip()
        out[key] = value
    for key in ("retrieved_gtid_set", "executed_gtid_set"):
        if out[key]:
            out[key] = out[key].replace("\n", "")
    return out


def normalize_binlog_status(row):
    """One row of SHOW MASTER/BINARY LOG/BINLOG STATUS -> file, position, GTID set."""
    if not row:
        return None
    row = dict((k, _text(v)) for k, v in row.items())
    gtid = row.get("Executed_Gtid_Set")
    return {
        "file": row.get("File"),
        "position": _to_int(row.get("Position")),
        "executed_gtid_set": gtid.replace("\n", "") if gtid else gtid,
    }


def is_on(value):
    """Server booleans arrive as 0/1, ON/OFF or (MariaDB 11.x read_only) words."""
    if value is None:
        return False
    value = _text(value)
    if isinstance(value, str):
        return value.strip().upper() not in ("", "0", "OFF", "NO", "FALSE")
    return bool(value)


def thread_running(value):
    return isinstance(value, str) and value.strip().lower() == "yes"


def replica_problems(status, max_lag):
    """Why a replica is not healthy; an empty list means healthy.

    Healthy: both threads run, neither has an error, and the lag is known
    and at most ``max_lag`` seconds. An SQL thread that stopped without an
    error number still counts as stopped.
    """
    reasons = []
    if not thread_running(status.get("io_running")):
        msg = "IO thread not running (%s)" % (status.get("io_running") or "unknown")
        if status.get("last_io_errno"):
            msg += ": error %s: %s" % (status["last_io_errno"], status.get("last_io_error") or "")
        reasons.append(msg)
    elif status.get("last_io_errno"):
        reasons.append("IO thread error %s: %s" % (status["last_io_errno"], status.get("last_io_error") or ""))
    if not thread_running(status.get("sql_running")):
        msg = "SQL thread not running (%s)" % (status.get("sql_running") or "unknown")
        if status.get("last_sql_errno"):
            msg += ": error %s: %s" % (status["last_sql_errno"], status.get("last_sql_error") or "")
        reasons.append(msg)
    elif status.get("last_sql_errno"):
        reasons.append("SQL thread error %s: %s" % (status["last_sql_errno"], status.get("last_sql_error") or ""))
    lag = status.get("lag")
    if lag is None:
        if not reasons:
            reasons.append("lag unknown (Seconds_Behind_Source is NULL)")
    elif max_lag is not None and lag > max_lag:
        reasons.append("lag %ss > max_lag %ss" % (lag, max_lag))
    return reasons


# Why a replica will not heal by waiting: it needs a fresh copy (the first
# two), or its primary is behind it and must be recovered (the replica keeps
# its data: never re-copied for it).
BINLOGS_PURGED = "binlogs_purged"
ERRANT_TRANSACTIONS = "errant_transactions"
PRIMARY_BEHIND = "primary_behind"
RESEED_HINT = "the replicas keep their data; recover the primary with: ansible-playbook reseed_primary.yml -e confirm=%s"
_DIVERGED_RE = re.compile(r"more GTIDs than|which is not in the master's binlog", re.I)
RECOPY_HINT = "it needs a re-copy (the mysql_cluster role does that with mysql_cluster_recopy_broken_replicas=true)"


def errant_gtids(variables, server_id=None):
    """GTIDs a replica wrote itself (never legitimate without failover):
    MySQL: entries of its own server_uuid in gtid_executed; MariaDB: entries
    of its own server_id in gtid_binlog_state (the position keeps one GTID
    per domain and would hide one followed by replicated transactions).
    Returns the text, or None."""
    def text(value):
        value = _text(value)
        return value.replace("\n", "").replace(" ", "") if isinstance(value, str) else ""
    uuid = text(variables.get("server_uuid"))
    if uuid:
        own = [e for e in text(variables.get("gtid_executed")).split(",") if e.lower().startswith(uuid.lower() + ":")]
        return ",".join(own) or None
    if server_id is None and variables.get("server_id") is not None:
        server_id = variables["server_id"]
    key = "gtid_binlog_state" if "gtid_binlog_state" in variables else "gtid_binlog_pos"
    if server_id is not None and key in variables:
        own = [e for e in text(variables.get(key)).split(",")
               if len(e.split("-")) == 3 and e.split("-")[1] == str(server_id)]
        return ",".join(own) or None
    return None


def _gtid_text(value):
    value = _text(value)
    return value.replace("\n", "").replace(" ", "") if isinstance(value, str) else ""


def mysql_gtid_parse(text):
    """``uuid:1-5:7,uuid2:3`` -> ``{uuid: [(1, 5), (7, 7)], uuid2: [(3, 3)]}``."""
    out = {}
    for part in _gtid_text(text).split(","):
        if not part:
            continue
        fields = part.split(":")
        uuid, ranges = fields[0].lower(), out.setdefault(fields[0].lower(), [])
        for r in fields[1:]:
            lo, _sep, hi = r.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                raise ValueError("not a MySQL GTID set: %r" % (part,))
            ranges.append((int(lo), int(hi or lo)))
    return out


def mysql_gtid_subtract(a, b):
    """The GTIDs of set ``a`` that set ``b`` lacks, as text (empty: none)."""
    have = mysql_gtid_parse(b)
    parts = []
    for uuid, ranges in sorted(mysql_gtid_parse(a).items()):
        left = []
        for lo, hi in ranges:
            pieces = [(lo, hi)]
            for blo, bhi in have.get(uuid, []):
                pieces = [p for lo2, hi2 in pieces for p in
                          ([(lo2, min(hi2, blo - 1))] if lo2 < blo else []) + ([(max(lo2, bhi + 1), hi2)] if hi2 > bhi else [])
                          if p[0] <= p[1]]
            left += pieces
        if left:
            parts.append(uuid + ":" + ":".join("%d" % lo if lo == hi else "%d-%d" % (lo, hi) for lo, hi in sorted(left)))
    return ",".join(parts)


def mysql_gtid_without(text, uuid):
    """A GTID set without the entries of one server (its own transactions)."""
    return ",".join(p for p in _gtid_text(text).split(",") if p and p.split(":")[0].lower() != str(uuid or "").lower())


def mariadb_ahead(pos, other):
    """The GTIDs of MariaDB position ``pos`` that position ``other`` lacks: a
    domain it lacks, a higher seq_no, or the same seq_no from another server
    (a divergence). Returns the text (empty: none)."""
    have = {}
    for e in _gtid_text(other).split(","):
        f = e.split("-")
        if len(f) == 3:
            have[f[0]] = (f[1], int(f[2]))
    ahead = []
    for e in _gtid_text(pos).split(","):
        f = e.split("-")
        if len(f) != 3:
            continue
        mine = have.get(f[0])
        if mine is None or int(f[2]) > mine[1] or (int(f[2]) == mine[1] and f[1] != mine[0]):
            ahead.append(e)
    return ",".join(ahead)


def primary_lacks(replica_vars, primary_vars):
    """What a replica holds, replicated from the cluster's primary (not its
    own transactions), that the primary lacks: the primary is behind it.
    Returns the text (empty: none)."""
    if "gtid_slave_pos" in replica_vars:
        return mariadb_ahead(replica_vars.get("gtid_slave_pos"), primary_vars.get("gtid_binlog_pos"))
    if "gtid_executed" in replica_vars and "gtid_executed" in primary_vars:
        held = mysql_gtid_without(replica_vars.get("gtid_executed"), _text(replica_vars.get("server_uuid")))
        return mysql_gtid_subtract(held, primary_vars.get("gtid_executed"))
    return ""


def broken_reason(status, errant=None):
    """Why a replica cannot heal by waiting (``BINLOGS_PURGED`` or
    ``ERRANT_TRANSACTIONS``), or None. Error 1236 stops the IO thread for good:
    the source cannot serve the replica's position."""
    if errant:
        return ERRANT_TRANSACTIONS
    status = status or {}
    # MySQL 8.0+ wraps the source's 1236 in its own 13114 ("Got fatal error 1236 from source ...").
    if status.get("last_io_errno") == 1236 or (
            status.get("last_io_errno") == 13114 and "error 1236" in (status.get("last_io_error") or "")):
        # MySQL: "Replica has more GTIDs than the source has"; MariaDB:
        # "requested to start from GTID ..., which is not in the master's binlog".
        if _DIVERGED_RE.search(status.get("last_io_error") or ""):
            return ERRANT_TRANSACTIONS
        return BINLOGS_PURGED
    return None


def primary_problems(variables, replica_rows):
    """Why a primary is not healthy: it answers, is writable, replicates from no one."""
    reasons = []
    if is_on(variables.get("read_only")):
        reasons.append("primary is read_only")
    if is_on(variables.get("super_read_only")):
        reasons.append("primary is super_read_only")
    configured = [r for r in (replica_rows or []) if r.get("source_host")]
    if configured:
        reasons.append("primary has a replication source configured (%s)" % ", ".join(
            str(r.get("source_host")) for r in configured))
    return reasons


def option_quote(value):
    """A value for a MySQL/MariaDB option file: the project's one quoting rule
    (lib.sh's opt_quote writes the same, tests/unit/roles/test_option_quote.py
    holds them together).

    Double quotes keep ``#``, ``'`` and spaces; inside them the clients'
    parser reads ``\\\\`` and ``\\"`` back, so an unescaped quote can never
    end the value early and let ``#`` start a comment. Line breaks (which the
    role refuses in passwords, but a module's login password may hold) become
    the parser's ``\\n`` and ``\\r``; any other character stays as it is.
    """
    value = str(value)
    value = (value.replace("\\", "\\\\").replace('"', '\\"')
             .replace("\n", "\\n").replace("\r", "\\r"))
    return '"%s"' % value


def option_file(user, password, extra=None):
    """A ``[client]`` option file body; the password never goes on argv."""
    lines = ["[client]", "user=%s" % option_quote(user), "password=%s" % option_quote(password)]
    for key, value in (extra or {}).items():
        lines.append("%s=%s" % (key, option_quote(value)))
    return "\n".join(lines) + "\n"


def mariadb_gtid_positions(text):
    """``0-100-57,1-101-3`` -> ``{0: 57, 1: 3}`` (highest seq_no per domain)."""
    out = {}
    for part in str(text or "").replace("\n", "").split(","):
        part = part.strip()
        if not part:
            continue
        fields = part.split("-")
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise ValueError("not a MariaDB GTID position: %r" % (part,))
        domain, seq = int(fields[0]), int(fields[2])
        out[domain] = max(seq, out.get(domain, 0))
    return out


def mariadb_gtid_covers(superset, subset):
    """Whether position ``superset`` holds every transaction of ``subset``
    (per replication domain, strict mode: a higher seq_no includes the lower)."""
    big, small = mariadb_gtid_positions(superset), mariadb_gtid_positions(subset)
    return all(big.get(domain, -1) >= seq for domain, seq in small.items())
