"""Backup and restore throughput (issue 29) against the disk's sequential
write speed, side by side in one run on one cluster per flavor:

- the disk: `dd` 1 GiB with fdatasync on pod 0's volume (bench/scripts/copy.sh;
  the backup PVC and the data volumes are on the same StorageClass and disk);
- backup.yml: the manifest's size over its seconds (the whole Job: source
  choice, the copy, for MySQL the private servers' initialisation and
  starts, the checksum, the file synced to disk before the manifest), and
  over its copy_seconds (the data moving alone: the stream; the clone and
  its tar);
- restore.yml into a new one-pod cluster: the restore Job's bytes over its
  seconds (the data file read and hashed, extracted, for MariaDB prepared,
  the volume synced), as the Job reports them;
- the same backup and restore encrypted at rest
  (mysql_cluster_backup_encryption_secret: openssl enc AES-256-CTR in the
  Job), beside the plain ones: what encryption costs.

A one-pod cluster per flavor (the backup then comes from its primary, which
the Job says), loaded with rows that are not binary-logged (copy.sh load),
so that the load takes seconds, not a replication of a gigabyte. Full: MySQL
9.7 and MariaDB 11.8, about 1 GB each, three interleaved repetitions. Smoke:
MariaDB 11.8 with about 40 MB, one of each. Goal: backup and restore at
least 60% of dd."""
import base64
import os
import re

from kubernetes import client

import common
import copy_throughput
from common import kube

GOAL = 0.6
MB = 1e6


def _backup(args):
    """backup.yml; its message's size (MiB), seconds and method."""
    out = " ".join(common.timed_playbook("backup.yml", args)[2].split())
    m = re.search(r"Backup (\S+) in PVC \S+ \S+ [0-9.]+, ([0-9.]+) MiB \((\S+) from ([^,)]+)[^)]*\), GTID \S*, "
                  r"sha256 \w+, "
                  r"([0-9.]+) s \(([0-9.]+) s moving data\)", out)
    assert m, out[-2000:]
    return {"id": m.group(1), "size": float(m.group(2)) * 1048576, "method": m.group(3), "source": m.group(4),
            "seconds": float(m.group(5)), "copy_seconds": float(m.group(6))}


def _restore(flavor, version, ns, backup_id, name, extra=()):
    args = common.site_args(flavor, version, name, ns, dict(mysql_cluster_replicas=1, mysql_cluster_storage_size="8Gi"))
    out = common.timed_playbook("restore.yml", args + ["-e", "backup=" + backup_id] + list(extra))[2]
    m = re.search(r"Its volume was filled in ([0-9.]+) s", " ".join(out.split()))
    return float(m.group(1))


