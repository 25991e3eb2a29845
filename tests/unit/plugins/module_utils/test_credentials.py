"""The rotation plan kept in the credentials Secret, and each step's statements per flavor."""
import hashlib

import pytest

from ansible_collections.stateful.mysql.plugins.module_utils import credentials as cr
from ansible_collections.stateful.mysql.plugins.module_utils.accounts import secret_positions
from ansible_collections.stateful.mysql.plugins.module_utils.sql import Dialect

IN_USE = {"root-password": "r0", "replication-password": "p0", "clone-password": "c0", "other": "kept"}


def test_an_idle_secret_rotates_what_is_asked():
    state, old, new = cr.rotation_state(IN_USE, ["replication-password"])
    assert (state, old, new) == (cr.IDLE, {"replication-password": "p0"}, {})


def test_a_plan_in_the_secret_wins_over_what_is_asked():
    data = dict(IN_USE, **{"rotation-next-clone-password": "c1"})
    assert cr.rotation_state(data, ["root-password"]) == (cr.ADDING, {"clone-password": "c0"}, {"clone-password": "c1"})
    data = dict(IN_USE, **{"clone-password": "c1", "rotation-previous-clone-password": "c0"})
    assert cr.rotation_state(data, ["root-password"]) == (cr.SWITCHED, {"clone-password": "c0"},
                                                          {"clone-password": "c1"})


@pytest.mark.parametrize("data, words", [
    (dict(IN_USE, **{"rotation-next-root-password": "a", "rotation-previous-clone-password": "b"}), "both"),
    (dict(IN_USE, **{"rotation-next-admin-password": "a"}), "unknown passwords: admin-password"),
    ({"root-password": "r0", "replication-password": "p0"}, "lacks clone-password"),
])
def test_a_secret_edited_by_hand_is_refused(data, words):
    with pytest.raises(cr.RotationError, match=words):
        cr.rotation_state(data, list(cr.PASSWORD_KEYS))


def test_each_step_writes_the_secret_it_can_be_resumed_from():
    old, new = {"root-password": "r0"}, {"root-password": "r1"}
    adding = cr.secret_data(IN_USE, cr.ADDING, old, new)
    assert adding == dict(IN_USE, **{"rotation-next-root-password": "r1"})
    assert cr.rotation_state(adding) == (cr.ADDING, old, new)
    switched = cr.secret_data(adding, cr.SWITCHED, old, new)
    assert switched == dict(IN_USE, **{"root-password": "r1", "rotation-previous-root-password": "r0"})
    assert cr.rotation_state(switched) == (cr.SWITCHED, old, new)
    assert cr.secret_data(switched, cr.IDLE, old, new) == dict(IN_USE, **{"root-password": "r1"})


def test_the_refresh_input_holds_hashes_not_passwords():
    text = cr.refresh_input(IN_USE)
    assert text.splitlines()[0] == "3"
    assert "r0" not in text.replace(hashlib.sha256(b"r0").hexdigest(), "")
    assert "root-password %s" % hashlib.sha256(b"r0").hexdigest() in text


def test_mysql_takes_both_passwords_whatever_state_it_is_in():
    stmts = cr.dual_statements(Dialect("9.7.4"), "repl", "%", "old", "new")
    assert stmts == [("ALTER USER %s@%s IDENTIFIED BY %s", ("repl", "%", "old")),
                     ("ALTER USER %s@%s IDENTIFIED BY %s RETAIN CURRENT PASSWORD", ("repl", "%", "new"))]
    assert cr.discard_statements(Dialect("9.7.4"), "repl", "%", "new")[-1] == (
        "ALTER USER %s@%s DISCARD OLD PASSWORD", ("repl", "%"))


def test_mariadb_takes_both_through_an_authentication_chain():
    (sql, args), = cr.dual_statements(Dialect("11.8.3-MariaDB"), "root", "localhost", "old", "new",
                                      "mysql_native_password")
    assert sql == ("ALTER USER %s@%s IDENTIFIED VIA mysql_native_password USING PASSWORD(%s)"
                   " OR mysql_native_password USING PASSWORD(%s)")
    assert args == ("root", "localhost", "new", "old")
    assert secret_positions(args) == (2, 3)
    (sql, args), = cr.discard_statements(Dialect("10.11.6-MariaDB"), "root", "%", "new", "ed25519")
    assert sql == "ALTER USER %s@%s IDENTIFIED VIA ed25519 USING PASSWORD(%s)" and args == ("root", "%", "new")


def test_what_cannot_hold_two_passwords_is_refused():
    with pytest.raises(cr.RotationError, match="8.0.14"):
        cr.dual_statements(Dialect("5.7.44"), "root", "%", "a", "b")
    with pytest.raises(cr.RotationError, match="unix_socket"):
        cr.dual_statements(Dialect("10.11.6-MariaDB"), "root", "localhost", "a", "b", "unix_socket")


def test_generated_passwords_are_long_and_plain():
    values = {cr.generate_password() for i in range(20)}
    assert len(values) == 20 and all(len(v) == 32 and v.isalnum() for v in values)
