"""bench/results/report.md from the result files: one table first (target,
measured, pass/miss), then a line per benchmark with its machine load, and
PNG plots (matplotlib, Agg: no display)."""
import glob
import json
import os


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported only to draw: the
    judging parts of this module (unit-tested under the oldest ansible-core's
    virtualenv, which has no matplotlib) do not need it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Every target of issues 18, 26, 28 and 29, in their order: a benchmark without a result file is
# listed as not measured yet, never left out.
PLANNED = [
    ("time_to_cluster", "site.yml <= 1.0x the seed's method (3 pods, MariaDB 10.11)"),
    ("replica_count", "site.yml time against replica count 1..6, mysql and mariadb"),
    ("scale_out", "scale.yml 3 -> 4 <= one replica's copy-and-join time + 10 s"),
    ("scale_out", "Parallel 3 -> 8 <= 0.6x OrderedReady 3 -> 8"),
    ("rerun", "rerun <= 0.2x the first run"),
    ("rerun", "rerun <= 12 s of CPU (ansible-playbook and its children)"),
    ("rerun", "verify.yml <= 10 s on 3 pods"),
    ("rerun", "rerun changed=0"),
    ("copy_throughput", "mariadb-backup >= 60% of raw tar|socat; CLONE >= 60% of dd fdatasync"),
    ("lag", "replication lag p99 <= 1 s at the highest sustained write rate"),
    ("kill_primary", "drill a: kill the primary 10x under load, no acknowledged write lost"),
    ("kill_replica", "drill b: kill replica/process/new replica/donor mid-copy 10x each"),
    ("delete_all", "drill c: delete all pods, data intact"),
    ("bad_inputs", ">= 20 distinct bad inputs each fail naming the variable, no resourceVersion changes"),
    ("secrets_vvv", "no secret in ansible-playbook -vvv output (site.yml rerun)"),
    ("security", "no secret in containers' /proc/*/cmdline; 0 bytes to a client without credentials; "
                 "replicas and replication user cannot write"),
    ("roll", "site.yml version 10.11 -> 11.8: wall time, longest write gap, nothing lost"),
    ("roll", "site.yml configuration change: wall time, longest write gap, nothing lost"),
    ("roll", "StatefulSet controller alone, template change: wall time, longest write gap, nothing lost"),
    ("backup_throughput", "backup and restore >= 60% of the disk's dd fdatasync write speed"),
]


def load_results(where):
    out = {}
    for path in sorted(glob.glob(os.path.join(where, "*.json"))):
        with open(path) as fh:
            data = json.load(fh)
        out[data["name"]] = data
    return out


def verdict(passed):
    return {True: "pass", False: "**miss**", None: "not measured yet", "info": "measured (no target)"}[passed]


def table(results):
    rows = ["| target | measured | result |", "|---|---|---|"]
    seen = set()
    for name, target in PLANNED:
        data = results.get(name)
        found = [t for t in (data or {}).get("targets", []) if t["target"].split(" (", maxsplit=1)[0] == target.split(" (", maxsplit=1)[0]]
        if found:
            for t in found:
                seen.add((name, t["target"]))
                smoke = " (smoke)" if data.get("smoke") and t["pass"] is not None else ""
                rows.append("| %s | %s%s | %s |" % (t["target"], t["measured"], smoke, verdict(t["pass"])))
        else:
            rows.append("| %s | not measured yet | not measured yet |" % target)
    measured = set(target for _name, target in seen)
    for name, data in sorted(results.items()):
        for t in data.get("targets", []):
            # An older result's placeholder for a target another harness now measures.
            if t["pass"] is None and t["target"] in measured:
                continue
            if (name, t["target"]) not in seen:
                rows.append("| %s | %s | %s |" % (t["target"], t["measured"], verdict(t["pass"])))
    return rows


def load_span(data):
    loads = [x for r in data["repetitions"] for k in ("load_before", "load_after") if r.get(k) for x in [r[k][0]]]
    return "%.2f-%.2f" % (min(loads), max(loads)) if loads else "?"


