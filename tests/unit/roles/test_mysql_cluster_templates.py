"""Every mysql_cluster template renders for each flavor, version and main
option set, and each object validates against the Kubernetes 1.34 schema."""
import json
import os
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CASES = yaml.safe_load(open(os.path.join(HERE, "test_mysql_cluster_templates.yaml")))


def render(tmp_path, extra_vars):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(dict(extra_vars, render_dir=str(tmp_path))))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.path.join(HERE, "render.yml"), "-e", "@" + str(varfile)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    objects = {}
    for path in sorted(tmp_path.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_templates_render_and_validate(tmp_path, case):
    objects = render(tmp_path, case["vars"])
    assert len(objects) == 11
    for obj in objects.values():
        kubernetes_validate.validate(obj, "1.34", strict=True)

    v = case["vars"]
    name = v.get("mysql_cluster_name", "mysql")
    ns = v.get("mysql_cluster_namespace", "mysql")
    sts = objects[("StatefulSet", name)]
    assert sts["metadata"]["namespace"] == ns
    assert sts["spec"]["replicas"] == v.get("mysql_cluster_replicas", 3)
    assert sts["spec"]["serviceName"] == name
    assert sts["spec"]["podManagementPolicy"] == v.get("mysql_cluster_pod_management_policy", "OrderedReady")
    pod = sts["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    assert names == (["mysql", "donor"] if case["expect"]["donor_sidecar"] else ["mysql"])
    # No password in any container's command, args or environment.
    for c in pod["containers"] + pod["initContainers"]:
        assert "env" not in c and "args" not in c
        assert all("password" not in part.lower() for part in c["command"])
    if "mysql_cluster_image" in v:
        assert {c["image"] for c in pod["containers"]} == {v["mysql_cluster_image"]}
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == v.get("mysql_cluster_storage_size", "10Gi")
    assert claim.get("storageClassName") == v.get("mysql_cluster_storage_class")

    env = objects[("ConfigMap", name + "-config")]["data"]["cluster.env"]
    assert "COPY_METHOD=%s" % case["expect"]["copy"] in env
    assert "VERSION=%s\n" % v.get("mysql_cluster_version", "9.7") in env
    assert "password" not in env.lower()
    common = objects[("ConfigMap", name + "-config")]["data"]["common.cnf"]
    flavor = v.get("mysql_cluster_flavor", "mysql")
    if flavor == "mysql":
        assert ("gtid-mode=ON" in common) == case["expect"]["gtid"]
    else:
        assert "gtid-strict-mode=ON" in common
    # Binary logs are kept a bounded number of days (7 unless set).
    days = v.get("mysql_cluster_binlog_expire_days", 7)
    if flavor == "mysql" and not case["expect"]["gtid"]:
        assert "expire-logs-days=%d\n" % days in common
    else:
        assert "binlog-expire-logs-seconds=%d\n" % (days * 86400) in common
    extra = objects[("ConfigMap", name + "-config")]["data"]["extra.cnf"]
    for key, value in v.get("mysql_cluster_server_config", {}).items():
        assert "%s=%s" % (key, value) in extra

    scripts = objects[("ConfigMap", name + "-scripts")]["data"]
    assert set(scripts) == {"lib.sh", "backup-info.sh", "init.sh", "server.sh", "probe.sh", "donor.sh", "donor-stream.sh",
                            "returning.sh", "mark-recopy.sh", "volume-owner.sh", "credentials.sh", "backup.sh",
                            "restore.sh", "xbstream-pick.sh", "backup-key.sh"}
    on_disk = open(os.path.join(ROOT, "roles/mysql_cluster/files/scripts/init.sh")).read()
    assert scripts["init.sh"] == on_disk.rstrip("\n")

    selector = sts["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/instance"] == name
    for kind, obj_name in [("Service", name), ("Service", name + "-read")]:
        assert objects[(kind, obj_name)]["spec"]["selector"] == selector
    assert objects[("Service", name)]["spec"]["clusterIP"] == "None"
    # The primary's name resolves while it is not Ready; reads go to Ready pods only.
    assert objects[("Service", name)]["spec"]["publishNotReadyAddresses"] is True
    assert "publishNotReadyAddresses" not in objects[("Service", name + "-read")]["spec"]
    if v.get("mysql_cluster_pdb_enabled", True):
        assert objects[("PodDisruptionBudget", name)]["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    # Every flavor mounts the cluster certificate and configures the server with it.
    assert {"name": "tls", "secret": {"secretName": name + "-tls", "defaultMode": 0o400}} in pod["volumes"]
    # (volume-owner only hands the volume to the server's uid.)
    for c in pod["containers"] + [c for c in pod["initContainers"] if c["name"] != "volume-owner"]:
        assert {"name": "tls", "mountPath": "/etc/stateful-mysql/tls", "readOnly": True} in c["volumeMounts"]
    assert "ssl-ca=/run/stateful-mysql/tls/ca.crt" in common and "ssl-key=/run/stateful-mysql/tls/tls.key" in common
    if case["expect"]["copy"] == "clone":
        assert "loose-clone_ssl_ca=/run/stateful-mysql/tls/ca.crt" in common
    policy = objects[("NetworkPolicy", name)]["spec"]
    assert policy["podSelector"]["matchLabels"] == selector
    peers = policy["ingress"][0]["from"]
    assert peers[0] == {"podSelector": {"matchLabels": selector}}
    # Then this cluster's backup Jobs (check_backup_objects), then the user's.
    backup_peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mysql-cluster-job",
                                                   "app.kubernetes.io/instance": name, "stateful.mysql/job": "backup"}}}
    assert peers[1] == backup_peer
    assert peers[2:] == v.get("mysql_cluster_network_policy_from", [])
    assert policy["ingress"][1]["from"] == [{"podSelector": {"matchLabels": selector}}, backup_peer]

    # Pod Security: non-root, seccomp, no privilege escalation, no capability
    # but CAP_CHOWN in the optional volume-owner step, no API token.
    assert pod["automountServiceAccountToken"] is False
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert psc["runAsUser"] == v.get("mysql_cluster_run_as_user", 999)
    assert psc["fsGroup"] == psc["runAsGroup"] == v.get("mysql_cluster_run_as_group", 999)
    inits = [c["name"] for c in pod["initContainers"]]
    assert inits == (["volume-owner", "init"] if v.get("mysql_cluster_volume_owner_init", True) else ["init"])
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
        if c["name"] == "volume-owner":
            assert sc["capabilities"]["add"] == ["CHOWN"] and sc["runAsUser"] == 0
        else:
            assert "add" not in sc["capabilities"] and "runAsUser" not in sc
    # The donor sidecar sees the donor password only.
    volumes = {vol["name"]: vol for vol in pod["volumes"]}
    for c in pod["containers"]:
        creds = [m["name"] for m in c["volumeMounts"] if m["mountPath"] == "/etc/stateful-mysql/credentials"]
        if c["name"] == "donor":
            assert creds == ["donor-credentials"]
            assert volumes["donor-credentials"]["secret"]["items"] == [{"key": "clone-password", "path": "clone-password"}]
        else:
            assert creds == ["credentials"]
    # The empty-primary rule: the init container reads the cluster's state,
    # which outlives the StatefulSet as the volumes do (no owner).
    state = objects[("ConfigMap", name + "-state")]
    assert state["data"] == {"initialised": "true"}
    assert "ownerReferences" not in state["metadata"]
    assert volumes["state"]["configMap"] == {"name": name + "-state", "optional": True}
    # Durable on every server; the donor sidecar mounts the datadir only, and
    # the replication connection (its password) lives beside it.
    assert "sync-binlog=1" in common and "innodb-flush-log-at-trx-commit=1" in common
    for c in pod["containers"]:
        data = [m for m in c["volumeMounts"] if m["name"] == "data"]
        if c["name"] == "donor":
            assert data == [{"name": "data", "mountPath": "/var/lib/mysql/data", "subPath": "data"}]
            assert "master-info-file=/var/lib/mysql/.stateful-mysql/replication/master.info" in common
        else:
            assert data == [{"name": "data", "mountPath": "/var/lib/mysql"}]

    check_backup_objects(tmp_path, case, objects)


