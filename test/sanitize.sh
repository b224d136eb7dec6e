#!/usr/bin/env bash
# test/sanitize.sh — build hakmem with ASan+UBSan and with TSan, and run ctest in each.
#
#   test/sanitize.sh [address] [thread]      (default: both)
#
# Build trees: build-asan/ and build-tsan/ next to build/ (in the repository root;
# HAK_BUILD_PARENT=dir puts them elsewhere).  Sanitizer builds have only
# libhakmem-api.a, so ctest runs the hak_* tests there (api, death, unit, stress).
# JOBS=n sets build and ctest parallelism (default: nproc).  Extra ctest
# arguments can be passed in CTEST_ARGS (e.g. CTEST_ARGS="-L api").
#
# TSan and ASLR: GCC 12's TSan needs the kernel's mmap randomisation at <= 28 bits
# (vm.mmap_rnd_bits); above that every TSan binary dies with "FATAL: ThreadSanitizer:
# unexpected memory mapping".  The script probes a tiny TSan program first; if it
# fails that way, it runs ctest under `setarch -R` (ASLR off for that process
# tree, no system change), and as a last resort, when root, lowers
# vm.mmap_rnd_bits to 28 for the run and restores it afterwards.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PARENT=${HAK_BUILD_PARENT:-$ROOT}
JOBS=${JOBS:-$(nproc)}
KINDS=${*:-address thread}
CC=${CC:-cc}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-second_deadlock_stack=1:history_size=4}

RESTORE_RND_BITS=""
cleanup() {
  if [ -n "$RESTORE_RND_BITS" ]; then
    sysctl -qw vm.mmap_rnd_bits="$RESTORE_RND_BITS" || true
    echo "sanitize.sh: restored vm.mmap_rnd_bits=$RESTORE_RND_BITS"
  fi
  [ -n "${PROBE_DIR:-}" ] && rm -rf "$PROBE_DIR"
}
trap cleanup EXIT

# Prints the command prefix that makes TSan binaries start on this kernel
# ("" when none is needed); returns 1 when nothing works.
tsan_runner() {
  PROBE_DIR=$(mktemp -d)
  cat >"$PROBE_DIR/p.c" <<'EOF'
#include <pthread.h>
static int x;
static void* f(void* a) { __atomic_fetch_add(&x, 1, __ATOMIC_RELAXED); return a; }
int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0); return 0; }
EOF
  if ! "$CC" -fsanitize=thread -pthread "$PROBE_DIR/p.c" -o "$PROBE_DIR/p" 2>"$PROBE_DIR/cc.err"; then
    echo "sanitize.sh: cannot build a TSan program:" >&2
    cat "$PROBE_DIR/cc.err" >&2
    return 1
  fi
  local i ok=1
  for i in 1 2 3 4 5; do "$PROBE_DIR/p" >/dev/null 2>&1 || { ok=0; break; }; done
  if [ $ok = 1 ]; then echo ""; return 0; fi
  local arch
  arch=$(uname -m)
  ok=1
  for i in 1 2 3 4 5; do setarch "$arch" -R "$PROBE_DIR/p" >/dev/null 2>&1 || { ok=0; break; }; done
  if [ $ok = 1 ]; then echo "setarch $arch -R"; return 0; fi
  local bits
  bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo "")
  if [ -n "$bits" ] && [ "$bits" -gt 28 ] && sysctl -qw vm.mmap_rnd_bits=28 2>/dev/null; then
    RESTORE_RND_BITS=$bits
    echo "sanitize.sh: lowered vm.mmap_rnd_bits from $bits to 28 for TSan" >&2
    if "$PROBE_DIR/p" >/dev/null 2>&1; then echo ""; return 0; fi
  fi
  echo "sanitize.sh: TSan programs do not start on this kernel:" >&2
  "$PROBE_DIR/p" 2>&1 | head -3 >&2
  return 1
}

status=0
summary=()
for kind in $KINDS; do
  case $kind in
    address|asan) kind=address; dir=$PARENT/build-asan ;;
    thread|tsan)  kind=thread;  dir=$PARENT/build-tsan ;;
    *) echo "sanitize.sh: unknown sanitizer '$kind' (address or thread)" >&2; exit 2 ;;
  esac
  runner=""
  if [ $kind = thread ]; then
    if ! runner=$(tsan_runner); then
      summary+=("thread: TSan cannot run here")
      status=1
      continue
    fi
    [ -n "$runner" ] && echo "sanitize.sh: TSan needs '$runner' on this kernel"
  fi
  echo "=== $kind: configure + build in $dir"
  if ! cmake -S "$ROOT" -B "$dir" -DHAK_SANITIZE=$kind -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DHAK_BUILD_BENCH=OFF -DHAK_BUILD_TESTS=ON >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"
    summary+=("$kind: configure failed")
    status=1
    continue
  fi
  if ! cmake --build "$dir" -j"$JOBS"; then
    summary+=("$kind: build failed")
    status=1
    continue
  fi
  echo "=== $kind: ctest"
  # shellcheck disable=SC2086
  (cd "$dir" && $runner ctest --output-on-failure -j"$JOBS" ${CTEST_ARGS:-})
  rc=$?
  if [ $rc -eq 0 ]; then summary+=("$kind: all tests passed"); else summary+=("$kind: ctest failed ($rc)"); status=1; fi
done

echo "=== sanitize.sh summary"
for s in "${summary[@]}"; do echo "  $s"; done
exit $status
