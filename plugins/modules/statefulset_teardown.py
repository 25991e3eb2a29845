#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: statefulset_teardown
short_description: Delete a StatefulSet with its pods, the PVCs of its claim templates and their PVs
version_added: 0.1.0
description:
  - Deletes the StatefulSet, waits until its pods are gone, deletes the PersistentVolumeClaims of its
    volume claim templates, then waits for the PersistentVolumes they were bound to to be deleted by
    their provisioner (reclaim policy C(Delete)) or deletes them (policy C(Retain), only with
    O(delete_retained_pvs=true)). Optionally deletes the namespace too.
  - A PVC is the StatefulSet's when its name is C(<template>-<statefulset>-<ordinal>) for one of the
    claim templates and, when the PVC carries labels, they include the StatefulSet's selector labels.
    This also catches PVCs left by ordinals above the current replica count (after a scale-down).
    No other PVC is touched.
  - A PV is the StatefulSet's when it is bound to (or, released, still claims) one of those PVCs.
  - Refuses to act without O(confirm=true). Check mode needs no confirmation and lists exactly what
    would go; with C(--diff) the list is shown as a diff.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
attributes:
  check_mode:
    support: full
    description: Lists what would be deleted and deletes nothing.
  diff_mode:
    support: full
    description: The StatefulSet, pods, PVCs, PVs and namespace before and after.
  idempotent:
    support: full
    description: Once everything is gone a new run reports no change.
options:
  name:
    description:
      - Name of the StatefulSet.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the StatefulSet.
    type: str
    default: default
  confirm:
    description:
      - Must be V(true) for the module to delete anything. Not needed in check mode.
    type: bool
    default: false
  claim_templates:
    description:
      - Names of volume claim templates whose PVCs to delete, added to the StatefulSet's own.
      - Needed to remove leftover PVCs when the StatefulSet itself is already gone.
    type: list
    elements: str
    default: []
  selector:
    description:
      - Labels a PVC must carry, when it carries any labels at all, to be deleted.
      - Defaults to the StatefulSet's C(spec.selector.matchLabels). Give it with O(claim_templates) when the
        StatefulSet is already gone, or PVCs are matched by name alone.
    type: dict
  delete_retained_pvs:
    description:
      - Also delete the PVs whose reclaim policy is not C(Delete) (C(Retain)). Their data is gone with them
        only when the storage backend removes it; otherwise it stays orphaned there.
      - When V(false), such PVs are kept (C(Released)) and listed in RV(retained_pvs).
    type: bool
    default: false
  delete_namespace:
    description:
      - Delete the namespace after everything else. The namespaces C(default), C(kube-system),
        C(kube-public) and C(kube-node-lease) are never deleted.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for each step (pods, PVCs, PVs, namespace) to be gone before failing.
    type: int
    default: 300
  wait_sleep:
    description:
      - Seconds between two checks while waiting.
    type: int
    default: 2
requirements:
  - kubernetes >= 24.2.0 (Python library)
notes:
  - The Kubernetes user needs C(get)/C(delete) on the StatefulSet, C(list) on pods, C(list)/C(delete) on PVCs,
    C(get)/C(list)/C(delete) on PVs (cluster scope) and, with O(delete_namespace), C(delete) on the namespace.
seealso:
  - module: stateful.mysql.replication_status
"""

EXAMPLES = r"""
- name: Show what would go (check mode needs no confirm)
  stateful.mysql.statefulset_teardown:
    name: mysql
    namespace: db
  check_mode: true
  diff: true

- name: Remove the cluster, its PVCs and their PVs, Retain ones included, and the namespace
  stateful.mysql.statefulset_teardown:
    name: mysql
    namespace: db
    confirm: true
    delete_retained_pvs: true
    delete_namespace: true

- name: Remove PVCs left behind after the StatefulSet was deleted by hand
  stateful.mysql.statefulset_teardown:
    name: mysql
    namespace: db
    claim_templates: [data]
    confirm: true
