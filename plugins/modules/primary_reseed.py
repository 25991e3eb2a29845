#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: primary_reseed
short_description: Choose the replica to reseed an empty primary from, and resume replication after
version_added: 0.1.0
description:
  - The replication side of the recovery of a StatefulSet whose primary (ordinal 0) came back with an
    empty volume; the playbook C(stateful.mysql.reseed_primary) runs it around the copy.
  - With O(step=prepare), every replica first applies what it already received (its SQL thread is
    started when stopped), then the replica whose transactions include every other replica's is chosen as
    the donor (MySQL C(gtid_executed) compared with C(GTID_SUBSET); MariaDB C(gtid_slave_pos), per domain).
    Every replica that lacks some of the donor's transactions is pointed at the donor until it holds them
    all, so that nothing any replica held is lost once the primary is copied from the donor.
  - With O(step=resume), every replica is pointed back at the primary C(<name>-0.<name>), keeping its
    other settings, and its replication threads are restarted unless both already run.
  - Fails, changing nothing more, when a replica does not answer, when replicas diverged (no replica
    holds every other's transactions), or when a replica cannot catch up within O(wait_timeout).
author:
  - stateful.mysql developers (@stateful-mysql)
extends_documentation_fragment:
  - stateful.mysql.k8s_auth
  - stateful.mysql.mysql_login
attributes:
  check_mode:
    support: none
    description: The steps start and re-point replication threads; in check mode the module is skipped.
  diff_mode:
    support: none
    description: No diff is produced.
  idempotent:
    support: full
    description:
      - O(step=prepare) changes nothing when every replica already holds the donor's transactions and runs
        its SQL thread; O(step=resume) changes nothing when every replica replicates from the primary.
options:
  step:
    description:
      - V(prepare) chooses the donor and brings every replica up to it; V(resume) points every replica
        back at the primary.
    type: str
    required: true
    choices: [prepare, resume]
  wait_timeout:
    description:
      - Seconds to wait for a replica to apply its relay log, or to catch up with the donor.
    type: int
    default: 300
requirements:
  - kubernetes >= 24.2.0 (Python library), unless O(connection=direct) with O(hosts) and O(login_password)
  - PyMySQL >= 1.0 (Python library)
notes:
  - MySQL 5.7 clusters replicate by binlog file and position, not GTID, and cannot be reseeded this way.
seealso:
  - module: stateful.mysql.replication_status
"""

EXAMPLES = r"""
- name: Choose the donor and bring every replica up to it
  stateful.mysql.primary_reseed:
    name: mysql
    namespace: db
    step: prepare
  register: reseed

- name: After ordinal 0 was copied from reseed.donor, follow it again
  stateful.mysql.primary_reseed:
    name: mysql
    namespace: db
    step: resume
"""

RETURN = r"""
donor:
  description: The pod chosen as donor (O(step=prepare)).
  returned: when step is prepare
  type: str
  sample: mysql-2
donor_host:
  description:
    - How the other pods reach the donor; its stable name when the headless Service publishes pods that are
      not Ready, else its pod address (a replica whose source is gone is not Ready).
  returned: when step is prepare
  type: str
  sample: mysql-2.mysql
donor_address:
  description: The donor pod's IP address.
  returned: when step is prepare
  type: str
  sample: 10.88.0.12
positions:
  description: Each replica's GTID position when the donor was chosen.
  returned: when step is prepare
  type: dict
  sample: {"mysql-1": "0-100-57", "mysql-2": "0-100-60"}
caught_up:
  description: The replicas that were brought up to the donor (O(step=prepare)).
  returned: when step is prepare
  type: list
  elements: str
  sample: ["mysql-1"]
resumed:
  description: The replicas re-pointed at the primary or restarted (O(step=resume)).
  returned: when step is resume
  type: list
  elements: str
  sample: ["mysql-1", "mysql-2"]
elapsed:
  description: Seconds the step took, from a monotonic clock.
  returned: always
  type: float
  sample: 3.2
queries:
  description: The statements run, without passwords.
  returned: always
  type: list
  elements: str
  sample: ["SELECT @@GLOBAL.gtid_executed", "START REPLICA"]
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.stateful.mysql.plugins.module_utils.args import (
    K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, merge_specs,
)
from ansible_collections.stateful.mysql.plugins.module_utils.connection import (
    PYMYSQL_IMPORT_ERROR, ConnectError, error_text,
)
from ansible_collections.stateful.mysql.plugins.module_utils.replication import Cluster, wait_until
from ansible_collections.stateful.mysql.plugins.module_utils.sql import (
    errant_gtids, mariadb_gtid_covers, mysql_gtid_without, normalize_replica_status, thread_running,
)


# How long a replica may fail to answer before the step gives up on it:
# a tunnel through the API server can break for a while under load (seen
# in CI: three port-forward handshakes in a row), while a replica that is
# really gone stays gone.
ANSWER_PATIENCE = 60
ANSWER_RETRY_SECONDS = 3


class ReseedError(Exception):
    pass


def argument_spec():
    return merge_specs(K8S_AUTH_ARG_SPEC, MYSQL_LOGIN_ARG_SPEC, STATEFULSET_ARG_SPEC, dict(
        step=dict(type="str", required=True, choices=["prepare", "resume"]),
        wait_timeout=dict(type="int", default=300),
    ))


class Replica(object):
    """One replica's connection and the GTID questions asked of it."""

    def __init__(self, cluster, target, patience=ANSWER_PATIENCE):
        self.target = target
        self.name = target.name
        self.conn = None
        errors = []

        def answered():
            try:
                self.conn = cluster.connection(target, fresh=True)
                return True, None
            except ConnectError as e:
                errors.append(str(e))
                # A refused login or a missing pod will not mend by waiting.
                return not str(e).startswith(("error 2003", "error 2013")), None
        wait_until(answered, patience, sleep=ANSWER_RETRY_SECONDS)
        if self.conn is None:
            raise ReseedError("replica %s does not answer (%s, %d attempts in %ss): every replica must answer, so"
                              " that nothing it holds is lost; bring it back first"
                              % (target.name, errors[-1], len(errors), patience))
        self.dialect = self.conn.dialect
        self.mariadb = self.dialect.server.is_mariadb

    def status(self):
        rows = [normalize_replica_status(r) for r in self.conn.query(self.dialect.replica_status())]
        rows = [r for r in rows if r.get("source_host")]
        return rows[0] if rows else None

    def position(self):
        """What it holds of the cluster's primary (MySQL: its GTID set but
        its own server_uuid's; MariaDB: gtid_slave_pos)."""
        value = self.conn.scalar(self.dialect.gtid_position())
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        value = (value or "").replace("\n", "")
        if not self.mariadb:
            value = mysql_gtid_without(value, self.conn.scalar("SELECT @@GLOBAL.server_uuid"))
        return value

    def own_transactions(self):
        """Its own transactions (written on it, not replicated), or None: such
        a replica is never the donor."""
        if self.mariadb:
            row = self.conn.query("SELECT @@GLOBAL.server_id AS server_id, @@GLOBAL.gtid_binlog_state AS gtid_binlog_state")[0]
            return errant_gtids(row, row["server_id"])
        return errant_gtids(self.conn.query(
            "SELECT @@GLOBAL.server_uuid AS server_uuid, @@GLOBAL.gtid_executed AS gtid_executed")[0])

    def covers(self, other_position):
        """Whether this server holds every transaction of ``other_position``."""
        if not other_position:
            return True
        if self.mariadb:
            return mariadb_gtid_covers(self.position(), other_position)
        return bool(int(self.conn.scalar("SELECT GTID_SUBSET(%s, @@GLOBAL.gtid_executed)", (other_position,))))

    def applied_relay_log(self):
        """Whether everything the IO thread received has been applied."""
        st = self.status()
        if st is None:
            return True
        if st.get("last_sql_errno"):
            raise ReseedError("replica %s stopped applying: error %s: %s" % (
                self.name, st["last_sql_errno"], st.get("last_sql_error")))
        received = st.get("gtid_io_pos") if self.mariadb else st.get("retrieved_gtid_set")
        return self.covers(received)

    def run(self, sql, args=None):
        self.conn.execute(sql, args)


def pod_host(pod, service, namespace):
    """A pod's name as replicas dial it: <pod>.<service>.<namespace>.svc, the
    form the cluster certificate covers (*.<service>.<namespace>.svc)."""
    return "%s.%s.%s.svc" % (pod, service, namespace)


def wait_for(check, timeout, what):
    done, value, elapsed = wait_until(lambda: (check(), None), timeout, sleep=1)
    if not done:
        raise ReseedError("%s: not done after %ss" % (what, timeout))


def prepare(cluster, replicas, p):
    changed = False
    for r in replicas:
        st = r.status()
        if st is not None and not thread_running(st.get("sql_running")) and not st.get("last_sql_errno"):
            r.run(r.dialect.start_replica("SQL_THREAD"))
            changed = True
        wait_for(r.applied_relay_log, p["wait_timeout"], "replica %s applying its relay log" % r.name)
    positions = dict((r.name, r.position()) for r in replicas)
    own = dict((r.name, r.own_transactions()) for r in replicas)
    donor = None
    for r in replicas:
        if own[r.name]:
            continue
        if all(r.covers(positions[o.name]) for o in replicas if o is not r):
            donor = r
            break
    if donor is None:
        raise ReseedError("no replica can be the donor: none without transactions of its own holds every other's"
                          " (%s%s); choose by hand which to keep and re-copy the others"
                          % (", ".join("%s: %s" % kv for kv in sorted(positions.items())),
                             "".join("; %s wrote %s itself" % (k, v) for k, v in sorted(own.items()) if v)))
    pod = cluster.k8s.core.read_namespaced_pod(donor.target.pod, p["namespace"])
    address = pod.status.pod_ip
    service = cluster.k8s.core.read_namespaced_service(p["name"], p["namespace"])
    published = bool(service.spec.publish_not_ready_addresses)
    # The name the cluster certificate covers (replicas verify their source).
    host = pod_host(donor.name, p["name"], p["namespace"]) if published else address
    caught_up = []
    for r in replicas:
        if r is donor or r.covers(positions[donor.name]):
            continue
        r.run(r.dialect.stop_replica())
        r.run(*r.dialect.change_source_host(host))
        r.run(r.dialect.start_replica())
        wait_for(lambda: r.covers(positions[donor.name]), p["wait_timeout"],
                 "replica %s catching up with the donor %s (if the donor no longer has the binary logs it needs,"
                 " re-copy %s: delete its PVC and pod)" % (r.name, donor.name, r.name))
        r.run(r.dialect.stop_replica())
        caught_up.append(r.name)
        changed = True
    return changed, dict(donor=donor.name, donor_host=host, donor_address=address, positions=positions,
                         caught_up=caught_up)


def resume(cluster, replicas, p):
    primary = pod_host("%s-0" % p["name"], p["name"], p["namespace"])
    resumed = []
    for r in replicas:
        st = r.status()
        if st is None:
            raise ReseedError("replica %s has no replication source: re-copy it (delete its PVC and pod)" % r.name)
        if st.get("source_host") != primary:
            r.run(r.dialect.stop_replica())
            r.run(*r.dialect.change_source_host(primary))
            r.run(r.dialect.start_replica())
            resumed.append(r.name)
        elif not (thread_running(st.get("io_running")) and thread_running(st.get("sql_running"))):
            # An IO thread that gave up, or waits out a long retry delay: start it now.
            r.run(r.dialect.stop_replica())
            r.run(r.dialect.start_replica())
            resumed.append(r.name)
    return bool(resumed), dict(resumed=resumed)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=False)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    p = module.params
    started = time.monotonic()
    cluster = Cluster(module)
    result = dict(changed=False)
    try:
        if cluster.k8s is None:
            raise ReseedError("this module needs the Kubernetes API (the pods and the headless Service)")
        targets = [t for t in cluster.targets if t.ordinal != 0]
        if not targets:
            raise ReseedError("StatefulSet %s/%s has no replica: no pod holds the data to reseed the primary from"
                              % (p["namespace"], p["name"]))
        replicas = [Replica(cluster, t) for t in targets]
        step = prepare if p["step"] == "prepare" else resume
        changed, out = step(cluster, replicas, p)
        result.update(out, changed=changed)
    except ReseedError as e:
        result.update(elapsed=round(time.monotonic() - started, 3), queries=cluster.queries)
        module.fail_json(msg="%s/%s: %s" % (p["namespace"], p["name"], e), **result)
    except Exception as e:
        result.update(elapsed=round(time.monotonic() - started, 3), queries=cluster.queries)
        module.fail_json(msg="%s/%s: %s" % (p["namespace"], p["name"], error_text(e)), **result)
    finally:
        cluster.close()
    result.update(elapsed=round(time.monotonic() - started, 3), queries=cluster.queries)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
