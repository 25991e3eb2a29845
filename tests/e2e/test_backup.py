"""Backups and restores (backup.yml, restore.yml, list_backups.yml, the
CronJob; scripts backup.sh and restore.sh, init.sh's finish_restore) on the
shared clusters, into the backup PVC of their namespace:

- a backup taken under a write load comes from a replica, and restored into
  a new cluster (other passwords) holds exactly the source's rows up to the
  backup's GTID position, every write acknowledged before the backup began
  among them; its primary carries the GTID history on from the backup's
  position, its replicas copy from it, it replicates (verify.yml); a rerun
  changes nothing; its teardown leaves the backups;
- a backup with one byte changed, and a backup of another flavor, are
  refused before anything of the new cluster exists;
- the CronJob takes backups without Ansible, keeps the newest by its
  retention, and one of them restores."""
import base64
import json
import os
import re

import pytest
from kubernetes import client

from kube import (NO_PASSWORDS, REMOTE_ROOT, ROOT, AckedWriter, Cluster, deploy_args, run_playbook, wait_until)

BACKUP = os.path.join(ROOT, "backup.yml")
RESTORE = os.path.join(ROOT, "restore.yml")
LIST = os.path.join(ROOT, "list_backups.yml")
VERIFY = os.path.join(ROOT, "verify.yml")
TEARDOWN = os.path.join(ROOT, "teardown.yml")
SITE = os.path.join(ROOT, "site.yml")
FLAVORS = pytest.mark.only_flavors("mysql-9.7", "mariadb-11.8")


def _flat(out):
    return " ".join(out.split())


def _backup_id(out):
    m = re.search(r"Backup ([a-z][-a-z0-9]*-\d{8}T\d{6}Z) in PVC", _flat(out))
    assert m, out[-3000:]
    return m.group(1)


def _backups(c, tmp_path):
    """list_backups.yml's table rows, parsed: id -> row."""
    out = run_playbook(LIST, *c.deploy_args)[0]
    rows = {}
    for line in re.findall(r"(?:rb|rc|db)-\d{8}T\d{6}Z \|[^\"\n]*", out):
        parts = [p.strip() for p in line.split("|")]
        rows[parts[0]] = parts
    return rows


def _manifest(c, backup_id):
    """The manifest as the check Job of restore.yml would read it: from a pod
    that mounts the backup PVC (the shared cluster's pods do not)."""
    rc, out = _pvc_shell(c, "cat /backups/%s/manifest.json" % backup_id)
    assert rc == 0, out
    return json.loads(out.strip().splitlines()[-1])


def _pvc_shell(c, script, name="backup-poke"):
    """A shell script in a pod of the cluster's image that mounts the backup PVC."""
    image = [x.image for x in c.core.read_namespaced_pod("db-0", c.namespace).spec.containers][0]
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never", automount_service_account_token=False,
            security_context=client.V1PodSecurityContext(run_as_user=999, run_as_group=999, run_as_non_root=True,
                                                         fs_group=999),
            containers=[client.V1Container(name="sh", image=image, image_pull_policy="IfNotPresent",
                                           command=["/bin/bash", "-c", script],
                                           volume_mounts=[client.V1VolumeMount(name="b", mount_path="/backups")])],
            volumes=[client.V1Volume(name="b", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                claim_name="mysql-backups"))]))
    c.core.create_namespaced_pod(c.namespace, pod)
    try:
        def done():
            p = c.core.read_namespaced_pod(name, c.namespace)
            return p if p.status.phase in ("Succeeded", "Failed") else None
        p = wait_until(done, 180, "pod %s to end" % name, step=1)
        log = c.core.read_namespaced_pod_log(name, c.namespace)
        return (0 if p.status.phase == "Succeeded" else 1), log
    finally:
        c.core.delete_namespaced_pod(name, c.namespace, grace_period_seconds=0)
        wait_until(lambda: not [p for p in c.core.list_namespaced_pod(c.namespace).items if p.metadata.name == name],
                   120, "pod %s gone" % name)


def _rows(c, pod, upto=None):
    where = "" if upto is None else " WHERE id <= %d" % upto
    return [int(x) for x in c.sql(pod, "SELECT id FROM e2e.acked%s ORDER BY id" % where).split()]


def _fingerprint(c, pod, upto):
    return c.sql(pod, "SELECT COUNT(*), BIT_XOR(CRC32(CONCAT(id, ':', at))) FROM e2e.acked WHERE id <= %d" % upto)


