"""ceph_pool and ceph_client_key against a real one-node Ceph.

The kubernetes.core CONTRIBUTING matrix for each module: create, create
again, modify, modify again, delete, delete a missing one; every step first
in check mode (then Ceph is asked that nothing changed), then for real (then
Ceph is asked that it holds what was asked for).
"""
import os

import pytest

POOL = "e2e-pool"
CLIENT = "client.e2e"


def step(ceph, module, name, args, expect_changed, observe):
    before = observe()
    res = module(name, args, check=True)
    assert not res.get("failed"), res
    assert res["changed"] is expect_changed, ("check mode", res)
    assert observe() == before, "check mode changed Ceph"
    res = module(name, args)
    assert not res.get("failed"), res
    assert res["changed"] is expect_changed, res
    if expect_changed:
        assert res["diff"]["before"] != res["diff"]["after"]
    else:
        assert observe() == before
    return res


POOL_STEPS = [
    ("create", dict(size=1, pg_num=8), True),
    ("create again", dict(size=1, pg_num=8), False),
    ("modify size and pg_num", dict(size=2, min_size=1, pg_num=16), True),
    ("modify again", dict(size=2, min_size=1, pg_num=16), False),
    ("delete", dict(state="absent"), True),
    ("delete missing", dict(state="absent"), False),
]


def test_pool_matrix(ceph, module):
    def observe():
        return ceph.pool(POOL)

    assert observe() is None
    for what, args, changed in POOL_STEPS:
        res = step(ceph, module, "ceph_pool", dict(name=POOL, **args, **ceph.conn()), changed, observe)
        now = observe()
        if args.get("state") == "absent":
            assert now is None, what
            assert res["pool"] == {}
        else:
            assert now == {"size": args["size"], "min_size": args.get("min_size", 1), "pg_num": args["pg_num"],
                           "pg_autoscale_mode": "off", "applications": ["rbd"]}, what
            assert res["pool"]["size"] == args["size"]
    # rbd pool init ran once: the pool was usable for images before deletion
    # (checked in test_pool_is_rbd_ready); here: deleting twice was harmless.


def test_pool_autoscale_and_rbd_ready(ceph, module):
    name = "e2e-auto"
    try:
        res = module("ceph_pool", dict(name=name, pg_autoscale_mode="on", **ceph.conn()))
        assert res["changed"] and not res.get("failed"), res
        assert "rbd pool init %s" % name in " ".join(res["commands"])
        assert ceph.pool(name)["pg_autoscale_mode"] == "on"
        assert ceph.pool(name)["applications"] == ["rbd"]
        # rbd pool init ran: an image can be created at once.
        ceph.cli("create", "--size", "4", "%s/img" % name, tool="rbd")
        assert "img" in ceph.cli("ls", name, tool="rbd").stdout.split()
        # Again: no second init, no change.
        res = module("ceph_pool", dict(name=name, pg_autoscale_mode="on", **ceph.conn()))
        assert res["changed"] is False and "rbd pool init" not in " ".join(res["commands"])
        step(ceph, module, "ceph_pool", dict(name=name, pg_autoscale_mode="warn", **ceph.conn()), True,
             lambda: ceph.pool(name))
        assert ceph.pool(name)["pg_autoscale_mode"] == "warn"
    finally:
        module("ceph_pool", dict(name=name, state="absent", **ceph.conn()))
    assert ceph.pool(name) is None


CAPS_1 = {"mon": "profile rbd", "osd": "profile rbd pool=%s" % POOL}
CAPS_2 = dict(CAPS_1, mgr="profile rbd pool=%s" % POOL)
KEY_STEPS = [
    ("create", dict(caps=CAPS_1), True),
    ("create again", dict(caps=CAPS_1), False),
    ("modify caps", dict(caps=CAPS_2), True),
    ("modify again", dict(caps=CAPS_2), False),
    ("delete", dict(state="absent"), True),
    ("delete missing", dict(state="absent"), False),
]


def test_client_key_matrix(ceph, module):
    def observe():
        return ceph.entity(CLIENT)

    assert observe() is None
    first_key = None
    for what, args, changed in KEY_STEPS:
        res = step(ceph, module, "ceph_client_key", dict(name=CLIENT, **args, **ceph.conn()), changed, observe)
        now = observe()
        if args.get("state") == "absent":
            assert now is None and res["key"] is None, what
        else:
            assert now["caps"] == args["caps"], what
            assert res["caps"] == args["caps"]
            # The key returned is the one Ceph holds, and a caps change keeps it.
            assert res["key"] == now["key"], what
            first_key = first_key or now["key"]
            assert now["key"] == first_key, what
            # ...and it never shows in the commands or the diff.
            assert now["key"] not in " ".join(res["commands"]) + str(res["diff"])


