"""Fixtures: a MariaDB primary with two GTID replicas on loopback, and a module runner."""

import json
import os
import shutil
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mariadb import Server, replicate  # noqa: E402

# A password with the characters that break naive scripts.
ROOT_PASSWORD = "R'o\"ot`$(id)\\ #;--%&*|<>!~{}[]=+?:,.^@ x y z\\'\"end"
KEEP = os.environ.get("INTEGRATION_KEEP_LOGS")


@pytest.fixture(scope="session")
def servers():
    if not shutil.which("mariadbd") and not os.path.exists("/usr/sbin/mariadbd"):
        pytest.fail("mariadbd not installed: run `make integration-deps`")
    base = tempfile.mkdtemp(prefix="stateful-mysql-it-")
    started = []
    try:
        for i, name in enumerate(("db-0", "db-1", "db-2")):
            started.append(Server(base, name, 100 + i, ROOT_PASSWORD).start())
        primary = started[0]
        for replica in started[1:]:
            replicate(replica, primary)
        yield started
    finally:
        for s in started:
            s.stop()
        if KEEP:
            print("server logs kept in %s" % base)
        else:
            # Keep the logs of a failed session: only remove datadirs.
            for s in started:
                shutil.rmtree(s.datadir, ignore_errors=True)
            print("server logs in %s" % base)


def wait_caught_up(servers, timeout=30):
    primary = servers[0]
    pos = primary.sql("SELECT @@GLOBAL.gtid_binlog_pos")[0][0]
    for r in servers[1:]:
        r.sql(("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout)))


def slave_status(server):
    import pymysql
    with server.socket_conn() as c:
        cur = c.cursor(pymysql.cursors.DictCursor)
        cur.execute("SHOW SLAVE STATUS")
        return cur.fetchone()


@pytest.fixture
def healthy(servers):
    """Every replica replicating, undelayed and caught up, before a test."""
    primary = servers[0]
    primary.sql("SET GLOBAL read_only=OFF")
    for r in servers[1:]:
        r.sql("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
    primary.sql("CREATE DATABASE IF NOT EXISTS it", "CREATE TABLE IF NOT EXISTS it.t (id INT PRIMARY KEY, v INT)")
    wait_caught_up(servers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [slave_status(r) for r in servers[1:]]
        if all(s["Slave_IO_Running"] == "Yes" and s["Slave_SQL_Running"] == "Yes"
               and s["Seconds_Behind_Master"] == 0 for s in states):
            return servers
        time.sleep(0.3)
    pytest.fail("replicas did not become healthy: %r" % states)


def hosts_of(servers):
    return [{"host": "127.0.0.1", "port": s.port, "name": s.name} for s in servers]


def run_module(module, args, check_mode=False):
    """Run a module's main() in-process; returns (failed, result dict)."""
    from ansible.module_utils.testing import patch_module_args
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    import io
    buf = io.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
    finally:
        sys.stdout = old
    result = json.loads(buf.getvalue())
    return bool(result.get("failed")), result
