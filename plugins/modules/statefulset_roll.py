#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: statefulset_roll
short_description: Roll one pod of a MySQL/MariaDB StatefulSet onto its new template and wait until it replicates
version_added: 0.2.0
description:
  - Lowers the StatefulSet's C(spec.updateStrategy.rollingUpdate.partition) to O(ordinal), so that the
    controller replaces that pod (and no other) with one of the update revision, then waits until the pod
    runs the update revision, is Ready, and every server of the StatefulSet is healthy (the primary writable,
    each replica's threads running within O(max_lag)), as stateful.mysql.replication_status reports it.
  - Called once per ordinal, the highest first and 0 (the primary) last, it rolls a cluster one pod at a
    time and stops at the first pod that does not come back; the partition stays there, so the pods below
    keep the old template and keep serving.
  - Reports the server version the pod runs and the upgrade step its init container recorded on the volume
    (C(mariadb-upgrade), or MySQL's own upgrade read from its error log) since the pod started.
  - A replica that waiting cannot heal, or a primary that refuses to serve, ends the wait at once.
  - The StatefulSet controller replaces an outdated pod only once it is Ready, so a pod stuck on an older
    template that cannot start (its image not pulled, a container crashing - a roll that failed, then
    set back) would wait for ever; such a pod, which serves no one, is deleted once, and its volume is kept.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
  - stateful.mysql.mysql_login
attributes:
  check_mode:
    support: full
    description: In check mode the partition is not changed and nothing is waited for.
  diff_mode:
    support: none
    description: No diff.
  idempotent:
    support: full
    description: A pod already on the update revision, with the partition at or below O(ordinal), is only checked.
options:
  ordinal:
    description: The pod to roll, C(<name>-<ordinal>).
    type: int
    required: true
  wait_timeout:
    description: Seconds to wait for the pod to run the new template and the cluster to replicate.
    type: int
    default: 900
  wait_sleep:
    description: Seconds between two checks.
    type: int
    default: 1
  max_lag:
    description: Largest replica lag in seconds still counted as replicating.
    type: int
    default: 60
  new_pods_from:
    description:
      - The ordinal of the first pod of a scale-up applied in the same run (the replica count before it).
      - Before lowering the partition the module waits until those pods are Ready - they come on the old
        template and copy from peers of its version; a pod made on a new server version would find no donor.
    type: int
  way_back:
    description: What the failure message tells the user to do (the caller knows what changed).
    type: str
    default: fix the cause and run the roll again; it resumes at this pod
"""

EXAMPLES = r"""
- name: Roll the replica db-2
  stateful.mysql.statefulset_roll:
    name: db
    namespace: shop
    ordinal: 2
    max_lag: 60
"""

RETURN = r"""
pod:
  description: The pod rolled.
  returned: always
  type: str
  sample: db-2
replaced:
  description: Whether the pod was replaced during this call.
  returned: always
  type: bool
revision:
  description: The StatefulSet's update revision the pod runs.
  returned: success
  type: str
version:
  description: The server version the pod reports.
  returned: success
  type: str
  sample: 11.8.9-MariaDB-log
upgrade:
  description: The upgrade lines the pod's init container recorded on its volume since the pod started ([] when none ran).
  returned: success
  type: list
  elements: str
  sample: ["upgrade: mariadb-upgrade from 10.11.18 to 11.8.9 done"]
deleted_stuck_pod:
  description: Present and true when the pod, on an older revision and stuck (image not pulled, crashing), was deleted.
  returned: when it was
  type: bool
elapsed:
  description: Seconds waited.
  returned: always
  type: float
msg:
  description: One line on what happened to the pod.
  returned: always
  type: str
servers:
  description: The servers' reports at the end (see stateful.mysql.replication_status).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.args import (
    K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, merge_specs,
)
from ansible_collections.stateful.mysql.plugins.module_utils.connection import (
    PYMYSQL_IMPORT_ERROR, error_text, exec_in_pod,
)
from ansible_collections.stateful.mysql.plugins.module_utils.replication import (
    Cluster, broken_servers, cluster_status, unhealthy_summary, wait_until,
)
from ansible_collections.stateful.mysql.plugins.module_utils.rollout import (
    REVISION_LABEL, partition_of, partition_patch, pod_state, stuck, upgrade_lines,
)

EVENTS_LOG = "/var/lib/mysql/.stateful-mysql/events.log"


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, dict(
        ordinal=dict(type="int", required=True),
        wait_timeout=dict(type="int", default=900),
        wait_sleep=dict(type="int", default=1),
        max_lag=dict(type="int", default=60),
        way_back=dict(type="str", default="fix the cause and run the roll again; it resumes at this pod"),
        new_pods_from=dict(type="int"),
    ))