def bench_flavor(res, flavor, version, rows, reps, mib, label):
    ns = common.namespace("bkp-" + flavor[:5])
    args = common.site_args(flavor, version, "db", ns, dict(mysql_cluster_replicas=1, mysql_cluster_storage_size="8Gi",
                                                            **copy_throughput.UNCAPPED))
    try:
        common.timed_playbook("site.yml", args)
        c = kube.Cluster("db", ns, flavor, version)
        loaded = copy_throughput.in_pod(c, c.pod(0), "load", rows)
        res.note("%s: %d rows of 3968 bytes, datadir %.2f GB" % (label, loaded["rows"], loaded["datadir_bytes"] / 1e9))
        c.core.create_namespaced_secret(ns, client.V1Secret(
            metadata=client.V1ObjectMeta(name="bench-key"),
            string_data={"key": base64.b64encode(os.urandom(48)).decode()}))
        enc = ["-e", "mysql_cluster_backup_encryption_secret=bench-key"]
        for i in range(reps):
            before = common.load()
            m = copy_throughput.in_pod(c, c.pod(0), "dd", mib)
            dd = m["bytes"] / (m["end"] - m["start"]) / MB
            man = _backup(args)
            seconds = _restore(flavor, version, ns, man["id"], "rs%d" % i)
            common.timed_playbook("teardown.yml", common.site_args(flavor, version, "rs%d" % i, ns)
                                  + ["-e", "confirm=rs%d" % i])
            sealed = _backup(args + enc)
            sealed_seconds = _restore(flavor, version, ns, sealed["id"], "re%d" % i, enc)
            res.rep(flavor=label, rep=i + 1, dd_mb_s=round(dd, 1), backup_bytes=man["size"],
                    backup_seconds=man["seconds"], backup_mb_s=round(man["size"] / man["seconds"] / MB, 1),
                    backup_copy_seconds=man["copy_seconds"],
                    backup_copy_mb_s=round(man["size"] / man["copy_seconds"] / MB, 1),
                    restore_seconds=seconds, restore_mb_s=round(man["size"] / seconds / MB, 1),
                    encrypted_backup_mb_s=round(sealed["size"] / sealed["seconds"] / MB, 1),
                    encrypted_backup_copy_mb_s=round(sealed["size"] / sealed["copy_seconds"] / MB, 1),
                    encrypted_restore_mb_s=round(sealed["size"] / sealed_seconds / MB, 1),
                    method=man["method"], load_before=before, load_after=common.load())
            common.timed_playbook("teardown.yml", common.site_args(flavor, version, "re%d" % i, ns)
                                  + ["-e", "confirm=re%d" % i])
    except Exception as exc:  # noqa: BLE001 - recorded, the next flavor still runs
        res.rep(flavor=label, kind="setup", error=str(exc)[-2000:], load_after=common.load())
    finally:
        common.drop(ns)


def judge(res):
    text, parts = [], []
    for label in sorted({r["flavor"] for r in res.data["repetitions"] if "dd_mb_s" in r}):
        reps = [r for r in res.data["repetitions"] if r.get("flavor") == label and "dd_mb_s" in r]
        dd = common.median([r["dd_mb_s"] for r in reps])
        b = common.median([r["backup_mb_s"] for r in reps])
        bc = common.median([r.get("backup_copy_mb_s") or 0 for r in reps])
        r = common.median([r["restore_mb_s"] for r in reps])
        eb = common.median([r.get("encrypted_backup_mb_s") or 0 for r in reps])
        er = common.median([r.get("encrypted_restore_mb_s") or 0 for r in reps])
        parts += [b >= GOAL * dd, r >= GOAL * dd]
        text.append("%s: backup %.0f MB/s end to end (%.0f%%; moving the data alone %.0f MB/s, %.0f%%), "
                    "restore %.0f MB/s (%.0f%%) of dd %.0f MB/s; encrypted: backup %.0f MB/s, restore %.0f MB/s"
                    % (label, b, 100 * b / dd, bc, 100 * bc / dd, r, 100 * r / dd, dd, eb, er))
    res.target("backup and restore >= 60% of the disk's dd fdatasync write speed",
               "; ".join(text) + " (medians)" if text else "not measured", all(parts) if parts else None)


def run(ctx, smoke):
    res = common.Result("backup_throughput", "Backup and restore throughput vs the disk's write speed", smoke)
    if smoke:
        res.note("smoke: %d rows (about 40 MB) on a one-pod MariaDB 11.8 cluster, one repetition; dd 64 MiB"
                 % copy_throughput.SMOKE_ROWS)
        bench_flavor(res, "mariadb", "11.8", copy_throughput.SMOKE_ROWS, 1, 64, "mariadb 11.8")
    else:
        res.note("dd writes 1 GiB with fdatasync on pod 0's volume; the backup is synced before its manifest, "
                 "the restored volume before the Job ends.")
        for flavor, version in (("mysql", "9.7"), ("mariadb", "11.8")):
            bench_flavor(res, flavor, version, copy_throughput.FULL_ROWS, 3, 1024, "%s %s" % (flavor, version))
    judge(res)
    res.save()
    return res
