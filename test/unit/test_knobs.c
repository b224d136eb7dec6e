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

/* The defaults, worked out by hand from the option defaults (64 KiB per class, at most
 * 256 blocks; see the README's option table). The test runs with no HAKMEM_* set. */
static void test_startup_values(void) {
  hak_knobs k = current();
  CHECK_EQ(k.size, sizeof k);
  CHECK_EQ(k.version, HAKMEM_KNOBS_VERSION);
  CHECK(k.generation >= 1);
  CHECK_EQ(k.tls_cap[0], 256);      /* 16 B: 4096 blocks fit 64 KiB, capped at 256 */
  CHECK_EQ(k.tls_cap[15], 256);     /* 256 B: exactly 256 */
  CHECK_EQ(k.tls_cap[31], 64);      /* 1 KiB */
  CHECK_EQ(k.tls_cap[47], 16);      /* 4 KiB */
  CHECK_EQ(k.tls_cap[71], 2);       /* 32 KiB */
  CHECK_EQ(k.tls_cap[79], 1);       /* 64 KiB */
  CHECK_EQ(k.tls_cap[111], 1);      /* 1 MiB: at least one */
  for (unsigned c = 0; c < HAKMEM_KNOB_CLASSES; c++) {
    CHECK_EQ(k.refill_batch[c], 32);
    CHECK_EQ(k.remote_drain_interval[c], 64);
  }
  CHECK_EQ(k.sweep_interval, 64);
  CHECK_EQ(k.diet_pct, 100);
  CHECK_EQ(k.purge_delay_ms, 100);
  CHECK_EQ(k.partial_release_pages, 1);
  CHECK_EQ(k.segment_cache_bytes, 256ll << 20);
  CHECK_EQ(k.segment_cache_dirty_bytes, 16ll << 20);
  CHECK_EQ(k.large_cache_bytes, 64ll << 20);
  CHECK_EQ(k.large_cache_entries, 16);
  CHECK_EQ(k.realloc_shrink_keep_pct, 50);
  CHECK_EQ(k.realloc_grow_headroom_pct, 25);
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

static void test_published_cap_is_obeyed(void) {
  enum { CLS = 12, SIZE = 200, N = 4000 };        /* class 12 holds 208-byte blocks */
  hak_knobs k = current();
  uint64_t gen = k.generation;
  CHECK_EQ(k.tls_cap[CLS], 256);
  uint64_t f_default = flushes_for(CLS, SIZE, N);
  CHECK_MSG(f_default >= (N - 256) / 256 && f_default <= N / 64, "flushes %llu", (unsigned long long)f_default);
  k.tls_cap[CLS] = 8;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  hak_knobs now = current();
  CHECK_EQ(now.generation, gen + 1);
  CHECK_EQ(now.tls_cap[CLS], 8);
  /* The first flush picks the new snapshot up; from then on at most 8 are cached. */
  uint64_t f_small = flushes_for(CLS, SIZE, N);
  CHECK_MSG(f_small >= (N - 256) / 8, "flushes %llu with cap 8", (unsigned long long)f_small);
  /* A diet of 50 % halves the cap in force. */
  k.tls_cap[CLS] = 64;
  k.diet_pct = 50;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  uint64_t f_diet = flushes_for(CLS, SIZE, N);
  CHECK_MSG(f_diet >= (N - 256) / 32 && f_diet < f_small, "flushes %llu with cap 64 at 50 %%", (unsigned long long)f_diet);
  hak_knobs restore = current();
  restore.tls_cap[CLS] = 256;
  restore.diet_pct = 100;
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
