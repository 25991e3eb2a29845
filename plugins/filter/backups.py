# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.backup_refusal and stateful.mysql.backup_line: whether a
backup's manifest may seed a cluster of a given flavor and version
(restore.yml asks before it makes anything), and one line of
list_backups.yml's table."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: backup_refusal
short_description: Why a backup cannot seed a cluster of a flavor and version, or an empty string
description:
  - A backup restores into a cluster of its own flavor, on its own server version (major.minor) or on one
    the flavor table says is reached from it in one step (C(upgrade_from)); the restored primary then runs
    the upgrade step once. A backup of a newer version, another flavor, or a jump the vendor does not
    support is refused.
options:
  _input:
    description: The backup's manifest (C(manifest.json)).
    type: dict
    required: true
  flavor:
    description: The cluster's flavor.
    type: str
    required: true
  version:
    description: The cluster's version (major.minor).
    type: str
    required: true
  versions:
    description: The flavor's rows of the flavor table (each with C(upgrade_from)).
    type: dict
    required: true
"""

REQUIRED = ("id", "flavor", "version", "server_version", "file", "format", "sha256")


def _minor(version):
    return ".".join(str(version).split(".")[:2])


def _key(version):
    return tuple(int(p) if p.isdigit() else 0 for p in str(version).split("."))


def backup_refusal(manifest, flavor, version, versions):
    if not isinstance(manifest, dict):
        return "its manifest is not a JSON object"
    # MySQL's GTID set is empty before the first transaction; MariaDB's
    # position always names one (the first deploy writes one).
    missing = [k for k in REQUIRED + (("gtid",) if manifest.get("flavor") == "mariadb" else ()) if not manifest.get(k)]
    if missing:
        return "its manifest lacks %s" % ", ".join(missing)
    have, want = str(manifest["flavor"]), str(flavor)
    if have != want:
        return ("it is a backup of %s %s and this cluster runs %s (mysql_cluster_flavor): restore it into a "
                "%s cluster (-e mysql_cluster_flavor=%s -e mysql_cluster_version=%s)"
                % (have, manifest["version"], want, have, have, _minor(manifest["version"])))
    source, goal = _minor(manifest["version"]), _minor(version)
    if source == goal:
        return ""
    if _key(source) > _key(goal):
        return ("it is a backup of server %s, newer than this cluster's %s (mysql_cluster_version): an older "
                "server cannot read its data; restore it with -e mysql_cluster_version=%s"
                % (manifest["server_version"], goal, source))
    allowed = [str(v) for v in ((versions or {}).get(goal) or {}).get("upgrade_from", [])]
    if source not in allowed:
        return ("it is a backup of %s %s, and %s %s is reached from %s only (mysql_cluster_version): restore it "
                "with -e mysql_cluster_version=%s, then upgrade the cluster step by step"
                % (have, source, want, goal, ", ".join(allowed) or "no other version", source))
    return ""


def backup_line(manifest):
    return "%s | %s | %.1f | %s | %s %s | %s | %s" % (
        manifest.get("id"), manifest.get("finished"), int(manifest.get("size") or 0) / 1048576.0,
        manifest.get("gtid") or "-", manifest.get("flavor"), manifest.get("server_version"), manifest.get("source"),
        "yes" if manifest.get("encryption") else "no")


class FilterModule(object):
    def filters(self):
        return {"backup_refusal": backup_refusal, "backup_line": backup_line}