"""

RETURN = r"""
statefulset:
  description: The StatefulSet deleted (or that would be), null when there was none.
  returned: always
  type: str
  sample: mysql
pods:
  description: Pods of the StatefulSet waited for (or that would be).
  returned: always
  type: list
  elements: str
  sample: [mysql-0, mysql-1, mysql-2]
pvcs:
  description: PVCs deleted (or that would be).
  returned: always
  type: list
  elements: str
  sample: [data-mysql-0, data-mysql-1, data-mysql-2, data-mysql-3]
pvs:
  description: PVs removed (or that would be), by their provisioner or by the module; each with its reclaim policy.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "pvc-2b7e...", "claim": "data-mysql-0", "reclaim_policy": "Delete"}]
retained_pvs:
  description: PVs kept because their reclaim policy is not C(Delete) and O(delete_retained_pvs=false).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "pvc-9f1c...", "claim": "data-mysql-1", "reclaim_policy": "Retain"}]
skipped_pvcs:
  description: PVCs whose name matched but whose labels do not include the StatefulSet's selector; left alone.
  returned: always
  type: list
  elements: str
  sample: []
namespace_deleted:
  description: Whether the namespace was (or would be) deleted.
  returned: always
  type: bool
  sample: false
elapsed:
  description: Seconds spent, from a monotonic clock.
  returned: always
  type: float
  sample: 21.5
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.args import K8S_AUTH_ARG_SPEC, merge_specs
from ansible_collections.stateful.mysql.plugins.module_utils.connection import pod_ordinal
from ansible_collections.stateful.mysql.plugins.module_utils.k8s import (
    KUBERNETES_IMPORT_ERROR, ApiException, K8s, K8sError, api_error_text,
)
from ansible_collections.stateful.mysql.plugins.module_utils.replication import wait_until

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", default="default"),
        confirm=dict(type="bool", default=False),
        claim_templates=dict(type="list", elements="str", default=[]),
        selector=dict(type="dict"),
        delete_retained_pvs=dict(type="bool", default=False),
        delete_namespace=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        wait_sleep=dict(type="int", default=2),
    ))


def claim_pattern(templates, statefulset):
    """``<template>-<statefulset>-<ordinal>`` for any of ``templates``."""
    if not templates:
        return None
    alternatives = "|".join(re.escape(t) for t in sorted(set(templates), key=len, reverse=True))
    return re.compile(r"^(?:%s)-%s-(\d+)$" % (alternatives, re.escape(statefulset)))


def is_our_pvc(name, labels, pattern, selector):
    """Name by pattern; labels, where the PVC has any, must include the selector's."""
    if pattern is None or not pattern.match(name):
        return False, False
    if labels and selector:
        if any(labels.get(k) != v for k, v in selector.items()):
            return False, True
    return True, False


def owned_by(obj, kind, name):
    return any(ref.kind == kind and ref.name == name for ref in (obj.metadata.owner_references or []))


