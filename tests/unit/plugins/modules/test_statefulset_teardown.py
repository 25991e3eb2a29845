"""statefulset_teardown against an in-memory stand-in of the Kubernetes API.

The real API is exercised end to end in tests/e2e/test_modules.py; here the
selection rules (which PVCs and PVs are the StatefulSet's), check mode, diff,
the confirm guard and the timeout path are pinned down.
"""

from types import SimpleNamespace as NS

import pytest

from ansible_collections.stateful.mysql.plugins.module_utils.k8s import ApiException
from ansible_collections.stateful.mysql.plugins.modules import statefulset_teardown as td
from module_runner import run_module


def meta(name, labels=None, owner=None):
    refs = [NS(kind="StatefulSet", name=owner)] if owner else None
    return NS(name=name, labels=labels, owner_references=refs)


def not_found():
    e = ApiException(status=404, reason="Not Found")
    return e


class FakeAPI:
    """Just enough of CoreV1Api/AppsV1Api; deletions take effect at once unless told to stick."""

    def __init__(self, sts=None, pods=(), pvcs=(), pvs=(), namespaces=("db",), provisioner=True):
        self.sts = sts
        self.pods = {p.metadata.name: p for p in pods}
        self.pvcs = {c.metadata.name: c for c in pvcs}
        self.pvs = {v.metadata.name: v for v in pvs}
        self.namespaces = set(namespaces)
        self.provisioner = provisioner
        self.calls = []

    # apps
    def read_namespaced_stateful_set(self, name, namespace):
        if self.sts is None or self.sts.metadata.name != name:
            raise not_found()
        return self.sts

    def delete_namespaced_stateful_set(self, name, namespace, propagation_policy=None):
        self.calls.append(("delete sts", name))
        self.sts = None
        self.pods = {k: v for k, v in self.pods.items() if not v.metadata.owner_references}

    # core
    def read_namespace(self, name):
        if name not in self.namespaces:
            raise not_found()

    def delete_namespace(self, name):
        self.calls.append(("delete ns", name))
        self.namespaces.discard(name)

    def list_namespaced_pod(self, namespace):
        return NS(items=list(self.pods.values()))

    def list_namespaced_persistent_volume_claim(self, namespace):
        return NS(items=list(self.pvcs.values()))

    def delete_namespaced_persistent_volume_claim(self, name, namespace):
        self.calls.append(("delete pvc", name))
        pvc = self.pvcs.pop(name)
        pv = self.pvs.get(pvc.spec.volume_name)
        if pv is not None:
            pv.status.phase = "Released"
            if pv.spec.persistent_volume_reclaim_policy == "Delete" and self.provisioner:
                del self.pvs[pv.metadata.name]

    def list_persistent_volume(self):
        return NS(items=list(self.pvs.values()))

    def delete_persistent_volume(self, name):
        self.calls.append(("delete pv", name))
        del self.pvs[name]


def pvc(name, volume=None, labels=None):
    return NS(metadata=meta(name, labels), spec=NS(volume_name=volume))


def pv(name, claim, policy="Delete", namespace="db"):
    return NS(metadata=meta(name), spec=NS(claim_ref=NS(namespace=namespace, name=claim),
                                           persistent_volume_reclaim_policy=policy),
              status=NS(phase="Bound"))


def statefulset(name="mysql", templates=("data",), selector=None):
    return NS(metadata=meta(name), spec=NS(
        replicas=2, selector=NS(match_labels=selector or {"app": name}),
        volume_claim_templates=[NS(metadata=meta(t)) for t in templates]))


def cluster(**kw):
    labels = {"app": "mysql"}
    return FakeAPI(
        sts=statefulset(),
        pods=[NS(metadata=meta("mysql-0", owner="mysql")), NS(metadata=meta("mysql-1", owner="mysql")),
              NS(metadata=meta("mysql-read-0")), NS(metadata=meta("other-0", owner="other"))],
        pvcs=[pvc("data-mysql-0", "pv0", labels), pvc("data-mysql-1", "pv1", labels),
              pvc("data-mysql-5", "pv5", labels),          # left by a scale-down
              pvc("data-mysql-read-0", "pvx"),              # another StatefulSet's name shape
              pvc("data-mysql-2", "pvy", {"app": "other"}),  # matching name, foreign labels
              pvc("decoy", "pvd"), pvc("logs-mysql-0", "pvl", labels)],
        pvs=[pv("pv0", "data-mysql-0"), pv("pv1", "data-mysql-1", "Retain"), pv("pv5", "data-mysql-5"),
             pv("pvx", "data-mysql-read-0"), pv("pvy", "data-mysql-2"), pv("pvd", "decoy"),
             pv("pvl", "logs-mysql-0"), pv("pvold", "data-mysql-9", "Retain"),  # released earlier
             pv("pvns", "data-mysql-0", namespace="elsewhere")],
        **kw)


