/* api_cases.h — allocator conformance cases, shared by two test binaries.
 *
 * The including file defines the entry points as T_* macros before including
 * this header:
 *   test_api.c      T_MALLOC = malloc, ...      (libc names; libhakmem.so)
 *   test_hak_api.c  T_MALLOC = hak_malloc, ...  (hak_* API; libhakmem-api.a,
 *                                                also the sanitizer builds)
 * Optional entry points (T_FREE_SIZED, T_FREE_ALIGNED_SIZED, T_CFREE) may be
 * NULL function pointers: glibc 2.36 has none of them, and the cases are
 * written so they also run against the system allocator (to test the tests).
 * An optional one missing while HAK_TEST_REQUIRE_HAKMEM=1 is a failure.
 * Optional hooks:
 *   T_HAKMEM_ACTIVE()  nonzero when hakmem is the allocator behind the T_* names
 *                      (default 1); hakmem-specific checks run only then.
 *   T_STATS_GET        hak_stats_get (with hakmem_stats.h included): checks that
 *                      need the statistics run only when it is defined.
 *
 * The behaviour asserted is hakmem's spec: glibc's documented behaviour
 * where glibc is the one replaced (see include/hakmem.h).
 */
#ifndef HAK_API_CASES_H
#define HAK_API_CASES_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hak_test.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Hide a value from the optimizer: no folding, no -Walloc-size-larger-than. */
static size_t opaque(size_t x) {
  volatile size_t v = x;
  return v;
}

/* Nonzero when an optional entry point exists (weak symbol or NULL stand-in);
 * through a call so the compiler does not warn that an address is never NULL. */
static int present(uintptr_t fn) {
  volatile uintptr_t v = fn;
  return v != 0;
}

static int require_hakmem(void) {
  const char* e = getenv("HAK_TEST_REQUIRE_HAKMEM");
  return e && *e && strcmp(e, "0") != 0;
}

#ifndef T_HAKMEM_ACTIVE
#define T_HAKMEM_ACTIVE() 1
#endif

/* ---- patterns: byte i of a block is a function of (i, seed) ---------------- */

static inline uint8_t pat_byte(size_t i, unsigned seed) {
  return (uint8_t)(i * 7 + (i >> 8) * 13 + (i >> 16) * 29 + seed);
}

/* Unaligned, aliasing 8-byte access: one instrumented access per word under the
 * sanitizers (byte loops over 64 MiB blocks are slow under TSan). */
typedef uint64_t __attribute__((may_alias, aligned(1))) u64_any;

static inline uint64_t pat_word(size_t i, unsigned seed) {
  uint64_t w = 0;
  for (int k = 7; k >= 0; k--) w = (w << 8) | pat_byte(i + (size_t)k, seed);
  return w;  /* little-endian: byte i in the low bits */
}

static void pat_fill(void* p, size_t from, size_t to, unsigned seed) {
  uint8_t* b = (uint8_t*)p;
  size_t i = from;
  for (; i < to && (i & 7); i++) b[i] = pat_byte(i, seed);
  for (; i + 8 <= to; i += 8) *(u64_any*)(b + i) = pat_word(i, seed);
  for (; i < to; i++) b[i] = pat_byte(i, seed);
}

/* Index of the first byte in [from, to) that differs from the pattern, or SIZE_MAX. */
static size_t pat_find_bad(const void* p, size_t from, size_t to, unsigned seed) {
  const uint8_t* b = (const uint8_t*)p;
  size_t i = from;
  for (; i < to && (i & 7); i++)
    if (b[i] != pat_byte(i, seed)) return i;
  for (; i + 8 <= to; i += 8)
    if (*(const u64_any*)(b + i) != pat_word(i, seed)) break;
  for (; i < to; i++)
    if (b[i] != pat_byte(i, seed)) return i;
  return SIZE_MAX;
}

/* Index of the first nonzero byte in [0, n), or SIZE_MAX. */
static size_t find_nonzero(const void* p, size_t n) {
  const uint8_t* b = (const uint8_t*)p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (*(const u64_any*)(b + i)) break;
  for (; i < n; i++)
    if (b[i]) return i;
  return SIZE_MAX;
}

/* Sizes that touch every tier boundary (tiny <= 1 KiB, mid <= 32 KiB,
 * pool <= 1 MiB, large above) and some odd ones. */
static const size_t tier_sizes[] = {
  0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 127, 128, 129,
  255, 256, 257, 500, 512, 513, 1000, 1023, 1024, 1025, 1536, 2047, 2048, 2049,
  4095, 4096, 4097, 8191, 8192, 8193, 10000, 16384, 16385, 32767, 32768, 32769,
  40000, 65536, 65537, 100000, 131072, 262145, 500000, 1048575, 1048576, 1048577,
  1500000, 2097152, 2097153, 3145728, 5000000, 9000000,
};
#define N_TIER_SIZES (sizeof tier_sizes / sizeof tier_sizes[0])

