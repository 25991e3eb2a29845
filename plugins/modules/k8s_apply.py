#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done by the action plugin plugins/action/k8s_apply.py, which
# runs kubernetes.core.k8s once; this file holds its documentation.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_apply
short_description: Apply many Kubernetes objects in one kubernetes.core.k8s run, showing each object's diff
description:
  - Runs M(kubernetes.core.k8s) once with every object of O(definitions) (server-side C(apply) for
    O(state=present)), in their order - one module start instead of one per object.
  - With C(--diff), each changed object's diff is shown under its kind and name, as the task's own
    diff (kubernetes.core.k8s keeps them in C(result.results[].diff), which the callbacks do not print).
  - C(--check) is kubernetes.core.k8s's - a server-side dry run of each object.
version_added: 0.1.0
author:
  - stateful.mysql developers (@stateful-mysql)
requirements:
  - kubernetes.core
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
options:
  definitions:
    description: The objects, in the order they are applied (a Namespace before what lives in it).
    type: list
    elements: dict
    required: true
  state:
    description: C(present) applies them, C(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
  replace:
    description:
      - With O(state=present), create each missing object and replace (PUT) each existing one with
        its definition, instead of applying it.
      - For Secrets - C(apply) keeps a copy of the whole object, data included, in the annotation
        C(kubectl.kubernetes.io/last-applied-configuration), which C(kubectl describe) prints; a
        replace keeps no copy and removes one left by an earlier apply.
      - Labels and annotations not in the definition are removed.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: kubernetes.core.k8s in check mode - a server-side dry run of each object.
  diff_mode:
    support: full
    description: Each changed object's diff, under its kind and name.
"""

EXAMPLES = r"""
- name: Apply the ConfigMaps and the StatefulSet
  stateful.mysql.k8s_apply:
    definitions:
      - "{{ lookup('ansible.builtin.template', 'configmap.yaml.j2') | from_yaml }}"
      - "{{ lookup('ansible.builtin.template', 'statefulset.yaml.j2') | from_yaml }}"

- name: Write a Secret without a copy of its data in an annotation
  stateful.mysql.k8s_apply:
    replace: true
    definitions:
      - "{{ lookup('ansible.builtin.template', 'secret.yaml.j2') | from_yaml }}"
  no_log: true
"""

RETURN = r"""
objects:
  description: Each object, whether it changed, and how (C(apply), C(create), C(replace), C(delete)).
  type: list
  elements: dict
  returned: always
  sample: [{"object": "StatefulSet mysql/mysql", "changed": true, "method": "apply"}]
"""
