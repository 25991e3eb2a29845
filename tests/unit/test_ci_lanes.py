"""Every e2e file runs in CI: tests/e2e/e2e.mk splits them into the two
pytest sessions the tiers run in their two lanes (tests/ci.sh), and a file
in neither would never run, one in both would run twice."""
import glob
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def make_list(name):
    text = open(os.path.join(ROOT, "tests", "e2e", "e2e.mk")).read().replace("\\\n", " ")
    m = re.search(r"^%s\s*:=\s*(.*)$" % name, text, re.M)
    assert m, name
    return m.group(1).split()


def test_every_e2e_file_is_in_exactly_one_session():
    shared, own = make_list("E2E_SHARED"), make_list("E2E_OWN")
    files = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "tests", "e2e", "test_*.py")))
    assert sorted(shared + own) == files, (shared, own, files)


def test_the_shared_clusters_stay_in_one_session():
    """deployed_cluster is a session fixture: a file of the other session
    that used it would deploy the shared clusters a second time."""
    for path in make_list("E2E_OWN"):
        assert "deployed_cluster" not in open(os.path.join(ROOT, path)).read(), path


def test_both_tiers_run_both_sessions():
    ci = open(os.path.join(ROOT, "tests", "ci.sh")).read()
    for tier in ("landing", "full"):
        block = ci.split('if [ "$tier" = landing ]; then')[1].split("fi")[0]
        part = block.split("else")[0 if tier == "landing" else 1]
        goals = " ".join(re.findall(r'"([^"]*)"', part)).split()
        assert "e2e-shared" in goals and "e2e-own" in goals, (tier, goals)


def test_the_shared_session_runs_test_site_last():
    """Its drills leave the shared clusters changed (a fourth pod, restarted
    servers, reseeded): every other file of the session runs before it."""
    shared = make_list("E2E_SHARED")
    assert shared[-1] == "tests/e2e/test_site.py", shared
    assert shared.index("tests/e2e/test_primary_recovery.py") < shared.index("tests/e2e/test_site.py")
