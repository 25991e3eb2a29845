"""job_run's reading of a Job's end (the Jobs themselves run on real pods
in tests/e2e/test_backup.py): the result line, and why a pod has not run."""
from types import SimpleNamespace as NS

from ansible_collections.stateful.mysql.plugins.modules.job_run import last_json, waiting_reason


def test_the_last_json_object_line_is_the_result():
    lines = ["2026-12-07T15:01:02Z db-backup [backup.sh] backing up from db-1",
             '{"id": "db-1", "size": 1}', "not json {", '{"id": "db-2", "size": 2}', "[1, 2]", "{broken"]
    assert last_json(lines) == {"id": "db-2", "size": 2}
    assert last_json(["nothing", "[]"]) == {}


def _pod(phase, waiting=None, scheduled=None):
    statuses = [NS(name="backup", state=NS(waiting=NS(reason=waiting, message="pull failed")))] if waiting else []
    conditions = [NS(type="PodScheduled", status="False", message=scheduled)] if scheduled else []
    return NS(metadata=NS(name="db-backup-x"),
              status=NS(phase=phase, init_container_statuses=None, container_statuses=statuses, conditions=conditions))


def test_waiting_reason_names_the_pod_and_why():
    assert waiting_reason(None) == "no pod yet"
    assert waiting_reason(_pod("Pending", waiting="ErrImagePull")) == \
        "pod db-backup-x Pending; backup: ErrImagePull pull failed"
    assert waiting_reason(_pod("Pending", scheduled="0/1 nodes: unbound PVC")) == \
        "pod db-backup-x Pending; not scheduled: 0/1 nodes: unbound PVC"
    assert waiting_reason(_pod("Running")) == "pod db-backup-x Running"