static const size_t huge_sizes[] = {
  (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX + 4096, SIZE_MAX, SIZE_MAX - 1,
  SIZE_MAX - 15, SIZE_MAX - 4095, SIZE_MAX - MiB, SIZE_MAX - 2 * MiB - 1,
  SIZE_MAX / 2 + 1 + 12345,
};
#define N_HUGE_SIZES (sizeof huge_sizes / sizeof huge_sizes[0])

/* ---- malloc(0), free(NULL) --------------------------------------------------- */

static void test_malloc_zero(void) {
  void* p = T_MALLOC(opaque(0));
  void* q = T_MALLOC(opaque(0));
  CHECK(p != NULL);
  CHECK(q != NULL);
  CHECK(p != q);
  CHECK_ALIGNED(p, 16);
  /* many malloc(0) are all distinct while live */
  void* v[256];
  for (int i = 0; i < 256; i++) v[i] = T_MALLOC(opaque(0));
  int dup = 0, nul = 0;
  for (int i = 0; i < 256; i++) {
    if (!v[i]) nul++;
    for (int j = 0; j < i; j++)
      if (v[i] && v[i] == v[j]) dup++;
    if (v[i] == p || v[i] == q) dup++;
  }
  CHECK_EQ(nul, 0);
  CHECK_EQ(dup, 0);
  for (int i = 0; i < 256; i++) T_FREE(v[i]);
  T_FREE(p);
  T_FREE(q);
}

static void test_free_null(void) {
  errno = 4242;
  T_FREE(NULL);
  CHECK_EQ(errno, 4242);
  errno = 0;
  T_FREE(NULL);
  CHECK_EQ(errno, 0);
}

/* ---- sizes above PTRDIFF_MAX and multiplication overflow -> ENOMEM ------------ */

static void expect_enomem(void* r, const char* what, size_t a, size_t b) {
  int e = errno;
  CHECK_MSG(r == NULL, "%s(%#zx, %#zx) returned %p, expected NULL", what, a, b, r);
  CHECK_MSG(e == ENOMEM, "%s(%#zx, %#zx): errno = %d, expected ENOMEM (%d)",
            what, a, b, e, ENOMEM);
  if (r) T_FREE(r);
}

static void test_overflow_enomem(void) {
  for (size_t i = 0; i < N_HUGE_SIZES; i++) {
    size_t n = opaque(huge_sizes[i]);
    errno = 0; expect_enomem(T_MALLOC(n), "malloc", n, 0);
    errno = 0; expect_enomem(T_CALLOC(1, n), "calloc", 1, n);
    errno = 0; expect_enomem(T_CALLOC(n, 1), "calloc", n, 1);
    errno = 0; expect_enomem(T_REALLOC(NULL, n), "realloc", 0, n);
    errno = 0; expect_enomem(T_REALLOCARRAY(NULL, 1, n), "reallocarray", 1, n);
    errno = 0; expect_enomem(T_ALIGNED_ALLOC(16, n), "aligned_alloc(16)", 16, n);
    errno = 0; expect_enomem(T_ALIGNED_ALLOC(4096, n), "aligned_alloc(4096)", 4096, n);
    errno = 0; expect_enomem(T_ALIGNED_ALLOC(2 * MiB, n), "aligned_alloc(2MiB)", 2 * MiB, n);
    errno = 0; expect_enomem(T_MEMALIGN(64, n), "memalign(64)", 64, n);
    errno = 0; expect_enomem(T_MEMALIGN(MiB, n), "memalign(1MiB)", MiB, n);
    errno = 0; expect_enomem(T_VALLOC(n), "valloc", n, 0);
    errno = 0; expect_enomem(T_PVALLOC(n), "pvalloc", n, 0);
    void* out = (void*)0x1234;
    int rc = T_POSIX_MEMALIGN(&out, 64, n);
    CHECK_MSG(rc == ENOMEM, "posix_memalign(64, %#zx) returned %d, expected ENOMEM", n, rc);
    if (rc == 0) T_FREE(out);
    out = (void*)0x1234;
    rc = T_POSIX_MEMALIGN(&out, 2 * MiB, n);
    CHECK_MSG(rc == ENOMEM, "posix_memalign(2MiB, %#zx) returned %d, expected ENOMEM", n, rc);
    if (rc == 0) T_FREE(out);
  }
  /* count * size overflows size_t, or the product exceeds PTRDIFF_MAX */
  static const size_t pairs[][2] = {
    {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {(size_t)1 << 32, (size_t)1 << 32},
    {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 31}, {3, SIZE_MAX / 3 + 1},
    {(size_t)PTRDIFF_MAX / 16 + 1, 16}, {65537, (size_t)1 << 48},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    size_t a = opaque(pairs[i][0]), b = opaque(pairs[i][1]);
    errno = 0; expect_enomem(T_CALLOC(a, b), "calloc", a, b);
    errno = 0; expect_enomem(T_REALLOCARRAY(NULL, a, b), "reallocarray", a, b);
  }
  /* an alignment so large no block can have it */
  void* r = T_ALIGNED_ALLOC(opaque((size_t)1 << 63), 16);
  CHECK_MSG(r == NULL, "aligned_alloc(1<<63, 16) returned %p", r);
  r = T_MEMALIGN(opaque((size_t)1 << 63), 16);
  CHECK_MSG(r == NULL, "memalign(1<<63, 16) returned %p", r);
  void* out = NULL;
  int rc = T_POSIX_MEMALIGN(&out, opaque((size_t)1 << 63), 16);
  CHECK_MSG(rc != 0, "posix_memalign(1<<63, 16) returned 0 (%p)", out);
}

/* realloc/reallocarray failure must leave the block alone and valid */
static void test_realloc_failure_keeps_block(void) {
  static const size_t sizes[] = {24, 900, 5000, 100000, 3 * MiB};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    uint8_t* p = (uint8_t*)T_MALLOC(n);
    CHECK(p != NULL);
    if (!p) continue;
    pat_fill(p, 0, n, 11);
    errno = 0;
    void* r = T_REALLOC(p, opaque(SIZE_MAX - 64));
    CHECK_MSG(r == NULL && errno == ENOMEM, "realloc(%zu-block, huge) = %p, errno %d", n, r, errno);
    errno = 0;
    r = T_REALLOC(p, opaque((size_t)PTRDIFF_MAX + 1));
    CHECK_MSG(r == NULL && errno == ENOMEM, "realloc(%zu-block, PTRDIFF_MAX+1) = %p, errno %d", n, r, errno);
    errno = 0;
    r = T_REALLOCARRAY(p, opaque(SIZE_MAX / 2), 3);
    CHECK_MSG(r == NULL && errno == ENOMEM, "reallocarray(%zu-block, SIZE_MAX/2, 3) = %p, errno %d", n, r, errno);
    errno = 0;
    r = T_REALLOCARRAY(p, opaque((size_t)1 << 32), (size_t)1 << 32);
    CHECK_MSG(r == NULL && errno == ENOMEM, "reallocarray(%zu-block, 2^32, 2^32) = %p, errno %d", n, r, errno);
    size_t bad = pat_find_bad(p, 0, n, 11);
    CHECK_MSG(bad == SIZE_MAX, "%zu-byte block changed at %zu after failed realloc", n, bad);
    CHECK(T_USABLE(p) >= n);
    /* still a live block: it can grow and be freed */
    uint8_t* q = (uint8_t*)T_REALLOC(p, n * 2 + 1);
    CHECK(q != NULL);
    if (q) {
      bad = pat_find_bad(q, 0, n, 11);
      CHECK_MSG(bad == SIZE_MAX, "%zu-byte block: realloc after failure lost byte %zu", n, bad);
      T_FREE(q);
    } else {
      T_FREE(p);
    }
  }
}

/* ---- bad alignment -> EINVAL ---------------------------------------------------- */

static void test_posix_memalign_einval(void) {
  static const size_t bad[] = {0, 1, 2, 4, 3, 6, 12, 24, 40, 48, 100, 1000, 4095, 4097, 3 * MiB,
                               ((size_t)1 << 20) | 8, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (bad[i] % sizeof(void*) == 0 && (bad[i] & (bad[i] - 1)) == 0 && bad[i] != 0) continue;
    void* sentinel = (void*)(uintptr_t)0xdeadbeef;
    void* out = sentinel;
    int rc = T_POSIX_MEMALIGN(&out, opaque(bad[i]), 64);
    CHECK_MSG(rc == EINVAL, "posix_memalign(alignment %zu) returned %d, expected EINVAL", bad[i], rc);
    CHECK_MSG(out == sentinel, "posix_memalign(alignment %zu) wrote *out = %p", bad[i], out);
    if (rc == 0 && out != sentinel) T_FREE(out);
  }
  /* the smallest valid alignment works */
  void* out = NULL;
  CHECK_EQ(T_POSIX_MEMALIGN(&out, sizeof(void*), 10), 0);
  CHECK(out != NULL);
  CHECK_ALIGNED(out, sizeof(void*));
  T_FREE(out);
}

static void test_aligned_alloc_einval(void) {
  static const size_t bad[] = {0, 3, 5, 6, 12, 24, 48, 100, 1000, 4095, 4097, 3 * MiB, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void* r = T_ALIGNED_ALLOC(opaque(bad[i]), 64);
    int e = errno;
    CHECK_MSG(r == NULL, "aligned_alloc(alignment %zu) returned %p, expected NULL", bad[i], r);
    CHECK_MSG(e == EINVAL, "aligned_alloc(alignment %zu): errno %d, expected EINVAL", bad[i], e);
    if (r) T_FREE(r);
  }
}

/* glibc's memalign rounds a non-power-of-two alignment up to the next power of two */
static void test_memalign_rounds_alignment(void) {
  static const size_t al[][2] = {{3, 4}, {24, 32}, {48, 64}, {100, 128}, {1000, 1024},
                                 {3000, 4096}, {5000, 8192}, {100000, 131072},
                                 {3 * MiB, 4 * MiB}};
  static const size_t sizes[] = {1, 100, 5000, 50000};
  for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      void* p = T_MEMALIGN(opaque(al[i][0]), sizes[k]);
      CHECK_MSG(p != NULL, "memalign(%zu, %zu) failed", al[i][0], sizes[k]);
      if (!p) continue;
      CHECK_MSG((uintptr_t)p % al[i][1] == 0, "memalign(%zu, %zu) = %p, not %zu-aligned",
                al[i][0], sizes[k], p, al[i][1]);
      CHECK(T_USABLE(p) >= sizes[k]);
      memset(p, 0x5a, sizes[k]);
      T_FREE(p);
    }
  }
  /* alignments below the malloc alignment are plain malloc */
  static const size_t small[] = {0, 1, 2, 4, 8, 16};
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
    void* p = T_MEMALIGN(opaque(small[i]), 40);
    CHECK_MSG(p != NULL, "memalign(%zu, 40) failed", small[i]);
    if (p) {
      if (small[i]) CHECK_ALIGNED(p, small[i]);
      memset(p, 1, 40);
      T_FREE(p);
    }
  }
}

