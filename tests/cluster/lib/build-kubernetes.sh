#!/usr/bin/env bash
# Build Kubernetes components from the published Go module, through a
# generated wrapper module (k8s.io/kubernetes' go.mod replaces its staging
# modules with ./staging paths, so `go install pkg@version` refuses it).
#
#   build-kubernetes.sh <version> <component>...
#   e.g. build-kubernetes.sh v1.34.4 kube-apiserver kubelet kubectl
#
# Binaries land in $CACHE/bin/kubernetes-<version>/<component>; components
# already there are skipped. The wrapper's `go` directive is the one of
# k8s.io/kubernetes' own go.mod (1.24.0 for v1.34, 1.22.0 for v1.30).
# shellcheck source=lib/common.sh
. "$(dirname "$0")/common.sh"

[[ $# -ge 2 ]] || die "usage: $0 <version> <component>..."
version=$1; shift
[[ $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "version must look like v1.34.4, got $version"
minor=${BASH_REMATCH[1]}
staging_version="v0.${minor}.${BASH_REMATCH[2]}"
out=$BIN_ROOT/kubernetes-$version
src=$CACHE/src/kubernetes-$version
mkdir -p "$out" "$src"

missing=()
for c in "$@"; do [[ -x $out/$c ]] || missing+=("$c"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  say "kubernetes $version: $* already built in $out"
  exit 0
fi

need_go

gen_wrapper() {
  set -euo pipefail
  cd "$src"
  local upstream_mod
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [[ -f $upstream_mod ]] || { echo "no go.mod for k8s.io/kubernetes@$version"; return 1; }
  local godir
  godir=$(awk '$1=="go"{print $2; exit}' "$upstream_mod")
  {
    echo "module stateful-mysql.local/kubernetes-wrapper"
    echo
    echo "go $godir"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    # Every staging module the upstream go.mod points at ./staging/..., minus
    # the sample-* ones, replaced by its published release.
    awk '/=> \.\/staging\// {print $1}' "$upstream_mod" | grep -v '/sample-' | sort -u |
      while read -r m; do echo "	$m => $m $staging_version"; done
    echo ")"
  } > go.mod
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in "${missing[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
  } > tools.go
  echo "wrapper go.mod:"; cat go.mod
  time go mod tidy
}

build() {
  set -euo pipefail
  cd "$src"
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
  local bd; bd=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ldflags="-s -w"
  local p
  for p in $pkg $cpkg; do
    ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$bd"
  done
  local pkgs=()
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  mkdir -p "$out.tmp"
  time CGO_ENABLED=0 go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$out.tmp/" "${pkgs[@]}"
  for c in "${missing[@]}"; do mv "$out.tmp/$c" "$out/$c"; done
  rmdir "$out.tmp" 2>/dev/null || true
}

logd=$CACHE/build-logs
run_locked "kubernetes $version: go mod tidy (wrapper)" "$logd/kubernetes-$version-tidy.log" gen_wrapper
run_locked "kubernetes $version: go build ${missing[*]}" "$logd/kubernetes-$version-build.log" build
for c in "${missing[@]}"; do [[ -x $out/$c ]] || die "kubernetes $version: $c not built"; done
say "kubernetes $version: $("$out/${missing[0]}" --version 2>/dev/null | head -1 || true) in $out"
