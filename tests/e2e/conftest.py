"""One real cluster per flavor, deployed by site.yml on the local Kubernetes
and shared by the tests of that flavor (pytest groups them by parameter)."""
import os
import time

import pytest

from kube import (KUBECONFIG, PASSWORDS, POD_SECURITY_BASELINE, PREFIX, REMOTE_ROOT, ROOT, Cluster, SecretWatcher, api,
                  create_namespace, delete_namespace, deploy_args, run_playbook)

FLAVORS = [("mysql", "9.7"), ("mariadb", "10.11"), ("mariadb", "11.8")]


def pytest_configure(config):
    config.addinivalue_line("markers", "only_flavors(*ids): run this test on these flavors only, in every tier "
                                       "(e.g. \"mysql-9.7\"); the other combinations are deselected, never skipped")


def _flavor_id(item):
    """The flavor id an item runs on: its deployed_cluster's, else its parameters' id."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    if "deployed_cluster" in callspec.params:
        return "%s-%s" % callspec.params["deployed_cluster"]
    return callspec.id


def pytest_collection_modifyitems(config, items):
    """Some drills prove a code path that two flavors share (MariaDB 10.11 and
    11.8 take the same one): they run on the flavors named, in both tiers, and
    the other combinations are not generated (deselected), so no skip is
    counted. (The tiers' own selection is tests/tiers.py.)"""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("only_flavors")
        flavor = _flavor_id(item)
        if marker and flavor is not None:
            (keep if flavor in marker.args else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _flavor_of(item):
    """The deployed_cluster parameter an item runs on, or None."""
    callspec = getattr(item, "callspec", None)
    if callspec and "deployed_cluster" in getattr(item, "fixturenames", ()):
        return callspec.params.get("deployed_cluster")
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Retire a flavor's shared cluster after the last test that uses it:
    pytest would keep the last flavor's pods until the session ends, busy
    (probes, the secret watcher) through every later module."""
    flavor = _flavor_of(item)
    cluster = item.funcargs.get("deployed_cluster") if flavor else None
    yield
    if cluster is None:
        return
    items = item.session.items
    if any(_flavor_of(later) == flavor for later in items[items.index(item) + 1:]):
        return
    retire(cluster)


def retire(cluster):
    if getattr(cluster, "retired", False):
        return
    cluster.retired = True
    cluster.watcher.stop()
    if os.environ.get("E2E_KEEP") != "1":
        delete_namespace(cluster.namespace, wait=False)


@pytest.fixture(scope="session")
def kube_ready():
    if not os.path.exists(KUBECONFIG):
        pytest.fail("no kubeconfig at %s: run `make cluster-up` first" % KUBECONFIG)
    core = api()[0]
    nodes = core.list_node().items
    assert nodes and all(
        any(c.type == "Ready" and c.status == "True" for c in n.status.conditions) for n in nodes)
    return KUBECONFIG


@pytest.fixture(scope="session", params=FLAVORS, ids=["%s-%s" % f for f in FLAVORS])
def deployed_cluster(request, kube_ready, tmp_path_factory):
    flavor, version = request.param
    namespace = "%s-%s-%s" % (PREFIX, flavor, version.replace(".", ""))
    name = "db"
    delete_namespace(namespace)
    # Every flavor's pods are admitted under Pod Security "baseline" (test_pod_security.py).
    create_namespace(namespace, POD_SECURITY_BASELINE)
    # test_site.py writes and reads as root from other pods.
    args = deploy_args(flavor, version, name, namespace, str(tmp_path_factory.mktemp("vars")), REMOTE_ROOT)
    # Watches every process from the first pod on, for the cluster's life,
    # where the one test that reads it runs on this flavor (the watcher's
    # execs cost CPU through the whole flavor group).
    watcher = SecretWatcher(namespace, PASSWORDS)
    flavor_id = "%s-%s" % (flavor, version)
    if any(item.originalname == "test_no_password_in_any_process_ever" and _flavor_id(item) == flavor_id
           for item in request.session.items):
        watcher.start()
    started = time.monotonic()
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *args)
    cluster = Cluster(name, namespace, flavor, version)
    cluster.watcher = watcher
    cluster.deploy_args = args
    cluster.first_run = {"seconds": time.monotonic() - started, "recap": recap, "output": out}
    yield cluster
    retire(cluster)


PARALLEL_FLAVORS = [("mysql", "9.7"), ("mariadb", "11.8")]


@pytest.fixture(scope="session", params=PARALLEL_FLAVORS, ids=["%s-%s" % f for f in PARALLEL_FLAVORS])
def parallel_cluster(request, kube_ready, tmp_path_factory):
    """A primary and one replica with podManagementPolicy Parallel, shared by
    the primary-away drills (test_primary_away.py) and, on MySQL, the
    Parallel scale-out (test_returning.py), which leaves it at two pods again."""
    flavor, version = request.param
    namespace = "%s-par-%s-%s" % (PREFIX, flavor, version.replace(".", ""))
    delete_namespace(namespace)
    args = deploy_args(flavor, version, "par", namespace, str(tmp_path_factory.mktemp("vars")),
                       dict(REMOTE_ROOT, mysql_cluster_replicas=2, mysql_cluster_pod_management_policy="Parallel"))
    run_playbook(os.path.join(ROOT, "site.yml"), *args)
    cluster = Cluster("par", namespace, flavor, version)
    cluster.deploy_args = args
    cluster.wait_ready(2, timeout=300)
    yield cluster
    if os.environ.get("E2E_KEEP") != "1":
        delete_namespace(namespace, wait=False)
