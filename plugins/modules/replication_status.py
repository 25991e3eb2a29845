#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: replication_status
short_description: Report, or wait for, the replication state of a MySQL/MariaDB StatefulSet
version_added: 0.1.0
description:
  - Connects to every server of a primary/replica StatefulSet (pod C(<name>-0) is the primary,
    the other ordinals its replicas) and reports, per server, its role, server_id,
    read_only and super_read_only, the IO and SQL thread states, the lag, the last IO and SQL
    errors, the source host, and the binary log coordinates and GTID positions.
  - Reads the replica status of MySQL 5.7, 8.0, 8.4 and 9.x and MariaDB 10.x and 11.x,
    whichever of the C(Master_*)/C(Slave_*) or C(Source_*)/C(Replica_*) column names the server uses.
  - A replica is healthy when its IO and SQL threads both run, neither reports an error, and its
    lag is known and at most O(max_lag). The primary is healthy when it answers, is not read-only
    and has no replication source configured.
  - With O(wait=true) the module waits until every server is healthy and fails on timeout,
    naming each unhealthy server and why.
  - A replica that waiting cannot heal (its IO thread stopped on error 1236 because the primary
    purged the binary logs it needs, or it holds errant transactions of its own) ends the wait at once,
    and the module fails naming it, the reason and the remedy (a re-copy). See RV(broken).
  - So does a primary that is behind its replicas (a replica holds transactions replicated from the
    cluster's primary that the primary lacks, or the primary's pod refuses to start for that reason),
    with reason C(primary_behind); the remedy named is C(reseed_primary.yml), and the replicas keep their data.
  - The module only reads; it never changes a server or a Kubernetes object.
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
  - stateful.mysql.mysql_login
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: The module never changes anything.
options:
  wait:
    description:
      - Wait until every server is healthy.
      - When false, the module reports the state once and does not fail on unhealthy servers.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait=true) before failing.
    type: int
    default: 300
  wait_sleep:
    description:
      - Seconds between two rounds of checks with O(wait=true).
    type: int
    default: 1
  rollout:
    description:
      - Also wait for the StatefulSet's rollout, in the same rounds as replication (one module start
        for both) - the latest generation observed, every replica of C(spec.replicas) updated and Ready,
        no pod above them, and, when C(persistentVolumeClaimRetentionPolicy.whenScaled) is C(Delete),
        the volumes of removed ordinals gone (so that a later scale-up never meets one being deleted).
      - A broken replica still ends the wait at once, rollout or not. See RV(rollout).
      - So does a pod the API refuses to create (Pod Security, a quota, an admission webhook) - the
        StatefulSet's C(FailedCreate) events of the last 30 s, while fewer pods run than declared. The
        failure quotes the API's message. See RV(refused).
    type: bool
    default: false
  max_lag:
    description:
      - Largest replica lag in seconds (C(Seconds_Behind_Source)) still counted as healthy.
    type: int
    default: 60
requirements:
  - kubernetes >= 24.2.0 (Python library), unless O(connection=direct) with O(hosts) and O(login_password)
  - PyMySQL >= 1.0 (Python library)
notes:
  - The login user needs the privilege to read the replica status, C(REPLICATION CLIENT) on MySQL and
    C(REPLICA MONITOR) on MariaDB 10.5+; C(root), the default, has it.
  - With O(connection=port_forward) the Kubernetes user needs C(get) on the StatefulSet and the
    Secret and C(create) on C(pods/portforward).
seealso:
  - module: stateful.mysql.replication_verify
  - module: stateful.mysql.statefulset_teardown
"""

EXAMPLES = r"""
- name: Wait until every replica replicates with at most 30 s of lag
  stateful.mysql.replication_status:
    name: mysql
    namespace: db
    wait: true
    wait_timeout: 600
    max_lag: 30
  register: repl

- name: Show each server's role and lag
  ansible.builtin.debug:
    msg: "{{ repl.servers | map(attribute='name') | zip(repl.servers | map(attribute='lag')) | list }}"

- name: Servers outside Kubernetes (or from a control node inside the pod network)
  stateful.mysql.replication_status:
    name: lab
    connection: direct
    hosts:
      - host: 10.0.0.10
      - host: 10.0.0.11
        port: 3307
    login_user: monitor
    login_password: "{{ vault_monitor_password }}"
"""

RETURN = r"""
healthy:
  description: Whether every server is healthy.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds spent checking (and waiting, with O(wait=true)), from a monotonic clock.
  returned: always
  type: float
  sample: 4.21
