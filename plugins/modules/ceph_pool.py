#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ceph_pool
short_description: Create, change or delete a replicated Ceph pool for RBD
version_added: 0.1.0
description:
  - Creates a replicated Ceph pool, sets its placement groups (a fixed C(pg_num) or the autoscaler),
    its replica C(size) and C(min_size), and enables an application on it.
  - For the application C(rbd) the pool is initialised once with C(rbd pool init), which also enables the
    application; a pool that already has the application is not initialised again.
  - Deletes a pool with I(state=absent); the monitors must allow it (C(mon_allow_pool_delete)).
  - Reads the pool with C(ceph osd pool ls detail --format json) and changes only what differs.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.ceph
attributes:
  check_mode:
    support: full
    description: Computes and reports the changes (and the commands it would run) without running any command that writes.
  diff_mode:
    support: full
    description: Shows the pool's settings before and after.
  idempotent:
    support: full
    description: A second run with the same options changes nothing.
options:
  name:
    description:
      - Name of the pool. Letters, digits, C(_), C(.) and C(-), not starting with C(.) or C(-), at most 100 characters.
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the pool, C(absent) deletes it with all its data.
    type: str
    choices: [present, absent]
    default: present
  pg_num:
    description:
      - Fixed number of placement groups (a power of two is advised).
      - Setting it turns the autoscaler off for this pool unless I(pg_autoscale_mode) says otherwise;
        it cannot be combined with I(pg_autoscale_mode=on).
      - Without it a new pool gets Ceph's default and an existing pool keeps its number.
    type: int
  pg_autoscale_mode:
    description:
      - The pool's placement group autoscaler mode. Without it a new pool gets the cluster's default.
    type: str
    choices: ['on', 'off', 'warn']
  size:
    description:
      - Number of replicas. A size of 1 needs C(mon_allow_pool_size_one) on the monitors.
    type: int
  min_size:
    description:
      - Minimum number of replicas that must be up for I/O.
    type: int
  application:
    description:
      - Application to enable on the pool.
    type: str
    default: rbd
  rbd_init:
    description:
      - For I(application=rbd), run C(rbd pool init) once, when the pool does not have the application yet.
      - When false, the application is enabled with C(ceph osd pool application enable).
    type: bool
    default: true
seealso:
  - module: stateful.mysql.ceph_client_key
  - name: Ceph pools
    link: https://docs.ceph.com/en/latest/rados/operations/pools/
    description: Creating, listing and tuning pools, and their placement groups and replicas.
"""

EXAMPLES = r"""
- name: RBD pool for Kubernetes volumes, three replicas, autoscaled
  stateful.mysql.ceph_pool:
    name: kube
    size: 3
    pg_autoscale_mode: "on"

- name: A test pool with one replica and 32 PGs
  stateful.mysql.ceph_pool:
    name: scratch
    size: 1
    pg_num: 32
    conf: /etc/ceph/ceph.conf
    keyring: /etc/ceph/ceph.client.admin.keyring

- name: Remove it
  stateful.mysql.ceph_pool:
    name: scratch
    state: absent
"""

RETURN = r"""
pool:
  description: The pool's settings after the run (as they would be in check mode); empty when absent.
  returned: always
  type: dict
  sample: {"name": "kube", "size": 1, "min_size": 1, "pg_num": 32, "pg_autoscale_mode": "off", "applications": ["rbd"]}
commands:
  description: The ceph/rbd commands run (in check mode, the ones that would change something are not run but listed).
  returned: always
  type: list
  elements: str
  sample: ["ceph osd pool ls detail", "ceph osd pool create kube 32", "rbd pool init kube"]
