"""Drill e (part): no secret in `ansible-playbook -vvv` output (the rest of drill e is security.py). site.yml at
-vvv on the converged cluster; the output is searched for every password
as given, JSON-escaped and base64-encoded (how a Secret's data would show)."""
import base64
import json

import common
import rerun
from common import kube


def forms(password):
    return {"raw": password, "json": json.dumps(password)[1:-1],
            "base64": base64.b64encode(password.encode()).decode()}


def scan(text, passwords):
    """The (variable, form) pairs found in text."""
    return ["%s (%s)" % (key, form) for key, pw in passwords.items()
            for form, value in forms(pw).items() if value in text]


def run(ctx, smoke):
    res = common.Result("secrets_vvv", "Drill e: no secret in ansible-playbook -vvv output", smoke)
    c = rerun.converged(ctx)
    before = common.load()
    if ctx.get("vvv_run"):
        # The smoke rerun ran at -vvv: its output is the one to scan.
        run_ = ctx.pop("vvv_run")
        seconds, recap, out, rc, before = run_["seconds"], run_["recap"], run_["output"], run_["rc"], run_["load_before"]
        res.note("smoke: the output scanned is the rerun benchmark's (site.yml -vvv on the converged cluster).")
    else:
        seconds, recap, out, rc = common.timed_playbook(
            "site.yml", common.site_args("mariadb", "10.11", c["name"], c["namespace"]) + ["-vvv"], check=False)
    leaks = scan(out, kube.PASSWORDS)
    # The scan must be able to see: the namespace (not secret) is in the same output.
    sees = c["namespace"] in out
    res.rep(playbook="site.yml -vvv", seconds=seconds, rc=rc, recap=recap, output_bytes=len(out),
            leaks=leaks, scanner_sees_namespace=sees, load_before=before, load_after=common.load())
    res.target("no secret in ansible-playbook -vvv output (site.yml rerun)",
               "%d leaks in %d bytes of -vvv output (rc %s)" % (len(leaks), len(out), rc),
               rc == 0 and sees and not leaks, len(leaks))
    res.save()
    return res
