"""Benchmark 4: how fast a replica's copy moves, against what the pods and
the disk can do, side by side in one run between the same two pods.

- CLONE (MySQL 9.7) and the backup stream (MariaDB 10.11: mariadb-backup
  through the donor sidecar's socat, TLS): the statement and pipe init.sh
  uses, into a scratch directory on pod 1's volume from pod 0 (the running
  server keeps its data, so a repetition needs no restart or new pod);
- a raw `tar | socat` of pod 0's datadir to pod 1 over plain TCP;
- the disk: `dd` sequential write with fdatasync on pod 1's volume.

Every copy is timed until `sync -f` returns, so all are "on disk". The
"cold" variants drop the node's page cache first (the donor then reads
from disk). The full run also records the copy scale.yml 1 -> 2 made of the
same data (CLONE's FILE COPY stage from performance_schema.clone_progress;
the stream's events, which include its prepare). Full: a fresh 1-pod
cluster per flavor with >= 1 GiB loaded (not binlogged), scaled to 2, then 3
interleaved repetitions of each measure. Smoke: 32 MiB on the converged
MariaDB cluster, one of each, no CLONE (no MySQL cluster in the smoke).
Bench scripts: bench/scripts/copy.sh (run in the pods)."""
import os
import re
import threading
import time

import common
import rerun
from common import kube
from kubernetes import client

RAW_PORT = 3399
FULL_ROWS = 2 ** 18     # 3968-byte rows: about 1.3 GB of datadir
SMOKE_ROWS = 2 ** 13    # about 40 MB
UNCAPPED = {"mysql_cluster_server_config": {}}  # the e2e vars cap CLONE at 20 MiB/s
MB = 1e6


def in_pod(cluster, pod, *args, timeout=1200):
    """copy.sh ARGS in the pod; its last line's key=value pairs as floats."""
    out = common.pod_script(cluster, pod, "copy.sh", *args, timeout=timeout)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return dict((k, float(v)) for k, v in re.findall(r"(\w+)=([0-9.]+)", last))


def pod_host(cluster, ordinal):
    return "%s.%s.%s.svc" % (cluster.pod(ordinal), cluster.name, cluster.namespace)


def drop_page_cache():
    """The node's page cache (host root); False where not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def allow_raw_port(cluster):
    """The cluster's NetworkPolicy admits only its own ports: one more policy
    (policies add up) lets its pods reach each other on RAW_PORT. Ours stay
    untouched, so a later site.yml run has nothing to change."""
    net = client.NetworkingV1Api()
    name = "%s-bench-raw" % cluster.name
    sel = client.V1LabelSelector(match_labels={"app.kubernetes.io/instance": cluster.name})
    body = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1NetworkPolicySpec(
            pod_selector=sel, policy_types=["Ingress"],
            ingress=[client.V1NetworkPolicyIngressRule(
                _from=[client.V1NetworkPolicyPeer(pod_selector=sel)],
                ports=[client.V1NetworkPolicyPort(port=RAW_PORT, protocol="TCP")])]))
    net.create_namespaced_network_policy(cluster.namespace, body)
    return lambda: net.delete_namespaced_network_policy(name, cluster.namespace)


def raw_copy(cluster):
    """tar of pod 0's datadir over plain TCP into pod 1's scratch directory:
    from the sender's start to the receiver's sync."""
    # Its own API client: stream() swaps the client's request method while
    # an exec runs, and the two execs overlap.
    listener = kube.Cluster(cluster.name, cluster.namespace, cluster.flavor, cluster.version)
    listener.core = client.CoreV1Api(client.ApiClient())
    got = {}

    def listen():
        try:
            got.update(in_pod(listener, cluster.pod(1), "raw-listen", RAW_PORT))
        except Exception as exc:  # reported by the caller
            got["error"] = str(exc)
    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(1)
    sent = in_pod(cluster, cluster.pod(0), "raw-send", pod_host(cluster, 1), RAW_PORT)
    thread.join(timeout=1200)
    assert "error" not in got and "end" in got, "the raw receiver failed: %s" % got.get("error", "no result")
    return {"start": sent["start"], "end": got["end"], "bytes": got["bytes"]}


def clone_stage(cluster):
    """CLONE's own account of its last FILE COPY stage on pod 1: bytes, seconds."""
    out = cluster.sql(cluster.pod(1), "SELECT DATA, TIMESTAMPDIFF(MICROSECOND, BEGIN_TIME, END_TIME) "
                                      "FROM performance_schema.clone_progress WHERE STAGE = 'FILE COPY'")
    data, micros = out.split()
    return int(data), int(micros) / 1e6


