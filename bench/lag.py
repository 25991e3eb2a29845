"""Benchmark 5: replication lag under a sustained write load, per flavor
(MariaDB 10.11 on the converged cluster, MySQL 9.7 on a 3-pod cluster of its
own). A step is a target write rate held for a while: WRITERS processes
insert one row per autocommit transaction on the primary, each paced to its
share (None: as fast as they can), while a thread per replica samples it
every SAMPLE_EVERY s. Target: p99 <= 1 s at the highest rate the generator
actually sustained, for each flavor.

The lag of a sample is the replica's NOW(6) minus the primary's NOW(6) in
the oldest row the replica does not have yet (0 when it has them all): the
write rows are their own heartbeat, so there is no floor of one heartbeat
interval (pt-heartbeat's) and a stalled generator does not read as lag. All
pods share one node clock. The clients connect to the pod IPs from the host
(about 3x the rate of a port-forward through the API server, which would
also spend the same two cores), or through `kubectl port-forward` where the
pod IP does not answer."""
import base64
import bisect
import math
import multiprocessing
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pymysql

import common
import rerun
from common import kube

TABLE = "bench.lag"
STEPS = (50, 200, 500, 1000, 2000, None)  # tx/s in all; None: unthrottled
WRITERS = 4
SAMPLE_EVERY = 0.1
SUSTAINED = 0.9  # a throttled step reached its target at >= 90% of it
TARGET = "replication lag p99 <= 1 s at the highest sustained write rate"
LIMIT = 1.0
INSERT = "INSERT INTO %s (created, pad) VALUES (NOW(6), REPEAT('x', 100))" % TABLE


# MySQL 9.7's limit, looked for by changing one thing at a time on its
# replicas at the unthrottled rate (full variant): their durability (two
# fsyncs per transaction: binary log and redo log) and their applier threads.
# Each is set back before the next. name -> (SQL on each replica, SQL after).
VARIANTS = (
    ("replicas without fsync (sync_binlog=0, innodb_flush_log_at_trx_commit=2)",
     "SET GLOBAL sync_binlog = 0; SET GLOBAL innodb_flush_log_at_trx_commit = 2",
     "SET GLOBAL sync_binlog = 1; SET GLOBAL innodb_flush_log_at_trx_commit = 1"),
    ("one applier thread (replica_parallel_workers=1)",
     "STOP REPLICA SQL_THREAD; SET GLOBAL replica_parallel_workers = 1; START REPLICA SQL_THREAD",
     "STOP REPLICA SQL_THREAD; SET GLOBAL replica_parallel_workers = 4; START REPLICA SQL_THREAD"),
    ("eight applier threads (replica_parallel_workers=8)",
     "STOP REPLICA SQL_THREAD; SET GLOBAL replica_parallel_workers = 8; START REPLICA SQL_THREAD",
     "STOP REPLICA SQL_THREAD; SET GLOBAL replica_parallel_workers = 4; START REPLICA SQL_THREAD"),
)


def cpu_times():
    """(busy, total) jiffies of the machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_percent(before, after):
    total = after[1] - before[1]
    return round(100.0 * (after[0] - before[0]) / total, 1) if total else None


def percentile(values, pct):
    """Nearest rank: the smallest value with pct% of the values at or below it."""
    values = sorted(values)
    if not values:
        return None
    return values[max(0, math.ceil(pct / 100.0 * len(values)) - 1)]


def lag_seconds(samples, committed):
    """samples: (applied max id, replica NOW(6)); committed: (id, primary
    NOW(6)) of the step's rows, ascending. The age of the oldest row not
    applied yet, 0 if none is (rows of the 4 writers interleave by at most
    one statement's time)."""
    ids = [row[0] for row in committed]
    out = []
    for applied, at in samples:
        k = bisect.bisect_right(ids, applied)
        out.append(0.0 if k == len(ids) else max(0.0, (at - committed[k][1]).total_seconds()))
    return out


def summary(lags):
    return {"p50": _r(percentile(lags, 50)), "p99": _r(percentile(lags, 99)), "max": _r(max(lags) if lags else None),
            "samples": len(lags)}


def _r(x):
    return None if x is None else round(x, 4)


def highest(reps):
    """flavor -> the step at the highest achieved rate (the one judged)."""
    out = {}
    for r in reps:
        if r.get("variant"):
            continue
        if r.get("achieved_rate") is not None and r["achieved_rate"] > out.get(r["flavor"], {}).get("achieved_rate", -1):
            out[r["flavor"]] = r
    return out


class Login:
    """Root over TLS (verified against the cluster CA: the pod IP is not in
    the certificate, so no host name check); the password read from the
    credentials Secret, in-process only."""

    def __init__(self, cluster):
        secret = cluster.core.read_namespaced_secret(cluster.name + "-credentials", cluster.namespace).data
        self.password = base64.b64decode(secret["root-password"]).decode()
        tls = cluster.core.read_namespaced_secret(cluster.name + "-tls", cluster.namespace).data
        with tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False) as fh:  # the CA: public
            fh.write(base64.b64decode(tls["ca.crt"]).decode())
        self.ca = fh.name

    def connect(self, addr):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        # UTC sessions: the primary's and the replica's NOW(6) are compared.
        return pymysql.connect(host=addr[0], port=addr[1], user="root", password=self.password, ssl=ctx,
                               autocommit=True, connect_timeout=10, read_timeout=30, write_timeout=30,
                               init_command="SET time_zone = '+00:00'")


