"""Rolling upgrades and configuration rollouts (tasks/roll.yml, the
statefulset_roll module, init.sh's upgrade step), on clusters of their own:

- MariaDB 10.11 -> 11.8 by site.yml under a write load that records each
  acknowledged write: replicas first, the primary last; no acknowledged
  write lost; the read Service never without a Ready endpoint;
  mariadb-upgrade run once on each pod; CHECKSUM TABLE equal; a replica
  added in the middle of the roll copies from a pod already on 11.8; a
  version jump the vendor does not support refused before any change;
- a replica that must copy while no peer runs its version waits, says so,
  and copies once one does (never across versions, never a crash loop);
- MySQL 9.7: an image change and a mysql_cluster_server_config change,
  each rolled under writes replicas first with nothing lost; a roll onto an
  image that cannot start stops at the first replica with the cluster
  serving, names the pod, its state and the way back, and setting the
  image back returns the pod."""
import json
import os
import subprocess
import threading
import time

import pytest

from kube import (CACHE, POD_SECURITY_BASELINE, PREFIX, REMOTE_ROOT, ROOT, AckedWriter, Cluster, count,
                  create_namespace, delete_namespace, deploy_args, run_playbook, wait_until)

SITE = os.path.join(ROOT, "site.yml")
CTR = [os.path.join(CACHE, "bin", "containerd-v2.1.5", "ctr"), "--address",
       os.path.join(CACHE, "cluster", "run", "containerd.sock"), "--namespace", "k8s.io"]


def _new_cluster(tmp_path, flavor, version, suffix, replicas=3):
    namespace = "%s-up-%s" % (PREFIX, suffix)
    delete_namespace(namespace)
    create_namespace(namespace, POD_SECURITY_BASELINE)
    args = deploy_args(flavor, version, "db", namespace, str(tmp_path),
                       dict(REMOTE_ROOT, mysql_cluster_replicas=replicas))
    run_playbook(SITE, *args)
    c = Cluster("db", namespace, flavor, version)
    c.deploy_args = args
    return c


def _retire(c):
    if os.environ.get("E2E_KEEP") != "1":
        delete_namespace(c.namespace, wait=False)


def _partition(c):
    sts = c.apps.read_namespaced_stateful_set(c.name, c.namespace)
    rolling = sts.spec.update_strategy.rolling_update
    return rolling.partition or 0 if rolling else 0


def _image(c, pod):
    p = c.core.read_namespaced_pod(pod, c.namespace)
    return [x.image for x in p.spec.containers if x.name == "mysql"][0]


def _in_background(*args):
    """site.yml in a thread: (thread, result dict with out and recap)."""
    result = {}

    def run():
        result["out"], result["recap"] = run_playbook(SITE, *args, check=False)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def _rolled_order(out):
    """The pods in the order the roll reported them done."""
    return [line.split("Say what the pod did: ", 1)[1].split(" ", 1)[0]
            for line in out.splitlines() if "Say what the pod did: " in line]


def _checksums_equal(c, pods, timeout=120):
    def equal():
        sums = {p: c.sql(p, "CHECKSUM TABLE e2e.acked").split("\t")[-1] for p in pods}
        return sums if len(set(sums.values())) == 1 else None
    return wait_until(equal, timeout, "CHECKSUM TABLE e2e.acked equal on %s" % pods, step=2)


def _event_time(line):
    return line.split(" ", 1)[0]


