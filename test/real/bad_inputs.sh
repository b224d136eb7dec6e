#!/usr/bin/env bash
# bad_inputs.sh — how allocators react to bad inputs: one tiny C program per case, run
# under glibc, hakmem and the Debian builds of mimalloc, jemalloc and tcmalloc (all by
# LD_PRELOAD), each result classified; prints a markdown table (docs/RELIABILITY.md).
#
#   test/real/bad_inputs.sh [/path/to/libhakmem.so]      (default: build/libhakmem.so)
#
# Results:
#   message+abort   SIGABRT with a message on stderr (the message's start is shown)
#   abort           SIGABRT, nothing printed
#   SIGSEGV, ...    killed by that signal
#   silent          exit 0: the bad call went unnoticed (the program carried on)
#   ok              a conformance case: the documented result (NULL + errno, EINVAL, ...)
#   differs: ...    a conformance case with another result (what it gave)
#   hang            no exit within 10 s
# A comparison, not a test: it exits 0 whatever the results (1 on a setup error).
set -u
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HAK=${1:-$repo/build/libhakmem.so}
[ -f "$HAK" ] || { echo "bad_inputs.sh: $HAK not found (build first)" >&2; exit 1; }
LIBDIR=/usr/lib/x86_64-linux-gnu
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hak-bad.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/bad.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile char sink;
static void silent(void) { printf("RESULT silent\n"); exit(0); }
static void result(int ok, const char* what) {
  if (ok) printf("RESULT ok\n"); else printf("RESULT wrong %s\n", what);
  exit(0);
}
/* "NULL, errno N" or "a block" for the table */
static const char* got(const void* p, int e) {
  static char buf[8][48];
  static int k;
  char* b = buf[k++ & 7];
  if (p) snprintf(b, 48, "a block"); else snprintf(b, 48, "NULL, errno %s", e == ENOMEM ? "ENOMEM" : e == EINVAL ? "EINVAL" : e == 0 ? "0" : e == ENOENT ? "ENOENT" : "other");
  return b;
}
static char detail[256];
/* a few more calls after the bad one: a corrupted state often shows here */
static void afterwards(size_t n) {
  void* v[64];
  for (int i = 0; i < 64; i++) { v[i] = malloc(n); if (v[i]) memset(v[i], i, n); }
  for (int i = 0; i < 64; i++) free(v[i]);
}