/* ---- free keeps errno ------------------------------------------------------------- */

static void test_free_keeps_errno(void) {
  static const size_t sizes[] = {0, 1, 16, 700, 1024, 1025, 20000, 32769, 300000, MiB + 1,
                                 4 * MiB, 40 * MiB};
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void* p = T_MALLOC(sizes[i]);
      CHECK(p != NULL);
      if (p) memset(p, 1, sizes[i]);
      errno = 7777 + (int)i;
      T_FREE(p);
      CHECK_MSG(errno == 7777 + (int)i, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    void* a = T_ALIGNED_ALLOC(MiB, 3 * MiB);
    void* b = T_MEMALIGN(4096, 100);
    void* c = T_CALLOC(1000, 1000);
    void* d = T_REALLOC(NULL, 9 * MiB);
    errno = EBADF; T_FREE(a); CHECK_EQ(errno, EBADF);
    errno = EBADF; T_FREE(b); CHECK_EQ(errno, EBADF);
    errno = EBADF; T_FREE(c); CHECK_EQ(errno, EBADF);
    errno = EBADF; T_FREE(d); CHECK_EQ(errno, EBADF);
  }
  /* a batch of frees (flushes of thread caches happen inside) */
  void* v[3000];
  for (int i = 0; i < 3000; i++) v[i] = T_MALLOC((size_t)(i % 97) * 11 + (i % 10 == 0 ? 40000 : 0));
  errno = ERANGE;
  for (int i = 0; i < 3000; i++) T_FREE(v[i]);
  CHECK_EQ(errno, ERANGE);
}

/* ---- every (size, alignment) pair ---------------------------------------------------- */

static const size_t matrix_sizes[] = {0, 1, 15, 16, 17, 100, 1000, 4096, 4097, 40000,
                                      1 << 20, (1 << 20) + 1, 3 << 20};
#define N_MATRIX_SIZES (sizeof matrix_sizes / sizeof matrix_sizes[0])

/* Checks one aligned block: aligned, usable >= size, usable range writable and
 * read back.  Returns nonzero when the block is usable (so it can be freed). */
static int check_aligned_block(const char* fn, void* p, size_t al, size_t n, unsigned seed) {
  CHECK_MSG(p != NULL, "%s(alignment %zu, size %zu) returned NULL", fn, al, n);
  if (!p) return 0;
  CHECK_MSG((uintptr_t)p % al == 0, "%s(alignment %zu, size %zu) = %p is misaligned", fn, al, n, p);
  size_t u = T_USABLE(p);
  CHECK_MSG(u >= n, "%s(alignment %zu, size %zu): usable size %zu", fn, al, n, u);
  if (u < n) u = n;
  pat_fill(p, 0, u, seed);
  size_t bad = pat_find_bad(p, 0, u, seed);
  CHECK_MSG(bad == SIZE_MAX, "%s(alignment %zu, size %zu): byte %zu did not read back", fn, al, n, bad);
  return 1;
}

