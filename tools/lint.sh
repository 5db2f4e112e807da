#!/usr/bin/env bash
# tools/lint.sh BUILD_DIR — Kiseki's static checks, run by `make lint`.
#
#   1. clang-format  every tracked or new (untracked, not ignored) *.c / *.h
#                    must already be formatted per .clang-format
#   2. clang-tidy    every .c of the daemons, libraries, benchmarks and test
#                    tools, with the flags of BUILD_DIR/compile_commands.json
#                    and the checks of .clang-tidy (all findings are errors)
#   3. cppcheck      the whole compile_commands.json project
#
# All three always run, so one pass shows every finding; the script prints a
# summary and exits 1 if any stage found anything (2 on a usage or setup
# error).  Fix formatting with `clang-format -i FILE...`.
#
# Environment:
#   LINT_JOBS   parallel clang-tidy / clang-format processes (default nproc)
#   LINT_ONLY   comma-separated subset of format,tidy,cppcheck
set -uo pipefail
export LC_ALL=C

usage() {
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
}
[ $# -eq 1 ] || usage

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
  echo "lint: build directory '$1' does not exist (run: cmake -S . -B $1)" >&2
  exit 2
}
CDB="$BUILD/compile_commands.json"
JOBS=${LINT_JOBS:-$(nproc)}
ONLY=${LINT_ONLY:-format,tidy,cppcheck}

# Folders whose .c files clang-tidy checks (tests/unit and tests/fuzz are
# test scaffolding built with cmocka/libFuzzer macros and are left out).
TIDY_DIRS=(common client meta chunkd s3d nfsd fuse kms ctl bench bench/util tests/tools)

for tool in clang-format clang-tidy cppcheck git; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "lint: $tool not found (run: make deps)" >&2
    exit 2
  }