def test_bare_name_means_client(ceph, module):
    try:
        res = module("ceph_client_key", dict(name="e2e-bare", caps={"mon": "profile rbd"}, **ceph.conn()))
        assert res["entity"] == "client.e2e-bare" and res["changed"]
        assert ceph.entity("client.e2e-bare")["caps"] == {"mon": "profile rbd"}
    finally:
        module("ceph_client_key", dict(name="client.e2e-bare", state="absent", **ceph.conn()))


def snapshot(ceph):
    return (ceph.cli("osd", "pool", "ls").stdout, ceph.cli("auth", "ls").stdout)


@pytest.fixture
def unreachable_conf(ceph, tmp_path):
    conf = tmp_path / "unreachable.conf"
    conf.write_text("[global]\nmon host = v1:127.0.0.1:1\nauth client required = cephx\n")
    return str(conf)


def test_unreachable_monitor_fails_clearly(ceph, module, unreachable_conf):
    before = snapshot(ceph)
    for name, args in (("ceph_pool", dict(name="e2e-x")),
                       ("ceph_client_key", dict(name="client.e2e-x", caps={"mon": "profile rbd"}))):
        res = module(name, dict(args, conf=unreachable_conf, keyring=ceph.keyring, timeout=3))
        assert res["failed"] and "could not reach the Ceph monitors" in res["msg"], res
        assert res["kind"] == "unreachable"
    assert snapshot(ceph) == before


def test_missing_keyring_fails_clearly(ceph, module, tmp_path):
    before = snapshot(ceph)
    missing = str(tmp_path / "no.keyring")
    res = module("ceph_pool", dict(name="e2e-x", conf=ceph.conf, keyring=missing))
    assert res["failed"] and "keyring %s does not exist" % missing in res["msg"], res
    # A conf whose [client] keyring points nowhere and no keyring option: Ceph's own error, explained.
    conf = tmp_path / "nokey.conf"
    conf.write_text(open(ceph.conf).read().replace("keyring = " + ceph.keyring, "keyring = " + missing))
    # The CLI fails at once here; 5 s was once not enough for it to start and
    # fail under test-full's parallel lanes (classified unreachable: a flake).
    res = module("ceph_client_key", dict(name="client.e2e-x", caps={"mon": "profile rbd"}, conf=str(conf),
                                         timeout=30))
    assert res["failed"] and res["kind"] == "keyring" and "no usable keyring for client.admin" in res["msg"], res
    assert snapshot(ceph) == before


def test_wrong_key_fails_clearly(ceph, module, tmp_path):
    before = snapshot(ceph)
    bad = tmp_path / "bad.keyring"
    bad.write_text("[client.admin]\n\tkey = AQBYHghrlVdgDxAAz7Wp8YVnHC98YohFrRfarA==\n")
    res = module("ceph_pool", dict(name="e2e-x", conf=ceph.conf, keyring=str(bad), timeout=5))
    assert res["failed"] and res["kind"] in ("auth", "unreachable"), res
    assert snapshot(ceph) == before


@pytest.mark.parametrize("name", ["../x", ".hidden", "a b", "-x", "x" * 101])
def test_bad_pool_name(ceph, module, name):
    before = snapshot(ceph)
    res = module("ceph_pool", dict(name=name, **ceph.conn()))
    assert res["failed"] and "bad pool name" in res["msg"], res
    assert snapshot(ceph) == before


@pytest.mark.parametrize("caps", [{"mon": "allow rwz"}, {"osd": "allow rwx poolx="}, {"mgr": "garbage here"}])
def test_caps_that_do_not_parse(ceph, module, caps):
    try:
        module("ceph_client_key", dict(name="client.e2e-caps", caps={"mon": "profile rbd"}, **ceph.conn()))
        before = snapshot(ceph)
        # On an existing client (auth caps) and on a new one (auth get-or-create).
        for name in ("client.e2e-caps", "client.e2e-caps-new"):
            res = module("ceph_client_key", dict(name=name, caps=caps, **ceph.conn()))
            assert res["failed"] and "could not parse the caps for %s" % name in res["msg"], res
            assert res["changed"] is False
        assert snapshot(ceph) == before
        assert ceph.entity("client.e2e-caps")["caps"] == {"mon": "profile rbd"}
    finally:
        module("ceph_client_key", dict(name="client.e2e-caps", state="absent", **ceph.conn()))


def test_no_key_on_any_command_line(ceph, module):
    """The commands the modules report are the whole command lines minus connection options."""
    res = module("ceph_client_key", dict(name="client.e2e-cl", caps={"mon": "profile rbd"}, **ceph.conn()))
    try:
        key = ceph.entity("client.e2e-cl")["key"]
        assert all(key not in c for c in res["commands"])
        assert os.environ.get("CEPH_ARGS", "").find(key) < 0
    finally:
        module("ceph_client_key", dict(name="client.e2e-cl", state="absent", **ceph.conn()))
