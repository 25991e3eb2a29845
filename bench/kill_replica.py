"""Drill b: kill a replica four ways and count the outcomes. Each round runs
the four kinds once (10 rounds; the smoke one round of two kinds, SMOKE_KINDS):

- replica_pod: a replica's pod deleted with grace 0;
- replica_process: its server (mariadbd, PID 1 of the mysql container)
  killed with SIGKILL, so the container restarts in the same pod;
- new_replica_mid_copy: the StatefulSet scaled out by one (its replicas
  patched through the API: what scale.yml changes, without the playbook's
  own wait and verification) and the new pod deleted with grace 0 once its
  copy has started (its events.log says "backup stream started");
- donor_mid_copy: the same, but the donor named in that line is deleted
  with grace 0 instead.

After each: every pod that existed before has the same copy and CHANGE
counts in its events.log and the same datadir (common.pod_state); a killed
pod was really killed (new uid, or the container's restart count up with
exit code 137); the new replica of kinds 3-4 started a second copy,
finished exactly one and has one CHANGE; 100 rows written on the primary
after the kill are on every pod, CHECKSUM TABLE equal within 60 s, and
every replica's IO and SQL threads run. Kinds 3-4 then scale back to 3 and
wait for the removed ordinal's PVC to go (the cluster's whenScaled is
Delete; were it kept, the next new replica would return without a copy,
which the "one finished copy" check would catch).

SIGKILL cannot come from inside the container: mariadbd is PID 1 of the
container's PID namespace, and the kernel drops SIGKILL (and any signal
without a handler) sent to it from within that namespace: `kill -KILL 1`
in the container returns 0 and nothing happens (the first round checks
that again). So the harness sends SIGKILL from the node (this machine, on
the local cluster), to the host PID whose cgroup is that container's.

Copies must last long enough to be caught: a table of 2 KB rows is loaded
first (doubled with INSERT ... SELECT on the primary, statement-logged so
the binary logs stay small; the replicas build it too), and dropped at
the end so that later steps on the same cluster copy quickly. Runs on the
converged MariaDB 10.11 cluster the earlier steps leave (or its own)."""
import os
import signal
import time

import common
import rerun
from common import kube

TABLE = "bench.drill_b"
BIG = "bench.drill_b_big"
KINDS = ["replica_pod", "replica_process", "new_replica_mid_copy", "donor_mid_copy"]
# The smoke (CI, 5 minutes for every harness) runs one kind of each pair: a
# pod delete and a node kill share the restart checks, a new replica's and its
# donor's mid-copy kill share the scale-out and the copy watch.
SMOKE_KINDS = ["replica_process", "new_replica_mid_copy"]
ROWS = 100
# 2 KB rows, 2**N of them: full 308 MB in InnoDB, smoke 77 MB; the copies
# took 3-20 s (median 6) and 1-3 s on this shared machine (load 2-22),
# each repetition's copy_seconds.
BIG_LOG2 = {False: 17, True: 15}
EVENTS = "/var/lib/mysql/.stateful-mysql/events.log"


def count(events, word):
    return sum(1 for line in events.splitlines() if word in line)


def load_big(c, log2):
    """2**log2 rows of 2000 bytes on the primary; returns (rows, seconds)."""
    t0 = time.monotonic()
    stmt = "SET SESSION binlog_format = 'STATEMENT'; "
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS %s; "
                    "CREATE TABLE %s (id INT PRIMARY KEY, pad VARCHAR(2000) NOT NULL)" % (BIG, BIG))
    c.sql(c.pod(0), stmt + "INSERT INTO %s VALUES (1, REPEAT('x', 2000))" % BIG)
    rows = 1
    for _i in range(log2):
        c.sql(c.pod(0), stmt + "INSERT INTO %s SELECT id + %d, pad FROM %s" % (BIG, rows, BIG))
        rows *= 2
    return rows, round(time.monotonic() - t0, 1)


def write_rows(c, rep, kind, timeout=180):
    """ROWS rows tagged with the repetition, on the primary (retried while it
    is away: kind 4 may kill it when it is the donor)."""
    deadline = time.monotonic() + timeout
    values = ",".join(["(%d, '%s', UUID())" % (rep, kind)] * ROWS)
    while True:
        try:
            rc, err = c.sql(c.pod(0), "INSERT INTO %s (rep, kind, v) VALUES %s" % (TABLE, values), expect_ok=False)
        except Exception as exc:  # the pod is not running yet
            rc, err = -1, str(exc)
        if rc == 0:
            return
        assert time.monotonic() < deadline, "could not write on the primary: %s" % err
        time.sleep(1)


