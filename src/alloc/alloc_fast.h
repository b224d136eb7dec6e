/* alloc_fast.h — the inline fast paths of malloc and free, shared by the hak_* API
 * (alloc.c, free.c) and the libc names (shim/preload.c) so that neither pays a call.
 *
 *   malloc(size) ─ size ≤ 1 MiB and the class's TLS list non-empty → pop   (no calls)
 *                └ otherwise hak_malloc_slow: init, refill, large tier
 *   free(p)      ─ registry says p is a block of a slab this thread owns, the block is
 *                  not marked free and the TLS list has room → push           (no calls)
 *                └ otherwise hak_free_slow: validation, double-free check, flush,
 *                  remote free, large tier
 */
#ifndef HAK_ALLOC_FAST_H
#define HAK_ALLOC_FAST_H

#include "alloc/slab.h"

HAK_INLINE void* hak_tcache_pop_fast(hak_heap* h, unsigned cls) {
  hak_tcache* tc = &h->tc[cls];
  hak_block* b = tc->head;
  if (HAK_LIKELY(b != NULL)) {
    tc->head = HAK_DEC(b, b->next);
    tc->count--;
    tc->nalloc++;
    b->key = 0;
    HAK_DBG(h, MALLOC_TLS_HIT);
  }
  return b;
}

HAK_INLINE void* hak_malloc_fast(size_t size) {
  if (HAK_LIKELY(size <= HAK_POOL_MAX)) {
    void* b = hak_tcache_pop_fast(hak_tls_heap, hak_size_to_cls(size));
    if (HAK_LIKELY(b != NULL)) return b;
  }
  return hak_malloc_slow(size);
}

HAK_INLINE void hak_free_fast(void* p) {
  uintptr_t a = (uintptr_t)p;
  hak_segment* seg = hak_registry_lookup(a);
  hak_heap* h = hak_tls_heap;
  if (HAK_LIKELY(seg != NULL && hak_load_relaxed(&seg->heap) == h)) {
    hak_slab* s = hak_slab_of(seg, a);
    hak_block* b = (hak_block*)p;
    if (HAK_LIKELY(hak_slab_is_block(s, a) && b->key != hak_free_key)) {
      hak_tcache* tc = &h->tc[s->cls];
      if (HAK_LIKELY(tc->count < tc->cap)) {
        b->next = HAK_ENC(b, tc->head);
        b->key = hak_free_key;
        tc->head = b;
        tc->count++;
        tc->nfree++;
        HAK_DBG(h, FREE_TLS_SLL);
        return;
      }
    }
  }
  hak_free_slow(p);
}

#endif
