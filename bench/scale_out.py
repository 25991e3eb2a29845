"""Benchmark 2: scale-out with scale.yml, MySQL 9.7 (CLONE), OrderedReady
against Parallel (mysql_cluster_pod_management_policy): scale.yml's wall
time, each new replica's join time (pod creation to Ready) and the donor
each copy came from (its events.log on the volume). Full: 3 -> 8 on a fresh
cluster per policy. Smoke: one new replica (3 -> 4) on the converged MariaDB
cluster the earlier steps left, where the two policies cannot differ; it
keeps the code path alive within the 5-minute budget, nothing more."""
import re

import common
import rerun
from common import kube

POLICIES = ("OrderedReady", "Parallel")
# tests/e2e/vars/mysql-9.7.yml caps clone bandwidth at 20 MiB/s so a test can
# interrupt a clone; a benchmark of join time must not carry that cap.
UNCAPPED = {"mysql_cluster_server_config": {}}


def donors(cluster, pods):
    """pod -> donor named by its 'clone completed (donor X)' event."""
    out = {}
    for pod in pods:
        try:
            text = cluster.events(pod)
        except AssertionError:
            out[pod] = None
            continue
        m = re.findall(r"clone completed \(donor ([^)]+)\)|backup stream started from ([^: ]+)", text)
        m = [a or b for a, b in m]
        out[pod] = m[-1] if m else None
    return out


def join_times(cluster, names):
    out = {}
    for pod in cluster.pods():
        if pod.metadata.name not in names:
            continue
        cond = [c for c in pod.status.conditions or [] if c.type == "Ready" and c.status == "True"]
        out[pod.metadata.name] = (round(cond[0].last_transition_time.timestamp()
                                        - pod.metadata.creation_timestamp.timestamp(), 1) if cond else None)
    return out


def scale(res, name, ns, flavor, version, policy, start, end, extra, deploy=None, before=None, one=False):
    mid = common.load()
    args = common.site_args(flavor, version, name, ns, extra=extra) + ["-e", "replicas=%d" % end]
    seconds, recap, _out, _rc = common.timed_playbook("scale.yml", args)
    cluster = kube.Cluster(name, ns, flavor, version)
    new = [cluster.pod(i) for i in range(start, end)]
    res.rep(policy=policy, flavor="%s %s" % (flavor, version), start=start, end=end, deploy_seconds=deploy,
            scale_seconds=seconds, recap=recap, join_seconds=join_times(cluster, new),
            donors=donors(cluster, new), namespace=ns, load_before=before or mid, load_mid=mid,
            load_after=common.load(), one=one)


def run(ctx, smoke):
    res = common.Result("scale_out", "Scale-out with scale.yml, MySQL 9.7: OrderedReady vs Parallel", smoke)
    if smoke:
        c = rerun.converged(ctx)
        res.note("smoke: 3 -> 4 on the converged MariaDB 10.11 cluster (OrderedReady); one new pod, so "
                 "the policies cannot differ: the MySQL 9.7 3 -> 8 comparison runs in the full variant only.")
        scale(res, c["name"], c["namespace"], "mariadb", "10.11", "OrderedReady", 3, 4, {})
        start, end = 3, 4
        policies = ()
    else:
        start, end = 3, 8
        policies = POLICIES
        if ctx.get("converged"):
            # Last in the order: the earlier steps' idle cluster would only add load.
            common.drop(ctx.pop("converged")["namespace"])
        res.note("%d -> %d replicas; clone bandwidth uncapped (the e2e vars cap it at 20 MiB/s)." % (start, end))
    name = "mysql"
    for policy in policies:
        ns = common.namespace("scale-" + policy.lower()[:7])
        extra = dict(UNCAPPED, mysql_cluster_pod_management_policy=policy)
        try:
            before = common.load()
            deploy = common.timed_playbook(
                "site.yml", common.site_args("mysql", "9.7", name, ns, extra=dict(extra, mysql_cluster_replicas=start)))[0]
            if policy == "OrderedReady":
                # One replica first: scale.yml's own cost over a join (the wait's overhead), then back.
                scale(res, name, ns, "mysql", "9.7", policy, start, start + 1, extra, one=True)
                common.timed_playbook("scale.yml", common.site_args("mysql", "9.7", name, ns, extra=extra)
                                      + ["-e", "replicas=%d" % start])
            scale(res, name, ns, "mysql", "9.7", policy, start, end, extra, deploy=deploy, before=before)
        except Exception as exc:
            res.rep(policy=policy, start=start, end=end, error=str(exc)[-2000:], load_after=common.load())
        finally:
            common.drop(ns)
    reps = {r["policy"]: r for r in res.data["repetitions"] if "scale_seconds" in r and not r.get("one")}
    if smoke:
        r = res.data["repetitions"][0]
        join = list(r["join_seconds"].values())[0]
        res.target("scale.yml 3 -> 4 <= one replica's copy-and-join time + 10 s",
                   "smoke (MariaDB): scale.yml %.1f s, the replica joined in %s s" % (r["scale_seconds"], join),
                   None)
    else:
        one = [r for r in res.data["repetitions"] if r.get("one") and "scale_seconds" in r]
        if one:
            join = list(one[0]["join_seconds"].values())[0]
            res.target("scale.yml 3 -> 4 <= one replica's copy-and-join time + 10 s",
                       "scale.yml %.1f s, the replica joined in %s s (pod creation to Ready): +%.1f s"
                       % (one[0]["scale_seconds"], join, one[0]["scale_seconds"] - (join or 0)),
                       join is not None and one[0]["scale_seconds"] <= join + 10, one[0]["scale_seconds"])
        else:
            res.target("scale.yml 3 -> 4 <= one replica's copy-and-join time + 10 s", "failed: see repetitions", False)
        if "Parallel" in reps and "OrderedReady" in reps:
            par, ordered = reps["Parallel"]["scale_seconds"], reps["OrderedReady"]["scale_seconds"]
            longest = max(v for v in reps["Parallel"]["join_seconds"].values() if v)
            res.target("Parallel %d -> %d <= 0.6x OrderedReady %d -> %d" % (start, end, start, end),
                       "Parallel %.1f s (slowest join %.1f s) vs OrderedReady %.1f s: %.2fx"
                       % (par, longest, ordered, par / ordered), par / ordered <= 0.6, round(par / ordered, 2))
        else:
            res.target("Parallel %d -> %d <= 0.6x OrderedReady %d -> %d" % (start, end, start, end),
                       "failed: see repetitions", False)
    res.save()
    return res
