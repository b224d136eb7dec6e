/* fuzz_alloc.c — libFuzzer harness: sequences of hak_* allocation calls against a shadow
 * model.
 *
 * The input is read as a program of operations (one byte of opcode, then its operands;
 * the program ends where the input does):
 *   malloc, calloc, realloc, reallocarray, aligned_alloc, posix_memalign, memalign,
 *   free, free_sized, free_aligned_sized, malloc_usable_size, a free or an allocation
 *   done by a helper thread (remote frees, blocks owned by another heap), and
 *   hak_thread_flush.
 * Sizes span every tier: tiny (<= 1 KiB), mid (<= 32 KiB), pool (<= 1 MiB) and large
 * (to 8 MiB), with the tier boundaries and sizes above PTRDIFF_MAX mixed in.
 * The shadow model keeps at most 64 live blocks and about 64 MiB of them. Each block is
 * filled with a pattern derived from its id (all of a block up to 64 KiB, beyond that
 * the first and last 4 KiB and one word per 4 KiB), checked before every free and
 * realloc (realloc: the kept prefix). Every result is checked as the README and
 * include/hakmem.h describe it: alignment (16 for malloc & co., the requested one for
 * the aligned calls), usable size >= requested, the size-class bound up to 1 MiB (for
 * malloc and calloc), zeroed
 * calloc memory, no overlap with another live block, hak_owns, NULL + ENOMEM for sizes
 * above PTRDIFF_MAX and overflowing products, EINVAL for bad alignments, free keeping
 * errno. Any failure aborts with a message (libFuzzer reports it as a crash).
 *
 * Build and run: test/fuzz/run_fuzz.sh (clang -fsanitize=fuzzer,address,undefined,
 * linked to libhakmem-api.a built the same way).
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define NSLOTS 64
#define LIVE_CAP (64 * MiB)
#define FULL_FILL (64 * KiB)

static void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_alloc: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

/* ---- input ------------------------------------------------------------------------ */

typedef struct { const uint8_t* p; size_t n; } input;

static uint64_t take(input* in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) {
    v <<= 8;
    if (in->n) { v |= *in->p++; in->n--; }
  }
  return v;
}

static const size_t boundary_sizes[] = {
  0, 1, 8, 15, 16, 17, 127, 128, 129, 1023, 1024, 1025, 4095, 4096, 4097, 32767, 32768,
  32769, 65536, 1048575, 1048576, 1048577, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 4 * MiB,
};

/* A size from the input, in one of the tiers (or above PTRDIFF_MAX, rarely). */
static size_t take_size(input* in) {
  unsigned sel = (unsigned)take(in, 1);
  switch (sel % 8) {
    case 0: return (size_t)(take(in, 2) % (KiB + 1));                   /* tiny */
    case 1: return 1 + (size_t)(take(in, 1) % 128);                       /* small tiny */
    case 2: return KiB + 1 + (size_t)(take(in, 2) % (31 * KiB));          /* mid */
    case 3: return 32 * KiB + 1 + (size_t)(take(in, 3) % (MiB - 32 * KiB)); /* pool */
    case 4: return MiB + 1 + (size_t)(take(in, 3) % (7 * MiB));           /* large */
    case 5: {                                                             /* a boundary +- a little */
      size_t b = boundary_sizes[take(in, 1) % (sizeof boundary_sizes / sizeof boundary_sizes[0])];
      int d = (int)(take(in, 1) % 5) - 2;
      return (d < 0 && b < (size_t)-d) ? b : b + (size_t)(ptrdiff_t)d;
    }
    case 6: return (size_t)(take(in, 3) % (MiB + 1));                    /* anything up to 1 MiB */
    default:
      if ((sel >> 3) % 8 == 0) return (size_t)PTRDIFF_MAX + 1 + (size_t)take(in, 2);   /* too big */
      return (size_t)(take(in, 1));
  }
}

