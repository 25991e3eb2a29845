"""Kubernetes client options, target resolution, the waiter."""


import pytest
import yaml

from ansible_collections.stateful.mysql.plugins.module_utils import connection, k8s, replication

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "a",
    "clusters": [{"name": "a", "cluster": {"server": "https://10.1.1.1:6443", "insecure-skip-tls-verify": True}},
                 {"name": "b", "cluster": {"server": "https://10.2.2.2:6443"}}],
    "users": [{"name": "u", "user": {"token": "tok-a"}}],
    "contexts": [{"name": "a", "context": {"cluster": "a", "user": "u"}},
                 {"name": "b", "context": {"cluster": "b", "user": "u"}}],
}


@pytest.fixture
def kubeconfig(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return str(path)


def test_configuration_from_file_and_context(kubeconfig):
    cfg = k8s.build_configuration({"kubeconfig": kubeconfig})
    assert cfg.host == "https://10.1.1.1:6443"
    cfg = k8s.build_configuration({"kubeconfig": kubeconfig, "context": "b"})
    assert cfg.host == "https://10.2.2.2:6443"


def test_configuration_from_dict_and_overrides():
    cfg = k8s.build_configuration({"kubeconfig": KUBECONFIG, "host": "https://h:1", "api_key": "k",
                                   "validate_certs": False, "ca_cert": "/ca.pem"})
    assert cfg.host == "https://h:1"
    assert cfg.api_key == {"authorization": "Bearer k"}
    assert cfg.verify_ssl is False and cfg.ssl_ca_cert == "/ca.pem"


def test_configuration_missing_file():
    with pytest.raises(k8s.K8sError, match="cannot load the Kubernetes configuration"):
        k8s.build_configuration({"kubeconfig": "/nonexistent/kubeconfig"})


def test_env_fallbacks_through_the_argument_spec(kubeconfig, monkeypatch):
    from ansible.module_utils.basic import AnsibleModule
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.stateful.mysql.plugins.module_utils.args import K8S_AUTH_ARG_SPEC
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", kubeconfig)
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "b")
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "false")
    monkeypatch.setenv("K8S_AUTH_API_KEY", "from-env")
    with patch_module_args({}):
        module = AnsibleModule(argument_spec=dict(K8S_AUTH_ARG_SPEC))
    p = module.params
    assert (p["kubeconfig"], p["context"], p["validate_certs"]) == (kubeconfig, "b", False)
    assert "from-env" in module.no_log_values
    cfg = k8s.build_configuration(p)
    assert cfg.host == "https://10.2.2.2:6443" and cfg.verify_ssl is False


def test_pod_ordinal():
    assert connection.pod_ordinal("mysql-0", "mysql") == 0
    assert connection.pod_ordinal("mysql-12", "mysql") == 12
    assert connection.pod_ordinal("mysql-read-0", "mysql") is None
    assert connection.pod_ordinal("mysqlx-1", "mysql") is None
    assert connection.pod_ordinal("a.b-1", "a.b") == 1
    assert connection.pod_ordinal("axb-1", "a.b") is None


def test_resolve_targets():
    base = {"name": "db", "namespace": "ns", "cluster_domain": "cluster.local"}
    pf = connection.resolve_targets(dict(base, connection="port_forward"), replicas=3)
    assert [(t.name, t.pod, t.host, t.expected_role) for t in pf] == [
        ("db-0", "db-0", None, "primary"), ("db-1", "db-1", None, "replica"), ("db-2", "db-2", None, "replica")]
    direct = connection.resolve_targets(dict(base, connection="direct"), replicas=2)
    assert [t.host for t in direct] == ["db-0.db.ns.svc.cluster.local", "db-1.db.ns.svc.cluster.local"]
    hosts = connection.resolve_targets(dict(base, connection="direct",
                                            hosts=[{"host": "10.0.0.1", "port": 3306, "name": None},
                                                   {"host": "10.0.0.2", "port": 3307, "name": "r"}]))
    assert [(t.name, t.host, t.port, t.ordinal) for t in hosts] == [("db-0", "10.0.0.1", 3306, 0),
                                                                    ("r", "10.0.0.2", 3307, 1)]
    with pytest.raises(ValueError):
        connection.resolve_targets(dict(base, connection="port_forward"))


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


def test_wait_until_times_out_with_last_value():
    clock = FakeClock()
    calls = []

    def check():
        calls.append(clock.now)
        return False, "reason %d" % len(calls)

    done, value, elapsed = replication.wait_until(check, 10, sleep=3, clock=clock, sleeper=clock.sleep)
    assert done is False and value == "reason 5" and elapsed == 10
    assert clock.sleeps == [3, 3, 3, 1]  # never sleeps past the deadline


def test_wait_until_succeeds_and_reports_elapsed():
    clock = FakeClock()
    state = iter([False, False, True])
    done, value, elapsed = replication.wait_until(lambda: (next(state), None), 60, sleep=2,
                                                  clock=clock, sleeper=clock.sleep)
    assert done is True and elapsed == 4


def test_wait_until_zero_timeout_checks_once():
    calls = []
    done = replication.wait_until(lambda: (calls.append(1) or False, None), 0, sleeper=pytest.fail)[0]
    assert done is False and calls == [1]
