/* test_large.c — large blocks (> 1 MiB, a mapping each) and their cache (src/alloc/
 * large.c): contents survive reuse and realloc, calloc reads zero on a reused mapping
 * (same size, smaller, larger), a bigger span serves a smaller request split at the
 * slack and joins its rest again when freed (calloc still zero across spans of
 * different residency), the block usable to its full size, the cache
 * decays on a fake clock (resident for the purge delay, then within a budget that falls
 * over eleven delays, unmapped after the unmap delay), its knobs are obeyed, and the
 * counters agree with what happened.
 *
 * Runs without the ACE thread (ctest), on a fake clock (hak_prim_set_ops) that moves
 * only when a test says so. The test links the static library and reads the cache
 * through alloc-layer calls. */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"
#include "alloc/alloc.h"
#include "alloc/collect.h"
#include "prim/prim.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

int hak_knobs_publish(const hak_knobs* candidate);

#define MiB ((size_t)1 << 20)

static _Atomic uint64_t fake_now;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }
static void advance_ms(uint64_t ms) { atomic_fetch_add(&fake_now, ms * 1000000u); }

static hak_stats stats(void) {
  hak_stats st;
  st.size = sizeof st;
  hak_stats_get(&st);
  return st;
}

static hak_knobs knobs(void) {
  hak_knobs k;
  k.size = sizeof k;
  hak_knobs_get(&k);
  return k;
}

typedef struct { size_t bytes, dirty; unsigned n; } usage;
static usage cache(void) {
  usage u;
  hak_large_cache_usage(&u.bytes, &u.dirty, &u.n);
  return u;
}

static uint64_t delay_ns(void) { return (uint64_t)knobs().purge_delay_ms * 1000000u; }

/* Empty the large cache: far enough in the (fake) future everything decays. */
static void cache_empty(void) {
  for (int i = 0; i < 3; i++) {
    advance_ms(1000000);
    hak_large_cache_purge(fake_clock(), delay_ns());
  }
}

/* A byte pattern over the whole usable size, and its check. */
static void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = (uint64_t)(i / 8) * 0x9e3779b97f4a7c15ull ^ seed;
    memcpy(p + i, &v, n - i < 8 ? n - i : 8);
  }
}
static bool intact(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = (uint64_t)(i / 8) * 0x9e3779b97f4a7c15ull ^ seed;
    if (memcmp(p + i, &v, n - i < 8 ? n - i : 8) != 0) return false;
  }
  return true;
}
static size_t first_nonzero(const unsigned char* p, size_t n) {
  static const unsigned char zero[4096];
  for (size_t i = 0; i < n; i += sizeof zero) {
    size_t k = n - i < sizeof zero ? n - i : sizeof zero;
    if (memcmp(p + i, zero, k) != 0) {
      for (size_t j = i; j < i + k; j++) if (p[j]) return j;
    }
  }
  return n;
}

/* A block written over its whole usable size, then freed: its mapping is dirty. */
static void free_dirty(size_t size, unsigned seed) {
  unsigned char* p = hak_malloc(size);
  CHECK(p != NULL);
  if (!p) return;
  fill(p, hak_malloc_usable_size(p), seed);
  hak_free(p);
}

/* calloc on a mapping that held a pattern: the same size, smaller, and larger (the
 * cached mapping is grown) all read zero, and each is a cache hit. */
static void test_calloc_zero_on_reuse(void) {
  static const size_t sizes[] = {3 * MiB, 8 * MiB + 12345, 5 * MiB + 4096 * 3};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t s = sizes[i];
    const size_t want[3] = {s, s / 2 + 1, s * 2 - 777};
    for (int k = 0; k < 3; k++) {
      cache_empty();
      free_dirty(s, (unsigned)(i * 3 + k));
      usage u = cache();
      CHECK_EQ(u.n, 1);
      CHECK(u.dirty >= s);
      hak_stats a = stats();
      unsigned char* z = hak_calloc(1, want[k]);
      hak_stats b = stats();
      CHECK(z != NULL);
      if (!z) continue;
      CHECK_EQ(b.large_cache_hits - a.large_cache_hits, 1);
      CHECK_MSG(cache().n == 0, "i %zu k %d: %u cached, %zu bytes", i, k, cache().n, cache().bytes);
      size_t nz = first_nonzero(z, want[k]);
      CHECK_MSG(nz == want[k], "calloc(%zu) after a free of %zu: byte %zu is %u", want[k], s, nz,
                nz < want[k] ? z[nz] : 0);
      fill(z, hak_malloc_usable_size(z), 99);
      CHECK(intact(z, hak_malloc_usable_size(z), 99));
      hak_free(z);
    }
  }
  /* The same with malloc + memset by hand, and calloc(n, size) with n > 1. */
  cache_empty();
  free_dirty(6 * MiB, 7);
  unsigned char* z = hak_calloc(3, 2 * MiB);
  CHECK(z != NULL && first_nonzero(z, 6 * MiB) == 6 * MiB);
  hak_free(z);
}

