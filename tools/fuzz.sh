#!/usr/bin/env bash
# tools/fuzz.sh BUILD_FUZZ_DIR SECONDS — run every libFuzzer target, used by
# `make fuzz` after the Fuzz build (clang, -fsanitize=fuzzer,address,undefined).
#
# For each BUILD_FUZZ_DIR/bin/fuzz_<name>:
#   - the seed corpus tests/fuzz/corpus/<name>/ is copied into a temporary
#     working corpus (the repository copy is never written by a normal run);
#   - tests/fuzz/<name>.dict, if present, is passed as the dictionary;
#   - the target runs for SECONDS (-max_total_time); crashes, leaks, timeouts
#     and OOMs are written to BUILD_FUZZ_DIR/crashes/<target>-<kind>-<sha1>;
#   - with KS_FUZZ_MERGE=1 the inputs found that add coverage are merged back
#     into the seed corpus (-merge=1), for a human to review and commit.
# One summary line per target; exit 1 if any target failed.  Reproduce a
# crash with: BUILD_FUZZ_DIR/bin/fuzz_<name> BUILD_FUZZ_DIR/crashes/<file>
#
# Environment:
#   KS_FUZZ_MERGE=1       merge new coverage back into tests/fuzz/corpus/
#   KS_FUZZ_TIMEOUT=S     per-input timeout in seconds (default 10)
#   KS_FUZZ_RSS_MB=N      memory limit per target (default 2048)
#   KS_FUZZ_ONLY=a,b      run only these targets (names with or without fuzz_)
set -uo pipefail

usage() {
  echo "usage: $0 BUILD_FUZZ_DIR SECONDS" >&2
  exit 2
}
[ $# -eq 2 ] || usage
case "$2" in '' | *[!0-9]*) usage ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
  echo "fuzz: build directory '$1' does not exist" >&2
  exit 2
}
SECS=$2
BIN="$BUILD/bin"
CRASHES="$BUILD/crashes"
LOGS="$BUILD/fuzz-logs"
CORPUS_ROOT="$ROOT/tests/fuzz/corpus"
TIMEOUT=${KS_FUZZ_TIMEOUT:-10}
RSS_MB=${KS_FUZZ_RSS_MB:-2048}

# Sanitizer settings: a finding must abort (so libFuzzer records the input),
# leaks count, and reports carry a symbolized stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

shopt -s nullglob
targets=()
for t in "$BIN"/fuzz_*; do
  if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
  name=$(basename "$t")
  if [ -n "${KS_FUZZ_ONLY:-}" ]; then
    case ",$KS_FUZZ_ONLY," in
      *",$name,"* | *",${name#fuzz_},"*) ;;
      *) continue ;;
    esac
  fi
  targets+=("$t")
done

if [ ${#targets[@]} -eq 0 ]; then
  srcs=("$ROOT"/tests/fuzz/fuzz_*.c)
  if [ ${#srcs[@]} -gt 0 ] && [ -z "${KS_FUZZ_ONLY:-}" ]; then
    echo "fuzz: ${#srcs[@]} targets in tests/fuzz but none built in $BIN" \
         "(configure with -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_C_COMPILER=clang)" >&2
    exit 1
  fi
  echo "fuzz: no fuzz targets to run in $BIN"
  exit 0
fi

mkdir -p "$CRASHES" "$LOGS"

# libFuzzer names what it saves <artifact_prefix><kind>-<sha1>.
count_artifacts() {
  local a=("$CRASHES/$1-"*)
  echo "${#a[@]}"
}
newest_artifact() {
  local f newest=""
  for f in "$CRASHES/$1-"*; do
    if [ -z "$newest" ] || [ "$f" -nt "$newest" ]; then newest=$f; fi
  done
  if [ -n "$newest" ]; then basename "$newest"; fi
}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ks-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "fuzz: ${#targets[@]} targets, ${SECS}s each, crashes -> $CRASHES"
failed=0
for t in "${targets[@]}"; do
  name=$(basename "$t")
  short=${name#fuzz_}
  seed="$CORPUS_ROOT/$short"
  corpus="$WORK/$short"
  log="$LOGS/$name.log"
  mkdir -p "$corpus"
  nseed=0
  if [ -d "$seed" ]; then
    cp -R "$seed"/. "$corpus"/ 2>/dev/null
    nseed=$(find "$seed" -type f | wc -l)
  fi
  args=(-max_total_time="$SECS" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB"
        -artifact_prefix="$CRASHES/$name-" -print_final_stats=1)
  dict="$ROOT/tests/fuzz/$short.dict"
  [ -f "$dict" ] && args+=(-dict="$dict")

  # Artifacts already present are from earlier runs; only new ones count.
  before=$(count_artifacts "$name")
  # The wall-clock guard catches a target that ignores max_total_time (a hang
  # inside one input is libFuzzer's -timeout).
  timeout --kill-after=10 $((SECS + TIMEOUT + 60)) \
    "$t" "${args[@]}" "$corpus" > "$log" 2>&1
  rc=$?
  after=$(count_artifacts "$name")

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  ncorpus=$(find "$corpus" -type f | wc -l)
  stats="${execs:-?} execs, cov ${cov:-?}, corpus $ncorpus (seed $nseed)"

  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    failed=$((failed + 1))
    new=$(newest_artifact "$name")
    what="exit $rc"
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && what="hung past ${SECS}s (killed)"
    printf '%-28s FAIL  %s; %s%s\n' "$name" "$what" "$stats" \
      "${new:+; input: $CRASHES/$new}"
    grep -E '^(==[0-9]+==ERROR|SUMMARY:|.*runtime error:)' "$log" | head -n 5 |
      sed 's/^/    /'
    echo "    log: $log"
    continue
  fi

  merged=""
  if [ "${KS_FUZZ_MERGE:-0}" = 1 ]; then
    mkdir -p "$seed"
    if "$t" -merge=1 -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
         "$seed" "$corpus" >> "$log" 2>&1; then
      merged="; merged +$(($(find "$seed" -type f | wc -l) - nseed)) into ${seed#"$ROOT"/}"
    else
      merged="; merge FAILED (see $log)"
      failed=$((failed + 1))
    fi
  fi
  printf '%-28s ok    %s%s\n' "$name" "$stats" "$merged"
done

if [ "$failed" -gt 0 ]; then
  echo "fuzz: $failed of ${#targets[@]} targets FAILED"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ok"
