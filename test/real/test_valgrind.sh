#!/usr/bin/env bash
# test_valgrind.sh SRC_DIR BUILD_DIR DEFAULT_LIBHAKMEM — hakmem under valgrind's memcheck.
#
# Builds libhakmem with -DHAK_VALGRIND=ON in BUILD_DIR/valgrind-build (the library only,
# one job) and runs a tiny program that reads a block after freeing it:
#   1. linked with that library, under `valgrind --soname-synonyms=somalloc=NONE`: the
#      block is hakmem's and memcheck reports the "Invalid read" in a block "free'd",
#      and nothing else (no error from hakmem's own code);
#   2. the same program linked with the default build (DEFAULT_LIBHAKMEM): hakmem is
#      invisible to memcheck, 0 errors (so 1. is the client requests' doing);
#   3. without --soname-synonyms, and preloaded: valgrind's own malloc replaces hakmem
#      (what README says);
#   4. a clean program (every tier, calloc, realloc growth, memalign) linked with the
#      HAK_VALGRIND build: 0 errors, no leak.
# Exit 77 (skipped) when valgrind is not installed.
set -u
src=$1 build=$2 deflib=$3
if ! command -v valgrind >/dev/null 2>&1 || [ ! -f /usr/include/valgrind/valgrind.h ]; then
  echo "valgrind not installed: skipped"; exit 77
fi
vgb="$build/valgrind-build"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-vg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() {   # check NAME STATUS [detail]
  if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1"; [ -n "${3:-}" ] && echo "$3"; fi
}
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if ! { cmake -S "$src" -B "$vgb" -DCMAKE_BUILD_TYPE=Release -DHAK_VALGRIND=ON -DHAK_SANITIZE= \
         -DHAK_BUILD_TESTS=OFF -DHAK_BUILD_BENCH=OFF &&
       cmake --build "$vgb" --target hakmem -j"${HAK_JOBS:-1}"; } >"$tmp/build.log" 2>&1; then
  check "build with -DHAK_VALGRIND=ON" 1 "$(tail -n 30 "$tmp/build.log")"; finish
fi
check "build with -DHAK_VALGRIND=ON" 0

cat >"$tmp/uaf.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char** argv) {
  int (*owns)(const void*) = (int (*)(const void*))dlsym(RTLD_DEFAULT, "hak_owns");
  if (argc > 1 && strcmp(argv[1], "clean") == 0) {   /* no bug: every tier, every call */
    static const size_t sizes[] = {1, 16, 24, 100, 1000, 5000, 40000, 300000, 3 << 20};
    for (int round = 0; round < 3; round++) {
      void* v[9];
      for (int i = 0; i < 9; i++) { v[i] = malloc(sizes[i]); memset(v[i], i, sizes[i]); }
      for (int i = 0; i < 9; i++) { v[i] = realloc(v[i], sizes[i] * 3 + 1); ((char*)v[i])[sizes[i] * 3] = 1; }
      for (int i = 0; i < 9; i++) free(v[i]);
      char* z = calloc(1000, 10);
      int bad = 0;
      for (int i = 0; i < 10000; i++) bad |= z[i];
      free(z);
      void* a = memalign(4096, 5000);
      memset(a, 1, 5000);
      free(a);
      if (bad) return 3;
    }
    printf("hakmem=%d clean\n", owns != NULL);
    return 0;
  }
  char* p = malloc(64);
  memset(p, 'x', 64);
  printf("hakmem=%d\n", owns && owns(p));
  fflush(stdout);
  free(p);
  volatile char c = p[32];   /* a read of a freed block */
  (void)c;
  return 0;
}
C
cc -g -O0 "$tmp/uaf.c" -o "$tmp/uaf_vg" -L"$vgb" -lhakmem -Wl,-rpath,"$vgb" -ldl &&
cc -g -O0 "$tmp/uaf.c" -o "$tmp/uaf_def" -L"$(dirname "$deflib")" -lhakmem -Wl,-rpath,"$(dirname "$deflib")" -ldl &&
cc -g -O0 "$tmp/uaf.c" -o "$tmp/uaf_plain" -ldl
check "compile the test program" $?

vg=(valgrind --tool=memcheck --error-exitcode=0)

# 1. HAK_VALGRIND build, hakmem kept: the use after free is reported, nothing else
out=$("${vg[@]}" --soname-synonyms=somalloc=NONE "$tmp/uaf_vg" 2>&1)
echo "$out" | grep -q '^hakmem=1$'; check "1: the block is hakmem's" $? "$out"
echo "$out" | grep -Eq '== Invalid read of size 1$'; check "1: memcheck reports \"Invalid read\"" $? "$out"
echo "$out" | grep -Eq "== +Address 0x[0-9a-f]+ is 32 bytes inside a block of size 64 free'd$"
check "1: ... 32 bytes inside a freed block of 64" $? "$out"
echo "$out" | grep -Eq '== ERROR SUMMARY: 1 errors from 1 contexts'; check "1: exactly that one error" $? "$out"
echo "$out" | grep -q 'in use at exit: 0 bytes in 0 blocks'; check "1: memcheck counts hakmem's blocks" $? "$out"

# 2. the default build under the same options: invisible to memcheck
out=$("${vg[@]}" --soname-synonyms=somalloc=NONE "$tmp/uaf_def" 2>&1)
echo "$out" | grep -q '^hakmem=1$' && echo "$out" | grep -Eq '== ERROR SUMMARY: 0 errors' &&
  ! echo "$out" | grep -q 'Invalid read'
check "2: default build: hakmem runs, memcheck sees nothing" $? "$out"

# 3. default options: valgrind's malloc replaces hakmem, linked or preloaded
out=$("${vg[@]}" "$tmp/uaf_vg" 2>&1)
echo "$out" | grep -q '^hakmem=0$' && echo "$out" | grep -q 'Invalid read of size 1'
check "3: linked, default options: valgrind's own malloc (hakmem=0)" $? "$out"
out=$(LD_PRELOAD="$deflib" "${vg[@]}" "$tmp/uaf_plain" 2>&1)
echo "$out" | grep -q '^hakmem=0$'; check "3: preloaded, default options: valgrind's own malloc (hakmem=0)" $? "$out"

# 4. a clean program: no false report from hakmem's own code
out=$("${vg[@]}" --soname-synonyms=somalloc=NONE --leak-check=full "$tmp/uaf_vg" clean 2>&1)
echo "$out" | grep -q '^hakmem=1 clean$' && echo "$out" | grep -Eq '== ERROR SUMMARY: 0 errors' &&
  echo "$out" | grep -q 'All heap blocks were freed'
check "4: clean program: 0 errors, all blocks freed" $? "$out"
finish