def replicating(c, replicas):
    """Each replica's IO and SQL threads run."""
    out = {}
    for i in range(1, replicas):
        st = c.replica_status(c.pod(i))
        out[c.pod(i)] = st.get("Slave_IO_Running") == "Yes" and st.get("Slave_SQL_Running") == "Yes"
    return out


def wait_replicating(c, replicas, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        out = replicating(c, replicas)
        if all(out.values()) or time.monotonic() >= deadline:
            return out
        time.sleep(1)


def wait_replaced(c, pod, uid, timeout=120):
    deadline = time.monotonic() + timeout
    while common.pod_uid(c, pod) in (uid, None):
        assert time.monotonic() < deadline, "%s was never replaced" % pod
        time.sleep(0.3)


def kill_pod(c, pod):
    uid = common.pod_uid(c, pod)
    c.core.delete_namespaced_pod(pod, c.namespace, grace_period_seconds=0)
    return uid


def kill_process(c, fields, pod):
    """SIGKILL from the node to the mysql container's PID 1."""
    st = c.container_status(pod)
    pid = kube.host_pid(st.container_id)
    assert pid, "no process of container %s on this node: is the node this machine?" % st.container_id
    with open("/proc/%d/comm" % pid) as fh:
        fields["killed_process"] = fh.read().strip()
    assert fields["killed_process"] in ("mariadbd", "mysqld"), fields["killed_process"]
    os.kill(pid, signal.SIGKILL)
    return st.restart_count


def inside_sigkill_ignored(c, pod):
    """`kill -KILL 1` in the container: the kernel drops it (PID 1 of its
    namespace has no handler for SIGKILL). True if the server is still the
    same process afterwards."""
    before = c.container_status(pod)
    rc, _out, _err = c.exec(pod, ["bash", "-c", "kill -KILL 1"])
    time.sleep(2)
    after = c.container_status(pod)
    return rc == 0 and after.restart_count == before.restart_count and after.container_id == before.container_id


def wait_copy_started(c, pod, timeout=300):
    """Poll the new pod's events.log (through its running init container)
    until its copy has started; returns the events then."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            p = c.core.read_namespaced_pod(pod, c.namespace)
            init = [s for s in p.status.init_container_statuses or [] if s.name == "init"]
            if init and init[0].state.running:
                rc, out, _err = c.exec(pod, ["bash", "-c", "cat %s 2>/dev/null || true" % EVENTS], container="init")
                if rc == 0 and ("backup stream started" in out or "clone started" in out):
                    return out
        except Exception as exc:  # noqa: BLE001 - not created yet, or an exec into an ending container
            last = exc
        assert time.monotonic() < deadline, "%s never started copying (last error: %s)" % (pod, last)
        time.sleep(0.2)


def copy_seconds(events):
    """Seconds of the last finished stream copy (events.log: 1 s resolution)."""
    start = done = None
    for line in events.splitlines():
        if "backup stream started" in line or "clone started" in line:
            start = line.split()[0]
        elif ("backup received and prepared" in line or "clone completed" in line) and start:
            done = line.split()[0]
    if not (start and done):
        return None
    return stamp(done) - stamp(start)


def stamp(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def pvc_name(c, ordinal):
    sts = c.apps.read_namespaced_stateful_set(c.name, c.namespace)
    return "%s-%s" % (sts.spec.volume_claim_templates[0].metadata.name, c.pod(ordinal))


def scale_to(c, replicas, timeout=300):
    """Patch the StatefulSet's replicas; at scale-down, wait for the removed
    pods and their PVCs to go (whenScaled: Delete), deleting a PVC
    ourselves if it stays."""
    c.apps.patch_namespaced_stateful_set(c.name, c.namespace, {"spec": {"replicas": replicas}})
    deadline = time.monotonic() + timeout
    while len(c.pods()) > replicas:
        assert time.monotonic() < deadline, "still %d pods, not %d" % (len(c.pods()), replicas)
        time.sleep(1)
    names = set(p.metadata.name for p in c.core.list_namespaced_persistent_volume_claim(c.namespace).items)
    extra = [n for n in names if n.startswith(pvc_name(c, 0)[:-1]) and int(n.rsplit("-", 1)[1]) >= replicas]
    kept = []
    own_after = time.monotonic() + 60
    for name in extra:
        while True:
            try:
                c.core.read_namespaced_persistent_volume_claim(name, c.namespace)
            except kube.ApiException as exc:
                if exc.status == 404:
                    break
                raise
            if time.monotonic() > own_after and name not in kept:
                kept.append(name)
                c.core.delete_namespaced_persistent_volume_claim(name, c.namespace)
            assert time.monotonic() < own_after + 60, "PVC %s still there" % name
            time.sleep(1)
    return kept


def one(c, res, kind, rep, target, first):
    """One repetition of one kind; returns the fields of its row."""
    replicas = 3
    fields = dict(kind=kind, rep=rep, load_before=common.load())
    state = common.pod_state(c, replicas)
    t0 = None
    try:
        if kind == "replica_pod":
            fields["killed"] = target
            uid = kill_pod(c, target)
            t0 = time.monotonic()
            wait_replaced(c, target, uid)
            fields["pod_replaced"] = True
        elif kind == "replica_process":
            fields["killed"] = target
            if first:
                fields["inside_sigkill_ignored"] = inside_sigkill_ignored(c, target)
            restarts = kill_process(c, fields, target)
            t0 = time.monotonic()
            deadline = t0 + 120
            while c.container_status(target).restart_count == restarts:
                assert time.monotonic() < deadline, "the mysql container of %s did not restart" % target
                time.sleep(0.3)
            last = c.container_status(target).last_state.terminated
            fields["exit_code"] = last.exit_code if last else None
        else:
            new = c.pod(replicas)
            scale_to(c, replicas + 1)
            early = wait_copy_started(c, new)
            line = [x for x in early.splitlines() if "started from" in x][-1]
            donor = line.split("started from ")[1].split(".")[0].split(":")[0]
            fields["donor"] = donor
            fields["killed"] = new if kind == "new_replica_mid_copy" else donor
            killed_uid = kill_pod(c, fields["killed"])
            t0 = time.monotonic()
            # Did the copy still run at the kill? (Its end would be logged.)
            out = early
            try:
                out = c.exec(new, ["bash", "-c", "cat %s" % EVENTS], container="init")[1]
            except Exception:  # noqa: BLE001 - the new pod is gone (kind 3)
                pass
            fields["killed_mid_copy"] = "backup received and prepared" not in out and "clone completed" not in out
            wait_replaced(c, fields["killed"], killed_uid)
            replicas += 1
        write_rows(c, rep, kind)
        c.wait_ready(replicas, timeout=600)
        fields["seconds_to_ready"] = round(time.monotonic() - t0, 1)
        t1 = time.monotonic()
        sums = common.checksums(c, TABLE, replicas, timeout=60)
        fields["converged"] = len(set(sums.values())) == 1
        fields["seconds_to_converge"] = round(time.monotonic() - t1, 1)
        fields["rows_on_primary"] = int(c.sql(c.pod(0), "SELECT COUNT(*) FROM %s WHERE rep = %d AND kind = '%s'"
                                              % (TABLE, rep, kind)))
        fields["replicating"] = all(wait_replicating(c, replicas).values())
        now = common.pod_state(c, 3)
        fields.update(datadir_kept=now["identity"] == state["identity"],
                      copies_unchanged=now["copies"] == state["copies"],
                      changes_unchanged=now["changes"] == state["changes"])
        if now["copies"] != state["copies"] or now["changes"] != state["changes"]:
            fields.update(copies_before=state["copies"], copies_after=now["copies"],
                          changes_before=state["changes"], changes_after=now["changes"])
        checks = {"checksums equal": fields["converged"], "rows on the primary": fields["rows_on_primary"] == ROWS,
                  "replicating": fields["replicating"], "same datadirs": fields["datadir_kept"],
                  "no new copy on the old pods": fields["copies_unchanged"],
                  "no new CHANGE on the old pods": fields["changes_unchanged"]}
        if kind == "replica_process":
            checks["killed by SIGKILL (137)"] = fields["exit_code"] == 137
        if replicas == 4:
            events = c.events(c.pod(3))
            fields.update(
                new_copies_started=count(events, "backup stream started") + count(events, "clone started")
                - count(events, "refused: busy"),
                new_copies_finished=count(events, "backup received and prepared") + count(events, "clone completed"),
                new_wiped=count(events, "unfinished first start found"),
                new_changes=count(events, "CHANGE:"), new_done=count(events, "done-marker written"),
                copy_seconds=copy_seconds(events),
                redo_donor=[x for x in events.splitlines() if "started from" in x][-1]
                .split("started from ")[1].split(".")[0])
            # The copied table itself, not only the rows written since.
            big = [c.sql(c.pod(i), "CHECKSUM TABLE %s" % BIG).split("\t")[-1] for i in (0, 3)]
            fields["big_checksum_equal"] = big[0] == big[1]
            # How the copy went: the new pod's events, and how often its init container restarted
            # (the kubelet keeps neither the reason nor the log of a restarted init container that then succeeded).
            fields["new_events"] = [line.split(" ", 2)[-1][:200] for line in events.splitlines()[-12:]]
            init = [s for s in c.core.read_namespaced_pod(c.pod(3), c.namespace).status.init_container_statuses
                    if s.name == "init"][0]
            fields["new_init_restarts"] = init.restart_count
            checks.update({"killed mid-copy": fields["killed_mid_copy"],
                           "copy redone": fields["new_copies_started"] >= 2,
                           "one finished copy": fields["new_copies_finished"] == 1,
                           "one CHANGE": fields["new_changes"] == 1, "one done-marker": fields["new_done"] == 1,
                           "copied table equal": fields["big_checksum_equal"]})
        fields["ok"] = all(checks.values())
        if not fields["ok"]:
            fields["error"] = "failed: " + ", ".join(k for k, v in checks.items() if not v)
    except Exception as exc:  # noqa: BLE001 - any failure is this repetition's miss
        fields.update(ok=False, error=("%s: %s" % (type(exc).__name__, exc))[-1500:])
    finally:
        if replicas != 3 or len(c.pods()) != 3:
            try:
                kept = scale_to(c, 3)
                if kept:
                    fields["pvc_deleted_by_harness"] = kept
                c.wait_ready(3, timeout=600)
            except Exception as exc:  # noqa: BLE001 - the next repetition will say
                fields.update(ok=False, error=fields.get("error", "") + " / scale back: %s" % exc)
    fields["load_after"] = common.load()
    res.rep(**fields)
    return fields


def run(ctx, smoke):
    res = common.Result("kill_replica", "Drill b: kill a replica, its server, a new replica or its donor mid-copy",
                        smoke)
    conv = rerun.converged(ctx)
    c = kube.Cluster(conv["name"], conv["namespace"], "mariadb", "10.11")
    assert len(c.pods()) == 3, "drill b expects the 3-pod cluster, found %d pods" % len(c.pods())
    c.wait_ready(3)
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS %s; CREATE TABLE %s "
                    "(id INT AUTO_INCREMENT PRIMARY KEY, rep INT, kind VARCHAR(32), v VARCHAR(64))" % (TABLE, TABLE))
    before = common.load()
    rows, seconds = load_big(c, BIG_LOG2[smoke])
    size = int(c.sh(c.pod(0), "stat -c %s /var/lib/mysql/data/bench/drill_b_big.ibd")) // 2**20
    common.checksums(c, TABLE, 3, timeout=120)
    res.note("Loaded %d rows of 2 KB (%s MB in InnoDB) on the primary in %.1f s (load %s -> %s); the replicas "
             "built it too." % (rows, size, seconds, before[0], common.load()[0]))
    res.note("replica_process: SIGKILL from the node to the container's PID 1 (mariadbd): from inside the "
             "container the kernel drops it (see the first replica_process row's inside_sigkill_ignored).")
    res.note("new_replica_mid_copy/donor_mid_copy: scale-out by patching the StatefulSet's replicas (not "
             "scale.yml), the kill as soon as the new pod's events.log says the copy started; then back to 3 "
             "with the removed ordinal's PVC gone (whenScaled: Delete).")
    rounds = 1 if smoke else 10
    kinds = SMOKE_KINDS if smoke else KINDS
    try:
        for r in range(rounds):
            target = c.pod(1 + r % 2)  # the same replica for kinds 1 and 2: a fresh pod, no restart back-off
            for kind in kinds:
                print("kill_replica: round %d %s (load %s)" % (r + 1, kind, common.load()[0]), flush=True)
                one(c, res, kind, r + 1, target, r == 0)
    finally:
        try:
            c.sql(c.pod(0), "DROP TABLE IF EXISTS %s" % BIG)
        except Exception as exc:  # noqa: BLE001 - said, not fatal
            res.note("could not drop %s: %s" % (BIG, exc))
    done = res.data["repetitions"]
    per = ", ".join("%s %d/%d" % (k, sum(1 for x in done if x["kind"] == k and x.get("ok")),
                                  sum(1 for x in done if x["kind"] == k)) for k in kinds)
    good, total, ready = res.drill_outcome()
    copies = [x["copy_seconds"] for x in done if x.get("copy_seconds") is not None]
    res.target("drill b: kill replica/process/new replica/donor mid-copy 10x each",
               "%s passed (a pass: no old pod copied again or got a second CHANGE, the interrupted copy redone "
               "to exactly one finished copy and one CHANGE, rows written after the kill on every pod within "
               "60 s); Ready again in %s s (median; redone copies %s s)"
               % (per, ready if ready is None else round(ready, 1), common.median(copies)),
               good == total, good)
    res.save()
    return res
