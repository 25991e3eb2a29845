"""returning.sh's MariaDB rule for a returning replica (mariadb_gtid_verdict):
resume by replication only when the primary still holds every binary log it
needs and it holds nothing the primary lacks; otherwise say why."""
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
    else:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert case["reason"] in proc.stdout, proc.stdout
