/* test_pool_borrow.c — a plain malloc of a pool class (32 KiB to 1 MiB) with nothing free
 * of its own takes a free block of one of the next four classes (tls_cache.c, "pool
 * blocks borrowed from a larger class"): resident pages instead of fresh ones. The
 * block keeps its class (usable size, statistics, where its free goes); a class with a
 * free block of its own uses it; a class more than four steps larger is not used; an
 * aligned request never borrows. Each case runs in a thread of its own (a fresh heap),
 * without the ACE thread. */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_stats.h"

#include <pthread.h>
#include <string.h>

#define KiB 1024u

static unsigned cls_of(size_t block_size) {
  hak_stats st;
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  for (unsigned c = 0; c < HAKMEM_STATS_CLASSES; c++)
    if (st.cls[c].block_size == block_size) return c;
  CHECK_MSG(0, "no class of %zu bytes", block_size);
  return 0;
}

static uint64_t in_use(unsigned c) {
  hak_stats st;
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  return st.cls[c].in_use;
}

static void run(void* (*fn)(void*)) {
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, fn, NULL), 0);
  pthread_join(t, NULL);
}

/* 36 KiB with only a free 40 KiB block around: that block, as a 40 KiB block. */
static void* borrow_case(void* arg) {
  (void)arg;
  unsigned c40 = cls_of(40 * KiB), c36 = cls_of(36 * KiB);
  void* p = hak_malloc(40 * KiB);
  memset(p, 0x5a, 40 * KiB);
  hak_free(p);
  uint64_t used40 = in_use(c40), used36 = in_use(c36);
  void* q = hak_malloc(36 * KiB);
  CHECK(q == p);
  CHECK_EQ(hak_malloc_usable_size(q), 40 * KiB);
  CHECK_EQ(in_use(c40), used40 + 1);          /* the 40 KiB class's allocation */
  CHECK_EQ(in_use(c36), used36);
  memset(q, 0x33, 36 * KiB);
  hak_free(q);
  CHECK_EQ(in_use(c40), used40);
  /* back in the 40 KiB class: a 40 KiB request gets it again */
  void* r = hak_malloc(40 * KiB);
  CHECK(r == p);
  hak_free(r);
  return NULL;
}

/* A class with a free block of its own takes that one. */
static void* own_first_case(void* arg) {
  (void)arg;
  void* own = hak_malloc(36 * KiB);
  void* big = hak_malloc(40 * KiB);
  hak_free(big);
  hak_free(own);
  void* q = hak_malloc(36 * KiB);
  CHECK(q == own);
  CHECK_EQ(hak_malloc_usable_size(q), 36 * KiB);
  hak_free(q);
  return NULL;
}

/* 32 KiB against a free 64 KiB block: eight classes apart, too far to borrow. */
static void* too_far_case(void* arg) {
  (void)arg;
  void* big = hak_malloc(64 * KiB);
  hak_free(big);
  void* q = hak_malloc(32 * KiB);
  CHECK(q != big);
  CHECK_EQ(hak_malloc_usable_size(q), 32 * KiB);
  hak_free(q);
  return NULL;
}

/* An aligned request needs its class's alignment: no borrowing. */
static void* aligned_case(void* arg) {
  (void)arg;
  void* big = hak_malloc(40 * KiB);
  hak_free(big);
  void* q = NULL;
  CHECK_EQ(hak_posix_memalign(&q, 4096, 36 * KiB), 0);
  CHECK(q != big);
  CHECK_EQ((uintptr_t)q % 4096, 0);
  CHECK_EQ(hak_malloc_usable_size(q), 36 * KiB);
  hak_free(q);
  return NULL;
}

static void test_borrows_a_free_block_of_a_larger_class(void) { run(borrow_case); }
static void test_own_free_block_first(void) { run(own_first_case); }
static void test_no_borrowing_beyond_four_classes(void) { run(too_far_case); }
static void test_aligned_requests_do_not_borrow(void) { run(aligned_case); }

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_borrows_a_free_block_of_a_larger_class);
  HT_RUN(test_own_free_block_first);
  HT_RUN(test_no_borrowing_beyond_four_classes);
  HT_RUN(test_aligned_requests_do_not_borrow);
  return ht_report();
}
