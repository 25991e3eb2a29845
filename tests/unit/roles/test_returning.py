"""returning.sh's rules for a returning replica: resume by replication only
when the primary still holds every binary log it needs and it holds nothing
the primary lacks; re-copy only for its own errant transactions or a purge;
keep everything when the primary is behind it. Also the GTID helpers the
donor checks use (mysql_gtid_split, mariadb_ahead)."""
import os
import subprocess

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(os.path.join(HERE, "..", "..", "..", "roles/mysql_cluster/files/scripts/returning.sh"))
CASES = yaml.safe_load(open(os.path.join(HERE, "test_returning.yaml")))
CHECK = r'''
set -euo pipefail
source "$1"
shift
mariadb_gtid_verdict "$@"
'''


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_mariadb_gtid_verdict(case):
    a = case["args"]
    proc = subprocess.run(["bash", "-c", CHECK, "check", SCRIPT, a["slave"], a["binlog"], a["own"],
                           a["primary"], a["first"]], capture_output=True, text=True, check=False)
    if case.get("resume"):
        assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    elif case.get("behind"):
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert proc.stdout.startswith("the primary is behind") and case["behind"] in proc.stdout, proc.stdout
    else:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert case["reason"] in proc.stdout, proc.stdout


def run(function, *args):
    proc = subprocess.run(["bash", "-c", 'set -euo pipefail; source "$1"; shift; "$@"', "run", SCRIPT, function, *args],
                          capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.mark.parametrize("gtids, uuid, expected", [
    ("aaa:1-5,bbb:1-3", "aaa", "aaa:1-5|bbb:1-3"),
    ("aaa:1-5:7-9,\n bbb:1-3,ccc:4", "bbb", "bbb:1-3|aaa:1-5:7-9 ccc:4"),
    ("", "aaa", "|"),
    ("bbb:1", "aaa", "|bbb:1"),
])
def test_mysql_gtid_split(gtids, uuid, expected):
    own, foreign = run("mysql_gtid_split", gtids.replace("\\n", "\n"), uuid).split("|")
    want_own, want_foreign = expected.split("|")
    assert own.replace(" ", ",") == want_own.replace(" ", ",") and foreign.replace(" ", ",") == want_foreign.replace(" ", ",")


@pytest.mark.parametrize("pos, other, ahead", [
    ("0-100-8", "0-100-9", ""),
    ("0-100-9", "0-100-9", ""),
    ("0-100-10", "0-100-9", "0-100-10"),
    ("0-101-9", "0-100-9", "0-101-9"),
    ("0-100-3,1-100-2", "0-100-9", "1-100-2"),
    ("", "0-100-9", ""),
    ("0-100-3, 1-100-2", "0-100-9,1-100-5", ""),
])
def test_mariadb_ahead(pos, other, ahead):
    assert run("mariadb_ahead", pos, other) == ahead


def test_mariadb_own_finds_the_server_id_in_the_state():
    assert run("mariadb_own", "0-102-9,0-100-12,1-102-1", "102") == "0-102-9,1-102-1"
    assert run("mariadb_own", "0-100-12", "102") == ""