/* An alignment: mostly powers of two from 1 to 8 MiB, sometimes not a power of two. */
static size_t take_align(input* in) {
  unsigned a = (unsigned)take(in, 1);
  if (a >= 240) return (size_t)(a - 239) * 24;   /* 24, 48, ...: not powers of two */
  return (size_t)1 << (a % 24);
}

/* ---- shadow model ------------------------------------------------------------------- */

typedef struct {
  uint8_t* p;
  size_t n;        /* requested size */
  size_t align;    /* requested alignment (16 for malloc & co.) */
  uint64_t id;
} slot;

static slot slots[NSLOTS];
static size_t live_bytes;
static uint64_t next_id = 1;

static inline uint64_t pat_word(uint64_t id, size_t i) {
  uint64_t z = (id << 32) ^ (uint64_t)i;
  z = (z ^ (z >> 31)) * 0x9e3779b97f4a7c15ull;
  return z ^ (z >> 29);
}
static inline uint8_t pat_byte(uint64_t id, size_t i) { return (uint8_t)(pat_word(id, i & ~(size_t)7) >> (8 * (i & 7))); }

/* The bytes of an n-byte block that carry the pattern: all of it up to FULL_FILL; beyond,
 * the first and last 4 KiB and 8 bytes at every stride point between (every 4 KiB up to
 * 256 KiB, then every 64 KiB), so an 8 MiB block costs a few hundred page faults, not
 * two thousand. Runs `what` on each range [a, b) clipped to [0, limit). */
enum { DO_FILL, DO_VERIFY, DO_ZERO };

static void over_pattern(uint8_t* p, size_t n, size_t limit, uint64_t id, int what, const char* when) {
  size_t ranges[2 * 600];
  int nr = 0;
  if (n <= FULL_FILL) {
    ranges[nr++] = 0; ranges[nr++] = n;
  } else {
    ranges[nr++] = 0; ranges[nr++] = 4096;
    for (size_t i = 4096; i + 8 <= n - 4096 && nr < 2 * 598; i += i < 256 * KiB ? 4096 : 64 * KiB) {
      ranges[nr++] = i; ranges[nr++] = i + 8;
    }
    ranges[nr++] = n - 4096; ranges[nr++] = n;
  }
  for (int r = 0; r < nr; r += 2) {
    size_t a = ranges[r], b = ranges[r + 1] < limit ? ranges[r + 1] : limit;
    for (size_t i = a; i < b; i++) {
      uint8_t want = what == DO_ZERO ? 0 : pat_byte(id, i);
      if (what == DO_FILL) p[i] = want;
      else if (p[i] != want)
        fail("%s: block %p (%zu bytes, id %llu) byte %zu is %#x, expected %#x", when, (void*)p, n,
             (unsigned long long)id, i, p[i], want);
    }
  }
}

static void fill(uint8_t* p, size_t n, uint64_t id) {
  if (n <= FULL_FILL) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t w = pat_word(id, i); memcpy(p + i, &w, 8); }
    for (; i < n; i++) p[i] = pat_byte(id, i);
    return;
  }
  over_pattern(p, n, n, id, DO_FILL, "fill");
}

/* Check the pattern of block s (now at p) at the positions below limit. */
static void verify(const slot* s, uint8_t* p, size_t limit, const char* when) {
  over_pattern(p, s->n, limit, s->id, DO_VERIFY, when);
}

static void check_zero(uint8_t* p, size_t n, const char* what) {
  over_pattern(p, n, n, 0, DO_ZERO, what);
}