def reach(cluster, forwards):
    """pod -> (host, port); the port-forward processes it opens go in forwards (to stop)."""
    addrs = {}
    for pod in cluster.pods():
        ip = pod.status.pod_ip
        try:
            socket.create_connection((ip, 3306), timeout=3).close()
            addrs[pod.metadata.name] = (ip, 3306)
            continue
        except OSError:
            pass
        proc = subprocess.Popen([common.KUBECTL, "--kubeconfig", kube.KUBECONFIG, "-n", cluster.namespace,
                                 "port-forward", "pod/" + pod.metadata.name, ":3306"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        forwards.append(proc)
        m = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert m, "no port-forward to %s" % pod.metadata.name
        addrs[pod.metadata.name] = ("127.0.0.1", int(m.group(1)))
    return addrs


def write(addr, login, rate, seconds, ready, go, start, out):
    """One writer process (forked: login is inherited, never in argv or the
    environment): connects, says ready, then rows at `rate` tx/s (None:
    unthrottled) from the monotonic time `start` for `seconds`; puts (rows, errors)."""
    try:
        conn = login.connect(addr)
    except pymysql.MySQLError as exc:
        ready.put("writer cannot connect: %s" % exc)
        return
    cur = conn.cursor()
    ready.put(None)
    go.wait(120)
    rows = errors = 0
    interval = 1.0 / rate if rate else 0.0
    due, end = start.value, start.value + seconds
    time.sleep(max(0.0, due - time.monotonic()))
    while True:
        now = time.monotonic()
        if interval:
            if now - due > 1.0:  # more than 1 s behind: the rate is not reached; no burst to catch up
                due = now
            if due > now:
                time.sleep(due - now)
            due += interval
        if time.monotonic() >= end:
            break
        try:
            cur.execute(INSERT)
            rows += 1
        except pymysql.MySQLError:
            errors += 1
            time.sleep(0.1)
    conn.close()
    out.put((rows, errors))


class Sampler(threading.Thread):
    """(host monotonic time, applied max id, replica NOW(6)) every SAMPLE_EVERY s."""

    def __init__(self, login, addr):
        super().__init__(daemon=True)
        self.conn = login.connect(addr)
        self.samples, self.errors = [], 0
        self.stopping = threading.Event()

    def run(self):
        cur = self.conn.cursor()
        while not self.stopping.wait(SAMPLE_EVERY):
            try:
                cur.execute("SELECT COALESCE(MAX(id), 0), NOW(6) FROM %s" % TABLE)
                applied, at = cur.fetchone()
                self.samples.append((time.monotonic(), applied, at))
            except pymysql.MySQLError:
                self.errors += 1

    def stop(self):
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=30)
        self.conn.close()


def step(login, addrs, primary, replicas, rate, seconds, drain_timeout):
    """One step: load for `seconds`, then the replicas' catch-up (drain).
    primary: (pod, connection)."""
    writer_addr, primary = addrs[primary[0]], primary[1]
    cur = primary.cursor()
    cur.execute("SELECT COALESCE(MAX(id), 0) FROM %s" % TABLE)
    first = cur.fetchone()[0]
    samplers = []
    # fork, not spawn: spawn re-runs the parent's __main__ script in each
    # child (seen: a script without a main guard re-ran the whole benchmark).
    mp = multiprocessing.get_context("fork")
    ready, go, out, start_at = mp.Queue(), mp.Event(), mp.Queue(), mp.Value("d", 0.0)
    procs = [mp.Process(target=write, args=(writer_addr, login, rate and rate / WRITERS, seconds, ready, go,
                                            start_at, out), daemon=True) for _i in range(WRITERS)]
    try:
        for p in procs:  # before the sampler threads: nothing of ours runs in a thread at the fork
            p.start()
        for _p in procs:  # the writers' connections are not in the step
            failed = ready.get(timeout=120)
            assert failed is None, failed
        samplers += [Sampler(login, addrs[pod]) for pod in replicas]
        for s in samplers:
            s.start()
        start = start_at.value = time.monotonic() + 0.5
        go.set()
        time.sleep(0.5)
        cpu_start = cpu_times()
        done = [out.get(timeout=seconds + 60) for _p in procs]
        cpu_end = cpu_times()
        end = start + seconds
        cur.execute("SELECT id, created FROM %s WHERE id > %d ORDER BY id" % (TABLE, first))
        committed = list(cur.fetchall())
        last = committed[-1][0] if committed else first
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline and not all(s.samples and s.samples[-1][1] >= last for s in samplers):
            time.sleep(SAMPLE_EVERY)
    finally:
        for p in procs:
            if p.pid is not None:
                p.join(timeout=10 if go.is_set() else 0)
            if p.is_alive():
                p.terminate()
        for s in samplers:
            s.stop()
    fields, judged = {"replicas": {}}, []
    for pod, s in zip(replicas, samplers):
        lags = lag_seconds([(a, at) for t, a, at in s.samples if start <= t <= end], committed)
        # Catch-up: its first sample with every row, after the end (0 if it had them by then).
        caught = [t for t, a, _at in s.samples if a >= last]
        judged += lags
        fields["replicas"][pod] = dict(summary(lags), errors=s.errors,
                                       drain_seconds=round(max(0.0, caught[0] - end), 2) if caught else None)
    rows, errors = sum(d[0] for d in done), sum(d[1] for d in done)
    fields.update(summary(judged), rows=rows, write_errors=errors, seconds=seconds,
                  cpu_busy_percent=busy_percent(cpu_start, cpu_end),
                  achieved_rate=round(rows / seconds, 1),
                  drain_seconds=max((r["drain_seconds"] for r in fields["replicas"].values()
                                     if r["drain_seconds"] is not None), default=None),
                  caught_up=all(r["drain_seconds"] is not None for r in fields["replicas"].values()))
    return fields


def settings(primary, replica, flavor):
    """What the figures depend on: durability and the replica's applier threads."""
    c = primary.cursor()
    c.execute("SELECT @@sync_binlog, @@innodb_flush_log_at_trx_commit, @@binlog_format")
    out = dict(zip(("sync_binlog", "innodb_flush_log_at_trx_commit", "binlog_format"), c.fetchone()))
    c = replica.cursor()
    var = "slave_parallel_threads" if flavor == "mariadb" else "replica_parallel_workers"
    c.execute("SELECT @@%s" % var)
    out[var] = c.fetchone()[0]
    return out


def on_replicas(login, addrs, replicas, sql):
    for pod in replicas:
        conn = login.connect(addrs[pod])
        try:
            for stmt in sql.split("; "):
                conn.cursor().execute(stmt)
        finally:
            conn.close()


def measure(res, cluster, steps, seconds, drain_timeout, variants=()):
    """Every step on one cluster; the bench table is dropped at the end."""
    flavor = "%s %s" % (cluster.flavor, cluster.version)
    n = len(cluster.pods())
    cluster.wait_ready(n)
    login = Login(cluster)
    replicas = [cluster.pod(i) for i in range(1, n)]
    forwards, primary = [], None
    try:
        addrs = reach(cluster, forwards)
        path = "port-forward" if forwards else "pod IP"
        if forwards:
            res.note("%s: through kubectl port-forward (a pod IP did not answer from the host): about a third "
                     "of the pod IP's rate ceiling, and the API server's tunnel on the same cores." % flavor)
        primary = login.connect(addrs[cluster.pod(0)])
        cur = primary.cursor()
        cur.execute("CREATE DATABASE IF NOT EXISTS bench")
        cur.execute("DROP TABLE IF EXISTS %s" % TABLE)
        cur.execute("CREATE TABLE %s (id BIGINT AUTO_INCREMENT PRIMARY KEY, created DATETIME(6) NOT NULL, "
                    "pad VARCHAR(128) NOT NULL)" % TABLE)
        replica = login.connect(addrs[replicas[0]])
        conf = settings(primary, replica, cluster.flavor)
        replica.close()
        for rate in steps:
            before = common.load()
            try:
                fields = step(login, addrs, (cluster.pod(0), primary), replicas, rate, seconds, drain_timeout)
                sustained = rate is None or fields["achieved_rate"] >= SUSTAINED * rate
                # Every replica sampled, and the p99 of all their samples within the limit.
                sampled = all(r["samples"] for r in fields["replicas"].values())
                fields.update(sustained=sustained, ok=sampled and fields["p99"] <= LIMIT)
            except Exception as exc:  # the step is recorded, the next one still runs
                fields = {"error": ("%s: %s" % (type(exc).__name__, exc))[-1500:], "ok": False}
            res.rep(flavor=flavor, target_rate=rate, writers=WRITERS, path=path, settings=conf,
                    namespace=cluster.namespace, load_before=before, load_after=common.load(), **fields)
        for variant, change, restore in variants:
            before = common.load()
            try:
                on_replicas(login, addrs, replicas, change)
                try:
                    fields = step(login, addrs, (cluster.pod(0), primary), replicas, None, seconds, drain_timeout)
                finally:
                    on_replicas(login, addrs, replicas, restore)
            except Exception as exc:
                fields = {"error": ("%s: %s" % (type(exc).__name__, exc))[-1500:]}
            res.rep(flavor=flavor, target_rate=None, variant=variant, writers=WRITERS, path=path, settings=conf,
                    namespace=cluster.namespace, load_before=before, load_after=common.load(), ok=None, **fields)
        cur.execute("DROP TABLE IF EXISTS %s" % TABLE)
    finally:
        if primary is not None:
            primary.close()
        for proc in forwards:
            proc.terminate()
            proc.wait(timeout=10)
        os.unlink(login.ca)


def run(ctx, smoke):
    res = common.Result("lag", "Replication lag against write rate, MariaDB 10.11 and MySQL 9.7", smoke)
    conv = rerun.converged(ctx)
    if smoke:
        steps, seconds, drain = (None,), 10, 30
        res.note("smoke: one unthrottled step of 10 s on the converged MariaDB 10.11 cluster; MySQL 9.7 and the "
                 "rate steps run in the full variant only.")
    else:
        steps, seconds, drain = STEPS, 30, 120
    res.note("Each step: %d writer processes on the host, one row (about 130 bytes) per autocommit INSERT, paced "
             "to the target (unthrottled: as fast as they can); the writers share the node's 2 cores with the "
             "servers. Lag sampled on every replica every %.1f s: the replica's NOW(6) minus the primary's NOW(6) "
             "in the oldest row it lacks (0 if none), so the resolution is the sampling interval (a shorter spike "
             "can be missed; max is of the samples), not a heartbeat period. A throttled step is 'sustained' at "
             ">= %d%% of its target; the judged step is each flavor's highest achieved rate."
             % (WRITERS, SAMPLE_EVERY, SUSTAINED * 100))
    measure(res, kube.Cluster(conv["name"], conv["namespace"], "mariadb", "10.11"), steps, seconds, drain)
    if not smoke:
        ns, name = common.namespace("lag"), "mysql"
        try:
            before = common.load()
            deploy = common.timed_playbook("site.yml", common.site_args("mysql", "9.7", name, ns, extra=kube.REMOTE_ROOT))[0]
            res.note("MySQL 9.7: its own 3-pod cluster (%s), site.yml %.0f s at load %s."
                     % (ns, deploy, before[0]))
            measure(res, kube.Cluster(name, ns, "mysql", "9.7"), steps, seconds, drain, variants=VARIANTS)
        except Exception as exc:
            res.rep(flavor="mysql 9.7", error=("%s: %s" % (type(exc).__name__, exc))[-2000:], ok=False,
                    load_before=before, load_after=common.load())
        finally:
            common.drop(ns)
    top = highest(res.data["repetitions"])
    flavors = ["mariadb 10.11"] + ([] if smoke else ["mysql 9.7"])
    parts = []
    for f in flavors:
        r = top.get(f)
        parts.append("%s: p99 %.3f s (p50 %.3f, max %.3f) at %.0f tx/s (%s)"
                     % (f, r["p99"], r["p50"], r["max"], r["achieved_rate"],
                        "unthrottled" if r["target_rate"] is None else "target %d%s"
                        % (r["target_rate"], "" if r["sustained"] else ", not reached"))
                     if r and r.get("p99") is not None else "%s: no step measured" % f)
    passed = all(top.get(f, {}).get("p99") is not None and top[f]["p99"] <= LIMIT for f in flavors)
    res.target(TARGET, "; ".join(parts), passed,
               max((top[f]["p99"] for f in flavors if top.get(f, {}).get("p99") is not None), default=None))
    res.save()
    return res
