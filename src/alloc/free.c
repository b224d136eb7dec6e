/* free.c — free, realloc and usable size: pointer → segment → slab → owner.
 *
 * Call tree:
 *   hak_free ── hak_free_fast (alloc_fast.h: registry hit, own slab, valid block,
 *               not marked free, TLS list has room → push, inline)
 *               └─ hak_free_slow
 *                    ├─ not in the registry / not a block start  → abort "invalid pointer"
 *                    ├─ large segment                             → hak_large_free
 *                    ├─ block marked free (key) and found in a free list → abort "double free"
 *                    ├─ own slab: TLS list full → hak_tcache_flush, then push
 *                    └─ another thread's (or an abandoned) slab   → hak_remote_push
 */
#include "alloc/alloc_fast.h"
#include "alloc/knobs.h"
#include "prim/prim.h"
#include "alloc/os_counters.h"

#include <errno.h>
#include <string.h>

/* The slab of a small block, after validating p; aborts with `fn` in the message. */
static hak_slab* checked_slab(hak_segment* seg, const void* p, const char* fn) {
  uintptr_t a = (uintptr_t)p;
  uint8_t st = hak_load_acquire(&seg->state);
  /* Every block of a cached segment is free: freeing into one is freeing a block twice
   * (its owner exited and the segment emptied since the first free). */
  if (st == HAK_SEGST_CACHED && fn[0] == 'f' && fn[1] == 'r') hak_fatal(fn, "double free", p);
  if (st != HAK_SEGST_OWNED && st != HAK_SEGST_ABANDONED) hak_fatal(fn, "invalid pointer", p);
  /* The header page; slab 0's block 0 may start later still (on its class's
   * alignment), which hak_slab_is_block rejects. Not slabs[0].start: the owner moves
   * it when it gives slab 0 a class, while other threads free. */
  if (a < (uintptr_t)seg + HAK_SEG_HDR) hak_fatal(fn, "invalid pointer", p);
  hak_slab* s = hak_slab_of(seg, a);
  /* No look at s->state: the owner changes it while other threads free. An unused
   * slab has bump == start, so no address passes hak_slab_is_block there. */
  if (!hak_slab_is_block(s, a)) hak_fatal(fn, "invalid pointer", p);
  return s;
}

static bool list_contains(hak_block* b, const hak_block* target) {
  for (; b; b = HAK_DEC(b, b->next)) if (b == target) return true;
  return false;
}

/* True when block b (carrying the free key) is really free: the owner searches its
 * TLS list and the slab's lists; for anyone else the key is proof enough (a program
 * storing the 64-bit random key by chance is not a case to design for). */
static bool block_is_free(hak_heap* h, bool local, hak_slab* s, hak_block* b) {
  if (b->key != hak_free_key) return false;
  if (!local) return true;
  if (list_contains(h->tc[s->cls].head, b)) return true;
  hak_heap_lock(h);                       /* the slab's lists: see heap.c */
  bool found = list_contains(s->free, b);
  if (!found) {
    hak_remote_drain(s);
    found = list_contains(s->free, b);
  }
  hak_heap_unlock(h);
  return found;
}

/* Debug counter for a free that ended in a slab, by tier. */
static inline void count_slab_free(hak_heap* h, const hak_segment* seg, bool local) {
#if HAK_DEBUG_COUNTERS
  if (seg->kind == HAK_SEG_TINY) { if (local) HAK_DBG(h, FREE_SS_LOCAL); else HAK_DBG(h, FREE_SS_REMOTE); }
  else if (seg->kind == HAK_SEG_MID) { if (local) HAK_DBG(h, FREE_MID_LOCAL); else HAK_DBG(h, FREE_MID_REMOTE); }
  else { if (local) HAK_DBG(h, FREE_POOL_LOCAL); else HAK_DBG(h, FREE_POOL_REMOTE); }
#else
  (void)h; (void)seg; (void)local;
#endif
}

HAK_NOINLINE void hak_free_slow(void* p) {
  if (p == NULL) { HAK_DBG(hak_tls_heap, EARLY_FREE_NULL); return; }
  uintptr_t a = (uintptr_t)p;
  hak_segment* seg = hak_registry_lookup(a);
  if (HAK_UNLIKELY(seg == NULL)) hak_fatal("free", "invalid pointer", p);
  if (seg->kind == HAK_SEG_LARGE) {
    HAK_DBG(hak_tls_heap, FREE_LARGE);
    hak_large_free(seg, p, "free");
    return;
  }
  hak_slab* s = checked_slab(seg, p, "free");
  hak_block* b = (hak_block*)p;
  hak_heap* h = hak_tls_heap;
  bool local = hak_load_acquire(&seg->heap) == h;
  if (HAK_UNLIKELY(block_is_free(h, local, s, b))) hak_fatal("free", "double free", p);
  bool last_out = false;          /* this free takes an abandoned segment's last block */
  unsigned kind = seg->kind;
  if (!local && hak_load_acquire(&seg->state) == HAK_SEGST_ABANDONED) {
    /* Freeing into a segment whose owner has exited: stays a remote free. The free that
     * counts the segment's last block down releases it once that block is pushed; and
     * every so often a thread with a heap collects the abandoned segments that emptied
     * (those the count missed). (Taking the segment over instead made a thread that
     * frees other threads' blocks - a main thread joining workers - pile up hundreds of
     * nearly empty segments.) The count is taken before the push: after it, seg may be
     * released by anyone. */
    last_out = atomic_fetch_sub_explicit(&seg->abandoned_live, 1, memory_order_relaxed) == 1;
    if (hak_heap_is_thread_heap(h) && (++h->abandoned_frees & 255) == 0) {
      HAK_DBG(h, FREE_ADOPT);
      hak_abandoned_reclaim();
    }
  }
  count_slab_free(h, seg, local);
  if (local) {
    hak_tcache* tc = &h->tc[s->cls];
    if (tc->count >= tc->cap) hak_tcache_flush(h, s->cls, tc->cap / 2);
    b->next = HAK_ENC(b, tc->head);
    b->key = hak_free_key;
    tc->head = b;
    tc->count++;
    tc->nfree++;
    return;
  }
  if (hak_heap_is_thread_heap(h)) {
    h->tc[s->cls].nfree++;
    h->cc[s->cls].remote_out++;
    hak_remote_push(s, b);
    if (HAK_UNLIKELY(last_out)) hak_abandoned_collect(seg, kind);
    hak_slow_hook_tick(h);
    return;
  }
  HAK_OS_COUNT(orphan_frees[s->cls], 1);
  hak_remote_push(s, b);
  if (HAK_UNLIKELY(last_out)) hak_abandoned_collect(seg, kind);
}

