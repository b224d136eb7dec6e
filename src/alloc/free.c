/* free.c — free, realloc and usable size: pointer → segment → slab → owner.
 *
 * Call tree:
 *   hak_free ── hak_free_fast (alloc_fast.h: free-map hit (own slab), valid block,
 *               not marked free, TLS list has room → push, inline)
 *               └─ hak_free_slow
 *                    ├─ not in the registry / not a block start  → abort "invalid pointer"
 *                    ├─ large segment                             → hak_large_free
 *                    ├─ block marked free (key)                   → abort "double free"
 *                    ├─ own slab: enter it in the free map; TLS list full →
 *                    │  hak_tcache_flush; push
 *                    └─ another thread's (or an abandoned) slab   → hak_remote_buffer
 *                       (a thread's heap) or hak_remote_push (exiting threads)
 */
#include "alloc/alloc_fast.h"
#include "alloc/knobs.h"
#include "prim/prim.h"
#include "alloc/os_counters.h"

#include <errno.h>
#include <string.h>

/* Why p, inside small-block segment seg (state st), is no block: aborts. */
static HAK_NORETURN HAK_COLD void bad_small(hak_segment* seg, uint8_t st, const void* p, const char* fn) {
  (void)seg;
  /* Every block of a cached segment is free: freeing into one is freeing a block twice
   * (its owner exited and the segment emptied since the first free). */
  if (st == HAK_SEGST_CACHED && fn[0] == 'f' && fn[1] == 'r') hak_fatal(fn, "double free", p);
  hak_fatal(fn, "invalid pointer", p);
}

/* The slab of a small block, after validating p; aborts with `fn` in the message. */
HAK_INLINE hak_slab* checked_slab(hak_segment* seg, const void* p, const char* fn) {
  uintptr_t a = (uintptr_t)p;
  uint8_t st = hak_load_acquire(&seg->state);
  if (HAK_UNLIKELY(st != HAK_SEGST_OWNED && st != HAK_SEGST_ABANDONED)) bad_small(seg, st, p, fn);
  hak_slab* s = hak_slab_of(seg, a);
  /* No look at s->state: the owner changes it while other threads free. An unused
   * slab has bump == start, so no address passes hak_slab_is_block there. The header
   * page maps to slab 0, whose start (whatever value the owner is giving it) lies
   * past the header: a >= start fails there too. */
  if (HAK_UNLIKELY(!hak_slab_is_block(s, a))) bad_small(seg, st, p, fn);
  return s;
}

/* True when block b carries its free mark: it is free (in a TLS list, a slab's lists, a
 * remote stack or another thread's remote buffer). The mark (a 64-bit random key tied
 * to b's address) is the proof for every thread: a copy of another free block's mark
 * never matches, and a program storing b's own by chance is not a case to design for. */
static inline bool block_is_free(const hak_block* b) { return b->key == hak_free_mark(b); }

