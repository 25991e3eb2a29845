"""Returning replicas and new ones, on the local Kubernetes: a replica whose
volume was kept comes back by replication alone when the primary can still
serve it, and re-copies by itself (saying why) when it cannot; a replica
stopped on error 1236 is named, then re-copied by the role when allowed; new
replicas copy from Ready replicas, several at once with Parallel pods.

One cluster per flavor (MySQL 9.7, MariaDB 11.8) serves the ordered steps
(the landing tier runs them on MariaDB 11.8, where the returning checks are
hardest: domains, server ids and Gtid_list); the Parallel scale-out runs on
the Parallel MySQL cluster that test_primary_away.py's drills share."""
import os
import re
import time

import pytest

from kube import (PREFIX, ROOT, Cluster, checksums_equal, count, delete_namespace, deploy_args, run_playbook, scale,
                  tcp_login, wait_claims, write_rows)

FLAVORS = [("mysql", "9.7"), ("mariadb", "11.8")]
STATE = "/var/lib/mysql/.stateful-mysql"
pytestmark = pytest.mark.landing("mariadb-11.8")


@pytest.fixture(scope="module", params=FLAVORS, ids=["%s-%s" % f for f in FLAVORS])
def cluster(request, kube_ready, tmp_path_factory):
    flavor, version = request.param
    namespace = "%s-ret-%s-%s" % (PREFIX, flavor, version.replace(".", ""))
    delete_namespace(namespace)
    # Kept volumes are what make a replica "returning" (the role's default
    # deletes them on scale-down).
    args = deploy_args(flavor, version, "db", namespace, str(tmp_path_factory.mktemp("vars")),
                       extra={"mysql_cluster_pvc_retention_when_scaled": "Retain"})
    started = time.monotonic()
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *args)
    c = Cluster("db", namespace, flavor, version)
    c.deploy_args = args
    c.deploy_seconds = time.monotonic() - started
    c.sql(c.pod(0), "CREATE DATABASE e2e; CREATE TABLE e2e.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))")
    yield c
    if os.environ.get("E2E_KEEP") != "1":
        delete_namespace(namespace, wait=False)


def copies(events):
    return count(events, "clone started") - count(events, "refused: busy") + count(events, "backup stream started")


def last_copy_source(events):
    line = [x for x in events.splitlines() if "started from" in x and "refused" not in x][-1]
    return line.split("started from ")[1].split(":")[0]


def purge_primary_binlogs(c):
    """Rotate the primary's binary log and purge every older one."""
    c.sql(c.pod(0), "FLUSH BINARY LOGS")
    current = c.sql(c.pod(0), "SHOW BINARY LOGS").splitlines()[-1].split("\t")[0]
    # MariaDB keeps a log that a replica's dump thread still reads: ask again.
    deadline = time.monotonic() + 60
    while True:
        c.sql(c.pod(0), "PURGE BINARY LOGS TO '%s'" % current)
        if c.sql(c.pod(0), "SHOW BINARY LOGS").splitlines()[0].split("\t")[0] == current:
            return
        assert time.monotonic() < deadline, c.sql(c.pod(0), "SHOW BINARY LOGS")
        time.sleep(2)


def pvc_uids(c):
    return dict((p.metadata.name, p.metadata.uid)
                for p in c.core.list_namespaced_persistent_volume_claim(c.namespace).items)


def scale_with_playbook(c, replicas):
    """scale.yml -e replicas=N, as a user runs it: it waits and verifies."""
    out, recap = run_playbook(os.path.join(ROOT, "scale.yml"), *c.deploy_args, "-e", "replicas=%d" % replicas)
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
    assert len(c.pods()) == replicas
    c.wait_ready(replicas)