def measure(cluster, kind, mib):
    """One repetition of one measure: {"mb_s", "bytes", "seconds", ...}."""
    cold = kind.endswith(" cold")
    if cold and not drop_page_cache():
        return {"error": "cannot drop the page cache (needs host root)"}
    if kind == "dd":
        m = in_pod(cluster, cluster.pod(1), "dd", mib)
    elif kind.startswith("clone"):
        conc = 1 if "concurrency 1" in kind else 16
        m = in_pod(cluster, cluster.pod(1), "clone", conc)
        data, secs = clone_stage(cluster)
        m["file_copy_mb_s"] = round(data / secs / MB, 1) if secs else None
    elif kind.startswith("stream"):
        m = in_pod(cluster, cluster.pod(1), "stream")
    else:
        m = raw_copy(cluster)
    seconds = m["end"] - m["start"]
    out = {"bytes": int(m["bytes"]), "seconds": round(seconds, 3), "mb_s": round(m["bytes"] / seconds / MB, 1)}
    if "file_copy_mb_s" in m:
        out["file_copy_mb_s"] = m["file_copy_mb_s"]
    return out


def scale_copy(cluster):
    """The copy scale.yml 1 -> 2 made: CLONE's stage account, or the stream's events."""
    if cluster.flavor == "mysql":
        data, secs = clone_stage(cluster)
        return {"bytes": data, "seconds": round(secs, 3), "mb_s": round(data / secs / MB, 1),
                "how": "performance_schema.clone_progress FILE COPY"}
    events = cluster.events(cluster.pod(1))
    stamps = [re.match(r"(\S+)", line).group(1) for line in events.splitlines()
              if "backup stream started" in line or "backup received and prepared" in line]
    t = [time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) for s in stamps[:2]]
    return {"seconds": t[1] - t[0] if len(t) == 2 else None,
            "how": "events.log, 1 s resolution, includes the prepare"}


def kinds_for(flavor, cold_ok):
    copies = ["clone", "clone concurrency 1"] if flavor == "mysql" else ["stream"]
    out = ["dd"] + copies + ["raw"]
    if cold_ok:
        out += [copies[0] + " cold", "raw cold"]
    return out


def bench_flavor(res, cluster, smoke, reps, mib, label):
    restore = allow_raw_port(cluster)
    try:
        # Cold variants only where the node's page cache can be dropped (host root).
        cold_ok = not smoke and drop_page_cache()
        if not smoke and not cold_ok:
            res.note("%s: no cold variants (the page cache cannot be dropped here)" % label)
        for i in range(reps):
            # Interleaved: each repetition measures every kind, so load drifts evenly.
            for kind in kinds_for(cluster.flavor, cold_ok):
                before = common.load()
                try:
                    fields = measure(cluster, kind, mib)
                except AssertionError as exc:
                    fields = {"error": str(exc)[-1500:]}
                res.rep(flavor=label, kind=kind, rep=i + 1, load_before=before, load_after=common.load(), **fields)
    finally:
        restore()


