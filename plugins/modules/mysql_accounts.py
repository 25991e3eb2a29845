#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mysql_accounts
short_description: Application databases and users on every server of a StatefulSet, with no password in a binary log
version_added: 0.2.0
description:
  - Creates the O(databases) on the primary (the statement replicates), and on every server makes each of the
    O(users) exist with its password (read from a Secret), its host pattern, C(REQUIRE SSL) unless told
    otherwise, and exactly the privileges listed.
  - Account statements carry passwords, so they run on each server with C(sql_log_bin=0) instead of
    replicating (module_utils/accounts.py says how a read-only replica takes them). A replica copied later
    gets the accounts with the data.
  - The passwords applied are kept in the Secret O(applied_secret), which the pods do not mount, so that a
    password changed in its Secret is set again, and a run with nothing changed changes nothing.
  - Refuses, before any change, an account the cluster itself uses (O(reserved_users), the servers' own) and
    a cluster whose pods are not all Ready.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
attributes:
  check_mode:
    support: full
    description: Says what would change, changing nothing.
  diff_mode:
    support: none
    description: No diff is produced.
  idempotent:
    support: full
    description: A second run with the same input changes nothing.
options:
  name:
    description: The StatefulSet.
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    default: default
  databases:
    description: Databases to create when missing (never dropped).
    type: list
    elements: str
    default: []
  users:
    description: The application accounts.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The user name.
        type: str
        required: true
      host:
        description: The host pattern it may connect from.
        type: str
        default: "%"
      password_secret:
        description: The Secret in O(namespace) holding its password.
        type: str
      password_key:
        description: The key of that Secret.
        type: str
        default: password
      privileges:
        description: C(DATABASE.TABLE:PRIV[,PRIV...]) entries, e.g. C(shop.*:SELECT,INSERT); nothing else is kept.
        type: list
        elements: str
        default: []
      require_ssl:
        description: Refuse its connections without TLS.
        type: bool
        default: true
      state:
        description: V(absent) drops the account on every server.
        type: str
        choices: [present, absent]
        default: present
  reserved_users:
    description: Accounts the cluster uses (root, its replication and clone users); refused as O(users).
    type: list
    elements: str
    default: [root]
  credentials_secret:
    description: The Secret with root's password (key C(root-password)); V(<name>-credentials) when unset.
    type: str
  applied_secret:
    description: The Secret that keeps the passwords applied; V(<name>-accounts) when unset.
    type: str
  labels:
    description: Labels of O(applied_secret) when it is created.
    type: dict
    default: {}
  root_host:
    description:
      - Root's TCP account made exactly C(root@<root_host>) on every server (C(root@localhost) stays). One
        missing is created with the root password of O(credentials_secret) and all privileges (on MariaDB
        without C(READ_ONLY ADMIN), so it cannot write on a replica), and every other C(root@<host>) is
        dropped, the new one made first.
      - Unset, root's accounts are left as they are.
    type: str
  replication_user:
    description:
      - With O(root_host), the cluster's replication user is also given what a new cluster grants it, so that
        peers and the verify read need not log in as root. That is C(REPLICATION CLIENT) (MariaDB C(BINLOG
        MONITOR, SLAVE MONITOR)) and C(SELECT) on C(stateful_verify).
    type: str
  connect_timeout:
    description: Seconds for a server to answer.
    type: int
    default: 10
requirements:
  - kubernetes >= 24.2.0 (Python library)
  - PyMySQL >= 1.0 (Python library)
seealso:
  - module: stateful.mysql.credentials_rotate
"""

EXAMPLES = r"""
- name: A database and its application user
  stateful.mysql.mysql_accounts:
    name: mysql
    namespace: db
    databases: [shop]
    users:
      - name: shop
        password_secret: shop-db
        privileges: ["shop.*:SELECT,INSERT,UPDATE,DELETE"]
"""

RETURN = r"""
created_databases:
  description: Databases created on the primary.
  returned: always
  type: list
  elements: str
changes:
  description: What changed, per server (C(pod user@host what)).
  returned: always
  type: list
  elements: str
  sample: ["mysql-0 shop@% created", "mysql-1 shop@% privileges"]
queries:
  description: The statements run, passwords masked.
  returned: always
  type: list
  elements: str
"""

import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.accounts import (
    IDENT, SYSTEM_DATABASES, SYSTEM_USERS, USER_NAME, AccountError, PodServers, grant_statements, granted,
    parse_privileges, ready_pods, run_module,
)
from ansible_collections.stateful.mysql.plugins.module_utils.args import K8S_AUTH_ARG_SPEC, merge_specs
from ansible_collections.stateful.mysql.plugins.module_utils.connection import PYMYSQL_IMPORT_ERROR


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", default="default"),
        databases=dict(type="list", elements="str", default=[]),
        users=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            host=dict(type="str", default="%"),
            password_secret=dict(type="str", no_log=False),
            password_key=dict(type="str", default="password", no_log=False),
            privileges=dict(type="list", elements="str", default=[]),
            require_ssl=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        )),
        reserved_users=dict(type="list", elements="str", default=["root"]),
        credentials_secret=dict(type="str", no_log=False),
        applied_secret=dict(type="str", no_log=False),
        labels=dict(type="dict", default={}),
        root_host=dict(type="str"),
        replication_user=dict(type="str"),
        connect_timeout=dict(type="int", default=10),
    ))


def check_input(p):
    """Every refusal that needs no server, before anything changes."""
    host = p["root_host"]
    if host is not None and (not host or host.lower() == "localhost" or "'" in host or "\\" in host):
        raise AccountError("root_host %r: a host pattern other than localhost (root@localhost stays as it is)" % host)
    reserved = set(p["reserved_users"]) | set(SYSTEM_USERS)
    for db in p["databases"]:
        if not IDENT.match(db) or db in SYSTEM_DATABASES:
            raise AccountError("database %r: letters, digits and _ (at most 64), not one of the server's own (%s)"
                               % (db, ", ".join(SYSTEM_DATABASES)))
    seen = set()
    for u in p["users"]:
        if not USER_NAME.match(u["name"]):
            raise AccountError("user %r: letters, digits and _ (at most 32)" % u["name"])
        if u["name"] in reserved:
            raise AccountError("user %r is an account of the cluster itself (%s): it would shadow it; choose"
                               " another name" % (u["name"], ", ".join(sorted(reserved))))
        if not u["host"] or "'" in u["host"] or "\\" in u["host"]:
            raise AccountError("user %r: host %r is not a host pattern" % (u["name"], u["host"]))
        if (u["name"], u["host"]) in seen:
            raise AccountError("user %s@%s is listed twice" % (u["name"], u["host"]))
        seen.add((u["name"], u["host"]))
        if u["state"] == "present":
            if not u["password_secret"]:
                raise AccountError("user %r needs password_secret, the Secret holding its password" % u["name"])
            u["wanted"] = parse_privileges(u["privileges"])


class Accounts(PodServers):
    def password(self, user):
        obj, data = self.read_secret(user["password_secret"], missing_ok=True)
        if obj is None:
            raise AccountError("user %s: Secret %s/%s not found" % (user["name"], self.ns, user["password_secret"]))
        value = data.get(user["password_key"])
        if not value:
            raise AccountError("user %s: Secret %s/%s has no key %r (keys: %s)" % (
                user["name"], self.ns, user["password_secret"], user["password_key"], ", ".join(sorted(data))))
        if "\n" in value or "\x00" in value:
            raise AccountError("user %s: the password in Secret %s key %s holds a line break or NUL"
                               % (user["name"], user["password_secret"], user["password_key"]))
        return value

    def write_applied(self, obj, name, data):
        self.write_secret(name, data, obj, labels=self.p["labels"])


def plan_user(conn, user, password, applied):
    """``(statements, what)`` that bring one account on one server to ``user``."""
    name, host = user["name"], user["host"]
    row = conn.query("SELECT ssl_type FROM mysql.user WHERE User=%s AND Host=%s", (name, host))
    if user["state"] == "absent":
        return ([("DROP USER %s@%s", (name, host))], ["dropped"]) if row else ([], [])
    ssl = " REQUIRE SSL" if user["require_ssl"] else " REQUIRE NONE"
    if not row:
        return ([("CREATE USER %%s@%%s IDENTIFIED BY %%s%s" % ssl, (name, host, password))]
                + grant_statements(name, host, user["wanted"], {}), ["created"])
    out, what = [], []
    if applied.get(name) != password:
        out.append(("ALTER USER %s@%s IDENTIFIED BY %s", (name, host, password)))
        what.append("password")
    ssl_type = row[0]["ssl_type"] or ""
    if isinstance(ssl_type, bytes):
        ssl_type = ssl_type.decode("ascii")
    if (ssl_type.upper() in ("ANY", "X509", "SPECIFIED")) != user["require_ssl"]:
        out.append(("ALTER USER %%s@%%s%s" % ssl, (name, host)))
        what.append("require_ssl")
    held = granted([list(r.values())[0] for r in conn.query("SHOW GRANTS FOR %s@%s", (name, host))])
    grants = grant_statements(name, host, user["wanted"], held)
    if grants:
        out += grants
        what.append("privileges")
    return out, what


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def replication_reads(is_mariadb):
    """What a new cluster grants its replication user besides REPLICATION SLAVE (init.sh create_users)."""
    return ("BINLOG MONITOR", "SLAVE MONITOR") if is_mariadb else ("REPLICATION CLIENT",)


def missing_reads(grants, is_mariadb):
    """The replication_reads privileges (and SELECT on stateful_verify) absent from SHOW GRANTS lines."""
    text = " ".join(_text(g) for g in grants).upper().replace("REPLICA MONITOR", "SLAVE MONITOR")
    missing = [priv for priv in replication_reads(is_mariadb) if priv not in text]
    verify = any(re.match(r"^GRANT .*\bSELECT\b.* ON `?STATEFUL_VERIFY`?\.\* TO ", _text(g).upper()) for g in grants)
    return missing, not verify


def plan_cluster_accounts(conn, root_host, root_password, repl_user):
    """``(statements, what)``: root's TCP account exactly root@root_host (the
    new one first), and the replication user's reads (see the options)."""
    mariadb = conn.dialect.server.is_mariadb
    hosts = [_text(r["Host"]) for r in conn.query("SELECT Host FROM mysql.user WHERE User = 'root'")]
    out, what = [], []
    if root_host not in hosts:
        out += [("CREATE USER %s@%s IDENTIFIED BY %s", ("root", root_host, root_password)),
                ("GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", ("root", root_host))]
        if mariadb:
            out.append(("REVOKE READ_ONLY ADMIN ON *.* FROM %s@%s", ("root", root_host)))
        what.append("root@%s created" % root_host)
    for host in hosts:
        if host not in ("localhost", root_host):
            out.append(("DROP USER %s@%s", ("root", host)))
            what.append("root@%s dropped" % host)
    if repl_user:
        grants = [list(r.values())[0] for r in conn.query("SHOW GRANTS FOR %s@%s", (repl_user, "%"))]
        missing, verify = missing_reads(grants, mariadb)
        if missing:
            out.append(("GRANT %s ON *.* TO %%s@%%s" % ", ".join(replication_reads(mariadb)), (repl_user, "%")))
            what.append("%s@%% may read replica status" % repl_user)
        if verify:
            out.append(("GRANT SELECT ON `stateful_verify`.* TO %s@%s", (repl_user, "%")))
            what.append("%s@%% may read stateful_verify" % repl_user)
    return out, what