done
[ -f "$CDB" ] || {
  echo "lint: $CDB missing (configure with: cmake -S . -B $1)" >&2
  exit 2
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ks-lint.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

enabled() { [[ ",$ONLY," == *",$1,"* ]]; }

# Tracked files plus new files not yet added (but not ignored ones), that
# still exist in the working tree, NUL-separated.
source_files() {
  { git ls-files -z -- "$@"; git ls-files -z --others --exclude-standard -- "$@"; } |
    sort -zu | while IFS= read -r -d '' f; do
      [ -f "$f" ] && printf '%s\0' "$f"
    done
}

# Files compile_commands.json knows, one absolute path per line.
cdb_files() {
  grep -o '"file": *"[^"]*"' "$CDB" | sed 's/^"file": *"//; s/"$//' | sort -u
}

rel() { sed "s|$ROOT/||g"; }

FAILED=()
SUMMARY=()

# --- 1. clang-format ------------------------------------------------------
if enabled format; then
  echo "== clang-format"
  source_files '*.c' '*.h' > "$TMP/fmt.list"
  nfmt=$(tr -cd '\0' < "$TMP/fmt.list" | wc -c)
  # One process per file so each failing file is counted once.
  # shellcheck disable=SC2016 # $1 is expanded by the inner sh
  xargs -0 -r -P "$JOBS" -n 1 sh -c \
    'clang-format --dry-run --Werror "$1" >/dev/null 2>&1 || echo "$1"' sh \
    < "$TMP/fmt.list" | sort > "$TMP/fmt.bad"
  nbad=$(wc -l < "$TMP/fmt.bad")
  if [ "$nbad" -gt 0 ]; then
    sed 's/^/  needs formatting: /' "$TMP/fmt.bad"
    echo "  fix with: clang-format -i $(tr '\n' ' ' < "$TMP/fmt.bad")"
    FAILED+=(clang-format)
  fi
  SUMMARY+=("clang-format: $nbad of $nfmt files need formatting")
fi

# --- 2. clang-tidy --------------------------------------------------------
if enabled tidy; then
  echo "== clang-tidy"
  for d in "${TIDY_DIRS[@]}"; do
    [ -d "$d" ] && source_files "$d/*.c"
  done | sort -zu | tr '\0' '\n' | sed "s|^|$ROOT/|" > "$TMP/tidy.all"
  # A source the build does not know yet (new file, stale configure): refresh
  # the CMake configure once (the globs are CONFIGURE_DEPENDS), then report
  # whatever is still not part of the build instead of linting it with
  # guessed flags.
  if [ -n "$(comm -23 "$TMP/tidy.all" <(cdb_files))" ]; then
    cmake "$BUILD" >/dev/null 2>&1 || true
  fi
  comm -12 "$TMP/tidy.all" <(cdb_files) > "$TMP/tidy.list"
  comm -23 "$TMP/tidy.all" <(cdb_files) | rel > "$TMP/tidy.unbuilt"
  ntidy=$(wc -l < "$TMP/tidy.list")
  mkdir -p "$TMP/tidy"
  # Each file's output goes to its own log so parallel runs do not interleave.
  # shellcheck disable=SC2016 # $1.. are expanded by the inner sh
  tr '\n' '\0' < "$TMP/tidy.list" | xargs -0 -r -P "$JOBS" -n 1 sh -c '
      out="$2/$(printf %s "$3" | tr / _).log"
      printf %s "$3" > "$out.src"
      clang-tidy -p "$1" --quiet "$3" > "$out" 2>&1
      echo $? > "$out.rc"' sh "$BUILD" "$TMP/tidy"
  # A run that failed without printing a diagnostic crashed or could not
  # start: show its tail.
  : > "$TMP/tidy.crash"
  for log in "$TMP"/tidy/*.log; do
    [ -e "$log" ] || continue
    if [ "$(cat "$log.rc")" != 0 ] &&
       ! grep -qE '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log"; then
      echo "clang-tidy failed without a diagnostic: $(cat "$log.src")"
      tail -n 20 "$log" | sed 's/^/  /'
    fi >> "$TMP/tidy.crash"
  done
  # Print each distinct diagnostic (its "file:line:col: warning|error:" line
  # with the notes and code excerpt that follow) once: a finding in a header
  # shows up once per source that includes it.
  cat "$TMP"/tidy/*.log 2>/dev/null | awk '
      /^[^ ]+:[0-9]+:[0-9]+: (warning|error):/ { keep = !($0 in seen); seen[$0] = 1 }
      /^[0-9]+ (warnings?|errors?)( and [0-9]+ errors?)? generated\.$/ { next }
      /^Suppressed [0-9]+ warnings/ || /^Use -header-filter=/ { next }
      /^[0-9]+ warnings? treated as errors?$/ { next }
      /^Error while processing / { next }
      keep { print }' | rel > "$TMP/tidy.out"
  ndiag=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$TMP/tidy.out")
  nfiles=$(grep -oE '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$TMP/tidy.out" |
           cut -d: -f1 | sort -u | wc -l)
  sed 's/^/  /' "$TMP/tidy.out"
  nunbuilt=$(wc -l < "$TMP/tidy.unbuilt")
  if [ "$nunbuilt" -gt 0 ]; then
    sed 's/^/  not in compile_commands.json (not part of the build?): /' \
      "$TMP/tidy.unbuilt"
  fi
  rel < "$TMP/tidy.crash" | sed 's/^/  /'
  crashed=$(grep -c '^clang-tidy failed without' "$TMP/tidy.crash")
  if [ "$ndiag" -gt 0 ] || [ "$nunbuilt" -gt 0 ] || [ "$crashed" -gt 0 ]; then
    FAILED+=(clang-tidy)
  fi
  line="clang-tidy: $ndiag findings in $nfiles files ($ntidy sources checked)"
  [ "$nunbuilt" -gt 0 ] && line+=", $nunbuilt sources not in the build"
  [ "$crashed" -gt 0 ] && line+=", $crashed runs failed"
  SUMMARY+=("$line")
fi

# --- 3. cppcheck ----------------------------------------------------------
if enabled cppcheck; then
  echo "== cppcheck"
  excl=(-i "$BUILD")
  for d in "$ROOT"/build "$ROOT"/build-*; do
    [ -d "$d" ] && excl+=(-i "$d")
  done
  # --cppcheck-build-dir keeps per-file results so unchanged files are not
  # analysed again.  System headers are not ours to check: their absence
  # (missingIncludeSystem) and anything reported inside them are suppressed.
  mkdir -p "$BUILD/cppcheck"
  cppcheck --project="$CDB" --cppcheck-build-dir="$BUILD/cppcheck" \
    --enable=warning,performance,portability --inline-suppr \
    --suppress=missingIncludeSystem --suppress='*:/usr/*' \
    "${excl[@]}" -j "$JOBS" --quiet --error-exitcode=1 \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
    > "$TMP/cppcheck.out" 2>&1
  rc=$?
  rel < "$TMP/cppcheck.out" | sed 's/^/  /'
  ncpp=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: [a-z]+: ' "$TMP/cppcheck.out")
  if [ "$rc" -ne 0 ] || [ "$ncpp" -gt 0 ]; then
    FAILED+=(cppcheck)
    [ "$ncpp" -eq 0 ] && ncpp="exit $rc,"
  fi
  SUMMARY+=("cppcheck: $ncpp findings")
fi

echo "== summary"
printf '  %s\n' "${SUMMARY[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "lint: FAILED (${FAILED[*]})"
  exit 1
fi
echo "lint: OK"