class Teardown(object):
    def __init__(self, module, k8s):
        self.module = module
        self.k8s = k8s
        self.p = module.params
        self.ns = self.p["namespace"]
        self.name = self.p["name"]

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    # -- what exists --------------------------------------------------
    def plan(self):
        p = self.p
        try:
            sts = self.k8s.read_statefulset(self.name, self.ns)
        except ApiException as e:
            self.fail("cannot read StatefulSet %s/%s: %s" % (self.ns, self.name, api_error_text(e)))
        templates = list(p["claim_templates"])
        selector = {}
        if sts is not None:
            templates += [t.metadata.name for t in (sts.spec.volume_claim_templates or [])]
            selector = dict((sts.spec.selector.match_labels or {}) if sts.spec.selector else {})
        if p["selector"]:
            selector = dict((str(k), str(v)) for k, v in p["selector"].items())
        pattern = claim_pattern(templates, self.name)
        namespace_exists = self._namespace_exists()
        pods, pvcs, skipped, others = [], [], [], set()
        if namespace_exists:
            pods = self._pods()
            try:
                items = self.k8s.core.list_namespaced_persistent_volume_claim(self.ns).items
            except ApiException as e:
                self.fail("cannot list PVCs in %s: %s" % (self.ns, api_error_text(e)))
            for pvc in items:
                ours, mismatch = is_our_pvc(pvc.metadata.name, pvc.metadata.labels or {}, pattern, selector)
                if ours:
                    pvcs.append(pvc)
                else:
                    others.add(pvc.metadata.name)
                    if mismatch:
                        skipped.append(pvc.metadata.name)
        pvs = self._pvs(pattern, others, pvcs)
        return dict(sts=sts, pods=sorted(pods), pvcs=sorted(pvcs, key=lambda c: c.metadata.name),
                    skipped=sorted(skipped), pvs=pvs, namespace_exists=namespace_exists)

    def _namespace_exists(self):
        try:
            self.k8s.core.read_namespace(self.ns)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            if e.status == 403:
                return True  # may not read namespaces; assume it is there
            self.fail("cannot read namespace %s: %s" % (self.ns, api_error_text(e)))

    def _pods(self):
        try:
            items = self.k8s.core.list_namespaced_pod(self.ns).items
        except ApiException as e:
            self.fail("cannot list pods in %s: %s" % (self.ns, api_error_text(e)))
        return [pod.metadata.name for pod in items
                if pod_ordinal(pod.metadata.name, self.name) is not None
                and owned_by(pod, "StatefulSet", self.name)]

    def _pvs(self, pattern, others, pvcs):
        """PVs bound to our PVCs, or released ones still claiming a PVC name of ours
        that no other PVC holds now."""
        if pattern is None:
            return []
        bound = dict((c.spec.volume_name, c.metadata.name) for c in pvcs if c.spec and c.spec.volume_name)
        try:
            items = self.k8s.core.list_persistent_volume().items
        except ApiException as e:
            self.fail("cannot list PVs: %s" % api_error_text(e))
        out = []
        for pv in items:
            ref = pv.spec.claim_ref
            claim = None
            if (ref is not None and ref.namespace == self.ns and ref.name and pattern.match(ref.name)
                    and ref.name not in others):
                claim = ref.name
            elif pv.metadata.name in bound and ref is not None and ref.namespace == self.ns:
                claim = bound[pv.metadata.name]
            if claim is None:
                continue
            out.append(dict(name=pv.metadata.name, claim=claim,
                            reclaim_policy=pv.spec.persistent_volume_reclaim_policy or "Delete",
                            phase=pv.status.phase if pv.status else None))
        return sorted(out, key=lambda v: v["name"])

    # -- acting -------------------------------------------------------
    def _wait_gone(self, what, remaining):
        done, left, dummy = wait_until(
            lambda: (not remaining(), remaining()), self.p["wait_timeout"], sleep=self.p["wait_sleep"])
        if not done:
            self.fail("%s still present after %ss: %s" % (what, self.p["wait_timeout"], ", ".join(left)),
                      **self.result)

    def run(self, plan):
        core, apps = self.k8s.core, self.k8s.apps
        if plan["sts"] is not None:
            try:
                apps.delete_namespaced_stateful_set(self.name, self.ns, propagation_policy="Background")
            except ApiException as e:
                if e.status != 404:
                    self.fail("cannot delete StatefulSet %s/%s: %s" % (self.ns, self.name, api_error_text(e)))
            self._wait_gone("StatefulSet %s/%s" % (self.ns, self.name),
                            lambda: [self.name] if self.k8s.read_statefulset(self.name, self.ns) else [])
        if plan["pods"] or plan["sts"] is not None:
            self._wait_gone("pods of %s/%s" % (self.ns, self.name),
                            lambda: self._pods() if self._namespace_exists() else [])
        pvc_names = [c.metadata.name for c in plan["pvcs"]]
        for name in pvc_names:
            try:
                core.delete_namespaced_persistent_volume_claim(name, self.ns)
            except ApiException as e:
                if e.status != 404:
                    self.fail("cannot delete PVC %s/%s: %s" % (self.ns, name, api_error_text(e)), **self.result)
        if pvc_names:
            self._wait_gone("PVCs in %s" % self.ns, lambda: self._existing_pvcs(pvc_names))
        to_delete = [v for v in plan["pvs"] if v["reclaim_policy"] != "Delete" and self.p["delete_retained_pvs"]]
        for pv in to_delete:
            try:
                core.delete_persistent_volume(pv["name"])
            except ApiException as e:
                if e.status != 404:
                    self.fail("cannot delete PV %s: %s" % (pv["name"], api_error_text(e)), **self.result)
        waited = [v["name"] for v in self.result["pvs"]]
        if waited:
            self._wait_gone("PVs (reclaim policy Delete: is their provisioner running?)",
                            lambda: self._existing_pvs(waited))
        if self.result["namespace_deleted"]:
            try:
                core.delete_namespace(self.ns)
            except ApiException as e:
                if e.status != 404:
                    self.fail("cannot delete namespace %s: %s" % (self.ns, api_error_text(e)), **self.result)
            self._wait_gone("namespace", lambda: [self.ns] if self._namespace_exists() else [])

    def _existing_pvcs(self, names):
        items = self.k8s.core.list_namespaced_persistent_volume_claim(self.ns).items
        return sorted(c.metadata.name for c in items if c.metadata.name in names)

    def _existing_pvs(self, names):
        items = self.k8s.core.list_persistent_volume().items
        return sorted(v.metadata.name for v in items if v.metadata.name in names)