/* Usable size of p inside seg (seg = registry lookup of p), validating p. */
static inline size_t usable_in(hak_segment* seg, const void* p, const char* fn) {
  if (HAK_UNLIKELY(seg == NULL)) hak_fatal(fn, "invalid pointer", p);
  if (seg->kind == HAK_SEG_LARGE) {
    if (p != seg->user || hak_load_acquire(&seg->state) != HAK_SEGST_LARGE_LIVE) hak_fatal(fn, "invalid pointer", p);
    return seg->usable;
  }
  hak_slab* s = checked_slab(seg, p, fn);
  hak_heap* h = hak_tls_heap;
  if (HAK_UNLIKELY(block_is_free(h, hak_load_relaxed(&seg->heap) == h, s, (hak_block*)p))) {
    hak_fatal(fn, "invalid pointer", p);   /* glibc's word for a freed block passed in */
  }
  return s->bsize;
}

size_t hak_usable_checked(const void* p, const char* fn) {
  return usable_in(hak_registry_lookup((uintptr_t)p), p, fn);
}

size_t hak_alloc_usable_size(const void* p) {
  if (p == NULL) return 0;
  return hak_usable_checked(p, "malloc_usable_size");
}

void* hak_alloc_realloc(void* p, size_t size) {
  if (p == NULL) return hak_malloc_fast(size);
  if (size == 0) { hak_free_fast(p); return NULL; }      /* glibc: frees, returns NULL */
  if (HAK_UNLIKELY(size > PTRDIFF_MAX)) {
    hak_usable_checked(p, "realloc");       /* a bad pointer still aborts */
    errno = ENOMEM;
    return NULL;
  }
  hak_segment* seg = hak_registry_lookup((uintptr_t)p);
  size_t usable = usable_in(seg, p, "realloc");
  size_t keep_pct = HAK_KNOB(realloc_shrink_keep_pct);
  if (seg->kind == HAK_SEG_LARGE) {
    if (size > HAK_POOL_MAX || size > usable) {
      void* q = size > HAK_POOL_MAX ? hak_large_realloc(seg, p, size) : NULL;
      if (q) {
        if (q == p) HAK_DBG(hak_tls_heap, EARLY_REALLOC_LARGE);
        return q;
      }
    } else if (size * 100 >= usable * keep_pct) {
      HAK_DBG(hak_tls_heap, EARLY_REALLOC_INPLACE);
      return p;
    }
  } else if (size <= usable && (size * 100 >= usable * keep_pct || usable <= 16)) {
    HAK_DBG(hak_tls_heap, EARLY_REALLOC_INPLACE);
    return p;
  }
  /* A block that grows by small steps moves with 1/4 headroom: half as many copies,
   * and a run of growths touches every other size class instead of each one. */
  size_t want = size, headroom = usable * HAK_KNOB(realloc_grow_headroom_pct) / 100;
  if (size > usable && size <= HAK_POOL_MAX && size - usable < headroom) want = usable + headroom;
  void* q = hak_malloc_fast(want);
  if (!q) return NULL;
  memcpy(q, p, size < usable ? size : usable);
  hak_free_fast(p);
  return q;
}

void* hak_alloc_reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) { errno = ENOMEM; return NULL; }
  return hak_alloc_realloc(p, total);
}

int hak_alloc_owns(const void* p) {
  uintptr_t a = (uintptr_t)p;
  hak_segment* seg = hak_registry_lookup(a);
  if (!seg) return 0;
  uint8_t st = hak_load_acquire(&seg->state);
  if (st == HAK_SEGST_CACHED || st == HAK_SEGST_LARGE_FREE) return 0;
  /* A large mapping ends on a page, not on its last chunk's end: the rest of that chunk
   * is not hakmem's, and the program may map memory there itself. */
  return a >= (uintptr_t)seg && a < (uintptr_t)seg + seg->size;
}

void hak_alloc_thread_flush(void) {
  hak_heap* h = hak_tls_heap;
  if (!hak_heap_is_thread_heap(h)) return;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (h->tc[c].head) hak_tcache_flush(h, c, 0);
  }
}
