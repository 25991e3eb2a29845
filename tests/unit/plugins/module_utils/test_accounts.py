"""Privilege lists of mysql_accounts: parsed, read back from SHOW GRANTS, turned into GRANTs."""
import pytest

from ansible_collections.stateful.mysql.plugins.module_utils import accounts as ac


def test_privileges_parse_into_objects_and_sets():
    assert ac.parse_privileges(["shop.*:select, Insert", "shop.orders:UPDATE", "*.*:ALL"]) == {
        "shop.*": {"SELECT", "INSERT"}, "shop.orders": {"UPDATE"}, "*.*": {"ALL PRIVILEGES"}}


@pytest.mark.parametrize("entry, words", [
    ("shop.*", "DATABASE.TABLE:PRIV"),
    ("shop:SELECT", "the object must be"),
    ("*.orders:SELECT", "the object must be"),
    ("mysql.*:SELECT", "the server's own database"),
    ("shop.*:SUPER", "SUPER not among"),
    ("shop.*:GRANT OPTION", "GRANT OPTION not among"),
    ("sh op.*:SELECT", "the object must be"),
])
def test_what_cannot_be_granted_is_refused_naming_the_entry(entry, words):
    with pytest.raises(ac.AccountError, match=words):
        ac.parse_privileges([entry])


def test_show_grants_of_both_flavors_read_back_the_same():
    mysql = ["GRANT USAGE ON *.* TO `shop`@`%`", "GRANT SELECT, INSERT ON `shop`.* TO `shop`@`%`"]
    mariadb = ["GRANT USAGE ON *.* TO `shop`@`%` IDENTIFIED BY PASSWORD '*ABC' REQUIRE SSL",
               "GRANT SELECT, INSERT ON `shop`.* TO `shop`@`%`"]
    assert ac.granted(mysql) == ac.granted(mariadb) == {"shop.*": {"SELECT", "INSERT"}}
    assert ac.granted(["GRANT ALL PRIVILEGES ON `shop`.* TO `shop`@`%` WITH GRANT OPTION"]) == {
        "shop.*": {"ALL PRIVILEGES", "GRANT OPTION"}}


def test_grants_change_only_when_they_differ():
    wanted = {"shop.*": {"SELECT", "INSERT"}}
    assert ac.grant_statements("shop", "%", wanted, {"shop.*": {"INSERT", "SELECT"}}) == []
    assert ac.grant_statements("shop", "%", wanted, {"shop.*": {"SELECT"}}) == [
        ("REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s@%s", ("shop", "%")),
        ("GRANT INSERT, SELECT ON `shop`.* TO %s@%s", ("shop", "%"))]
    assert ac.grant_statements("shop", "%", wanted, {}) == [("GRANT INSERT, SELECT ON `shop`.* TO %s@%s", ("shop", "%"))]


def _params(users, databases=(), root_host=None):
    base = dict(name=None, host="%", password_secret="s", password_key="password", privileges=[], require_ssl=True,
                state="present")
    return {"reserved_users": ["root", "repl", "donor"], "databases": list(databases),
            "users": [dict(base, **u) for u in users], "root_host": root_host}


@pytest.mark.parametrize("users, databases, words", [
    ([{"name": "repl"}], (), "'repl' is an account of the cluster itself"),
    ([{"name": "stateful_verify_probe"}], (), "account of the cluster itself"),
    ([{"name": "shop", "password_secret": None}], (), "needs password_secret"),
    ([{"name": "shop"}, {"name": "shop"}], (), "listed twice"),
    ([{"name": "shop", "host": "a'b"}], (), "not a host pattern"),
    ([], ("mysql",), "the server's own"),
])
def test_the_module_refuses_before_any_server_is_asked(users, databases, words):
    from ansible_collections.stateful.mysql.plugins.modules.mysql_accounts import check_input
    with pytest.raises(ac.AccountError, match=words):
        check_input(_params(users, databases))


@pytest.mark.parametrize("root_host", ["", "localhost", "LocalHost", "a'b"])
def test_a_root_host_that_is_not_a_pattern_or_is_localhost_is_refused(root_host):
    from ansible_collections.stateful.mysql.plugins.modules.mysql_accounts import check_input
    with pytest.raises(ac.AccountError, match="root_host"):
        check_input(_params([], root_host=root_host))


# SHOW GRANTS FOR repl@'%' as each flavor prints it: a cluster made before
# the replication user's reads, and one made after.
OLD = {"mysql": ["GRANT REPLICATION SLAVE ON *.* TO `repl`@`%`"],
       "mariadb": ["GRANT REPLICATION SLAVE ON *.* TO `repl`@`%` IDENTIFIED BY PASSWORD '*AB' REQUIRE SSL"]}
NEW = {"mysql": ["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `repl`@`%`",
                 "GRANT SELECT ON `stateful_verify`.* TO `repl`@`%`"],
       "mariadb": ["GRANT REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR ON *.* TO `repl`@`%` IDENTIFIED BY "
                   "PASSWORD '*AB' REQUIRE SSL", "GRANT SELECT ON `stateful_verify`.* TO `repl`@`%`"]}


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
def test_the_replication_users_missing_reads_are_named(flavor):
    from ansible_collections.stateful.mysql.plugins.modules.mysql_accounts import missing_reads, replication_reads
    mariadb = flavor == "mariadb"
    assert missing_reads(OLD[flavor], mariadb) == (list(replication_reads(mariadb)), True)
    assert missing_reads(NEW[flavor], mariadb) == ([], False)
    # MariaDB may print the newer alias.
    assert missing_reads([g.replace("SLAVE MONITOR", "REPLICA MONITOR") for g in NEW[flavor]], mariadb) == ([], False)
    # SELECT on another schema is not the verify read.
    assert missing_reads(NEW[flavor][:1] + ["GRANT SELECT ON `shop`.* TO `repl`@`%`"], mariadb)[1] is True
