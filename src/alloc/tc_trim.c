/* tc_trim.c — an idle thread's TLS lists cut short by another thread (the scavenger,
 * malloc_trim), with nothing added to the owner's fast paths.
 *
 * A TLS list is its owner's alone: the fast paths pop and push with plain loads and
 * stores and no lock, so a thread that stops allocating keeps its lists, up to a cap
 * per class, for as long as it sleeps. To cut a list after its first `keep` blocks
 * (keep ≥ 2), a thread holding the heap's lock (the owner's refills and flushes wait
 * for it) does, per class:
 *   1. read the list's head H, `room` and `nfree` (a push counts in nfree); walk
 *      from H to X, the keep-th block (each checked against the free map: a block of
 *      this class in a slab of this heap, carrying its free mark: no address is read
 *      that is not one); and swap X's link from Y, the rest of the list, to HAK_TC_CUT
 *      with compare-and-swap;
 *   2. a barrier on every thread of the process (membarrier): every store the owner
 *      made before it is visible now, and every load it makes after it sees the swap;
 *   3. read head, room and nfree again. Unchanged: the owner has not read X's link
 *      before the swap. Only a pop of X reads it, X is at depth keep-1 >= 1 below H,
 *      and before popping X the owner stores a head other than H (popping the block
 *      above X, in an earlier malloc: a call, so a compiler barrier, lies between);
 *      if it loaded X's link before the swap, that store came before its barrier and
 *      is seen in step 3. The head comes back to H only by a push (nfree moves).
 *      So the walk was the owner's list and Y's blocks are this thread's: X's link
 *      becomes the end of the list (compare-and-swap from HAK_TC_CUT) and Y's blocks
 *      go back to their slabs as a flush would return them. Changed: X's link goes
 *      back from HAK_TC_CUT to Y with compare-and-swap; whether or not the owner popped
 *      X meanwhile (the swap then fails: a pop clears the link), the list stays the
 *      owner's as it was. (`room` is checked too: the compiled pop moves it before the
 *      head, a cap change moves it alone; either way an undo.)
 * A pop loads a link once (a relaxed atomic load: no second read may see the cut) and
 * ends with a compiler barrier, so two pops inlined together are never merged into one
 * store of the head.
 * A pop that meets HAK_TC_CUT (not a plausible link) goes to its slow path, which takes
 * and drops the heap's lock (hak_tcache_cut_wait): by then the link is settled. Every
 * other reader of these links holds the lock. The owner's `room` still counts the cut
 * blocks until its next refill or flush (h->tc_cut; the stats subtract it).
 *
 * Off under ThreadSanitizer: the barrier orders the owner's plain stores without any
 * synchronization TSan knows of. Off where membarrier is refused. */
#include "alloc/alloc_fast.h"
#include "alloc/os_counters.h"
#include "prim/prim.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HAK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define HAK_TSAN 1
#endif

bool hak_tcache_trim_supported(void) {
#ifdef HAK_TSAN
  return false;
#else
  return true;
#endif
}

void hak_tcache_cut_wait(hak_heap* h) {
  hak_heap_lock(h);
  hak_heap_unlock(h);
}

/* The slab of b when b is a block of cls in a slab of h carrying its free mark, read
 * from h's free map while its owner may be filling it (free.c stores empty, slab,
 * unit): the unit read before and after the slab read matching b's, the slab is the
 * one that unit was filled with. NULL otherwise, also for a block the map does not
 * name: the registry would name segments of other heaps, which may be unmapped. */
static hak_slab* map_slab(const hak_heap* h, unsigned cls, const hak_block* b) {
  if (b == NULL || !hak_link_plausible(b)) return NULL;
  uintptr_t a = (uintptr_t)b, tag = hak_fc_tag(a);
  unsigned i = (unsigned)tag & (HAK_FC_SIZE - 1);
  if (__atomic_load_n(&h->fc_unit[i], __ATOMIC_ACQUIRE) != tag) return NULL;
  hak_slab* s = __atomic_load_n(&h->fc_slab[i], __ATOMIC_ACQUIRE);
  if (s == NULL || __atomic_load_n(&h->fc_unit[i], __ATOMIC_ACQUIRE) != tag) return NULL;
  if (s->cls != cls || !hak_slab_handed_block(s, a)) return NULL;
  return __atomic_load_n(&b->key, __ATOMIC_RELAXED) == hak_free_mark(b) ? s : NULL;
}

typedef struct tc_cut {
  hak_block* head;     /* the list's head at step 1 */
  hak_block* x;        /* the last block kept */
  hak_block* link;     /* its link before the cut (encoded): the first block cut */
  int32_t    room;     /* the list's room and nfree at step 1 */
  uint64_t   nfree;
  unsigned   cls;
} tc_cut;

