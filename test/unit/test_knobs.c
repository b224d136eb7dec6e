/* test_knobs.c — the knob snapshot (include/hakmem_ace.h): the start-up values the
 * options give, the versioned copy-out, publishing (validation, generations, the alloc
 * layer obeying a published cap) and publishing under load (no torn or retired
 * snapshot is ever read). hak_knobs_publish is internal to the runtime layer; the test
 * links the static library, where it is visible. */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

int hak_knobs_publish(const hak_knobs* candidate);

static hak_knobs current(void) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  return k;
}

/* tls_cap of a class = HAKMEM_TLS_CACHE_BYTES / block size, at least 1, at most
 * HAKMEM_TLS_CAP_MAX (README, Configuration). The values below are worked out by hand
 * for the settings the ctest entries use, not recomputed with that formula. */
typedef struct { uint32_t block; unsigned cls; uint32_t cap; } cap_case;
typedef struct {
  long long bytes, capmax;
  cap_case c[10];
} cap_table;

static const cap_table cap_tables[] = {
  /* defaults: 64 KiB per class, at most 256 blocks (ctest unit_knobs) */
  {64 << 10, 256, {{16, 0, 256},          /* 65536/16 = 4096 -> capped at 256 */
                   {128, 7, 256},         /* 512 -> 256 */
                   {208, 12, 256},        /* 315 -> 256 */
                   {288, 16, 227},        /* 65536/288 = 227.6 */
                   {1024, 31, 64},
                   {8192, 55, 8},
                   {32768, 71, 2},
                   {36864, 72, 1},        /* 1.8 */
                   {131072, 87, 1},       /* 0.5 -> at least 1 */
                   {1048576, 111, 1}}},
  /* HAKMEM_TLS_CACHE_BYTES=8K HAKMEM_TLS_CAP_MAX=100 (ctest unit_knobs_small) */
  {8 << 10, 100, {{16, 0, 100},           /* 512 -> 100 */
                  {128, 7, 64},
                  {208, 12, 39},          /* 8192/208 = 39.4 */
                  {288, 16, 28},          /* 28.4 */
                  {1024, 31, 8},
                  {8192, 55, 1},
                  {32768, 71, 1},         /* 0.25 -> 1 */
                  {36864, 72, 1},
                  {131072, 87, 1},
                  {1048576, 111, 1}}},
  /* HAKMEM_TLS_CACHE_BYTES=1M HAKMEM_TLS_CAP_MAX=4096 (ctest unit_knobs_large) */
  {1 << 20, 4096, {{16, 0, 4096},         /* 65536 -> 4096 */
                   {128, 7, 4096},        /* 8192 -> 4096 */
                   {208, 12, 4096},       /* 5041 -> 4096 */
                   {288, 16, 3640},       /* 1048576/288 = 3640.9 */
                   {1024, 31, 1024},
                   {8192, 55, 128},
                   {32768, 71, 32},
                   {36864, 72, 28},       /* 28.4 */
                   {131072, 87, 8},
                   {1048576, 111, 1}}},
};

/* The start-up snapshot: tls_cap from the table above (the ctest entries run three
 * thread-cache settings), everything else at the option defaults (README). */