def test_scale_3_5_2_4_with_kept_volumes(cluster):
    """Issue 14's sequence with whenScaled Retain (molecule's default and
    mariadb11 scenarios run it with Delete): rows between the steps; after
    each, CHECKSUM TABLE equal on every pod and each volume copied at most
    once; the replicas that return on kept volumes catch up by replication,
    with no copy and no second CHANGE."""
    c = cluster
    write_rows(c)
    checksums_equal(c, 3)
    scale_with_playbook(c, 5)
    write_rows(c)
    checksums_equal(c, 5)
    for i in (3, 4):
        events = c.events(c.pod(i))
        assert copies(events) == 1 and count(events, "CHANGE:") == 1, events
    kept = pvc_uids(c)
    before = dict((i, c.events(c.pod(i))) for i in (2, 3))
    scale_with_playbook(c, 2)
    write_rows(c)
    checksums_equal(c, 2)
    assert pvc_uids(c) == kept, "whenScaled Retain: the PVCs of ordinals 2-4 must stay"
    scale_with_playbook(c, 4)
    write_rows(c)
    checksums_equal(c, 4)
    assert pvc_uids(c) == kept
    for i in (2, 3):
        events = c.events(c.pod(i))
        assert copies(events) == copies(before[i]) == 1, events
        assert count(events, "returning replica catches up by replication, no copy") == \
            count(before[i], "returning replica catches up by replication, no copy") + 1, events
        assert count(events, "CHANGE:") == 1, events
    # The next drills start from 3 replicas (ordinal 3 keeps its volume).
    scale(c, 3)


def test_kept_volume_behind_purged_binlogs_recopies_by_itself(cluster):
    c = cluster
    scale(c, 2)
    write_rows(c)
    purge_primary_binlogs(c)
    write_rows(c)
    scale(c, 3)
    events = c.events(c.pod(2))
    assert copies(events) == 2, events
    assert count(events, "re-copy: binary logs purged") == 1, events
    # Copied from the Ready replica, not from the primary.
    assert last_copy_source(events) == "%s-1.%s.%s.svc" % (c.name, c.name, c.namespace), events
    checksums_equal(c, 3)


def test_errant_transaction_on_kept_volume_recopies_by_itself(cluster):
    c = cluster
    # Written on the replica itself, into its binary log, before it leaves
    # (MariaDB's local root holds READ_ONLY ADMIN).
    errant = "CREATE TABLE e2e.errant (id INT PRIMARY KEY)"
    if c.flavor == "mysql":
        errant = "SET GLOBAL super_read_only = OFF; %s; SET GLOBAL super_read_only = ON" % errant
    c.sql(c.pod(2), errant)
    scale(c, 2)
    write_rows(c)
    scale(c, 3)
    events = c.events(c.pod(2))
    assert copies(events) == 3, events
    assert count(events, "re-copy: errant transactions") == 1, events
    assert c.sql(c.pod(2), "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'errant'") == "0"
    checksums_equal(c, 3)


def test_replica_stopped_on_1236_is_named_then_recopied_by_the_role(cluster):
    c = cluster
    words = "REPLICA" if c.flavor == "mysql" else "SLAVE"
    before = copies(c.events(c.pod(2)))
    c.sql(c.pod(2), "STOP %s IO_THREAD" % words)
    write_rows(c)
    purge_primary_binlogs(c)
    write_rows(c)
    c.sql(c.pod(2), "START %s IO_THREAD" % words)
    deadline = time.monotonic() + 60
    # MySQL 8.0+ reports the source's 1236 as 13114 "Got fatal error 1236 from source".
    while "1236" not in c.replica_status(c.pod(2)).get("Last_IO_Error", ""):
        assert time.monotonic() < deadline, c.replica_status(c.pod(2))
        time.sleep(1)
    # The readiness probe says why, in the pod's events too.
    rc, out, err = c.exec(c.pod(2), ["bash", "/etc/stateful-mysql/scripts/probe.sh", "ready"])
    assert rc != 0 and "1236" in err and "mysql_cluster_recopy_broken_replicas" in err, err
    # Without leave, the role's wait step names the pod and the reason at once.
    started = time.monotonic()
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args, check=False)
    assert recap.get("failed") == 1, out[-3000:]
    flat = " ".join(out.split())  # Ansible's YAML output wraps long lines
    assert "waiting cannot heal %s" % c.pod(2) in flat and "binlogs_purged" in flat, out[-3000:]
    assert time.monotonic() - started < 240
    # With leave, it re-copies that replica.
    out, recap = run_playbook(os.path.join(ROOT, "site.yml"), *c.deploy_args,
                              "-e", "mysql_cluster_recopy_broken_replicas=true")
    assert recap["failed"] == 0, out[-3000:]
    c.wait_ready(3)
    events = c.events(c.pod(2))
    assert count(events, "marked for a re-copy: binlogs_purged") == 1, events
    assert count(events, "re-copy: re-copy requested: binlogs_purged") == 1, events
    assert copies(events) == before + 1, events
    checksums_equal(c, 3)


