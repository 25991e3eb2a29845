"""The tiers' selection (tests/tiers.py) and the time report CI ends with
(tests/ci_report.py), on made-up items and timing files."""
import io
import types

import pytest

import ci_report
import tiers


class Item:
    def __init__(self, markers=(), params=None, id_=None):
        self.markers = {m.name: m for m in markers}
        self.callspec = types.SimpleNamespace(params=params, id=id_) if params is not None else None

    def get_closest_marker(self, name):
        return self.markers.get(name)


def mark(name, *args):
    return types.SimpleNamespace(name=name, args=args)


@pytest.mark.parametrize("item, landing", [
    (Item(), True),
    (Item([mark("full_tier")]), False),
    # The shared cluster: the landing flavors unless narrowed.
    (Item(params={"deployed_cluster": ("mysql", "9.7")}, id_="mysql-9.7"), True),
    (Item(params={"deployed_cluster": ("mariadb", "10.11")}, id_="mariadb-10.11"), False),
    (Item([mark("landing", "mariadb-11.8")], {"deployed_cluster": ("mysql", "9.7")}, "mysql-9.7"), False),
    (Item([mark("landing", "mariadb-11.8")], {"deployed_cluster": ("mariadb", "11.8")}, "mariadb-11.8"), True),
    # Other parameters: by their id.
    (Item([mark("landing", "mariadb")], {"solo_mariadb": "mariadb"}, "mariadb"), True),
    (Item([mark("landing", "mariadb")], {"solo_mariadb": "mysql"}, "mysql"), False),
    (Item(params={"cluster": ("mysql", "9.7")}, id_="mysql-9.7"), True),
])
def test_landing_selection(item, landing):
    assert tiers.in_landing(item) is landing


def test_the_full_tier_deselects_nothing(monkeypatch):
    monkeypatch.setattr(tiers, "TIER", "full")
    items = [Item([mark("full_tier")]), Item()]
    tiers.select(None, items)
    assert len(items) == 2


def test_the_landing_tier_deselects_and_reports_it(monkeypatch):
    monkeypatch.setattr(tiers, "TIER", "landing")
    deselected = []

    def pytest_deselected(items):
        deselected.extend(items)
    config = types.SimpleNamespace(hook=types.SimpleNamespace(pytest_deselected=pytest_deselected))
    full, kept = Item([mark("full_tier")]), Item()
    items = [full, kept]
    tiers.select(config, items)
    assert items == [kept] and deselected == [full]


JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="tests.e2e.test_site" name="test_a[mysql-9.7]" time="120.5"/>
<testcase classname="tests.e2e.test_site" name="test_b[mysql-9.7]" time="3.0"><failure message="x"/></testcase>
<testcase classname="tests.e2e.test_site" name="test_c" time="40.0"/>
</testsuite></testsuites>"""


def report(tmp_path, cache, end):
    (tmp_path / "junit").mkdir()
    (tmp_path / "junit" / "e2e.xml").write_text(JUNIT)
    (tmp_path / "timings.tsv").write_text(
        "tier\tlanding\t%s\t1000\nstep\tunits\t1000\t1100\t0\nstep\te2e\t1100\t%d\t2\n" % (cache, end))
    out = io.StringIO()
    total = ci_report.report(str(tmp_path), now=end, out=out)
    return total, out.getvalue()


def test_report_names_each_step_the_slowest_tests_and_the_budget(tmp_path):
    total, text = report(tmp_path, "warm", 3000)
    assert total == 2000
    lines = text.splitlines()
    assert any(line.split()[:2] == ["units", "100"] for line in lines), text
    assert any(line.split()[:2] == ["e2e", "1900"] and "FAILED rc=2" in line for line in lines), text
    slow = [line for line in lines if line.strip().endswith("]") or "test_c" in line]
    assert "test_a[mysql-9.7]" in slow[0] and "test_c" in slow[1] and "[FAILED]" in slow[2], text
    assert lines[-1].startswith("----- landing tier: 2000 s") and "2400 s budget (warm cache): within" in lines[-1]


def test_report_says_over_budget(tmp_path):
    _total, text = report(tmp_path, "cold", 1000 + 4000)
    assert "3900 s budget (cold cache): OVER" in text.splitlines()[-1]


def test_report_without_files_still_ends_with_a_total(tmp_path):
    out = io.StringIO()
    ci_report.report(str(tmp_path / "none"), since=100, now=160, out=out)
    assert "(no step timings recorded)" in out.getvalue() and "60 s" in out.getvalue().splitlines()[-1]


def test_tier_must_be_named(monkeypatch):
    import importlib
    monkeypatch.setenv("STATEFUL_MYSQL_TIER", "fast")
    try:
        with pytest.raises(SystemExit, match="use landing or full"):
            importlib.reload(tiers)
    finally:
        monkeypatch.undo()
        importlib.reload(tiers)