static void test_startup_values(void) {
  hak_knobs k = current();
  CHECK_EQ(k.size, sizeof k);
  CHECK_EQ(k.version, HAKMEM_KNOBS_VERSION);
  CHECK(k.generation >= 1);
  long long bytes = hak_option_value("HAKMEM_TLS_CACHE_BYTES");
  long long capmax = hak_option_value("HAKMEM_TLS_CAP_MAX");
  hak_stats st;
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  const cap_table* t = NULL;
  for (size_t i = 0; i < sizeof cap_tables / sizeof cap_tables[0]; i++)
    if (cap_tables[i].bytes == bytes && cap_tables[i].capmax == capmax) t = &cap_tables[i];
  CHECK_MSG(t != NULL, "no expected tls_cap values for HAKMEM_TLS_CACHE_BYTES=%lld HAKMEM_TLS_CAP_MAX=%lld "
            "(add them to cap_tables)", bytes, capmax);
  if (t) {
    for (size_t i = 0; i < sizeof t->c / sizeof t->c[0]; i++) {
      const cap_case* c = &t->c[i];
      CHECK_MSG(st.cls[c->cls].block_size == c->block, "class %u has block size %llu, expected %u",
                c->cls, (unsigned long long)st.cls[c->cls].block_size, c->block);
      CHECK_MSG(k.tls_cap[c->cls] == c->cap, "bytes %lld, cap max %lld: class %u (%u B) tls_cap %u, expected %u",
                bytes, capmax, c->cls, c->block, k.tls_cap[c->cls], c->cap);
    }
  }
  for (unsigned c = 0; c < HAKMEM_KNOB_CLASSES; c++) {
    CHECK(k.tls_cap[c] >= 1 && k.tls_cap[c] <= capmax);
    CHECK(k.tls_cap[c] == 1 || (long long)k.tls_cap[c] * (long long)st.cls[c].block_size <= bytes);
    if (c > 0) CHECK(k.tls_cap[c] <= k.tls_cap[c - 1]);
    /* tls_cap_max: HAKMEM_TLS_GROW_BYTES (256 KiB) / block size, in 1..HAKMEM_TLS_GROW_MAX (2048) */
    uint64_t ceil = (256u << 10) / st.cls[c].block_size;
    CHECK_EQ(k.tls_cap_max[c], ceil < 1 ? 1 : ceil > 2048 ? 2048 : ceil);
    CHECK_EQ(k.refill_batch[c], 32);
    CHECK_EQ(k.remote_drain_interval[c], 64);
  }
  CHECK_EQ(k.tls_cap_max[0], 2048);              /* 16 B: 16384 -> 2048 */
  CHECK_EQ(k.tls_cap_max[31], 256);              /* 1 KiB */
  CHECK_EQ(k.tls_cap_max[111], 1);               /* 1 MiB: 0.25 -> at least 1 */
  CHECK_EQ(k.tls_grow_budget_bytes, 4u << 20);
  CHECK_EQ(k.sweep_interval, 64);
  CHECK_EQ(k.diet_pct, 100);
  CHECK_EQ(k.purge_delay_ms, 100);
  CHECK_EQ(k.partial_release_pages, 1);
  CHECK_EQ(k.segment_cache_bytes, 1ll << 30);
  CHECK_EQ(k.segment_cache_dirty_bytes, 16ll << 20);
  CHECK_EQ(k.large_cache_bytes, 1ll << 30);
  CHECK_EQ(k.large_cache_entries, 64);
  CHECK_EQ(k.large_cache_dirty_bytes, 512ll << 20);
  CHECK_EQ(k.large_cache_unmap_delay_ms, 2000);
  CHECK_EQ(k.large_reuse_slack_pct, 50);
  CHECK_EQ(k.reserved, 0);
  CHECK_EQ(k.realloc_shrink_keep_pct, 50);
  CHECK_EQ(k.realloc_grow_headroom_pct, 25);
  CHECK_EQ(k.realloc_nt_threshold, 128ll << 20);   /* measured: docs/BENCHMARKS.md, realloc_copy */
  CHECK_EQ(k.realloc_inplace, 1);
  /* HAKMEM_HUGE_PAGES=on (ctest unit_knobs_small) and all (unit_knobs_large): from the
   * start; auto (the default) starts without them, for ACE to turn on */
  const char* hp = getenv("HAKMEM_HUGE_PAGES");
  CHECK_EQ(k.huge_pages, !hp ? 0u : strcmp(hp, "on") == 0 ? 1u : strcmp(hp, "all") == 0 ? 2u : 0u);
}