/* A span much bigger than the request: reused and split at the chunk after the request
 * plus the slack; the block is usable (and holds what is written) to its full usable
 * size, the rest stays cached, resident, and serves the next request in place; freed,
 * the pieces join again into the one span. Nothing is unmapped or mapped meanwhile. */
static void test_split_reuse_and_join(void) {
  cache_empty();
  hak_knobs k = knobs();
  free_dirty(64 * MiB, 1);
  usage whole = cache();
  CHECK_EQ(whole.n, 1);
  hak_stats a = stats();
  size_t req = 3 * MiB + 100;
  unsigned char* p = hak_malloc(req);
  hak_stats b = stats();
  CHECK(p != NULL);
  if (!p) return;
  CHECK_EQ(b.large_cache_hits - a.large_cache_hits, 1);
  size_t usable = hak_malloc_usable_size(p);
  size_t need = (4096 + req + 4095) & ~(size_t)4095;
  size_t keep = ((need + need * k.large_reuse_slack_pct / 100) + 2 * MiB - 1) & ~(2 * MiB - 1);
  CHECK_MSG(usable == keep - 4096, "usable %zu for %zu (span %zu)", usable, req, keep);
  CHECK_EQ(b.bytes_held, a.bytes_held);
  usage rest = cache();
  CHECK_EQ(rest.n, 1);
  CHECK_EQ(rest.bytes, whole.bytes - keep);
  CHECK_EQ(rest.dirty, rest.bytes - 4096);          /* the rest kept its pages (but the header's) */
  fill(p, usable, 5);
  /* The next request takes the rest, right after the first block. */
  unsigned char* q = hak_malloc(20 * MiB);
  hak_stats c = stats();
  CHECK(q != NULL);
  if (!q) { hak_free(p); return; }
  CHECK_EQ(c.large_cache_hits - b.large_cache_hits, 1);
  CHECK_EQ(c.bytes_held, a.bytes_held);
  CHECK(q == p + keep);
  fill(q, hak_malloc_usable_size(q), 6);
  CHECK(intact(p, usable, 5));
  CHECK(intact(q, hak_malloc_usable_size(q), 6));
  /* Freed in either order, the pieces join: one span, the size it had. */
  hak_free(p);
  CHECK_EQ(cache().n, 2);                           /* p's span and the rest after q */
  hak_free(q);
  usage joined = cache();
  CHECK_EQ(joined.n, 1);
  CHECK_EQ(joined.bytes, whole.bytes);
  unsigned char* r = hak_malloc(60 * MiB);
  CHECK(r != NULL);
  CHECK(r == p);
  CHECK_EQ(stats().bytes_held, a.bytes_held);
  hak_free(r);
  /* Within the slack the span is reused whole: nothing is split. */
  cache_empty();
  free_dirty(10 * MiB, 2);
  a = stats();
  p = hak_malloc(6 * MiB);
  b = stats();
  CHECK(p != NULL);
  CHECK_EQ(b.large_cache_hits - a.large_cache_hits, 1);
  CHECK_EQ(b.bytes_held, a.bytes_held);
  CHECK_EQ(cache().n, 0);
  CHECK(hak_malloc_usable_size(p) >= 10 * MiB - 4096);
  fill(p, hak_malloc_usable_size(p), 6);
  CHECK(intact(p, hak_malloc_usable_size(p), 6));
  hak_free(p);
}

