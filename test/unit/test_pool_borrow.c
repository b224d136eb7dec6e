/* test_pool_borrow.c — borrowing (tls_cache.c, "borrowing from a larger class") in the
 * pool tier (32 KiB to 1 MiB), where realloc_bench's shrink pattern leaves free blocks
 * in the classes it moves away from: a plain malloc whose class has nothing free of its
 * own takes a free block of a slightly larger class: resident pages instead of fresh
 * ones (unit_refill covers the mechanism in the smaller tiers). The
 * block keeps its class (usable size, statistics, where its free goes); a class with a
 * free block of its own uses it; a larger class's single free block (its TLS list's)
 * is not lent to a class that has not given blocks back; a pool class (above 32 KiB)
 * borrows from up to eight classes up, at most twice its size, and a smaller class not
 * from one twice as large; an aligned request never borrows. Each case runs in a thread of its own (a fresh heap),
 * without the ACE thread. */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_stats.h"

#include <pthread.h>
#include <stdbool.h>
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

/* (the check of pthread_create's result waits for the join: the thread checks too) */
static void run(void* (*fn)(void*)) {
  pthread_t t;
  int rc = pthread_create(&t, NULL, fn, NULL);
  if (rc == 0) pthread_join(t, NULL);
  CHECK_EQ(rc, 0);
}

enum { SPARE = 4 };
/* Allocates and frees SPARE blocks of `size`: one stays in the TLS list, the rest go
 * back to their slab's free list. */
static void make_spares(size_t size, void* out[SPARE]) {
  for (int i = 0; i < SPARE; i++) {
    out[i] = hak_malloc(size);
    memset(out[i], 0x5a, size);
  }
  for (int i = 0; i < SPARE; i++) hak_free(out[i]);
}
static bool one_of(const void* q, void* const set[SPARE]) {
  for (int i = 0; i < SPARE; i++) if (q == set[i]) return true;
  return false;
}

/* 36 KiB with only free 40 KiB blocks around: one of them, as a 40 KiB block. */
static void* borrow_case(void* arg) {
  (void)arg;
  unsigned c40 = cls_of(40 * KiB), c36 = cls_of(36 * KiB);
  void* spare[SPARE];
  make_spares(40 * KiB, spare);
  uint64_t used40 = in_use(c40), used36 = in_use(c36);
  void* q = hak_malloc(36 * KiB);
  CHECK(one_of(q, spare));
  CHECK_EQ(hak_malloc_usable_size(q), 40 * KiB);
  CHECK_EQ(in_use(c40), used40 + 1);          /* the 40 KiB class's allocation */
  CHECK_EQ(in_use(c36), used36);
  memset(q, 0x33, 36 * KiB);
  hak_free(q);
  CHECK_EQ(in_use(c40), used40);
  /* Each 40 KiB block is back in its class: 40 KiB requests get all of them again. */
  void* r[SPARE];
  for (int i = 0; i < SPARE; i++) {
    r[i] = hak_malloc(40 * KiB);
    CHECK(one_of(r[i], spare));
  }
  for (int i = 0; i < SPARE; i++) hak_free(r[i]);
  return NULL;
}

/* A single free 40 KiB block (in its class's TLS list) is that class's next block: a
 * 36 KiB request of a class that never gave a block back does not take it. */
static void* tls_block_kept_case(void* arg) {
  (void)arg;
  void* p = hak_malloc(40 * KiB);
  hak_free(p);
  void* q = hak_malloc(36 * KiB);
  CHECK(q != p);
  CHECK_EQ(hak_malloc_usable_size(q), 36 * KiB);
  hak_free(q);
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

/* 32 KiB against free 64 KiB blocks: eight classes apart, too far to borrow. */
static void* too_far_case(void* arg) {
  (void)arg;
  void* spare[SPARE];
  make_spares(64 * KiB, spare);
  void* q = hak_malloc(32 * KiB);
  CHECK(!one_of(q, spare));
  CHECK_EQ(hak_malloc_usable_size(q), 32 * KiB);
  hak_free(q);
  return NULL;
}

/* Pool classes borrow across a doubling: a 40 KiB request takes a free 80 KiB block
 * (eight classes up, twice the size), as an 80 KiB block, and not an 88 KiB one (nine
 * classes up, more than twice), which a 48 KiB request takes. */
static void* pool_doubling_case(void* arg) {
  (void)arg;
  unsigned c80 = cls_of(80 * KiB);
  void* spare[SPARE];
  make_spares(80 * KiB, spare);
  uint64_t used80 = in_use(c80);
  void* q = hak_malloc(40 * KiB);
  CHECK(one_of(q, spare));
  CHECK_EQ(hak_malloc_usable_size(q), 80 * KiB);
  CHECK_EQ(in_use(c80), used80 + 1);
  memset(q, 0x44, 80 * KiB);                      /* all of its usable size is the caller's */
  hak_free(q);
  CHECK_EQ(in_use(c80), used80);
  return NULL;
}
static void* pool_too_far_case(void* arg) {
  (void)arg;
  void* far[SPARE];
  make_spares(88 * KiB, far);
  void* r = hak_malloc(40 * KiB);                 /* 88 KiB: nine classes up, 2.2x */
  CHECK(!one_of(r, far));
  CHECK_EQ(hak_malloc_usable_size(r), 40 * KiB);
  void* q = hak_malloc(44 * KiB + 1);             /* the 48 KiB class: seven classes up */
  CHECK(one_of(q, far));
  CHECK_EQ(hak_malloc_usable_size(q), 88 * KiB);
  hak_free(q);
  hak_free(r);
  return NULL;
}

/* An aligned request needs its class's alignment: no borrowing. */
static void* aligned_case(void* arg) {
  (void)arg;
  void* spare[SPARE];
  make_spares(40 * KiB, spare);
  void* q = NULL;
  CHECK_EQ(hak_posix_memalign(&q, 4096, 36 * KiB), 0);
  CHECK(!one_of(q, spare));
  CHECK_EQ((uintptr_t)q % 4096, 0);
  CHECK_EQ(hak_malloc_usable_size(q), 36 * KiB);
  hak_free(q);
  return NULL;
}

static void test_borrows_a_free_block_of_a_larger_class(void) { run(borrow_case); }
static void test_tls_block_is_not_lent(void) { run(tls_block_kept_case); }
static void test_own_free_block_first(void) { run(own_first_case); }
static void test_no_borrowing_from_twice_the_size(void) { run(too_far_case); }
static void test_aligned_requests_do_not_borrow(void) { run(aligned_case); }
static void test_pool_classes_borrow_across_a_doubling(void) {
  run(pool_doubling_case);
  run(pool_too_far_case);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_borrows_a_free_block_of_a_larger_class);
  HT_RUN(test_tls_block_is_not_lent);
  HT_RUN(test_own_free_block_first);
  HT_RUN(test_no_borrowing_from_twice_the_size);
  HT_RUN(test_aligned_requests_do_not_borrow);
  HT_RUN(test_pool_classes_borrow_across_a_doubling);
  return ht_report();
}
