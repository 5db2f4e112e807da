#!/bin/sh
# Install the Debian 12 packages that Kiseki's build, tests, lint, fuzzing and
# benchmarks need.  Idempotent and quiet: when everything is present it exits 0
# at once without touching apt, so `make build` can call it every time.
#
#   tools/deps.sh            install what is missing (as root), or print the
#                            exact sudo line and exit 1 (as anyone else)
#   tools/deps.sh --list     print the package list, one per line
#   tools/deps.sh --check    exit 1 and name the missing packages; never installs
#   tools/deps.sh --build    only the packages the Release build needs (used
#                            by docker/Dockerfile); combines with the above
#
# The list below is the only place the project names its build and test
# Debian packages.
set -eu

# One package per line: name, group, then what needs it after '#'.
#   build  needed to configure and compile the Release build (and its
#          ALL targets); docker/Dockerfile installs only these
#   dev    lint, fuzzing, end-to-end tests and multi-node tooling
# The list is one single-quoted shell string: no apostrophes in comments.
PACKAGES='
build-essential        build # gcc, make, libc headers: the default compiler
cmake                  build # the build (CMakeLists.txt needs >= 3.25)
ninja-build            build # faster builds; the Makefile uses it when present
pkg-config             build # CMake finds every library below through it
clang                  dev   # make fuzz (libFuzzer) and clang-tidy headers
libclang-rt-dev        dev   # libFuzzer/ASan/UBSan runtimes of clang (make fuzz links them)
clang-tidy             dev   # make lint
clang-format           dev   # make lint (formatting check)
cppcheck               dev   # make lint
libuv1-dev             build # event loop of every daemon (common/)
libssl-dev             build # TLS 1.3, AES-256-GCM, HMAC, SHA-256 (common/ crypto)
openssl                build # CLI: test certificates (tests/tools), openssl speed in bench
libyajl-dev            build # JSON config and JSON APIs (common/)
libisal-dev            build # erasure coding and crc32c (common/, client/)
liblmdb-dev            build # metadata shard state and Raft log (meta/)
libraft-dev            build # Raft consensus (meta/, kms/ keyserver)
libh2o-dev             build # HTTP server of the S3 gateway and admin API (s3d/, ctl/)
libxml2-dev            build # S3 XML request and response bodies (s3d/)
libcmocka-dev          build # unit tests (tests/unit)
libfabric-dev          build # RDMA/CXI transports of the RPC layer (common/)
libcurl4-openssl-dev   build # KMS backends over HTTP: Vault, AWS KMS (kms/); OIDC JWKS
libfuse3-dev           build # the compute-node mount (fuse/)
libnfs-dev             build # NFS client library (e2e NFS tests; nfs-cp etc. are libnfs-utils)
python3                dev   # /usr/bin/python3 runs the e2e tests
python3-pytest         dev   # e2e test runner (tests/e2e)
python3-boto3          dev   # e2e tests: S3 through boto3
awscli                 dev   # e2e tests: S3 through the aws CLI
s3cmd                  dev   # e2e tests: S3 through s3cmd (mb, put, multipart, get)
rclone                 dev   # e2e tests: S3 through rclone (copy, sync, check)
curl                   dev   # e2e tests and tools: plain HTTP probes
procps                 dev   # e2e harness and bench: ps, free, uptime
iproute2               dev   # multi-node tests: ip netns, veth
'

# packages [GROUP]: the names, all or of one group, one per line.
packages() {
  printf '%s\n' "$PACKAGES" | sed 's/#.*//' |
    awk -v g="${1:-}" 'NF >= 1 && (g == "" || $2 == g) { print $1 }'
}

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing() {
  for p in $(packages "$GROUP"); do
    installed "$p" || printf '%s\n' "$p"
  done
}

GROUP=""
MODE=install
for arg in "$@"; do
  case "$arg" in
    --list) MODE=list ;;
    --check) MODE=check ;;
    --build) GROUP=build ;;
    *) echo "usage: $0 [--build] [--list|--check]" >&2; exit 2 ;;
  esac
done
if [ "$MODE" = list ]; then
  packages "$GROUP"
  exit 0
fi

MISSING=$(missing | tr '\n' ' ')
MISSING=${MISSING% }
[ -z "$MISSING" ] && exit 0

if [ "$MODE" = check ]; then
  echo "deps: missing Debian packages: $MISSING" >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: $MISSING" >&2
  echo "deps: install them with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends $MISSING" >&2
  exit 1
fi

echo "deps: installing $MISSING"
export DEBIAN_FRONTEND=noninteractive
# Other apt users on the machine (unattended-upgrades, a parallel make) hold
# the dpkg lock for a while; wait for it rather than fail.
APT="apt-get -o DPkg::Lock::Timeout=300 -q"

# Refresh the package lists only when apt has none yet or they cannot
# provide one of the missing packages (a stale or empty cache).
need_update=0
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock 2>/dev/null)" ]; then
  need_update=1
else
  for p in $MISSING; do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
      need_update=1
      break
    fi
  done
fi
if [ "$need_update" -eq 1 ]; then
  $APT update
fi

# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! $APT install -y --no-install-recommends $MISSING; then
  # The cached lists can name versions the mirror no longer has (404s):
  # refresh once and retry before giving up.
  [ "$need_update" -eq 1 ] && exit 1
  $APT update
  $APT install -y --no-install-recommends $MISSING
fi

STILL=$(missing | tr '\n' ' ')
if [ -n "${STILL% }" ]; then
  echo "deps: still missing after install: $STILL" >&2
  exit 1
fi
echo "deps: done"
