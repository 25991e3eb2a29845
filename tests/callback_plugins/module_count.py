# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Counts module executions of a playbook run, for the execution budgets
(README "Execution budgets", tests/e2e/test_budget.py).

A module execution is a task result that came from a module started on the
host: every loop item and every retry counts. Actions that run in the
controller's worker only (set_fact, assert, debug, includes, meta) start none;
an action plugin that runs a module (stateful.mysql.k8s_apply, kubernetes.core's
own) counts once per result. The counts go, as JSON, to the file named by
STATEFUL_MYSQL_COUNT_FILE when the run ends."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: module_count
type: aggregate
short_description: Count the module executions of a run
description:
  - Writes the number of module executions, and each one's task, to the file in STATEFUL_MYSQL_COUNT_FILE.
requirements:
  - enabled in callbacks_enabled
"""

import json
import os

from ansible.plugins.callback import CallbackBase

# Actions that never start a module: they run in the controller's worker.
CONTROLLER_ONLY = frozenset(
    "ansible.builtin.%s" % a for a in (
        "set_fact", "assert", "debug", "fail", "meta", "include_tasks", "import_tasks", "include_role",
        "import_role", "include_vars", "set_stats", "add_host", "group_by", "pause", "validate_argument_spec",
        "import_playbook", "end_play", "end_host", "end_batch", "noop"))


def _fqcn(action):
    return action if "." in action else "ansible.builtin." + action


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_count"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.executions = []

    def _count(self, result, kind):
        task = result._task
        action = _fqcn(task.action)
        if action in CONTROLLER_ONLY or result._result.get("skipped"):
            return
        self.executions.append(dict(task=task.get_name(), action=action, kind=kind))

    # A loop task reports each item, then once more for the whole loop: count the items.
    def v2_runner_on_ok(self, result):
        if not result._task.loop:
            self._count(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not result._task.loop:
            self._count(result, "failed")

    def v2_runner_item_on_ok(self, result):
        self._count(result, "item")

    def v2_runner_item_on_failed(self, result):
        self._count(result, "item failed")

    def v2_runner_retry(self, result):
        self._count(result, "retry")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("STATEFUL_MYSQL_COUNT_FILE")
        if path:
            with open(path, "w") as fh:
                json.dump(dict(total=len(self.executions), executions=self.executions), fh, indent=1)
