/* test_refill.c — where a refill takes its blocks from (tls_cache.c): blocks that came
 * back before never-used space, so a class's slabs stay at the most blocks it had out
 * at once.
 *   - a refill takes the remote frees waiting on its slabs (the partial one and the
 *     full ones) before it cuts new blocks from a bump pointer;
 *   - a plain malloc whose class has no free block left takes a free block of a
 *     slightly larger class (borrowing) and that block keeps its class: usable size,
 *     statistics, and its free goes back to that class;
 *   - a malloc/free loop of the class soon stops borrowing (it would take the slow
 *     path every time) and runs on blocks of its own;
 *   - an aligned request never borrows (it needs its class's alignment);
 *   - a class that has given blocks back since it last cut new ones cuts a quarter
 *     of its batch (it is at a high-water mark, not growing); then whole batches.
 *     Given back by its own flushes, or by another thread's frees (a producer whose
 *     consumer frees everything never flushes);
 *   - a class that needs a new slab takes one whose pages are still resident in an
 *     older segment before a never-used one in the newest.
 * Each case runs in a fresh thread, so its heap starts empty. Runs without the ACE
 * thread (a scavenger would not change these, but keeps them simple to read). */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_stats.h"
#include "alloc/alloc.h"

#include <pthread.h>
#include <string.h>

/* The thread's checks count into the harness's totals: check here after the join. */
static void run_in_thread(void* (*fn)(void*), void* arg) {
  pthread_t t;
  int created = pthread_create(&t, NULL, fn, arg);
  int joined = created == 0 ? pthread_join(t, NULL) : -1;
  CHECK_EQ(created, 0);
  CHECK_EQ(joined, 0);
}

/* Blocks the calling thread's slabs of cls have ever handed out (their bump pointers). */
static uint64_t handed_blocks(unsigned cls) {
  const hak_heap* h = hak_tls_heap;
  uint64_t n = 0;
  for (int list = 0; list < 2; list++) {
    for (const hak_slab* s = list ? h->full[cls] : h->partial[cls]; s; s = s->next) {
      n += (uint64_t)(hak_load_relaxed(&s->bump) - s->start) / s->bsize;
    }
  }
  return n;
}

static uint64_t in_use_of(unsigned cls) {
  hak_stats st;
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  return st.cls[cls].in_use;
}

/* ---- remote frees before new blocks -------------------------------------------- */
enum { XN = 300 };                 /* 256-byte blocks: more than one 64 KiB slab */
static void* xblocks[XN];

/* Run in another thread: free n blocks (each a remote free of their owner's) and push
 * the remote buffer to the slabs now. */
typedef struct { void** blocks; int n; } remote_frees;
static void* free_remotely(void* arg) {
  const remote_frees* job = arg;
  for (int i = 0; i < job->n; i++) hak_free(job->blocks[i]);
  hak_thread_flush();
  return NULL;
}

static void* remote_then_refill(void* arg) {
  (void)arg;
  const size_t size = 256;
  const unsigned cls = hak_size_to_cls(size);
  for (int i = 0; i < XN; i++) {
    xblocks[i] = hak_malloc(size);
    CHECK(xblocks[i] != NULL);
    memset(xblocks[i], 0x5A, size);
  }
  uint64_t before = handed_blocks(cls);
  CHECK(before >= XN);
  CHECK(hak_tls_heap->full[cls] != NULL);     /* one slab full, one partial with room */
  run_in_thread(free_remotely, &(remote_frees){xblocks, XN});   /* every block comes back as a remote free */
  /* The same number again: every block can come from the remote frees waiting on the
   * partial slab (which still has room for 190 never-used blocks) and on the full one.
   * Only the last refill's batch may reach past them (the blocks in the TLS list before
   * and after the loop differ by less than a batch). */
  for (int i = 0; i < XN; i++) {
    xblocks[i] = hak_malloc(size);
    CHECK(xblocks[i] != NULL);
  }
  CHECK(handed_blocks(cls) - before < hak_tls_heap->batch_max[cls]);
  for (int i = 0; i < XN; i++) hak_free(xblocks[i]);
  return NULL;
}

static void test_refill_takes_remote_frees_before_new_blocks(void) {
  run_in_thread(remote_then_refill, NULL);
}

/* ---- borrowing from a larger class ---------------------------------------------- */
enum { LN = 40 };