def test_mariadb_10_11_to_11_8_under_writes(tmp_path):
    c = _new_cluster(tmp_path, "mariadb", "10.11", "mariadb")
    try:
        # A jump the vendor does not support (the live version as a cluster
        # of 10.6 would record it) is refused before anything changes.
        cm = c.core.read_namespaced_config_map("db-config", c.namespace)
        env = cm.data["cluster.env"]
        assert "\nVERSION=10.11\n" in "\n" + env
        c.core.patch_namespaced_config_map("db-config", c.namespace,
                                           {"data": {"cluster.env": env.replace("VERSION=10.11", "VERSION=10.6")}})
        before = c.apps.read_namespaced_stateful_set("db", c.namespace).metadata.resource_version
        out, _recap = run_playbook(SITE, *c.deploy_args, "-e", "mysql_cluster_version=11.8", check=False)
        assert "mysql_cluster_version '11.8' cannot be reached from '10.6'" in out, out[-3000:]
        assert "from 10.11 or 11.4 only" in out, out[-3000:]
        assert c.apps.read_namespaced_stateful_set("db", c.namespace).metadata.resource_version == before
        c.core.patch_namespaced_config_map("db-config", c.namespace, {"data": {"cluster.env": env}})

        with AckedWriter(c) as w:
            wait_until(lambda: len(w.acked) > 50, 60, "the first acknowledged writes")
            t, result = _in_background(*c.deploy_args, "-e", "mysql_cluster_version=11.8")
            # A replica added while the roll is at db-2 (db-0 and db-1 on
            # 10.11): it is made on the new template, 11.8, once db-2 is Ready.
            wait_until(lambda: _partition(c) == 2 or not t.is_alive(), 600, "the roll at db-2")
            assert t.is_alive(), result.get("out", "")[-3000:]
            # scale.yml, as a user would (it waits for the roll to end too);
            # its patch is conditional on the StatefulSet read: again on a conflict.
            for _attempt in range(3):
                out, recap = run_playbook(os.path.join(ROOT, "scale.yml"), *c.deploy_args,
                                          "-e", "mysql_cluster_version=11.8", "-e", "replicas=4",
                                          "-e", "mysql_cluster_replicas=4", check=False)
                if recap.get("failed") == 0 or "onflict" not in out:
                    break
            assert recap.get("failed") == 0, out[-4000:]
            t.join(1200)
            assert not t.is_alive(), "site.yml did not end"
            assert result["recap"].get("failed") == 0, result["out"][-6000:]
            c.wait_ready(4, timeout=600)
            time.sleep(3)
        out = result["out"]
        assert _rolled_order(out) == ["db-2", "db-1", "db-0"], out[-6000:]
        assert w.acked and min(w.ready_endpoints) >= 1, (len(w.acked), w.ready_endpoints)
        assert len(w.ready_endpoints) > 20, w.ready_endpoints

        pods = [c.pod(i) for i in range(4)]
        upgrade_done = "upgrade: mariadb-upgrade from 10.11.18 to 11.8.9 done"
        events = {p: c.events(p) for p in pods}
        for p in pods:
            assert _image(c, p).endswith("mariadb:11.8"), p
            assert c.sql(p, "SELECT VERSION()").startswith("11.8.9"), p
        for p in pods[:3]:
            assert count(events[p], upgrade_done) == 1, (p, events[p])
        created = {p: c.core.read_namespaced_pod(p, c.namespace).metadata.creation_timestamp for p in ("db-0", "db-3")}
        assert created["db-3"] < created["db-0"], created  # added before the primary rolled
        # The new replica copied (no upgrade of its own) from a pod that had
        # finished its upgrade to 11.8 before the copy started.
        assert count(events["db-3"], "mariadb-upgrade") == 0, events["db-3"]
        started = [line for line in events["db-3"].splitlines() if "backup stream started from " in line]
        assert len(started) == 1, events["db-3"]
        donor = started[0].split("backup stream started from ", 1)[1].split(".", 1)[0]
        donor_upgraded = [line for line in events[donor].splitlines() if upgrade_done in line]
        assert donor_upgraded and _event_time(donor_upgraded[0]) <= _event_time(started[0]), (donor, events[donor])

        # Nothing acknowledged is lost, and every pod holds the same rows.
        sums = _checksums_equal(c, pods)
        for p in pods:
            assert w.missing_on(p) == [], p
        print("roll 10.11 -> 11.8: %d writes acknowledged, %d failed, longest gap %.1fs, checksums %s"
              % (len(w.acked), w.failed, w.longest_gap(), sums))
        now = ["-e", "mysql_cluster_version=11.8", "-e", "mysql_cluster_replicas=4"]
        out, recap = run_playbook(SITE, *c.deploy_args, *now)
        assert recap["changed"] == 0, out[-4000:]
        run_playbook(os.path.join(ROOT, "verify.yml"), *c.deploy_args, *now)
    finally:
        _retire(c)