/* The checks every fresh block passes; then it is filled and entered in slot k. */
static void adopt(int k, void* vp, size_t n, size_t align, const char* what) {
  /* the size-class bound (README) holds for malloc and calloc; realloc grows a block by
   * at least a quarter on purpose (src/alloc/free.c), the aligned calls pick an aligned class */
  int plain = strcmp(what, "malloc") == 0 || strcmp(what, "calloc") == 0 || strcmp(what, "helper malloc") == 0;
  uint8_t* p = (uint8_t*)vp;
  if ((uintptr_t)p % align) fail("%s(%zu, alignment %zu) = %p is misaligned", what, n, align, vp);
  if (!hak_owns(p)) fail("%s(%zu) = %p: hak_owns says no", what, n, vp);
  size_t u = hak_malloc_usable_size(p);
  if (u < n) fail("%s(%zu) = %p: usable size %zu", what, n, vp, u);
  /* (README: a block a malloc borrows from one of the next two classes, when its own has
   * no free block left, keeps 8 * usable <= 11 * size above 128 B, 47 bytes below; above
   * 32 KiB, from one of the next eight, 4 * usable <= 9 * size) */
  if (plain && n > 32 * KiB && n <= MiB && 4 * u > 9 * n)
    fail("%s(%zu): usable %zu wastes more than 5/9 of the block", what, n, u);
  if (plain && n > 128 && n <= 32 * KiB && 8 * u > 11 * n)
    fail("%s(%zu): usable %zu wastes more than 3/11 of the block", what, n, u);
  if (plain && n >= 1 && n <= 128 && u - n > 47) fail("%s(%zu): usable %zu wastes more than 47 bytes", what, n, u);
  for (int j = 0; j < NSLOTS; j++) {
    const slot* o = &slots[j];
    if (j == k || !o->p) continue;
    size_t ou = hak_malloc_usable_size(o->p);
    if (p < o->p + (ou ? ou : 1) && o->p < p + (u ? u : 1))
      fail("%s(%zu) = %p (usable %zu) overlaps live block %p (usable %zu)", what, n, vp, u, (void*)o->p, ou);
  }
  slot* s = &slots[k];
  s->p = p;
  s->n = n;
  s->align = align;
  s->id = next_id++;
  live_bytes += n;
  fill(p, n, s->id);
}

static void forget(int k) {
  live_bytes -= slots[k].n;
  memset(&slots[k], 0, sizeof slots[k]);
}

static void expect_enomem(void* r, const char* what, size_t n) {
  int e = errno;
  if (r) fail("%s(%#zx) = %p, expected NULL", what, n, r);
  if (e != ENOMEM) fail("%s(%#zx): errno %d, expected ENOMEM", what, n, e);
}

static int fits(size_t n) { return n <= PTRDIFF_MAX && live_bytes + n <= LIVE_CAP; }
static int pow2(size_t a) { return a && (a & (a - 1)) == 0; }

/* ---- a helper thread: frees and allocations by another heap -------------------------- */

static pthread_mutex_t h_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t h_cv = PTHREAD_COND_INITIALIZER;
static int h_req;           /* 0 idle, 1 free h_ptr, 2 malloc h_size, 3 flush */
static void* h_ptr;
static size_t h_size;

static void* helper_main(void* arg) {
  (void)arg;
  pthread_mutex_lock(&h_mu);
  for (;;) {
    while (h_req == 0) pthread_cond_wait(&h_cv, &h_mu);
    if (h_req == 1) hak_free(h_ptr);
    else if (h_req == 2) h_ptr = hak_malloc(h_size);
    else hak_thread_flush();
    h_req = 0;
    pthread_cond_broadcast(&h_cv);
  }
  return NULL;
}

static void* helper(int req, void* p, size_t n) {
  pthread_mutex_lock(&h_mu);
  h_req = req;
  h_ptr = p;
  h_size = n;
  pthread_cond_broadcast(&h_cv);
  while (h_req != 0) pthread_cond_wait(&h_cv, &h_mu);
  void* r = h_ptr;
  pthread_mutex_unlock(&h_mu);
  return r;
}

int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  pthread_t t;
  if (pthread_create(&t, NULL, helper_main, NULL) != 0) fail("cannot start the helper thread");
  pthread_detach(t);
  return 0;
}