def test_password_secret_keeps_every_character(tmp_path):
    """The render playbook's root password holds quotes, backquote, $, \\ and #."""
    import base64
    objects = render(tmp_path, {})
    data = objects[("Secret", "mysql-credentials")]["data"]
    assert base64.b64decode(data["root-password"]).decode() == "r'o\"o`t $x \\ #1"


def test_volume_owner_off_removes_that_step_only(tmp_path):
    """Storage that honours fsGroup: the same StatefulSet without the root
    CAP_CHOWN step (the e2e tests dry-run that pod under Pod Security restricted)."""
    flavor = {"mysql_cluster_flavor": "mariadb", "mysql_cluster_version": "11.8"}
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    on = render(tmp_path / "on", flavor)[("StatefulSet", "mysql")]
    off = render(tmp_path / "off", dict(flavor, mysql_cluster_volume_owner_init=False))[("StatefulSet", "mysql")]
    inits = on["spec"]["template"]["spec"]["initContainers"]
    assert [i["name"] for i in inits] == ["volume-owner", "init"]
    on["spec"]["template"]["spec"]["initContainers"] = inits[1:]
    assert on == off


def check_backup_objects(tmp_path, case, objects):
    """The backup, restore, check and list Jobs, the CronJob and the two PVCs."""
    v = case["vars"]
    name = v.get("mysql_cluster_name", "mysql")
    encrypted = v.get("mysql_cluster_backup_encryption_secret", "")
    backup = {}
    for doc in yaml.safe_load_all((tmp_path / "backup" / "objects.yaml").read_text()):
        if doc:
            backup[(doc["kind"], doc["metadata"]["name"])] = doc
    assert len(backup) == 7
    for obj in backup.values():
        kubernetes_validate.validate(obj, "1.34", strict=True)
    sts = objects[("StatefulSet", name)]
    selector = sts["spec"]["selector"]["matchLabels"]
    policy = objects[("NetworkPolicy", name)]["spec"]["ingress"]
    jobs = {k[1]: o for k, o in backup.items() if k[0] == "Job"}
    cron = backup[("CronJob", name + "-backup")]
    for job_name, pod in [(n, j["spec"]["template"]) for n, j in jobs.items()] + [
            ("cron", cron["spec"]["jobTemplate"]["spec"]["template"])]:
        labels = pod["metadata"]["labels"]
        # No Service sends clients to them.
        assert any(labels.get(k) != val for k, val in selector.items()), job_name
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
        for c in spec["containers"] + spec.get("initContainers", []):
            assert all("password" not in e["name"].lower() and "password" not in e.get("value", "").lower()
                       for e in c.get("env", []))
            assert all("password" not in part.lower() for part in c["command"])
        kind = labels["stateful.mysql/job"]
        mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["backups"]["mountPath"] == "/backups"
        assert mounts["backups"].get("readOnly") is (kind != "backup")
        secrets = [vol for vol in spec["volumes"] if "secret" in vol and vol["name"] == "credentials"]
        if kind == "backup":
            # Both server rules admit the backup's pods.
            for rule in policy:
                assert any(f.get("podSelector", {}).get("matchLabels", {}).items() <= labels.items()
                           and f["podSelector"]["matchLabels"].get("stateful.mysql/job") == "backup"
                           for f in rule["from"])
            assert [i["key"] for i in secrets[0]["secret"]["items"]] == ["replication-password", "clone-password"]
        else:
            assert not secrets
        # Encryption at rest: the key alone, read-only, in every Job that
        # reads or writes a backup's data; none without the setting, nor in
        # the listing (manifests only).
        key = [vol for vol in spec["volumes"] if vol["name"] == "backup-key"]
        if encrypted and job_name != "list-job":
            assert key == [{"name": "backup-key", "secret": {"secretName": encrypted, "defaultMode": 256,
                                                             "items": [{"key": "key", "path": "key"}]}}], job_name
            assert mounts["backup-key"] == {"name": "backup-key", "mountPath": "/etc/stateful-mysql/backup-key",
                                            "readOnly": True}
        else:
            assert not key and "backup-key" not in mounts
        if kind == "check":
            assert set(mounts) == {"backups"} | ({"backup-key"} if key else set())
            assert "initContainers" not in spec
    restore_volumes = {vol["name"]: vol for vol in jobs["restore-job"]["spec"]["template"]["spec"]["volumes"]}
    assert restore_volumes["data"]["persistentVolumeClaim"]["claimName"] == "data-%s-0" % name
    assert cron["spec"]["schedule"] == "0 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    # restore.yml's claim is the one the StatefulSet would make for ordinal 0.
    claim = sts["spec"]["volumeClaimTemplates"][0]
    data = backup[("PersistentVolumeClaim", "data-%s-0" % name)]
    assert data["spec"] == claim["spec"] and data["metadata"]["labels"] == claim["metadata"]["labels"]
    pvc = backup[("PersistentVolumeClaim", "mysql-backups")]
    assert not set(selector.items()) <= set(pvc["metadata"]["labels"].items())
