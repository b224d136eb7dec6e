/* test_tcache_grow.c — thread caches that grow (tls_cache.c, knob snapshot v4): a class
 * whose cache overflows again and again doubles its cap up to tls_cap_max and no
 * further; the capacity grown beyond the base caps, over all classes, never exceeds the
 * thread's budget; a grown class without operations halves back to its base at the
 * sweep (and gives its surplus blocks back) while a class in use keeps its cap; a diet
 * starts a class over; budget 0 means no growth. The caps are read from the thread's
 * heap (internal); knobs are published as ACE would. Runs without the ACE thread. */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"
#include "alloc/alloc.h"
#include "prim/prim.h"

#include <stdatomic.h>
#include <string.h>

int hak_knobs_publish(const hak_knobs* candidate);

static hak_knobs current(void) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  return k;
}

static hak_knobs saved;

/* Publish k and make this thread take it now (its next slow path would). */
static void publish(hak_knobs* k) {
  CHECK_EQ(hak_knobs_publish(k), 0);
  hak_thread_flush();
  hak_free(hak_malloc(16));          /* a refill or flush: the heap copies the snapshot */
}

static hak_heap* heap(void) { return hak_tls_heap; }
static uint32_t cap_of(unsigned cls) { return heap()->tc[cls].cap; }

static uint64_t flushes_of(unsigned cls) {
  hak_stats st;
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  return st.cls[cls].flushes;
}

/* One round of a batch: n blocks of `size`, allocated, then freed in the same order. */
static void batch_round(size_t size, int n) {
  static void* p[4096];
  for (int i = 0; i < n; i++) {
    p[i] = hak_malloc(size);
    memset(p[i], 0xA5, size < 64 ? size : 64);
  }
  for (int i = 0; i < n; i++) hak_free(p[i]);
}

/* The capacity grown beyond the base caps, recounted from the caps. */
static uint64_t grown_bytes(void) {
  const hak_heap* h = heap();
  uint64_t sum = 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    CHECK(h->tc[c].cap >= h->grow[c].base && h->tc[c].cap <= h->grow[c].ceil);
    sum += (uint64_t)(h->tc[c].cap - h->grow[c].base) * hak_cls_size[c];
  }
  CHECK_EQ(sum, h->grown_bytes);
  return sum;
}

static hak_knobs knobs_for_growth(uint32_t cap, uint32_t cap_max, uint64_t budget) {
  hak_knobs k = saved;
  for (unsigned c = 0; c < HAKMEM_KNOB_CLASSES; c++) { k.tls_cap[c] = cap; k.tls_cap_max[c] = cap_max; }
  k.tls_grow_budget_bytes = budget;
  return k;
}

/* Batches of 200 blocks against a cap of 16 with a ceiling of 128: the cap doubles once
 * per round that refills soon after a flush, 16 -> 32 -> 64 -> 128, and never passes the
 * ceiling; with the ceiling raised to 256, a batch of 200 then fits: no flush at all. */
static void test_overflowing_class_grows_to_its_ceiling(void) {
  const size_t size = 64;
  const unsigned cls = hak_size_to_cls(size);
  hak_knobs k = knobs_for_growth(16, 128, 64u << 20);
  publish(&k);
  hak_free(hak_malloc(size));      /* the class's first use sets its caps (a fresh run) */
  CHECK_EQ(cap_of(cls), 16);
  uint32_t last = 16;
  bool saw[4] = {false};
  for (int r = 0; r < 12; r++) {
    batch_round(size, 200);
    uint32_t c = cap_of(cls);
    CHECK_MSG(c >= last && c <= 2 * last, "round %d: cap %u after %u", r, c, last);
    CHECK_MSG(c <= 128, "round %d: cap %u beyond the ceiling 128", r, c);
    for (unsigned i = 0; i < 4; i++) saw[i] |= c == (16u << i);
    last = c;
  }
  CHECK_EQ(last, 128);
  CHECK(saw[0] && saw[1] && saw[2] && saw[3]);
  CHECK(grown_bytes() >= (128 - 16) * hak_cls_size[cls]);
  uint64_t f0 = flushes_of(cls);
  batch_round(size, 200);
  CHECK_MSG(flushes_of(cls) > f0, "a batch of 200 over a cap of 128 must flush");

  k = knobs_for_growth(16, 256, 64u << 20);        /* a higher ceiling: the cap is kept, */
  publish(&k);
  CHECK_EQ(cap_of(cls), 128);
  for (int r = 0; r < 4; r++) batch_round(size, 200);  /* ... then grows once more */
  CHECK_EQ(cap_of(cls), 256);
  f0 = flushes_of(cls);
  for (int r = 0; r < 20; r++) batch_round(size, 200);
  CHECK_MSG(flushes_of(cls) == f0, "%llu flushes in 20 rounds of 200 with a cap of 256",
            (unsigned long long)(flushes_of(cls) - f0));
  publish(&saved);
}

