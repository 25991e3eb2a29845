"""What every benchmark and drill shares: the environment it ran in (commit,
machine, versions, load), the timed playbook runs, namespaces, and the
result file. The cluster helpers are the e2e suite's (tests/e2e/kube.py)."""
import datetime
import glob
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import kube  # noqa: E402  (after the path: the e2e helpers)
from kubernetes import client  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")


def results_dir(smoke):
    """The smoke variant writes beside, never over, the full run's results."""
    return os.path.join(RESULTS, "smoke") if smoke else RESULTS


PREFIX = os.environ.get("BENCH_PREFIX", "bench")
KUBECTL = os.environ.get("KUBECTL", os.path.join(kube.CACHE, "bin", "kubernetes-v1.34.4", "kubectl"))


def load():
    """The 1/5/15-minute load averages: the machine is shared, so every
    repetition says how busy it was."""
    return [round(x, 2) for x in os.getloadavg()]


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return head + ("-dirty" if dirty.strip() else "")


def machine():
    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {"cores": os.cpu_count(), "memory_bytes": mem, "kernel": os.uname().release,
            "shared": "2 cores shared with other engineers' deploys: see the load averages"}


def versions():
    out = {}
    try:
        kube.api()
        out["kubernetes"] = client.VersionApi().get_code().git_version
    except Exception as exc:  # the report says so rather than failing
        out["kubernetes"] = "unknown (%s)" % exc
    ver = subprocess.run([os.path.join(kube.BIN, "ansible"), "--version"], capture_output=True, text=True, check=False).stdout
    out["ansible_core"] = (re.search(r"core ([0-9.]+)", ver) or re.search(r"(\S+)", ver or "?")).group(1)
    # The server versions are the packages in the local images (tests/cluster/images).
    for d in sorted(glob.glob(os.path.join(kube.CACHE, "images", "*", "version"))):
        name = os.path.basename(os.path.dirname(d)).rsplit("-", 1)[0]
        with open(d) as fh:
            out["image " + name] = fh.read().strip()
    return out


def namespace(tag):
    """A fresh namespace name under our prefix."""
    return "%s-%s-%s" % (PREFIX, tag, uuid.uuid4().hex[:5])


