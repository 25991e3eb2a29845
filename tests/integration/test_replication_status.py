"""replication_status against real MariaDB 10.11 GTID replication, direct mode."""

import threading
import time

import pytest

from ansible_collections.stateful.mysql.plugins.modules import replication_status
from conftest import ROOT_PASSWORD, hosts_of, run_module, slave_status


def status_args(servers, **extra):
    args = dict(name="db", connection="direct", hosts=hosts_of(servers), login_password=ROOT_PASSWORD)
    args.update(extra)
    return args


def by_name(result):
    return {s["name"]: s for s in result["servers"]}


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail("timed out waiting for %s" % what)


def test_healthy(healthy):
    failed, result = run_module(replication_status, status_args(healthy))
    assert not failed, result
    assert result["healthy"] is True, result["unhealthy"]
    assert result["changed"] is False
    assert result["unhealthy"] == []
    s = by_name(result)
    assert s["db-0"]["role"] == "primary" and s["db-0"]["expected_role"] == "primary"
    assert s["db-0"]["read_only"] is False
    assert s["db-0"]["super_read_only"] is None
    assert s["db-0"]["binlog"]["file"].startswith("binlog.")
    assert s["db-0"]["gtid"]["gtid_binlog_pos"]
    for name, sid in (("db-1", 101), ("db-2", 102)):
        r = s[name]
        assert r["flavor"] == "mariadb"
        assert r["role"] == "replica"
        assert r["server_id"] == sid
        assert r["read_only"] is True
        assert (r["io_running"], r["sql_running"], r["lag"]) == ("Yes", "Yes", 0)
        assert r["source_host"] == "127.0.0.1"
        assert r["last_io_errno"] == 0 and r["last_sql_errno"] == 0
        assert r["replication"]["using_gtid"] == "Slave_Pos"
        assert r["replication"]["source_port"] == healthy[0].port
        assert r["gtid"]["gtid_slave_pos"] == s["db-0"]["gtid"]["gtid_binlog_pos"]
    assert any(q.startswith("SHOW REPLICA STATUS") for q in result["queries"])
    assert "SHOW BINLOG STATUS" in result["queries"]
    assert ROOT_PASSWORD not in str(result)


def test_check_mode_and_wait_when_healthy(healthy):
    failed, result = run_module(replication_status, status_args(healthy, wait=True, wait_timeout=10), check_mode=True)
    assert not failed, result
    assert result["healthy"] and result["elapsed"] < 5


def test_io_thread_stopped(healthy):
    replica = healthy[1]
    replica.sql("STOP SLAVE IO_THREAD")
    try:
        failed, result = run_module(replication_status, status_args(healthy))
        assert not failed  # without wait, a report, not a failure
        assert result["healthy"] is False
        r = by_name(result)["db-1"]
        assert r["io_running"] == "No" and r["sql_running"] == "Yes"
        assert r["problems"] == ["IO thread not running (No)"]
        assert [u["name"] for u in result["unhealthy"]] == ["db-1"]

        failed, result = run_module(replication_status, status_args(healthy, wait=True, wait_timeout=3, wait_sleep=1))
        assert failed
        assert "db-1: IO thread not running (No)" in result["msg"]
        assert "db-2" not in result["msg"]
        assert 3 <= result["elapsed"] < 8
    finally:
        replica.sql("START SLAVE IO_THREAD")


def test_sql_thread_stopped_on_error(healthy):
    primary, replica = healthy[0], healthy[2]
    replica.sql("SET sql_log_bin=0", "INSERT INTO it.t VALUES (4242, 1)")  # conflicting row, replica only
    primary.sql("INSERT INTO it.t VALUES (4242, 2)")
    try:
        wait_for(lambda: slave_status(replica)["Slave_SQL_Running"] == "No", what="SQL thread to stop")
        failed, result = run_module(replication_status, status_args(healthy))
        r = by_name(result)["db-2"]
        assert r["io_running"] == "Yes" and r["sql_running"] == "No"
        assert r["last_sql_errno"] == 1062
        assert len(r["problems"]) == 1
        assert r["problems"][0].startswith("SQL thread not running (No): error 1062: ")
        assert by_name(result)["db-1"]["healthy"] is True

        failed, result = run_module(replication_status, status_args(healthy, wait=True, wait_timeout=2, wait_sleep=1))
        assert failed and "db-2: SQL thread not running (No): error 1062" in result["msg"]
    finally:
        replica.sql("SET sql_log_bin=0", "DELETE FROM it.t WHERE id=4242", "START SLAVE SQL_THREAD")
        primary.sql("DELETE FROM it.t WHERE id=4242")


