"""Drill e, counted: no password in any process of any container (command
lines and environments, sampled every half second by the e2e suite's
SecretWatcher, with a canary that proves it sees), 0 bytes from a donor to
a client without the cluster's certificate or the donor password, and no
write accepted from a replica or from the replication user. The -vvv part
is secrets_vvv. Runs on the converged MariaDB 10.11 cluster (or its own).
Full: the watcher runs through scale.yml 3 -> 4 -> 3 (a copy: the backup
tool, socat, the init scripts) and the checks repeat 3 times; smoke: one
round on the running cluster. In-pod parts: bench/scripts/security.sh."""
import re
import time
import uuid

import common
import rerun
from common import kube


def in_pod(cluster, pod, what):
    out = common.pod_script(cluster, pod, "security.sh", what)
    return dict((k, v) for k, v in re.findall(r"^(\w+)=(\S*)", out, re.M))


def watch_processes(res, c, smoke, name, ns):
    """Every container's processes watched through a scale (full) or a few
    rounds (smoke); a canary in a command line must be seen."""
    before = common.load()
    watcher = kube.SecretWatcher(ns, kube.PASSWORDS).start()
    canary = "canary-" + uuid.uuid4().hex
    watcher.watch_for("canary", canary)
    fields = {}
    try:
        c.exec(c.pod(1), ["bash", "-c", "sleep 6; :", "canary", canary])
        if not smoke:
            for n in (4, 3):
                common.timed_playbook("scale.yml", common.site_args("mariadb", "10.11", name, ns)
                                      + ["-e", "replicas=%d" % n])
        deadline = time.monotonic() + 60
        while (not any(k.startswith("canary ") for k in watcher.leaks)
               or min(watcher.samples.get((p.metadata.name, "mysql"), 0) for p in c.pods()) < 2):
            assert time.monotonic() < deadline, "the watcher saw too little: %s" % watcher.samples
            time.sleep(1)
    except AssertionError as exc:
        fields["error"] = str(exc)[-1500:]
    finally:
        watcher.stop()
    leaks = [k for k in watcher.leaks if not k.startswith("canary ")]
    containers = sorted(set(k[1] for k in watcher.samples))
    res.rep(kind="processes", canary_seen=any(k.startswith("canary ") for k in watcher.leaks),
            leaks=leaks, containers=containers, samples=sum(watcher.samples.values()),
            commands_seen=len(watcher.commands), ok=not leaks and "error" not in fields
            and any(k.startswith("canary ") for k in watcher.leaks),
            load_before=before, load_after=common.load(), **fields)


def check_round(res, c, rnd, replicas):
    before = common.load()
    got = in_pod(c, c.pod(1), "donor-bytes")
    if c.flavor == "mariadb":
        ok = got.get("plain_tcp") == "0" and got.get("tls_no_cert") == "0" and int(got.get("tls_with_cert", 0)) > 0
    else:
        ok = got.get("stream_port_open") == "0" and got.get("clone_wrong_password") == "0"
    res.rep(kind="donor without credentials", rep=rnd, ok=ok, load_before=before, load_after=common.load(), **got)
    refused = {}
    for i in range(1, replicas):
        # As the remote root account, the strongest a client gets.
        rc, err = c.sql(c.pod(i), "INSERT INTO bench.security VALUES (%d)" % (1000 * rnd + i),
                        host="127.0.0.1", expect_ok=False)
        refused[c.pod(i)] = (re.search(r"ERROR (\d+)", err) or re.search(r"(\d+)", "rc %s" % rc)).group(1)
    res.rep(kind="replica writes", rep=rnd, errors=refused, ok=all(e == "1290" for e in refused.values()),
            load_before=before, load_after=common.load())
    got = in_pod(c, c.pod(1), "repl-write")
    res.rep(kind="replication user writes", rep=rnd, ok=got.get("rc") != "0" and got.get("error") == "1142",
            load_before=before, load_after=common.load(), **got)


def run(ctx, smoke):
    res = common.Result("security", "Drill e: no secret in any process, 0 bytes without credentials, "
                                    "replicas and the replication user cannot write", smoke)
    conv = rerun.converged(ctx)
    c = kube.Cluster(conv["name"], conv["namespace"], "mariadb", "10.11")
    replicas = len(c.pods())
    c.wait_ready(replicas)
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS bench; CREATE TABLE IF NOT EXISTS bench.security (id INT PRIMARY KEY)")
    watch_processes(res, c, smoke, conv["name"], conv["namespace"])
    replicas = len(c.pods())
    for rnd in range(1, (1 if smoke else 3) + 1):
        check_round(res, c, rnd, replicas)
    rows = c.sql(c.pod(0), "SELECT COUNT(*) FROM bench.security")
    res.note("rows in bench.security on the primary after every refused write: %s" % rows)
    by_kind = {}
    for r in res.data["repetitions"]:
        by_kind.setdefault(r["kind"], []).append(bool(r.get("ok")))
    text = ", ".join("%s %d/%d" % (k, sum(v), len(v)) for k, v in by_kind.items())
    res.target("no secret in containers' /proc/*/cmdline; 0 bytes to a client without credentials; "
               "replicas and replication user cannot write", text + "; rows written: %s" % rows,
               all(all(v) for v in by_kind.values()) and rows == "0")
    res.save()
    return res