int main(int argc, char** argv) {
  const char* c = argc > 1 ? argv[1] : "";
  if (!strcmp(c, "double_free")) {
    char* p = malloc(32); p[0] = 1;
    free(p); free(p); afterwards(32); silent();
  } else if (!strcmp(c, "double_free_later")) {          /* a free in between (glibc fastbin check) */
    char* p = malloc(32); char* q = malloc(32);
    free(p); free(q); free(p); afterwards(32); silent();
  } else if (!strcmp(c, "double_free_large")) {
    char* p = malloc(4 << 20); p[0] = 1;
    free(p); free(p); afterwards(4 << 20); silent();
  } else if (!strcmp(c, "free_stack")) {
    char buf[64]; sink = buf[0];
    free(buf + 16); afterwards(48); silent();
  } else if (!strcmp(c, "free_interior")) {
    char* p = malloc(100); p[0] = 1;
    free(p + 16); afterwards(100); silent();
  } else if (!strcmp(c, "free_foreign_mmap")) {
    char* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    free(p + 4096); afterwards(64); silent();
  } else if (!strcmp(c, "overflow_by_one")) {
    char* v[16];
    for (int i = 0; i < 16; i++) v[i] = malloc(24);
    size_t n = malloc_usable_size(v[7]);
    memset(v[7], 0x41, n + 1);                      /* one byte past the usable size */
    for (int i = 0; i < 16; i++) free(v[i]);
    afterwards(24); silent();
  } else if (!strcmp(c, "overflow_by_8")) {
    char* v[16];
    for (int i = 0; i < 16; i++) v[i] = malloc(24);
    size_t n = malloc_usable_size(v[7]);
    memset(v[7], 0x41, n + 8);                      /* the next block's first word */
    for (int i = 0; i < 16; i++) free(v[i]);
    afterwards(24); silent();
  } else if (!strcmp(c, "use_after_free_write")) {
    char* p = malloc(64); char* q = malloc(64);
    free(q); free(p);
    memset(p, 0x41, 64);                            /* over the free-list link */
    afterwards(64); silent();
  } else if (!strcmp(c, "malloc_huge")) {
    errno = 0;
    void* p = malloc(SIZE_MAX - 4096);
    int e = errno;
    void* q = malloc((size_t)PTRDIFF_MAX + 1);
    int e2 = errno;
    snprintf(detail, sizeof detail, "malloc(SIZE_MAX - 4096): %s; malloc(PTRDIFF_MAX + 1): %s", got(p, e), got(q, e2));
    result(p == NULL && q == NULL && e == ENOMEM && e2 == ENOMEM, detail);
  } else if (!strcmp(c, "calloc_overflow")) {
    errno = 0;
    void* p = calloc(SIZE_MAX / 2 + 2, 2);          /* the product wraps to a small number */
    int e = errno;
    snprintf(detail, sizeof detail, "calloc(SIZE_MAX/2+2, 2): %s", got(p, e));
    result(p == NULL && e == ENOMEM, detail);
  } else if (!strcmp(c, "realloc_huge")) {
    char* p = malloc(100); memset(p, 7, 100);
    errno = 0;
    char* q = realloc(p, SIZE_MAX - 4096);
    int e = errno;
    snprintf(detail, sizeof detail, "realloc(p, SIZE_MAX - 4096): %s%s", got(q, e), p[99] == 7 ? "" : ", p lost");
    result(q == NULL && e == ENOMEM && p[99] == 7, detail);
  } else if (!strcmp(c, "posix_memalign_bad")) {
    void* p = NULL;
    int a = posix_memalign(&p, 3, 16), b = posix_memalign(&p, 4, 16), d = posix_memalign(&p, 0, 16);
    snprintf(detail, sizeof detail, "posix_memalign alignment 3/4/0: %d/%d/%d", a, b, d);
    result(a == EINVAL && b == EINVAL && d == EINVAL, detail);
  } else if (!strcmp(c, "aligned_alloc_bad")) {
    errno = 0;
    void* p = aligned_alloc(3, 16);
    int e = errno;
    errno = 0;
    void* q = aligned_alloc((size_t)1 << 63, 16);
    int e2 = errno;
    snprintf(detail, sizeof detail, "aligned_alloc(3, 16): %s; aligned_alloc(2^63, 16): %s", got(p, e), got(q, e2));
    result(p == NULL && e == EINVAL && q == NULL, detail);
  } else if (!strcmp(c, "memalign_huge_align")) {
    errno = 0;
    void* p = memalign((size_t)1 << 62, 16);
    int e = errno;
    snprintf(detail, sizeof detail, "memalign(2^62, 16): %s", got(p, e));
    result(p == NULL && (e == ENOMEM || e == EINVAL), detail);
  } else if (!strcmp(c, "oom_rlimit")) {
    /* Address space capped at VmSize + 64 MiB (RLIMIT_AS: every mmap beyond fails):
     * a 256 MiB block and then small blocks until the cap must give NULL + ENOMEM, with
     * the blocks from before intact; raising the cap makes the same call succeed. */
    char* keep[100];
    for (int i = 0; i < 100; i++) { keep[i] = malloc(1000 + (size_t)i * 300); memset(keep[i], i, 1000); }
    FILE* f = fopen("/proc/self/statm", "r");
    unsigned long vm = 0;
    if (!f || fscanf(f, "%lu", &vm) != 1) result(0, "no /proc/self/statm");
    fclose(f);
    struct rlimit old, cap;
    getrlimit(RLIMIT_AS, &old);
    cap = old;
    cap.rlim_cur = vm * 4096 + (64 << 20);
    if (setrlimit(RLIMIT_AS, &cap) != 0) result(0, "setrlimit");
    errno = 0;
    void* big = malloc(256 << 20);
    int e = errno;
    long small = 0;
    int e2 = 0;
    void** chain = NULL;
    for (;;) {                                     /* small blocks until the cap */
      void** b = malloc(4000);
      if (!b) { e2 = errno; break; }
      *b = chain; chain = b; small++;
      if (small > 100000) break;                   /* 400 MB: the cap did not hold */
    }
    int intact = 1;
    for (int i = 0; i < 100; i++) for (int j = 0; j < 1000; j++) if (keep[i][j] != (char)i) intact = 0;
    while (chain) { void** n = *chain; free(chain); chain = n; }
    setrlimit(RLIMIT_AS, &old);
    void* again = malloc(256 << 20);
    snprintf(detail, sizeof detail, "256 MiB under the cap: %s; small blocks until the cap: %s after %ld; "
             "blocks from before %s; 256 MiB after: %s", got(big, e), small > 100000 ? "never NULL" : got(NULL, e2),
             small, intact ? "intact" : "DAMAGED", again ? "a block" : "NULL");
    result(!big && e == ENOMEM && small <= 100000 && e2 == ENOMEM && intact && again, detail);
  }
  fprintf(stderr, "unknown case %s\n", c);
  return 2;
}
EOF
gcc -O0 -fno-builtin -w -o "$WORK/bad" "$WORK/bad.c" || exit 1