static void test_alignment_matrix(void) {
  size_t alignments[32];
  int na = 0;
  for (size_t a = 1; a <= 8 * MiB; a <<= 1) alignments[na++] = a;
  for (int ai = 0; ai < na; ai++) {
    size_t al = alignments[ai];
    for (size_t si = 0; si < N_MATRIX_SIZES; si++) {
      size_t n = opaque(matrix_sizes[si]);
      unsigned seed = (unsigned)(ai * 31 + si);

      void* p = T_ALIGNED_ALLOC(al, n);
      if (check_aligned_block("aligned_alloc", p, al, n, seed)) {
        if (present((uintptr_t)T_FREE_ALIGNED_SIZED) && (si & 1)) T_FREE_ALIGNED_SIZED(p, al, n);
        else T_FREE(p);
      }

      p = T_MEMALIGN(al, n);
      if (check_aligned_block("memalign", p, al, n, seed + 1)) T_FREE(p);

      if (al >= sizeof(void*)) {
        void* out = NULL;
        int rc = T_POSIX_MEMALIGN(&out, al, n);
        CHECK_MSG(rc == 0, "posix_memalign(alignment %zu, size %zu) returned %d", al, n, rc);
        if (rc == 0 && check_aligned_block("posix_memalign", out, al, n, seed + 2)) T_FREE(out);
      }
    }
  }
  /* many live aligned blocks at once: distinct and non-overlapping */
  enum { K = 64 };
  void* live[K];
  size_t lsz[K];
  for (int i = 0; i < K; i++) {
    size_t al = (size_t)1 << (4 + i % 10);
    lsz[i] = (size_t)(i * 97) % 3000 + 1;
    live[i] = T_ALIGNED_ALLOC(al, lsz[i]);
    CHECK(live[i] != NULL);
    if (live[i]) { CHECK_ALIGNED(live[i], al); pat_fill(live[i], 0, lsz[i], (unsigned)i); }
  }
  int bad = 0;
  for (int i = 0; i < K; i++) {
    if (live[i] && pat_find_bad(live[i], 0, lsz[i], (unsigned)i) != SIZE_MAX) bad++;
    T_FREE(live[i]);
  }
  CHECK_EQ(bad, 0);
}

/* ---- realloc ------------------------------------------------------------------------- */

static const size_t realloc_walk[] = {1, 8, 24, 100, 1000, 1024, 1025, 5000, 32768, 32769,
                                      200000, 1 << 20, (1 << 20) + 1, 5 << 20, 64 << 20};
#define N_REALLOC_WALK (sizeof realloc_walk / sizeof realloc_walk[0])

/* Walk one block up through all tiers and back down; the pattern prefix survives. */
static void realloc_walk_once(unsigned seed, int interleave) {
  size_t cur = realloc_walk[0];
  uint8_t* p = (uint8_t*)T_MALLOC(cur);
  CHECK(p != NULL);
  if (!p) return;
  pat_fill(p, 0, cur, seed);
  void* noise[2 * N_REALLOC_WALK];
  int nn = 0;
  size_t order[2 * N_REALLOC_WALK];
  int no = 0;
  for (size_t i = 1; i < N_REALLOC_WALK; i++) order[no++] = realloc_walk[i];
  for (size_t i = N_REALLOC_WALK - 1; i-- > 0;) order[no++] = realloc_walk[i];
  for (int k = 0; k < no; k++) {
    size_t n = order[k];
    if (interleave) noise[nn++] = T_MALLOC(n / 2 + 1); /* keeps blocks from growing in place */
    uint8_t* q = (uint8_t*)T_REALLOC(p, opaque(n));
    CHECK_MSG(q != NULL, "realloc(%zu -> %zu) returned NULL", cur, n);
    if (!q) break;
    size_t keep = cur < n ? cur : n;
    size_t bad = pat_find_bad(q, 0, keep, seed);
    CHECK_MSG(bad == SIZE_MAX, "realloc(%zu -> %zu): byte %zu of the kept prefix changed", cur, n, bad);
    CHECK_MSG(T_USABLE(q) >= n, "realloc(%zu -> %zu): usable size %zu", cur, n, T_USABLE(q));
    CHECK_ALIGNED(q, 16);
    if (n > cur) pat_fill(q, cur, n, seed);
    p = q;
    cur = n;
  }
  T_FREE(p);
  for (int i = 0; i < nn; i++) T_FREE(noise[i]);
}

static void test_realloc_tiers(void) {
  realloc_walk_once(3, 0);
  realloc_walk_once(4, 1);
  /* every pair of tier sizes, both directions, shrinking to the same size too */
  static const size_t s[] = {1, 17, 600, 1024, 1025, 9000, 32768, 32769, 300000, MiB, MiB + 1, 3 * MiB};
  size_t ns = sizeof s / sizeof s[0];
  for (size_t i = 0; i < ns; i++) {
    for (size_t j = 0; j < ns; j++) {
      uint8_t* p = (uint8_t*)T_MALLOC(s[i]);
      CHECK(p != NULL);
      if (!p) continue;
      pat_fill(p, 0, s[i], (unsigned)(i * 16 + j));
      uint8_t* q = (uint8_t*)T_REALLOC(p, opaque(s[j]));
      CHECK_MSG(q != NULL, "realloc(%zu -> %zu) returned NULL", s[i], s[j]);
      if (!q) { T_FREE(p); continue; }
      size_t keep = s[i] < s[j] ? s[i] : s[j];
      size_t bad = pat_find_bad(q, 0, keep, (unsigned)(i * 16 + j));
      CHECK_MSG(bad == SIZE_MAX, "realloc(%zu -> %zu) lost byte %zu", s[i], s[j], bad);
      CHECK(T_USABLE(q) >= s[j]);
      memset(q, 0x33, s[j]);
      /* same size again */
      uint8_t* r = (uint8_t*)T_REALLOC(q, s[j]);
      CHECK(r != NULL);
      if (r) {
        CHECK(r[0] == 0x33 && r[s[j] - 1] == 0x33);
        T_FREE(r);
      } else {
        T_FREE(q);
      }
    }
  }
  /* realloc of blocks from the aligned entry points and from calloc */
  void* a = T_MEMALIGN(4096, 3000);
  void* b = T_ALIGNED_ALLOC(2 * MiB, 100);
  uint8_t* c = (uint8_t*)T_CALLOC(100, 10);
  CHECK(a && b && c);
  if (a && b && c) {
    pat_fill(a, 0, 3000, 1);
    pat_fill(b, 0, 100, 2);
    a = T_REALLOC(a, 70000);
    b = T_REALLOC(b, 10);
    c = (uint8_t*)T_REALLOC(c, 5000);
    CHECK(a && b && c);
    if (a) CHECK(pat_find_bad(a, 0, 3000, 1) == SIZE_MAX);
    if (b) CHECK(pat_find_bad(b, 0, 10, 2) == SIZE_MAX);
    if (c) CHECK(find_nonzero(c, 1000) == SIZE_MAX);
  }
  T_FREE(a);
  T_FREE(b);
  T_FREE(c);
}