def _read_pod(cluster, name):
    try:
        return cluster.k8s.core.read_namespaced_pod(name, cluster.params["namespace"])
    except Exception as e:  # 404 while the controller replaces it
        if getattr(e, "status", None) == 404:
            return None
        raise


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    p = module.params
    cluster = Cluster(module, need_k8s=True)
    name, ns, ordinal = p["name"], p["namespace"], p["ordinal"]
    pod_name = "%s-%d" % (name, ordinal)
    sts = cluster.statefulset
    result = dict(changed=False, pod=pod_name, replaced=False, elapsed=0.0, servers=[])
    if ordinal < 0 or ordinal >= (sts.spec.replicas or 0):
        module.fail_json(msg="ordinal %d: StatefulSet %s/%s has pods %s-0 to %s-%d"
                         % (ordinal, ns, name, name, name, (sts.spec.replicas or 1) - 1), **result)
    new_pods = ["%s-%d" % (name, i) for i in range(p["new_pods_from"], sts.spec.replicas or 0)] \
        if p["new_pods_from"] is not None else []
    if new_pods and partition_of(sts) > ordinal and not module.check_mode:
        # Pods of a scale-up in the same run come on the old template and
        # copy from peers of its version: the partition falls only once they
        # are Ready, or a new pod on a new version would find no donor.
        def made():
            pods = [(n, _read_pod(cluster, n)) for n in new_pods]
            waiting = ["%s %s" % (n, pod_state(pod) if pod is not None else "not created yet")
                       for n, pod in pods if pod is None or pod_state(pod)]
            return not waiting, "; ".join(waiting)
        done, why, _elapsed = wait_until(made, p["wait_timeout"], sleep=p["wait_sleep"])
        if not done:
            module.fail_json(msg="StatefulSet %s/%s: the new pods of the scale-up were not Ready within %ss (%s), "
                             "so the roll did not start: no pod was rolled. Way back: %s."
                             % (ns, name, p["wait_timeout"], why, p["way_back"]), **result)
    before = _read_pod(cluster, pod_name)
    before_uid = before.metadata.uid if before is not None else None
    if partition_of(sts) > ordinal:
        result["changed"] = True
        if not module.check_mode:
            try:
                cluster.k8s.apps.patch_namespaced_stateful_set(name, ns, partition_patch(sts, ordinal))
            except Exception as e:
                module.fail_json(msg="cannot lower the partition of StatefulSet %s/%s to %d: %s"
                                 % (ns, name, ordinal, error_text(e)), **result)
    if module.check_mode:
        result["msg"] = "%s would roll (check mode: nothing changed)" % pod_name
        module.exit_json(**result)

    deleted = []

    def check():
        current = cluster.k8s.read_statefulset(name, ns)
        revision = current.status.update_revision if current.status is not None else None
        pod = _read_pod(cluster, pod_name)
        waiting = []
        if pod is None:
            waiting.append("%s not created yet" % pod_name)
        elif revision and (pod.metadata.labels or {}).get(REVISION_LABEL) != revision:
            # The controller replaces an outdated pod only once it is Ready:
            # one stuck on a template that cannot start (a bad image, a
            # crash) would wait for ever. Not Ready, it serves no one.
            if stuck(pod) and pod.metadata.uid not in deleted:
                deleted.append(pod.metadata.uid)
                cluster.k8s.core.delete_namespaced_pod(pod_name, ns)
            waiting.append("%s still on revision %s (the controller replaces it)"
                           % (pod_name, (pod.metadata.labels or {}).get(REVISION_LABEL)))
        else:
            state = pod_state(pod)
            if state:
                waiting.append("%s %s" % (pod_name, state))
        healthy, servers = cluster_status(cluster, p["max_lag"])
        # The pod itself is said above while it is not Ready.
        others = [s for s in servers if not s["healthy"] and not (s["name"] == pod_name and waiting)]
        if others:
            waiting.append(unhealthy_summary(others))
        done = not waiting or bool(broken_servers(servers))
        return done, (waiting, servers, pod, revision)

    try:
        done, (waiting, servers, pod, revision), elapsed = wait_until(check, p["wait_timeout"], sleep=p["wait_sleep"])
    finally:
        cluster.close()
    result.update(elapsed=round(elapsed, 3), servers=servers,
                  replaced=pod is not None and pod.metadata.uid != before_uid)
    result["changed"] = result["changed"] or result["replaced"]
    if waiting:
        module.fail_json(msg="the roll of StatefulSet %s/%s stopped at %s after %ds: %s. The pods below it "
                         "keep the previous template and serve; the partition stays at %d, so nothing else rolls. "
                         "Way back: %s."
                         % (ns, name, pod_name, int(elapsed), "; ".join(waiting), ordinal, p["way_back"]), **result)
    report = [s for s in servers if s["name"] == pod_name]
    result["version"] = report[0].get("version") if report else None
    result["revision"] = revision
    result["upgrade"] = []
    started = pod.status.start_time if pod.status is not None else None
    try:
        rc, out, _err = exec_in_pod(cluster.k8s.core, pod_name, ns, ["tail", "-n", "200", EVENTS_LOG])
        if rc == 0:
            result["upgrade"] = upgrade_lines(out, started)
    except Exception:  # the record is a report, not a condition of the roll
        pass
    if deleted:
        result["deleted_stuck_pod"] = True
    result["msg"] = "%s %s: runs revision %s, server %s, Ready, the cluster replicating within %ss%s" % (
        pod_name, ("replaced (its pod on the previous template never became Ready, so it was deleted: the controller "
                   "replaces only a Ready pod)" if deleted else "replaced") if result["replaced"]
        else "already on the new template", revision,
        result["version"], p["max_lag"],
        ("; " + "; ".join(result["upgrade"])) if result["upgrade"] else "; no upgrade step (same server version)")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
