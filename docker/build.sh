#!/usr/bin/env bash
# docker/build.sh — build the kiseki image without a container registry
# (`make docker`).  DESIGN.md §12.
#
#   1. If the base image debian:bookworm-slim is not in the local image
#      store, make it: debootstrap a minbase Debian 12 root file system from
#      the Debian mirror and `docker import` it under that name.  Installs
#      debootstrap with apt first if it is missing (root only).
#   2. Build docker/Dockerfile (a normal `FROM debian:bookworm-slim`
#      multi-stage build) as kiseki:latest.  The build context is exactly
#      the repository's source files (tracked plus untracked-not-ignored, as
#      git sees them), so local build directories never enter the image.
#
# Environment:
#   KS_IMAGE           image name to build (default kiseki:latest)
#   KS_DEBIAN_MIRROR   mirror for debootstrap (default http://deb.debian.org/debian)
#   KS_DOCKER_NETWORK  network for RUN steps (default host: the image build
#                      reaches the Debian mirror the same way this host does)
#   KS_REBUILD_BASE=1  re-create debian:bookworm-slim even if present
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=debian:bookworm-slim
IMAGE=${KS_IMAGE:-kiseki:latest}
MIRROR=${KS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NETWORK=${KS_DOCKER_NETWORK:-host}

say() { echo "docker: $*"; }
die() {
  echo "docker: $*" >&2
  exit 1
}

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 ||
  die "cannot reach the Docker daemon (is it running? are you in the docker group?)"

make_base() {
  [ "$(id -u)" -eq 0 ] ||
    die "$BASE is missing and making it needs root (debootstrap): run sudo $0"
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q \
      install -y --no-install-recommends debootstrap ||
      { apt-get -q update &&
        DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
          --no-install-recommends debootstrap; } ||
      die "could not install debootstrap"
  fi

  local dir
  dir=$(mktemp -d "${TMPDIR:-/var/tmp}/ks-rootfs.XXXXXX")
  # The root file system holds device nodes and root-owned files: remove it
  # whatever happens.
  trap 'rm -rf --one-file-system "'"$dir"'"' EXIT
  say "debootstrap --variant=minbase bookworm from $MIRROR (a few minutes)"
  debootstrap --variant=minbase bookworm "$dir" "$MIRROR" ||
    die "debootstrap failed (see $dir/debootstrap/debootstrap.log)"

  # Make it look like the official slim image: the full set of Debian 12
  # suites in sources.list, no package cache or lists, no host identity.
  cat > "$dir/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  # Keep apt's caches out of image layers, as the official image does.
  cat > "$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'APT::Install-Recommends "false";\n' > "$dir/etc/apt/apt.conf.d/docker-no-recommends"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
         "$dir"/var/log/*.log "$dir"/var/log/apt/* "$dir"/debootstrap
  : > "$dir/etc/hostname"
  : > "$dir/etc/resolv.conf"

  say "importing the root file system as $BASE"
  tar --numeric-owner -C "$dir" -c . |
    docker import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --message "debootstrap --variant=minbase bookworm (Kiseki docker/build.sh)" \
      - "$BASE" >/dev/null
  rm -rf --one-file-system "$dir"
  trap - EXIT
}

if [ "${KS_REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "$BASE" >/dev/null 2>&1; then
  make_base
else
  say "using local $BASE"
fi

# Docker >= 23 clients build with BuildKit through the buildx plugin; without
# the plugin, fall back to the classic builder, which handles this file too.
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi

say "building $IMAGE from docker/Dockerfile"
cd "$ROOT"
{ git ls-files -z; git ls-files -z --others --exclude-standard; } |
  sort -zu |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar -c -f - --null -T - |
  docker build --force-rm --network "$NETWORK" -f docker/Dockerfile -t "$IMAGE" -
say "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" |
  awk '{printf "%.0f MiB", $1 / 1048576}'))"