static void test_realloc_null_is_malloc(void) {
  static const size_t sizes[] = {0, 1, 100, 1024, 5000, 40000, 2 * MiB + 3};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void* p = T_REALLOC(NULL, opaque(sizes[i]));
    CHECK_MSG(p != NULL, "realloc(NULL, %zu) returned NULL", sizes[i]);
    if (!p) continue;
    CHECK(T_USABLE(p) >= sizes[i]);
    CHECK_ALIGNED(p, 16);
    memset(p, 0x7e, sizes[i]);
    T_FREE(p);
  }
  void* p = T_REALLOC(NULL, 0);
  void* q = T_REALLOC(NULL, 0);
  CHECK(p != NULL && q != NULL && p != q);
  T_FREE(p);
  T_FREE(q);
}

/* glibc: realloc(p, 0) frees p and returns NULL */
static void test_realloc_zero_frees(void) {
  static const size_t sizes[] = {1, 64, 1000, 5000, 40000, 2 * MiB};
  for (int round = 0; round < 50; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void* p = T_MALLOC(sizes[i]);
      CHECK(p != NULL);
      memset(p, 1, sizes[i]);
      void* r = T_REALLOC(p, opaque(0));
      CHECK_MSG(r == NULL, "realloc(%zu-byte block, 0) returned %p, expected NULL (glibc frees)", sizes[i], r);
      if (r) T_FREE(r);
    }
  }
}

static void test_reallocarray(void) {
  uint8_t* p = (uint8_t*)T_REALLOCARRAY(NULL, 10, 10);
  CHECK(p != NULL);
  if (!p) return;
  CHECK(T_USABLE(p) >= 100);
  pat_fill(p, 0, 100, 9);
  uint8_t* q = (uint8_t*)T_REALLOCARRAY(p, 1000, 50);
  CHECK(q != NULL);
  if (!q) { T_FREE(p); return; }
  CHECK(pat_find_bad(q, 0, 100, 9) == SIZE_MAX);
  CHECK(T_USABLE(q) >= 50000);
  pat_fill(q, 100, 50000, 9);
  q = (uint8_t*)T_REALLOCARRAY(q, 3, 7);
  CHECK(q != NULL);
  if (q) CHECK(pat_find_bad(q, 0, 21, 9) == SIZE_MAX);
  T_FREE(q);
}

/* ---- usable size ------------------------------------------------------------------------ */

static void test_usable_size(void) {
  CHECK_EQ(T_USABLE(NULL), 0);
  for (size_t i = 0; i < N_TIER_SIZES; i++) {
    size_t n = tier_sizes[i];
    uint8_t* p = (uint8_t*)T_MALLOC(n);
    CHECK_MSG(p != NULL, "malloc(%zu) failed", n);
    if (!p) continue;
    size_t u = T_USABLE(p);
    CHECK_MSG(u >= n, "malloc(%zu): usable size %zu", n, u);
    /* usable size is not absurd (8x + a page covers every sane class scheme) */
    CHECK_MSG(u <= n * 8 + 64 * KiB, "malloc(%zu): usable size %zu is implausibly large", n, u);
    if (u < n) u = n;
    pat_fill(p, 0, u, (unsigned)i);
    CHECK(pat_find_bad(p, 0, u, (unsigned)i) == SIZE_MAX);
    CHECK_EQ(T_USABLE(p), u);
    T_FREE(p);
  }
  /* every size up to 2 KiB + and one per 64 up to 40 KiB: all size classes */
  for (size_t n = 0; n <= 40 * KiB; n += (n < 2100 ? 1 : 61)) {
    void* p = T_MALLOC(n);
    if (!p) { CHECK_MSG(p != NULL, "malloc(%zu) failed", n); continue; }
    size_t u = T_USABLE(p);
    if (u < n) CHECK_MSG(u >= n, "malloc(%zu): usable size %zu", n, u);
    else ht_passed++;
    if (u >= 16 && n <= 4096) CHECK_ALIGNED(p, 16);
    memset(p, 0xa5, u > n ? u : n);
    T_FREE(p);
  }
}

/* README: size classes are multiples of 16 up to 128 B, then eight per doubling up to
 * 1 MiB, "so above 128 B a block wastes at most 1/9 of its size (below 128 B, at most 15
 * bytes)", except a block of one of the next two classes (at most 25 % larger) that
 * serves a malloc whose class has no free block: "above 128 B at most 3/11 of it is
 * unused, below at most 47 bytes"; above 32 KiB one of the next eight, at most twice
 * the size: "at most 5/9 of the block is unused". Every size from 1 to 1 MiB: usable >=
 * size, 16-byte aligned, and usable - size <= usable / 9 above 128 B (exactly: 8 *
 * usable <= 9 * size), <= 15 from 1 to 128 B, for all but the borrowed blocks, which
 * keep 8 * usable <= 11 * size (above 32 KiB: 4 * usable <= 9 * size) and usable -
 * size <= 47; malloc(0) gets a block of at most 16. */
static void test_usable_size_waste(void) {
  if (!T_HAKMEM_ACTIVE()) {
    printf("  (hakmem not loaded: its size-class bound does not apply)\n");
    return;
  }
  void* z = T_MALLOC(0);                      /* malloc(0): the smallest class */
  CHECK_MSG(z != NULL && T_USABLE(z) <= 16, "malloc(0) = %p, usable %zu", z, z ? T_USABLE(z) : 0);
  T_FREE(z);
  size_t worst_n = 0, worst_u = 0, bad = 0, n_checked = 0, borrowed = 0;
  for (size_t n = 1; n <= MiB; n++) {
    void* p = T_MALLOC(n);
    if (!p) { CHECK_MSG(p != NULL, "malloc(%zu) failed", n); return; }
    size_t u = T_USABLE(p);
    int own = n <= 128 ? u - n <= 15 : 8 * u <= 9 * n;
    int lent = n <= 128 ? u - n <= 47 : n > 32 * KiB ? 4 * u <= 9 * n : 8 * u <= 11 * n;
    int ok = u >= n && (uintptr_t)p % 16 == 0 && (own || lent);
    if (!ok && bad++ < 8)
      fprintf(stderr, "    malloc(%zu) = %p: usable %zu (waste %zu, bound %s)\n", n, p, u, u - n,
              n <= 128 ? "47 bytes" : n > 32 * KiB ? "5/9 of usable" : "3/11 of usable");
    if (u >= n && !own) borrowed++;
    if (n > 128 && u >= n && own && (worst_u == 0 || (u - n) * worst_u > (worst_u - worst_n) * u)) { worst_n = n; worst_u = u; }
    n_checked++;
    T_FREE(p);
  }
  CHECK_MSG(bad == 0, "%zu of %zu sizes break the size-class bound", bad, n_checked);
  /* A borrowed block is the exception, not the rule. */
  CHECK_MSG(borrowed * 100 <= n_checked, "%zu of %zu sizes got a larger class's block", borrowed, n_checked);
  if (worst_u)
    printf("  worst waste above 128 B: malloc(%zu) -> %zu usable (%.2f %% of the block)\n", worst_n, worst_u,
           100.0 * (double)(worst_u - worst_n) / (double)worst_u);
}

