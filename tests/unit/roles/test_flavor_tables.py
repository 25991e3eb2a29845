"""One source per fact: the role's flavor table (what the pod scripts do,
through cluster.env) and the modules' SQL table (plugins/module_utils/sql.py)
must say the same for every server line the role supports."""
import os

import pytest
import yaml

from ansible_collections.stateful.mysql.plugins.module_utils.sql import Dialect, ServerVersion

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FLAVORS = yaml.safe_load(open(os.path.join(ROOT, "roles/mysql_cluster/vars/main.yml")))["_mysql_cluster_flavors"]
LINES = [(flavor, version) for flavor, rows in FLAVORS.items() for version in rows]


def dialects(flavor, version):
    """The first and a late patch release of a server line: the row holds for all of them."""
    major, minor = (int(p) for p in version.split("."))
    return [Dialect(ServerVersion(flavor, (major, minor, patch))) for patch in (0, 99)]


@pytest.mark.parametrize("flavor,version", LINES, ids=["%s-%s" % line for line in LINES])
def test_role_and_modules_use_the_same_replication_words(flavor, version):
    row = FLAVORS[flavor][version]
    # probe.sh runs SHOW <REPLICA_WORDS> STATUS; the modules run replica_status().
    for dialect in dialects(flavor, version):
        assert "SHOW %s STATUS" % row["replica_words"].upper() == dialect.replica_status(), (flavor, version)


@pytest.mark.parametrize("flavor,version", LINES, ids=["%s-%s" % line for line in LINES])
def test_role_gtid_only_where_the_server_has_it(flavor, version):
    row = FLAVORS[flavor][version]
    for dialect in dialects(flavor, version):
        has_gtid = dialect.server.is_mariadb or dialect.has_gtid_executed
        assert has_gtid or not row["gtid"], (flavor, version)
        # The copy method the role uses exists for that server.
        assert row["copy_method"] == ("mariabackup" if flavor == "mariadb" else
                                      "clone" if dialect.server.at_least(8, 0, 17) else "xtrabackup")
