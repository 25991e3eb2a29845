# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.secrets_to_write: the Secrets whose data the API does not
hold yet, so that a converged rerun writes none (each write is a module start)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: secrets_to_write
short_description: The Secrets whose data differs from the live ones
description:
  - Keeps each Secret of the input whose C(data) differs from the live data of the Secret of the same
    name (or that does not exist), and each one named in O(rewrite). Labels and annotations are not compared.
options:
  _input:
    description: Secret manifests (dicts with C(metadata.name) and C(data), base64 as the API holds it).
    type: list
    elements: dict
    required: true
  live:
    description: The live Secrets' data by name, null for a missing one (stateful.mysql.cluster_live's C(secrets)).
    type: dict
    required: true
  rewrite:
    description: Names of Secrets to write even when their data is the same (one whose annotations hold a copy of it).
    type: list
    elements: str
    default: []
"""

EXAMPLES = """
- name: Write only what changed
  kubernetes.core.k8s:
    definition: "{{ secrets | stateful.mysql.secrets_to_write(live.secrets) }}"
  no_log: true
"""

RETURN = """
_value:
  description: The Secrets to write, in their order.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError


def secrets_to_write(secrets, live, rewrite=()):
    if not isinstance(secrets, list) or not isinstance(live, dict):
        raise AnsibleFilterError("secrets_to_write: expected a list of Secrets and a dict of live data")
    out = []
    for secret in secrets:
        name = (secret.get("metadata") or {}).get("name")
        if live.get(name) != (secret.get("data") or {}) or name in (rewrite or ()):
            out.append(secret)
    return out


class FilterModule(object):
    def filters(self):
        return {"secrets_to_write": secrets_to_write}