/* Spans of different residency join, and calloc still reads zero everywhere: a dirty
 * block freed next to a decommitted rest (slack 0 gives a split's rest back), and a
 * dirty block freed after a decommitted one (malloc_trim's purge). */
static void test_join_keeps_calloc_zero(void) {
  hak_knobs saved = knobs(), k = saved;
  cache_empty();
  free_dirty(32 * MiB, 3);
  size_t whole = cache().bytes;
  k.large_reuse_slack_pct = 0;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  unsigned char* p = hak_malloc(4 * MiB);
  CHECK(p != NULL);
  if (!p) return;
  usage u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.dirty, 0);                             /* the rest was decommitted */
  CHECK_EQ(hak_knobs_publish(&saved), 0);
  size_t span = hak_malloc_usable_size(p) + 4096;
  fill(p, hak_malloc_usable_size(p), 4);
  hak_free(p);                                      /* dirty, before a fresh rest */
  u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.bytes, whole);
  CHECK_EQ(u.dirty, span - 4096);                   /* p's pages alone hold old data */
  unsigned char* z = hak_calloc(1, 30 * MiB);
  CHECK(z != NULL);
  if (!z) return;
  CHECK(z == p);
  size_t nz = first_nonzero(z, 30 * MiB);
  CHECK_MSG(nz == 30 * MiB, "byte %zu of the joined span is %u", nz, nz < 30 * MiB ? z[nz] : 0);
  hak_free(z);

  /* A decommitted span, then a dirty one right after it. */
  cache_empty();
  free_dirty(32 * MiB, 5);
  unsigned char* a = hak_malloc(4 * MiB);           /* split: 8 MiB, the rest cached */
  unsigned char* b = hak_malloc(20 * MiB);          /* the rest, whole */
  CHECK(a != NULL && b != NULL);
  if (!a || !b) return;
  CHECK(b == a + 8 * MiB);
  CHECK_EQ(cache().n, 0);
  fill(a, hak_malloc_usable_size(a), 6);
  hak_free(a);
  hak_large_cache_purge(fake_clock(), 0);           /* a's span decommitted, kept */
  u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.dirty, 0);
  fill(b, hak_malloc_usable_size(b), 7);
  size_t bspan = hak_malloc_usable_size(b) + 4096;
  hak_free(b);                                      /* dirty, after a fresh span */
  u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.bytes, whole);
  CHECK_EQ(u.dirty, bspan - 4096);                  /* a's decommitted pages are not old data */
  z = hak_calloc(2, 15 * MiB);
  CHECK(z == a);
  if (!z) return;
  nz = first_nonzero(z, 30 * MiB);
  CHECK_MSG(nz == 30 * MiB, "byte %zu of the joined span is %u", nz, nz < 30 * MiB ? z[nz] : 0);
  hak_free(z);
}

/* realloc grows a block into the cached span right after it: the same pointer, the
 * contents kept, no page mapped; the rest beyond the grown block stays cached. */
static void test_realloc_grows_into_cached_rest(void) {
  cache_empty();
  free_dirty(32 * MiB, 8);
  size_t whole = cache().bytes;
  unsigned char* p = hak_malloc(4 * MiB);           /* split: an 8 MiB span, 24 cached */
  CHECK(p != NULL);
  if (!p) return;
  CHECK_EQ(cache().n, 1);
  fill(p, 4 * MiB, 9);
  hak_stats a = stats();
  unsigned char* q = hak_realloc(p, 12 * MiB);
  hak_stats b = stats();
  CHECK(q == p);
  if (!q) return;
  CHECK(intact(q, 4 * MiB, 9));
  CHECK_EQ(b.large_grown_in_place - a.large_grown_in_place, 1);
  CHECK_EQ(b.bytes_held, a.bytes_held);
  CHECK(hak_malloc_usable_size(q) >= 12 * MiB);
  usage u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.bytes + hak_malloc_usable_size(q) + 4096, whole);
  fill(q, hak_malloc_usable_size(q), 10);
  CHECK(intact(q, hak_malloc_usable_size(q), 10));
  hak_free(q);
  u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.bytes, whole);
}

