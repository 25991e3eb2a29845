#!/usr/bin/env bash
# build-etcd.sh <version>: etcd + etcdctl into $CACHE/bin/etcd-<version>/.
exec "$(dirname "$0")/build-tools.sh" etcd "${1:?usage: $0 <version, e.g. v3.6.6>}"
