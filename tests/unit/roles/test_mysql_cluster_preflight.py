"""preflight.yml's decisions on a recorded live cluster: what the volumes or
the API cannot take is refused with a message naming the variable, and what
they can (the same size in other units, the same or a later version) is not.
The live cluster is given as the cluster_live lookup's result, and the run
starts after the lookup's task; unset settings take the live values as in a
real run. The same refusals against a real cluster are in tests/e2e/test_site.py."""
import json
import os
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TABLE = yaml.safe_load(open(os.path.join(HERE, "test_mysql_cluster_preflight.yaml")))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


@pytest.mark.parametrize("case", TABLE["cases"], ids=[c["id"] for c in TABLE["cases"]])
def test_preflight(tmp_path, case):
    live = TABLE["live"]
    # What the cluster_live lookup returns (its task is before --start-at-task).
    read = dict(namespace=True, statefulset=live["statefulset"], config={"cluster.env": case.get("env", live["env"])}, state=None,
                claims=[], secrets={"mysql-credentials": {"root-password": "eA=="}, "mysql-tls": {"ca.crt": "eA=="}},
                pdb=False, network_policy=False, primary_ready=False)
    # Secrets that are gone (null, as the lookup gives a missing one).
    read["secrets"].update(dict.fromkeys(case.get("secrets_gone", ()), None))
    read["namespace_labels"] = case.get("namespace_labels", {})
    data = dict({} if case.get("unset") else TABLE["deployed"], __mysql_cluster_read=read)
    data.update(case["vars"])
    if "state" in case:
        # The StatefulSet gone, the state ConfigMap and these PVCs there.
        read.update(statefulset={}, state=case["state"], claims=case["claims"])
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(data))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               K8S_AUTH_HOST="https://127.0.0.1:9", K8S_AUTH_KUBECONFIG="/dev/null")
    proc = subprocess.run([PLAYBOOK, os.path.join(HERE, "validate_case.yml"), "--tags", "mysql_cluster_validate",
                           "--start-at-task", "Note what the live cluster was deployed with", "-e", "@" + str(varfile)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    if "names" not in case:
        assert proc.returncode == 0, out[-3000:]
        assert "Refuse" in out  # the checks ran
        return
    assert proc.returncode != 0, out[-3000:]
    task = [line for line in out.splitlines() if line.startswith("TASK [")][-1]
    assert "Refuse" in task, task
    assert case["names"] in " ".join(out.split()), out[-3000:]
