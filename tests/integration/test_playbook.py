"""The modules as users run them: ansible-playbook, -vvv, the password from the environment."""

import json
import os
import subprocess
import sys

from conftest import ROOT_PASSWORD, hosts_of

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)


def test_status_and_verify_through_ansible_playbook(healthy, tmp_path):
    out = tmp_path / "result.json"
    common = {"name": "db", "connection": "direct", "hosts": hosts_of(healthy),
              "login_password": "{{ lookup('ansible.builtin.env', 'IT_ROOT_PASSWORD') }}"}
    play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": [
        {"name": "status", "stateful.mysql.replication_status": dict(common, wait=True, wait_timeout=30),
         "register": "status"},
        {"name": "verify", "stateful.mysql.replication_verify": dict(
            common, read_host="127.0.0.1", read_port=healthy[2].port, read_attempts=2), "register": "verify"},
        {"name": "save", "ansible.builtin.copy": {
            "content": "{{ {'status': status, 'verify': verify} | to_json }}", "dest": str(out)}},
    ]}]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps(play))
    env = dict(os.environ, IT_ROOT_PASSWORD=ROOT_PASSWORD, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=os.path.join(BIN, "python"))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-vvv", "-i", "localhost,", str(book)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    result = json.loads(out.read_text())
    assert result["status"]["healthy"] is True
    assert [s["role"] for s in result["status"]["servers"]] == ["primary", "replica", "replica"]
    assert [p["name"] for p in result["verify"]["propagation"]] == ["db-1", "db-2"]
    assert result["verify"]["read_servers"]
    # Neither the password nor any part of its option-file form is printed.
    assert ROOT_PASSWORD not in output
    assert ROOT_PASSWORD not in out.read_text()
