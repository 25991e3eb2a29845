"""primary_reseed: how long a replica may fail to answer (error handling only,
with a stand-in for the connections; the recovery itself is proven end to
end in tests/e2e/test_primary_recovery.py)."""

import pytest

from ansible_collections.stateful.mysql.plugins.module_utils.connection import ConnectError
from ansible_collections.stateful.mysql.plugins.modules import primary_reseed


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(primary_reseed, "ANSWER_RETRY_SECONDS", 0.01)


class Target:
    name = "db-2"


class Conn:
    class dialect:
        class server:
            is_mariadb = True


class FlakyCluster:
    """Raises the given errors in turn, then answers."""

    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    def connection(self, target, fresh=False):
        self.calls += 1
        if self.errors:
            error = self.errors.pop(0)
            if error is not None:
                raise ConnectError(error)
        return Conn()


def test_a_broken_tunnel_is_tried_again_until_it_answers():
    cluster = FlakyCluster(["error 2003: Can't connect (port-forward: broken pipe)", "error 2013: Lost connection"])
    replica = primary_reseed.Replica(cluster, Target(), patience=30)
    assert cluster.calls == 3 and replica.mariadb


def test_a_refused_login_fails_at_once_naming_the_replica():
    cluster = FlakyCluster(["error 1045: Access denied"] * 5)
    with pytest.raises(primary_reseed.ReseedError, match=r"replica db-2 does not answer \(error 1045.*1 attempts"):
        primary_reseed.Replica(cluster, Target(), patience=30)
    assert cluster.calls == 1


def test_a_replica_that_never_answers_fails_after_the_patience():
    cluster = FlakyCluster(["error 2003: Can't connect"] * 100)
    with pytest.raises(primary_reseed.ReseedError, match=r"does not answer \(error 2003.*attempts in 0.2s\)"):
        primary_reseed.Replica(cluster, Target(), patience=0.2)
    assert cluster.calls >= 2
