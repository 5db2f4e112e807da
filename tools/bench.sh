#!/usr/bin/env bash
# tools/bench.sh BUILD_DIR — run every benchmark, used by `make bench`.
#
# Prints the machine setup first (figures mean nothing without it), then runs
# each BUILD_DIR/bin/ks-bench-* in turn, one at a time so they do not compete
# for cores or disk.  Each benchmark prints its own figures and their ratio
# to a limit it measures in the same run (DESIGN.md §12); this script only
# sequences them and reports which failed.  Exit 1 if any benchmark failed.
#
# Environment:
#   KS_BENCH_ONLY=a,b   run only these (names with or without ks-bench-)
#   KS_BENCH_DIR=DIR    scratch directory handed to benchmarks as
#                       $KS_BENCH_DIR (default: a fresh one under TMPDIR);
#                       put it on the device you want measured
set -uo pipefail

[ $# -eq 1 ] || {
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
  echo "bench: build directory '$1' does not exist" >&2
  exit 2
}

shopt -s nullglob
benches=()
for b in "$BUILD"/bin/ks-bench-*; do
  if [ ! -f "$b" ] || [ ! -x "$b" ]; then continue; fi
  name=$(basename "$b")
  if [ -n "${KS_BENCH_ONLY:-}" ]; then
    case ",$KS_BENCH_ONLY," in
      *",$name,"* | *",${name#ks-bench-},"*) ;;
      *) continue ;;
    esac
  fi
  benches+=("$b")
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu" ] || cpu=$(uname -m)
mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
gov=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
ccver=$([ -n "$cc" ] && "$cc" --version 2>/dev/null | head -n 1)
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)
dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)
virt=$(systemd-detect-virt 2>/dev/null || true)

echo "== Kiseki benchmarks"
echo "date      $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
echo "host      $(uname -n)"
echo "cpu       $cpu"
echo "cores     $(nproc) online of $(nproc --all)"
echo "memory    $((mem_kb / 1024)) MiB"
echo "kernel    $(uname -srm)"
[ -n "$virt" ] && [ "$virt" != none ] && echo "virt      $virt"
[ -n "$gov" ] && echo "governor  $gov"
echo "load      $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build     ${btype:-?} ($BUILD)${ccver:+, $ccver}"
echo "revision  ${rev:-?}${dirty:+ (uncommitted changes)}"

if [ ${#benches[@]} -eq 0 ]; then
  echo "bench: no ks-bench-* programs in $BUILD/bin"
  exit 0
fi

if [ -z "${KS_BENCH_DIR:-}" ]; then
  KS_BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ks-bench.XXXXXX")
  trap 'rm -rf "$KS_BENCH_DIR"' EXIT
fi
export KS_BENCH_DIR
echo "scratch   $KS_BENCH_DIR ($(df -hP "$KS_BENCH_DIR" | awk 'NR==2 {print $1}'))"

failed=()
for b in "${benches[@]}"; do
  name=$(basename "$b")
  echo
  echo "== $name"
  start=$(date +%s.%N)
  "$b"
  rc=$?
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -ne 0 ]; then
    echo "-- $name FAILED (exit $rc) after ${secs}s"
    failed+=("$name")
  else
    echo "-- $name done in ${secs}s"
  fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: ${#failed[@]} of ${#benches[@]} FAILED: ${failed[*]}"
  exit 1
fi
echo "bench: ${#benches[@]} benchmarks done"