rollout:
  description:
    - What the StatefulSet's rollout still lacks (empty when done, or when O(rollout=false)).
  returned: always
  type: list
  elements: str
  sample: ["2 of 3 pods Ready"]
refused:
  description:
    - With O(rollout=true), the API's refusals to create the StatefulSet's pods (its C(FailedCreate)
      events), newest first; the wait ended at once on them.
  returned: when the API refused to create a pod
  type: list
  elements: str
  sample: ['create Pod m-0 in StatefulSet m failed error: pods "m-0" is forbidden: exceeded quota: no-pods (13:02:11Z x3)']
broken:
  description:
    - The servers that waiting cannot heal, each with C(reason) and its problems. C(binlogs_purged) and
      C(errant_transactions) (a replica's own transactions) need a fresh copy of the replica;
      C(primary_behind) needs the primary recovered (C(reseed_primary.yml)), never a copy of the replica.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "mysql-2", "reason": "binlogs_purged", "problems": ["IO thread not running (No): error 1236: ..."]}]
unhealthy:
  description: The servers that are not healthy, each with its reasons.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "mysql-2", "problems": ["SQL thread not running (No): error 1062: Duplicate entry"]}]
servers:
  description: One entry per server, in ordinal order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Pod name (or the O(hosts) entry's name).
      type: str
      sample: mysql-1
    ordinal:
      description: StatefulSet ordinal; 0 is the primary.
      type: int
      sample: 1
    expected_role:
      description: The role the ordinal gives, C(primary) or C(replica).
      type: str
      sample: replica
    role:
      description: The role the server acts in, C(replica) when a replication source is configured, else C(primary).
      type: str
      sample: replica
      returned: when reachable
    reachable:
      description: Whether the module could log in and query the server.
      type: bool
      sample: true
    healthy:
      description: Whether the server passes the readiness rules.
      type: bool
      sample: true
    broken:
      description: C(binlogs_purged), C(errant_transactions) or C(primary_behind) when waiting cannot heal this server, else null.
      type: str
      sample: binlogs_purged
    problems:
      description: Why the server is not healthy; empty when it is.
      type: list
      elements: str
      sample: ["IO thread not running (No)"]
    flavor:
      description: C(mysql) or C(mariadb), from C(SELECT VERSION()).
      type: str
      sample: mariadb
      returned: when reachable
    version:
      description: The server's version string.
      type: str
      sample: 10.11.6-MariaDB-0+deb12u1-log
      returned: when reachable
    hostname:
      description: The server's C(@@hostname).
      type: str
      sample: mysql-1
      returned: when reachable
    server_id:
      description: The server's C(server_id).
      type: int
      sample: 101
      returned: when reachable
    read_only:
      description: C(read_only).
      type: bool
      sample: true
      returned: when reachable
    super_read_only:
      description: C(super_read_only); null on MariaDB, which has none.
      type: bool
      sample: true
      returned: when reachable
    io_running:
      description: C(Replica_IO_Running) (C(Yes), C(No), C(Connecting)); null on a server that replicates from no one.
      type: str
      sample: "Yes"
      returned: when reachable
    sql_running:
      description: C(Replica_SQL_Running) (C(Yes) or C(No)); null on a server that replicates from no one.
      type: str
      sample: "Yes"
      returned: when reachable
    lag:
      description: C(Seconds_Behind_Source), null when unknown or when the server replicates from no one.
      type: int
      sample: 0
      returned: when reachable
    source_host:
      description: The host the replica replicates from.
      type: str
      sample: mysql-0.mysql
      returned: when reachable
    last_io_errno:
      description: C(Last_IO_Errno).
      type: int
      sample: 0
      returned: when reachable
    last_io_error:
      description: C(Last_IO_Error).
      type: str
      sample: ""
      returned: when reachable
    last_sql_errno:
      description: C(Last_SQL_Errno).
      type: int
      sample: 0
      returned: when reachable
    last_sql_error:
      description: C(Last_SQL_Error).
      type: str
      sample: ""
      returned: when reachable
    replication:
      description:
        - The whole replica status with flavor-neutral keys (C(io_state), C(sql_state), C(source_port),
          C(source_log_file), C(read_source_log_pos), C(relay_source_log_file), C(exec_source_log_pos),
          C(retrieved_gtid_set), C(executed_gtid_set), C(auto_position), C(using_gtid), C(gtid_io_pos),
          C(sql_delay), C(sql_remaining_delay) and the fields above); null when the server replicates from no one.
      type: dict
      returned: when reachable
    binlog:
      description: The server's own binary log coordinates (C(file), C(position), C(executed_gtid_set)); null without binary log.
      type: dict
      returned: when reachable
      sample: {"file": "binlog.000003", "position": 1234, "executed_gtid_set": null}
    gtid:
      description:
        - GTID state. MySQL C(gtid_mode) and C(gtid_executed);
          MariaDB C(gtid_current_pos), C(gtid_binlog_pos), C(gtid_slave_pos), C(gtid_strict_mode).
      type: dict
      returned: when reachable
      sample: {"gtid_current_pos": "0-100-12", "gtid_binlog_pos": "0-100-12", "gtid_slave_pos": "0-100-12"}
table:
  description:
    - The servers as a table a person reads at a glance, one line each after a header line
      (pod, role, server_id, IO and SQL threads, lag, executed GTID set with UUIDs cut short, last error
      or, for an unhealthy server without one, why it is unhealthy).
  returned: always
  type: list
  elements: str
  sample:
    - "pod   role     server_id  IO   SQL  lag  executed GTID set      last error"
    - "db-0  primary  100        -    -    -    3e1f2a4b..:1-25        -"
    - "db-1  replica  101        Yes  No   -    3e1f2a4b..:1-24        SQL thread not running (No)"
queries:
  description: The statements run, once each, without passwords.
  returned: always
  type: list
  elements: str
  sample: ["SELECT VERSION()", "SHOW REPLICA STATUS"]
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.args import (
    K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, merge_specs,
)
from ansible_collections.stateful.mysql.plugins.module_utils.connection import PYMYSQL_IMPORT_ERROR
from ansible_collections.stateful.mysql.plugins.module_utils.replication import (
    Cluster, broken_servers, cluster_status, format_table, pod_creation_refusals, rollout_problems, unhealthy_summary,
    wait_until,
)


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, dict(
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        wait_sleep=dict(type="int", default=1),
        rollout=dict(type="bool", default=False),
        max_lag=dict(type="int", default=60),
    ))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    p = module.params
    cluster = Cluster(module)

    # Events older than this run (less a margin for the clocks) are history.
    since = time.time() - 30

    def check():
        return _check(cluster, p["max_lag"], p["rollout"], since)

    try:
        done, (healthy, servers, rollout, refused), elapsed = wait_until(
            check, p["wait_timeout"] if p["wait"] else 0, sleep=p["wait_sleep"])
    finally:
        cluster.close()
    broken = broken_servers(servers)
    result = dict(
        changed=False,
        healthy=healthy,
        elapsed=round(elapsed, 3),
        servers=servers,
        broken=broken,
        rollout=rollout,
        unhealthy=[dict(name=s["name"], problems=s["problems"]) for s in servers if not s["healthy"]],
        table=format_table(servers),
        queries=cluster.queries,
    )
    if p["wait"] and refused:
        module.fail_json(msg="StatefulSet %s/%s: the API refuses to create its pods, so waiting cannot help: %s"
                         % (p["namespace"], p["name"], refused[0]), refused=refused, **result)
    if p["wait"] and broken:
        module.fail_json(msg="replication of StatefulSet %s/%s: waiting cannot heal %s: %s"
                         % (p["namespace"], p["name"], ", ".join(b["name"] for b in broken),
                            unhealthy_summary(servers)), **result)
    if p["wait"] and not healthy:
        module.fail_json(msg="replication of StatefulSet %s/%s not healthy after %ss: %s"
                         % (p["namespace"], p["name"], p["wait_timeout"],
                            "; ".join(["rollout: " + ", ".join(rollout)] if rollout else []
                                      + ([unhealthy_summary(servers)] if any(not s["healthy"] for s in servers)
                                         else []))), **result)
    module.exit_json(**result)


def _check(cluster, max_lag, rollout, since):
    # A broken replica, or a pod the API refuses to create, ends the wait:
    # waiting longer cannot heal them.
    healthy, servers = cluster_status(cluster, max_lag)
    missing = rollout_problems(cluster) if rollout else []
    refused = pod_creation_refusals(cluster, since) if missing else []
    done = (healthy and not missing) or bool(broken_servers(servers)) or bool(refused)
    return done, (healthy and not missing, servers, missing, refused)


if __name__ == "__main__":
    main()
