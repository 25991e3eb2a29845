#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ceph_client_key
short_description: Create a Ceph client with given caps, update its caps, return its key, or delete it
version_added: 0.1.0
description:
  - Creates a cephx entity (normally C(client.<name>)) with the given capabilities
    (C(ceph auth get-or-create)), replaces its capabilities when they differ (C(ceph auth caps)),
    or deletes it (C(ceph auth del)).
  - Returns the entity's key, read from C(ceph auth get <entity> --format json); the key never appears on a
    command line. The key is secret, so register the result only in a task with C(no_log=true).
  - The capabilities are compared with Ceph's as strings, per service, after trimming spaces.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.ceph
attributes:
  check_mode:
    support: full
    description: Computes and reports the change without running any command that writes. A client that does not exist yet has no key in check mode.
  diff_mode:
    support: full
    description: Shows the caps before and after (never the key).
  idempotent:
    support: full
    description: A second run with the same caps changes nothing.
options:
  name:
    description:
      - The entity, e.g. C(client.kube). A name without a type (C(kube)) means C(client.kube).
    type: str
    required: true
  state:
    description:
      - C(present) creates the entity or sets its caps, C(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  caps:
    description:
      - Capabilities per service (C(mon), C(osd), C(mgr), C(mds)), each a Ceph cap string.
      - Required with I(state=present). The entity gets exactly these caps; services not listed lose theirs.
      - Ceph checks the grammar; a cap that does not parse fails the task and changes nothing.
    type: dict
seealso:
  - module: stateful.mysql.ceph_pool
  - name: Ceph user management
    link: https://docs.ceph.com/en/latest/rados/operations/user-management/
    description: Ceph users (entities), their keys and capabilities.
"""

EXAMPLES = r"""
- name: A client that may only use RBD images in pool kube
  stateful.mysql.ceph_client_key:
    name: client.kube
    caps:
      mon: profile rbd
      osd: profile rbd pool=kube
      mgr: profile rbd pool=kube
  register: kube_client
  no_log: true

- name: Remove it
  stateful.mysql.ceph_client_key:
    name: client.kube
    state: absent
"""

RETURN = r"""
entity:
  description: The entity name.
  returned: always
  type: str
  sample: client.kube
key:
  description:
    - The entity's cephx key. Secret; register it only in a task with C(no_log).
    - Null when absent, and in check mode for an entity that does not exist yet.
  returned: always
  type: str
caps:
  description: The entity's caps after the run (as they would be, in check mode); empty when absent.
  returned: always
  type: dict
  sample: {"mon": "profile rbd", "osd": "profile rbd pool=kube"}
commands:
  description: The ceph commands run; keys never appear in them.
  returned: always
  type: list
  elements: str
"""

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stateful.mysql.plugins.module_utils.ceph import (
    CEPH_COMMON_ARGS,
    ENTITY_RE,
    CephCLI,
    CephError,
    entity_name,
    fail,
)

SERVICES = ("mon", "osd", "mgr", "mds")


def read_entity(cli, entity):
    rc, data, err = cli.ceph("auth", "get", entity, check=False)
    if rc != 0:
        if rc == 2 or "ENOENT" in err or "failed to find" in err:
            return None
        raise CephError(cli.explain(cli.classify(rc, err), "ceph auth get %s" % entity, rc, err),
                        cmd="ceph auth get %s" % entity, rc=rc, stderr=err, kind=cli.classify(rc, err))
    for item in data or []:
        if item.get("entity") == entity:
            return {"key": item.get("key"), "caps": dict(item.get("caps") or {})}
    return None


def normalize_caps(module, caps):
    if caps is None:
        module.fail_json(msg="caps is required with state=present: give e.g. "
                             "{mon: 'profile rbd', osd: 'profile rbd pool=POOL'}", kind="argument")
    out = {}
    for svc, cap in caps.items():
        if svc not in SERVICES:
            module.fail_json(msg="caps: unknown service %r; use %s" % (svc, ", ".join(SERVICES)), kind="argument")
        if not isinstance(cap, str) or not cap.strip():
            module.fail_json(msg="caps.%s must be a non-empty cap string such as 'profile rbd', got %r" % (svc, cap),
                             kind="argument")
        if any(ch in cap for ch in "\n\r\0"):
            module.fail_json(msg="caps.%s contains a line break or NUL" % svc, kind="argument")
        out[svc] = " ".join(cap.split())
    if not out:
        module.fail_json(msg="caps is empty: give at least one service's caps", kind="argument")
    return out


def cap_args(caps):
    args = []
    for svc in SERVICES:
        if svc in caps:
            args += [svc, caps[svc]]
    return args


def main():
    argument_spec = copy.deepcopy(CEPH_COMMON_ARGS)
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        caps=dict(type="dict"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    entity = entity_name(p["name"])
    if not ENTITY_RE.match(entity):
        module.fail_json(msg="bad entity name %r: use client.NAME with letters, digits, '_', '.', '-'" % p["name"],
                         kind="argument")
    caps = normalize_caps(module, p["caps"]) if p["state"] == "present" else None
    me = entity_name(p["user"])
    if entity == me:
        module.fail_json(msg="refusing to manage %s: it is the entity this module authenticates as (option user); "
                             "a client that changes or deletes itself locks the play out" % entity, kind="argument")

    cli = CephCLI(module)
    planned = []
    done = []
    try:
        cli.preflight()
        before = read_entity(cli, entity)
        after_caps = {}
        key = None
        if p["state"] == "absent":
            if before is not None:
                planned.append(["auth", "del", entity])
        else:
            after_caps = caps
            if before is None:
                planned.append(["auth", "get-or-create", entity] + cap_args(caps))
            else:
                key = before["key"]
                current = dict((k, " ".join(v.split())) for k, v in before["caps"].items())
                if current != caps:
                    planned.append(["auth", "caps", entity] + cap_args(caps))
        changed = bool(planned)
        if changed and not module.check_mode:
            for args in planned:
                cli.run(args, json_out=False)
                done.append(args)
            if p["state"] == "present":
                now = read_entity(cli, entity)
                if now is None:
                    raise CephError("%s was created but `ceph auth get` does not find it" % entity, kind="error")
                key, after_caps = now["key"], now["caps"]
        elif changed:
            cli.commands.extend("ceph %s (check mode: not run)" % " ".join(a) for a in planned)
    except CephError as e:
        if e.kind == "invalid" and "capability parse failed" in (e.stderr or ""):
            e.msg = ("Ceph could not parse the caps for %s: %s; nothing was changed"
                     % (entity, e.stderr.strip().splitlines()[-1]))
        fail(module, e, commands=cli.commands, changed=bool(done), entity=entity)
        return

    result = dict(changed=changed, entity=entity, key=key, caps=after_caps, commands=cli.commands)
    if module._diff:
        result["diff"] = dict(before={"entity": entity, "caps": before["caps"]} if before else {},
                              after={"entity": entity, "caps": after_caps} if p["state"] == "present" else {},
                              before_header=entity, after_header=entity)
    # The key is returned only under the name `key`; never in commands or diff.
    module.exit_json(**result)


if __name__ == "__main__":
    main()