def test_sql_thread_stopped_without_error(healthy):
    # mariadb-operator#1913: a stopped SQL thread with Last_SQL_Errno=0 is not healthy.
    replica = healthy[1]
    replica.sql("STOP SLAVE SQL_THREAD")
    try:
        failed, result = run_module(replication_status, status_args(healthy))
        r = by_name(result)["db-1"]
        assert r["last_sql_errno"] == 0
        assert r["problems"] == ["SQL thread not running (No)"]
    finally:
        replica.sql("START SLAVE SQL_THREAD")


def test_lagging_replica(healthy):
    primary, replica = healthy[0], healthy[2]
    replica.sql("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=60", "START SLAVE")
    try:
        primary.sql("INSERT INTO it.t VALUES (7, 7) ON DUPLICATE KEY UPDATE v=v+1")
        wait_for(lambda: (slave_status(replica)["Seconds_Behind_Master"] or 0) >= 4, what="lag to build up")
        failed, result = run_module(replication_status, status_args(healthy, max_lag=2))
        r = by_name(result)["db-2"]
        assert r["io_running"] == "Yes" and r["sql_running"] == "Yes"
        assert r["lag"] >= 4
        assert r["replication"]["sql_delay"] == 60
        assert r["problems"] == ["lag %ss > max_lag 2s" % r["lag"]]
        # With a generous bound the same replica is healthy.
        failed, result = run_module(replication_status, status_args(healthy, max_lag=600))
        assert result["healthy"] is True

        failed, result = run_module(replication_status,
                                    status_args(healthy, max_lag=2, wait=True, wait_timeout=2, wait_sleep=1))
        assert failed and "db-2: lag" in result["msg"] and "> max_lag 2s" in result["msg"]
    finally:
        replica.sql("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")


def test_wait_returns_when_replica_recovers(healthy):
    replica = healthy[1]
    replica.sql("STOP SLAVE IO_THREAD")
    timer = threading.Timer(3.0, lambda: replica.sql("START SLAVE IO_THREAD"))
    timer.start()
    try:
        failed, result = run_module(replication_status, status_args(healthy, wait=True, wait_timeout=30, wait_sleep=1))
        assert not failed, result.get("msg")
        assert result["healthy"] and 2.5 <= result["elapsed"] < 20
    finally:
        timer.join()


def test_primary_read_only_and_unreachable(healthy):
    primary = healthy[0]
    primary.sql("SET GLOBAL read_only=ON")
    try:
        args = status_args(healthy)
        args["hosts"] = args["hosts"] + [{"host": "127.0.0.1", "port": 1, "name": "db-9"}]
        failed, result = run_module(replication_status, args)
        s = by_name(result)
        assert s["db-0"]["problems"] == ["primary is read_only"]
        assert s["db-9"]["reachable"] is False
        assert s["db-9"]["problems"][0].startswith("cannot query db-9: error 2003")
    finally:
        primary.sql("SET GLOBAL read_only=OFF")


def test_wrong_password_is_reported_without_the_password(healthy):
    failed, result = run_module(replication_status, status_args(healthy, login_password="not-it"))
    assert result["healthy"] is False
    assert all("error 1045" in s["problems"][0] for s in result["servers"])


def test_direct_mode_needs_a_password_without_kubernetes(healthy, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    monkeypatch.delenv("K8S_AUTH_KUBECONFIG", raising=False)
    args = status_args(healthy)
    del args["login_password"]
    failed, result = run_module(replication_status, args)
    assert failed and "Kubernetes" in result["msg"]