/* Step 1 for class cls: true when X's link now reads HAK_TC_CUT. */
static bool cut_begin(hak_heap* h, unsigned cls, unsigned keep, tc_cut* c) {
  hak_tcache* tc = &h->tc[cls];
  c->room = __atomic_load_n(&tc->room, __ATOMIC_ACQUIRE);
  c->nfree = __atomic_load_n(&tc->nfree, __ATOMIC_ACQUIRE);
  int64_t len = (int64_t)__atomic_load_n(&tc->cap, __ATOMIC_RELAXED) - c->room - (int64_t)h->tc_cut[cls];
  if (len <= (int64_t)keep) return false;
  hak_block* b = __atomic_load_n(&tc->head, __ATOMIC_ACQUIRE);
  c->head = b;
  for (unsigned depth = 1;; depth++) {
    if (!map_slab(h, cls, b)) return false;
    hak_block* link = __atomic_load_n(&b->next, __ATOMIC_ACQUIRE);
    hak_block* n = HAK_DEC(b, link);
    if (n == NULL || !hak_link_plausible(n)) return false;
    if (depth == keep) {
      c->x = b;
      c->link = link;
      c->cls = cls;
      void (*hook)(hak_heap*, unsigned, int) = hak_tcache_trim_hook;
      if (HAK_UNLIKELY(hook != NULL)) hook(h, cls, 0);
      return __atomic_compare_exchange_n(&b->next, &link, HAK_ENC(b, HAK_TC_CUT), false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
    }
    b = n;
  }
}

void (*hak_tcache_trim_hook)(hak_heap* h, unsigned cls, int stage);

size_t hak_tcache_trim(hak_heap* h, unsigned keep) {
  if (!hak_tcache_trim_supported() || keep < 2 || h->is_global || !hak_prim_process_barrier_ready()) return 0;
  tc_cut cuts[HAK_NCLS];
  unsigned n = 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (hak_class_is_ready(h, c) && cut_begin(h, c, keep, &cuts[n])) n++;
  }
  if (n == 0) return 0;
  void (*hook)(hak_heap*, unsigned, int) = hak_tcache_trim_hook;
  if (HAK_UNLIKELY(hook != NULL)) hook(h, 0, 1);
  bool barrier = hak_prim_process_barrier();             /* step 2 */
  size_t bytes = 0;
  unsigned undone = 0;
  for (unsigned i = 0; i < n; i++) {                     /* step 3 */
    tc_cut* c = &cuts[i];
    hak_tcache* tc = &h->tc[c->cls];
    hak_block* cut = HAK_ENC(c->x, HAK_TC_CUT);
    if (barrier && __atomic_load_n(&tc->head, __ATOMIC_ACQUIRE) == c->head &&
        __atomic_load_n(&tc->room, __ATOMIC_ACQUIRE) == c->room &&
        __atomic_load_n(&tc->nfree, __ATOMIC_ACQUIRE) == c->nfree &&
        __atomic_compare_exchange_n(&c->x->next, &cut, HAK_ENC(c->x, NULL), false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_RELAXED)) {
      /* Y's blocks are this thread's now: the registry may be asked (no other thread
       * can give their segments away while the lock is held). */
      hak_block* y = HAK_DEC(c->x, c->link);
      hak_slab* s = hak_tc_block_slab_slow(h, c->cls, y);
      if (HAK_UNLIKELY(s == NULL)) hak_list_corrupt("free", c->x, c->cls, y);
      uint64_t k = hak_tcache_return_chain(h, c->cls, y, s, false);
      h->cc[c->cls].flushed += k;            /* before tc_cut: the stats' count stays >= 0 */
      __atomic_store_n(&h->tc_cut[c->cls], h->tc_cut[c->cls] + (uint32_t)k, __ATOMIC_RELEASE);
      bytes += (size_t)k * hak_cls_size[c->cls];
    } else {
      undone++;
      cut = HAK_ENC(c->x, HAK_TC_CUT);      /* a failed swap above wrote what it found */
      __atomic_compare_exchange_n(&c->x->next, &cut, c->link, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
    }
  }
  if (bytes) HAK_OS_COUNT(tc_trimmed_bytes, bytes);
  HAK_OS_COUNT(tc_cuts, n - undone);
  if (undone) HAK_OS_COUNT(tc_cuts_undone, undone);
  return bytes;
}

/* The lists' operations so far: every pop adds 1 to room, every push 2 to nfree and -1
 * to room, so the sum moves with each (a cap change moves it too: a new quiet spell). */
static uint64_t tc_ops(const hak_heap* h) {
  uint64_t sum = 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (!hak_class_is_ready(h, c)) continue;
    sum += 2 * __atomic_load_n(&h->tc[c].nfree, __ATOMIC_RELAXED) +
           (uint64_t)(int64_t)__atomic_load_n(&h->tc[c].room, __ATOMIC_RELAXED);
  }
  return sum;
}

size_t hak_tcache_trim_idle(hak_heap* h, uint64_t now, uint64_t delay) {
  if (!hak_tcache_trim_supported() || h->is_global) return 0;
  uint64_t ops = tc_ops(h) + hak_load_relaxed(&h->activity);
  if (ops != h->scav_tc_ops) {
    h->scav_tc_ops = ops;
    h->scav_tc_since = now;
    h->scav_tc_trimmed = false;
  }
  if (h->scav_tc_trimmed || now - h->scav_tc_since < delay) return 0;
  h->scav_tc_trimmed = true;
  return hak_tcache_trim(h, HAK_TC_TRIM_KEEP);
}