def timed_playbook(playbook, args, env_extra=None, check=True, stats=None):
    """Run a playbook; returns seconds, recap, output. The wall time is the
    user's: ansible-playbook start to exit. With a dict `stats`, its
    cpu_seconds is set: user+sys of ansible-playbook and every process it
    waited for (its workers and modules), as /usr/bin/time counts them."""
    env = dict(os.environ, KUBECONFIG=kube.KUBECONFIG, K8S_AUTH_KUBECONFIG=kube.KUBECONFIG,
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.update(env_extra or {})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run([os.path.join(kube.BIN, "ansible-playbook"), playbook, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if stats is not None:
        stats["cpu_seconds"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2)
    out = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (rc %s):\n%s" % (playbook, proc.returncode, out[-4000:]))
    m = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    recap = dict(zip(["ok", "changed", "unreachable", "failed"], map(int, m.groups()))) if m else {}
    return round(seconds, 2), recap, out, proc.returncode


def site_args(flavor, version, name, ns, extra=None, tmp=None):
    """The e2e suite's deploy arguments (tests/e2e/vars/local.yml + flavor file)."""
    tmp = tmp or os.path.join(RESULTS, "tmp")
    os.makedirs(tmp, exist_ok=True)
    return kube.deploy_args(flavor, version, name, ns, tmp, extra)


def profile_top(output, count=10):
    """The profile_tasks callback's recap: the slowest tasks, as printed."""
    rows = []
    for line in output.splitlines():
        m = re.match(r"^(.*?) -+ (\d+\.\d+)s$", line.strip())
        if m and not line.startswith(("Playbook run took", "=")):
            rows.append({"task": m.group(1).strip(), "seconds": float(m.group(2))})
    return sorted(rows, key=lambda r: -r["seconds"])[:count]


def drop(ns, wait=True):
    """Delete a bench namespace (its PVCs go with it; the PVs are reclaimed).
    Waited for between repetitions, so that one run's shutdown does not load the next."""
    if wait:
        kube.delete_namespace(ns, timeout=600)
    else:
        try:
            kube.api()[0].delete_namespace(ns)
        except client.rest.ApiException as exc:
            if exc.status != 404:
                raise


class Result:
    """One result file: bench/results/<name>.json."""

    def __init__(self, name, title, smoke):
        self.data = {"name": name, "title": title, "smoke": smoke,
                     "command": " ".join(sys.argv), "commit": git_commit(), "date": now(),
                     "machine": machine(), "versions": versions(), "targets": [],
                     "repetitions": [], "notes": []}

    def rep(self, **fields):
        self.data["repetitions"].append(fields)
        self.save()

    def note(self, text):
        self.data["notes"].append(text)

    def target(self, target, measured, passed, figure=None):
        """passed: True, False, None (not measured) or "info" (a figure with no target)."""
        self.data["targets"].append({"target": target, "measured": measured, "pass": passed,
                                     "figure": figure})

    def drill_outcome(self):
        """A drill's tally: (repetitions that passed, all, median seconds_to_ready)."""
        done = self.data["repetitions"]
        return (sum(1 for r in done if r.get("ok")), len(done),
                median([r["seconds_to_ready"] for r in done if "seconds_to_ready" in r]))

    def save(self):
        where = results_dir(self.data["smoke"])
        os.makedirs(where, exist_ok=True)
        self.data["finished"] = now()
        with open(os.path.join(where, self.data["name"] + ".json"), "w") as fh:
            json.dump(self.data, fh, indent=1, sort_keys=False)


def median(values):
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def checksums(cluster, table, replicas, timeout=0):
    """CHECKSUM TABLE on each pod, read until they agree or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        sums = dict((cluster.pod(i), cluster.sql(cluster.pod(i), "CHECKSUM TABLE %s" % table).split("\t")[-1])
                    for i in range(replicas))
        if len(set(sums.values())) == 1 or time.monotonic() >= deadline:
            return sums
        time.sleep(1)


def pod_state(cluster, replicas):
    """What a restart must not change: each datadir's identity (server_uuid
    on MySQL, and the system tablespace's inode: a copy writes a new file),
    the event log's copies and CHANGEs; and the pods' uids."""
    out = {"uids": set(p.metadata.uid for p in cluster.pods()), "identity": {}, "copies": {}, "changes": {}}
    for i in range(replicas):
        pod = cluster.pod(i)
        uuid_ = cluster.sql(pod, "SELECT @@GLOBAL.server_uuid") if cluster.flavor == "mysql" else ""
        inode = cluster.sh(pod, "stat -c %i /var/lib/mysql/data/ibdata1").strip()
        out["identity"][pod] = "%s/%s" % (uuid_, inode)
        events = cluster.events(pod)
        out["copies"][pod] = events.count("clone started") + events.count("backup stream started")
        out["changes"][pod] = events.count("CHANGE:")
    return out


SCRIPTS = os.path.join(ROOT, "bench", "scripts")


def pod_script(cluster, pod, name, *args, timeout=180):
    """bench/scripts/<name> run in the pod's mysql container (its text as
    `bash -c`, so nothing is installed); returns its stdout, fails on rc."""
    with open(os.path.join(SCRIPTS, name)) as fh:
        text = fh.read()
    args = [str(a) for a in args]
    rc, out, err = cluster.exec(pod, ["bash", "-c", text, name, *args], timeout=timeout)
    assert rc == 0, "%s %s in %s: rc=%s %s %s" % (name, " ".join(args), pod, rc, out[-500:], err[-1500:])
    return out


def pod_uid(cluster, pod):
    """The pod's uid, or None while it does not exist (deleted, not yet recreated)."""
    try:
        return cluster.core.read_namespaced_pod(pod, cluster.namespace).metadata.uid
    except client.rest.ApiException as exc:
        if exc.status == 404:
            return None
        raise