@pytest.mark.full_tier
def test_a_copy_waits_for_a_donor_of_its_version(tmp_path):
    """The StatefulSet as a roll leaves it before its first pod: the new
    template (11.8) above the partition. A replica added now runs 11.8, and
    no peer does: it waits, says so, and copies once db-1 has rolled."""
    c = _new_cluster(tmp_path, "mariadb", "10.11", "wait", replicas=2)
    try:
        sts = c.apps.read_namespaced_stateful_set("db", c.namespace)
        containers = [{"name": x.name, "image": x.image.replace(":10.11", ":11.8")}
                      for x in (sts.spec.template.spec.init_containers or []) + sts.spec.template.spec.containers]
        c.apps.patch_namespaced_stateful_set("db", c.namespace, {"spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            "template": {"spec": {"initContainers": [x for x in containers if x["name"] in ("init", "volume-owner")],
                                  "containers": [x for x in containers if x["name"] in ("mysql", "donor")]}}}})
        c.apps.patch_namespaced_stateful_set("db", c.namespace, {"spec": {"replicas": 3}})
        wait_until(lambda: "waiting for a donor on server 11.8.9" in _init_log(c, "db-2"), 300,
                   "db-2 waiting for a donor of its version")
        time.sleep(10)
        pod = c.core.read_namespaced_pod("db-2", c.namespace)
        init = [s for s in pod.status.init_container_statuses if s.name == "init"][0]
        assert init.restart_count == 0 and init.state.running is not None, init
        log = _init_log(c, "db-2")
        assert "backup stream started" not in log, log
        # db-1 rolls to 11.8: the waiting copy takes it. (The controller
        # replaces no pod while db-2 is not Ready; it makes a missing one.)
        c.apps.patch_namespaced_stateful_set("db", c.namespace, {"spec": {"updateStrategy": {
            "type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}})
        c.core.delete_namespaced_pod("db-1", c.namespace)
        c.wait_ready(3, timeout=600)
        events = c.events("db-2")
        assert count(events, "backup stream started from db-1.") == 1, events
        assert count(events, "backup stream started from") == 1, events
        assert count(events, "donor on server 11.8.9 found after") == 1, events
        assert c.sql("db-2", "SELECT VERSION()").startswith("11.8.9")
        assert c.replica_status("db-2").get("Slave_SQL_Running") == "Yes"
    finally:
        _retire(c)


@pytest.mark.full_tier
def test_a_scale_up_in_the_same_run_as_a_version_change(tmp_path):
    """site.yml -e mysql_cluster_version=11.8 -e mysql_cluster_replicas=4 on
    two pods of 10.11: the new pods are made on 10.11 and copy from 10.11
    peers, then roll and upgrade with the others (db-3, made on 11.8 while
    db-2 copied, would find no donor of its version and the roll would stall)."""
    c = _new_cluster(tmp_path, "mariadb", "10.11", "scaleup", replicas=2)
    try:
        out, recap = run_playbook(SITE, *c.deploy_args, "-e", "mysql_cluster_version=11.8",
                                  "-e", "mysql_cluster_replicas=4", "-e", "mysql_cluster_wait_timeout=300", check=False)
        assert recap.get("failed") == 0, out[-6000:]
        assert _rolled_order(out) == ["db-3", "db-2", "db-1", "db-0"], out[-6000:]
        for pod in ("db-2", "db-3"):
            lines = c.events(pod).splitlines()
            copied = [i for i, line in enumerate(lines) if "backup received and prepared" in line]
            upgraded = [i for i, line in enumerate(lines) if "mariadb-upgrade from 10.11.18 to 11.8.9 done" in line]
            assert len(copied) == 1 and len(upgraded) == 1 and copied[0] < upgraded[0], (pod, lines)
        for i in range(4):
            assert c.sql(c.pod(i), "SELECT VERSION()").startswith("11.8.9")
    finally:
        _retire(c)


def _init_log(c, pod):
    try:
        return c.core.read_namespaced_pod_log(pod, c.namespace, container="init")
    except Exception:  # noqa: BLE001 - not started yet
        return ""


@pytest.mark.full_tier
def test_mysql_image_and_config_roll_under_writes_and_a_failed_roll(tmp_path):
    c = _new_cluster(tmp_path, "mysql", "9.7", "mysql")
    retag = "localhost/stateful-mysql/mysql:9.7-rolled"
    subprocess.run(CTR + ["images", "tag", "--force", "localhost/stateful-mysql/mysql:9.7", retag], check=True,
                   capture_output=True)
    try:
        pods = [c.pod(i) for i in range(3)]
        for extra, what in ((["-e", "mysql_cluster_image=" + retag], "image"),
                            (["-e", "mysql_cluster_image=" + retag, "-e",
                              json.dumps({"mysql_cluster_server_config": {"max_connections": 321}})], "config")):
            with AckedWriter(c) as w:
                wait_until(lambda: len(w.acked) > 50, 60, "the first acknowledged writes")
                out, recap = run_playbook(SITE, *c.deploy_args, *extra)
                time.sleep(3)
            assert _rolled_order(out) == ["db-2", "db-1", "db-0"], out[-6000:]
            _checksums_equal(c, pods)
            for p in pods:
                assert w.missing_on(p) == [], (what, p)
            print("%s roll: %d acknowledged, longest gap %.1fs" % (what, len(w.acked), w.longest_gap()))
        for p in pods:
            assert _image(c, p) == retag
            assert c.sql(p, "SELECT @@max_connections") == "321"
            # Same version: no upgrade step, the server's own check found nothing.
            assert count(c.events(p), "upgrade:") == 0, c.events(p)
        settings = ["-e", "mysql_cluster_image=" + retag, "-e",
                    json.dumps({"mysql_cluster_server_config": {"max_connections": 321}})]

        # An image that cannot start: the roll stops at db-2, the others serve.
        out, recap = run_playbook(SITE, *c.deploy_args, "-e", "mysql_cluster_image=localhost/stateful-mysql/mysql:nope",
                                  "-e", json.dumps({"mysql_cluster_server_config": {"max_connections": 321}}),
                                  "-e", "mysql_cluster_wait_timeout=60", check=False)
        assert recap["failed"] == 1, out[-4000:]
        assert "the roll of StatefulSet %s/db stopped at db-2" % c.namespace in out, out[-4000:]
        assert "ErrImagePull" in out or "ImagePullBackOff" in out, out[-4000:]
        flat = " ".join(out.split())
        assert "partition stays at 2" in flat and "Way back: set back what changed" in flat, out[-4000:]
        assert _partition(c) == 2
        for p in pods[:2]:
            assert _image(c, p) == retag
        with AckedWriter(c, read_service=False) as w:
            wait_until(lambda: len(w.acked) > 20, 60, "writes on the primary while db-2 cannot start")
        assert c.replica_status("db-1").get("Replica_SQL_Running") == "Yes"
        # Set back: db-2 returns to the previous template, the roll ends.
        out, recap = run_playbook(SITE, *c.deploy_args, *settings)
        assert "never became Ready, so it was deleted" in " ".join(out.split()), out[-4000:]
        assert _partition(c) == 0 and _image(c, "db-2") == retag
        c.wait_ready(3)
        out, recap = run_playbook(SITE, *c.deploy_args, *settings)
        assert recap["changed"] == 0, out[-4000:]
    finally:
        subprocess.run(CTR + ["images", "rm", retag], check=False, capture_output=True)
        _retire(c)