static void* borrow_case(void* arg) {
  (void)arg;
  const unsigned lender = hak_size_to_cls(1152), cls = hak_size_to_cls(1000);
  CHECK_EQ(lender, cls + 1);
  CHECK_EQ(hak_cls_size[cls], 1024);
  /* The lender's slab: one block stays out, the others go back to its free list. */
  void* keep = hak_malloc(1152);
  void* p[LN];
  for (int i = 0; i < LN; i++) p[i] = hak_malloc(1152);
  for (int i = 0; i < LN; i++) hak_free(p[i]);
  hak_thread_flush();
  CHECK(hak_tls_heap->partial[lender] != NULL && hak_tls_heap->partial[lender]->free != NULL);
  CHECK(hak_tls_heap->partial[cls] == NULL && hak_tls_heap->full[cls] == NULL);
  uint64_t lender_in_use = in_use_of(lender), own_in_use = in_use_of(cls);
  uint64_t lender_handed = handed_blocks(lender);

  /* 1024-byte class: no slab, no free block: the malloc takes a 1152-byte one. */
  void* b = hak_malloc(1000);
  CHECK(b != NULL);
  CHECK_EQ(hak_malloc_usable_size(b), 1152);
  CHECK(hak_tls_heap->partial[cls] == NULL && hak_tls_heap->full[cls] == NULL);
  CHECK_EQ(handed_blocks(lender), lender_handed);     /* a block that was free */
  CHECK_EQ(in_use_of(lender), lender_in_use + 1);
  CHECK_EQ(in_use_of(cls), own_in_use);
  memset(b, 0x33, 1152);
  hak_free(b);                                         /* back to its own class */
  CHECK_EQ(in_use_of(lender), lender_in_use);
  CHECK_EQ(in_use_of(cls), own_in_use);

  /* A malloc/free loop of the class gets the lent block back every time: after a few
   * rounds it refills from a slab of its own, and the loop runs on its TLS list. */
  size_t last = 0;
  int lent = 0;
  for (int i = 0; i < 100; i++) {
    void* q = hak_malloc(1000);
    CHECK(q != NULL);
    last = hak_malloc_usable_size(q);
    lent += last != 1024;
    hak_free(q);
  }
  CHECK_EQ(last, 1024);
  CHECK_MSG(lent <= 8, "%d of 100 mallocs took the lender's block", lent);   /* it has ~40 free */
  CHECK(hak_tls_heap->partial[cls] != NULL);

  /* An aligned request of the same class never borrows. */
  void* a = hak_aligned_alloc(1024, 1000);
  CHECK(a != NULL);
  CHECK_ALIGNED(a, 1024);
  CHECK_EQ(hak_malloc_usable_size(a), 1024);
  hak_free(a);
  hak_free(keep);
  return NULL;
}

static void test_malloc_borrows_a_free_block_of_a_larger_class(void) {
  run_in_thread(borrow_case, NULL);
}

/* A class never borrows from one more than 25 % larger: 16-byte blocks have no lender
 * (the next class is twice their size). */
static void* no_far_borrow_case(void* arg) {
  (void)arg;
  void* keep = hak_malloc(32);
  void* p[LN];
  for (int i = 0; i < LN; i++) p[i] = hak_malloc(32);
  for (int i = 0; i < LN; i++) hak_free(p[i]);
  hak_thread_flush();
  void* b = hak_malloc(16);
  CHECK(b != NULL);
  CHECK_EQ(hak_malloc_usable_size(b), 16);
  hak_free(b);
  hak_free(keep);
  return NULL;
}

static void test_no_borrowing_from_a_much_larger_class(void) {
  run_in_thread(no_far_borrow_case, NULL);
}

/* ---- a smaller cut at a high-water mark ---------------------------------------- */
enum { HN = 600 };
static void* hblocks[HN + 64];

static void* high_water_case(void* arg) {
  (void)arg;
  const size_t size = 256;
  const unsigned cls = hak_size_to_cls(size);
  for (int i = 0; i < HN; i++) hblocks[i] = hak_malloc(size);   /* growing: full batches */
  for (int i = 0; i < HN; i++) hak_free(hblocks[i]);            /* the list overflows: flushes */
  uint32_t quarter = hak_tls_heap->batch_max[cls] / 4;
  CHECK(quarter >= 1 && quarter < hak_tls_heap->batch_max[cls]);
  /* The same blocks again, then more: the first cut of never-used blocks is a quarter
   * of a batch (the class has given blocks back since it last cut: it is at a
   * high-water mark, not growing); the cuts after it, with no flush in between, are
   * whole batches again (a growing class). */
  uint64_t handed = handed_blocks(cls);
  uint64_t cut[2] = {0, 0};
  int cuts = 0;
  for (int i = 0; i < HN + 64; i++) {
    hblocks[i] = hak_malloc(size);
    CHECK(hblocks[i] != NULL);
    uint64_t now = handed_blocks(cls);
    if (now != handed) {
      if (cuts < 2) cut[cuts] = now - handed;
      cuts++;
      handed = now;
    }
  }
  CHECK(cuts >= 2);
  CHECK_MSG(cut[0] >= 1 && cut[0] <= quarter, "first cut %llu blocks (a quarter batch: %u)",
            (unsigned long long)cut[0], quarter);
  CHECK_EQ(cut[1], hak_tls_heap->batch_max[cls]);
  for (int i = 0; i < HN + 64; i++) hak_free(hblocks[i]);
  return NULL;
}

static void test_high_water_cut_is_a_quarter_batch(void) {
  run_in_thread(high_water_case, NULL);
}