/* ---- calloc ------------------------------------------------------------------------------ */

static void test_calloc_zeroed(void) {
  void* z0 = T_CALLOC(0, 0);  /* glibc returns a unique block */
  CHECK(z0 != NULL);
  T_FREE(z0);
  void* z1 = T_CALLOC(0, 10);
  void* z2 = T_CALLOC(10, 0);
  CHECK(z1 != NULL && z2 != NULL && z1 != z2);
  T_FREE(z1);
  T_FREE(z2);
  for (size_t i = 0; i < N_TIER_SIZES; i++) {
    size_t n = tier_sizes[i];
    for (int round = 0; round < 3; round++) {
      /* dirty a block of the same size, free it, calloc: the reused memory must be zero */
      uint8_t* d = (uint8_t*)T_MALLOC(n);
      CHECK(d != NULL);
      if (d) { memset(d, 0xff, T_USABLE(d)); T_FREE(d); }
      uint8_t* p = (uint8_t*)(round == 1 && n % 8 == 0 ? T_CALLOC(n / 8, 8) : T_CALLOC(1, n));
      CHECK_MSG(p != NULL, "calloc(%zu) failed", n);
      if (!p) continue;
      size_t nz = find_nonzero(p, n);
      CHECK_MSG(nz == SIZE_MAX, "calloc(%zu) round %d (reuse of a dirty block %s): byte %zu is %#x",
                n, round, d == p ? "same address" : "other address", nz, nz == SIZE_MAX ? 0 : p[nz]);
      CHECK(T_USABLE(p) >= n);
      memset(p, 0xee, n);
      T_FREE(p);
    }
  }
  /* blocks dirtied, shrunk in place (maybe), freed: a later calloc of the full
   * size must not trust "only the used part is dirty" */
  static const size_t shrink[][3] = {
    {30000, 2000, 30000}, {900000, 40000, 900000}, {8 * MiB, 3 * MiB, 7 * MiB},
    {8 * MiB, 1500000, 8 * MiB}, {3 * MiB, 100, 3 * MiB}, {6 * MiB, 5 * MiB, 6 * MiB},
  };
  for (size_t i = 0; i < sizeof shrink / sizeof shrink[0]; i++) {
    for (int round = 0; round < 2; round++) {
      uint8_t* d = (uint8_t*)(round ? T_ALIGNED_ALLOC(2 * MiB, shrink[i][0]) : T_MALLOC(shrink[i][0]));
      CHECK(d != NULL);
      if (!d) continue;
      memset(d, 0xff, shrink[i][0]);
      uint8_t* e = (uint8_t*)T_REALLOC(d, shrink[i][1]);
      CHECK(e != NULL);
      T_FREE(e ? e : d);
      uint8_t* p = (uint8_t*)T_CALLOC(1, shrink[i][2]);
      CHECK(p != NULL);
      if (!p) continue;
      size_t nz = find_nonzero(p, shrink[i][2]);
      CHECK_MSG(nz == SIZE_MAX, "malloc(%zu) dirty, realloc to %zu, free, calloc(%zu): byte %zu is %#x",
                shrink[i][0], shrink[i][1], shrink[i][2], nz, nz == SIZE_MAX ? 0 : p[nz]);
      T_FREE(p);
    }
  }
  /* a batch dirtied and freed, then a batch calloc'ed */
  enum { B = 200 };
  void* v[B];
  for (int i = 0; i < B; i++) { v[i] = T_MALLOC((size_t)(i % 50) * 24 + 8); memset(v[i], 0xcc, (size_t)(i % 50) * 24 + 8); }
  for (int i = 0; i < B; i++) T_FREE(v[i]);
  int bad = 0;
  for (int i = 0; i < B; i++) {
    v[i] = T_CALLOC((size_t)(i % 50) * 3 + 1, 8);
    if (!v[i] || find_nonzero(v[i], (size_t)(i % 50) * 24 + 8) != SIZE_MAX) bad++;
  }
  CHECK_EQ(bad, 0);
  for (int i = 0; i < B; i++) T_FREE(v[i]);
}

/* ---- valloc / pvalloc ----------------------------------------------------------------- */

static void test_valloc_pvalloc(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 100000, MiB + 1, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    uint8_t* p = (uint8_t*)T_VALLOC(n);
    CHECK_MSG(p != NULL, "valloc(%zu) failed", n);
    if (p) {
      CHECK_MSG((uintptr_t)p % page == 0, "valloc(%zu) = %p not page aligned", n, (void*)p);
      CHECK(T_USABLE(p) >= n);
      memset(p, 0x11, n);
      T_FREE(p);
    }
    p = (uint8_t*)T_PVALLOC(n);
    CHECK_MSG(p != NULL, "pvalloc(%zu) failed", n);
    if (p) {
      size_t rounded = (n + page - 1) & ~(page - 1);
      CHECK_MSG((uintptr_t)p % page == 0, "pvalloc(%zu) = %p not page aligned", n, (void*)p);
      CHECK_MSG(T_USABLE(p) >= rounded, "pvalloc(%zu): usable %zu < %zu (size rounded up to page)",
                n, T_USABLE(p), rounded);
      memset(p, 0x22, rounded);  /* the whole rounded size is ours */
      T_FREE(p);
    }
  }
}

/* ---- C23 free_sized / free_aligned_sized, cfree ----------------------------------------- */