def test_root_only_from_inside_its_pod_and_tls_for_every_tcp_client(cluster):
    """A new cluster's defaults (mysql_cluster_root_host unset): root with its
    password is refused from another pod and taken over TLS from the pod
    itself (the port-forward's origin); a client without TLS is refused by
    every server (require_secure_transport), root from its own pod too. The
    drills before this one returned and re-copied replicas, which ask their
    peers about replica status and binary logs: none had to ask as root."""
    c = cluster
    pods = [p.metadata.name for p in c.pods()]
    assert len(pods) >= 2, pods
    for i, pod in enumerate(pods):
        other = pods[(i + 1) % len(pods)]
        fqdn = "%s.%s.%s.svc" % (pod, c.name, c.namespace)
        rc, out = tcp_login(c, other, fqdn, "tls")
        assert rc != 0 and re.search(r"ERROR (1045|1130)", out), "root from %s to %s: %s" % (other, pod, out)
        rc, out = tcp_login(c, pod, "127.0.0.1", "tls")
        assert rc == 0 and re.match(r"root@127\.0\.0\.1\s+Ssl_version\s+TLSv1\.[23]$", out), "root in %s over TLS: %s" % (pod, out)
        rc, out = tcp_login(c, pod, "127.0.0.1", "plain")
        assert rc != 0 and "insecure transport" in out.lower(), "root in %s without TLS: %s" % (pod, out)
        events = c.events(pod)
        assert "asking peers as root" not in events, events
    assert c.sql(c.pod(0), "SELECT COUNT(*) FROM mysql.user WHERE user = 'root' AND host NOT IN "
                           "('localhost', '127.0.0.1')") == "0"


# MySQL: its donors serve one CLONE at a time, so a busy donor is waited for.
@pytest.mark.only_flavors("mysql-9.7")
@pytest.mark.full_tier  # since stop 37: the landing tier's budget
def test_parallel_scale_out_copies_once_each(parallel_cluster):
    """Parallel 3 -> 7 on MySQL (issue 14's proof): every new replica Ready on
    its first copy attempt, the copies spread over the Ready replicas, a busy
    donor waited for (four copies, two Ready replicas to copy from). The
    shared cluster is left at two pods, its removed volumes gone."""
    c = parallel_cluster
    start = len(c.pods())
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS e2e; "
                    "CREATE TABLE IF NOT EXISTS e2e.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))")
    scale(c, 3)
    write_rows(c, 200)
    checksums_equal(c, 3)
    started = time.monotonic()
    scale(c, 7, timeout=900)
    seconds = time.monotonic() - started
    donors = {}
    for i in range(3, 7):
        pod = c.core.read_namespaced_pod(c.pod(i), c.namespace)
        init = [s for s in pod.status.init_container_statuses if s.name == "init"][0]
        assert init.restart_count == 0, c.pod(i)
        assert all(s.restart_count <= 1 for s in pod.status.container_statuses), c.pod(i)
        events = c.events(c.pod(i))
        assert count(events, "clone completed") == 1, events
        donor = [line for line in events.splitlines() if "clone completed" in line][0].split("donor ")[1]
        donors.setdefault(donor.rstrip(")"), []).append(c.pod(i))
    print("\nParallel 3 -> 7: %.0f s; copies by donor: %s" % (seconds, donors))
    assert "%s-0.%s.%s.svc" % (c.name, c.name, c.namespace) not in donors, "copied from the primary although replicas were Ready"
    assert len(donors) >= 2, "copies not spread: %s" % donors
    write_rows(c)
    checksums_equal(c, 7)
    # Back to where the drills expect it (whenScaled Delete removes the volumes).
    scale(c, start)
    wait_claims(c, start)