def _nothing_made(c, name):
    """No object of cluster `name` in the namespace."""
    ns = c.namespace
    assert not [s for s in c.apps.list_namespaced_stateful_set(ns).items if s.metadata.name == name]
    assert not [p for p in c.core.list_namespaced_persistent_volume_claim(ns).items
                if p.metadata.name.startswith("data-%s-" % name)]
    assert not [m for m in c.core.list_namespaced_config_map(ns).items if m.metadata.name.startswith(name + "-")]
    assert not [s for s in c.core.list_namespaced_secret(ns).items if s.metadata.name.startswith(name + "-")]


def _teardown(c, name, tmp_path):
    args = deploy_args(c.flavor, c.version, name, c.namespace, str(tmp_path))
    run_playbook(TEARDOWN, *args, "-e", "confirm=" + name)


@FLAVORS
@pytest.mark.landing("mariadb-11.8")
def test_backup_under_load_restores_into_a_new_cluster(deployed_cluster, tmp_path):
    c = deployed_cluster
    if c.flavor == "mysql":
        # A GTID set of two server_uuids (as after a reseed of the primary):
        # the client prints the newline between them as "\n".
        c.sql(c.pod(0), "SET GTID_NEXT='e2e00000-0000-0000-0000-00000000b0c1:1'; BEGIN; COMMIT; "
                        "SET GTID_NEXT=AUTOMATIC")
    with AckedWriter(c, read_service=False) as w:
        wait_until(lambda: len(w.acked) > 30, 60, "the first acknowledged writes")
        before = max(w.acked)
        out, recap = run_playbook(BACKUP, *c.deploy_args)
        n = len(w.acked)
        wait_until(lambda: len(w.acked) > n + 20, 60, "writes after the backup")
    backup_id = _backup_id(out)
    flat = _flat(out)
    assert recap["failed"] == 0
    # From a replica, never the primary.
    assert re.search(r"from db-[12]\)", flat), flat[-2000:]
    m = _manifest(c, backup_id)
    assert m["flavor"] == c.flavor and m["version"] == c.version and m["source"] in ("db-1", "db-2"), m
    assert m["gtid"] and m["size"] > 1024 * 1024 and len(m["sha256"]) == 64, m
    assert "\\n" not in m["gtid"] and (c.flavor != "mysql" or "," in m["gtid"]), m
    assert backup_id in _backups(c, tmp_path)

    # A new cluster of the same namespace, with passwords of its own.
    args = deploy_args(c.flavor, c.version, "rb", c.namespace, str(tmp_path), dict(REMOTE_ROOT, **NO_PASSWORDS))
    try:
        out, recap = run_playbook(RESTORE, *args, "-e", "backup=" + backup_id)
        assert "restored from backup %s" % backup_id in _flat(out), out[-3000:]
        r = Cluster("rb", c.namespace, c.flavor, c.version)
        r.wait_ready(3)
        top = max(_rows(r, "rb-0"))
        # Every write acknowledged before the backup began, and exactly the
        # source's rows up to the backup's position (one writer, in order).
        assert top >= before, (top, before)
        assert _rows(r, "rb-0") == _rows(c, "db-0", top)
        assert _fingerprint(r, "rb-0", top) == _fingerprint(c, "db-0", top)
        # The primary starts its own history where the backup left off.
        events = r.events("rb-0")
        assert "restore: primary made from backup %s at GTID %s" % (backup_id, m["gtid"]) in events, events[-2000:]
        if c.flavor == "mariadb":
            assert "restore: mariadb-upgrade" not in events
        # Its replicas copied from it (or each other), and it replicates.
        for pod in ("rb-1", "rb-2"):
            assert _rows(r, pod, top) == _rows(c, "db-0", top)
        run_playbook(VERIFY, *args)
        # A rerun finds it done.
        out, recap = run_playbook(RESTORE, *args, "-e", "backup=" + backup_id)
        assert recap["changed"] == 0, out[-3000:]
        assert "was restored from backup %s already" % backup_id in _flat(out)
    finally:
        if os.environ.get("E2E_KEEP") != "1":
            _teardown(c, "rb", tmp_path)
    # Teardown never deletes backups.
    assert c.core.read_namespaced_persistent_volume_claim("mysql-backups", c.namespace)
    assert backup_id in _backups(c, tmp_path)