@pytest.fixture
def api(monkeypatch):
    holder = {}

    class FakeK8s:
        def __init__(self, params):
            self.core = self.apps = holder["api"]

        def read_statefulset(self, name, namespace):
            try:
                return self.apps.read_namespaced_stateful_set(name, namespace)
            except ApiException:
                return None

        def close(self):
            pass

    monkeypatch.setattr(td, "K8s", FakeK8s)

    def install(fake):
        holder["api"] = fake
        return fake
    return install


ARGS = {"name": "mysql", "namespace": "db"}


def test_refuses_without_confirm(api, capsys):
    fake = api(cluster())
    result = run_module(td, ARGS, capsys)
    assert result["failed"] and "confirm=true" in result["msg"]
    assert fake.calls == []


def test_check_mode_lists_exactly_what_would_go(api, capsys):
    fake = api(cluster())
    result = run_module(td, dict(ARGS, _ansible_diff=True), capsys, check_mode=True)
    assert result["changed"] is True
    assert result["statefulset"] == "mysql"
    assert result["pods"] == ["mysql-0", "mysql-1"]
    assert result["pvcs"] == ["data-mysql-0", "data-mysql-1", "data-mysql-5"]
    assert result["skipped_pvcs"] == ["data-mysql-2"]
    assert [v["name"] for v in result["pvs"]] == ["pv0", "pv5"]
    assert [v["name"] for v in result["retained_pvs"]] == ["pv1", "pvold"]
    assert result["diff"]["before"]["pvs"] == ["pv0", "pv1", "pv5", "pvold"]
    assert result["diff"]["after"] == {"statefulset": None, "pods": [], "pvcs": [], "pvs": ["pv1", "pvold"],
                                       "namespace": "db"}
    assert fake.calls == []


def test_teardown_keeps_retained_pvs_unless_asked(api, capsys):
    fake = api(cluster())
    result = run_module(td, dict(ARGS, confirm=True, wait_sleep=0, wait_timeout=2), capsys)
    assert result["changed"] is True and "failed" not in result, result.get("msg")
    assert fake.sts is None
    assert sorted(fake.pvcs) == ["data-mysql-2", "data-mysql-read-0", "decoy", "logs-mysql-0"]
    assert sorted(fake.pvs) == ["pv1", "pvd", "pvl", "pvns", "pvold", "pvx", "pvy"]
    assert ("delete pv", "pv1") not in fake.calls

    # Again, now asking for the Retain ones: the StatefulSet is gone, so name the template
    # and the labels (without them data-mysql-2, labelled app=other, would match by name).
    result = run_module(td, dict(ARGS, confirm=True, wait_sleep=0, wait_timeout=2, delete_retained_pvs=True,
                                 claim_templates=["data"], selector={"app": "mysql"}), capsys)
    assert result["changed"] is True and result["statefulset"] is None
    assert [v["name"] for v in result["pvs"]] == ["pv1", "pvold"]
    assert sorted(fake.pvs) == ["pvd", "pvl", "pvns", "pvx", "pvy"]

    # And once more: nothing left to do.
    result = run_module(td, dict(ARGS, confirm=True, wait_sleep=0, delete_retained_pvs=True,
                                 claim_templates=["data"], selector={"app": "mysql"}), capsys)
    assert result["changed"] is False


def test_namespace_deleted_when_asked_and_protected_ones_refused(api, capsys):
    fake = api(cluster())
    result = run_module(td, dict(ARGS, confirm=True, wait_sleep=0, delete_namespace=True), capsys)
    assert result["namespace_deleted"] is True and "db" not in fake.namespaces
    result = run_module(td, dict(name="mysql", namespace="kube-system", confirm=True, delete_namespace=True), capsys)
    assert result["failed"] and "refusing" in result["msg"]


def test_pv_that_never_goes_fails_naming_it(api, capsys):
    api(cluster(provisioner=False))
    result = run_module(td, dict(ARGS, confirm=True, wait_timeout=1, wait_sleep=1), capsys)
    assert result["failed"]
    assert result["msg"].startswith("PVs (reclaim policy Delete: is their provisioner running?) still present after 1s: ")
    assert result["msg"].endswith("pv0, pv5")


@pytest.mark.parametrize("name,labels,ours,skipped", [
    ("data-mysql-0", {}, True, False),
    ("data-mysql-17", {"app": "mysql", "extra": "x"}, True, False),
    ("data-mysql-0", {"app": "other"}, False, True),
    ("data-mysql-read-0", {}, False, False),
    ("data-mysql-", {}, False, False),
    ("xdata-mysql-0", {}, False, False),
    ("data-mysql-0-backup", {}, False, False),
])
def test_pvc_selection(name, labels, ours, skipped):
    pattern = td.claim_pattern(["data"], "mysql")
    assert td.is_our_pvc(name, labels, pattern, {"app": "mysql"}) == (ours, skipped)
