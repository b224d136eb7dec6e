/* test_huge.c — transparent huge pages on segments (knob huge_pages 2, segment.c and
 * release.c): a segment mapped anew is advised whole before anything is written to
 * it, the release walk takes the advice off live segments once the knob falls below 2,
 * a cached segment whose pages go back loses it, and a new segment at level 1 gets
 * none; a decommitted cached segment reused at level 2 is advised and collapsed. The
 * advice calls are recorded through the prim hooks; where the kernel's THP is in
 * madvise mode, /proc/self/smaps must agree (THPeligible).
 *
 * A process of its own (ctest runs it without the ACE thread): segments must be
 * mapped anew, which a cache filled by earlier tests would prevent. The large tier's
 * side is in test_large.c, the decision in test_ace_learn.c. */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "alloc/alloc.h"
#include "alloc/release.h"
#include "prim/prim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hak_knobs_publish(const hak_knobs* candidate);

/* ---- transparent huge pages on segments (knob huge_pages 2) --------------------------- */
typedef struct { uintptr_t p; size_t size; bool on; } seg_huge_call;
static seg_huge_call seg_huge_calls[64];
static _Atomic unsigned seg_huge_n;
static bool record_seg_huge(void* p, size_t size, bool on) {
  unsigned i = atomic_fetch_add(&seg_huge_n, 1);
  if (i < 64) seg_huge_calls[i] = (seg_huge_call){(uintptr_t)p, size, on};
  return hak_prim_linux.huge(p, size, on);
}
static uintptr_t collapsed_at;
static _Atomic unsigned collapses;
static bool record_collapse(void* p, size_t size) {
  if (atomic_fetch_add(&collapses, 1) == 0) collapsed_at = (uintptr_t)p;
  CHECK_EQ(size, 2u << 20);
  return hak_prim_linux.collapse(p, size);
}
static long thp_eligible(uintptr_t a) { return ht_smaps_field(a, "THPeligible:"); }

/* A thread's allocations until a segment is mapped anew with the advice; all freed. */
static void* fill_until_huge(void* arg) {
  void** b = arg;
  size_t n = 0;
  while (n < (1u << 18) && atomic_load(&seg_huge_n) == 0) {
    b[n] = hak_malloc(1000);
    if (!b[n]) break;
    memset(b[n], 0x33, 1000);
    n++;
  }
  for (size_t i = 0; i < n; i++) hak_free(b[i]);
  return NULL;
}

/* With huge_pages 2 a segment mapped anew is advised whole before anything is written
 * to it; at 1 the release walk takes the advice off the live ones; a cached segment
 * whose pages go back loses it; at 1 a new segment gets none. */
static void test_segments_get_huge_pages_at_level_2(void) {
  hak_knobs saved;
  saved.size = sizeof saved;
  hak_knobs_get(&saved);
  hak_knobs k = saved;
  k.huge_pages = 2;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  const hak_prim_ops* before = atomic_load(&hak_prim_current);
  hak_prim_ops ops = *before;
  ops.huge = record_seg_huge;
  ops.collapse = record_collapse;
  hak_prim_set_ops(&ops);
  atomic_store(&seg_huge_n, 0);
  /* 1 KiB blocks until a segment is mapped anew (cached ones may serve first) */
  enum { MAXB = 1 << 18 };
  void** b = malloc(MAXB * sizeof *b);
  CHECK(b != NULL);
  if (!b) return;
  size_t n = 0;
  while (n < MAXB && atomic_load(&seg_huge_n) == 0) {
    b[n] = hak_malloc(1000);
    CHECK(b[n] != NULL);
    if (!b[n]) break;
    memset(b[n], 0x5a, 1000);
    n++;
  }
  CHECK_EQ(atomic_load(&seg_huge_n), 1);
  uintptr_t seg = seg_huge_calls[0].p;
  CHECK(seg_huge_calls[0].on);
  CHECK_EQ(seg % (2u << 20), 0);
  CHECK_EQ(seg_huge_calls[0].size, 2u << 20);                  /* a SuperSlab, whole */
  CHECK(n > 0 && (uintptr_t)b[n - 1] >= seg && (uintptr_t)b[n - 1] < seg + (2u << 20));
  if (ht_thp_madvise_mode()) CHECK_EQ(thp_eligible(seg + 4096), 1);
  /* level 1: the walk takes it off the live segment */
  k.huge_pages = 1;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  hak_release_all(UINT64_MAX / 2);               /* visits every segment, returns nothing */
  unsigned got = atomic_load(&seg_huge_n);
  bool off = false;
  for (unsigned i = 1; i < got && i < 64; i++) off |= seg_huge_calls[i].p == seg && !seg_huge_calls[i].on;
  CHECK(off);
  if (ht_thp_madvise_mode()) CHECK_EQ(thp_eligible(seg + 4096), 0);
  for (size_t i = 0; i < n; i++) CHECK(((unsigned char*)b[i])[999] == 0x5a);
  /* level 1: new segments get nothing */
  atomic_store(&seg_huge_n, 0);
  size_t m = n;
  for (int i = 0; i < 8192 && m < MAXB; i++) {
    b[m] = hak_malloc(1000);
    if (b[m]) m++;
  }
  CHECK_EQ(atomic_load(&seg_huge_n), 0);
  for (size_t i = 0; i < m; i++) hak_free(b[i]);
  /* level 2 again: a thread's segment, empty at its exit, goes to the cache, and the
   * advice goes with its pages */
  k.huge_pages = 2;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  atomic_store(&seg_huge_n, 0);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, fill_until_huge, b), 0);
  pthread_join(th, NULL);
  CHECK(atomic_load(&seg_huge_n) >= 1);
  seg = seg_huge_calls[0].p;
  CHECK(seg_huge_calls[0].on);
  hak_release_all(0);                           /* malloc_trim: every cached page goes back */
  got = atomic_load(&seg_huge_n);
  off = false;
  for (unsigned i = 1; i < got && i < 64; i++) off |= seg_huge_calls[i].p == seg && !seg_huge_calls[i].on;
  CHECK(off);
  /* level 2, the cache's decommitted segments served first: advised again, and the
   * first 2 MiB (its header page resident) collapsed into a huge page at once */
  atomic_store(&seg_huge_n, 0);
  n = 0;
  while (n < (1u << 14) && atomic_load(&collapses) == 0) {
    b[n] = hak_malloc(1000);
    if (!b[n]) break;
    n++;
  }
  CHECK_EQ(atomic_load(&collapses), 1);
  CHECK(atomic_load(&seg_huge_n) >= 1 && seg_huge_calls[0].on && seg_huge_calls[0].p == collapsed_at);
  if (ht_thp_madvise_mode()) CHECK_EQ(thp_eligible(collapsed_at + 4096), 1);
  printf("  (a reused segment collapsed: %ld KiB of its mapping in huge pages)\n",
         ht_smaps_field(collapsed_at + 4096, "AnonHugePages:"));
  for (size_t i = 0; i < n; i++) hak_free(b[i]);
  free(b);
  hak_prim_set_ops(before);
  CHECK_EQ(hak_knobs_publish(&saved), 0);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_segments_get_huge_pages_at_level_2);
  return ht_report();
}