/* A refill long after the last flush (more than twice the cap of operations served by
 * the cache in between) is the cache doing its job: no growth. */
static void test_refill_long_after_a_flush_does_not_grow(void) {
  const size_t size = 64;
  const unsigned cls = hak_size_to_cls(size);
  hak_knobs k = knobs_for_growth(16, 128, 64u << 20);
  publish(&k);
  for (int r = 0; r < 5; r++) {
    batch_round(size, 100);                       /* its frees flush */
    for (int i = 0; i < 1000; i++) hak_free(hak_malloc(size));   /* served by the cache */
    CHECK_MSG(cap_of(cls) == 16, "round %d: cap %u", r, cap_of(cls));
  }
  batch_round(size, 100);
  batch_round(size, 100);                         /* a refill right after the flush */
  CHECK_EQ(cap_of(cls), 32);
  publish(&saved);
}

/* The default snapshot lets a batch of 1600 small blocks stop flushing within a few
 * rounds (the example), where the start cap (256) flushed every round. */
static void test_default_knobs_fit_a_batch_of_1600(void) {
  const size_t size = 32;
  const unsigned cls = hak_size_to_cls(size);
  publish(&saved);
  CHECK(saved.tls_cap[cls] < 1600);
  CHECK(saved.tls_cap_max[cls] >= 1600);
  for (int r = 0; r < 8; r++) batch_round(size, 1600);
  uint64_t f0 = flushes_of(cls);
  for (int r = 0; r < 20; r++) batch_round(size, 1600);
  CHECK_MSG(flushes_of(cls) == f0, "%llu flushes in 20 rounds of 1600 (cap %u)",
            (unsigned long long)(flushes_of(cls) - f0), cap_of(cls));
  publish(&saved);
}

/* Every class may grow to 4096 blocks, the thread by 48 KiB: batches in 24 classes, of
 * up to 1 KiB blocks, push against the budget; the caps' growth never exceeds it (checked
 * after every round), and it is what stops them (most of it is taken). */
static void test_budget_is_never_exceeded(void) {
  const uint64_t budget = 48u << 10;
  hak_knobs k = knobs_for_growth(4, 4096, budget);
  publish(&k);
  CHECK_EQ(grown_bytes(), 0);
  uint64_t peak = 0;
  for (int r = 0; r < 30; r++) {
    for (size_t size = 16; size <= 1024; size += 43) {
      batch_round(size, 64);
      uint64_t g = grown_bytes();
      CHECK_MSG(g <= budget, "round %d, size %zu: grown %llu > budget %llu", r, size, (unsigned long long)g,
                (unsigned long long)budget);
      if (g > peak) peak = g;
    }
  }
  CHECK_MSG(peak >= budget - 1024, "grown %llu: the budget %llu was never the limit", (unsigned long long)peak,
            (unsigned long long)budget);
  /* A lower budget: grown classes fall back to their base until the rest fits. */
  k.tls_grow_budget_bytes = 8u << 10;
  publish(&k);
  CHECK(grown_bytes() <= (8u << 10));
  /* Budget 0: no class grows beyond its start cap. */
  k.tls_grow_budget_bytes = 0;
  publish(&k);
  CHECK_EQ(grown_bytes(), 0);
  const unsigned cls = hak_size_to_cls(64);
  for (int r = 0; r < 10; r++) batch_round(64, 200);
  CHECK_EQ(cap_of(cls), 4);
  CHECK_EQ(grown_bytes(), 0);
  publish(&saved);
}

/* On a fake clock with a purge delay of 1 s and a sweep at every slow path: a grown class
 * left alone halves once per delay down to its base and gives back the blocks beyond its
 * cap; a grown class that serves more operations than its cap per delay keeps it, one
 * that serves fewer halves. */
static _Atomic uint64_t fake_now = 1000000000ull;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }

