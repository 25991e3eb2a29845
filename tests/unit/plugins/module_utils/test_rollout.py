"""The roll's pure parts: the plan (plugins/filter/statefulset_roll.py), the
upgrade paths, and the pod states and upgrade records statefulset_roll reads
(plugins/module_utils/rollout.py). The roll itself is proven on real pods in
tests/e2e/test_upgrade.py."""
import datetime
import json
import os
from types import SimpleNamespace as NS

import pytest
import yaml

from ansible_collections.stateful.mysql.plugins.filter.statefulset_roll import (
    HASH_ANNOTATION, statefulset_roll_plan, upgrade_path,
)
from ansible_collections.stateful.mysql.plugins.module_utils.rollout import (
    LAST_APPLIED, partition_patch, pod_state, stuck, upgrade_lines,
)

RENDERED = {"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "a"}]}}}}


def _live(template_hash, partition=0):
    return {"metadata": {"annotations": {HASH_ANNOTATION: template_hash}},
            "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}}


def test_a_new_statefulset_does_not_roll():
    plan = statefulset_roll_plan(RENDERED, {}, 3)
    assert plan["roll"] is False and plan["ordinals"] == []
    assert plan["manifest"]["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 0
    assert HASH_ANNOTATION in plan["manifest"]["metadata"]["annotations"]
    assert "updateStrategy" not in RENDERED["spec"]  # the input is not changed


def test_an_unchanged_template_does_not_roll():
    same = statefulset_roll_plan(RENDERED, {}, 3)["manifest"]["metadata"]["annotations"][HASH_ANNOTATION]
    plan = statefulset_roll_plan(RENDERED, _live(same), 3)
    assert plan["roll"] is False and plan["partition"] == 0


def test_a_changed_template_holds_every_pod_and_rolls_from_the_top():
    plan = statefulset_roll_plan(RENDERED, _live("old"), 3)
    assert plan["roll"] is True and plan["partition"] == 3 and plan["ordinals"] == [2, 1, 0]
    assert plan["resumed"] is False


def test_a_scale_up_in_the_same_run_holds_the_new_pods_too():
    # The new pods come on the old template, copy from peers of their own
    # version, and roll with the others.
    plan = statefulset_roll_plan(RENDERED, _live("old"), 5)
    assert plan["partition"] == 5 and plan["ordinals"] == [4, 3, 2, 1, 0]


def test_a_stopped_roll_resumes_at_the_pod_it_stopped_at():
    same = statefulset_roll_plan(RENDERED, {}, 3)["manifest"]["metadata"]["annotations"][HASH_ANNOTATION]
    plan = statefulset_roll_plan(RENDERED, _live(same, partition=2), 3)
    assert plan["roll"] is True and plan["resumed"] is True
    assert plan["partition"] == 2 and plan["ordinals"] == [2, 1, 0]


def test_without_waiting_the_controller_rolls_alone():
    plan = statefulset_roll_plan(RENDERED, _live("old"), 3, wait=False)
    assert plan["roll"] is False and plan["partition"] == 0


VARS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "mysql_cluster", "vars", "main.yml")
ROWS = yaml.safe_load(open(VARS))["_mysql_cluster_flavors"]


@pytest.mark.parametrize("flavor,start,goal,path", [
    ("mariadb", "10.11", "11.8", ["10.11", "11.8"]),
    ("mariadb", "10.11", "11.4", ["10.11", "11.4"]),
    ("mariadb", "11.4", "11.8", ["11.4", "11.8"]),
    ("mysql", "8.4", "9.7", ["8.4", "9.7"]),
    ("mysql", "5.7", "9.7", []),
    ("mariadb", "11.8", "10.11", []),
    ("mysql", "9.7", "9.7", ["9.7"]),
])
def test_upgrade_paths(flavor, start, goal, path):
    assert upgrade_path(ROWS[flavor], start, goal) == path


def test_a_path_through_a_version_in_between():
    rows = {"1": {"upgrade_from": []}, "2": {"upgrade_from": ["1"]}, "3": {"upgrade_from": ["2"]}}
    assert upgrade_path(rows, "1", "3") == ["1", "2", "3"]


def test_the_partition_patch_keeps_the_last_apply_in_step():
    applied = {"spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}}}
    sts = NS(metadata=NS(annotations={LAST_APPLIED: json.dumps(applied)}))
    patch = partition_patch(sts, 1)
    assert patch["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 1
    kept = json.loads(patch["metadata"]["annotations"][LAST_APPLIED])
    assert kept["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 1 and kept["spec"]["replicas"] == 3
    assert "metadata" not in partition_patch(NS(metadata=NS(annotations=None)), 1)


def _status(name, waiting=None, message=None, exit_code=None, running=False):
    state = NS(waiting=NS(reason=waiting, message=message) if waiting else None,
               terminated=NS(exit_code=exit_code, message=message) if exit_code is not None else None,
               running=NS() if running else None)
    return NS(name=name, state=state, last_state=None)


def _pod(init=(), containers=(), ready=False):
    return NS(metadata=NS(deletion_timestamp=None), status=NS(
        phase="Pending", init_container_statuses=list(init), container_statuses=list(containers),
        conditions=[NS(type="Ready", status="True" if ready else "False", message=None)]))


def test_pod_states():
    assert pod_state(_pod(containers=[_status("mysql", running=True)], ready=True)) == ""
    pulled = _pod(init=[_status("volume-owner", waiting="ErrImagePull", message="failed to pull\nno such image")],
                  containers=[_status("mysql", waiting="PodInitializing")])
    assert pod_state(pulled) == "init container volume-owner waiting: ErrImagePull (no such image)"
    assert stuck(pulled)
    copying = _pod(init=[_status("volume-owner", exit_code=0), _status("init", running=True)],
                   containers=[_status("mysql", waiting="PodInitializing")])
    assert pod_state(copying) == "init container init running" and not stuck(copying)
    refused = _pod(init=[_status("init", exit_code=1, message="a\nERROR: this primary is behind")])
    assert pod_state(refused) == "init container init failed, exit 1: ERROR: this primary is behind"
    assert not stuck(_pod(containers=[_status("mysql", waiting="CrashLoopBackOff")], ready=True))
    assert stuck(_pod(containers=[_status("mysql", waiting="CrashLoopBackOff")]))


def test_upgrade_lines_since_the_pod_started():
    log = ("2026-12-07T10:00:00Z db-1 done-marker written\n"
           "2026-12-07T10:00:05Z db-1 upgrade: mariadb-upgrade from 10.6.1 to 10.11.18 done\n"
           "2026-12-07T11:00:00Z db-1 upgrade: data of server 10.11.18, this image runs 11.8.9: upgrade step started\n"
           "2026-12-07T11:00:03Z db-1 upgrade: mariadb-upgrade from 10.11.18 to 11.8.9 done\n")
    since = datetime.datetime(2026, 12, 7, 11, 0, 0, tzinfo=datetime.timezone.utc)
    assert upgrade_lines(log, since) == [
        "upgrade: data of server 10.11.18, this image runs 11.8.9: upgrade step started",
        "upgrade: mariadb-upgrade from 10.11.18 to 11.8.9 done"]
    assert len(upgrade_lines(log)) == 3
