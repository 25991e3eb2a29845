"""replication_verify against real MariaDB 10.11 GTID replication, direct mode."""

import subprocess

from ansible_collections.stateful.mysql.plugins.module_utils.sql import option_file
from ansible_collections.stateful.mysql.plugins.modules import replication_verify
from conftest import ROOT_PASSWORD, hosts_of, run_module


def verify_args(servers, **extra):
    args = dict(name="db", connection="direct", hosts=hosts_of(servers), login_password=ROOT_PASSWORD,
                read_host="127.0.0.1", read_port=servers[1].port, read_attempts=3, timeout=10)
    args.update(extra)
    return args


def users(server):
    return [r[0] for r in server.sql("SELECT user FROM mysql.user")]


def binlogged_probe_events(server):
    """Binary-log events of this server that mention the probe user (its password would be there)."""
    hits = 0
    for log in server.sql("SHOW BINARY LOGS"):
        hits += sum("stateful_verify_probe" in str(ev) for ev in server.sql("SHOW BINLOG EVENTS IN '%s'" % log[0]))
    return hits


def test_verify_healthy(healthy):
    primary = healthy[0]
    primary.sql("DROP DATABASE IF EXISTS stateful_verify")
    failed, result = run_module(replication_verify, verify_args(healthy))
    assert not failed, result.get("msg")
    assert result["changed"] is True  # schema and table created
    assert result["primary"] == "db-0"
    assert [p["name"] for p in result["propagation"]] == ["db-1", "db-2"]
    assert all(0 <= p["seconds"] < 10 for p in result["propagation"])
    assert [r["found"] for r in result["reads"]] == [True, True, True]
    assert result["read_servers"] == [healthy[1].sql("SELECT @@hostname")[0][0]]
    assert {r["server_id"] for r in result["reads"]} == {101}
    # root on MariaDB holds READ ONLY ADMIN: the probe user proves read_only.
    for w in result["writes_refused"]:
        assert w["refused"] is True and w["login_user_refused"] is False and w["user"] == "probe"
        assert w["error"].startswith("error 1290: ")
    assert ROOT_PASSWORD not in str(result)
    # Cleaned up: no marker, no probe user, on the primary and on the replicas; the probe user
    # (and so its password) never reached a binary log: it was created on each replica alone.
    for s in healthy:
        assert s.sql("SELECT COUNT(*) FROM stateful_verify.marker")[0][0] == 0
        assert "stateful_verify_probe" not in users(s)
        assert binlogged_probe_events(s) == 0, s
    failed, again = run_module(replication_verify, verify_args(healthy))
    assert not failed and again["changed"] is False and again["marker"] != result["marker"]


def test_verify_times_out_naming_the_replica(healthy):
    replica = healthy[2]
    replica.sql("STOP SLAVE IO_THREAD")
    try:
        failed, result = run_module(replication_verify, verify_args(healthy, timeout=2, read_attempts=0))
        assert failed
        assert "did not reach db-2 (IO thread not running (No))" in result["msg"]
        assert [p["name"] for p in result["propagation"]] == ["db-1"]
    finally:
        replica.sql("START SLAVE IO_THREAD")


def test_verify_catches_a_writable_replica(healthy):
    replica = healthy[1]
    replica.sql("SET GLOBAL read_only=OFF")
    try:
        failed, result = run_module(replication_verify, verify_args(healthy, read_attempts=1))
        assert failed
        assert result["msg"] == "replicas accepting writes (or not checkable): db-1 (write accepted as probe user)"
        assert [w["refused"] for w in result["writes_refused"]] == [False, True]
        # The probe write was rolled back: nothing diverged.
        assert replica.sql("SELECT COUNT(*) FROM stateful_verify.marker")[0][0] == 0
    finally:
        replica.sql("SET GLOBAL read_only=ON")


def test_read_check_reports_a_server_without_the_marker(healthy):
    # Point the "read Service" at a replica whose SQL thread is stopped after propagation... simplest:
    # read through a server that is not part of the cluster at all (the marker never reaches it).
    failed, result = run_module(replication_verify, verify_args(healthy[:2], read_port=healthy[2].port,
                                                                read_attempts=2))
    # db-2 still replicates from db-0, so it has the marker: the read succeeds.
    assert not failed, result.get("msg")
    healthy[2].sql("STOP SLAVE SQL_THREAD")
    try:
        failed, result = run_module(replication_verify, verify_args(healthy[:2], read_port=healthy[2].port,
                                                                    read_attempts=2))
        assert failed and "2 of 2 without the marker" in result["msg"]
    finally:
        healthy[2].sql("START SLAVE SQL_THREAD")


def test_option_file_through_stdin_with_the_mariadb_client(healthy):
    """The in-pod read script, run here with Debian's mariadb client and a hostile password."""
    script = replication_verify.READ_SCRIPT
    proc = subprocess.run(["sh", "-c", script, "read", "127.0.0.1", str(healthy[1].port),
                           "SELECT @@server_id, CURRENT_USER()"],
                          input=option_file("root", ROOT_PASSWORD), capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "101\troot@%"
    # The temp option file is gone and the password never was an argument.
    assert ROOT_PASSWORD not in " ".join(proc.args)
