"""Fixtures of the local cluster's smoke tests: an API client and a namespace."""
import os
import time
import uuid

import pytest

CACHE = os.environ.get("STATEFUL_MYSQL_CACHE", os.path.expanduser("~/.cache/stateful-mysql"))
ADMIN_KUBECONFIG = os.path.join(CACHE, "cluster", "admin.kubeconfig")


def _kubeconfig():
    return os.environ.get("CLUSTER_SMOKE_KUBECONFIG", ADMIN_KUBECONFIG)


@pytest.fixture(scope="session")
def core():
    """CoreV1Api on the local cluster. `make cluster-smoke` sets
    CLUSTER_SMOKE=1: then a missing cluster fails; otherwise it skips."""
    kubernetes = pytest.importorskip("kubernetes")
    path = _kubeconfig()
    if not os.path.exists(path):
        if os.environ.get("CLUSTER_SMOKE") == "1":
            pytest.fail(f"no kubeconfig at {path}: run `make cluster-up` first")
        pytest.skip(f"no local cluster (no {path})")
    kubernetes.config.load_kube_config(config_file=path)
    return kubernetes.client.CoreV1Api()


@pytest.fixture(scope="session")
def apps(core):
    import kubernetes
    return kubernetes.client.AppsV1Api()


@pytest.fixture(scope="module")
def namespace(core):
    import kubernetes
    name = "cluster-smoke-" + uuid.uuid4().hex[:6]
    core.create_namespace(kubernetes.client.V1Namespace(metadata={"name": name}))
    deadline = time.time() + 60
    while True:  # pods need the namespace's default ServiceAccount
        try:
            core.read_namespaced_service_account("default", name)
            break
        except kubernetes.client.ApiException:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    yield name
    core.delete_namespace(name)
