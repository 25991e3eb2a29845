#!/usr/bin/env bash
# Build one of the cluster's non-Kubernetes Go components into
# $CACHE/bin/<name>-<version>/ (skipped when already there), under the shared
# build lock:
#
#   build-tools.sh etcd v3.6.6         -> etcd, etcdctl (wrapper module)
#   build-tools.sh containerd v2.1.5   -> containerd, containerd-shim-runc-v2, ctr
#   build-tools.sh runc v1.5.2         -> runc (cgo, seccomp; needs libseccomp-dev)
#   build-tools.sh coredns v1.13.1     -> coredns
#   build-tools.sh kube-router v2.1.0  -> kube-router (its firewall runs here)
#
# etcd and containerd have `replace`/`exclude` in their go.mod, which
# `go install pkg@version` refuses, hence a generated wrapper module.
# shellcheck source=lib/common.sh
. "$(dirname "$0")/common.sh"

[[ $# -eq 2 ]] || die "usage: $0 etcd|containerd|runc|coredns|kube-router <version>"
name=$1 version=$2
out=$BIN_ROOT/$name-$version
src=$CACHE/src/$name-$version
logd=$CACHE/build-logs
case $name in
  etcd) want=(etcd etcdctl) ;;
  containerd) want=(containerd containerd-shim-runc-v2 ctr) ;;
  runc) want=(runc) ;;
  coredns) want=(coredns) ;;
  kube-router) want=(kube-router) ;;
  *) die "unknown component $name" ;;
esac
done_all=1
for b in "${want[@]}"; do [[ -x $out/$b ]] || done_all=0; done
if (( done_all )); then say "$name $version: already built in $out"; exit 0; fi
mkdir -p "$out" "$src"

need_go

upstream_gomod() {  # module@version -> path of its go.mod in the module cache
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'
}

build_etcd() {
  set -euo pipefail
  cd "$src"
  cat > go.mod <<EOM
module stateful-mysql.local/etcd-wrapper

go 1.24.0

require (
	go.etcd.io/etcd/server/v3 $version
	go.etcd.io/etcd/etcdctl/v3 $version
)
EOM
  mkdir -p cmd/etcd cmd/etcdctl
  cat > cmd/etcd/main.go <<'EOM'
// Command etcd runs the etcd server of the pinned release.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOM
  cat > cmd/etcdctl/main.go <<'EOM'
// Command etcdctl is the etcd client of the pinned release.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
EOM
  time go mod tidy
  time CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/" ./cmd/etcd ./cmd/etcdctl
}

build_containerd() {
  set -euo pipefail
  cd "$src"
  local m=github.com/containerd/containerd/v2 up
  up=$(upstream_gomod "$m@$version")
  {
    echo "module stateful-mysql.local/containerd-wrapper"
    echo
    echo "go $(awk '$1=="go"{print $2; exit}' "$up")"
    echo
    echo "require $m $version"
    echo
    # Repeat upstream's exclude lines (single-line and block forms).
    awk '/^exclude \(/{b=1; print; next} b{print; if ($0 ~ /^\)/) b=0; next} /^exclude /{print}' "$up"
  } > go.mod
  cat > tools.go <<'EOM'
//go:build tools

package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
EOM
  cat go.mod
  time go mod tidy
  time CGO_ENABLED=0 go build -trimpath -tags no_btrfs,no_devmapper,no_zfs,urfave_cli_no_docs \
    -ldflags "-s -w -X $m/version.Version=$version -X $m/version.Package=github.com/containerd/containerd/v2" \
    -o "$out/" $m/cmd/containerd $m/cmd/containerd-shim-runc-v2 $m/cmd/ctr
}

build_runc() {
  set -euo pipefail
  [[ -f /usr/include/seccomp.h ]] || { echo "libseccomp-dev is missing (run tests/cluster/deps.sh)"; return 1; }
  time CGO_ENABLED=1 GOBIN=$out GOFLAGS='' go install -trimpath -tags seccomp \
    -ldflags "-s -w -X main.version=${version#v}" "github.com/opencontainers/runc@$version"
}

build_coredns() {
  set -euo pipefail
  time CGO_ENABLED=0 GOBIN=$out GOFLAGS='' go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$version"
}

# kube-router's go.mod has no replace/exclude: `go install` takes it as it is.
build_kube_router() {
  set -euo pipefail
  local v=github.com/cloudnativelabs/kube-router/v2/pkg/version
  time CGO_ENABLED=0 GOBIN=$out GOFLAGS='' go install -trimpath \
    -ldflags "-s -w -X $v.Version=$version -X $v.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$version"
}

run_locked "$name $version: build" "$logd/$name-$version.log" "build_${name//-/_}"
for b in "${want[@]}"; do [[ -x $out/$b ]] || die "$name $version: $b missing after build (log $logd/$name-$version.log)"; done
say "$name $version: built in $out"
