"""The bench/ harness's judging parts, without a cluster: what counts as a
message naming the variable, what counts as a leaked secret, the
profile_tasks parse, and a report that lists unmeasured targets."""
import json
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
sys.path.insert(0, os.path.abspath(BENCH))

import bad_inputs  # noqa: E402
import common  # noqa: E402
import report  # noqa: E402
import secrets_vvv  # noqa: E402

FATAL = """TASK [stateful.mysql.mysql_cluster : Check the replica count] ****
fatal: [localhost]: FAILED! =>
    assertion: mysql_cluster_replicas is none or mysql_cluster_replicas | int >= 1
    changed: false
    evaluated_to: false
    msg: %s

PLAY RECAP *********************************************************************
"""


def test_the_message_not_the_assertion_must_name_the_variable():
    # The assertion names the variable; a message that does not is a miss.
    assert "mysql_cluster_replicas" not in bad_inputs.failure_text(FATAL % "must be from 1 to 50")
    text = bad_inputs.failure_text(FATAL % "mysql_cluster_replicas (replicas=0) must be from 1 to 50")
    assert "mysql_cluster_replicas" in text


def test_at_least_twenty_distinct_bad_inputs():
    keys = {(p, json.dumps(bad, sort_keys=True)) for p, bad, _names in bad_inputs.CASES}
    assert len(keys) == len(bad_inputs.CASES) >= 20
    assert {case[0] for case in bad_inputs.CASES} == {"site.yml", "scale.yml", "teardown.yml"}


@pytest.mark.parametrize("form", ["raw", "json", "base64"])
def test_a_secret_is_seen_in_every_form(form):
    pw = {"mysql_cluster_root_password": "R'o\"ot`$(id)\\ x"}
    out = "ok: [localhost] => %s\n" % secrets_vvv.forms(pw["mysql_cluster_root_password"])[form]
    assert secrets_vvv.scan(out, pw) == ["mysql_cluster_root_password (%s)" % form]
    assert secrets_vvv.scan("nothing here", pw) == []


def test_profile_tasks_recap_is_parsed_slowest_first():
    out = ("Tuesday 01 December 2026  19:20:00 +0000 (0:00:01.234)       0:00:05.678 *****\n"
           "===============================================================================\n"
           "stateful.mysql.mysql_cluster : Apply the StatefulSet ---------------------- 1.23s\n"
           "stateful.mysql.mysql_cluster : Wait until every pod is Ready ------------- 6.65s\n")
    top = common.profile_top(out)
    assert [t["seconds"] for t in top] == [6.65, 1.23]
    assert top[0]["task"].endswith("Wait until every pod is Ready")


def test_report_lists_every_target_without_a_result_as_not_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", str(tmp_path))
    with open(report.write()) as fh:
        text = fh.read()
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "target |" not in ln]
    assert len(rows) == len(report.PLANNED)
    assert all(ln.endswith("| not measured yet |") for ln in rows)


def _result(tmp_path, name, targets, repetitions):
    data = {"name": name, "title": name, "smoke": False, "command": "bench/run.py " + name, "commit": "0" * 40,
            "date": "2026-12-02", "machine": {"cores": 2, "memory_bytes": 2**34}, "versions": {},
            "targets": targets, "repetitions": repetitions, "notes": []}
    with open(os.path.join(str(tmp_path), name + ".json"), "w") as fh:
        json.dump(data, fh)


def test_a_drill_with_one_bad_repetition_is_a_miss_and_its_row_says_which(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", str(tmp_path))
    monkeypatch.setattr(report, "PLOTS", {})
    target = "drill c: delete all pods, data intact"
    _result(tmp_path, "delete_all", [{"target": target, "measured": "1/2 intact", "pass": False, "figure": 1}],
            [{"rep": 1, "ok": True, "rows": 200, "rows_after": 200, "load_before": [1], "load_after": [1]},
             {"rep": 2, "ok": False, "rows": 400, "rows_after": 399, "load_before": [1], "load_after": [1]}])
    _result(tmp_path, "replica_count", [{"target": "site.yml time against replica count 1..6, mysql and mariadb",
                                         "measured": "mariadb 10.11 1: 30 s", "pass": "info", "figure": None}],
            [{"flavor": "mariadb 10.11", "replicas": 1, "seconds": 30.0, "load_before": [1], "load_after": [1]}])
    with open(report.write()) as fh:
        text = fh.read()
    assert "| %s | 1/2 intact | **miss** |" % target in text
    assert "| 2 | 400 | 399 | **miss** " in text and "| 1 | 200 | 200 | pass |" in text
    assert "| mariadb 10.11 1: 30 s | measured (no target) |" in text


def test_a_repetition_whose_pod_waited_to_be_scheduled_is_not_judged():
    import time_to_cluster
    quick = {"mysql-0": {"created_to_scheduled": 0.1}, "mysql-1": {"created_to_scheduled": 2.0}}
    slow = dict(quick, **{"mysql-0": {"created_to_scheduled": 185.0}})
    assert time_to_cluster.starved({"pods": quick}) == []
    assert time_to_cluster.starved({"pods": slow}) == ["mysql-0"]
    assert time_to_cluster.starved({"error": "boom"}) == []


def _copy_result(smoke, rates):
    import copy_throughput
    res = common.Result.__new__(common.Result)
    res.data = {"smoke": smoke, "targets": [], "repetitions": [
        {"flavor": flavor, "kind": kind, "mb_s": mb_s} for flavor, kind, mb_s in rates]}
    copy_throughput.judge(res)
    return res.data["targets"][0]


def test_copy_throughput_judges_each_copy_against_its_own_yardstick():
    # The stream against the raw stream, CLONE against the disk; medians.
    both = [("mariadb 10.11", "stream", 130), ("mariadb 10.11", "raw", 200), ("mariadb 10.11", "dd", 900),
            ("mysql 9.7", "clone", 500), ("mysql 9.7", "clone", 560), ("mysql 9.7", "dd", 800)]
    t = _copy_result(False, both)
    assert t["pass"] is True and "65% of raw" in t["measured"] and "CLONE 530 MB/s = 66%" in t["measured"]
    slow_clone = both[:3] + [("mysql 9.7", "clone", 395), ("mysql 9.7", "dd", 961)]
    t = _copy_result(False, slow_clone)
    assert t["pass"] is False and "CLONE 395 MB/s = 41% of dd fdatasync 961 MB/s" in t["measured"]
    # The smoke has no CLONE: a good stream alone is not a pass, a bad one is a miss.
    assert _copy_result(True, both[:3])["pass"] is None
    assert _copy_result(True, [("mariadb 10.11", "stream", 50), ("mariadb 10.11", "raw", 200)])["pass"] is False