/* The kernel refuses to unmap a span (vm.max_map_count: unmapping a piece of a mapping
 * splits it): the span is decommitted and kept in the cache, not lost; it goes once
 * unmapping works again. */
static bool refuse_unmap(void* p, size_t size) { (void)p; (void)size; return false; }
static void test_refused_unmap_keeps_the_span(void) {
  cache_empty();
  free_dirty(32 * MiB, 11);
  unsigned char* p = hak_malloc(4 * MiB);           /* split: p's span, a cached rest */
  CHECK(p != NULL);
  if (!p) return;
  hak_free(p);                                      /* joined again */
  CHECK_EQ(cache().n, 1);
  hak_stats a = stats();
  hak_prim_ops ops = *atomic_load(&hak_prim_current);
  const hak_prim_ops* saved = atomic_load(&hak_prim_current);
  ops.unmap = refuse_unmap;
  hak_prim_set_ops(&ops);
  cache_empty();                                    /* decommitted, then its unmap refused */
  hak_prim_set_ops(saved);
  hak_stats b = stats();
  usage u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.dirty, 0);
  CHECK_EQ(b.bytes_held, a.bytes_held);
  unsigned char* z = hak_calloc(1, 30 * MiB);       /* and it is still good for a block */
  CHECK(z == p);
  if (z) {
    CHECK_EQ(first_nonzero(z, 30 * MiB), 30 * MiB);
    hak_free(z);
  }
  cache_empty();
  CHECK_EQ(cache().n, 0);
  CHECK(stats().bytes_held < a.bytes_held);
}

/* A split obeys the cache's limits at once: with the resident cap lowered after a big
 * span was cached, the rest a reuse leaves is decommitted by that reuse, not at some
 * later free. */
static void test_split_obeys_the_resident_cap(void) {
  hak_knobs saved = knobs(), k = saved;
  cache_empty();
  free_dirty(64 * MiB, 12);
  CHECK(cache().dirty >= 60 * MiB);
  k.large_cache_dirty_bytes = 8 * MiB;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  unsigned char* p = hak_malloc(4 * MiB);
  usage u = cache();
  CHECK_EQ(hak_knobs_publish(&saved), 0);
  CHECK(p != NULL);
  CHECK_EQ(u.n, 1);
  CHECK_MSG(u.dirty <= 8 * MiB, "%zu resident bytes cached under an 8 MiB cap", u.dirty);
  hak_free(p);
}

/* No cached mapping is big enough: the largest resident one is grown (its pages kept). */
static void test_grow_reuse(void) {
  cache_empty();
  free_dirty(6 * MiB, 3);
  hak_stats a = stats();
  unsigned char* p = hak_malloc(11 * MiB);
  hak_stats b = stats();
  CHECK(p != NULL);
  if (!p) return;
  CHECK_EQ(b.large_cache_hits - a.large_cache_hits, 1);
  CHECK_EQ(cache().n, 0);
  CHECK(hak_malloc_usable_size(p) >= 11 * MiB);
  CHECK(b.bytes_held - a.bytes_held <= 6 * MiB);      /* grew, not a second mapping */
  fill(p, hak_malloc_usable_size(p), 8);
  CHECK(intact(p, hak_malloc_usable_size(p), 8));
  hak_free(p);
}

/* Contents survive while other large blocks come and go through the cache, and
 * through realloc (grow in place or moved, shrink in place). */