static void test_versioned_copy(void) {
  errno = 0;
  CHECK_EQ(hak_knobs_get(NULL), -1);
  CHECK_EQ(errno, EINVAL);
  union { hak_knobs k; unsigned char raw[sizeof(hak_knobs)]; } u;
  memset(&u, 0x5A, sizeof u);
  u.k.size = 16;                                   /* size, version, generation */
  CHECK_EQ(hak_knobs_get(&u.k), 0);
  CHECK_EQ(u.k.size, 16);
  CHECK(u.k.generation >= 1);
  CHECK_EQ(u.raw[16], 0x5A);
  /* A program built against version 3 (the struct ended after `reserved`) gets exactly
   * its fields, not the growth knobs of version 4. */
  size_t v3 = offsetof(hak_knobs, tls_grow_budget_bytes);
  memset(&u, 0x5A, sizeof u);
  u.k.size = (uint32_t)v3;
  CHECK_EQ(hak_knobs_get(&u.k), 0);
  CHECK_EQ(u.k.size, v3);
  CHECK_EQ(u.k.reserved, 0);
  CHECK_EQ(u.k.large_reuse_slack_pct, current().large_reuse_slack_pct);
  CHECK_EQ(u.raw[v3], 0x5A);
  CHECK_EQ(u.raw[sizeof u - 1], 0x5A);
  /* A program built against version 2 (the struct ended after `reserved`, now
   * large_cache_unmap_delay_ms) gets exactly its fields. */
  size_t v2 = offsetof(hak_knobs, large_cache_dirty_bytes);
  memset(&u, 0x5A, sizeof u);
  u.k.size = (uint32_t)v2;
  CHECK_EQ(hak_knobs_get(&u.k), 0);
  CHECK_EQ(u.k.size, v2);
  CHECK_EQ(u.k.version, HAKMEM_KNOBS_VERSION);
  CHECK_EQ(u.k.realloc_grow_headroom_pct, 25);
  CHECK_EQ(u.k.large_cache_unmap_delay_ms, current().large_cache_unmap_delay_ms);
  CHECK_EQ(u.raw[v2], 0x5A);
  CHECK_EQ(u.raw[sizeof u - 1], 0x5A);
}

/* Out-of-range values are refused with EINVAL and change nothing. */
static void test_publish_validates(void) {
  hak_knobs before = current();
  hak_knobs bad = before;
  bad.tls_cap[3] = 0;
  errno = 0;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  CHECK_EQ(errno, EINVAL);
  bad = before; bad.diet_pct = 101;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.refill_batch[0] = 0;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.large_cache_entries = 65;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.large_reuse_slack_pct = 10001;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.large_cache_unmap_delay_ms = 1000001;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.large_cache_dirty_bytes = (1ull << 40) + 1;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.tls_cap_max[5] = 0;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.tls_cap_max[HAKMEM_KNOB_CLASSES - 1] = 65536;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.tls_grow_budget_bytes = (1ull << 40) + 1;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.reserved = 1;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = before; bad.version = 1;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  CHECK_EQ(hak_knobs_publish(NULL), -1);
  hak_knobs after = current();
  CHECK_EQ(after.generation, before.generation);
  CHECK(memcmp(&after, &before, sizeof after) == 0);
}

/* Free many blocks of one class on one thread: the frees beyond the cap in force must
 * go back to the slabs, so flushes >= (n - cap) / cap. */
static uint64_t flushes_for(unsigned cls, size_t size, int n) {
  static void* p[4000];
  hak_stats a, b;
  a.size = b.size = sizeof a;
  CHECK_EQ(hak_stats_get(&a), 0);
  for (int i = 0; i < n; i++) p[i] = hak_malloc(size);
  for (int i = 0; i < n; i++) hak_free(p[i]);
  CHECK_EQ(hak_stats_get(&b), 0);
  return b.cls[cls].flushes - a.cls[cls].flushes;
}

/* With no growth budget the cap published is the cap in force (tls_cap_max and the
 * growth: test_tcache_grow.c). */
static void test_published_cap_is_obeyed(void) {
  enum { CLS = 12, SIZE = 200, N = 4000 };        /* class 12 holds 208-byte blocks */
  hak_knobs k = current();
  uint64_t budget0 = k.tls_grow_budget_bytes;
  k.tls_grow_budget_bytes = 0;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  hak_thread_flush();
  k = current();
  uint64_t gen = k.generation;
  uint32_t cap0 = k.tls_cap[CLS];
  uint64_t f_default = flushes_for(CLS, SIZE, N);
  if (cap0 >= N) CHECK_EQ(f_default, 0);              /* everything fits the cache */
  else CHECK_MSG(f_default >= (N - cap0) / cap0 && f_default <= 2 * N / cap0 + 2, "flushes %llu with cap %u",
                 (unsigned long long)f_default, cap0);
  k.tls_cap[CLS] = 8;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  hak_knobs now = current();
  CHECK_EQ(now.generation, gen + 1);
  CHECK_EQ(now.tls_grow_budget_bytes, 0);
  CHECK_EQ(now.tls_cap[CLS], 8);
  /* A refill or flush picks the new snapshot up (a thread whose cache is big enough for
   * the whole loop would otherwise see neither); from then on at most 8 are cached. */
  hak_thread_flush();
  uint64_t f_small = flushes_for(CLS, SIZE, N);
  CHECK_MSG(f_small >= (N - 8) / 8, "flushes %llu with cap 8", (unsigned long long)f_small);
  /* A diet of 50 % halves the cap in force. */
  k.tls_cap[CLS] = 64;
  k.diet_pct = 50;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  hak_thread_flush();
  uint64_t f_diet = flushes_for(CLS, SIZE, N);
  CHECK_MSG(f_diet >= (N - 32) / 32 && f_diet < f_small, "flushes %llu with cap 64 at 50 %%", (unsigned long long)f_diet);
  hak_knobs restore = current();
  restore.tls_cap[CLS] = cap0;
  restore.diet_pct = 100;
  restore.tls_grow_budget_bytes = budget0;
  CHECK_EQ(hak_knobs_publish(&restore), 0);
}