def run(module, acc):
    p = module.params
    check_input(p)
    result = dict(changed=False, created_databases=[], changes=[])
    passwords = dict((u["name"], acc.password(u)) for u in p["users"] if u["state"] == "present")
    pods = [x.metadata.name for x in ready_pods(acc.k8s, p["name"], acc.ns, "its accounts change")]
    root = acc.read_secret(p["credentials_secret"] or "%s-credentials" % p["name"], missing_ok=True)[1].get("root-password")
    if not root:
        raise AccountError("Secret %s has no root-password" % (p["credentials_secret"] or "%s-credentials" % p["name"]))
    applied_name = p["applied_secret"] or "%s-accounts" % p["name"]
    applied_obj, applied = acc.read_secret(applied_name, missing_ok=True)

    primary = acc.connection(pods[0], [root])
    have = set(r["SCHEMA_NAME"] for r in primary.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"))
    for db in p["databases"]:
        if db not in have:
            result["created_databases"].append(db)
            if not module.check_mode:
                primary.execute("CREATE DATABASE IF NOT EXISTS `%s`" % db)
    for pod in pods:
        conn = acc.connection(pod, [root])
        statements = []
        if p["root_host"]:
            statements, what = plan_cluster_accounts(conn, p["root_host"], root, p["replication_user"])
            result["changes"] += ["%s %s" % (pod, w) for w in what]
        for user in p["users"]:
            planned, what = plan_user(conn, user, passwords.get(user["name"]), applied)
            statements += planned
            result["changes"] += ["%s %s@%s %s" % (pod, user["name"], user["host"], w) for w in what]
        if statements and not module.check_mode:
            acc.runner.run(conn, statements)
    result["changed"] = bool(result["created_databases"] or result["changes"])
    if passwords != applied and not module.check_mode:
        acc.write_applied(applied_obj, applied_name, passwords)
        result["changed"] = True
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    run_module(module, Accounts, run)


if __name__ == "__main__":
    main()
