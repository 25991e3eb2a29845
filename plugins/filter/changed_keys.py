# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.changed_keys: which keys of one Secret's data another
changes, by name only, so that the values never leave a no_log task."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: changed_keys
short_description: The keys whose values differ between two Secrets' data
description:
  - Of O(keys), those that both O(_input) and O(other) hold with different values, sorted. A key either
    lacks is not a change.
options:
  _input:
    description: One Secret's data (key to base64 value, as the API holds it).
    type: dict
    required: true
  other:
    description: The other Secret's data.
    type: dict
    required: true
  keys:
    description: The keys to compare.
    type: list
    elements: str
    required: true
"""

EXAMPLES = """
- name: Note which passwords the user's Secret changes
  ansible.builtin.set_fact:
    changed: "{{ live.secrets['mysql-credentials'] | stateful.mysql.changed_keys(live.secrets['mine'], keys) }}"
  no_log: true
"""

RETURN = """
_value:
  description: The keys that differ.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def changed_keys(data, other, keys):
    if not isinstance(data, dict) or not isinstance(other, dict):
        raise AnsibleFilterError("changed_keys: expected two dicts of Secret data")
    return sorted(k for k in keys if k in data and k in other and data[k] != other[k])


class FilterModule(object):
    def filters(self):
        return {"changed_keys": changed_keys}