/* Publish two recognisable snapshots back to back while threads allocate (picking the
 * knobs up on every refill and flush) and readers copy the snapshot: every copy must be
 * all of one snapshot, never a mix, and the allocating threads' blocks stay intact. */
#define PUB_THREADS 3
static atomic_int pub_stop;
static atomic_long torn, corrupt, copies;

static void* reader_thread(void* arg) {
  (void)arg;
  while (!atomic_load(&pub_stop)) {
    hak_knobs k;
    k.size = sizeof k;
    if (hak_knobs_get(&k) != 0) { atomic_fetch_add(&torn, 1); continue; }
    uint32_t mark = k.tls_cap[0];
    for (unsigned c = 1; c < HAKMEM_KNOB_CLASSES; c++) {
      if (k.tls_cap[c] != mark || k.refill_batch[c] != (mark == 100 ? 7u : 9u)) { atomic_fetch_add(&torn, 1); break; }
    }
    if (k.sweep_interval != mark) atomic_fetch_add(&torn, 1);
    atomic_fetch_add(&copies, 1);
  }
  return NULL;
}

static void* alloc_thread(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  enum { SLOTS = 512 };
  unsigned char* slot[SLOTS] = {0};
  size_t len[SLOTS] = {0};
  while (!atomic_load(&pub_stop)) {
    seed = seed * 1103515245u + 12345u;
    unsigned i = (seed >> 8) % SLOTS;
    if (slot[i]) {
      for (size_t j = 0; j < len[i]; j++) if (slot[i][j] != (unsigned char)(i + j)) { atomic_fetch_add(&corrupt, 1); break; }
      hak_free(slot[i]);
      slot[i] = NULL;
    } else {
      len[i] = 16 + (seed >> 16) % 3000;
      slot[i] = hak_malloc(len[i]);
      for (size_t j = 0; j < len[i]; j++) slot[i][j] = (unsigned char)(i + j);
    }
  }
  for (unsigned i = 0; i < SLOTS; i++) hak_free(slot[i]);
  return NULL;
}

static void test_publish_under_load(void) {
  hak_knobs a = current(), b = a, saved = a;
  for (unsigned c = 0; c < HAKMEM_KNOB_CLASSES; c++) {
    a.tls_cap[c] = 100; a.refill_batch[c] = 7;
    b.tls_cap[c] = 200; b.refill_batch[c] = 9;
  }
  a.sweep_interval = 100;
  b.sweep_interval = 200;
  CHECK_EQ(hak_knobs_publish(&a), 0);
  pthread_t t[PUB_THREADS + 1];
  for (long i = 0; i < PUB_THREADS; i++) pthread_create(&t[i], NULL, alloc_thread, (void*)i);
  pthread_create(&t[PUB_THREADS], NULL, reader_thread, NULL);
  uint64_t gen0 = current().generation;
  int published = 0;
  for (int i = 0; i < 20000; i++) published += hak_knobs_publish(i & 1 ? &a : &b) == 0;
  atomic_store(&pub_stop, 1);
  for (int i = 0; i <= PUB_THREADS; i++) pthread_join(t[i], NULL);
  CHECK_EQ(published, 20000);
  CHECK_EQ(current().generation, gen0 + 20000);
  CHECK_EQ(atomic_load(&torn), 0);
  CHECK_EQ(atomic_load(&corrupt), 0);
  CHECK(atomic_load(&copies) > 0);
  CHECK_EQ(hak_knobs_publish(&saved), 0);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_startup_values);
  HT_RUN(test_versioned_copy);
  HT_RUN(test_publish_validates);
  HT_RUN(test_published_cap_is_obeyed);
  HT_RUN(test_publish_under_load);
  return ht_report();
}