def run_full_flavor(res, flavor, version):
    ns = common.namespace("copy-" + flavor[:5])
    name = "db"
    extra = dict(mysql_cluster_storage_size="8Gi", **(UNCAPPED if flavor == "mysql" else {}))
    label = "%s %s" % (flavor, version)
    try:
        common.timed_playbook("site.yml", common.site_args(flavor, version, name, ns,
                                                           dict(extra, mysql_cluster_replicas=1)))
        cluster = kube.Cluster(name, ns, flavor, version)
        loaded = in_pod(cluster, cluster.pod(0), "load", FULL_ROWS)
        res.note("%s: %d rows of 3968 bytes, datadir %.2f GB on pod 0"
                 % (label, loaded["rows"], loaded["datadir_bytes"] / 1e9))
        before = common.load()
        seconds = common.timed_playbook("scale.yml", common.site_args(flavor, version, name, ns, extra)
                                        + ["-e", "replicas=2"])[0]
        res.rep(flavor=label, kind="scale.yml copy", rep=1, scale_seconds=seconds, load_before=before,
                load_after=common.load(), **scale_copy(cluster))
        bench_flavor(res, cluster, False, 3, 1024, label)
    except Exception as exc:
        res.rep(flavor=label, kind="setup", error=str(exc)[-2000:], load_after=common.load())
    finally:
        common.drop(ns)


def medians(reps, flavor):
    out = {}
    for r in reps:
        if r.get("flavor", "").startswith(flavor) and "mb_s" in r:
            out.setdefault(r["kind"], []).append(r["mb_s"])
    return dict((k, common.median(v)) for k, v in out.items())


def judge(res):
    reps = res.data["repetitions"]
    parts, text = [], []
    maria, mysql = medians(reps, "mariadb"), medians(reps, "mysql")
    if maria.get("stream") and maria.get("raw"):
        ratio = maria["stream"] / maria["raw"]
        parts.append(ratio >= 0.6)
        text.append("mariadb-backup stream %.0f MB/s = %.0f%% of raw tar|socat %.0f MB/s (dd %s MB/s)"
                    % (maria["stream"], 100 * ratio, maria["raw"], maria.get("dd")))
    if mysql.get("clone") and mysql.get("dd"):
        ratio = mysql["clone"] / mysql["dd"]
        parts.append(ratio >= 0.6)
        text.append("CLONE %.0f MB/s = %.0f%% of dd fdatasync %.0f MB/s (raw %s MB/s, concurrency 1: %s MB/s)"
                    % (mysql["clone"], 100 * ratio, mysql["dd"], mysql.get("raw"), mysql.get("clone concurrency 1")))
    else:
        text.append("CLONE not measured (%s)" % ("smoke: no MySQL cluster" if res.data["smoke"] else "failed"))
    passed = None if len(parts) < 2 and all(parts) else all(parts)
    res.target("mariadb-backup >= 60% of raw tar|socat; CLONE >= 60% of dd fdatasync",
               "; ".join(text) + " (medians)", passed)


def run(ctx, smoke):
    res = common.Result("copy_throughput", "Copy throughput: CLONE and the backup stream vs raw tar|socat and dd",
                        smoke)
    if smoke:
        conv = rerun.converged(ctx)
        c = kube.Cluster(conv["name"], conv["namespace"], "mariadb", "10.11")
        res.note("smoke: %d rows (about 40 MB) on the converged MariaDB 10.11 cluster, one of each; "
                 "no CLONE (the smoke has no MySQL cluster)" % SMOKE_ROWS)
        try:
            in_pod(c, c.pod(0), "load", SMOKE_ROWS)
            bench_flavor(res, c, True, 1, 64, "mariadb 10.11")
        finally:
            in_pod(c, c.pod(0), "drop")
    else:
        res.note("Each copy is timed to `sync -f` of the receiving volume; dd writes 1 GiB with fdatasync. "
                 "\"cold\": the node's page cache dropped first. The stream is TLS (as init.sh), raw is "
                 "plain TCP; each rate is its own bytes over its own time (tar also carries the binlogs).")
        for flavor, version in (("mysql", "9.7"), ("mariadb", "10.11")):
            run_full_flavor(res, flavor, version)
    judge(res)
    res.save()
    return res
