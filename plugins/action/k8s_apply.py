# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.k8s_apply: kubernetes.core.k8s applying many objects in one
module start, with each object's diff where the callbacks print it.

kubernetes.core.k8s given a list of definitions returns each object's diff in
result.results[].diff, which no callback shows; this action lifts them into
the task's own `diff`, one headed per object, so --check --diff reads as it did
when each object had its own task. The module's documentation is in
plugins/modules/k8s_apply.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# kubernetes.core's connection options, passed through when set.
_AUTH = ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key")


_HIDDEN = ("metadata.managedFields", "metadata.generation", "metadata.resourceVersion",
           "metadata.annotations[kubectl.kubernetes.io/last-applied-configuration]")


def object_label(obj):
    meta = obj.get("metadata") or {}
    name = meta.get("name", "?")
    if meta.get("namespace"):
        name = "%s/%s" % (meta["namespace"], name)
    return "%s %s" % (obj.get("kind", "?"), name)


def lift(definitions, module_result):
    """Per-object results and diffs of one kubernetes.core.k8s run."""
    if "results" in (module_result.get("result") or {}):
        results = module_result["result"]["results"]
    else:
        results = [module_result]
    objects, diffs = [], []
    for definition, res in zip(definitions, results):
        label = object_label(definition)
        objects.append(dict(object=label, changed=bool(res.get("changed")), method=res.get("method")))
        diff = res.get("diff")
        if res.get("changed") and isinstance(diff, dict) and "before" in diff:
            diffs.append(dict(diff, before_header=label, after_header=label))
    return objects, diffs


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("definitions", "state", "replace") + _AUTH)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        definitions = args.get("definitions") or []
        if not isinstance(definitions, list) or not all(isinstance(d, dict) for d in definitions):
            raise AnsibleActionFail("definitions must be a list of Kubernetes objects (dicts)")
        state = args.get("state", "present")
        if state not in ("present", "absent"):
            raise AnsibleActionFail("state must be present or absent, not %r" % (state,))
        result["objects"] = []
        if not definitions:
            return dict(result, changed=False)
        # The diff shows what the role writes, not the API server's bookkeeping.
        module_args = dict(definition=definitions, state=state, hidden_fields=list(_HIDDEN))
        try:
            replace = boolean(args.get("replace", False), strict=True)
        except TypeError:
            raise AnsibleActionFail("replace must be true or false, not %r" % (args.get("replace"),))
        if state == "present":
            # A replace keeps no last-applied copy of the object (a Secret's data).
            module_args["force" if replace else "apply"] = True
        for key in _AUTH:
            if args.get(key) is not None:
                module_args[key] = args[key]
        res = self._execute_module(module_name="kubernetes.core.k8s", module_args=module_args,
                                   task_vars=task_vars)
        if res.get("failed"):
            return dict(result, **res)
        objects, diffs = lift(definitions, res)
        result.update(changed=bool(res.get("changed")), objects=objects)
        if diffs:
            result["diff"] = diffs
        return result
