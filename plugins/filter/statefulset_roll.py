# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.statefulset_roll_plan and stateful.mysql.upgrade_path: how a
changed pod template reaches a live cluster (one pod at a time, replicas
first, the primary last: tasks/roll.yml), and which server versions a
version change may step through."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: statefulset_roll_plan
short_description: Whether a rendered StatefulSet rolls its pods, and the manifest that holds the roll
description:
  - Hashes the rendered pod template and records the hash in the StatefulSet's annotation
    C(stateful.mysql/template-hash).
  - On a live StatefulSet whose recorded hash differs, or whose roll stopped half-way (partition above 0),
    sets C(spec.updateStrategy.rollingUpdate.partition) so that no pod rolls when the manifest is applied;
    the role then lowers it one ordinal at a time (stateful.mysql.statefulset_roll).
  - Otherwise the partition is 0.
options:
  _input:
    description: The rendered StatefulSet (a dict).
    type: dict
    required: true
  live:
    description: The live StatefulSet as the API returns it, or an empty dict.
    type: dict
    required: true
  replicas:
    description: The replica count applied.
    type: int
    required: true
  wait:
    description: Whether the run waits; without waiting the StatefulSet controller rolls on its own (partition 0).
    type: bool
    default: true
"""

EXAMPLES = """
- name: Plan
  ansible.builtin.set_fact:
    plan: "{{ lookup('template', 'statefulset.yaml.j2') | from_yaml | stateful.mysql.statefulset_roll_plan(live, 3) }}"
"""

RETURN = """
_value:
  description: C(manifest), C(roll) (bool), C(partition) and C(ordinals) (highest first, to roll in that order).
  type: dict
"""

import copy
import hashlib
import json

from ansible.errors import AnsibleFilterError

HASH_ANNOTATION = "stateful.mysql/template-hash"


def _partition(live):
    strategy = (live.get("spec") or {}).get("updateStrategy") or {}
    return int((strategy.get("rollingUpdate") or {}).get("partition") or 0)


def statefulset_roll_plan(rendered, live, replicas, wait=True):
    if not isinstance(rendered, dict) or "template" not in (rendered.get("spec") or {}):
        raise AnsibleFilterError("statefulset_roll_plan: expected a rendered StatefulSet")
    live = live or {}
    template_hash = hashlib.sha256(json.dumps(rendered["spec"]["template"], sort_keys=True).encode()).hexdigest()
    live_hash = ((live.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    stopped_at = _partition(live) if live else 0
    roll = bool(live) and bool(wait) and (live_hash != template_hash or stopped_at > 0)
    # A roll that stopped resumes where it stopped; a new one starts above
    # every pod (a scale-up in the same run gets the old template first, and
    # copies from a peer of its own version, then rolls with the others).
    # A resumed roll checks the pod it stopped at first.
    partition = (stopped_at or int(replicas)) if roll else 0
    first = min(stopped_at, int(replicas) - 1) if stopped_at else partition - 1
    manifest = copy.deepcopy(rendered)
    manifest.setdefault("metadata", {}).setdefault("annotations", {})[HASH_ANNOTATION] = template_hash
    manifest["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    return dict(manifest=manifest, roll=roll, partition=partition, resumed=roll and stopped_at > 0,
                ordinals=list(range(first, -1, -1)) if roll else [])


def upgrade_path(versions, start, goal):
    """The shortest chain of versions from ``start`` to ``goal`` through each
    row's ``upgrade_from`` (``versions``: one flavor's rows), ``start`` and
    ``goal`` included; [] when there is none."""
    start, goal = str(start), str(goal)
    if start == goal:
        return [start]
    paths = [[start]]
    seen = {start}
    while paths:
        nxt = []
        for path in paths:
            for version, row in sorted(versions.items()):
                if version in seen or path[-1] not in [str(v) for v in (row or {}).get("upgrade_from", [])]:
                    continue
                if version == goal:
                    return path + [version]
                seen.add(version)
                nxt.append(path + [version])
        paths = nxt
    return []


class FilterModule(object):
    def filters(self):
        return {"statefulset_roll_plan": statefulset_roll_plan, "upgrade_path": upgrade_path}
