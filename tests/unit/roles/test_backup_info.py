"""init.sh's reading of a physical backup (backup-info.sh): both file
names, 2 and 3 fields, and a clear refusal of an incomplete copy."""
import os
import subprocess

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(os.path.join(HERE, "..", "..", "..", "roles/mysql_cluster/files/scripts/backup-info.sh"))
CASES = yaml.safe_load(open(os.path.join(HERE, "test_backup_info.yaml")))
# The same steps as init.sh's copy_by_stream, with its messages.
CHECK = r'''
set -euo pipefail
source "$1"
die() { echo "ERROR: $*"; exit 3; }
backup_file "$2" checkpoints >/dev/null || die "incomplete backup: no mariadb_backup_checkpoints or xtrabackup_checkpoints"
info=$(backup_file "$2" binlog_info) || die "incomplete backup: no mariadb_backup_binlog_info or xtrabackup_binlog_info"
read_binlog_info "$info" || die "cannot parse $info"
printf '%s|%s|%s\n' "$BINLOG_FILE" "$BINLOG_POS" "$BINLOG_GTID"
'''


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
