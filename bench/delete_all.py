"""Drill c: delete every pod of the cluster at once (as `kubectl delete pods
--all` does, with the default grace period) and count the outcomes: the
cluster is Ready again with every row, equal CHECKSUM TABLE on every pod, the
same datadir on each volume, no new copy and no second CHANGE. Runs on
the converged MariaDB 10.11 cluster the earlier steps leave (or its own)."""
import time

import common
import rerun
from common import kube

TABLE = "bench.drill_c"


def run(ctx, smoke):
    res = common.Result("delete_all", "Drill c: delete all pods at once, data intact", smoke)
    conv = rerun.converged(ctx)
    c = kube.Cluster(conv["name"], conv["namespace"], "mariadb", "10.11")
    replicas = len(c.pods())
    c.wait_ready(replicas)
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS bench; CREATE TABLE IF NOT EXISTS %s "
                    "(id INT AUTO_INCREMENT PRIMARY KEY, rep INT, v VARCHAR(64))" % TABLE)
    reps = 1 if smoke else 10
    for i in range(reps):
        before = common.load()
        c.sql(c.pod(0), "INSERT INTO %s (rep, v) VALUES %s" % (TABLE, ",".join(["(%d, UUID())" % (i + 1)] * 200)))
        rows = int(c.sql(c.pod(0), "SELECT COUNT(*) FROM %s" % TABLE))
        # The replicas catch up with the batch first: the state to keep.
        sums = common.checksums(c, TABLE, replicas, timeout=60)
        state = common.pod_state(c, replicas)
        t0 = time.monotonic()
        for pod in c.pods():
            c.core.delete_namespaced_pod(pod.metadata.name, c.namespace)
        # The old pods first go away, then the StatefulSet brings them all back Ready.
        deadline = time.monotonic() + 120
        while any(p.metadata.deletion_timestamp is None and p.metadata.uid in state["uids"] for p in c.pods()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        fields = dict(rep=i + 1, rows=rows, load_before=before)
        try:
            c.wait_ready(replicas, timeout=600)
            fields["seconds_to_ready"] = round(time.monotonic() - t0, 1)
            after = common.checksums(c, TABLE, replicas, timeout=60)
            now = common.pod_state(c, replicas)
            fields.update(
                rows_after=int(c.sql(c.pod(0), "SELECT COUNT(*) FROM %s" % TABLE)),
                checksums_equal=len(set(after.values())) == 1 and set(after.values()) == set(sums.values()),
                datadir_kept=now["identity"] == state["identity"],
                copies_before=state["copies"], copies_after=now["copies"],
                changes_before=state["changes"], changes_after=now["changes"])
            fields["ok"] = (fields["rows_after"] == rows and fields["checksums_equal"] and fields["datadir_kept"]
                            and now["copies"] == state["copies"] and now["changes"] == state["changes"])
        except AssertionError as exc:
            fields.update(ok=False, error=str(exc)[-1500:])
        fields["load_after"] = common.load()
        res.rep(**fields)
    good, total, ready = res.drill_outcome()
    res.target("drill c: delete all pods, data intact",
               "%d/%d intact (rows, equal CHECKSUM TABLE, same datadir, no copy, no CHANGE); back to %d/%d "
               "Ready in %s s (median)" % (good, total, replicas, replicas, ready),
               good == total, good)
    res.save()
    return res
