#!/usr/bin/env bash
# Debian 12 packages of the one-node Ceph (Ceph 16.2 pacific) and the rbd CLI
# the v1.30 controller-manager runs; installed once, on a fresh machine too.
set -euo pipefail
pkgs=(ceph-mon ceph-mgr ceph-osd ceph-common curl openssl)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "[ceph deps] installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -q
apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
