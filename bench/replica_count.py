"""Benchmark 1, second part: site.yml's wall time (it includes its own
verification) against the replica count, 1 to 6, for the mysql flavor
(MySQL 9.7, copies by CLONE, bandwidth uncapped) and the mariadb flavor
(MariaDB 10.11, the backup stream). One fresh namespace per point, deleted
(and waited for) before the next, so no point carries another's load."""
import common
import scale_out

FLAVORS = (("mysql", "9.7", scale_out.UNCAPPED), ("mariadb", "10.11", {}))


def run(ctx, smoke):
    res = common.Result("replica_count", "site.yml time against replica count, mysql and mariadb", smoke)
    points = [f + (n,) for f in FLAVORS for n in range(1, 7)]
    first = (ctx.get("converged") or {}).get("first_run")
    if smoke and first:
        # The 5-minute budget: time_to_cluster's own site.yml run is the point.
        res.note("smoke: the one point is time_to_cluster's site.yml run (MariaDB 10.11, 3 replicas); "
                 "the sweep is the full run's.")
        res.rep(flavor="mariadb 10.11", replicas=3, seconds=first["seconds_verified"], recap=first["recap"],
                load_before=first.get("load_before") or common.load(), load_after=first.get("load_after") or common.load())
        points = []
    elif smoke:
        res.note("smoke: one point (MariaDB 10.11, 1 replica); the sweep is the full run's.")
        points = [("mariadb", "10.11", {}, 1)]
    for flavor, version, extra, n in points:
        ns = common.namespace("count-%s-%d" % (flavor[:5], n))
        before = common.load()
        try:
            seconds, recap, _out, _rc = common.timed_playbook(
                "site.yml", common.site_args(flavor, version, "mysql", ns, extra=dict(extra, mysql_cluster_replicas=n)))
            res.rep(flavor="%s %s" % (flavor, version), replicas=n, seconds=seconds, recap=recap,
                    load_before=before, load_after=common.load())
        except Exception as exc:
            res.rep(flavor="%s %s" % (flavor, version), replicas=n, error=str(exc)[-2000:],
                    load_before=before, load_after=common.load())
        finally:
            common.drop(ns)
    done = [r for r in res.data["repetitions"] if "seconds" in r]
    per = {}
    for r in done:
        per.setdefault(r["flavor"], []).append("%d: %.0f s" % (r["replicas"], r["seconds"]))
    errors = len(res.data["repetitions"]) - len(done)
    res.target("site.yml time against replica count 1..6, mysql and mariadb",
               "; ".join("%s %s" % (f, ", ".join(v)) for f, v in sorted(per.items()))
               + (" (%d points failed: see repetitions)" % errors if errors else ""),
               "info" if not errors else False)
    res.save()
    return res
