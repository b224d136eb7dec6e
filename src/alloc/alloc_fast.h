/* alloc_fast.h — the inline fast paths of malloc and free, shared by the hak_* API
 * (alloc.c, free.c) and the libc names (shim/preload.c) so that neither pays a call.
 *
 *   malloc(size) ─ size ≤ 1 MiB, the class's TLS list non-empty and the popped block's
 *                  link plausible → pop                                  (no calls)
 *                └ otherwise hak_malloc_slow: init, refill, large tier
 *   free(p)      ─ the heap's free map says p lies in a slab this thread owns, p is a
 *                  block start, not marked free, and the TLS list has room → push (no calls)
 *                └ otherwise hak_free_slow: validation, double-free check, flush,
 *                  remote free, large tier
 */
#ifndef HAK_ALLOC_FAST_H
#define HAK_ALLOC_FAST_H

#include "alloc/slab.h"

/* Pop a block from h's TLS list `off` bytes into h (a class's `tc` entry). The link of
 * the popped block is checked before it becomes the head (integrity.c): plausible in a
 * release build, a block of this heap and class in a hardened one. A failed check
 * stops the program with a message when `report`; else the pop gives NULL, as for an
 * empty list, and the slow path's pop (which reports) meets the same link: malloc's
 * fast path then makes no call but its tail call, and needs no stack frame. A link
 * that reads HAK_TC_CUT is a cut by another thread in progress (tc_trim.c): the
 * reporting pop waits for it and tries again. */
HAK_INLINE void* hak_tcache_pop_at(hak_heap* h, size_t off, bool report) {
  hak_tcache* tc = (hak_tcache*)((uint8_t*)h + off);
  hak_block* b;
again:
  b = tc->head;
  if (HAK_LIKELY(b != NULL)) {
    /* one load of the link: another thread may swap it (tc_trim.c) */
    hak_block* n = HAK_DEC(b, __atomic_load_n(&b->next, __ATOMIC_RELAXED));
    unsigned cls = (unsigned)(tc - h->tc);
#if HAK_HARDENED
    if (HAK_UNLIKELY(b->key != hak_free_mark(b))) hak_mark_corrupt("malloc", b, cls);
    bool bad = n != NULL && !hak_tc_block_valid(h, cls, n);
    const bool fast_reports = true;      /* the full check: its failure is reported here */
#else
    bool bad = !hak_link_plausible(n);
    const bool fast_reports = false;
#endif
    if (HAK_UNLIKELY(bad)) {
      /* The fast pop leaves a bad link to the reporting one (unless it reports itself),
       * a cut in progress always to the one that can wait. */
      if (!report && (!fast_reports || n == HAK_TC_CUT)) return NULL;
      if (n == HAK_TC_CUT) {             /* another thread is cutting the list here */
        hak_tcache_cut_wait(h);
        goto again;
      }
      hak_list_corrupt("malloc", b, cls, n);
    }
    tc->head = n;
    tc->room++;
    b->next = NULL;    /* no key stays in a block the program holds */
    b->key = 0;
    HAK_DBG(h, MALLOC_TLS_HIT);
    /* a compiler barrier: two pops inlined together keep a store of the head each (the
     * cut's check in tc_trim.c); no instruction */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
  }
  return b;
}

#define HAK_TC_OFF(cls) (offsetof(hak_heap, tc) + (size_t)(cls) * sizeof(hak_tcache))

HAK_INLINE void* hak_tcache_pop_fast(hak_heap* h, unsigned cls) { return hak_tcache_pop_at(h, HAK_TC_OFF(cls), true); }

/* Sizes up to 1 KiB go straight from (size + 15) >> 4 to the offset of their class's TLS
 * list in the heap (alloc.c): no class number, no multiply. */
HAK_HIDDEN extern const uint16_t hak_tc_off_small[65];

HAK_INLINE void* hak_malloc_fast(size_t size) {
  void* b;
  if (HAK_LIKELY(size <= HAK_TINY_MAX)) {
    b = hak_tcache_pop_at(hak_tls_heap, hak_tc_off_small[(size + 15) >> 4], false);
  } else if (HAK_LIKELY(size <= HAK_POOL_MAX)) {
    b = hak_tcache_pop_at(hak_tls_heap, HAK_TC_OFF(hak_size_to_cls(size)), false);
  } else {
    b = NULL;
  }
  if (HAK_LIKELY(b != NULL)) return b;
  return hak_malloc_slow(size);
}

/* The heap's free map (alloc.h) names the slab of p when a segment of this heap holds p;
 * one multiply by a per-slab magic and one compare then prove p is the start of a block
 * the slab has handed out (slab.h), the key that it is not free already. */
HAK_INLINE void hak_free_fast(void* p) {
  uintptr_t a = (uintptr_t)p;
  hak_heap* h = hak_tls_heap;
  uintptr_t tag = hak_fc_tag(a);
  unsigned i = (unsigned)tag & (HAK_FC_SIZE - 1);
  if (HAK_LIKELY(h->fc_unit[i] == tag)) {
    hak_slab* s = h->fc_slab[i];
    hak_block* b = (hak_block*)p;
    if (HAK_LIKELY(hak_slab_handed_block(s, a) && b->key != hak_free_mark(b))) {
      hak_tcache* tc = s->tc;
      /* Full: room goes below 0 and the slow path flushes, which recounts it. */
      if (HAK_LIKELY(--tc->room >= 0)) {
        b->next = HAK_ENC(b, tc->head);
        b->key = hak_free_mark(b);
        tc->head = b;
        tc->nfree++;
        HAK_DBG(h, FREE_TLS_SLL);
        return;
      }
    }
  }
  hak_free_slow(p);
}

#endif
