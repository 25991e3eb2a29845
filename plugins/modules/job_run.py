#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: job_run
short_description: Run a Kubernetes Job to its end and return what it printed
version_added: 0.2.0
description:
  - Creates the Job given in O(definition), waits until it succeeds or fails, reads the log of its
    pod's first container and deletes the Job and its pod, so that a later run with the same name
    starts afresh. The backup, restore and backup-check steps of the role run through it.
  - A Job of the same name left by an interrupted run is deleted first.
  - The last log line that is a JSON object is returned parsed as RV(result).
  - A Job that fails, or does not end within O(wait_timeout), fails the task with the last lines
    of its log (the scripts end with a line that says what is wrong) or its pod's waiting reason.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
attributes:
  check_mode:
    support: full
    description: A Job is an action; check mode runs nothing and reports a change.
  diff_mode:
    support: none
    description: No diff.
  idempotent:
    support: none
    description: Each run runs the Job again.
options:
  definition:
    description:
      - The Job, a C(batch/v1) C(Job) with C(metadata.name) and C(metadata.namespace).
    type: dict
    required: true
  wait_timeout:
    description:
      - Seconds to wait for the Job to end.
    type: int
    default: 3600
  keep:
    description:
      - Keep the Job and its pod after it ended (to look at them); by default both are deleted.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Take a backup
  stateful.mysql.job_run:
    definition: "{{ lookup('ansible.builtin.template', 'job.yaml.j2') | from_yaml }}"
    wait_timeout: 3600
  register: backup
"""

RETURN = r"""
result:
  description: The last log line that is a JSON object, parsed; empty when there is none.
  returned: always
  type: dict
  sample: {"id": "db-20261207T150102Z", "size": 7340032}
log:
  description: The Job's log, one line per item (the last 200 lines).
  returned: always
  type: list
  elements: str
succeeded:
  description: Whether the Job succeeded.
  returned: always
  type: bool
elapsed:
  description: Seconds from its creation to its end, from a monotonic clock.
  returned: always
  type: float
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.args import K8S_AUTH_ARG_SPEC, merge_specs
from ansible_collections.stateful.mysql.plugins.module_utils.k8s import (
    KUBERNETES_IMPORT_ERROR, ApiException, K8s, K8sError, api_error_text, k8s_client)

POLL = 2.0
LOG_LINES = 200


def last_json(lines):
    """The last line that parses as a JSON object, or {}."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def waiting_reason(pod):
    """Why a pod has not run yet: its phase and any container's waiting reason."""
    if pod is None:
        return "no pod yet"
    status = pod.status
    reasons = []
    for c in (status.init_container_statuses or []) + (status.container_statuses or []):
        waiting = c.state and c.state.waiting
        if waiting and waiting.reason:
            reasons.append("%s: %s %s" % (c.name, waiting.reason, (waiting.message or "")[:200]))
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status != "True" and cond.message:
            reasons.append("not scheduled: %s" % cond.message[:200])
    return "pod %s %s%s" % (pod.metadata.name, status.phase, ("; " + "; ".join(reasons)) if reasons else "")


class JobRun(object):
    def __init__(self, module, k8s):
        self.module = module
        self.k8s = k8s
        self.batch = k8s_client.BatchV1Api(k8s.api_client)
        self.definition = module.params["definition"]
        meta = self.definition.get("metadata") or {}
        self.name = meta.get("name")
        self.namespace = meta.get("namespace")
        if not self.name or not self.namespace or self.definition.get("kind") != "Job":
            module.fail_json(msg="definition must be a Job with metadata.name and metadata.namespace")

    def read_job(self):
        try:
            return self.batch.read_namespaced_job(self.name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def delete_job(self, wait):
        try:
            self.batch.delete_namespaced_job(self.name, self.namespace, propagation_policy="Foreground")
        except ApiException as e:
            if e.status != 404:
                raise
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline:
            if self.read_job() is None:
                return
            time.sleep(1)

    def pod(self):
        pods = self.k8s.core.list_namespaced_pod(self.namespace, label_selector="job-name=%s" % self.name).items
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp)[-1] if pods else None

    def log(self, pod):
        if pod is None:
            return []
        container = pod.spec.containers[0].name
        try:
            text = self.k8s.core.read_namespaced_pod_log(pod.metadata.name, self.namespace, container=container,
                                                         tail_lines=LOG_LINES)
        except ApiException:
            return []
        return text.splitlines()

    def run(self, timeout):
        if self.read_job() is not None:
            self.delete_job(wait=120)
        self.batch.create_namespaced_job(self.namespace, self.definition)
        start = time.monotonic()
        succeeded = None
        while succeeded is None:
            job = self.read_job()
            status = job.status if job else None
            conditions = (status.conditions or []) if status else []
            if status and (status.succeeded or 0) >= 1:
                succeeded = True
            elif status and ((status.failed or 0) >= 1 or any(
                    c.type == "Failed" and c.status == "True" for c in conditions)):
                succeeded = False
            elif time.monotonic() - start > timeout:
                pod = self.pod()
                lines = self.log(pod)
                self.finish()
                self.module.fail_json(
                    msg="Job %s/%s did not end within %s s (%s)%s" % (
                        self.namespace, self.name, timeout, waiting_reason(pod),
                        (": " + " | ".join(lines[-5:])) if lines else ""),
                    log=lines, succeeded=False, result={}, elapsed=round(time.monotonic() - start, 1))
            else:
                time.sleep(POLL)
        elapsed = round(time.monotonic() - start, 1)
        lines = self.log(self.pod())
        self.finish()
        return succeeded, lines, elapsed

    def finish(self):
        if not self.module.params["keep"]:
            self.delete_job(wait=0)


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, dict(
        definition=dict(type="dict", required=True),
        wait_timeout=dict(type="int", default=3600),
        keep=dict(type="bool", default=False),
    ))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if KUBERNETES_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    if module.check_mode:
        module.exit_json(changed=True, result={}, log=[], succeeded=False, elapsed=0.0,
                         msg="check mode: the Job is not run")
    try:
        k8s = K8s(module.params)
    except K8sError as e:
        module.fail_json(msg=str(e))
    try:
        runner = JobRun(module, k8s)
        succeeded, lines, elapsed = runner.run(module.params["wait_timeout"])
    except ApiException as e:
        module.fail_json(msg="Kubernetes API error: %s" % api_error_text(e))
    finally:
        k8s.close()
    if not succeeded:
        errors = [line for line in lines if "ERROR" in line]
        module.fail_json(msg="Job %s failed: %s" % (runner.name, (errors or lines or ["no log"])[-1]),
                         log=lines, succeeded=False, result={}, elapsed=elapsed)
    module.exit_json(changed=True, result=last_json(lines), log=lines, succeeded=True, elapsed=elapsed)


if __name__ == "__main__":
    main()
