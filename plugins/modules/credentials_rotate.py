#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: credentials_rotate
short_description: Change the passwords of a StatefulSet's servers without a moment when a login fails
version_added: 0.2.0
description:
  - Rotates the root, replication and clone passwords kept in the cluster's credentials Secret, on every
    server of the StatefulSet, with no pod restart and no moment when a probe, a copy or replication
    cannot log in.
  - Every server first accepts the new password as well as the old one (MySQL 8.0.14+
    C(RETAIN CURRENT PASSWORD); MariaDB an authentication chain of both). Then the Secret holds the new
    passwords; each pod's option files are rewritten from its mounted copy once the kubelet has updated it
    (C(credentials.sh) in the pod, told the expected values' SHA-256 on stdin); every replica's stored
    replication password is changed (its IO thread stopped and started, MariaDB both threads); then every
    server forgets the old password.
  - The statements run with C(sql_log_bin=0) on each server, so that no password or hash reaches a
    binary log. On a MySQL replica, C(super_read_only) is lifted for these statements only, and set again;
    on MariaDB they run as C(root@localhost) in the pod (C(credentials.sh sql), text on stdin), whose
    C(READ_ONLY ADMIN) passes C(read_only), which stays on.
  - Each step is written to the Secret first (C(rotation-next-*), C(rotation-previous-*) keys), so a run
    stopped anywhere is finished by the next one, with the passwords it chose.
  - Refuses, changing nothing, unless every pod of the StatefulSet is Ready.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reports what a rotation would change, changing nothing.
  diff_mode:
    support: none
    description: No diff is produced (the values are secret).
  idempotent:
    support: none
    description: Every run without an unfinished rotation chooses new passwords.
options:
  name:
    description: The StatefulSet.
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    default: default
  secret:
    description: The credentials Secret the pods mount; V(<name>-credentials) when unset.
    type: str
  keys:
    description:
      - The passwords to change. An unfinished rotation is finished with its own keys first.
    type: list
    elements: str
    choices: [root-password, replication-password, clone-password]
    default: [root-password, replication-password, clone-password]
  new_passwords:
    description:
      - New values by key, instead of generated ones (32 letters and digits).
    type: dict
  source_secret:
    description:
      - A Secret the user manages (External Secrets, Vault, by hand) that holds the passwords to use. The keys
        of O(keys) whose values differ from those of O(secret) are rotated to its values; nothing changes when
        none differs. Mutually exclusive with O(new_passwords).
    type: str
  replication_user:
    description: The account replicas log in with.
    type: str
    default: repl
  donor_user:
    description: The account copies are taken with.
    type: str
    default: donor
  connect_timeout:
    description: Seconds for a server to answer.
    type: int
    default: 10
  refresh_timeout:
    description: Seconds to wait for the kubelet to update a pod's mounted Secret.
    type: int
    default: 180
requirements:
  - kubernetes >= 24.2.0 (Python library)
  - PyMySQL >= 1.0 (Python library)
notes:
  - MySQL before 8.0.14 has no dual passwords and is refused.
seealso:
  - module: stateful.mysql.replication_status
"""

EXAMPLES = r"""
- name: Change every password of cluster mysql
  stateful.mysql.credentials_rotate:
    name: mysql
    namespace: db

- name: Change the replication password only
  stateful.mysql.credentials_rotate:
    name: mysql
    namespace: db
    keys: [replication-password]
"""

RETURN = r"""
rotated:
  description: The passwords changed (or that would be, in check mode), by Secret key.
  returned: always
  type: list
  elements: str
  sample: ["root-password", "replication-password", "clone-password"]
resumed:
  description: The step an unfinished rotation was at, or V(idle).
  returned: always
  type: str
  sample: idle
accounts:
  description: The accounts changed on every server.
  returned: always
  type: list
  elements: str
  sample: ["root@%", "root@localhost", "repl@%", "donor@localhost"]
servers:
  description: The pods whose servers and option files were changed.
  returned: always
  type: list
  elements: str
  sample: ["mysql-0", "mysql-1"]
refresh_seconds:
  description: Per pod, seconds until its mounted Secret showed the new passwords.
  returned: when the Secret was switched
  type: dict
  sample: {"mysql-0": 41.2}
old_refused:
  description: Whether root's old password was refused by every server afterwards (root rotated only).
  returned: when root-password was rotated
  type: bool
elapsed:
  description: Seconds the rotation took, from a monotonic clock.
  returned: always
  type: float
queries:
  description: The statements run, passwords masked.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.accounts import (
    SCRIPT, PodServers, ready_pods, run_module,
)
from ansible_collections.stateful.mysql.plugins.module_utils.args import K8S_AUTH_ARG_SPEC, merge_specs
from ansible_collections.stateful.mysql.plugins.module_utils.connection import (
    PYMYSQL_IMPORT_ERROR, ConnectError, exec_in_pod,
)
from ansible_collections.stateful.mysql.plugins.module_utils.credentials import (
    ADDING, IDLE, PASSWORD_KEYS, SWITCHED, RotationError, account_users, discard_statements,
    dual_statements, generate_password, refresh_input, rotation_state, secret_data,
)
from ansible_collections.stateful.mysql.plugins.module_utils.k8s import ApiException, api_error_text
from ansible_collections.stateful.mysql.plugins.module_utils.sql import SLAVE_RUNNING_ERRNO, server_errno


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", default="default"),
        secret=dict(type="str", no_log=False),
        keys=dict(type="list", elements="str", choices=list(PASSWORD_KEYS), default=list(PASSWORD_KEYS),
                  no_log=False),
        new_passwords=dict(type="dict", no_log=True),
        source_secret=dict(type="str", no_log=False),
        replication_user=dict(type="str", default="repl"),
        donor_user=dict(type="str", default="donor"),
        connect_timeout=dict(type="int", default=10),
        refresh_timeout=dict(type="int", default=180),
    ))


