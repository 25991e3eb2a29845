"""The two test tiers (README "Tests"): `make test` runs the landing tier,
`make test-full` the full one. A test leaves the landing tier by a marker,
never by a skip: the landing tier deselects it, and nothing counts as
passed because it did not run.

- `@pytest.mark.full_tier`: the whole test runs in the full tier only.
- `@pytest.mark.landing("mariadb-11.8", ...)`: in the landing tier, only
  these parameter ids of the test run (the flavor of `deployed_cluster`, or
  the id pytest gives its parameters).
- A test on the shared `deployed_cluster` runs in the landing tier on
  LANDING_FLAVORS unless a `landing` marker narrows it further.

STATEFUL_MYSQL_TIER=landing selects the landing tier; unset (a developer
running pytest by hand) or `full`, every test runs."""
import os

TIER = os.environ.get("STATEFUL_MYSQL_TIER", "full")
if TIER not in ("landing", "full"):
    raise SystemExit("STATEFUL_MYSQL_TIER=%r: use landing or full" % TIER)

# MariaDB 10.11 deploys, copies and replicates in the landing tier in
# tests/e2e/test_network_policy.py (a 2-pod cluster that scales out); its
# shared cluster and drills run in the full tier.
LANDING_FLAVORS = ("mysql-9.7", "mariadb-11.8")


def configure(config):
    config.addinivalue_line("markers", "full_tier: run in the full tier only (make test-full); "
                                       "the landing tier (make test) deselects it")
    config.addinivalue_line("markers", "landing(*ids): in the landing tier, run only these parameter ids "
                                       "(e.g. \"mariadb-11.8\"); the full tier runs every one")


def _flavor(item):
    callspec = getattr(item, "callspec", None)
    if callspec and "deployed_cluster" in callspec.params:
        return "%s-%s" % callspec.params["deployed_cluster"]
    return None


def in_landing(item):
    """Whether the landing tier runs this collected item."""
    if item.get_closest_marker("full_tier"):
        return False
    marker = item.get_closest_marker("landing")
    callspec = getattr(item, "callspec", None)
    flavor = _flavor(item)
    if flavor is not None:
        allowed = marker.args if marker and marker.args else LANDING_FLAVORS
        return flavor in allowed
    if marker and marker.args and callspec is not None:
        return callspec.id in marker.args
    return True


def select(config, items):
    if TIER != "landing":
        return
    keep = [item for item in items if in_landing(item)]
    drop = [item for item in items if not in_landing(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
