"""MariaDB GTID positions compared per domain (primary_reseed chooses its donor with this)."""
import pytest

from ansible_collections.stateful.mysql.plugins.module_utils.sql import (
    Dialect, mariadb_gtid_covers, mariadb_gtid_positions,
)


@pytest.mark.parametrize("superset, subset, expected", [
    ("0-100-57", "0-100-57", True),
    ("0-100-57", "0-100-12", True),
    ("0-100-12", "0-100-57", False),
    ("0-100-57,1-101-3", "1-101-3", True),
    ("0-100-57", "0-100-5,1-101-1", False),
    ("0-100-57", "", True),
    ("", "0-100-1", False),
    ("0-100-57\n", "0-101-50", True),
])
def test_covers(superset, subset, expected):
    assert mariadb_gtid_covers(superset, subset) is expected


def test_positions_refuse_a_mysql_gtid_set():
    with pytest.raises(ValueError):
        mariadb_gtid_positions("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
    assert mariadb_gtid_positions("0-100-7, 2-100-9") == {0: 7, 2: 9}


@pytest.mark.parametrize("version, statement", [
    ("9.7.4", "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s"),
    ("8.0.22", "CHANGE MASTER TO MASTER_HOST=%s"),
    ("11.8.3-MariaDB", "CHANGE MASTER TO MASTER_HOST=%s"),
])
def test_change_source_host_keeps_other_settings(version, statement):
    sql, args = Dialect(version).change_source_host("db-2.db")
    assert sql == statement and args == ("db-2.db",)
    assert "PASSWORD" not in sql and "USER" not in sql