/* ---- the same after another thread's frees ------------------------------------ */
static uint32_t tc_length(unsigned cls) {
  const hak_tcache* tc = &hak_tls_heap->tc[cls];
  return (uint32_t)((int32_t)tc->cap - tc->room);
}

/* The owner hands a multiple of its batch to another thread, which frees them all; it
 * allocates as many again (whole batches of returned blocks, nothing cut), then one
 * more: that refill finds nothing returned left and cuts never-used blocks. The class
 * has had blocks back since its last cut, though it never flushed: a quarter batch. */
static void* high_water_remote_case(void* arg) {
  (void)arg;
  const size_t size = 256;
  const unsigned cls = hak_size_to_cls(size);
  int n = 0;
  while (n < HN) hblocks[n++] = hak_malloc(size);               /* growing: full batches */
  while (tc_length(cls) > 0 && n < HN + 64) hblocks[n++] = hak_malloc(size);
  CHECK_EQ(tc_length(cls), 0);
  uint32_t batch = hak_tls_heap->batch_max[cls], quarter = batch / 4;
  CHECK(quarter >= 1 && quarter < batch);
  CHECK_EQ(hak_tls_heap->batch[cls], batch);
  int m = n - n % (int)batch;
  run_in_thread(free_remotely, &(remote_frees){hblocks, m});    /* back, remotely */
  CHECK_EQ(hak_tls_heap->cc[cls].flushes, 0);                   /* the owner never flushed */
  uint64_t handed = handed_blocks(cls);
  for (int i = 0; i < m; i++) hblocks[i] = hak_malloc(size);
  CHECK_EQ(handed_blocks(cls), handed);                         /* all of them came back */
  CHECK_EQ(tc_length(cls), 0);
  void* extra = hak_malloc(size);
  CHECK(extra != NULL);
  uint64_t cut = handed_blocks(cls) - handed;
  CHECK_MSG(cut >= 1 && cut <= quarter, "cut %llu never-used blocks after the returned ones (a quarter batch: %u)",
            (unsigned long long)cut, quarter);
  hak_free(extra);
  for (int i = 0; i < n; i++) hak_free(hblocks[i]);
  return NULL;
}

static void test_high_water_cut_after_remote_frees(void) {
  run_in_thread(high_water_remote_case, NULL);
}

/* ---- a new slab: a resident one first ------------------------------------------ */
enum { SN = 4096 };
static void* sblocks[SN];

static uintptr_t seg_of(const void* p) { return (uintptr_t)p & ~(HAK_CHUNK_SIZE - 1); }

static void* resident_slab_case(void* arg) {
  (void)arg;
  /* 1 KiB blocks until they spill into a second tiny segment. */
  int n = 0;
  sblocks[n++] = hak_malloc(1024);
  uintptr_t older = seg_of(sblocks[0]);
  while (n < SN && seg_of(sblocks[n - 1]) == older) sblocks[n++] = hak_malloc(1024);
  CHECK(n < SN);
  uintptr_t newest = seg_of(sblocks[n - 1]);
  CHECK(newest != older);
  CHECK_EQ(seg_of(hak_tls_heap->segs[HAK_SEG_TINY]), newest);   /* the newest comes first */
  /* Every block of one slab of the older segment comes back: it is given back to its
   * segment, its pages still resident. */
  uintptr_t slab = (uintptr_t)sblocks[n / 2] & ~(uintptr_t)0xffff;
  CHECK_EQ(seg_of((void*)slab), older);
  for (int i = 0; i < n; i++) {
    if (((uintptr_t)sblocks[i] & ~(uintptr_t)0xffff) == slab) {
      hak_free(sblocks[i]);
      sblocks[i] = NULL;
    }
  }
  hak_thread_flush();
  const hak_segment* o = (const hak_segment*)older;
  CHECK(o->free_slabs & o->dirty_free);
  /* A class this thread never used needs a slab (aligned: it cannot borrow). */
  void* p = hak_aligned_alloc(512, 512);
  CHECK(p != NULL);
  CHECK_MSG(seg_of(p) == older, "the new slab came from segment %#lx, not the older %#lx with a resident free slab",
            (unsigned long)seg_of(p), (unsigned long)older);
  CHECK_EQ((uintptr_t)p & ~(uintptr_t)0xffff, slab);
  hak_free(p);
  for (int i = 0; i < n; i++) hak_free(sblocks[i]);
  return NULL;
}

static void test_new_slab_prefers_resident_one(void) {
  run_in_thread(resident_slab_case, NULL);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  hak_free(hak_malloc(16));
  HT_RUN(test_refill_takes_remote_frees_before_new_blocks);
  HT_RUN(test_malloc_borrows_a_free_block_of_a_larger_class);
  HT_RUN(test_no_borrowing_from_a_much_larger_class);
  HT_RUN(test_high_water_cut_is_a_quarter_batch);
  HT_RUN(test_high_water_cut_after_remote_frees);
  HT_RUN(test_new_slab_prefers_resident_one);
  return ht_report();
}