CASES="double_free double_free_later double_free_large free_stack free_interior free_foreign_mmap
       overflow_by_one overflow_by_8 use_after_free_write malloc_huge calloc_overflow realloc_huge
       posix_memalign_bad aligned_alloc_bad memalign_huge_align oom_rlimit"
NAMES=(glibc hakmem mimalloc jemalloc tcmalloc)
LIBS=("" "$HAK" "$LIBDIR/libmimalloc.so.2" "$LIBDIR/libjemalloc.so.2" "$LIBDIR/libtcmalloc_minimal.so.4")

classify() {   # classify LIB CASE
  local lib=$1 c=$2 out err rc
  if [ -n "$lib" ]; then
    [ -f "$lib" ] || { echo "n/a"; return; }
    timeout 10 env LD_PRELOAD="$lib" MIMALLOC_VERBOSE=0 "$WORK/bad" "$c" >"$WORK/out" 2>"$WORK/err"
  else
    timeout 10 "$WORK/bad" "$c" >"$WORK/out" 2>"$WORK/err"
  fi
  rc=$?
  out=$(grep '^RESULT' "$WORK/out" | head -1)
  err=$(grep -v '^$' "$WORK/err" | head -1 | cut -c1-60 | tr '|' '/')
  case $rc in
    0)   case $out in
           "RESULT ok") echo "ok" ;;
           "RESULT silent") if [ -n "$err" ]; then echo "message only: \`$err\`"; else echo "silent"; fi ;;
           *) echo "differs: ${out#RESULT wrong }" ;;
         esac ;;
    124) echo "hang" ;;
    134) if [ -n "$err" ]; then echo "message+abort: \`$err\`"; else echo "abort"; fi ;;
    139) echo "SIGSEGV" ;;
    135) echo "SIGBUS" ;;
    *)   if [ $rc -gt 128 ]; then echo "signal $((rc - 128))${err:+: \`$err\`}"; else echo "exit $rc${err:+: \`$err\`}"; fi ;;
  esac
}

printf '| case |'; for n in "${NAMES[@]}"; do printf ' %s |' "$n"; done; echo
printf '|---|'; for n in "${NAMES[@]}"; do printf -- '---|'; done; echo
for c in $CASES; do
  printf '| %s |' "$c"
  for i in "${!NAMES[@]}"; do printf ' %s |' "$(classify "${LIBS[$i]}" "$c")"; done
  echo
done