static void test_contents_survive(void) {
  cache_empty();
  enum { N = 12 };
  unsigned char* p[N];
  size_t n[N];
  unsigned seed[N];
  for (int i = 0; i < N; i++) {
    n[i] = (size_t)(2 + (i * 7) % 19) * MiB + (size_t)i * 4099;
    p[i] = hak_malloc(n[i]);
    CHECK(p[i] != NULL);
    if (!p[i]) return;
    seed[i] = (unsigned)i;
    fill(p[i], n[i], seed[i]);
  }
  for (int round = 0; round < 60; round++) {
    int i = (round * 5) % N;
    CHECK_MSG(intact(p[i], n[i], seed[i]), "block %d, round %d", i, round);
    hak_free(p[i]);
    n[i] = (size_t)(2 + (round * 11) % 23) * MiB + (size_t)round * 333;
    p[i] = round & 1 ? hak_calloc(1, n[i]) : hak_malloc(n[i]);
    CHECK(p[i] != NULL);
    if (!p[i]) return;
    if (round & 1) CHECK(first_nonzero(p[i], n[i]) == n[i]);
    seed[i] = 1000u + (unsigned)round;
    fill(p[i], n[i], seed[i]);
  }
  for (int i = 0; i < N; i++) {
    CHECK(intact(p[i], n[i], seed[i]));
    /* realloc: grow by a lot (in place or moved), then shrink in place */
    unsigned char* q = hak_realloc(p[i], n[i] * 2);
    CHECK(q != NULL);
    if (!q) continue;
    CHECK(intact(q, n[i], seed[i]));
    fill(q, n[i] * 2, seed[i] + 7u);
    unsigned char* r = hak_realloc(q, n[i] * 2 / 3);
    CHECK(r == q);
    CHECK(intact(r, n[i] * 2 / 3, seed[i] + 7u));
    CHECK(hak_malloc_usable_size(r) >= n[i] * 2 / 3);
    hak_free(r);
  }
}

/* Decay on the fake clock: resident for the purge delay; then within a budget that
 * falls over eleven delays (some, not all, goes back after two); decommitted
 * mappings read zero; unmapped after the unmap delay. */
static void test_decay(void) {
  cache_empty();
  hak_knobs k = knobs();
  uint64_t d = k.purge_delay_ms;
  enum { N = 10 };
  const size_t sz = 4 * MiB;
  unsigned char* p[N];
  for (int i = 0; i < N; i++) { p[i] = hak_malloc(sz); fill(p[i], sz, (unsigned)i); }
  for (int i = 0; i < N; i++) hak_free(p[i]);
  usage u0 = cache();
  CHECK_EQ(u0.n, N);
  CHECK(u0.dirty == u0.bytes - N * 4096 && u0.dirty >= N * sz);   /* all but the headers */
  hak_stats a = stats();
  advance_ms(d - 1);                                  /* not yet */
  CHECK_EQ(hak_large_cache_purge(fake_clock(), delay_ns()), 0);
  CHECK_EQ(cache().dirty, u0.dirty);
  advance_ms(d + 2);                                  /* two delays: the budget is 9/10 or 8/10 */
  size_t r1 = hak_large_cache_purge(fake_clock(), delay_ns());
  usage u1 = cache();
  CHECK_MSG(r1 > 0 && u1.dirty > 0 && u1.dirty < u0.dirty, "released %zu, dirty %zu of %zu", r1, u1.dirty, u0.dirty);
  CHECK_EQ(u1.n, N);                                  /* decommitted, still cached */
  advance_ms(4 * d);                                  /* six delays: about half */
  hak_large_cache_purge(fake_clock(), delay_ns());
  usage u5 = cache();
  CHECK_MSG(u5.dirty < u1.dirty && u5.dirty > 0, "dirty %zu after six delays (%zu after two)", u5.dirty, u1.dirty);
  advance_ms(6 * d);                                  /* twelve delays: nothing */
  hak_large_cache_purge(fake_clock(), delay_ns());
  usage u10 = cache();
  CHECK_EQ(u10.dirty, 0);
  CHECK_EQ(u10.n, N);
  hak_stats b = stats();
  CHECK(b.bytes_decommitted - a.bytes_decommitted >= N * (sz - 4096));
  /* A decommitted mapping reused: reads zero without a memset, a cache hit. */
  unsigned char* z = hak_calloc(1, sz);
  CHECK(z != NULL && first_nonzero(z, sz) == sz);
  hak_free(z);                                        /* resident again, cached now */
  CHECK_EQ(cache().n, N);
  /* The unmap delay: the ones decommitted long ago go, the one just freed stays. */
  advance_ms(k.large_cache_unmap_delay_ms + 1);
  hak_stats c = stats();
  hak_large_cache_purge(fake_clock(), delay_ns());
  hak_large_cache_purge(fake_clock(), delay_ns());
  usage ue = cache();
  hak_stats e = stats();
  CHECK_MSG(ue.n <= 1, "%u mappings left", ue.n);
  CHECK(c.bytes_held - e.bytes_held >= (N - 1) * sz);
  CHECK_EQ(c.bytes_cached - e.bytes_cached, u0.bytes - ue.bytes);
}

