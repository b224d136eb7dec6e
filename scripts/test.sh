#!/usr/bin/env bash
# test.sh — build hakmem and run all its tests.
#
#   bash scripts/test.sh [--no-deps] [--no-sanitize] [--no-fuzz] [-- extra ctest arguments]
#
#  1. scripts/deps.sh (apt-get what is missing)          skipped by --no-deps
#  2. scripts/build.sh: build/ in Release
#  3. ctest --test-dir build --output-on-failure -j2     (labels: unit api stress death real;
#                                                          e.g. `-- -L unit` runs one label)
#  4. scripts/test_install.sh, unless ctest already has it registered
#  5. test/sanitize.sh when present: ASan+UBSan and TSan builds of the hak_* tests
#                                                          skipped by --no-sanitize
#  6. test/fuzz/run_fuzz.sh: the libFuzzer harnesses, HAK_FUZZ_SECONDS each (default 30);
#     counts as one test (skipped when clang is missing)   skipped by --no-fuzz
# Logs go to build/test-logs/. Exit status is non-zero when anything failed; the last
# line counts the tests of all builds: "N passed, M failed" (", K skipped" when some
# were). A step that fails without a failed test of its own (a build, say) counts as
# one failed test.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo" || exit 1
build="${HAK_BUILD_DIR:-$repo/build}"
export HAK_BUILD_DIR="$build"
jobs="${HAK_JOBS:-2}"

deps=1
sanitize=1
fuzz=1
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-deps)      deps=0 ;;
    --no-sanitize)  sanitize=0 ;;
    --no-fuzz)      fuzz=0 ;;
    --)             shift; ctest_args=("$@"); break ;;
    -h|--help)      sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

logs="$build/test-logs"
mkdir -p "$logs"
rm -f "$logs"/*.log

passed=0 failed=0 skipped=0
failed_steps=()
banner() { printf '\n==== %s ====\n' "$*"; }

# count_ctest LOG: add the ctest summary lines in LOG ("P% tests passed, F tests failed
# out of T"; skipped tests count as passed there) and the "(Skipped)" lines to the totals.
# Sets nfail to the number of failed tests it found.
count_ctest() {
  local log="$1" t f s
  nfail=0
  while read -r f t; do
    passed=$((passed + t - f)); failed=$((failed + f)); nfail=$((nfail + f))
  done < <(sed -nE 's/.*[0-9]+% tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\1 \2/p' "$log")
  s="$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)[[:space:]]*$' "$log" || true)"
  passed=$((passed - s)); skipped=$((skipped + s))
}

# run_logged NAME LOG CMD...: run CMD, output to the terminal and LOG; returns CMD's status.
run_logged() {
  local name="$1" log="$2"; shift 2
  banner "$name"
  "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

if [ $deps -eq 1 ]; then
  run_logged "dependencies (scripts/deps.sh)" "$logs/deps.log" bash scripts/deps.sh ||
    failed_steps+=("deps.sh")
fi

built=0
if run_logged "build: $build (Release)" "$logs/build.log" env HAK_JOBS="$jobs" bash scripts/build.sh; then
  built=1
else
  failed_steps+=("build (log: $logs/build.log)")
fi

if [ $built -eq 1 ]; then
  run_logged "ctest: $build" "$logs/ctest.log" \
    ctest --test-dir "$build" --output-on-failure -j"$jobs" "${ctest_args[@]}"
  rc=$?
  count_ctest "$logs/ctest.log"
  if grep -q "No tests were found" "$logs/ctest.log"; then
    echo "test.sh: warning: ctest found no tests in $build"
  fi
  [ $rc -ne 0 ] && [ "$nfail" -eq 0 ] && failed_steps+=("ctest exited $rc (log: $logs/ctest.log)")

  # (grep without -q reads all of ctest's output: with pipefail, an early exit of grep
  # could kill ctest with SIGPIPE and fail the test of the pipeline.)
  if ctest --test-dir "$build" -N 2>/dev/null | grep -iE 'Test +#[0-9]+: .*install' >/dev/null; then
    echo "test.sh: the install test is registered with ctest; not run again"
  elif run_logged "install test (scripts/test_install.sh)" "$logs/install.log" \
         bash scripts/test_install.sh "$build"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi

# A build with HAK_DEBUG_COUNTERS=ON and HAK_HARDENED=ON: the debug counters compile and
# count the known patterns of the stats test (the release build runs it with them
# compiled out), and the encoded free lists pass the hak_* API, death and stress tests
# and the cut of another thread's TLS lists (the hardened pop meets HAK_TC_CUT).
if [ $built -eq 1 ]; then
  dbg="${build}-counters"
  if run_logged "debug-counters build: $dbg" "$logs/counters-build.log" bash -c \
       "cmake -S . -B '$dbg' -DCMAKE_BUILD_TYPE=Release -DHAK_DEBUG_COUNTERS=ON -DHAK_HARDENED=ON -DHAK_BUILD_BENCH=OFF >/dev/null &&
        cmake --build '$dbg' -j$jobs --target unit_test_stats unit_test_tc_trim test_hak_api test_hak_death stress_hak"; then
    run_logged "ctest: $dbg (stats, tc_trim, hak_api, hak_death, hak_stress)" "$logs/counters-ctest.log" \
      ctest --test-dir "$dbg" --output-on-failure -j"$jobs" -R '^(unit_stats|unit_tc_trim|hak_api|hak_death|hak_stress_.*)$'
    rc=$?
    count_ctest "$logs/counters-ctest.log"
    [ $rc -ne 0 ] && [ "$nfail" -eq 0 ] && failed_steps+=("debug-counters ctest exited $rc")
  else
    failed_steps+=("debug-counters build (log: $logs/counters-build.log)")
  fi
fi

if [ $sanitize -eq 1 ] && [ -f test/sanitize.sh ]; then
  run_logged "sanitizer builds (test/sanitize.sh)" "$logs/sanitize.log" bash test/sanitize.sh
  rc=$?
  count_ctest "$logs/sanitize.log"
  [ $rc -ne 0 ] && [ "$nfail" -eq 0 ] && failed_steps+=("test/sanitize.sh exited $rc (log: $logs/sanitize.log)")
elif [ $sanitize -eq 1 ]; then
  echo; echo "test.sh: no test/sanitize.sh yet; sanitizer builds skipped"
fi

if [ $fuzz -eq 1 ] && [ -f test/fuzz/run_fuzz.sh ]; then
  fuzz_secs="${HAK_FUZZ_SECONDS:-30}"
  run_logged "fuzzing (test/fuzz/run_fuzz.sh $fuzz_secs)" "$logs/fuzz.log" \
    env JOBS="$jobs" bash test/fuzz/run_fuzz.sh "$fuzz_secs"
  rc=$?
  case $rc in
    0)  passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)); echo "test.sh: fuzzing skipped: no clang with libFuzzer (scripts/deps.sh installs it)" ;;
    *)  failed_steps+=("test/fuzz/run_fuzz.sh exited $rc (log: $logs/fuzz.log)") ;;
  esac
fi

banner "summary"
failed=$((failed + ${#failed_steps[@]}))
for s in "${failed_steps[@]}"; do echo "FAILED step: $s"; done
echo "logs: $logs"
line="$passed passed, $failed failed"
[ $skipped -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ $failed -eq 0 ]