/* Enter p's 64 KiB unit → slab s into h's free map (h owns s's segment). */
static inline void free_map_fill(hak_heap* h, uintptr_t a, hak_slab* s) {
  uintptr_t tag = hak_fc_tag(a);
  unsigned i = (unsigned)tag & (HAK_FC_SIZE - 1);
  s->tc = &h->tc[s->cls];      /* h may have adopted s's segment since s got its class */
  /* Empty, slab, unit, in this order: a scavenger reading the map under the lock
   * (tc_trim.c) that finds the same unit before and after the slab read has the slab
   * that unit was filled with. */
  __atomic_store_n(&h->fc_unit[i], HAK_FC_EMPTY(i), __ATOMIC_RELAXED);
  __atomic_store_n(&h->fc_slab[i], s, __ATOMIC_RELEASE);
  __atomic_store_n(&h->fc_unit[i], tag, __ATOMIC_RELEASE);
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

/* A free into a segment whose owner has exited: pushed at once, not buffered. The
 * segment counts its blocks still out down, and the free that takes the last one
 * releases it once that block is pushed (a thread that frees an exited thread's blocks
 * gives the memory back without a scavenger). The count is taken before the push:
 * after it, seg may be released by anyone. Blocks that sat in a remote buffer when the
 * owner exited are not counted down: the count is a hint, and the periodic collection
 * (hak_remote_flush, the release walk) covers what it misses. */
static HAK_NOINLINE void free_abandoned(hak_heap* h, hak_segment* seg, hak_slab* s, hak_block* b) {
  unsigned kind = seg->kind, cls = s->cls;
  bool last_out = atomic_fetch_sub_explicit(&seg->abandoned_live, 1, memory_order_relaxed) == 1;
  if (hak_heap_is_thread_heap(h)) {
    h->cc[cls].remote_out++;
    if ((++h->abandoned_frees & 255) == 0) {
      HAK_DBG(h, FREE_ADOPT);
      hak_abandoned_reclaim();
    }
  } else {
    HAK_OS_COUNT(orphan_frees[cls], 1);
  }
  hak_remote_push(s, b);
  if (HAK_UNLIKELY(last_out)) hak_abandoned_collect(seg, kind);
}

/* A free into another heap's slab that does not extend h's remote buffer: a new chain
 * (after pushing the old one), or a direct push for a thread without a heap of its own. */
static HAK_NOINLINE void free_remote(hak_heap* h, hak_slab* s, hak_block* b) {
  if (HAK_UNLIKELY(h == &hak_heap_empty)) {
    /* A thread that frees before it allocates (a consumer of blocks made elsewhere)
     * gets its heap now, as its first malloc would: its counters are plain stores and
     * its frees are batched. */
    hak_heap* th = hak_heap_thread_init();
    if (th) h = th;
  }
  hak_segment* seg = hak_slab_segment(s);
  if (HAK_UNLIKELY(hak_load_acquire(&seg->state) == HAK_SEGST_ABANDONED)) {
    free_abandoned(h, seg, s, b);
    return;
  }
  if (!hak_heap_is_thread_heap(h)) {      /* exiting thread: its heap is gone */
    HAK_OS_COUNT(orphan_frees[s->cls], 1);
    hak_remote_push(s, b);
    return;
  }
  hak_remote_buffer(h, s, b);
  hak_slow_hook_tick(h);
}

/* A free into a slab of a segment h owns: the slow half of the fast path. */
static HAK_NOINLINE void free_local(hak_heap* h, hak_slab* s, hak_block* b) {
  free_map_fill(h, (uintptr_t)b, s);
  hak_class_ready(h, s->cls);
  hak_tcache* tc = &h->tc[s->cls];
  if (tc->room <= 0) hak_tcache_flush(h, s->cls, tc->cap / 2);   /* recounts room */
  b->next = HAK_ENC(b, tc->head);
  b->key = hak_free_mark(b);
  tc->head = b;
  tc->room--;
  tc->nfree++;
}

static HAK_NOINLINE void free_null_or_foreign(void* p) {
  if (p == NULL) { HAK_DBG(hak_tls_heap, EARLY_FREE_NULL); return; }
  hak_fatal("free", "invalid pointer", p);
}

/* Every call from here is a tail call: the common cross-thread free (extending the
 * remote buffer) runs without a stack frame. */
HAK_NOINLINE void hak_free_slow(void* p) {
  uintptr_t a = (uintptr_t)p;
  hak_segment* seg = hak_registry_lookup(a);
  if (HAK_UNLIKELY(seg == NULL)) { free_null_or_foreign(p); return; }
  if (HAK_UNLIKELY(seg->kind == HAK_SEG_LARGE)) {
    HAK_DBG(hak_tls_heap, FREE_LARGE);
    hak_large_free(seg, p, "free");
    return;
  }
  hak_slab* s = checked_slab(seg, p, "free");
  hak_block* b = (hak_block*)p;
  uintptr_t mark = hak_free_mark(b);
  if (HAK_UNLIKELY(b->key == mark)) hak_fatal("free", "double free", p);   /* block_is_free */
  hak_heap* h = hak_tls_heap;
  bool local = hak_load_acquire(&seg->heap) == h;
  count_slab_free(h, seg, local);
  /* h owns the segment (the global heap never is a thread's TLS heap). */
  if (local) { free_local(h, s, b); return; }
  /* Another heap's slab. The common case extends the remote buffer's chain (the static
   * stand-in heaps have no chain: s is never NULL). */
  hak_rbuf* r = &h->rb[s->cls % HAK_RB_SLOTS];
  if (HAK_LIKELY(r->slab == s)) {
    b->key = mark;
    b->next = HAK_ENC(b, r->head);
    r->head = b;
    if (HAK_UNLIKELY(--r->left == 0)) hak_remote_flush_slot(h, (unsigned)(r - h->rb));
    return;
  }
  free_remote(h, s, b);
}

/* Usable size of p inside seg (seg = registry lookup of p), validating p. */
static inline size_t usable_in(hak_segment* seg, const void* p, const char* fn) {
  if (HAK_UNLIKELY(seg == NULL)) hak_fatal(fn, "invalid pointer", p);
  if (seg->kind == HAK_SEG_LARGE) {
    if (p != seg->user || hak_load_acquire(&seg->state) != HAK_SEGST_LARGE_LIVE) hak_fatal(fn, "invalid pointer", p);
    return seg->usable;
  }
  hak_slab* s = checked_slab(seg, p, fn);
  if (HAK_UNLIKELY(block_is_free((const hak_block*)p))) {
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

/* ---- realloc ------------------------------------------------------------------------
 *
 * hak_alloc_realloc
 *   ├─ NULL → malloc; size 0 → free
 *   ├─ knob realloc_inplace 0 (HAKMEM_REALLOC_INPLACE=0) → realloc_move (copy always)
 *   ├─ large block, size > 1 MiB → hak_large_realloc: shrink in place (the tail goes
 *   │  back), grow in place (mremap), move the pages (mremap); NULL → realloc_move
 *   ├─ fits the usable size (and keeps realloc_shrink_keep_pct of it) → p
 *   └─ realloc_move: malloc (with growth headroom), copy (memcpy, or non-temporal
 *      stores from realloc_nt_threshold bytes), free
 * Small blocks (<= 1 MiB) come from size classes: a block never grows past its class,
 * whatever its neighbours hold, so "in place" for them is the slack of the class. */

/* Count one realloc outcome: a plain store to the thread's heap; threads without a heap
 * of their own (not yet, or exiting) add to a process-wide atomic. */
static void realloc_count(unsigned outcome) {
  hak_heap* h = hak_tls_heap;
  if (HAK_LIKELY(hak_heap_is_thread_heap(h))) h->realloc_ctr[outcome]++;
  else HAK_OS_COUNT(realloc_orphan[outcome], 1);
}

static bool realloc_inplace_enabled(void) { return HAK_KNOB(realloc_inplace) != 0; }

static void copy_with(bool nt, void* dst, const void* src, size_t n) {
  if (nt) hak_copy_nt(dst, src, n);
  else memcpy(dst, src, n);
}

/* A copy of 1 MiB or more: timed into the thread's samples, and every
 * HAK_COPY_EXPLORE-th done with the other method (ACE compares the two). */
static HAK_NOINLINE bool copy_big(void* dst, const void* src, size_t n, bool nt) {
  hak_heap* h = hak_tls_heap;
  if (HAK_UNLIKELY(h == &hak_heap_empty)) {   /* large blocks only so far: no heap yet */
    hak_heap* th = hak_heap_thread_init();
    if (th) h = th;
  }
  if (!hak_heap_is_thread_heap(h)) { copy_with(nt, dst, src, n); return nt; }
  if (++h->copy_count % HAK_COPY_EXPLORE == 0) nt = !nt;
  uint64_t t0 = hak_prim_now_ns();
  copy_with(nt, dst, src, n);
  uint64_t ns = hak_prim_now_ns() - t0;
  unsigned b = 63u - (unsigned)__builtin_clzll(n) - HAK_COPY_SAMPLE_MIN_SHIFT;
  if (b >= HAK_COPY_BUCKETS) b = HAK_COPY_BUCKETS - 1;
  h->copy.n[nt][b]++;
  h->copy.bytes[nt][b] += n;
  h->copy.ns[nt][b] += ns;
  return nt;
}

/* Move p (usable bytes) to a new block of `want` bytes, keeping its first `size` bytes. */
static void* realloc_move(void* p, size_t usable, size_t size, size_t want) {
  void* q = hak_malloc_fast(want);
  if (HAK_UNLIKELY(!q)) { realloc_count(HAK_RE_FAILED); return NULL; }   /* errno: ENOMEM */
  size_t n = size < usable ? size : usable;
  bool nt = n >= HAK_KNOB(realloc_nt_threshold);
  if (n >> HAK_COPY_SAMPLE_MIN_SHIFT) nt = copy_big(q, p, n, nt);
  else copy_with(nt, q, p, n);
  realloc_count(nt ? HAK_RE_NT : HAK_RE_MEMCPY);
  hak_free_fast(p);
  return q;
}

/* The size a moving realloc asks for above 1 KiB (up to 1 MiB): rounded up to 2^k or
 * 1.5 * 2^k, two of the eight classes of each doubling. A block that was resized once
 * is likely to be resized again: the extra room (at most a third) lets more of the
 * next reallocs stay in place, and reallocated blocks share a fifth of the mid and pool
 * classes. Each of those classes has slabs (pool: a 2 MiB segment) of its own, so a
 * resizing program that spread its blocks over every class kept a partly used, dirty
 * slab in each: 1.3-1.5x the peak RSS of mimalloc on bench/realloc_bench. */
static size_t realloc_grid(size_t size) {
  if (size <= HAK_TINY_MAX || size > HAK_POOL_MAX) return size;
  unsigned b = 63u - (unsigned)__builtin_clzll(size - 1);     /* 2^b < size <= 2^(b+1) */
  size_t half = (size_t)3 << (b - 1);                          /* 1.5 * 2^b */
  return size <= half ? half : (size_t)2 << b;
}

void* hak_alloc_realloc(void* p, size_t size) {
  if (p == NULL) return hak_malloc_fast(size);
  if (size == 0) { hak_free_fast(p); return NULL; }      /* glibc: frees, returns NULL */
  if (HAK_UNLIKELY(size > PTRDIFF_MAX)) {
    hak_usable_checked(p, "realloc");       /* a bad pointer still aborts */
    realloc_count(HAK_RE_FAILED);
    errno = ENOMEM;
    return NULL;
  }
  hak_segment* seg = hak_registry_lookup((uintptr_t)p);
  size_t usable = usable_in(seg, p, "realloc");
  if (HAK_UNLIKELY(!realloc_inplace_enabled())) return realloc_move(p, usable, size, size);
  size_t keep_pct = HAK_KNOB(realloc_shrink_keep_pct);
  if (seg->kind == HAK_SEG_LARGE) {
    if (size > HAK_POOL_MAX) {
      unsigned outcome;
      void* q = hak_large_realloc(seg, p, size, &outcome);
      if (q) {
        if (q == p) HAK_DBG(hak_tls_heap, EARLY_REALLOC_LARGE);
        realloc_count(outcome);
        return q;
      }
    } else if (size <= usable && size * 100 >= usable * keep_pct) {
      HAK_DBG(hak_tls_heap, EARLY_REALLOC_INPLACE);
      realloc_count(HAK_RE_IN_PLACE);
      return p;
    }
  } else if (size <= usable && (size * 100 >= usable * keep_pct || usable <= 16)) {
    HAK_DBG(hak_tls_heap, EARLY_REALLOC_INPLACE);
    realloc_count(HAK_RE_IN_PLACE);
    return p;
  }
  /* A block that grows by small steps moves with 1/4 headroom: half as many copies,
   * and a run of growths touches every other size class instead of each one. */
  size_t want = size, headroom = usable * HAK_KNOB(realloc_grow_headroom_pct) / 100;
  if (size > usable && size <= HAK_POOL_MAX && size - usable < headroom) want = usable + headroom;
  return realloc_move(p, usable, size, realloc_grid(want));
}

void* hak_alloc_expand(void* p, size_t size) {
  if (p == NULL) { errno = EINVAL; return NULL; }
  hak_segment* seg = hak_registry_lookup((uintptr_t)p);
  size_t usable = usable_in(seg, p, "hak_expand");      /* a bad pointer aborts */
  if (size <= usable) {
    realloc_count(HAK_RE_IN_PLACE);
    return p;
  }
  if (seg->kind == HAK_SEG_LARGE && size <= PTRDIFF_MAX && realloc_inplace_enabled() &&
      hak_large_grow_in_place(seg, size)) {
    realloc_count(HAK_RE_GROWN);
    return p;
  }
  realloc_count(HAK_RE_EXPAND_FAILED);
  errno = ENOMEM;
  return NULL;
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
  if (hak_heap_is_thread_heap(h)) hak_tcache_flush_all(h);
}