/* A program that replaces a block every 1.5 purge delays, with a scavenger purging
 * between: the mapping, older than the delay when it is reused, stays resident within
 * the budget of recent frees. When the frees stop, a later free decays it (no sweep or
 * scavenger needed). */
static void test_steady_reuse_and_decay_on_free(void) {
  cache_empty();
  hak_knobs k = knobs();
  uint64_t d = k.purge_delay_ms;
  for (int i = 0; i < 4; i++) {                  /* it has been at it for a while */
    advance_ms(d / 2);
    free_dirty(5 * MiB, (unsigned)i);
  }
  hak_stats a = stats();
  for (int i = 0; i < 20; i++) {
    advance_ms(d + d / 2);
    hak_large_cache_purge(fake_clock(), delay_ns());
    CHECK_EQ(cache().n, 1);
    CHECK(cache().dirty >= 5 * MiB);
    free_dirty(5 * MiB, (unsigned)i);
  }
  hak_stats b = stats();
  CHECK_EQ(b.large_cache_hits - a.large_cache_hits, 20);
  CHECK_EQ(b.decommit_calls, a.decommit_calls);
  unsigned char* x = hak_malloc(5 * MiB);       /* the cached one */
  unsigned char* y = hak_malloc(3 * MiB);       /* a new mapping */
  CHECK(x && y);
  CHECK_EQ(cache().n, 0);
  hak_free(x);
  advance_ms(12 * d);                           /* the frees stopped */
  hak_free(y);
  usage u = cache();
  CHECK_EQ(u.n, 2);
  CHECK_MSG(u.dirty <= 3 * MiB + 4096, "dirty %zu: the 5 MiB mapping should be decommitted", u.dirty);
}

/* The knobs: the dirty cap, the entries cap, the address-space cap and no cache. */
static void test_knobs_obeyed(void) {
  hak_knobs saved = knobs(), k = saved;
  cache_empty();
  k.large_cache_dirty_bytes = 9 * MiB;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  unsigned char* p[4];
  for (int i = 0; i < 4; i++) { p[i] = hak_malloc(4 * MiB); fill(p[i], 4 * MiB, (unsigned)i); }
  for (int i = 0; i < 4; i++) hak_free(p[i]);
  usage u = cache();
  CHECK_EQ(u.n, 4);
  CHECK_MSG(u.dirty <= 9 * MiB && u.dirty >= 4 * MiB, "dirty %zu", u.dirty);

  cache_empty();
  k = saved;
  k.large_cache_entries = 2;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  for (int i = 0; i < 4; i++) p[i] = hak_malloc((size_t)(2 + i) * MiB);
  for (int i = 0; i < 4; i++) hak_free(p[i]);
  CHECK_EQ(cache().n, 2);

  cache_empty();
  k = saved;
  k.large_cache_bytes = 7 * MiB;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  for (int i = 0; i < 4; i++) p[i] = hak_malloc(3 * MiB);
  for (int i = 0; i < 4; i++) hak_free(p[i]);
  u = cache();
  CHECK_MSG(u.bytes <= 7 * MiB && u.n == 2, "%zu bytes in %u", u.bytes, u.n);

  cache_empty();
  k = saved;
  k.large_cache_entries = 0;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  hak_stats a = stats();
  free_dirty(3 * MiB, 1);
  hak_stats b = stats();
  CHECK_EQ(cache().n, 0);
  CHECK_EQ(b.bytes_held, a.bytes_held);
  CHECK_EQ(hak_knobs_publish(&saved), 0);
}

/* The counters agree: allocs and frees, bytes in use back to where they were, the
 * cache's bytes in bytes_cached, hits counted once per reuse. */
