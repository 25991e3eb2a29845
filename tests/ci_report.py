"""Where the time of a tier went: each step's wall time (tests/ci.sh and
tests/lanes.sh write $CACHE/timings.tsv), the slowest tests of every pytest
suite (the junit files in $CACHE/junit), and the total against the landing
tier's budget. .ci/run ends with this report, after the failure digest, so
that a failed run shows its cause and its cost in its last lines.

    python3 tests/ci_report.py [--since EPOCH] [--slowest N]
"""
import argparse
import glob
import os
import sys
import time
import xml.etree.ElementTree as ET

# The landing tier's budget (issue 24): 40 minutes warm, 65 cold.
BUDGET = {"warm": 2400, "cold": 3900}


def read_timings(path):
    tier, cache, started, steps = None, None, None, []
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return tier, cache, started, steps
    for line in lines:
        f = line.split("\t")
        if f[0] == "tier" and len(f) == 4:
            tier, cache, started = f[1], f[2], int(f[3])
        elif f[0] == "step" and len(f) == 5:
            steps.append((f[1], int(f[2]), int(f[3]), int(f[4])))
    return tier, cache, started, steps


def read_junit(folder):
    """(seconds, suite, test id, outcome) of every test case."""
    cases = []
    for path in sorted(glob.glob(os.path.join(folder, "*.xml"))):
        suite = os.path.basename(path)[:-4]
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError):
            continue
        for case in root.iter("testcase"):
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome = "FAILED" if child.tag == "failure" else "ERROR"
                elif child.tag == "skipped":
                    outcome = "skipped"
            name = "%s::%s" % (case.get("classname", ""), case.get("name", ""))
            cases.append((float(case.get("time") or 0), suite, name, outcome))
    return cases


def report(cache_dir, since=None, slowest=25, now=None, out=sys.stdout):
    now = now or time.time()
    tier, cache, started, steps = read_timings(os.path.join(cache_dir, "timings.tsv"))
    start = since or started or now
    w = out.write
    w("----- where the time went: %s tier, %s cache (%s, %s) -----\n" % (
        tier or "unknown", cache or "unknown", os.path.join(cache_dir, "timings.tsv"), os.path.join(cache_dir, "junit")))
    if steps:
        w("%-24s %7s %7s %7s  %s\n" % ("step", "wall s", "from s", "to s", "status"))
        for name, t0, t1, rc in steps:
            w("%-24s %7d %7d %7d  %s\n" % (name, t1 - t0, t0 - start, t1 - start, "ok" if rc == 0 else "FAILED rc=%d" % rc))
    else:
        w("(no step timings recorded)\n")
    cases = read_junit(os.path.join(cache_dir, "junit"))
    if cases:
        suites = {}
        for seconds, suite, _name, outcome in cases:
            s = suites.setdefault(suite, [0.0, 0, 0])
            s[0] += seconds
            s[1] += 1
            s[2] += outcome in ("FAILED", "ERROR")
        summary = ["%s %d tests %.0f s%s" % (k, v[1], v[0], ", %d failed" % v[2] if v[2] else "")
                   for k, v in sorted(suites.items())]
        w("pytest suites: %s\n" % ", ".join(summary))
        w("----- the %d slowest tests (setup included: a shared cluster's deploy counts in its first test) -----\n"
          % min(slowest, len(cases)))
        for seconds, suite, name, outcome in sorted(cases, reverse=True)[:slowest]:
            w("%7.1f s  %-10s %s%s\n" % (seconds, suite, name, "" if outcome == "passed" else "  [%s]" % outcome))
    total = int(now - start)
    if tier == "landing":
        budget = BUDGET.get(cache, BUDGET["warm"])
        verdict = "within" if total <= budget else "OVER"
        w("----- landing tier: %d s (%.1f min) of its %d s budget (%s cache): %s, %d%% -----\n" % (
            total, total / 60.0, budget, cache, verdict, 100 * total // budget))
    else:
        w("----- %s tier: %d s (%.1f min) -----\n" % (tier or "unknown", total, total / 60.0))
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=int, help="epoch seconds the run started (default: the tier's start)")
    parser.add_argument("--slowest", type=int, default=25)
    args = parser.parse_args(argv)
    cache_dir = os.environ.get("STATEFUL_MYSQL_CACHE", os.path.expanduser("~/.cache/stateful-mysql"))
    report(cache_dir, args.since, args.slowest)


if __name__ == "__main__":
    main()
