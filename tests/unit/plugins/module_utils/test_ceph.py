"""Unit tests of the Ceph CLI runner: command line, timeouts, error classes."""
import types

import pytest

from ansible_collections.stateful.mysql.plugins.module_utils import ceph


class FakeModule:
    def __init__(self, **params):
        base = dict(cluster="ceph", conf=None, keyring=None, user="client.admin", timeout=7)
        base.update(params)
        self.params = base

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name


def runner_returning(rc=0, stdout="", stderr="", seen=None):
    """A stand-in for AnsibleModule.run_command: records the call, returns (rc, stdout, stderr)."""
    def run(cmd, **kw):
        if seen is not None:
            seen.append((cmd, kw))
        return rc, stdout, stderr
    return run


def tool_cmd(cmd):
    """The tool's own command line, after the coreutils timeout prefix."""
    assert cmd[:3] == ["/usr/bin/timeout", "--kill-after=%d" % ceph._KILL_AFTER, cmd[2]]
    return cmd[3:]


def test_command_line_has_connection_options_and_no_key():
    seen = []
    cli = ceph.CephCLI(FakeModule(conf="/etc/ceph/c.conf", keyring="/k", user="client.kube", cluster="c2"),
                       runner=runner_returning(stdout="[]", seen=seen))
    rc, data, _err = cli.ceph("osd", "pool", "ls", "detail")
    assert rc == 0 and data == []
    full, kw = seen[0]
    assert full[2] == str(7 + ceph._GRACE)
    cmd = tool_cmd(full)
    assert cmd[:9] == ["/usr/bin/ceph", "--cluster", "c2", "--id", "kube", "--conf", "/etc/ceph/c.conf",
                       "--keyring", "/k"]
    assert cmd[cmd.index("--connect-timeout") + 1] == "7"
    assert "--format" in cmd and cmd[-4:] == ["osd", "pool", "ls", "detail"]
    assert kw["environ_update"]["LC_ALL"] == "C"
    assert kw["expand_user_and_vars"] is False and kw["handle_exceptions"] is False
    assert kw["data"] is None
    assert cli.commands == ["ceph osd pool ls detail"]


def test_rbd_gets_mount_and_op_timeouts():
    seen = []
    cli = ceph.CephCLI(FakeModule(), runner=runner_returning(seen=seen))
    cli.rbd("pool", "init", "kube", json_out=False)
    cmd = tool_cmd(seen[0][0])
    assert cmd[0] == "/usr/bin/rbd"
    for opt in ("--client-mount-timeout", "--rados-mon-op-timeout", "--rados-osd-op-timeout"):
        assert cmd[cmd.index(opt) + 1] == "7"


