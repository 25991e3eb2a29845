"""SQL per flavor and version, status rows of each family, readiness rules."""

import os

import pytest
import yaml

from ansible_collections.stateful.mysql.plugins.module_utils import sql
from sql_actions import ActionDialect

with open(os.path.join(os.path.dirname(__file__), "test_sql.yaml")) as f:
    CASES = yaml.safe_load(f)


@pytest.mark.parametrize("case", CASES["versions"], ids=[c["version"] for c in CASES["versions"]])
def test_sql_per_version(case):
    d = ActionDialect(case["version"])
    assert d.server.flavor == case["flavor"]
    assert d.replica_status() == case["replica_status"]
    assert d.binlog_status() == case["binlog_status"]
    assert d.stop_replica("IO_THREAD") == case["stop_io"]
    assert d.start_replica() == case["start"]
    assert d.reset_replica_all() == case["reset_all"]
    assert d.has_super_read_only is case["super_read_only"]
    stmt, args = d.change_source("db-0.db", 3306, "repl", "s3cret", delay=5)
    assert stmt.startswith(case["change_head"])
    assert case["change_gtid"] in stmt
    assert "s3cret" not in stmt and args[3] == "s3cret"
    assert args[-1] == 5 and "DELAY=%s" in stmt
    variables = d.variables()
    for var in case["gtid_vars"]:
        assert "@@GLOBAL.%s AS %s" % (var, var) in variables
    assert ("super_read_only" in variables) is case["super_read_only"]


def test_version_parsing():
    v = sql.ServerVersion.parse("10.11.6-MariaDB-0+deb12u1-log")
    assert (v.flavor, v.version) == ("mariadb", (10, 11, 6))
    v = sql.ServerVersion.parse("5.5.5-10.3.39-MariaDB")
    assert (v.flavor, v.version) == ("mariadb", (10, 3, 39))
    v = sql.ServerVersion.parse("9.7")
    assert (v.flavor, v.version) == ("mysql", (9, 7, 0))
    with pytest.raises(ValueError):
        sql.ServerVersion.parse("not a version")
    with pytest.raises(ValueError):
        ActionDialect("8.4.0").stop_replica("BOTH")


def test_mysql_caching_sha2_source_key():
    stmt = ActionDialect("8.4.3").change_source("h", 3306, "u", "p")[0]
    assert "GET_SOURCE_PUBLIC_KEY=1" in stmt
    stmt = ActionDialect("8.0.20").change_source("h", 3306, "u", "p")[0]
    assert "GET_MASTER_PUBLIC_KEY=1" in stmt
    stmt = ActionDialect("10.11.6-MariaDB").change_source("h", 3306, "u", "p")[0]
    assert "PUBLIC_KEY" not in stmt


@pytest.mark.parametrize("case", CASES["status_rows"], ids=[c["id"] for c in CASES["status_rows"]])
def test_status_rows(case):
    status = sql.normalize_replica_status(case["row"])
    for key, value in case["expect"].items():
        assert status[key] == value, key
    assert sql.replica_problems(status, 60) == case["problems"]


def test_status_bytes_and_unknown_columns():
    status = sql.normalize_replica_status({b"x": 1, "Slave_IO_Running": b"Yes", "Seconds_Behind_Master": "12"})
    assert status["io_running"] == "Yes" and status["lag"] == 12 and status["sql_running"] is None


def test_binlog_status():
    assert sql.normalize_binlog_status({"File": "binlog.000002", "Position": 157, "Executed_Gtid_Set": "a:1-3,\nb:1"}) == {
        "file": "binlog.000002", "position": 157, "executed_gtid_set": "a:1-3,b:1"}
    assert sql.normalize_binlog_status({"File": "mysqllog.000001", "Position": "1323", "Binlog_Do_DB": ""}) == {
        "file": "mysqllog.000001", "position": 1323, "executed_gtid_set": None}
    assert sql.normalize_binlog_status(None) is None


@pytest.mark.parametrize("value,expected", [
    (0, False), (1, True), ("0", False), ("1", True), ("OFF", False), ("ON", True), (b"ON", True),
    ("NO_LOCK", True), (None, False),
])
def test_is_on(value, expected):
    assert sql.is_on(value) is expected