/* Proof that a free really freed: hakmem hands the block a thread freed last to that
 * thread's next request of the same size and alignment (a TLS list is LIFO; the large
 * cache prefers the most recent of equal fits), so the repeated request must return the
 * same address; a free that did nothing would leave it live and the address taken. */
static void check_same_address(const char* what, size_t n, size_t al, void* freed, void* again) {
  CHECK_MSG(again == freed, "%s(%zu bytes, alignment %zu) did not free the block: the next request "
            "returned %p, not the freed %p", what, n, al, again, freed);
}

#ifdef T_STATS_GET
/* The statistics moved by exactly one freed block of usable size u, between snapshots
 * a and b with nothing but that free between them: either large_frees rose by one, or the
 * in_use count of the class with block size u fell by one; nothing else in use changed.
 * (hak_stats_get allocates and frees a buffer of its own; between two snapshots that is
 * one alloc and one free in its class, so in_use stays put there.) */
static void check_one_freed(const char* what, size_t n, size_t u, const hak_stats* a, const hak_stats* b) {
  uint64_t large = b->large_frees - a->large_frees;
  int down = -1, other = 0;
  for (unsigned c = 0; c < HAKMEM_STATS_CLASSES; c++) {
    if (b->cls[c].in_use == a->cls[c].in_use) continue;
    if (a->cls[c].in_use - b->cls[c].in_use == 1 && down < 0) down = (int)c;
    else other++;
  }
  int ok = other == 0 && ((large == 1 && down < 0) ||
                          (large == 0 && down >= 0 && a->cls[down].block_size == u));
  CHECK_MSG(ok, "%s(%zu bytes, usable %zu): not exactly one block freed: large_frees +%llu, "
            "class %d in_use -1 (block size %llu), %d other classes changed", what, n, u,
            (unsigned long long)large, down, down >= 0 ? (unsigned long long)a->cls[down].block_size : 0ull,
            other);
}
#define SNAP(st) do { (st).size = sizeof(st); CHECK_EQ(T_STATS_GET(&(st)), 0); } while (0)
#endif

static void test_free_sized(void) {
  if (!present((uintptr_t)T_FREE_SIZED) || !present((uintptr_t)T_FREE_ALIGNED_SIZED)) {
    CHECK_MSG(!require_hakmem(), "free_sized/free_aligned_sized are not exported");
    printf("  (free_sized/free_aligned_sized not available: skipped)\n");
    return;
  }
  int hak = T_HAKMEM_ACTIVE();
#ifdef T_STATS_GET
  static hak_stats sa, sb;
#endif
  for (int round = 0; round < 4; round++) {
    for (size_t i = 0; i < N_TIER_SIZES; i++) {
      size_t n = tier_sizes[i];
      void* p = T_MALLOC(n);
      CHECK(p != NULL);
      if (!p) continue;
      memset(p, 3, n);
#ifdef T_STATS_GET
      size_t u = T_USABLE(p);
      SNAP(sa);
#endif
      errno = 99;
      T_FREE_SIZED(p, n);
      CHECK_EQ(errno, 99);
#ifdef T_STATS_GET
      SNAP(sb);
      check_one_freed("free_sized", n, u, &sa, &sb);
#endif
      void* again = T_MALLOC(n);
      if (hak) check_same_address("free_sized", n, 0, p, again);
      T_FREE(again);

      size_t al = (size_t)1 << (3 + (i % 20));
      void* q = T_ALIGNED_ALLOC(al, n);
      CHECK(q != NULL);
      if (!q) continue;
      CHECK_ALIGNED(q, al);
      memset(q, 4, n);
#ifdef T_STATS_GET
      u = T_USABLE(q);
      SNAP(sa);
#endif
      T_FREE_ALIGNED_SIZED(q, al, n);
#ifdef T_STATS_GET
      SNAP(sb);
      check_one_freed("free_aligned_sized", n, u, &sa, &sb);
#endif
      again = T_ALIGNED_ALLOC(al, n);
      if (hak) check_same_address("free_aligned_sized", n, al, q, again);
      T_FREE(again);

      void* r = T_CALLOC(1, n);
      CHECK(r != NULL);
      if (!r) continue;
      T_FREE_SIZED(r, n);
      again = T_CALLOC(1, n);
      if (hak) check_same_address("free_sized of a calloc block", n, 0, r, again);
      T_FREE(again);
    }
  }
  T_FREE_SIZED(NULL, 0);
  T_FREE_ALIGNED_SIZED(NULL, 64, 0);
}

static void test_cfree(void) {
  if (!present((uintptr_t)T_CFREE)) {
    CHECK_MSG(!require_hakmem(), "cfree is not exported");
    printf("  (cfree not available: skipped)\n");
    return;
  }
  int hak = T_HAKMEM_ACTIVE();
  for (size_t i = 0; i < N_TIER_SIZES; i++) {
    size_t n = tier_sizes[i];
    void* p = T_MALLOC(n);
    CHECK(p != NULL);
    if (!p) continue;
    memset(p, 5, n);
    T_CFREE(p);
    void* again = T_MALLOC(n);
    if (hak) check_same_address("cfree", n, 0, p, again);
    T_FREE(again);
  }
  T_CFREE(NULL);
}

/* ---- distinctness, many live blocks -------------------------------------------------------- */

typedef struct { uint8_t* p; size_t n; } blk_t;