static void test_counters(void) {
  cache_empty();
  hak_stats a = stats();
  void* p[5];
  for (int i = 0; i < 5; i++) p[i] = hak_malloc((size_t)(2 + 3 * i) * MiB);
  hak_stats b = stats();
  CHECK_EQ(b.large_allocs - a.large_allocs, 5);
  CHECK(b.bytes_in_use - a.bytes_in_use >= 30 * MiB);
  for (int i = 0; i < 5; i++) hak_free(p[i]);
  hak_stats c = stats();
  usage u = cache();
  CHECK_EQ(c.large_frees - a.large_frees, 5);
  CHECK_EQ(c.bytes_in_use, a.bytes_in_use);
  CHECK_EQ(c.bytes_cached - a.bytes_cached, u.bytes);
  CHECK_EQ(u.n, 5);
  for (int i = 0; i < 5; i++) p[i] = hak_malloc((size_t)(2 + 3 * i) * MiB);
  hak_stats d = stats();
  CHECK_EQ(d.large_cache_hits - c.large_cache_hits, 5);
  CHECK_EQ(d.bytes_cached, a.bytes_cached);
  CHECK_EQ(cache().n, 0);
  for (int i = 0; i < 5; i++) hak_free(p[i]);
  cache_empty();
  hak_stats e = stats();
  CHECK_EQ(e.bytes_cached, a.bytes_cached);
  CHECK_EQ(e.bytes_held, a.bytes_held);
  CHECK_EQ(cache().bytes, 0);
}

/* ---- transparent huge pages (knob huge_pages) ----------------------------------------- */
typedef struct { uintptr_t p; size_t size; bool on; } huge_call;
static huge_call huge_calls[16];
static _Atomic unsigned huge_ncalls;
static bool record_huge(void* p, size_t size, bool on) {
  unsigned i = atomic_fetch_add(&huge_ncalls, 1);
  if (i < 16) huge_calls[i] = (huge_call){(uintptr_t)p, size, on};
  return hak_prim_linux.huge(p, size, on);
}

/* Record the advice calls from now on (huge_calls, from 0); returns the operations to
 * put back. */
static hak_prim_ops huge_ops;
static const hak_prim_ops* record_huge_calls(void) {
  const hak_prim_ops* before = atomic_load(&hak_prim_current);
  huge_ops = *before;
  huge_ops.huge = record_huge;
  atomic_store(&huge_ncalls, 0);
  hak_prim_set_ops(&huge_ops);
  return before;
}

static uint64_t fresh_bytes(void) {
  hak_collect c;
  hak_collect_all(&c);
  return c.large_fresh_bytes;
}

/* With the knob on, a large block mapped anew is advised MADV_HUGEPAGE over its whole
 * 2 MiB ranges (before its header page is written), a span whose pages went back
 * loses the advice, and one reused after that gets it again; with the knob off
 * nothing is advised. Every block handed out with pages to fault in counts them in
 * large_fresh_bytes, a resident cached one does not. */
static void test_huge_pages(void) {
  cache_empty();
  hak_knobs saved = knobs(), k = saved;
  k.huge_pages = 1;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  const hak_prim_ops* before = record_huge_calls();

  uint64_t f0 = fresh_bytes();
  unsigned char* p = hak_malloc(6 * MiB);
  CHECK(p != NULL);
  if (!p) { hak_prim_set_ops(before); hak_knobs_publish(&saved); return; }
  CHECK_EQ(atomic_load(&huge_ncalls), 1);
  uintptr_t span = huge_calls[0].p;
  CHECK(huge_calls[0].on);
  /* from the span's start (the header page is written after the advice) over the
   * whole 2 MiB ranges of the block: [span, span + 6 MiB); the block's last page lies
   * in a range it only begins, which stays with 4 KiB pages */
  CHECK_EQ(span % (2 * MiB), 0);
  CHECK(span < (uintptr_t)p && (uintptr_t)p - span < 2 * MiB);
  CHECK_EQ(huge_calls[0].size, (size_t)((uintptr_t)p + 6 * MiB - span) / (2 * MiB) * (2 * MiB));
  if (ht_thp_madvise_mode()) CHECK_EQ(ht_smaps_field((uintptr_t)(p + 6 * MiB - 1), "THPeligible:"), 0);
  CHECK(fresh_bytes() - f0 >= 6 * MiB);
  if (ht_thp_madvise_mode()) CHECK_EQ(ht_smaps_field((uintptr_t)(p + 3 * MiB), "THPeligible:"), 1);
  fill(p, 6 * MiB, 21);
  CHECK(intact(p, 6 * MiB, 21));
  long huge_kb = ht_smaps_field((uintptr_t)(p + 3 * MiB), "AnonHugePages:");
  printf("  (6 MiB written with the knob on: %ld KiB of it in huge pages)\n", huge_kb);
  hak_free(p);

  /* reused resident: no advice again, nothing to fault in */
  uint64_t f1 = fresh_bytes();
  unsigned char* q = hak_malloc(6 * MiB);
  CHECK(q == p);
  CHECK_EQ(atomic_load(&huge_ncalls), 1);
  CHECK(fresh_bytes() - f1 < 2 * MiB);
  hak_free(q);

  /* its pages go back: the advice goes with them */
  cache_empty();                    /* decommitted (and unmapped: the span is gone) */
  CHECK(atomic_load(&huge_ncalls) >= 2);
  CHECK(!huge_calls[1].on);
  CHECK_EQ(huge_calls[1].p, span);

  /* knob off: a new mapping gets no advice */
  k.huge_pages = 0;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  unsigned n = atomic_load(&huge_ncalls);
  unsigned char* r = hak_malloc(6 * MiB);
  CHECK(r != NULL);
  CHECK_EQ(atomic_load(&huge_ncalls), n);
  if (r && ht_thp_madvise_mode()) CHECK_EQ(ht_smaps_field((uintptr_t)(r + 3 * MiB), "THPeligible:"), 0);
  hak_free(r);
  cache_empty();
  hak_prim_set_ops(before);
  CHECK_EQ(hak_knobs_publish(&saved), 0);
}