def test_primary_problems():
    assert sql.primary_problems({"read_only": 0, "super_read_only": 0}, []) == []
    assert sql.primary_problems({"read_only": 1, "super_read_only": 1}, [{"source_host": "x"}]) == [
        "primary is read_only", "primary is super_read_only",
        "primary has a replication source configured (x)"]
    # RESET REPLICA (without ALL) may leave an empty row behind: not a source.
    assert sql.primary_problems({"read_only": 0}, [{"source_host": ""}]) == []


def test_max_lag_none_means_unbounded():
    st = sql.normalize_replica_status({"Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes",
                                       "Seconds_Behind_Source": 10_000, "Last_IO_Errno": 0, "Last_SQL_Errno": 0})
    assert sql.replica_problems(st, None) == []


def test_render_query_masks_secrets():
    q = sql.render_query("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_PASSWORD=%s",
                         ("h'x", 3306, "pw"), secret_positions=(2,))
    assert q == "CHANGE MASTER TO MASTER_HOST='h''x', MASTER_PORT=3306, MASTER_PASSWORD='********'"
    assert sql.render_query("SELECT 1") == "SELECT 1"


def test_option_file_escapes():
    body = sql.option_file("root", 'a"b\\c #d\ne\'f', {"host": "mysql-read"})
    assert body == '[client]\nuser="root"\npassword="a\\"b\\\\c #d\\ne\'f"\nhost="mysql-read"\n'


# A replica that waiting cannot heal: named, with the reason, for a re-copy.
UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


@pytest.mark.parametrize("variables, expected", [
    ({"server_uuid": UUID, "gtid_executed": "aaaaaaaa-0000-0000-0000-000000000001:1-20"}, None),
    ({"server_uuid": UUID, "gtid_executed": "aaaaaaaa-0000-0000-0000-000000000001:1-20,\n%s:1-2" % UUID}, UUID + ":1-2"),
    ({"server_id": 102, "gtid_binlog_pos": "0-100-20"}, None),
    ({"server_id": 102, "gtid_binlog_pos": "0-100-20,1-102-3"}, "1-102-3"),
    ({"server_id": 102, "gtid_binlog_pos": ""}, None),
    ({"server_id": 102}, None),
])
def test_errant_gtids(variables, expected):
    assert sql.errant_gtids(variables) == expected


@pytest.mark.parametrize("status, errant, expected", [
    ({"last_io_errno": 0}, None, None),
    ({"last_io_errno": 2003, "last_io_error": "can't connect"}, None, None),
    ({"last_io_errno": 1236, "last_io_error": "Cannot replicate because the source purged required binary logs."},
     None, sql.BINLOGS_PURGED),
    ({"last_io_errno": 1236, "last_io_error": "Could not find GTID state requested by slave in any binlog files."},
     None, sql.BINLOGS_PURGED),
    ({"last_io_errno": 13114, "last_io_error": "Got fatal error 1236 from source when reading data from binary log: "
      "'Cannot replicate because the source purged required binary logs.'"}, None, sql.BINLOGS_PURGED),
    ({"last_io_errno": 13114, "last_io_error": "Got fatal error 1236 from source when reading data from binary log: "
      "'Replica has more GTIDs than the source has, using the source's SERVER_UUID.'"}, None, sql.ERRANT_TRANSACTIONS),
    ({"last_io_errno": 13114, "last_io_error": "Got fatal error 1159 from source"}, None, None),
    ({"last_io_errno": 1236, "last_io_error": "Replica has more GTIDs than the source has, using the source's SERVER_UUID."},
     None, sql.ERRANT_TRANSACTIONS),
    ({"last_io_errno": 1236, "last_io_error": "requested to start from GTID 0-102-9, which is not in the master's binlog"},
     None, sql.ERRANT_TRANSACTIONS),
    ({"last_io_errno": 0}, "0-102-9", sql.ERRANT_TRANSACTIONS),
])
def test_broken_reason(status, errant, expected):
    assert sql.broken_reason(status, errant) == expected


@pytest.mark.parametrize("error, errno", [
    (Exception(1198, "This operation cannot be performed as you have a running slave"), 1198),
    (Exception("error 1198: as text"), None),
    (Exception(), None),
    (ValueError(), None),
])
def test_server_errno_is_the_servers_number_only(error, errno):
    """credentials_rotate tells MariaDB's 1198 from other errors by it."""
    assert sql.server_errno(error) == errno
