"""Drill d: bad inputs to site.yml, scale.yml and teardown.yml. Each must
fail with a message naming the variable, and change no object: every
resourceVersion in the converged cluster's namespace (and the namespace's
own) is the same before and after. They run against that live cluster's
name and namespace, so an input that slipped past validation would touch it."""
import json
import os
import re
import subprocess

import common
import rerun
from common import kube

# (playbook, extra vars, the names a correct message mentions)
CASES = [
    ("site.yml", {"mysql_cluster_replicas": 0}, ["mysql_cluster_replicas"]),
    ("site.yml", {"mysql_cluster_replicas": 51}, ["mysql_cluster_replicas"]),
    ("site.yml", {"replicas": "three"}, ["replicas"]),
    ("site.yml", {"mysql_cluster_flavor": "postgres"}, ["mysql_cluster_flavor"]),
    # The same with the image given: tests/e2e/vars/local.yml picks the image by
    # flavor, and that expression fails before the role's validation runs.
    ("site.yml", {"mysql_cluster_flavor": "postgres", "mysql_cluster_image": "localhost/x:1"},
     ["mysql_cluster_flavor"]),
    ("site.yml", {"mysql_cluster_version": "5.5"}, ["mysql_cluster_version"]),
    ("site.yml", {"mysql_cluster_image_pull_policy": "Sometimes"}, ["mysql_cluster_image_pull_policy"]),
    ("site.yml", {"mysql_cluster_storage_size": "lots"}, ["mysql_cluster_storage_size"]),
    ("site.yml", {"mysql_cluster_pod_management_policy": "Random"}, ["mysql_cluster_pod_management_policy"]),
    ("site.yml", {"mysql_cluster_anti_affinity": "maybe"}, ["mysql_cluster_anti_affinity"]),
    ("site.yml", {"mysql_cluster_pvc_retention_when_deleted": "Keep"},
     ["mysql_cluster_pvc_retention_when_deleted"]),
    ("site.yml", {"mysql_cluster_run_as_user": "root"}, ["mysql_cluster_run_as_user"]),
    # Empty is not bad (the role generates one and keeps it): a line break is.
    ("site.yml", {"mysql_cluster_root_password": "two\nlines"}, ["mysql_cluster_root_password"]),
    ("site.yml", {"mysql_cluster_credentials_secret": "other-secret"}, ["mysql_cluster_credentials_secret"]),
    ("site.yml", {"mysql_cluster_replication_password": "x" * 40}, ["mysql_cluster_replication_password"]),
    ("site.yml", {"mysql_cluster_name": "Bad_Name!"}, ["mysql_cluster_name"]),
    ("site.yml", {"mysql_cluster_namespace": "UPPER_case"}, ["mysql_cluster_namespace"]),
    ("site.yml", {"mysql_cluster_server_id_base": -1}, ["mysql_cluster_server_id_base"]),
    ("site.yml", {"mysql_cluster_max_lag_seconds": -3}, ["mysql_cluster_max_lag_seconds"]),
    ("site.yml", {"mysql_cluster_resources": "plenty"}, ["mysql_cluster_resources"]),
    ("site.yml", {"mysql_cluster_network_policy_from": "everyone"}, ["mysql_cluster_network_policy_from"]),
    ("site.yml", {"mysql_cluster_wait_timeout": 0}, ["mysql_cluster_wait_timeout"]),
    ("site.yml", {"mysql_cluster_pdb_enabled": "perhaps"}, ["mysql_cluster_pdb_enabled"]),
    # 0 is valid (kept until purged by hand): below and above the documented 0..3650.
    ("site.yml", {"mysql_cluster_binlog_expire_days": -1}, ["mysql_cluster_binlog_expire_days"]),
    ("site.yml", {"mysql_cluster_binlog_expire_days": 3651}, ["mysql_cluster_binlog_expire_days"]),
    ("site.yml", {"mysql_cluster_storage_class": ""}, ["mysql_cluster_storage_class"]),
    ("scale.yml", {"replicas": 0}, ["replicas"]),
    ("scale.yml", {"replicas": "-1"}, ["replicas"]),
    ("scale.yml", {"replicas": 51}, ["replicas"]),
    ("teardown.yml", {"confirm": "not-the-name"}, ["mysql_cluster_teardown_confirm", "confirm"]),
    ("teardown.yml", {}, ["mysql_cluster_teardown_confirm", "confirm"]),
]
# The smoke variant: one per playbook.
SMOKE = [0, 27, 30]
KINDS = "configmap,secret,service,statefulset,poddisruptionbudget,networkpolicy,pvc,serviceaccount,role,rolebinding,pod"


def versions_in(ns):
    """kind/name -> resourceVersion of every object we might touch."""
    env = dict(os.environ, KUBECONFIG=kube.KUBECONFIG)
    out = subprocess.run([common.KUBECTL, "-n", ns, "get", KINDS, "-o", "json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    found = {"%s/%s" % (o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"]
             for o in json.loads(out)["items"]}
    ns_obj = subprocess.run([common.KUBECTL, "get", "namespace", ns, "-o", "json"], env=env,
                            capture_output=True, text=True, check=True).stdout
    found["Namespace/" + ns] = json.loads(ns_obj)["metadata"]["resourceVersion"]
    return found


def failure_text(out):
    """The failure's message: the `msg:` of each fatal block (not the assertion's
    expression, which names the variable whatever the message says), or an ERROR! block."""
    blocks, cur = [], None
    for line in out.splitlines():
        if "fatal:" in line or line.startswith("ERROR!") or "[ERROR]" in line:
            cur = [line]
            blocks.append(cur)
        elif cur is not None:
            if not line.strip() or line.startswith(("PLAY RECAP", "TASK [", "NO MORE HOSTS")):
                cur = None
            else:
                cur.append(line)
    msgs = []
    for block in blocks:
        text = "\n".join(block)
        msgs.append(text.split("msg:", 1)[1] if "msg:" in text else text)
    return "\n".join(msgs)


def run(ctx, smoke):
    res = common.Result("bad_inputs", "Drill d: bad inputs fail naming the variable, nothing changes", smoke)
    c = rerun.converged(ctx)
    base = common.site_args("mariadb", "10.11", c["name"], c["namespace"])
    cases = [CASES[i] for i in SMOKE] if smoke else CASES
    for playbook, bad, names in cases:
        before_rv = versions_in(c["namespace"])
        before = common.load()
        args = base + ["-e", json.dumps(bad)] if bad else list(base)
        if playbook == "scale.yml" and "replicas" in bad:
            args = base + ["-e", "replicas=%s" % bad["replicas"]]
        seconds, recap, out, rc = common.timed_playbook(playbook, args, check=False)
        after_rv = versions_in(c["namespace"])
        changed = sorted(k for k in set(before_rv) | set(after_rv) if before_rv.get(k) != after_rv.get(k))
        msg = failure_text(out)
        named = [n for n in names if re.search(r"\b%s\b" % re.escape(n), msg)]
        ok = rc != 0 and bool(named) and not changed
        res.rep(playbook=playbook, bad=bad, rc=rc, seconds=seconds, named=named, changed_objects=changed,
                passed=ok, message=msg[-1200:], load_before=before, load_after=common.load())
    reps = res.data["repetitions"]
    passed = sum(r["passed"] for r in reps)
    res.target(">= 20 distinct bad inputs each fail naming the variable, no resourceVersion changes",
               "%d/%d passed%s" % (passed, len(reps), " (smoke: 3 inputs)" if smoke else ""),
               passed == len(reps) and (smoke or len(reps) >= 20), passed)
    res.save()
    return res
