"""Ansible mechanics the README promises: galaxy.yml declares every
collection the content uses, tags select the role's steps, and no_log never
hides a failure message."""
import glob
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
SELF_AND_CORE = {"stateful.mysql", "ansible.builtin", "ansible.legacy"}
MODULE_KEY = re.compile(r"^\s*(?:- )?([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+:(?:\s|$)", re.M)
PLUGIN_CALL = re.compile(r"(?:lookup|query|q)\(\s*['\"]([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+|"
                         r"\|\s*([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+|"
                         r"\bis\s+(?:not\s+)?([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+")
PY_IMPORT = re.compile(r"ansible_collections\.([a-z0-9_]+)\.([a-z0-9_]+)")


def shipped(patterns):
    build_ignore = yaml.safe_load(open(os.path.join(ROOT, "galaxy.yml")))["build_ignore"]
    for pattern in patterns:
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            rel = os.path.relpath(path, ROOT)
            if not any(rel.startswith(i.rstrip("/")) for i in build_ignore) and not rel.startswith("tests/"):
                yield path


def collections_used():
    used = {}
    for path in shipped(["*.yml", "playbooks/**/*.yml", "roles/**/*.yml", "roles/**/*.j2"]):
        text = open(path).read()
        found = MODULE_KEY.findall(text) if path.endswith(".yml") else []
        for match in PLUGIN_CALL.findall(text):
            found += [tuple(p for p in match if p)]
        for ns, coll in found:
            used.setdefault("%s.%s" % (ns, coll), set()).add(os.path.relpath(path, ROOT))
    for path in shipped(["plugins/**/*.py"]):
        for ns, coll in PY_IMPORT.findall(open(path).read()):
            used.setdefault("%s.%s" % (ns, coll), set()).add(os.path.relpath(path, ROOT))
    return used


def test_galaxy_declares_every_collection_the_content_uses():
    galaxy = yaml.safe_load(open(os.path.join(ROOT, "galaxy.yml")))
    used = collections_used()
    # The scan itself must see what we know is there.
    assert {"kubernetes.core", "community.crypto"} <= set(used), sorted(used)
    missing = {c: sorted(f) for c, f in used.items() if c not in SELF_AND_CORE and c not in galaxy["dependencies"]}
    assert not missing, "galaxy.yml dependencies lack %s" % missing


def test_galaxy_repository_is_a_real_address():
    galaxy = yaml.safe_load(open(os.path.join(ROOT, "galaxy.yml")))
    for key in ("repository", "issues"):
        assert re.match(r"^https://github\.com/[A-Za-z0-9-]+/[A-Za-z0-9_.-]+(/issues)?$", galaxy.get(key, "")), \
            "%s: %r" % (key, galaxy.get(key))
    assert galaxy["issues"] == galaxy["repository"] + "/issues"


def test_no_log_never_hides_a_failure_message():
    """An assert or fail under no_log shows "censored" instead of its fail_msg:
    compute the verdict under no_log, then assert on it without."""
    offenders = []
    for path in shipped(["roles/**/tasks/*.yml", "playbooks/**/*.yml"]):
        stack = list(yaml.safe_load(open(path)) or [])
        while stack:
            task = stack.pop()
            if not isinstance(task, dict):
                continue
            for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks"):
                stack.extend(task.get(key) or [])
            if task.get("no_log") and ({"ansible.builtin.assert", "ansible.builtin.fail"} & set(task)):
                offenders.append("%s: %s" % (os.path.relpath(path, ROOT), task.get("name")))
    assert not offenders, offenders


