"""init.sh's reading of a physical backup (backup-info.sh): both file
names, 2 and 3 fields, and a clear refusal of an incomplete copy."""
import os
import subprocess

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(os.path.join(HERE, "..", "..", "..", "roles/mysql_cluster/files/scripts/backup-info.sh"))
CASES = yaml.safe_load(open(os.path.join(HERE, "test_backup_info.yaml")))
INIT = os.path.join(os.path.dirname(SCRIPT), "init.sh")
# backup-info.sh's check_backup, the function init.sh runs on a received
# backup; the harness only prints what it found.
CHECK = r'''
set -euo pipefail
source "$1"
check_backup "$2" || { echo "ERROR: $BACKUP_PROBLEM"; exit 3; }
printf '%s|%s|%s\n' "$BINLOG_FILE" "$BINLOG_POS" "$BINLOG_GTID"
'''


def test_init_runs_the_tested_check():
    """init.sh gives a donor up with check_backup's own message (and tries
    the next): what is tested here is what runs in the pod."""
    text = open(INIT).read()
    assert 'elif ! check_backup "$DATADIR"; then\n      why=$BACKUP_PROBLEM' in text


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_backup_info(tmp_path, case):
    for name, content in case["files"].items():
        (tmp_path / name).write_text(content)
    proc = subprocess.run(["bash", "-c", CHECK, "check", SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, check=False)
    if "error" in case:
        assert proc.returncode == 3 and case["error"] in proc.stdout, proc.stdout + proc.stderr
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        e = case["expect"]
        assert proc.stdout.strip() == "%s|%s|%s" % (e["file"], e["pos"], e["gtid"])
