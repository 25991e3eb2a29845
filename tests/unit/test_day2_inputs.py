"""scale.yml and teardown.yml refuse bad input before any Kubernetes call,
with a message that names what to fix. The API server address leads
nowhere, so a case that slipped through would fail differently."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

CASES = [
    ("scale-zero", "scale.yml", ["-e", "replicas=0"], "-e replicas must be a whole number from 1 to 50"),
    ("scale-negative", "scale.yml", ["-e", "replicas=-1"], "-e replicas must be a whole number from 1 to 50"),
    ("scale-word", "scale.yml", ["-e", "replicas=abc"], "(got 'abc')"),
    ("scale-huge", "scale.yml", ["-e", "replicas=51"], "-e replicas must be a whole number from 1 to 50"),
    ("scale-missing", "scale.yml", [], "scale.yml needs the new replica count: -e replicas=N"),
    ("scale-bad-name", "scale.yml", ["-e", "replicas=2", "-e", "name=Bad_Name"], "mysql_cluster_name (Bad_Name)"),
    ("teardown-no-confirm", "teardown.yml", [], "Confirm with -e confirm=mysql"),
    ("teardown-true", "teardown.yml", ["-e", "confirm=true"], "got 'true'"),
    ("teardown-other-name", "teardown.yml", ["-e", "name=alpha", "-e", "confirm=beta"],
     "Confirm with -e confirm=alpha (the cluster's name;"),
]


def run(playbook, args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               K8S_AUTH_HOST="https://127.0.0.1:9", K8S_AUTH_KUBECONFIG="/dev/null")
    proc = subprocess.run([PLAYBOOK, playbook, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_refused_before_any_api_call(case):
    dummy, playbook, args, message = case
    rc, out = run(playbook, args)
    assert rc != 0, out[-2000:]
    tasks = [line for line in out.splitlines() if line.startswith("TASK [")]
    assert "Check" in tasks[-1], "failed outside the checks: %s\n%s" % (tasks[-1], out[-2000:])
    failure = out[out.rindex("fatal: [localhost]"):].replace("''", "'")
    assert message in " ".join(failure.split()), out[-2000:]
    assert "127.0.0.1:9" not in out and "kube-config" not in out
