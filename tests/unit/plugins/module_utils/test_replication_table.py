"""The table replication_status returns and the playbooks print."""

from ansible_collections.stateful.mysql.plugins.module_utils.replication import TABLE_COLUMNS, format_table, short_gtid

UUID = "3e1f2a4b-1111-2222-3333-444455556666"
PRIMARY = {"name": "db-0", "reachable": True, "healthy": True, "problems": [], "role": "primary",
           "server_id": 100, "io_running": None, "sql_running": None, "lag": None,
           "gtid": {"gtid_mode": "ON", "gtid_executed": UUID + ":1-25"}}
STOPPED = {"name": "db-1", "reachable": True, "healthy": False, "problems": ["SQL thread not running (No)"],
           "role": "replica", "server_id": 101, "io_running": "Yes", "sql_running": "No", "lag": None,
           "last_io_errno": 0, "last_sql_errno": 0, "gtid": {"gtid_executed": UUID + ":1-24"}}
BROKEN = {"name": "db-2", "reachable": True, "healthy": False, "problems": ["IO error 1236"],
          "role": "replica", "server_id": 102, "io_running": "No", "sql_running": "Yes", "lag": 0,
          "last_io_errno": 1236, "last_io_error": "Got fatal error 1236\nfrom source", "last_sql_errno": 0,
          "gtid": {"gtid_current_pos": "0-100-12"}}
GONE = {"name": "db-3", "reachable": False, "healthy": False, "problems": ["cannot query db-3: refused"]}


def test_short_gtid():
    assert short_gtid(UUID + ":1-25") == "3e1f2a4b..:1-25"
    assert short_gtid(UUID + ":1-25,\n" + UUID.replace("3e", "9a") + ":1-3") == "3e1f2a4b..:1-25,9a1f2a4b..:1-3"
    assert short_gtid("0-100-12,1-101-3") == "0-100-12,1-101-3"
    assert short_gtid("") == "-" and short_gtid(None) == "-"
    long = ",".join("%s:1-%d" % (UUID, i) for i in range(10))
    assert len(short_gtid(long)) == 40 and short_gtid(long).endswith("...")


def test_table_rows_and_alignment():
    lines = format_table([PRIMARY, STOPPED, BROKEN, GONE])
    assert len(lines) == 5
    assert lines[0].split() == "pod role server_id IO SQL lag executed GTID set last error".split()
    assert lines[1].split() == ["db-0", "primary", "100", "-", "-", "-", "3e1f2a4b..:1-25", "-"]
    # A stopped SQL thread without an error shows why the replica is unhealthy.
    assert lines[2].split()[:7] == ["db-1", "replica", "101", "Yes", "No", "-", "3e1f2a4b..:1-24"]
    assert lines[2].endswith("SQL thread not running (No)")
    assert lines[3].endswith("IO 1236: Got fatal error 1236 from source") and " 0s " in lines[3]
    assert "0-100-12" in lines[3]
    assert lines[4].split()[:2] == ["db-3", "unreachable"] and lines[4].endswith("cannot query db-3: refused")
    # Columns line up: every column but the last starts at the same offset on every line.
    starts = [lines[0].index(c) for c in TABLE_COLUMNS]
    for line in lines[1:]:
        for start in starts[1:]:
            assert line[start - 2:start] == "  ", (line, start)
    assert all(line == line.rstrip() for line in lines)


def test_long_error_is_cut():
    server = dict(BROKEN, last_io_error="x" * 500)
    assert len(format_table([server], error_width=60)[1].split("  ")[-1].strip()) <= 60
