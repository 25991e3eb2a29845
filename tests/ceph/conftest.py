"""Fixtures for the tests against a real one-node Ceph (tests/ceph/harness).

`make ceph-e2e` starts the harness and exports CEPH_TEST_CONF; run alone,
pytest starts it here and stops it (by pid) at the end of the session.
"""
import json
import os
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HARNESS = os.path.join(HERE, "harness", "ceph.sh")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


class Ceph:
    def __init__(self, conf, keyring):
        self.conf = conf
        self.keyring = keyring
        self.state = os.path.dirname(conf)

    def conn(self):
        """Connection options for the modules and the role."""
        return {"conf": self.conf, "keyring": self.keyring}

    def cli(self, *args, user="admin", keyring=None, check=True, tool="ceph", timeout=60):
        cmd = [tool, "--conf", self.conf, "--id", user, "--keyring", keyring or self.keyring]
        if tool == "ceph":
            cmd += ["--connect-timeout", "20"]
        cmd += list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and p.returncode != 0:
            raise AssertionError("%s failed rc=%s: %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def json(self, *args):
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def pool(self, name):
        for p in self.json("osd", "pool", "ls", "detail"):
            if p["pool_name"] == name:
                return {"size": p["size"], "min_size": p["min_size"],
                        "pg_num": p.get("pg_num_target", p["pg_num"]),
                        "pg_autoscale_mode": p["pg_autoscale_mode"],
                        "applications": sorted(p.get("application_metadata", {}))}
        return None

    def entity(self, name):
        p = self.cli("auth", "get", name, "--format", "json", check=False)
        if p.returncode != 0:
            assert "ENOENT" in p.stderr or "failed to find" in p.stderr, p.stderr
            return None
        item = json.loads(p.stdout)[0]
        return {"key": item["key"], "caps": item["caps"]}

    def fsid(self):
        return self.cli("fsid").stdout.strip()


@pytest.fixture(scope="session")
def ceph():
    conf = os.environ.get("CEPH_TEST_CONF")
    started = False
    if not conf:
        subprocess.run([HARNESS, "up"], check=True)
        started = True
        env = dict(line.split("=", 1) for line in subprocess.run(
            [HARNESS, "env"], check=True, capture_output=True, text=True).stdout.split())
        conf, keyring = env["CEPH_TEST_CONF"], env["CEPH_TEST_KEYRING"]
    else:
        keyring = os.environ["CEPH_TEST_KEYRING"]
    yield Ceph(conf, keyring)
    if started:
        subprocess.run([HARNESS, "down"], check=False)


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
    )
    env.update(extra or {})
    return env


@pytest.fixture
def module():
    """Run one module through `ansible localhost -m` and return its result."""

    def run(name, args, check=False, diff=True):
        cmd = [os.path.join(VENV_BIN, "ansible"), "localhost", "-m", "stateful.mysql." + name,
               "-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ansible_env(), timeout=300, check=False)
        try:
            out = json.loads(p.stdout)
            return out["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            raise AssertionError("ansible %s: rc=%s\n%s\n%s" % (name, p.returncode, p.stdout, p.stderr))

    return run


@pytest.fixture
def playbook():
    """Run an ansible-playbook; returns (rc, stdout+stderr). Logs kept under tests/output."""

    def run(path, extra_vars=None, inventory=None, env=None, check=False, name="run"):
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), path]
        if inventory:
            cmd += ["-i", inventory]
        if extra_vars:
            fd, vars_file = tempfile.mkstemp(suffix=".json", prefix="ceph-e2e-vars-")
            with os.fdopen(fd, "w") as f:
                json.dump(extra_vars, f)
            cmd += ["-e", "@" + vars_file]
        if check:
            cmd.append("--check")
        e = ansible_env(env)
        e["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.default"
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=e, timeout=600, check=False)
        logdir = os.path.join(ROOT, "tests", "output", "ceph")
        os.makedirs(logdir, exist_ok=True)
        with open(os.path.join(logdir, name + ".log"), "w") as f:
            f.write(" ".join(cmd) + "\n" + p.stdout + p.stderr)
        if extra_vars:
            os.unlink(vars_file)
        return p.returncode, p.stdout + p.stderr

    return run


K8S130 = os.path.join(HERE, "harness", "k8s130.sh")
CACHE = os.environ.get("STATEFUL_MYSQL_CACHE", os.path.expanduser("~/.cache/stateful-mysql"))


@pytest.fixture(scope="session")
def k8s130():
    """Kubeconfig of the v1.30 control plane (in-tree RBD), started here when not running."""
    kc = os.environ.get("K8S130_KUBECONFIG")
    started = False
    if not kc:
        subprocess.run([K8S130, "up"], check=True)
        started = True
        kc = subprocess.run([K8S130, "env"], check=True, capture_output=True, text=True).stdout.split("=", 1)[1].strip()
    yield kc
    if started:
        subprocess.run([K8S130, "down"], check=False)


@pytest.fixture(scope="session")
def k8s134():
    """Kubeconfig of the main local cluster (v1.34) for the CSI content test."""
    kc = os.environ.get("KUBECONFIG") or os.path.join(CACHE, "cluster", "admin.kubeconfig")
    ok = os.path.isfile(kc)
    if ok:
        from kubernetes import client, config
        try:
            api = client.VersionApi(config.new_client_from_config(config_file=kc))
            ok = int("".join(ch for ch in api.get_code().minor if ch.isdigit())) >= 31
        except Exception:  # noqa: BLE001 - any failure means: no usable cluster
            ok = False
    if not ok:
        msg = "no running Kubernetes >= 1.31 at %s (make cluster-up)" % kc
        if os.environ.get("STATEFUL_MYSQL_REQUIRE_CLUSTER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return kc


def k8s_api(kubeconfig):
    from kubernetes import client, config
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture
def inventory(ceph, tmp_path):
    """An inventory whose ceph_admin group is this machine (local connection)."""

    def make(**hostvars):
        hv = dict(ansible_connection="local", ansible_python_interpreter=os.path.join(VENV_BIN, "python"),
                  ceph_rbd_conf=ceph.conf, ceph_rbd_keyring=ceph.keyring)
        hv.update(hostvars)
        inv = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                               "ansible_python_interpreter": os.path.join(VENV_BIN, "python")}},
                       "children": {"ceph_admin": {"hosts": {"cephhost": hv}}}}}
        path = tmp_path / "inventory.json"
        path.write_text(json.dumps(inv))
        return str(path)

    return make