static int blk_cmp(const void* a, const void* b) {
  uintptr_t x = (uintptr_t)((const blk_t*)a)->p, y = (uintptr_t)((const blk_t*)b)->p;
  return x < y ? -1 : x > y;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void) {  /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t rng_size(void) {
  uint64_t r = rng_next();
  switch (r % 100) {
    case 0: return 32 * KiB + (r >> 8) % (1 * MiB);         /* pool */
    case 1: return (r >> 8) % 100 == 0 ? MiB + (r >> 16) % (3 * MiB) : 2048 + (r >> 16) % 30000;
    default:
      if (r % 100 < 15) return 1025 + (r >> 8) % (31 * KiB); /* mid */
      return (r >> 8) % 1025;                                /* tiny */
  }
}

static void test_live_blocks_disjoint(void) {
  enum { N = 6000 };
  blk_t* b = (blk_t*)calloc(N, sizeof *b);  /* bookkeeping from the system/any allocator */
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      b[i].n = rng_size();
      b[i].p = (uint8_t*)T_MALLOC(b[i].n);
      if (!b[i].p) { CHECK_MSG(0, "malloc(%zu) failed", b[i].n); continue; }
      pat_fill(b[i].p, 0, b[i].n < 256 ? b[i].n : 256, (unsigned)i);
      if (b[i].n > 256) pat_fill(b[i].p, b[i].n - 64, b[i].n, (unsigned)i);
    }
    /* free every third, reallocate some, so free lists are exercised */
    for (int i = 0; i < N; i += 3) {
      T_FREE(b[i].p);
      b[i].n = rng_size();
      b[i].p = (uint8_t*)T_MALLOC(b[i].n);
      if (!b[i].p) continue;
      pat_fill(b[i].p, 0, b[i].n < 256 ? b[i].n : 256, (unsigned)i);
      if (b[i].n > 256) pat_fill(b[i].p, b[i].n - 64, b[i].n, (unsigned)i);
    }
    int corrupt = 0;
    for (int i = 0; i < N; i++) {
      if (!b[i].p) continue;
      size_t head = b[i].n < 256 ? b[i].n : 256;
      if (pat_find_bad(b[i].p, 0, head, (unsigned)i) != SIZE_MAX ||
          (b[i].n > 256 && pat_find_bad(b[i].p, b[i].n - 64, b[i].n, (unsigned)i) != SIZE_MAX)) {
        if (corrupt++ < 5)
          fprintf(stderr, "    block %d (%p, %zu bytes) corrupted by another block\n", i, (void*)b[i].p, b[i].n);
      }
    }
    CHECK_EQ(corrupt, 0);
    qsort(b, N, sizeof *b, blk_cmp);
    int overlap = 0;
    for (int i = 1; i < N; i++) {
      if (!b[i - 1].p) continue;
      size_t len = b[i - 1].n ? b[i - 1].n : 1;
      if (b[i - 1].p + len > b[i].p) {
        if (overlap++ < 5)
          fprintf(stderr, "    overlap: %p+%zu and %p\n", (void*)b[i - 1].p, b[i - 1].n, (void*)b[i].p);
      }
    }
    CHECK_EQ(overlap, 0);
    for (int i = 0; i < N; i++) T_FREE(b[i].p);
  }
  free(b);
}

/* ---- threads: cross-thread free, free in TSD destructors ----------------------------------- */

static pthread_key_t tsd_key;
static void* tsd_result;

static void tsd_destructor(void* v) {
  /* runs after the thread function returned: the thread's caches may be half torn down */
  T_FREE(v);
  void* p = T_MALLOC(200);
  if (p) memset(p, 1, 200);
  T_FREE(p);
  tsd_result = T_MALLOC(5000);  /* handed to the main thread */
  if (tsd_result) memset(tsd_result, 0x42, 5000);
}

static void* tsd_thread(void* arg) {
  (void)arg;
  void* p = T_MALLOC(300);
  memset(p, 2, 300);
  pthread_setspecific(tsd_key, p);
  void** out = (void**)T_MALLOC(64 * sizeof(void*));
  for (int i = 0; i < 64; i++) {
    out[i] = T_MALLOC((size_t)i * 100 + 1);
    memset(out[i], i, (size_t)i * 100 + 1);
  }
  return out;
}

static void test_threads_cross_free(void) {
  CHECK_EQ(pthread_key_create(&tsd_key, tsd_destructor), 0);
  for (int round = 0; round < 20; round++) {
    pthread_t t;
    tsd_result = NULL;
    CHECK_EQ(pthread_create(&t, NULL, tsd_thread, NULL), 0);
    void* r = NULL;
    pthread_join(t, &r);
    void** out = (void**)r;
    CHECK(out != NULL);
    if (!out) continue;
    int bad = 0;
    for (int i = 0; i < 64; i++) {
      uint8_t* b = (uint8_t*)out[i];
      if (!b || b[0] != (uint8_t)i || b[(size_t)i * 100] != (uint8_t)i) bad++;
      T_FREE(b);  /* freed by a thread other than the owner, which has exited */
    }
    CHECK_EQ(bad, 0);
    T_FREE(out);
    CHECK(tsd_result != NULL);
    if (tsd_result) {
      CHECK(((uint8_t*)tsd_result)[4999] == 0x42);
      T_FREE(tsd_result);
    }
  }
  pthread_key_delete(tsd_key);
}

/* ---- after main: atexit handlers free and allocate -------------------------------------- */

static void* exit_blocks[4];

static void at_exit_handler(void) {
  /* runs after main returned (and after the report line): a crash here fails the test */
  for (int i = 0; i < 4; i++) T_FREE(exit_blocks[i]);
  void* p = T_MALLOC(100);
  void* q = T_MALLOC(50000);
  if (!p || !q) abort();
  memset(p, 1, 100);
  memset(q, 2, 50000);
  T_FREE(q);
  T_FREE(p);
}

static void test_atexit_registration(void) {
  static const size_t sizes[4] = {32, 3000, 200000, 2 * MiB};
  for (int i = 0; i < 4; i++) {
    exit_blocks[i] = T_MALLOC(sizes[i]);
    CHECK(exit_blocks[i] != NULL);
    if (exit_blocks[i]) memset(exit_blocks[i], i, sizes[i]);
  }
  CHECK_EQ(atexit(at_exit_handler), 0);
}

/* Run every case above (both the libc-name and the hak_* binaries call this). */
#define API_RUN_SHARED_CASES() do { \
  HT_RUN(test_malloc_zero); \
  HT_RUN(test_free_null); \
  HT_RUN(test_overflow_enomem); \
  HT_RUN(test_realloc_failure_keeps_block); \
  HT_RUN(test_posix_memalign_einval); \
  HT_RUN(test_aligned_alloc_einval); \
  HT_RUN(test_memalign_rounds_alignment); \
  HT_RUN(test_free_keeps_errno); \
  HT_RUN(test_alignment_matrix); \
  HT_RUN(test_realloc_tiers); \
  HT_RUN(test_realloc_null_is_malloc); \
  HT_RUN(test_realloc_zero_frees); \
  HT_RUN(test_reallocarray); \
  HT_RUN(test_usable_size); \
  HT_RUN(test_usable_size_waste); \
  HT_RUN(test_calloc_zeroed); \
  HT_RUN(test_valloc_pvalloc); \
  HT_RUN(test_free_sized); \
  HT_RUN(test_cfree); \
  HT_RUN(test_live_blocks_disjoint); \
  HT_RUN(test_threads_cross_free); \
  HT_RUN(test_atexit_registration); \
} while (0)

#endif /* HAK_API_CASES_H */