def run(args, extra_vars):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               K8S_AUTH_HOST="https://127.0.0.1:9", K8S_AUTH_KUBECONFIG="/dev/null")
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), *args, "-e", json.dumps(extra_vars)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_tags_select_the_role_steps():
    """--tags mysql_cluster_validate runs the checks themselves (a bad value
    fails), and --list-tasks shows the steps' own tasks under their tags."""
    case = os.path.join(ROOT, "tests", "unit", "roles", "validate_case.yml")
    proc = run([case, "--tags", "mysql_cluster_validate"], {"mysql_cluster_replicas": 0})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, "--tags mysql_cluster_validate ran no check:\n" + out[-3000:]
    assert "mysql_cluster_replicas (replicas=0) must be a whole number" in out, out[-3000:]

    proc = run(["site.yml", "--list-tasks", "--tags", "mysql_cluster_wait"], {})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Wait until every pod is Ready" in out, out
    assert "Check the replica count" not in out and "Apply the configuration, Services, policies and StatefulSet" not in out, out

    proc = run(["site.yml", "--list-tasks", "--skip-tags", "mysql_cluster_wait"], {})
    out = proc.stdout + proc.stderr
    assert "Check the replica count" in out and "Apply the configuration, Services, policies and StatefulSet" in out, out
    assert "Wait until every pod is Ready" not in out, out


def requirement_names(path):
    names = set()
    for line in open(os.path.join(ROOT, path)):
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>!~\[; ]", line)[0].lower())
    return names


def test_runtime_requirements_cover_the_plugins_and_leave_out_the_test_tools():
    """requirements.txt is what the collection needs where Ansible runs it
    (and what an execution environment installs); the test toolchain is
    tests/requirements.txt."""
    runtime = requirement_names("requirements.txt")
    imported = set()
    for path in shipped(["plugins/**/*.py"]):
        imported |= set(re.findall(r"^\s*(?:import|from) (kubernetes|pymysql|jmespath|yaml)\b", open(path).read(), re.M))
    assert {"kubernetes", "pymysql"} <= imported, imported
    assert imported <= runtime, imported - runtime
    # json_query, which users' inventories may use with our output, needs jmespath.
    assert "jmespath" in runtime
    tools = requirement_names("tests/requirements.txt")
    assert {"pytest", "ansible-lint", "yamllint", "molecule"} <= tools
    assert not tools & runtime and not {"pytest", "ansible-lint", "yamllint", "molecule"} & runtime


def test_execution_environment_metadata_points_at_shipped_files():
    ee = yaml.safe_load(open(os.path.join(ROOT, "meta", "execution-environment.yml")))
    assert ee["version"] in (1, 3)
    build_ignore = yaml.safe_load(open(os.path.join(ROOT, "galaxy.yml")))["build_ignore"]
    for kind, path in ee["dependencies"].items():
        assert kind in ("python", "system", "galaxy")
        assert os.path.isfile(os.path.join(ROOT, path)), path
        assert not any(path.startswith(i) for i in build_ignore), path
    assert ee["dependencies"]["python"] == "requirements.txt"


def test_plugins_hold_no_sql_only_tests_use():
    """Every statement builder of module_utils/sql.py is used by the plugins;
    the ones only tests need live in tests/sql_actions.py."""
    import ast
    path = os.path.join(ROOT, "plugins", "module_utils", "sql.py")
    tree = ast.parse(open(path).read())
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Dialect":
            names += [n.name for n in node.body if isinstance(n, ast.FunctionDef)]
    code = "".join(open(p).read() for p in shipped(["plugins/**/*.py"]))
    unused = [n for n in names if not n.startswith("__")
              and len(re.findall(r"\b%s\b" % n, code)) == len(re.findall(r"def %s\b" % n, code))]
    assert not unused, "only tests use %s: move them to tests/sql_actions.py" % unused


def test_built_collection_holds_the_content_and_no_local_state(tmp_path):
    import tarfile
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), ROOT],
                   cwd=str(tmp_path), env=env, check=True, capture_output=True)
    names = tarfile.open(next(tmp_path.glob("stateful-mysql-*.tar.gz"))).getnames()
    for needed in ("meta/runtime.yml", "meta/execution-environment.yml", "requirements.txt", "playbooks/site.yml",
                   "roles/mysql_cluster/tasks/preflight.yml", "plugins/module_utils/sql.py"):
        assert needed in names, needed
    local = [n for n in names if re.search(r"(^|/)(\.ansible|\.venv|\.collections|__pycache__|\.pytest_cache)(/|$)", n)]
    assert not local, local[:10]