"""

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stateful.mysql.plugins.module_utils.ceph import (
    CEPH_COMMON_ARGS,
    POOL_NAME_RE,
    CephCLI,
    CephError,
    fail,
)


def read_pool(cli, name):
    _rc, pools, _err = cli.ceph("osd", "pool", "ls", "detail")
    for p in pools or []:
        if p.get("pool_name") == name:
            return {
                "name": name,
                "size": p.get("size"),
                "min_size": p.get("min_size"),
                "pg_num": p.get("pg_num_target", p.get("pg_num")),
                "pg_autoscale_mode": p.get("pg_autoscale_mode"),
                "applications": sorted((p.get("application_metadata") or {}).keys()),
            }
    return None


def validate(module):
    p = module.params
    name = p["name"]
    if not POOL_NAME_RE.match(name or ""):
        module.fail_json(
            msg="bad pool name %r: use letters, digits, '_', '.' and '-', starting with a letter or digit, "
                "at most 100 characters" % name, kind="argument")
    for opt in ("pg_num", "size", "min_size"):
        if p[opt] is not None and p[opt] < 1:
            module.fail_json(msg="%s must be at least 1, got %s" % (opt, p[opt]), kind="argument")
    if p["pg_num"] is not None and p["pg_autoscale_mode"] == "on":
        module.fail_json(msg="pg_num and pg_autoscale_mode=on contradict each other: the autoscaler would change "
                             "pg_num; give one of them", kind="argument")
    if p["size"] is not None and p["min_size"] is not None and p["min_size"] > p["size"]:
        module.fail_json(msg="min_size (%d) cannot be larger than size (%d)" % (p["min_size"], p["size"]),
                         kind="argument")
    if not p["application"] or not p["application"].replace("_", "").replace("-", "").isalnum():
        module.fail_json(msg="bad application name %r" % p["application"], kind="argument")


def main():
    argument_spec = copy.deepcopy(CEPH_COMMON_ARGS)
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        pg_num=dict(type="int"),
        pg_autoscale_mode=dict(type="str", choices=["on", "off", "warn"]),
        size=dict(type="int"),
        min_size=dict(type="int"),
        application=dict(type="str", default="rbd"),
        rbd_init=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    validate(module)
    p = module.params
    name = p["name"]
    cli = CephCLI(module)
    planned = []  # (tool, args) of the writes
    done = []  # the writes that ran

    try:
        cli.preflight()
        before = read_pool(cli, name)
        if p["state"] == "absent":
            after = None
            if before is not None:
                planned.append(("ceph", ["osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it"]))
        else:
            after = dict(before or {"name": name, "size": None, "min_size": None, "pg_num": None,
                                    "pg_autoscale_mode": None, "applications": []})
            mode = p["pg_autoscale_mode"]
            if mode is None and p["pg_num"] is not None:
                mode = "off"
            if before is None:
                create = ["osd", "pool", "create", name]
                if p["pg_num"] is not None:
                    create += [str(p["pg_num"]), str(p["pg_num"])]
                create += ["replicated"]
                if mode is not None:
                    create += ["--autoscale-mode", mode]
                planned.append(("ceph", create))
                if mode is not None:
                    after["pg_autoscale_mode"] = mode
                if p["pg_num"] is not None:
                    after["pg_num"] = p["pg_num"]
            else:
                if mode is not None and before["pg_autoscale_mode"] != mode:
                    planned.append(("ceph", ["osd", "pool", "set", name, "pg_autoscale_mode", mode]))
                    after["pg_autoscale_mode"] = mode
                if p["pg_num"] is not None and before["pg_num"] != p["pg_num"]:
                    planned.append(("ceph", ["osd", "pool", "set", name, "pg_num", str(p["pg_num"])]))
                    after["pg_num"] = p["pg_num"]
            # size before min_size when growing, min_size first when shrinking.
            size_cmds = []
            if p["size"] is not None and after["size"] != p["size"]:
                cmd = ("ceph", ["osd", "pool", "set", name, "size", str(p["size"]), "--yes-i-really-mean-it"])
                size_cmds.append(cmd)
                after["size"] = p["size"]
            if p["min_size"] is not None and after["min_size"] != p["min_size"]:
                cmd = ("ceph", ["osd", "pool", "set", name, "min_size", str(p["min_size"])])
                if before is not None and p["size"] is not None and p["size"] < before["size"]:
                    size_cmds.insert(0, cmd)
                else:
                    size_cmds.append(cmd)
                after["min_size"] = p["min_size"]
            planned.extend(size_cmds)
            app = p["application"]
            if app not in after["applications"]:
                if app == "rbd" and p["rbd_init"]:
                    planned.append(("rbd", ["pool", "init", name]))
                else:
                    planned.append(("ceph", ["osd", "pool", "application", "enable", name, app]))
                after["applications"] = sorted(after["applications"] + [app])

        changed = bool(planned)
        if changed and not module.check_mode:
            for tool, args in planned:
                cli.run(args, tool=tool, json_out=False)
                done.append(args)
            if after is not None:
                # What Ceph now says, filling in the defaults it chose.
                after = read_pool(cli, name)
        elif changed:
            cli.commands.extend("%s %s (check mode: not run)" % (t, " ".join(a)) for t, a in planned)
    except CephError as e:
        if e.kind == "not_found" and "pool" in (e.stderr or "").lower():
            e.msg += "; the pool may have been removed meanwhile"
        if "mon_allow_pool_delete" in (e.stderr or ""):
            e.msg = ("Ceph refused to delete pool %s: the monitors do not allow pool deletion; run "
                     "`ceph config set mon mon_allow_pool_delete true` first (and unset it after)" % name)
        fail(module, e, commands=cli.commands, changed=bool(done))
        return

    result = dict(changed=changed, pool=after or {}, commands=cli.commands)
    if module._diff:
        result["diff"] = dict(before=before or {}, after=after or {},
                              before_header="pool %s" % name, after_header="pool %s" % name)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
