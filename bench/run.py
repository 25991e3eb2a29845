"""Run the benchmarks and drills, then write the report.

    python bench/run.py                  # all, full sizes
    python bench/run.py rerun bad_inputs # some, by name
    python bench/run.py --smoke          # the CI variant: smallest sizes, one repetition (results/smoke/)
    python bench/run.py --report         # only rewrite results/report.md from the JSON files

They run in this order because later ones reuse the converged cluster the
first one leaves (ctx["converged"]); each deploys its own when run alone."""
import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import report  # noqa: E402

ORDER = ["time_to_cluster", "rerun", "secrets_vvv", "bad_inputs", "security", "kill_primary", "kill_replica", "delete_all",
         "lag", "copy_throughput", "scale_out", "replica_count", "roll", "backup_throughput"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="benchmarks/drills to run (default: all): " + " ".join(ORDER))
    p.add_argument("--smoke", action="store_true", help="smallest sizes, one repetition")
    p.add_argument("--report", action="store_true", help="only write the report")
    a = p.parse_args()
    if not a.report:
        names = a.names or ORDER
        unknown = set(names) - set(ORDER)
        if unknown:
            p.error("unknown: %s (known: %s)" % (" ".join(sorted(unknown)), " ".join(ORDER)))
        ctx, failed = {}, []
        t0 = time.monotonic()
        try:
            for name in [n for n in ORDER if n in names]:
                print("== %s (load %s)" % (name, common.load()), flush=True)
                t1 = time.monotonic()
                try:
                    __import__(name).run(ctx, a.smoke)
                except Exception:
                    traceback.print_exc()
                    failed.append(name)
                print("== %s done in %.0f s" % (name, time.monotonic() - t1), flush=True)
        finally:
            if ctx.get("converged"):
                # Not waited for: nothing of ours runs after it.
                common.drop(ctx["converged"]["namespace"], wait=False)
        print("== all done in %.0f s" % (time.monotonic() - t0), flush=True)
    path = report.write(common.results_dir(a.smoke))
    print("report: %s" % path)
    if not a.report and failed:
        sys.exit("harness errors in: %s" % " ".join(failed))


if __name__ == "__main__":
    main()