class Rotation(PodServers):
    def __init__(self, module, k8s):
        super(Rotation, self).__init__(module, k8s)
        self.secret_name = self.p["secret"] or "%s-credentials" % self.p["name"]

    # -- the Secret ------------------------------------------------------
    def read_secret(self, name=None, missing_ok=False):
        return super(Rotation, self).read_secret(name or self.secret_name, missing_ok)

    def write_secret(self, obj, data):
        """Replace the Secret's data, failing when it changed since it was read."""
        try:
            return super(Rotation, self).write_secret(self.secret_name, data, obj)
        except ApiException as e:
            raise RotationError("cannot write Secret %s/%s (%s): run again to finish the rotation"
                                % (self.ns, self.secret_name, api_error_text(e)))

    def ready_pods(self):
        return ready_pods(self.k8s, self.p["name"], self.ns, "its passwords change")

    # -- the servers -----------------------------------------------------
    def accounts(self, conn, users):
        rows = conn.query("SELECT User, Host FROM mysql.user WHERE User IN (%s) ORDER BY User, Host"
                          % ", ".join(["%s"] * len(users)), tuple(users))
        found = [(r["User"], r["Host"]) for r in rows]
        for user in users:
            if user not in [account[0] for account in found]:
                raise RotationError("%s has no account %s" % (conn.target.name, user))
        return found

    def plugin(self, conn, user, host):
        if not conn.dialect.server.is_mariadb:
            return None
        return conn.scalar("SELECT JSON_VALUE(Priv, '$.plugin') FROM mysql.global_priv WHERE User=%s AND Host=%s",
                           (user, host))

    def on_every_account(self, conn, users, statements):
        """Run ``statements(user, host, plugin)`` for each account, unlogged
        (module_utils/accounts.py says how a read-only replica takes them)."""
        accounts = self.accounts(conn, users)
        planned = []
        for user, host in accounts:
            planned += statements(user, host, self.plugin(conn, user, host))
        self.runner.run(conn, planned)
        return ["%s@%s" % a for a in accounts]

    def repoint(self, conn, password):
        """A replica's stored replication password, changed between a stop and
        a start of its IO thread (MariaDB: of both threads)."""
        dialect = conn.dialect
        change, args = dialect.change_source_password(password)
        conn.execute(dialect.stop_replica("IO_THREAD"))
        try:
            conn.execute(change, args, secret_positions=(0,))
            conn.execute(dialect.start_replica("IO_THREAD"))
        except Exception as e:
            if server_errno(e) != SLAVE_RUNNING_ERRNO:
                conn.execute(dialect.start_replica("IO_THREAD"))
                raise
            conn.execute(dialect.stop_replica())
            conn.execute(change, args, secret_positions=(0,))
            conn.execute(dialect.start_replica())

    # -- the pods' option files ----------------------------------------------
    def refresh(self, pod_obj, data):
        """credentials.sh in each container that logs in: it waits for the
        kubelet's update of the mounted Secret, then rewrites the option files."""
        pod = pod_obj.metadata.name
        # A pod update makes the kubelet sync the pod now, remounting its
        # Secret volumes, instead of at its next periodic sync (up to a minute).
        self.k8s.core.patch_namespaced_pod(pod, self.ns, {"metadata": {"annotations": {
            "stateful.mysql/credentials-synced": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}})
        started = time.monotonic()
        containers = [c.name for c in pod_obj.spec.containers if c.name in ("mysql", "donor")]
        for container in containers:
            command = ["/bin/bash", SCRIPT, "refresh", str(self.p["refresh_timeout"])]
            rc, out, err = exec_in_pod(self.k8s.core, pod, self.ns, command, stdin_data=refresh_input(data),
                                       container=container, timeout=self.p["refresh_timeout"] + 30)
            if rc != 0:
                raise RotationError("%s (container %s): credentials.sh failed (%s): %s; both passwords still work,"
                                    " run again to finish" % (pod, container, rc, (err or out).strip()[-400:]))
        return round(time.monotonic() - started, 1)


def run(module, rot):
    p = module.params
    result = dict(changed=False, accounts=[], servers=[])
    obj, data = rot.read_secret()
    state, old, new = rotation_state(data, p["keys"])
    result["resumed"] = state
    pods = rot.ready_pods()
    names = [x.metadata.name for x in pods]
    if state == IDLE and p["source_secret"]:
        source = rot.read_secret(p["source_secret"])[1]
        new = dict((k, source[k]) for k in p["keys"] if source.get(k) and source[k] != old[k])
        old = dict((k, old[k]) for k in new)
        if not new:
            result.update(rotated=[], servers=names)
            return result
    elif state == IDLE:
        given = p["new_passwords"] or {}
        bad = sorted(set(given) - set(p["keys"]))
        if bad:
            raise RotationError("new_passwords has %s, which keys does not name" % ", ".join(bad))
        new = dict((k, given.get(k) or generate_password()) for k in p["keys"])
        for value in new.values():
            module.no_log_values.add(value)
        same = [k for k in new if new[k] == old[k]]
        if same:
            raise RotationError("the new %s is the one in use" % ", ".join(same))
    keys = sorted(new)
    result.update(rotated=keys, servers=names)
    if module.check_mode:
        result["changed"] = True
        return result
    users = account_users(keys, p["replication_user"], p["donor_user"])
    login = [data["root-password"]] + [v for v in (old.get("root-password"), new.get("root-password")) if v]
    if state == IDLE:
        obj = rot.write_secret(obj, secret_data(data, ADDING, old, new))
        state = ADDING
    result["changed"] = True
    accounts = set()
    if state == ADDING:
        for pod in names:
            conn = rot.connection(pod, login)
            accounts.update(rot.on_every_account(
                conn, sorted(set(users.values())),
                lambda u, h, plugin, c=conn: dual_statements(c.dialect, u, h, old[_key(users, u)],
                                                             new[_key(users, u)], plugin)))
        obj = rot.write_secret(obj, secret_data(data, SWITCHED, old, new))
        state = SWITCHED
    current = secret_data(data, IDLE, {}, new)
    result["refresh_seconds"] = dict((x.metadata.name, rot.refresh(x, current)) for x in pods)
    if "replication-password" in new:
        for pod in names[1:]:
            rot.repoint(rot.connection(pod, login), new["replication-password"])
    for pod in names:
        conn = rot.connection(pod, login)
        accounts.update(rot.on_every_account(
            conn, sorted(set(users.values())),
            lambda u, h, plugin, c=conn: discard_statements(c.dialect, u, h, new[_key(users, u)], plugin)))
    rot.write_secret(obj, secret_data(data, IDLE, old, new))
    result["accounts"] = sorted(accounts)
    if "root-password" in new:
        result["old_refused"] = all(_refused(rot, pod, old["root-password"]) for pod in names)
        for pod in names:
            rot.conns.pop(pod).close()
            rot.connection(pod, [new["root-password"]])
    return result


def _key(users, user):
    """The password key of an account name (root, repl, donor)."""
    for key, name in users.items():
        if name == user:
            return key
    raise RotationError("no password for account %s" % user)


def _refused(rot, pod, password):
    try:
        rot.login(pod, password).close()
    except ConnectError as e:
        return str(e).startswith("error 1045")
    return False


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[("new_passwords", "source_secret")])
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    run_module(module, Rotation, run, failure_hint="; run again to finish the rotation")


if __name__ == "__main__":
    main()
