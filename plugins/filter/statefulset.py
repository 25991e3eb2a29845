# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.statefulset_recreated: a live StatefulSet as a manifest to
create it again (after a delete with propagationPolicy Orphan, which keeps its
pods and volumes), with another pod management policy: a field the API
refuses to change in place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: statefulset_recreated
short_description: A live StatefulSet as a manifest to create it again
description:
  - Drops what the API server sets (status, uid, resourceVersion, generation, creationTimestamp,
    managedFields, ownerReferences) and sets C(spec.podManagementPolicy).
  - Its pods and volumes are adopted by the new StatefulSet when the old one was deleted with
    C(propagationPolicy=Orphan).
options:
  _input:
    description: The StatefulSet as the API returns it (a dict).
    type: dict
    required: true
  policy:
    description: The pod management policy of the new StatefulSet.
    type: str
    choices: [OrderedReady, Parallel]
    required: true
"""

EXAMPLES = """
- name: Recreate as Parallel
  kubernetes.core.k8s:
    definition: "{{ live | stateful.mysql.statefulset_recreated('Parallel') }}"
"""

RETURN = """
_value:
  description: The manifest.
  type: dict
"""

import copy

from ansible.errors import AnsibleFilterError

_SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "ownerReferences",
               "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def statefulset_recreated(live, policy):
    if not isinstance(live, dict) or live.get("kind", "StatefulSet") != "StatefulSet" or "spec" not in live:
        raise AnsibleFilterError("statefulset_recreated: expected a StatefulSet as the API returns it")
    if policy not in ("OrderedReady", "Parallel"):
        raise AnsibleFilterError("statefulset_recreated: policy must be OrderedReady or Parallel, not %r" % (policy,))
    out = copy.deepcopy(live)
    out.pop("status", None)
    out["apiVersion"], out["kind"] = "apps/v1", "StatefulSet"
    meta = out.setdefault("metadata", {})
    for key in _SERVER_SET:
        meta.pop(key, None)
    out["spec"]["podManagementPolicy"] = policy
    return out


class FilterModule(object):
    def filters(self):
        return {"statefulset_recreated": statefulset_recreated}