@pytest.mark.parametrize("rc", [124, -9, 137])
def test_time_bound_is_unreachable(rc, monkeypatch):
    """coreutils timeout's 124 (TERM), or a KILL after --kill-after (-9, 137 via a shell) once the bound has passed."""
    clock = iter([100.0, 100.0 + 7 + ceph._GRACE + ceph._KILL_AFTER])
    # Only the module's own reference to time is replaced, not the time module.
    monkeypatch.setattr(ceph, "time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    cli = ceph.CephCLI(FakeModule(conf="/x.conf"), runner=runner_returning(rc=rc))
    with pytest.raises(ceph.CephError) as e:
        cli.ceph("status")
    assert e.value.kind == "unreachable"
    assert "not reachable" in e.value.msg and "22 s" in e.value.msg


def test_killed_early_is_not_a_timeout():
    """A KILL before the bound (e.g. the OOM killer) is an ordinary failure."""
    cli = ceph.CephCLI(FakeModule(), runner=runner_returning(rc=-9))
    with pytest.raises(ceph.CephError) as e:
        cli.ceph("status")
    assert e.value.kind == "error" and "rc=-9" in e.value.msg


def test_timeout_could_not_run_the_tool():
    err = "timeout: failed to run command '/usr/bin/ceph': Permission denied\n"
    cli = ceph.CephCLI(FakeModule(), runner=runner_returning(rc=126, stderr=err))
    with pytest.raises(ceph.CephError) as e:
        cli.ceph("status")
    assert e.value.kind == "missing_cli" and "Permission denied" in e.value.msg


def test_oserror_is_missing_cli():
    def run(cmd, **kw):
        raise OSError(2, "No such file or directory")
    with pytest.raises(ceph.CephError) as e:
        ceph.CephCLI(FakeModule(), runner=run).ceph("status")
    assert e.value.kind == "missing_cli"


def test_stdin_is_passed_unchanged():
    seen = []
    ceph.CephCLI(FakeModule(), runner=runner_returning(seen=seen)).ceph("status", stdin="abc")
    assert seen[0][1]["data"] == "abc" and seen[0][1]["binary_data"] is True


def test_default_runner_is_run_command():
    seen = []
    m = FakeModule()
    m.run_command = runner_returning(stdout="{}", seen=seen)
    assert ceph.CephCLI(m).ceph("status")[1] == {}
    assert len(seen) == 1


@pytest.mark.parametrize("rc,stderr,kind", [
    (1, "timed out\n", "unreachable"),
    (1, "auth: unable to find a keyring on /etc/ceph/ceph.client.admin.keyring: (2) No such file\n"
        "timed out\n", "unreachable"),
    (110, "rbd: couldn't connect to the cluster!\n", "unreachable"),
    (1, "auth: unable to find a keyring on /nope: (2) No such file or directory\n"
        "[errno 2] RADOS object not found (error connecting to the cluster)\n", "keyring"),
    (1, "Error initializing cluster client: ObjectNotFound('RADOS object not found "
        "(error calling conf_read_file)')\n", "conf"),
    (13, "[errno 13] RADOS permission denied (error connecting to the cluster)\n", "auth"),
    (22, "Error EINVAL: mon capability parse failed, stopped at 'x' of 'x'\n", "invalid"),
    (2, "Error ENOENT: failed to find client.x in keyring\n", "not_found"),
    (1, "something else\n", "error"),
])
def test_classify(rc, stderr, kind):
    cli = ceph.CephCLI(FakeModule())
    assert cli.classify(rc, stderr) == kind


def test_unreachable_raises_even_without_check():
    cli = ceph.CephCLI(FakeModule(), runner=runner_returning(rc=1, stderr="timed out\n"))
    with pytest.raises(ceph.CephError) as e:
        cli.ceph("auth", "get", "client.x", check=False)
    assert e.value.kind == "unreachable"
    assert "could not reach the Ceph monitors" in e.value.msg


def test_not_found_returned_without_check():
    cli = ceph.CephCLI(FakeModule(), runner=runner_returning(rc=2, stderr="Error ENOENT: failed to find\n"))
    rc, _out, err = cli.ceph("auth", "get", "client.x", check=False)
    assert rc == 2 and "ENOENT" in err


def test_non_json_output_is_an_error():
    cli = ceph.CephCLI(FakeModule(), runner=runner_returning(stdout="not json"))
    with pytest.raises(ceph.CephError) as e:
        cli.ceph("osd", "pool", "ls", "detail")
    assert e.value.kind == "output"


def test_preflight_missing_files(tmp_path):
    with pytest.raises(ceph.CephError) as e:
        ceph.CephCLI(FakeModule(conf=str(tmp_path / "none.conf"))).preflight()
    assert e.value.kind == "conf" and "does not exist" in e.value.msg
    conf = tmp_path / "c.conf"
    conf.write_text("[global]\n")
    with pytest.raises(ceph.CephError) as e:
        ceph.CephCLI(FakeModule(conf=str(conf), keyring=str(tmp_path / "k"))).preflight()
    assert e.value.kind == "keyring" and "client.admin" in e.value.msg
    with pytest.raises(ceph.CephError) as e:
        ceph.CephCLI(FakeModule(timeout=0)).preflight()
    assert e.value.kind == "argument"


def test_missing_cli():
    m = FakeModule()
    m.get_bin_path = lambda name, required=False: None
    with pytest.raises(ceph.CephError) as e:
        ceph.CephCLI(m).ceph("status")
    assert e.value.kind == "missing_cli" and "ceph-common" in e.value.msg


def test_missing_timeout_command():
    m = FakeModule()
    m.get_bin_path = lambda name, required=False: None if name == "timeout" else "/usr/bin/" + name
    with pytest.raises(ceph.CephError) as e:
        ceph.CephCLI(m).ceph("status")
    assert e.value.kind == "missing_cli" and "coreutils" in e.value.msg


@pytest.mark.parametrize("given,entity,uid", [
    ("kube", "client.kube", "kube"), ("client.kube", "client.kube", "kube"), ("client.admin", "client.admin", "admin"),
])
def test_names(given, entity, uid):
    assert ceph.entity_name(given) == entity
    assert ceph.user_id(entity) == uid