static void test_idle_class_shrinks_a_busy_one_does_not(void) {
  const unsigned idle = hak_size_to_cls(64), busy = hak_size_to_cls(256), driver = hak_size_to_cls(512);
  hak_knobs k = knobs_for_growth(8, 128, 64u << 20);
  k.tls_cap_max[driver] = 2;                      /* the driver class never grows: each */
  k.tls_cap[driver] = 2;                          /* of its rounds is refills and flushes */
  k.sweep_interval = 1;
  k.purge_delay_ms = 1000;
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;
  hak_prim_set_ops(&ops);
  publish(&k);
  for (int r = 0; r < 8; r++) { batch_round(64, 200); batch_round(256, 200); }
  CHECK_EQ(cap_of(idle), 128);
  CHECK_EQ(cap_of(busy), 128);
  hak_thread_flush();
  batch_round(64, 100);                           /* 100 or more blocks cached */
  hak_tcache* tc = &heap()->tc[idle];
  CHECK_MSG(tc->cap - tc->room >= 100, "%d blocks cached", (int)(tc->cap - tc->room));
  uint32_t expect = 128;
  for (int step = 0; step < 8; step++) {
    batch_round(512, 8);                          /* sweeps see both classes as they are */
    batch_round(256, 100);                        /* busy: 200 operations, from its cache */
    atomic_fetch_add(&fake_now, 600000000ull);    /* 0.6 s: one delay per two steps */
    batch_round(512, 8);
    batch_round(256, 100);
    atomic_fetch_add(&fake_now, 600000000ull);
    batch_round(512, 8);
    expect = expect / 2 > 8 ? expect / 2 : 8;
    CHECK_MSG(cap_of(idle) <= expect * 2 && cap_of(idle) >= expect, "step %d: idle cap %u, expected about %u", step,
              cap_of(idle), expect);
    CHECK_MSG(tc->room >= 0, "step %d: %d blocks beyond the cap stay cached", step, -tc->room);
    CHECK_EQ(cap_of(busy), 128);
  }
  CHECK_EQ(cap_of(idle), 8);
  CHECK(tc->cap - tc->room <= 8);
  /* A trickle: 40 operations per delay, fewer than its cap of 128, halve it as well. */
  for (int step = 0; step < 2; step++) {
    batch_round(256, 10);
    batch_round(512, 8);
    atomic_fetch_add(&fake_now, 600000000ull);
    batch_round(256, 10);
    batch_round(512, 8);
    atomic_fetch_add(&fake_now, 600000000ull);
    batch_round(512, 8);
  }
  CHECK_MSG(cap_of(busy) == 32, "a class with 40 operations per delay has cap %u", cap_of(busy));
  hak_prim_set_ops(NULL);
  publish(&saved);
}

/* A diet (a lower base) starts a grown class over from its new base; an unrelated
 * snapshot (a new purge delay) keeps it. */
static void test_diet_starts_a_grown_class_over(void) {
  const unsigned cls = hak_size_to_cls(64);
  hak_knobs k = knobs_for_growth(16, 128, 64u << 20);
  publish(&k);
  for (int r = 0; r < 8; r++) batch_round(64, 200);
  CHECK_EQ(cap_of(cls), 128);
  k.purge_delay_ms = saved.purge_delay_ms + 1;
  publish(&k);
  CHECK_EQ(cap_of(cls), 128);
  k.diet_pct = 50;                                /* base 8, ceiling 64, budget halved */
  publish(&k);
  CHECK_EQ(cap_of(cls), 8);
  CHECK_EQ(heap()->grow[cls].ceil, 64);
  CHECK_EQ(heap()->grow_budget, 32u << 20);
  for (int r = 0; r < 8; r++) batch_round(64, 200);
  CHECK_EQ(cap_of(cls), 64);
  publish(&saved);
}

/* A heap sets up a class's caps at the class's first refill or flush, not when it is
 * made: a class this thread never used has cap 0 and writes nothing into the heap (a
 * thread using a few classes touches a few pages of its 37 KiB heap). A knob snapshot
 * published meanwhile leaves it alone; its first use takes the snapshot's values. */
static void test_unused_class_is_set_up_at_first_use(void) {
  const size_t size = 3000;                  /* a class no other case here uses */
  const unsigned cls = hak_size_to_cls(size);
  hak_knobs k = knobs_for_growth(24, 96, 64u << 20);
  publish(&k);
  CHECK_EQ(cap_of(cls), 0);
  CHECK_EQ(heap()->grow[cls].base, 0);
  CHECK_EQ(heap()->batch[cls], 0);
  CHECK_EQ(heap()->tc[cls].room, 0);
  void* p = hak_malloc(size);
  CHECK(p != NULL);
  CHECK_EQ(cap_of(cls), 24);
  CHECK_EQ(heap()->grow[cls].base, 24);
  CHECK_EQ(heap()->grow[cls].ceil, 96);
  CHECK(heap()->batch[cls] >= 1);
  hak_free(p);
  CHECK_EQ(heap()->tc[cls].cap - heap()->tc[cls].room, 1);   /* the list holds p */
  publish(&saved);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  hak_free(hak_malloc(16));
  saved = current();
  HT_RUN(test_unused_class_is_set_up_at_first_use);
  HT_RUN(test_overflowing_class_grows_to_its_ceiling);
  HT_RUN(test_refill_long_after_a_flush_does_not_grow);
  HT_RUN(test_default_knobs_fit_a_batch_of_1600);
  HT_RUN(test_budget_is_never_exceeded);
  HT_RUN(test_idle_class_shrinks_a_busy_one_does_not);
  HT_RUN(test_diet_starts_a_grown_class_over);
  return ht_report();
}
