"""Drill a: kill the primary pod (grace 0) while a writer records every
acknowledged write, and count the outcomes: after each kill no acknowledged
write is missing on the primary, and the replicas converge to its CHECKSUM
TABLE within 60 s of it being Ready again. The writer inserts one row per
statement through the primary's own client (an exec, as an application
that reconnects would); a statement whose exec did not return success is
not acknowledged, whatever became of it. Runs on the converged MariaDB 10.11
cluster the earlier steps leave (or its own)."""
import threading
import time

import common
import rerun
from common import kube

TABLE = "bench.drill_a"


class Writer(threading.Thread):
    """Inserts ids 1, 2, 3... into TABLE on the primary until stopped."""

    def __init__(self, cluster, rep, first_id):
        super().__init__(daemon=True)
        # Its own API client: kubernetes' stream() swaps the client's request
        # method for the length of an exec, so a client shared with the main
        # thread would send its reads down a websocket (seen: a 404 handshake).
        own = kube.Cluster(cluster.name, cluster.namespace, cluster.flavor, cluster.version)
        own.core = kube.client.CoreV1Api(kube.client.ApiClient())
        self.c, self.rep, self.next_id = own, rep, first_id
        self.acked, self.failed = [], 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            i = self.next_id
            self.next_id += 1
            try:
                rc, _err = self.c.sql(self.c.pod(0), "INSERT INTO %s VALUES (%d, %d)" % (TABLE, i, self.rep),
                                      expect_ok=False)
            except Exception:  # the pod is gone or not running yet: not acknowledged
                rc = -1
            if rc == 0:
                self.acked.append(i)
            else:
                self.failed += 1
                time.sleep(0.5)

    def stop(self):
        self.stopping.set()
        self.join(timeout=180)


def run(ctx, smoke):
    res = common.Result("kill_primary", "Drill a: kill the primary under a write load, no acknowledged write lost",
                        smoke)
    conv = rerun.converged(ctx)
    c = kube.Cluster(conv["name"], conv["namespace"], "mariadb", "10.11")
    replicas = len(c.pods())
    c.wait_ready(replicas)
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS %s; "
                    "CREATE TABLE %s (id INT PRIMARY KEY, rep INT)" % (TABLE, TABLE))
    reps = 1 if smoke else 10
    next_id = 1
    for i in range(reps):
        before = common.load()
        writer = Writer(c, i + 1, next_id)
        writer.start()
        time.sleep(5)
        uid = common.pod_uid(c, c.pod(0))
        acked_before_kill = len(writer.acked)
        t0 = time.monotonic()
        c.core.delete_namespaced_pod(c.pod(0), c.namespace, grace_period_seconds=0)
        fields = dict(rep=i + 1, load_before=before, acked_before_kill=acked_before_kill)
        try:
            deadline = time.monotonic() + 120
            while common.pod_uid(c, c.pod(0)) in (uid, None):
                assert time.monotonic() < deadline, "the killed primary's pod was never replaced"
                time.sleep(0.5)
            c.wait_ready(replicas, timeout=600)
            fields["seconds_to_ready"] = round(time.monotonic() - t0, 1)
            time.sleep(3)  # writes after the return are acknowledged too
        except AssertionError as exc:
            fields["error"] = str(exc)[-1500:]
        writer.stop()
        next_id = writer.next_id
        acked = set(writer.acked)
        fields.update(acked=len(acked), not_acked=writer.failed)
        try:
            present = set(int(x) for x in c.sql(c.pod(0), "SELECT id FROM %s WHERE rep = %d" % (TABLE, i + 1)).split())
            lost = sorted(acked - present)
            t1 = time.monotonic()
            sums = common.checksums(c, TABLE, replicas, timeout=60)
            fields.update(lost=len(lost), lost_ids=lost[:20], present=len(present),
                          converged=len(set(sums.values())) == 1,
                          seconds_to_converge=round(time.monotonic() - t1, 1))
            fields["ok"] = not lost and fields["converged"] and "error" not in fields and acked_before_kill > 0
        except AssertionError as exc:
            fields.update(ok=False, error=str(exc)[-1500:])
        fields["load_after"] = common.load()
        res.rep(**fields)
    good, total, ready = res.drill_outcome()
    done = res.data["repetitions"]
    res.target("drill a: kill the primary 10x under load, no acknowledged write lost",
               "%d/%d kills with no acknowledged write lost (%d acknowledged in all, %d lost) and the replicas "
               "converged within 60 s; primary Ready again in %s s (median)"
               % (good, total, sum(r.get("acked", 0) for r in done), sum(r.get("lost", 0) for r in done), ready),
               good == total, good)
    res.save()
    return res