# The check Job and the refusals are the same for both flavors: on MySQL, whose
# backup is a tar of a clone (MariaDB's stream is the landing tier's).
@pytest.mark.only_flavors("mysql-9.7")
@pytest.mark.full_tier
def test_restore_refuses_a_damaged_backup_and_another_flavor(deployed_cluster, tmp_path):
    c = deployed_cluster
    out = run_playbook(BACKUP, *c.deploy_args)[0]
    backup_id = _backup_id(out)
    m = _manifest(c, backup_id)

    other = ("mariadb", "11.8") if c.flavor == "mysql" else ("mysql", "9.7")
    args = deploy_args(other[0], other[1], "rx", c.namespace, str(tmp_path), NO_PASSWORDS)
    out, recap = run_playbook(RESTORE, *args, "-e", "backup=" + backup_id, check=False)
    assert recap["failed"] == 1
    assert "it is a backup of %s %s and this cluster runs %s (mysql_cluster_flavor)" % (
        c.flavor, c.version, other[0]) in _flat(out), out[-3000:]
    _nothing_made(c, "rx")

    # One byte of the data changed.
    offset = m["size"] // 2
    rc, log = _pvc_shell(c, (
        "set -e; f=/backups/%s/%s; b=$(od -An -tx1 -j %d -N1 \"$f\" | tr -d ' '); "
        "printf \"\\\\x$(printf %%02x $(( (0x$b + 1) %% 256 )))\" | dd of=\"$f\" bs=1 seek=%d conv=notrunc status=none; "
        "echo changed $b") % (backup_id, m["file"], offset, offset))
    assert rc == 0 and "changed" in log, log
    args = deploy_args(c.flavor, c.version, "rx", c.namespace, str(tmp_path), NO_PASSWORDS)
    out, recap = run_playbook(RESTORE, *args, "-e", "backup=" + backup_id, check=False)
    assert recap["failed"] == 1
    assert "backup %s is damaged: the checksum of its data is not the one its manifest records" % backup_id \
        in _flat(out), out[-3000:]
    _nothing_made(c, "rx")
    # No Job left behind either.
    wait_until(lambda: not client.BatchV1Api().list_namespaced_job(c.namespace).items, 60, "no Job left")


# The CronJob runs the Job backup.yml runs: on one flavor.
@pytest.mark.only_flavors("mariadb-11.8")
@pytest.mark.full_tier
def test_the_cronjob_backs_up_keeps_the_newest_and_restores(deployed_cluster, tmp_path):
    c = deployed_cluster
    batch = client.BatchV1Api()
    site = ["-e", json.dumps({"mysql_cluster_backup_schedule": "* * * * *", "mysql_cluster_backup_keep_count": 2})]
    try:
        run_playbook(SITE, *c.deploy_args, *site)
        assert batch.read_namespaced_cron_job("db-backup", c.namespace)
        out, recap = run_playbook(SITE, *c.deploy_args, *site)
        assert recap["changed"] == 0, out[-3000:]

        def succeeded():
            jobs = [j for j in batch.list_namespaced_job(c.namespace).items
                    if (j.metadata.owner_references or [{}])[0].kind == "CronJob" and (j.status.succeeded or 0) >= 1]
            return jobs if len(jobs) >= 3 else None
        wait_until(succeeded, 300, "three backups of the CronJob", step=5)
    finally:
        run_playbook(SITE, *c.deploy_args, "-e", "mysql_cluster_backup_schedule=")
    assert not [j for j in batch.list_namespaced_cron_job(c.namespace).items if j.metadata.name == "db-backup"]
    # Let a Job that had started end, then read what is kept.
    wait_until(lambda: not [j for j in batch.list_namespaced_job(c.namespace).items if not j.status.completion_time
                            and not j.status.failed], 300, "the CronJob's last Job to end", step=5)
    rows = _backups(c, tmp_path)
    ours = sorted(i for i in rows if i.startswith("db-"))
    assert len(ours) == 2, rows
    newest = ours[-1]
    args = deploy_args(c.flavor, c.version, "rc", c.namespace, str(tmp_path), NO_PASSWORDS)
    try:
        run_playbook(RESTORE, *args, "-e", "backup=" + newest)
        r = Cluster("rc", c.namespace, c.flavor, c.version)
        r.wait_ready(3)
        run_playbook(VERIFY, *args)
    finally:
        if os.environ.get("E2E_KEEP") != "1":
            _teardown(c, "rc", tmp_path)


def _key_secret(c, name, value):
    """A Secret holding a backup encryption key under `key`."""
    try:
        c.core.delete_namespaced_secret(name, c.namespace)
    except client.ApiException as e:
        if e.status != 404:
            raise
    c.core.create_namespaced_secret(c.namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=name), string_data={"key": value}))


