"""Benchmark 2: scale-out with scale.yml, MySQL 9.7 (CLONE), OrderedReady
against Parallel (mysql_cluster_pod_management_policy): scale.yml's wall
time, each new replica's join time (pod creation to Ready) and the donor
each copy came from (its events.log on the volume). Full: 3 -> 8; smoke: 1 -> 2."""
import re

import common
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
        m = re.findall(r"clone completed \(donor ([^)]+)\)", text)
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


def run(ctx, smoke):
    res = common.Result("scale_out", "Scale-out with scale.yml, MySQL 9.7: OrderedReady vs Parallel", smoke)
    start, end = (1, 2) if smoke else (3, 8)
    res.note("%d -> %d replicas; clone bandwidth uncapped (the e2e vars cap it at 20 MiB/s)." % (start, end))
    name = "mysql"
    for policy in POLICIES:
        ns = common.namespace("scale-" + policy.lower()[:7])
        extra = dict(UNCAPPED, mysql_cluster_pod_management_policy=policy, mysql_cluster_replicas=start)
        try:
            before = common.load()
            deploy, recap, _, _ = common.timed_playbook(
                "site.yml", common.site_args("mysql", "9.7", name, ns, extra=extra))
            mid = common.load()
            args = common.site_args("mysql", "9.7", name, ns, extra=dict(UNCAPPED,
                                    mysql_cluster_pod_management_policy=policy)) + ["-e", "replicas=%d" % end]
            seconds, recap, _, _ = common.timed_playbook("scale.yml", args)
            cluster = kube.Cluster(name, ns, "mysql", "9.7")
            new = [cluster.pod(i) for i in range(start, end)]
            joins = join_times(cluster, new)
            res.rep(policy=policy, start=start, end=end, deploy_seconds=deploy, scale_seconds=seconds,
                    recap=recap, join_seconds=joins, donors=donors(cluster, new), namespace=ns,
                    load_before=before, load_mid=mid, load_after=common.load())
        except Exception as exc:
            res.rep(policy=policy, start=start, end=end, error=str(exc)[-2000:], load_after=common.load())
        finally:
            common.drop(ns)
    reps = {r["policy"]: r for r in res.data["repetitions"] if "scale_seconds" in r}
    if "Parallel" in reps:
        par = reps["Parallel"]
        one = common.median([v for v in par["join_seconds"].values() if v])
        longest = max(v for v in par["join_seconds"].values() if v)
        ordered = reps.get("OrderedReady", {}).get("scale_seconds")
        res.target("Parallel scale-out <= 2x one replica's join time (%d -> %d)" % (start, end),
                   "scale.yml %.1f s (slowest join %.1f s) vs one join %.1f s (median): %.2fx; OrderedReady %s s"
                   % (par["scale_seconds"], longest, one, par["scale_seconds"] / one, ordered),
                   par["scale_seconds"] / one <= 2.0, round(par["scale_seconds"] / one, 2))
    else:
        res.target("Parallel scale-out <= 2x one replica's join time", "failed: see repetitions", False)
    res.save()
    return res