def pv_view(pvs):
    return [dict(name=v["name"], claim=v["claim"], reclaim_policy=v["reclaim_policy"]) for v in pvs]


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if KUBERNETES_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    p = module.params
    if not p["confirm"] and not module.check_mode:
        module.fail_json(msg="statefulset_teardown deletes StatefulSet %s/%s with its PVCs and PVs: "
                             "set confirm=true to proceed (check mode shows what would go)"
                             % (p["namespace"], p["name"]))
    if p["delete_namespace"] and p["namespace"] in PROTECTED_NAMESPACES:
        module.fail_json(msg="refusing to delete namespace %s" % p["namespace"])
    start = time.monotonic()
    try:
        k8s = K8s(p)
    except K8sError as e:
        module.fail_json(msg=str(e))
    td = Teardown(module, k8s)
    plan = td.plan()
    delete_pvs = [v for v in plan["pvs"] if v["reclaim_policy"] == "Delete" or p["delete_retained_pvs"]]
    retained = [v for v in plan["pvs"] if v not in delete_pvs]
    namespace_deleted = bool(p["delete_namespace"] and plan["namespace_exists"])
    td.result = result = dict(
        changed=bool(plan["sts"] is not None or plan["pods"] or plan["pvcs"] or delete_pvs or namespace_deleted),
        statefulset=p["name"] if plan["sts"] is not None else None,
        pods=plan["pods"],
        pvcs=[c.metadata.name for c in plan["pvcs"]],
        pvs=pv_view(delete_pvs),
        retained_pvs=pv_view(retained),
        skipped_pvcs=plan["skipped"],
        namespace_deleted=namespace_deleted,
    )
    if module._diff:
        before = dict(statefulset=result["statefulset"], pods=result["pods"], pvcs=result["pvcs"],
                      pvs=sorted(v["name"] for v in plan["pvs"]),
                      namespace=p["namespace"] if plan["namespace_exists"] else None)
        after = dict(statefulset=None, pods=[], pvcs=[], pvs=sorted(v["name"] for v in retained),
                     namespace=None if namespace_deleted or not plan["namespace_exists"] else p["namespace"])
        result["diff"] = dict(before=before, after=after)
    if result["changed"] and not module.check_mode:
        try:
            td.run(plan)
        except ApiException as e:
            module.fail_json(msg="Kubernetes API error: %s" % api_error_text(e), **result)
    k8s.close()
    result["elapsed"] = round(time.monotonic() - start, 3)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
