"""A new user's path on the local cluster, within the execution budgets.

`make deploy` with no kubeconfig (the local test cluster, its images, 1Gi on
StorageClass standard), then the README's "Use" commands exactly as shown,
with only KUBECONFIG exported: `ansible-playbook site.yml` must keep what
make deploy chose (unset settings keep their live values) instead of
refusing the inventory's defaults, then converge; `scale.yml -e replicas=4`,
`verify.yml` and `teardown.yml -e confirm=mysql` follow. Every run counts its
module executions (tests/callback_plugins/module_count.py) against README
"Execution budgets", where each module start costs about a second of CPU on
a 2-core control node.

It deploys cluster mysql in namespace mysql, the defaults: it fails at once,
touching nothing, when that namespace already exists on the local cluster
(your own make deploy, say)."""
import os
import subprocess

import pytest

from kube import KUBECONFIG, ROOT, Cluster, api, budgets, count_env, delete_namespace, executions, run_playbook

pytestmark = pytest.mark.landing()
NAME = NAMESPACE = "mysql"


def counted(path, playbook, *args):
    out, recap = run_playbook(os.path.join(ROOT, playbook), *args, count=path)
    total, tasks = executions(path)
    return out, recap, total, tasks


def within(budget, run, total, tasks, out):
    assert total <= budget[run], "%s made %d module executions, over its budget of %d: %s\n%s" % (
        run, total, budget[run], tasks, out[-3000:])


def test_new_user_path_within_the_execution_budgets(kube_ready, tmp_path):
    core, _apps = api()
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert NAMESPACE not in names, (
        "namespace %s exists on the local test cluster: this test deploys the default cluster there. Remove it "
        "first (KUBECONFIG=%s ansible-playbook teardown.yml -e confirm=%s)" % (NAMESPACE, KUBECONFIG, NAME))
    budget = budgets()
    assert set(budget) >= {"site.yml", "site.yml (rerun)", "scale.yml -e replicas=4", "verify.yml",
                           "teardown.yml -e confirm=mysql"}, budget
    try:
        # make deploy with no kubeconfig: the local cluster, as on a fresh machine.
        env = dict(os.environ, USER_KUBECONFIG=os.devnull, **count_env(tmp_path / "deploy.json"))
        env.pop("KUBECONFIG", None)
        env.pop("K8S_AUTH_KUBECONFIG", None)
        proc = subprocess.run(["make", "deploy"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert "No kubeconfig: using the local test cluster" in out, out[-2000:]
        total, tasks = executions(tmp_path / "deploy.json")
        within(budget, "site.yml", total, tasks, out)

        # The README's Use commands as shown: the defaults (10Gi, the cluster's
        # default StorageClass, the official image) are unset, so the live values stay.
        out, recap, total, tasks = counted(tmp_path / "plain.json", "site.yml")
        kept = " ".join(out.split())
        for setting in ("mysql_cluster_storage_size=1Gi", "mysql_cluster_storage_class=standard",
                        "mysql_cluster_image=localhost/stateful-mysql/mysql:9.7"):
            assert setting in kept, (setting, out[-3000:])
        # The resources of tests/e2e/vars/local.yml give way to the role's defaults (a rolling restart).
        out, recap, total, tasks = counted(tmp_path / "rerun.json", "site.yml")
        assert recap["changed"] == 0, out[-4000:]
        within(budget, "site.yml (rerun)", total, tasks, out)

        out, recap, total, tasks = counted(tmp_path / "scale.json", "scale.yml", "-e", "replicas=4")
        within(budget, "scale.yml -e replicas=4", total, tasks, out)
        c = Cluster(NAME, NAMESPACE, "mysql", "9.7")
        assert len([p for p in c.pods() if p.status.phase == "Running"]) == 4
        out, recap = run_playbook(os.path.join(ROOT, "scale.yml"), "-e", "replicas=4")
        assert recap["changed"] == 0, out[-3000:]

        out, recap, total, tasks = counted(tmp_path / "verify.json", "verify.yml")
        within(budget, "verify.yml", total, tasks, out)

        out, recap, total, tasks = counted(tmp_path / "teardown.json", "teardown.yml", "-e", "confirm=mysql")
        within(budget, "teardown.yml -e confirm=mysql", total, tasks, out)
        claims = core.list_namespaced_persistent_volume_claim(NAMESPACE).items
        assert claims == [], [x.metadata.name for x in claims]
    finally:
        if os.environ.get("E2E_KEEP") != "1":
            delete_namespace(NAMESPACE)  # waited for: the next run checks that it is gone