# Encryption is the same openssl step on both flavors' streams: on MySQL,
# whose tar would show a row's text in the clear.
@pytest.mark.only_flavors("mysql-9.7")
@pytest.mark.full_tier
def test_an_encrypted_backup_holds_no_plaintext_and_restores_only_with_its_key(deployed_cluster, tmp_path):
    c = deployed_cluster
    marker = "plain-%s" % base64.b32encode(os.urandom(10)).decode().lower()
    c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS e2e; CREATE TABLE IF NOT EXISTS e2e.marker (s VARCHAR(64) PRIMARY KEY); "
                    "INSERT INTO e2e.marker VALUES ('%s')" % marker)
    for pod in (c.pod(1), c.pod(2)):
        wait_until(lambda p=pod: c.sql(p, "SELECT COUNT(*) FROM e2e.marker WHERE s = '%s'" % marker) == "1",
                   60, "the marker row on %s" % pod)
    key = base64.b64encode(os.urandom(48)).decode()
    _key_secret(c, "bk-key", key)
    _key_secret(c, "bk-other", base64.b64encode(os.urandom(48)).decode())
    _key_secret(c, "bk-short", "too-short")
    enc = ["-e", "mysql_cluster_backup_encryption_secret=bk-key"]
    try:
        # A key too short is refused, naming the variable, before any Job.
        out, recap = run_playbook(BACKUP, *c.deploy_args, "-e", "mysql_cluster_backup_encryption_secret=bk-short",
                                  check=False)
        assert recap["failed"] == 1
        assert "has no key \"key\" of 32 characters or more (mysql_cluster_backup_encryption_secret)" \
            in _flat(out), out[-3000:]
        assert key not in out

        out = run_playbook(BACKUP, *c.deploy_args, *enc)[0]
        assert key not in out
        backup_id = _backup_id(out)
        m = _manifest(c, backup_id)
        assert m["encryption"] == "aes-256-ctr pbkdf2-sha256 200000" and m["file"] == "data.tar.enc", m
        assert re.fullmatch(r"[0-9a-f]{62}", m["key_check"]), m
        listed = re.search(re.escape(backup_id) + r" \|[^\"]*?\| (yes|no)\b", _flat(run_playbook(LIST, *c.deploy_args)[0]))
        assert listed and listed.group(1) == "yes", listed
        # The stored file: openssl's salted header, no tar header, no row's text.
        rc, log = _pvc_shell(c, (
            "f=/backups/%s/%s; head -c 8 \"$f\"; echo; "
            "if grep -a -q -e ustar -e %s \"$f\"; then echo plaintext; else echo none; fi") % (
            backup_id, m["file"], marker))
        assert rc == 0 and log.split() == ["Salted__", "none"], log

        # Without the key, and with another key: refused before anything is made.
        args = deploy_args(c.flavor, c.version, "rx", c.namespace, str(tmp_path), NO_PASSWORDS)
        out, recap = run_playbook(RESTORE, *args, "-e", "backup=" + backup_id, check=False)
        assert recap["failed"] == 1
        assert "backup %s is encrypted (aes-256-ctr pbkdf2-sha256 200000): name the Secret holding its key with " \
            "-e mysql_cluster_backup_encryption_secret=<name>" % backup_id in _flat(out), out[-3000:]
        _nothing_made(c, "rx")
        out, recap = run_playbook(RESTORE, *args, "-e", "backup=" + backup_id,
                                  "-e", "mysql_cluster_backup_encryption_secret=bk-other", check=False)
        assert recap["failed"] == 1
        assert "the key in Secret bk-other (mysql_cluster_backup_encryption_secret) is not the one backup %s was " \
            "encrypted with" % backup_id in _flat(out), out[-3000:]
        _nothing_made(c, "rx")
        wait_until(lambda: not client.BatchV1Api().list_namespaced_job(c.namespace).items, 60, "no Job left")

        # With its key: the marker row is back.
        args = deploy_args(c.flavor, c.version, "re", c.namespace, str(tmp_path),
                           dict(NO_PASSWORDS, mysql_cluster_replicas=1))
        try:
            out = run_playbook(RESTORE, *args, "-e", "backup=" + backup_id, *enc)[0]
            assert "restored from backup %s" % backup_id in _flat(out), out[-3000:]
            assert key not in out
            r = Cluster("re", c.namespace, c.flavor, c.version)
            r.wait_ready(1)
            assert r.sql("re-0", "SELECT s FROM e2e.marker WHERE s = '%s'" % marker) == marker
            # A one-pod cluster is backed up from its primary, and says so.
            out = run_playbook(BACKUP, *args)[0]
            one = _backup_id(out)
            assert "(clone from re-0, the primary of a one-pod cluster)" in _flat(out), out[-3000:]
            m = _manifest(c, one)
            assert m["source"] == "re-0" and m["cluster"] == "re" and not m["encryption"], m
        finally:
            if os.environ.get("E2E_KEEP") != "1":
                _teardown(c, "re", tmp_path)
    finally:
        for name in ("bk-key", "bk-other", "bk-short"):
            c.core.delete_namespaced_secret(name, c.namespace)