def plot_time_to_cluster(data, path):
    plt = pyplot()
    reps = data["repetitions"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (side, key, colour) in enumerate([("seed", "seconds_ready", "tab:gray"),
                                             ("seed", "seconds_verified", "silver"),
                                             ("site", "seconds_verified", "tab:blue")]):
        vals = [r.get(key) for r in reps if r["side"] == side and r.get(key)]
        ax.scatter([i] * len(vals), vals, color=colour, zorder=3)
        if vals:
            ax.bar(i, sorted(vals)[len(vals) // 2], color=colour, alpha=0.5)
    ax.set_xticks([0, 1, 2], ["seed: 3/3 Ready", "seed: row replicated", "site.yml (verified)"])
    ax.set_ylabel("seconds")
    ax.set_title("Time to a 3-pod MariaDB 10.11 cluster (bars: median, dots: runs)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_rerun(data, path):
    plt = pyplot()
    reps = data["repetitions"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = ["first" if r["kind"] == "first" else "%s %d" % (r["kind"], r["rep"]) for r in reps]
    colors = [{"first": "tab:blue", "rerun": "tab:green"}.get(r["kind"], "tab:orange") for r in reps]
    ax.bar(labels, [r["seconds"] for r in reps], color=colors)
    first = reps[0]["seconds"]
    ax.axhline(first * 0.2, color="red", linestyle="--", label="target 0.2x first run")
    ax.set_ylabel("seconds")
    ax.set_title("site.yml first run vs reruns (converged)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_scale_out(data, path):
    plt = pyplot()
    # The 3 -> 8 runs; the one-replica step (one=True) is in the table.
    reps = [r for r in data["repetitions"] if "join_seconds" in r and not r.get("one")] or \
        [r for r in data["repetitions"] if "join_seconds" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.4
    for j, r in enumerate(reps):
        pods = sorted(r["join_seconds"], key=lambda p: int(p.rsplit("-", 1)[1]))
        xs = [i + j * width for i in range(len(pods))]
        ax.bar(xs, [r["join_seconds"][p] or 0 for p in pods], width, label="%s (scale.yml %.0f s)"
               % (r["policy"], r["scale_seconds"]))
        ax.set_xticks([i + width / 2 for i in range(len(pods))], pods)
    ax.set_ylabel("pod creation to Ready, s")
    ax.set_title("Scale-out join time per new replica (%s)" % reps[0].get("flavor", "mysql 9.7"))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_replica_count(data, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    flavors = sorted({r["flavor"] for r in data["repetitions"] if "seconds" in r})
    for flavor in flavors:
        pts = sorted((r["replicas"], r["seconds"]) for r in data["repetitions"] if r.get("flavor") == flavor and "seconds" in r)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=flavor)
    ax.set_xlabel("replicas (pods)")
    ax.set_ylabel("site.yml wall time, s (verified)")
    ax.set_title("Time to a verified cluster against its size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def detail_time_to_cluster(data):
    rows = ["| side | rep | to 3/3 Ready s | verified s | pods Ready at (s after start) | recap | load 1m before/after |",
            "|---|---|---|---|---|---|---|"]
    for r in data["repetitions"]:
        pods = r.get("pods") or {}
        ready = ", ".join("%s" % pods[p]["ready_after_start"] for p in sorted(pods))
        rows.append("| %s | %s | %s | %s | %s | %s | %s / %s |" % (
            r["side"], r["rep"], r.get("seconds_ready", "-"), r.get("seconds_verified", r.get("error", "-")[:80]),
            ready or "-", r.get("recap", "-"), (r.get("load_before") or ["?"])[0], (r.get("load_after") or ["?"])[0]))
    return rows


def detail_scale_out(data):
    rows = ["| policy | replicas | scale.yml s | join s (creation to Ready) | donors | load 1m |", "|---|---|---|---|---|---|"]
    for r in data["repetitions"]:
        if "error" in r:
            rows.append("| %s | %s -> %s | error: %s | | | |" % (r["policy"], r["start"], r["end"], r["error"][:120]))
            continue
        rows.append("| %s (%s) | %s -> %s | %s | %s | %s | %s-%s |" % (
            r["policy"], r.get("flavor", "mysql 9.7"), r["start"], r["end"], r["scale_seconds"],
            ", ".join("%s %s" % kv for kv in sorted(r["join_seconds"].items())),
            ", ".join("%s<-%s" % (k, (v or "?").split(".")[0]) for k, v in sorted(r["donors"].items())),
            r["load_before"][0], r["load_after"][0]))
    return rows


def detail_bad_inputs(data):
    rows = ["| playbook | bad input | rc | names | objects changed | result |", "|---|---|---|---|---|---|"]
    for r in data["repetitions"]:
        rows.append("| %s | `%s` | %s | %s | %s | %s |" % (
            r["playbook"], json.dumps(r["bad"]).replace("|", "/"), r["rc"], ", ".join(r["named"]) or "-",
            ", ".join(r["changed_objects"]) or "none", "pass" if r["passed"] else "**miss**"))
    return rows


def detail_replica_count(data):
    rows = ["| flavor | replicas | site.yml s | recap | load 1m before/after |", "|---|---|---|---|---|"]
    for r in data["repetitions"]:
        rows.append("| %s | %s | %s | %s | %s / %s |" % (
            r["flavor"], r["replicas"], r.get("seconds", "error: %s" % r.get("error", "")[:100]), r.get("recap", "-"),
            r["load_before"][0], r["load_after"][0]))
    return rows


def detail_drill(data):
    """kill_primary, kill_replica and delete_all: one row per repetition."""
    keys = [k for k in ("kind", "killed", "seconds_to_ready", "acked_before_kill", "acked", "not_acked", "lost", "rows", "rows_after",
                        "checksums_equal", "datadir_kept", "converged", "seconds_to_converge",
                        "new_copies_started", "new_copies_finished", "new_changes", "copy_seconds")
            if any(k in r for r in data["repetitions"])]
    rows = ["| rep | %s | result | load 1m before/after |" % " | ".join(keys), "|---|%s---|---|" % ("---|" * len(keys))]
    for r in data["repetitions"]:
        rows.append("| %s | %s | %s | %s / %s |" % (
            r["rep"], " | ".join(str(r.get(k, "-")) for k in keys),
            "pass" if r.get("ok") else "**miss** %s" % r.get("error", "")[:100].replace("|", "/"),
            r["load_before"][0], r["load_after"][0]))
    return rows


def plot_lag(data, path):
    """Lag percentiles against the achieved write rate, one line per flavor per percentile."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    # The rate steps; the variant experiments are in the table.
    reps = [r for r in data["repetitions"] if r.get("p99") is not None and not r.get("variant")]
    for flavor, colour in zip(sorted({r["flavor"] for r in reps}), ["tab:blue", "tab:orange", "tab:green"]):
        pts = sorted((r for r in reps if r["flavor"] == flavor), key=lambda r: r["achieved_rate"])
        for key, style in (("p50", ":"), ("p99", "-"), ("max", "--")):
            # A log axis has no 0: a lag of 0 (never behind when sampled) is drawn at 0.1 ms.
            ax.plot([r["achieved_rate"] for r in pts], [max(r[key], 1e-4) for r in pts], style, marker="o",
                    color=colour, label="%s %s" % (flavor, key))
    ax.axhline(1.0, color="red", linestyle="--", linewidth=0.8, label="target p99 1 s")
    ax.set_yscale("log")
    ax.set_xlabel("achieved write rate, tx/s")
    ax.set_ylabel("replication lag, s")
    ax.set_title("Replication lag against write rate")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def detail_lag(data):
    rows = ["| flavor | target tx/s | achieved tx/s | p50 s | p99 s | max s | samples | catch-up s | result | "
            "load 1m before/after, machine CPU busy under load |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["repetitions"]:
        if "error" in r:
            rows.append("| %s | %s | error: %s | | | | | | **miss** | |" % (
                r["flavor"], r.get("target_rate", "-") or "unthrottled", r["error"][-120:].replace("|", "/").replace("\n", " ")))
            continue
        rows.append("| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
            r["flavor"], (r["target_rate"] or "unthrottled") if not r.get("variant") else "unthrottled, " + r["variant"],
            r["achieved_rate"], "" if r.get("sustained", True) else " (not reached)",
            r["p50"], r["p99"], r["max"], r["samples"], "no" if r["drain_seconds"] is None else r["drain_seconds"],
            "experiment" if r.get("variant") else "pass" if r["ok"] else "**miss**",
            r["load_before"][0], r["load_after"][0]))
        if r.get("cpu_busy_percent") is not None:
            rows[-1] = rows[-1][:-1] + "CPU busy %s%% |" % r["cpu_busy_percent"]
    return rows


def plot_copy_throughput(data, path):
    """Median MB/s of each measure, per flavor: the copy beside the raw stream and the disk."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    reps = [r for r in data["repetitions"] if r.get("mb_s") and r["kind"] != "scale.yml copy"]
    flavors = sorted({r["flavor"] for r in reps})
    kinds = sorted({r["kind"] for r in reps}, key=COPY_KINDS.index)
    width = 0.8 / max(len(flavors), 1)
    for j, flavor in enumerate(flavors):
        vals = []
        for kind in kinds:
            got = sorted(r["mb_s"] for r in reps if r["flavor"] == flavor and r["kind"] == kind)
            vals.append(got[len(got) // 2] if got else 0)
        ax.bar([i + j * width for i in range(len(kinds))], vals, width, label=flavor)
    ax.set_xticks([i + width * (len(flavors) - 1) / 2 for i in range(len(kinds))], kinds, rotation=20,
                  fontsize="small")
    ax.set_ylabel("MB/s (median), to disk")
    ax.set_title("Copy throughput: CLONE / backup stream vs raw tar|socat and dd")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


COPY_KINDS = ["dd", "clone", "clone concurrency 1", "clone cold", "stream", "stream cold", "raw", "raw cold"]


def detail_copy_throughput(data):
    rows = ["| flavor | measure | rep | MB | s | MB/s | CLONE FILE COPY MB/s | result | load 1m before/after |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in data["repetitions"]:
        mb = "%.0f" % (r["bytes"] / 1e6) if r.get("bytes") else "-"
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
            r.get("flavor"), r["kind"], r.get("rep", "-"), mb, r.get("seconds", r.get("scale_seconds", "-")),
            r.get("mb_s", "-"), r.get("file_copy_mb_s", "-"),
            "error: %s" % r["error"][-100:].replace("|", "/").replace("\n", " ") if "error" in r else "ok",
            (r.get("load_before") or ["-"])[0], (r.get("load_after") or ["-"])[0]))
    return rows


def detail_security(data):
    rows = ["| check | rep | what was seen | result |", "|---|---|---|---|"]
    skip = {"kind", "rep", "ok", "load_before", "load_after"}
    for r in data["repetitions"]:
        seen = ", ".join("%s=%s" % (k, v) for k, v in r.items() if k not in skip)
        rows.append("| %s | %s | %s | %s |" % (r["kind"], r.get("rep", 1), seen.replace("|", "/")[:300],
                                               "pass" if r.get("ok") else "**miss**"))
    return rows


DETAILS = {"time_to_cluster": detail_time_to_cluster, "scale_out": detail_scale_out,
           "bad_inputs": detail_bad_inputs, "replica_count": detail_replica_count,
           "kill_primary": detail_drill, "kill_replica": detail_drill, "delete_all": detail_drill, "lag": detail_lag,
           "copy_throughput": detail_copy_throughput, "security": detail_security}

PLOTS = {"time_to_cluster": plot_time_to_cluster, "rerun": plot_rerun, "scale_out": plot_scale_out,
         "replica_count": plot_replica_count, "lag": plot_lag,
         "copy_throughput": plot_copy_throughput}


def write(where=None):
    """The report of the results in where (default: the full run's)."""
    where = where or RESULTS
    results = load_results(where)
    lines = ["# Benchmarks and drills (issue 18)", "",
             "Generated by `bench/report.py` from `bench/results/*.json`. A miss is a measured result; "
             "\"not measured yet\" means no harness ran it. **All figures were measured on a 2-core machine "
             "shared with other engineers' deploys**: each result file records the 1-minute load average "
             "before and after every repetition. What each miss would take to fix: "
             "[../README.md, Findings](../README.md#findings-of-the-first-full-run-2026-12-01-shared-machine-load-26-18).",
             ""]
    lines += table(results)
    lines += ["", "## Runs", ""]
    for name, data in sorted(results.items()):
        m, v = data["machine"], data["versions"]
        lines.append("- **%s**%s: %s, commit `%s`, %d repetitions, load (1 min) %s; %d cores, %.1f GiB; "
                     "Kubernetes %s, ansible-core %s. Command: `%s`."
                     % (data["title"], " (smoke)" if data.get("smoke") else "", data["date"], data["commit"][:12],
                        len(data["repetitions"]), load_span(data), m["cores"], m["memory_bytes"] / 2**30,
                        v.get("kubernetes"), v.get("ansible_core"), data["command"]))
        for note in data.get("notes", []):
            lines.append("  - %s" % note)
        if name in DETAILS and data["repetitions"]:
            try:
                lines += [""] + ["  " + row for row in DETAILS[name](data)] + [""]
            except Exception as exc:  # a broken detail table must not hide the summary
                lines.append("  - details failed: %s" % exc)
        if name in PLOTS and data["repetitions"]:
            png = name + ".png"
            try:
                PLOTS[name](data, os.path.join(where, png))
                lines.append("\n  ![%s](%s)\n" % (name, png))
            except Exception as exc:  # a broken plot must not hide the table
                lines.append("  - plot failed: %s" % exc)
    rerun = results.get("rerun")
    if rerun:
        runs = [r for r in rerun["repetitions"] if r.get("top_tasks")]
        if runs:
            last = [r for r in runs if r["kind"] == "rerun"] or runs
            lines += ["", "## Where a rerun's time goes (profile_tasks, top 10 of the last rerun)", "",
                      "| task | s |", "|---|---|"]
            lines += ["| %s | %.2f |" % (t["task"].replace("|", "/"), t["seconds"]) for t in last[-1]["top_tasks"]]
    path = os.path.join(where, "report.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    print(write())
