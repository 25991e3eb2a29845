"""Benchmark 5's judging parts (bench/lag.py), without a cluster: the
percentile, the lag of a sample (the age of the oldest row the replica
lacks), which step is judged, and its report rows."""
import datetime
import json
import os
import sys

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
sys.path.insert(0, os.path.abspath(BENCH))

import lag  # noqa: E402
import report  # noqa: E402

T0 = datetime.datetime(2026, 12, 2, 12, 0, 0)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert lag.percentile(values, 50) == 50
    assert lag.percentile(values, 99) == 99
    assert lag.percentile(values, 100) == 100
    # Of 10 samples the p99 is the largest: one slow sample in ten is not hidden.
    assert lag.percentile([0.01] * 9 + [2.0], 99) == 2.0
    assert lag.percentile([], 99) is None


def test_lag_is_the_age_of_the_oldest_row_not_applied():
    committed = [(11, at(0.0)), (12, at(0.5)), (13, at(1.0))]
    samples = [(10, at(-0.1)),  # before the first row: not behind
               (10, at(0.2)),   # lacks row 11, written 0.2 s before
               (12, at(1.25)),  # lacks row 13, written 0.25 s before
               (13, at(1.3))]   # has every row
    assert [round(x, 3) for x in lag.lag_seconds(samples, committed)] == [0.0, 0.2, 0.25, 0.0]


def test_a_stopped_replica_lags_more_at_every_sample():
    committed = [(i, at(i / 100.0)) for i in range(1, 1001)]  # 100 rows/s for 10 s
    stuck = [(100, at(t / 10.0)) for t in range(10, 100)]     # stopped after row 100 (1.0 s)
    lags = lag.lag_seconds(stuck, committed)
    assert lags == sorted(lags) and lags[-1] > 8.0
    assert lag.summary(lags)["p99"] > lag.LIMIT


def test_the_judged_step_is_each_flavors_highest_achieved_rate():
    reps = [{"flavor": "mariadb 10.11", "target_rate": 2000, "achieved_rate": 1400.0, "p99": 0.2},
            {"flavor": "mariadb 10.11", "target_rate": None, "achieved_rate": 1900.0, "p99": 0.4},
            {"flavor": "mysql 9.7", "target_rate": 500, "achieved_rate": 499.0, "p99": 0.01},
            {"flavor": "mysql 9.7", "error": "boom", "ok": False}]
    top = lag.highest(reps)
    assert top["mariadb 10.11"]["target_rate"] is None
    assert top["mysql 9.7"]["achieved_rate"] == 499.0


def test_report_rows_of_a_lag_run(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", str(tmp_path))
    monkeypatch.setattr(report, "PLOTS", {})
    rep = {"flavor": "mariadb 10.11", "target_rate": 2000, "achieved_rate": 1400.0, "sustained": False,
           "p50": 0.05, "p99": 6.25, "max": 6.3, "samples": 186, "drain_seconds": 1.6, "ok": False,
           "load_before": [3.7], "load_after": [4.5]}
    data = {"name": "lag", "title": "lag", "smoke": False, "command": "bench/run.py lag", "commit": "0" * 40,
            "date": "2026-12-02", "machine": {"cores": 2, "memory_bytes": 2**34}, "versions": {},
            "targets": [{"target": lag.TARGET, "measured": "mariadb 10.11: p99 6.25 s at 1400 tx/s",
                         "pass": False, "figure": 6.25}],
            "repetitions": [rep, {"flavor": "mysql 9.7", "error": "site.yml failed", "ok": False}], "notes": []}
    with open(os.path.join(str(tmp_path), "lag.json"), "w") as fh:
        json.dump(data, fh)
    with open(report.write()) as fh:
        text = fh.read()
    assert "| %s | mariadb 10.11: p99 6.25 s at 1400 tx/s | **miss** |" % lag.TARGET in text
    assert "| mariadb 10.11 | 2000 | 1400.0 (not reached) | 0.05 | 6.25 | 6.3 | 186 | 1.6 | **miss** |" in text
    assert "| mysql 9.7 | - | error: site.yml failed |" in text
