#!/usr/bin/env bash
# test/fuzz/run_fuzz.sh — build hakmem's libFuzzer harnesses with clang and run each for a while.
#
#   test/fuzz/run_fuzz.sh [SECONDS]        (default 30 s per harness)
#
#  1. build-fuzz/ (next to build/; HAK_BUILD_PARENT=dir puts it elsewhere): libhakmem-api.a
#     built by CMake with clang, -fsanitize=address,undefined,fuzzer-no-link
#  2. fuzz_alloc (hak_* call sequences against a shadow model) and fuzz_options (the option
#     parser against a reference model), clang -fsanitize=fuzzer,address,undefined; and
#     fuzz_options_driver, which runs each options input in a fresh process that
#     initialises hakmem with those settings and allocates under them
#  3. each harness runs SECONDS on a copy of its seed corpus (test/fuzz/corpus/NAME/);
#     new inputs stay in build-fuzz/corpus/NAME/, crashes in build-fuzz/artifacts/
#  4. the driver replays the options corpus: the seeds and the newest 87 inputs of the
#     working corpus (about 0.2 s each)
# Exit status: 0 when everything passed, 1 when a step failed, 77 when clang or libFuzzer
# is missing (scripts/deps.sh installs clang and libclang-rt-14-dev). The last line is
# "N passed, M failed" (one per harness run and one for the driver). JOBS=n sets the build
# parallelism (default 1). FUZZ_ARGS adds libFuzzer flags.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PARENT=${HAK_BUILD_PARENT:-$ROOT}
BUILD=$PARENT/build-fuzz
SECS=${1:-30}
JOBS=${JOBS:-1}
CC=${FUZZ_CC:-clang}
case "$SECS" in -h|--help) sed -n '2,21s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
case "$SECS" in ''|*[!0-9]*) echo "run_fuzz.sh: SECONDS must be a number, not '$SECS'" >&2; exit 2 ;; esac

if ! command -v "$CC" >/dev/null 2>&1; then
  echo "run_fuzz.sh: $CC not found: fuzzing skipped (apt-get install clang libclang-rt-14-dev)"
  exit 77
fi
mkdir -p "$BUILD"
# libFuzzer itself (libclang-rt-*-dev) must be there
printf 'int LLVMFuzzerTestOneInput(const char* d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$BUILD/probe.c"
if ! "$CC" -fsanitize=fuzzer,address "$BUILD/probe.c" -o "$BUILD/probe" 2>"$BUILD/probe.log"; then
  echo "run_fuzz.sh: $CC cannot link -fsanitize=fuzzer: fuzzing skipped (apt-get install libclang-rt-14-dev)"
  sed 's/^/  /' "$BUILD/probe.log" | head -5
  exit 77
fi

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
# bug: option suffix overflow (issue 10, item 6): options.c shifts a signed value past
# 64 bits for values like 17179869184G. That one check stays recoverable and is
# suppressed in options.c only (ubsan.supp); everything else aborts. Drop both when fixed.
SAN="$SAN -fsanitize-recover=shift-base"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$ROOT/test/fuzz/ubsan.supp}
# the harnesses decide the environment themselves
for v in $(env | sed -n 's/^\(HAKMEM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

passed=0 failed=0
result() {   # result NAME STATUS
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "run_fuzz.sh: $1: ok"
  else failed=$((failed + 1)); echo "run_fuzz.sh: $1: FAILED"; fi
}
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

echo "=== build: $BUILD ($CC, ASan+UBSan, fuzzer coverage)"
if ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAK_SANITIZE= \
       -DHAK_BUILD_TESTS=OFF -DHAK_BUILD_BENCH=OFF "-DCMAKE_C_FLAGS=$SAN -fsanitize=fuzzer-no-link" \
       >"$BUILD/configure.log" 2>&1 ||
   ! cmake --build "$BUILD" --target hakmem_api -j"$JOBS" >"$BUILD/build.log" 2>&1; then
  cat "$BUILD/configure.log" "$BUILD/build.log" 2>/dev/null | tail -40
  failed=$((failed + 1))
  echo "run_fuzz.sh: build of libhakmem-api.a failed"
  finish
fi
LIB=$BUILD/libhakmem-api.a
# shellcheck disable=SC2086
build_one() {   # build_one OUT SOURCE EXTRA-FLAGS...
  local out=$1 src=$2
  shift 2
  "$CC" $SAN "$@" -I"$ROOT/include" "$src" "$LIB" -lurcu-bp -lpthread -o "$BUILD/$out" 2>"$BUILD/$out.log"
}
ok=1
build_one fuzz_alloc "$ROOT/test/fuzz/fuzz_alloc.c" -fsanitize=fuzzer || ok=0
build_one fuzz_options "$ROOT/test/fuzz/fuzz_options.c" -fsanitize=fuzzer || ok=0
build_one fuzz_options_driver "$ROOT/test/fuzz/fuzz_options.c" -DHAK_FUZZ_DRIVER -fsanitize=fuzzer-no-link || ok=0
if [ $ok = 0 ]; then
  cat "$BUILD"/fuzz_*.log | head -40
  failed=$((failed + 1))
  echo "run_fuzz.sh: building the harnesses failed"
  finish
fi

# run_one NAME MAX_LEN: SECS seconds of libFuzzer on a working copy of the seed corpus
run_one() {
  local name=$1 max_len=$2
  local work="$BUILD/corpus/$name" log="$BUILD/fuzz_$name.log"
  mkdir -p "$work" "$BUILD/artifacts"
  cp -n "$ROOT/test/fuzz/corpus/$name"/* "$work/" 2>/dev/null
  echo "=== fuzz_$name: $SECS s (log: $log)"
  # shellcheck disable=SC2086
  "$BUILD/fuzz_$name" -max_total_time="$SECS" -timeout=30 -rss_limit_mb=3072 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/${name}-" ${FUZZ_ARGS:-} "$work" >"$log" 2>&1
  local rc=$?
  grep -E '^(fuzz_[a-z]+:|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)|Done [0-9]+ runs' "$log" |
    sed 's/^/  /' | head -8
  if [ $rc -ne 0 ]; then
    echo "  fuzz_$name exited $rc; the end of its log:"
    tail -40 "$log" | sed 's/^/  /'
    ls "$BUILD/artifacts/${name}-"* 2>/dev/null | sed 's/^/  reproducer: /'
  fi
  result "fuzz_$name" $rc
}

run_one alloc 4096
run_one options 2048

echo "=== fuzz_options_driver: the options corpus, one process each"
mapfile -t inputs < <(ls "$ROOT/test/fuzz/corpus/options"/*; ls -t "$BUILD/corpus/options"/* 2>/dev/null | head -87)
"$BUILD/fuzz_options_driver" "${inputs[@]}" >"$BUILD/fuzz_options_driver.log" 2>&1
rc=$?
tail -3 "$BUILD/fuzz_options_driver.log" | sed 's/^/  /'
[ $rc -ne 0 ] && grep -B2 -A12 'fuzz_options' "$BUILD/fuzz_options_driver.log" | head -60 | sed 's/^/  /'
result fuzz_options_driver $rc
finish
