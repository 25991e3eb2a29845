#!/usr/bin/env bash
# Build one local image from its recipe (images/recipes/<name>.env) into
#   $CACHE/images/<name>-<key>/{image.tar,digest,version,ref,build.log}
# where <key> hashes the recipe (and BUILD_FORMAT below): an image is
# rebuilt only when its recipe changes. Debian images come from debootstrap
# (--variant=minbase) into a folder, packed as an OCI layout by oci-pack.py.
#
#   build-image.sh <name>...      e.g. build-image.sh mysql-9.7 pause-1
#   build-image.sh --all          every image of CLUSTER_IMAGES (versions.env)
#   build-image.sh --path <name>  print the image folder (built or not)
# shellcheck source=lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

IMAGES_DIR=$CLUSTER_DIR/images
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# Bump when a change here or in oci-pack.py changes what an image contains.
BUILD_FORMAT=1
image_key() {
  local name=$1 extra=()
  [[ $name == pause-* ]] && extra=("$IMAGES_DIR/pause.go")
  { echo "format $BUILD_FORMAT"; cat "$IMAGES_DIR/recipes/$name.env" "${extra[@]}"; } | sha256sum | cut -c1-16
}
image_path() { echo "$CACHE/images/$1-$(image_key "$1")"; }

if [[ ${1:-} == --path ]]; then image_path "$2"; exit 0; fi
if [[ ${1:-} == --all ]]; then set -- "${CLUSTER_IMAGES[@]}"; fi
[[ $# -ge 1 ]] || die "usage: $0 <recipe name>... | --all"

# The recipe's build, run under the build lock with output to the build log.
build_debian() {
  set -euo pipefail
  local name=$1 dir=$2 rootfs=$2/rootfs
  # shellcheck disable=SC1090
  . "$IMAGES_DIR/recipes/$name.env"
  rm -rf "$rootfs"; mkdir -p "$rootfs"
  # shellcheck disable=SC2153  # from the recipe
  echo "debootstrap $SUITE: $PACKAGES"
  time debootstrap --variant=minbase --components=main --include="${PACKAGES// /,}" \
    "$SUITE" "$rootfs" "$MIRROR"
  local f
  for f in $MUST_HAVE; do
    [[ -e $rootfs/$f || -L $rootfs/$f ]] || { echo "missing /$f in the image"; return 1; }
  done
  if [[ -n ${MUST_FIND:-} ]]; then
    find "$rootfs/usr/lib" -name "$MUST_FIND" | grep -q . || { echo "missing $MUST_FIND in the image"; return 1; }
    find "$rootfs/usr/lib" -name "$MUST_FIND"
  fi
  chroot "$rootfs" getent passwd mysql || { echo "no mysql user in the image"; return 1; }
  local version
  version=$(dpkg-query --admindir="$rootfs/var/lib/dpkg" -W -f='${Version}' "$SERVER_PACKAGE")
  echo "server package $SERVER_PACKAGE $version"
  # shellcheck disable=SC2016  # expanded in the chroot
  chroot "$rootfs" /bin/sh -c 'for b in /usr/sbin/mariadbd /usr/sbin/mysqld; do if [ -x $b ]; then $b --version; break; fi; done' || true
  # Slim down: docs, man pages, locales, apt caches; the package's own
  # initialised datadir (our scripts initialise theirs).
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/i18n/locales/* "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log \
    "$rootfs"/var/lib/mysql/*
  : > "$rootfs/etc/resolv.conf"
  echo "localhost" > "$rootfs/etc/hostname"
  du -sh "$rootfs"
  echo "$version" > "$dir/version"
  echo "$SUITE" > "$dir/suite"
}

build_pause() {
  set -euo pipefail
  need_go
  local dir=$1 rootfs=$1/rootfs
  rm -rf "$rootfs"; mkdir -p "$rootfs"
  local src=$CACHE/src/pause; mkdir -p "$src"
  cp "$IMAGES_DIR/pause.go" "$src/main.go"
  printf 'module stateful-mysql.local/pause\n\ngo 1.24\n' > "$src/go.mod"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$rootfs/pause" .)
  echo "1" > "$dir/version"
  echo "static" > "$dir/suite"
}

pack() {
  set -euo pipefail
  local name=$1 dir=$2 key=$3
  # shellcheck disable=SC1090
  . "$IMAGES_DIR/recipes/$name.env"
  local version suite args=()
  version=$(cat "$dir/version") suite=$(cat "$dir/suite")
  if [[ $name == pause-* ]]; then args=(--entrypoint /pause); fi
  time python3 "$IMAGES_DIR/oci-pack.py" "$dir/rootfs" "$dir/image.tar" --name "$IMAGE" \
    --label "org.opencontainers.image.version=$version" \
    --label "io.stateful-mysql.server-version=$version" \
    --label "io.stateful-mysql.suite=$suite" \
    --label "io.stateful-mysql.recipe=$name-$key" \
    "${args[@]}" > "$dir/digest"
  echo "$IMAGE" > "$dir/ref"
  rm -rf "$dir/rootfs"
  echo "packed $IMAGE ($version) $(cat "$dir/digest") $(du -h "$dir/image.tar" | cut -f1)"
}

for name in "$@"; do
  [[ -f $IMAGES_DIR/recipes/$name.env ]] || die "no recipe $IMAGES_DIR/recipes/$name.env"
  key=$(image_key "$name")
  dir=$CACHE/images/$name-$key
  if [[ -f $dir/image.tar && -f $dir/digest ]]; then
    say "image $name: cached ($(cat "$dir/ref") $(cat "$dir/version"), $dir)"
    continue
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  if [[ $name == pause-* ]]; then
    # A few seconds of go build: not worth queueing for the lock.
    run_step "image $name: build pause binary" "$dir/build.log" build_pause "$dir"
  else
    run_locked "image $name: debootstrap" "$dir/build.log" build_debian "$name" "$dir"
  fi
  run_step "image $name: pack OCI layout" "$dir/pack.log" pack "$name" "$dir" "$key"
  cat "$dir/pack.log" >> "$dir/build.log"
  say "image $name: $(tail -n 1 "$dir/pack.log")"
done
