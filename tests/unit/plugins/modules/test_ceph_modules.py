"""Error paths of the Ceph modules, table-driven from test_ceph_modules.yaml.

The ceph CLI is replaced by canned replies (a mock only for error paths);
the success paths run against a real Ceph in tests/ceph/.
"""
import contextlib
import json
import os

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args
from ansible_collections.stateful.mysql.plugins.modules import ceph_client_key, ceph_pool

MODULES = {"ceph_pool": ceph_pool, "ceph_client_key": ceph_client_key}
with open(os.path.join(os.path.dirname(__file__), "test_ceph_modules.yaml")) as f:
    CASES = yaml.safe_load(f)


class Exited(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


@contextlib.contextmanager
def run_module(monkeypatch, replies):
    calls = []
    replies = list(replies or [])

    def fake_run_command(self, cmd, **kw):
        assert cmd[0] == "/usr/bin/timeout", cmd
        cmd = cmd[3:]  # the tool's command line, without the timeout prefix
        calls.append(cmd)
        if not replies:
            raise AssertionError("unexpected ceph call: %s" % cmd)
        r = replies.pop(0)
        if r.get("timeout"):
            return 124, "", ""  # coreutils timeout: the time bound ran out
        return r.get("rc", 0), r.get("stdout", ""), r.get("stderr", "")

    def exit_json(self, **kw):
        kw.setdefault("failed", False)
        raise Exited(kw)

    def fail_json(self, msg, **kw):
        kw.update(failed=True, msg=msg)
        raise Exited(kw)

    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.run_command", fake_run_command)
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.exit_json", exit_json)
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.fail_json", fail_json)
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/bin/" + name)
    yield calls


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_error_path(case, monkeypatch):
    with run_module(monkeypatch, case.get("replies")) as calls:
        with patch_module_args(case["args"]):
            with pytest.raises(Exited) as e:
                MODULES[case["module"]].main()
    res = e.value.result
    assert res["failed"], res
    assert case["msg"] in res["msg"], res["msg"]
    assert len(calls) == case["calls"], calls
    assert not res.get("changed"), res
    # Nothing that writes was run: every call was a read, or the one write that Ceph refused.
    for c in calls[:-1] if case["calls"] > 1 else []:
        assert c[-4:] == ["osd", "pool", "ls", "detail"] or "get" in c, c


def test_check_mode_never_writes(monkeypatch):
    """Check mode on a missing client runs only the read and returns no key."""
    replies = [{"rc": 2, "stderr": "Error ENOENT: failed to find client.kube in keyring\n"}]
    with run_module(monkeypatch, replies) as calls:
        with patch_module_args({"name": "kube", "caps": {"mon": "profile rbd"}, "_ansible_check_mode": True,
                                "_ansible_diff": True}):
            with pytest.raises(Exited) as e:
                ceph_client_key.main()
    res = e.value.result
    assert res["changed"] and res["key"] is None
    assert len(calls) == 1 and calls[0][-3:] == ["auth", "get", "client.kube"]
    assert res["diff"]["after"]["caps"] == {"mon": "profile rbd"}
    assert "check mode: not run" in res["commands"][-1]


def test_key_not_in_commands_or_diff(monkeypatch):
    key = "AQBYHghrlVdgDxAAz7Wp8YVnHC98YohFrRfarA=="
    got = json.dumps([{"entity": "client.kube", "key": key, "caps": {"mon": "profile rbd"}}])
    with run_module(monkeypatch, [{"stdout": got}]) as calls:
        with patch_module_args({"name": "client.kube", "caps": {"mon": "profile  rbd"}, "_ansible_diff": True}):
            with pytest.raises(Exited) as e:
                ceph_client_key.main()
    res = e.value.result
    assert res["changed"] is False and res["key"] == key
    assert key not in json.dumps(res["diff"]) and key not in json.dumps(res["commands"])
    assert all(key not in " ".join(c) for c in calls)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_documentation_matches_argument_spec(mod, monkeypatch):
    """DOCUMENTATION parses, and (with the doc fragment) documents exactly the options the module takes."""
    from ansible_collections.stateful.mysql.plugins.doc_fragments.ceph import ModuleDocFragment

    doc = yaml.safe_load(MODULES[mod].DOCUMENTATION)
    yaml.safe_load(MODULES[mod].EXAMPLES)
    yaml.safe_load(MODULES[mod].RETURN)
    assert doc["extends_documentation_fragment"] == ["stateful.mysql.ceph"]
    documented = set(doc["options"]) | set(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"])
    seen = {}

    class Stop(Exception):
        pass

    def fake_init(self, argument_spec, **kw):
        seen.update(argument_spec)
        raise Stop()

    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.__init__", fake_init)
    with pytest.raises(Stop):
        MODULES[mod].main()
    assert set(seen) == documented
    assert set(doc["attributes"]) == {"check_mode", "diff_mode", "idempotent"}
