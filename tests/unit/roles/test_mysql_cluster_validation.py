"""Bad input stops mysql_cluster in validation, before any Kubernetes call,
with a message that names the variable."""
import json
import os
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CASES = yaml.safe_load(open(os.path.join(HERE, "test_mysql_cluster_validation.yaml")))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_is_refused_in_validation(tmp_path, case):
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(case["vars"]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               # Any Kubernetes call would fail loudly and differently.
               K8S_AUTH_HOST="https://127.0.0.1:9", K8S_AUTH_KUBECONFIG="/dev/null",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([PLAYBOOK, os.path.join(HERE, "validate_case.yml"), "-e", "@" + str(varfile)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    failed = [line for line in out.splitlines() if line.startswith("TASK [")]
    last_task = failed[-1] if failed else ""
    assert ("Check" in last_task or "Validating arguments" in last_task), \
        "failed outside validation: %s\n%s" % (last_task, out[-2000:])
    failure = out[out.rindex("fatal: [localhost]"):]
    assert case["names"] in failure, out[-2000:]
    for key, value in case["vars"].items():
        if "password" in key:
            assert value.split("\n")[0] not in out, "a password reached the output"
    assert "127.0.0.1:9" not in out
