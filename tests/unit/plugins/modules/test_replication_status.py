"""replication_status: the wait and timeout paths, with a stand-in for the servers."""

import itertools

import pytest

from ansible_collections.stateful.mysql.plugins.modules import replication_status
from module_runner import run_module


def report(name, ordinal, problems):
    return {"name": name, "ordinal": ordinal, "healthy": not problems, "problems": problems, "reachable": True}


class FakeCluster:
    """Answers each round from a script of (healthy, [reports])."""
    rounds = []

    def __init__(self, module):
        self.module = module
        self.queries = ["SHOW REPLICA STATUS"]
        self.closed = False
        self._rounds = iter(self.rounds)
        self._last = None

    def close(self):
        self.closed = True


@pytest.fixture
def fake(monkeypatch):
    state = {}

    def install(rounds):
        FakeCluster.rounds = rounds
        it = itertools.chain(rounds, itertools.repeat(rounds[-1]))

        def cluster_status(cluster, max_lag):
            state["max_lag"] = max_lag
            servers = next(it)
            return all(s["healthy"] for s in servers), servers
        monkeypatch.setattr(replication_status, "Cluster", FakeCluster)
        monkeypatch.setattr(replication_status, "cluster_status", cluster_status)
        return state
    return install


ARGS = {"name": "mysql", "namespace": "db", "login_password": "pw"}


def test_timeout_names_pod_and_reason(fake, capsys):
    fake([[report("mysql-0", 0, []), report("mysql-1", 1, ["IO thread not running (Connecting)"]),
           report("mysql-2", 2, [])]])
    result = run_module(replication_status, dict(ARGS, wait=True, wait_timeout=1, wait_sleep=1), capsys)
    assert result["failed"] is True
    assert result["msg"] == ("replication of StatefulSet db/mysql not healthy after 1s: "
                             "mysql-1: IO thread not running (Connecting)")
    assert result["unhealthy"] == [{"name": "mysql-1", "problems": ["IO thread not running (Connecting)"]}]
    assert result["elapsed"] >= 1


def test_no_wait_reports_without_failing(fake, capsys):
    state = fake([[report("mysql-0", 0, ["primary is read_only"])]])
    result = run_module(replication_status, dict(ARGS, max_lag=5), capsys)
    assert "failed" not in result and result["healthy"] is False and result["changed"] is False
    assert state["max_lag"] == 5


def test_wait_until_healthy(fake, capsys):
    bad = [report("mysql-0", 0, []), report("mysql-1", 1, ["lag 90s > max_lag 60s"])]
    good = [report("mysql-0", 0, []), report("mysql-1", 1, [])]
    fake([bad, good])
    result = run_module(replication_status, dict(ARGS, wait=True, wait_timeout=30, wait_sleep=1), capsys,
                        check_mode=True)
    assert result["healthy"] is True and 0.9 <= result["elapsed"] < 5
    assert result["queries"] == ["SHOW REPLICA STATUS"]


def test_broken_replica_ends_the_wait_at_once(fake, capsys):
    broken = dict(report("mysql-2", 2, ["IO thread not running (No): error 1236: purged",
                                        "the primary no longer holds the binary logs this replica needs"]),
                  broken="binlogs_purged")
    fake([[report("mysql-0", 0, []), report("mysql-1", 1, []), broken]])
    result = run_module(replication_status, dict(ARGS, wait=True, wait_timeout=60, wait_sleep=1), capsys)
    assert result["failed"] is True and result["elapsed"] < 5
    assert result["msg"].startswith("replication of StatefulSet db/mysql: waiting cannot heal mysql-2: mysql-2: IO thread")
    assert result["broken"] == [{"name": "mysql-2", "reason": "binlogs_purged", "problems": broken["problems"]}]
