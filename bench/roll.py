"""Rolling upgrades and rollouts (issue 28), 3 pods under a write load from
the host (kube.AckedWriter: one row per autocommit INSERT on the primary's
pod IP, each acknowledged id and its time kept; the Ready endpoints of
<name>-read sampled every 0.5 s), side by side in one run on one cluster:

1. site.yml -e mysql_cluster_version=11.8 on MariaDB 10.11 (the role's roll,
   mariadb-upgrade on each pod);
2. a configuration change (max_connections) rolled by site.yml;
3. the same kind of change rolled by the StatefulSet controller alone (the
   seed's way: a pod-template annotation patched, partition 0), timed to
   every pod updated and Ready.

Each: wall time, the longest time between two acknowledged writes (what a
writer sees of the primary's restart), writes acknowledged and failed,
acknowledged ids missing on any pod, the fewest Ready read endpoints seen.
Smoke: the version roll only."""
import time

import common
from common import kube


def _controller_roll(c, replicas):
    """Patch the template (nothing else): the controller rolls all pods at once in order, Ready-gated only."""
    c.apps.patch_namespaced_stateful_set(c.name, c.namespace, {"spec": {"template": {"metadata": {"annotations": {
        "bench.stateful.mysql/restart": str(time.time())}}}}})
    time.sleep(2)

    def done():
        sts = c.apps.read_namespaced_stateful_set(c.name, c.namespace)
        st = sts.status
        return (st.observed_generation or 0) >= sts.metadata.generation and st.update_revision == st.current_revision \
            and (st.updated_replicas or 0) == replicas and (st.ready_replicas or 0) == replicas
    kube.wait_until(done, 900, "the controller's roll", step=0.5)


def _measure(res, c, kind, action, replicas=3):
    with kube.AckedWriter(c) as w:
        kube.wait_until(lambda: len(w.acked) > 50, 60, "the first acknowledged writes")
        t0 = time.monotonic()
        detail = action()
        seconds = time.monotonic() - t0
        time.sleep(3)
    sums = common.checksums(c, "e2e.acked", replicas, timeout=60)
    lost = {c.pod(i): len(w.missing_on(c.pod(i))) for i in range(replicas)}
    res.rep(kind=kind, seconds=round(seconds, 1), longest_gap_seconds=round(w.longest_gap(), 2),
            acknowledged=len(w.acked), failed_writes=w.failed, lost=lost, checksums_equal=len(set(sums.values())) == 1,
            min_ready_read_endpoints=min(w.ready_endpoints) if w.ready_endpoints else None,
            detail=detail, load_after=common.load())


def run(ctx, smoke):
    res = common.Result("roll", "Rolling upgrade and rollouts under writes, 3 pods (MariaDB 10.11 -> 11.8)", smoke)
    ns = common.namespace("roll")
    name = "db"
    args = common.site_args("mariadb", "10.11", name, ns, extra=dict(kube.REMOTE_ROOT, mysql_cluster_replicas=3))
    try:
        common.timed_playbook("site.yml", args)
        c = kube.Cluster(name, ns, "mariadb", "10.11")

        def site(*extra):
            def go():
                seconds, recap, _out, _rc = common.timed_playbook("site.yml", args + list(extra))
                return {"recap": recap}
            return go
        new = ["-e", "mysql_cluster_version=11.8"]
        _measure(res, c, "site.yml version 10.11 -> 11.8", site(*new))
        if not smoke:
            config = '{"mysql_cluster_server_config": {"max_connections": 222}}'
            _measure(res, c, "site.yml configuration change", site(*new, "-e", config))
            _measure(res, c, "StatefulSet controller alone, template change", lambda: _controller_roll(c, 3))
    finally:
        common.drop(ns)
    reps = {r["kind"]: r for r in res.data["repetitions"]}
    for kind, r in reps.items():
        res.target("%s: wall time, longest write gap, nothing lost" % kind,
                   "%.1f s, longest gap %.1f s, %d acknowledged (%d failed attempts), lost %s, read endpoints >= %s"
                   % (r["seconds"], r["longest_gap_seconds"], r["acknowledged"], r["failed_writes"],
                      sum(r["lost"].values()), r["min_ready_read_endpoints"]),
                   sum(r["lost"].values()) == 0 and r["checksums_equal"], r["seconds"])
    res.save()
    return res
