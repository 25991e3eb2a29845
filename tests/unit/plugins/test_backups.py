"""Which backups restore.yml accepts for a cluster (plugins/filter/backups.py),
read against the role's own flavor table; list_backups.yml's table line.
The backups and restores themselves are proven on real pods in
tests/e2e/test_backup.py."""
import os

import pytest
import yaml

from ansible_collections.stateful.mysql.plugins.filter.backups import backup_line, backup_refusal

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FLAVORS = yaml.safe_load(open(os.path.join(ROOT, "roles/mysql_cluster/vars/main.yml")))["_mysql_cluster_flavors"]


def manifest(flavor, version, server):
    return {"id": "db-20261207T150102Z", "flavor": flavor, "version": version, "server_version": server,
            "file": "data.xbstream", "format": "xbstream", "sha256": "0" * 64, "gtid": "0-100-7",
            "finished": "2026-12-07T15:01:40Z", "size": 3145728, "source": "db-1"}


@pytest.mark.parametrize("backup, cluster, refusal", [
    (("mariadb", "11.8", "11.8.9"), ("mariadb", "11.8"), ""),
    (("mysql", "9.7", "9.7.4"), ("mysql", "9.7"), ""),
    # An older backup on a version reached from it in one step: the restored
    # primary runs the upgrade step.
    (("mariadb", "10.11", "10.11.18"), ("mariadb", "11.8"), ""),
    (("mysql", "8.4", "8.4.7"), ("mysql", "9.7"), ""),
    (("mariadb", "11.8", "11.8.9"), ("mysql", "9.7"),
     "it is a backup of mariadb 11.8 and this cluster runs mysql (mysql_cluster_flavor): restore it into a mariadb "
     "cluster (-e mysql_cluster_flavor=mariadb -e mysql_cluster_version=11.8)"),
    (("mariadb", "11.8", "11.8.9"), ("mariadb", "10.11"),
     "it is a backup of server 11.8.9, newer than this cluster's 10.11 (mysql_cluster_version): an older server "
     "cannot read its data; restore it with -e mysql_cluster_version=11.8"),
    (("mysql", "5.7", "5.7.44"), ("mysql", "9.7"),
     "it is a backup of mysql 5.7, and mysql 9.7 is reached from 8.4 only (mysql_cluster_version): restore it with "
     "-e mysql_cluster_version=5.7, then upgrade the cluster step by step"),
])
def test_restore_accepts_its_flavor_and_supported_versions(backup, cluster, refusal):
    assert backup_refusal(manifest(*backup), cluster[0], cluster[1], FLAVORS[cluster[0]]) == refusal


def test_a_manifest_without_its_fields_is_refused():
    m = manifest("mariadb", "11.8", "11.8.9")
    del m["sha256"]
    m["gtid"] = ""
    assert backup_refusal(m, "mariadb", "11.8", FLAVORS["mariadb"]) == "its manifest lacks sha256, gtid"
    assert backup_refusal("not json", "mariadb", "11.8", FLAVORS["mariadb"]) == "its manifest is not a JSON object"


def test_the_list_line():
    assert backup_line(manifest("mariadb", "11.8", "11.8.9")) == \
        "db-20261207T150102Z | 2026-12-07T15:01:40Z | 3.0 | 0-100-7 | mariadb 11.8.9 | db-1 | no"
    encrypted = dict(manifest("mysql", "9.7", "9.7.4"), encryption="aes-256-ctr pbkdf2-sha256 200000")
    assert backup_line(encrypted).endswith(" | yes")