/* ---- the operations --------------------------------------------------------------- */

static void free_slot(int k, int how) {
  slot* s = &slots[k];
  if (!s->p) return;
  verify(s, s->p, s->n, "before free");
  int e = 1000 + k;
  errno = e;
  switch (how) {
    case 0: hak_free(s->p); break;
    case 1: hak_free_sized(s->p, s->n); break;
    case 2: hak_free_aligned_sized(s->p, s->align, s->n); break;
    default: helper(1, s->p, 0); break;
  }
  if (how < 3 && errno != e) fail("free of a %zu-byte block changed errno to %d", s->n, errno);
  forget(k);
}

static void run(const uint8_t* data, size_t size) {
  input in = {data, size};
  while (in.n) {
    unsigned op = (unsigned)take(&in, 1) % 16;
    int k = (int)(take(&in, 1) % NSLOTS);
    slot* s = &slots[k];
    switch (op) {
      case 0: case 1: {                                   /* malloc */
        size_t n = take_size(&in);
        if (n > PTRDIFF_MAX) { errno = 0; expect_enomem(hak_malloc(n), "malloc", n); break; }
        if (!fits(n)) break;
        free_slot(k, 0);
        void* p = hak_malloc(n);
        if (!p) fail("malloc(%zu) failed", n);
        adopt(k, p, n, 16, "malloc");
        break;
      }
      case 2: {                                           /* calloc */
        size_t n = take_size(&in);
        size_t cnt = 1 + (size_t)(take(&in, 1) % 16);
        if (n > PTRDIFF_MAX) {
          errno = 0;
          expect_enomem(hak_calloc(cnt + 1, n / 2 + 1), "calloc", n);
          break;
        }
        size_t elem = n / cnt;
        if (!fits(cnt * elem)) break;
        free_slot(k, 0);
        uint8_t* p = (uint8_t*)hak_calloc(cnt, elem);
        if (!p) fail("calloc(%zu, %zu) failed", cnt, elem);
        check_zero(p, cnt * elem, "calloc");
        adopt(k, p, cnt * elem, 16, "calloc");
        break;
      }
      case 3: case 4: {                                   /* realloc (NULL, 0 and failure included) */
        size_t n = take_size(&in);
        if (n > PTRDIFF_MAX) {
          errno = 0;
          void* r = hak_realloc(s->p, n);
          expect_enomem(r, "realloc", n);
          if (s->p) verify(s, s->p, s->n, "after failed realloc");
          break;
        }
        if (!s->p) {
          if (!fits(n)) break;
          void* p = hak_realloc(NULL, n);
          if (!p) fail("realloc(NULL, %zu) failed", n);
          adopt(k, p, n, 16, "realloc(NULL)");
          break;
        }
        verify(s, s->p, s->n, "before realloc");
        if (n == 0) {
          if (hak_realloc(s->p, 0) != NULL) fail("realloc(p, 0) did not return NULL");
          forget(k);
          break;
        }
        if (n > s->n && !fits(n - s->n)) break;
        slot old = *s;
        uint8_t* q = (uint8_t*)hak_realloc(s->p, n);
        if (!q) fail("realloc(%zu -> %zu) failed", old.n, n);
        verify(&old, q, n < old.n ? n : old.n, "after realloc (kept prefix)");
        live_bytes -= old.n;
        s->p = NULL;
        adopt(k, q, n, 16, "realloc");
        break;
      }
      case 5: {                                           /* reallocarray */
        size_t n = take_size(&in);
        size_t cnt = 1 + (size_t)(take(&in, 1) % 8);
        if (n > PTRDIFF_MAX || !s->p) {
          errno = 0;
          void* r = hak_reallocarray(s->p, (size_t)1 << 40, (size_t)1 << 30);   /* overflows PTRDIFF_MAX */
          expect_enomem(r, "reallocarray", 0);
          if (s->p) verify(s, s->p, s->n, "after failed reallocarray");
          break;
        }
        size_t elem = n / cnt;
        if (elem == 0 || (cnt * elem > s->n && !fits(cnt * elem - s->n))) break;
        verify(s, s->p, s->n, "before reallocarray");
        slot old = *s;
        uint8_t* q = (uint8_t*)hak_reallocarray(s->p, cnt, elem);
        if (!q) fail("reallocarray(%zu x %zu) failed", cnt, elem);
        verify(&old, q, cnt * elem < old.n ? cnt * elem : old.n, "after reallocarray (kept prefix)");
        live_bytes -= old.n;
        s->p = NULL;
        adopt(k, q, cnt * elem, 16, "reallocarray");
        break;
      }
      case 6: case 7: case 8: {                           /* aligned_alloc, posix_memalign, memalign */
        size_t al = take_align(&in);
        size_t n = take_size(&in);
        if (n > PTRDIFF_MAX) {
          if (!pow2(al)) break;
          errno = 0;
          expect_enomem(hak_aligned_alloc(al, n), "aligned_alloc", n);
          break;
        }
        if (!fits(n + (al > 4096 ? al : 0))) break;
        void* p = NULL;
        if (op == 6) {
          errno = 0;
          p = hak_aligned_alloc(al, n);
          if (!pow2(al)) {
            if (p || errno != EINVAL) fail("aligned_alloc(%zu, %zu) = %p errno %d, expected EINVAL", al, n, p, errno);
            break;
          }
        } else if (op == 7) {
          void* out = (void*)0x1;
          int rc = hak_posix_memalign(&out, al, n);
          if (!pow2(al) || al % sizeof(void*)) {
            if (rc != EINVAL || out != (void*)0x1) fail("posix_memalign(%zu, %zu) = %d, expected EINVAL", al, n, rc);
            break;
          }
          if (rc != 0) fail("posix_memalign(%zu, %zu) failed: %d", al, n, rc);
          p = out;
        } else {
          p = hak_memalign(al, n);                     /* rounds the alignment up to a power of two */
          size_t r = 1;
          while (r < al) r <<= 1;
          al = r;
        }
        if (!p) fail("aligned allocation (op %u) of %zu at %zu failed", op, n, al);
        free_slot(k, 0);
        adopt(k, p, n, al, op == 6 ? "aligned_alloc" : op == 7 ? "posix_memalign" : "memalign");
        break;
      }
      case 9: case 10: free_slot(k, 0); break;            /* free */
      case 11: free_slot(k, s->align > 16 ? 2 : 1); break; /* free_sized, free_aligned_sized */
      case 12: {                                          /* usable size, hak_owns */
        if (!s->p) { if (hak_malloc_usable_size(NULL) != 0) fail("malloc_usable_size(NULL) != 0"); break; }
        size_t u = hak_malloc_usable_size(s->p);
        if (u < s->n) fail("usable size of a %zu-byte block is %zu", s->n, u);
        if (!hak_owns(s->p)) fail("hak_owns(live block) == 0");
        verify(s, s->p, s->n, "usable-size check");
        break;
      }
      case 13: free_slot(k, 3); break;                    /* freed by the helper thread */
      case 14: {                                          /* allocated by the helper thread */
        size_t n = take_size(&in);
        if (n > PTRDIFF_MAX || !fits(n)) break;
        free_slot(k, 0);
        void* p = helper(2, NULL, n);
        if (!p) fail("helper malloc(%zu) failed", n);
        adopt(k, p, n, 16, "helper malloc");
        break;
      }
      default:                                            /* flush a thread cache */
        if (k & 1) helper(3, NULL, 0); else hak_thread_flush();
        break;
    }
  }
  for (int k = 0; k < NSLOTS; k++) free_slot(k, k % 5 == 4 ? 3 : 0);
  if (live_bytes != 0) fail("shadow model lost track: %zu live bytes", live_bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  return 0;
}