/* A cached span decommitted while the knob is on and reused gets the advice again. */
static void test_huge_pages_after_decommit(void) {
  cache_empty();
  hak_knobs saved = knobs(), k = saved;
  k.huge_pages = 1;
  k.large_cache_dirty_bytes = 0;                    /* resident only for the purge delay */
  CHECK_EQ(hak_knobs_publish(&k), 0);
  const hak_prim_ops* before = record_huge_calls();
  unsigned char* p = hak_malloc(8 * MiB);
  CHECK(p != NULL);
  if (p) fill(p, 8 * MiB, 5);
  hak_free(p);
  advance_ms(knobs().purge_delay_ms + 1);           /* past the delay: decommitted, kept */
  hak_large_cache_purge(fake_clock(), delay_ns());
  usage u = cache();
  CHECK_EQ(u.n, 1);
  CHECK_EQ(u.dirty, 0);
  CHECK_EQ(atomic_load(&huge_ncalls), 2);
  CHECK(!huge_calls[1].on);
  uint64_t f0 = fresh_bytes();
  unsigned char* q = hak_calloc(1, 8 * MiB);
  CHECK(q == p);
  CHECK_EQ(atomic_load(&huge_ncalls), 3);
  CHECK(huge_calls[2].on);
  CHECK(fresh_bytes() - f0 >= 8 * MiB);
  if (q) CHECK_EQ(first_nonzero(q, 8 * MiB), 8 * MiB);
  hak_free(q);
  cache_empty();
  hak_prim_set_ops(before);
  CHECK_EQ(hak_knobs_publish(&saved), 0);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  atomic_store(&fake_now, hak_prim_linux.now_ns());
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;
  hak_free(hak_malloc(16));          /* initialised before the clock is swapped */
  hak_prim_set_ops(&ops);
  HT_RUN(test_calloc_zero_on_reuse);
  HT_RUN(test_split_reuse_and_join);
  HT_RUN(test_join_keeps_calloc_zero);
  HT_RUN(test_realloc_grows_into_cached_rest);
  HT_RUN(test_refused_unmap_keeps_the_span);
  HT_RUN(test_split_obeys_the_resident_cap);
  HT_RUN(test_grow_reuse);
  HT_RUN(test_contents_survive);
  HT_RUN(test_decay);
  HT_RUN(test_steady_reuse_and_decay_on_free);
  HT_RUN(test_knobs_obeyed);
  HT_RUN(test_counters);
  HT_RUN(test_huge_pages);
  HT_RUN(test_huge_pages_after_decommit);
  hak_prim_set_ops(NULL);
  return ht_report();
}
