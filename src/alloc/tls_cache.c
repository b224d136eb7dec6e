/* tls_cache.c — moving blocks between a thread's TLS lists and its slabs.
 *
 *   refill(cls)  TLS list empty: take up to batch[cls] blocks from the class's partial
 *                slabs: blocks that came back first (local free list, remote frees,
 *                remote frees on full slabs), then never-used space; a plain malloc
 *                with none of its class's may get one free block of a slightly
 *                larger class instead (borrowing); find or make a slab when none is
 *                partial.
 *   flush(cls)   TLS list full: keep the newest `keep` blocks, return the rest to
 *                their slabs; a slab whose blocks are all back goes to its segment.
 * Only the owning thread runs these (or any thread holding hak_global_lock for the
 * global heap), with the heap's lock held: a scavenger may take it to release the
 * heap's unused memory (heap.c). The TLS lists themselves are the owner's alone. */
#include "alloc/alloc_fast.h"
#include "alloc/knobs.h"
#include "alloc/os_counters.h"
#include "prim/prim.h"
#include "base/vg.h"

/* ---- the caps ---------------------------------------------------------------------
 * A class's cap starts at its base (tls_cap x diet). A refill within 2 x cap operations
 * of the class's last flush of a full list means the cache gave back blocks the thread
 * needed again (a batch or working set bigger than the cache): the cap doubles, up to
 * the class's ceiling (tls_cap_max x diet) and while the heap's growth, the capacity
 * beyond the base caps in bytes over all classes, stays within its budget
 * (tls_grow_budget_bytes x diet). The sweep halves a grown class that served fewer
 * operations than its cap over a purge delay, back toward its base, and gives back the
 * blocks beyond the new cap. Only the slow paths run this: the fast paths see `room`
 * and nothing else. */

/* Set the cap of class cls (the length stays: room may go below 0, then the next free
 * flushes) and the refill batch bound that follows from it. */
static void tc_set_cap(hak_heap* h, unsigned cls, uint32_t cap) {
  hak_tcache* tc = &h->tc[cls];
  tc->room += (int32_t)cap - (int32_t)tc->cap;
  tc->cap = cap;
  uint32_t b = h->grow[cls].batch_knob < cap / 2 ? h->grow[cls].batch_knob : cap / 2;
  if (b < 1) b = 1;
  h->batch_max[cls] = (uint16_t)b;
  if (h->batch[cls] > b) h->batch[cls] = (uint16_t)b;
}

/* Double the cap of cls within its ceiling and the heap's budget. */
static void tc_grow(hak_heap* h, unsigned cls) {
  uint64_t cap = h->tc[cls].cap, ceil = h->grow[cls].ceil, size = hak_cls_size[cls];
  if (cap >= ceil) return;
  uint64_t want = cap * 2 < ceil ? cap * 2 : ceil;
  uint64_t left = h->grow_budget > h->grown_bytes ? h->grow_budget - h->grown_bytes : 0;
  if ((want - cap) * size > left) want = cap + left / size;
  if (want <= cap) return;
  h->grown_bytes += (want - cap) * size;
  h->grow[cls].seen_at = 0;
  tc_set_cap(h, cls, (uint32_t)want);
}

/* A refill of cls: grow when it follows a flush of a full list closely. */
static inline void tc_refill_check(hak_heap* h, unsigned cls) {
  hak_tc_grow* g = &h->grow[cls];
  if (g->flush_ops == 0) return;
  const hak_tcache* tc = &h->tc[cls];
  uint64_t since = hak_class_ops(h, cls) + 1 - g->flush_ops;   /* flush_ops: ops + 1 */
  g->flush_ops = 0;
  if (since <= 2 * (uint64_t)tc->cap) tc_grow(h, cls);
}

static void flush_locked(hak_heap* h, unsigned cls, uint32_t keep);

/* At the heap's sweep: halve the grown classes that served fewer operations than their
 * cap over the last purge delay (a flush and a refill more or less cost them nothing). */
static void tc_shrink_idle(hak_heap* h) {
  if (h->grown_bytes == 0) return;
  uint64_t now = hak_prim_now_ns();
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    hak_tcache* tc = &h->tc[c];
    hak_tc_grow* g = &h->grow[c];
    if (tc->cap <= g->base) continue;
    uint64_t ops = hak_class_ops(h, c);
    if (g->seen_at != 0 && now - g->seen_at < h->purge_delay_ns) continue;
    bool idle = g->seen_at != 0 && ops - g->seen_ops < tc->cap;
    g->seen_ops = ops;                     /* the next window starts */
    g->seen_at = now;
    if (!idle) continue;
    uint32_t cap = tc->cap / 2 > g->base ? tc->cap / 2 : g->base;
    h->grown_bytes -= (uint64_t)(tc->cap - cap) * hak_cls_size[c];
    tc_set_cap(h, c, cap);
    if (tc->room < 0) flush_locked(h, c, cap);   /* the blocks beyond the new cap go back */
  }
}

/* The knob snapshot's values for class c (cap bounds after the diet, batch bound, drain
 * interval). A class that already ran keeps its cap within the new bounds, but one whose
 * base went down (a diet) starts over from it; it keeps its slow start state too: its
 * batch only shrinks to the new bound. */
static void class_set_caps(hak_heap* h, unsigned c, const hak_knobs_cls* k, bool first_time) {
  hak_tc_grow* g = &h->grow[c];
  uint32_t base = (uint32_t)((uint64_t)k->tls_cap * k->diet_pct / 100);
  if (base < 1) base = 1;
  uint32_t ceil = (uint32_t)((uint64_t)k->tls_cap_max * k->diet_pct / 100);
  if (ceil < base) ceil = base;
  uint32_t cap = h->tc[c].cap;      /* a lower base (a diet) starts the class over */
  if (first_time || cap < base || base < g->base) cap = base;
  if (cap > ceil) cap = ceil;
  g->base = base;
  g->ceil = ceil;
  g->batch_knob = k->refill_batch;
  tc_set_cap(h, c, cap);
  h->grown_bytes += (uint64_t)(cap - base) * hak_cls_size[c];
  h->drain_interval[c] = k->remote_drain_interval;
  if (first_time || h->batch[c] == 0) {
    /* Slow start: the first refill of a class touches about one page; each refill then
     * doubles the batch up to batch_max, so a class used once costs little memory. */
    uint32_t first = (uint32_t)(HAK_PAGE_SIZE / hak_cls_size[c]);
    if (first < 1) first = 1;
    h->batch[c] = (uint16_t)(first < h->batch_max[c] ? first : h->batch_max[c]);
  }
}

/* Copy the knob snapshot's values into the heap (the budget after the diet, sweep
 * interval, purge delay, and each ready class's bounds) and remember the generation
 * they came from. Beyond the budget, grown classes fall back to their base, the last
 * classes first. Classes not used yet are left as they are (zero): setting all of them
 * when a heap was made wrote about six pages of every heap, the static stand-ins
 * included, that a thread using a few classes never needs (hak_class_setup). */
void hak_heap_set_caps(hak_heap* h) {
  hak_knobs k;
  uint64_t gen = hak_load_acquire(&hak_knobs_generation);
  hak_knobs_copy(&k);
  h->knob_gen = gen;
  h->sweep_interval = k.sweep_interval;
  h->purge_delay_ns = (uint64_t)k.purge_delay_ms * 1000000u;
  h->grow_budget = k.tls_grow_budget_bytes * k.diet_pct / 100;
  h->grown_bytes = 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (!hak_class_is_ready(h, c)) continue;
    hak_knobs_cls kc;
    hak_knobs_class_of(&k, c, &kc);
    class_set_caps(h, c, &kc, false);
  }
  for (unsigned c = HAK_NCLS; c-- > 0 && h->grown_bytes > h->grow_budget;) {
    if (!hak_class_is_ready(h, c)) continue;
    uint32_t base = h->grow[c].base;
    h->grown_bytes -= (uint64_t)(h->tc[c].cap - base) * hak_cls_size[c];
    tc_set_cap(h, c, base);
  }
}

/* The first use of cls in h: its bounds from the snapshot (its cap starts at its base,
 * so the budget is not touched). */
void hak_class_setup(hak_heap* h, unsigned cls) {
  hak_knobs_cls k;
  hak_knobs_class(cls, &k);
  class_set_caps(h, cls, &k, true);
  h->cls_ready[cls >> 6] |= (uint64_t)1 << (cls & 63);
}

/* Before every refill and flush, with no lock held (reading a snapshot may register the
 * thread with urcu-bp, which may call malloc): pick up a new knob snapshot. */
static inline void knobs_refresh(hak_heap* h) {
  if (HAK_UNLIKELY(h->knob_gen != hak_load_acquire(&hak_knobs_generation)) && !h->in_set_caps) {
    h->in_set_caps = true;
    hak_heap_set_caps(h);
    h->in_set_caps = false;
  }
}

/* Bookkeeping of every refill and flush (heap lock held): sweep every sweep_interval
 * events. */
static inline void heap_slow_event(hak_heap* h) {
  hak_store_relaxed(&h->activity, hak_load_relaxed(&h->activity) + 1);
  if (++h->slow_events >= h->sweep_interval) {
    h->slow_events = 0;
    hak_heap_sweep(h);
    tc_shrink_idle(h);
  }
}

/* Drain the remote frees waiting on up to 64 full slabs of class cls; a slab that has
 * local blocks again moves to the partial list. Returns the first such slab, stopping
 * there when `first_only`. */
static hak_slab* revive_full_slabs(hak_heap* h, unsigned cls, bool first_only) {
  hak_slab* revived = NULL;
  unsigned scanned = 0;
  for (hak_slab* s = h->full[cls]; s && scanned < 64; scanned++) {
    hak_slab* next = s->next;
    if (hak_load_relaxed(&s->remote) != NULL) {
      hak_remote_drain(s);
      if (hak_slab_has_local(s)) {
        hak_slab_list_remove(h, s);
        hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
        HAK_DBG(h, REFILL_FULL_SLAB);
        if (!revived) revived = s;
        if (first_only) return s;
      }
    }
    s = next;
  }
  return revived;
}

/* A big block leaves its slab's free list: if its inner pages were given back, they
 * fault in again as it is used (counted as a refault) and the tag goes. */
static inline void take_released(hak_block* b, uint32_t bsize) {
  uintptr_t* word = &((uintptr_t*)b)[HAK_BLOCK_TAG_WORD];
  if (HAK_UNLIKELY(*word == hak_released_tag())) {
    *word = 0;
    HAK_OS_COUNT(interior_refault_bytes, HAK_ALIGN_DOWN((uintptr_t)b + bsize, HAK_PAGE_SIZE) -
                                         HAK_ALIGN_UP((uintptr_t)b + 1, HAK_PAGE_SIZE));
  }
}

static void* refill_locked(hak_heap* h, unsigned cls, bool borrow);

/* ---- borrowing from a larger class ------------------------------------------------
 * A class's slabs stay resident up to the most blocks the class ever had out at once
 * (its bump pointers only grow), so a program whose blocks of each size come and go at
 * random holds the sum of every class's own high-water mark: with eight classes per
 * doubling, more marks than live bytes (bench/alloc_test: 69.6 MiB summed over its
 * classes for 40 MiB live at the peak, mimalloc's four bins per doubling 60.5 MiB).
 * So a refill that finds no free block of its class (its partial slab's free list and
 * remote list empty, or no partial slab) and would touch never-used memory takes a
 * free block already on the free list of a slab of one of the next HAK_BORROW_CLASSES
 * classes up, at most 25 % larger (pool classes: HAK_BORROW_CLASSES_POOL, at most
 * twice the size), and hands out that one block: the classes pool
 * their slack (alloc_test 58.9 MiB in a simulation with one class up, 54.3 with two).
 * The block stays its slab's: its free goes to that class's TLS list, and
 * malloc_usable_size says its class's size. Only plain mallocs borrow (an aligned
 * request needs its class's alignment). A borrow returns a single block, so a class
 * that keeps growing while its neighbour has free blocks takes the slow path once per
 * block until the neighbour's are used; each such block is one that did not fault in.
 * A malloc/free loop of the class would take it for every malloc: HAK_BORROW_PINGPONG
 * and HAK_BORROW_RUN end such runs (the class then refills from its own slabs). */
#define HAK_BORROW_CLASSES 2
/* Pool classes (above 32 KiB) borrow across a whole doubling: their blocks are pages,
 * a free one of up to twice the size is resident memory that would otherwise wait for
 * its own class while the borrower faults in a new block, and a slab holds few of
 * them (8 for the largest classes), so a class's slack is its slabs' free blocks.
 * Blocks of 32 KiB-1 MiB replaced at random (1,000 live, 271 MiB requested): peak RSS
 * 432 -> 393-397 MiB (two classes, 25 %: 432; mimalloc 419, tcmalloc 381). */
#define HAK_BORROW_CLASSES_POOL 8
#define HAK_BORROW_SCAN    4      /* partial slabs of a lender class looked at */
#define HAK_BORROW_RUN     1024   /* borrows in a row, then a refill of the class's own */
#define HAK_BORROW_PINGPONG 4     /* lent blocks back at once in a row: the same */

static void* borrow_block(hak_heap* h, unsigned cls) {
  bool pool = hak_cls_kind[cls] == HAK_SEG_POOL;
  uint32_t limit = pool ? 2 * hak_cls_size[cls] : hak_cls_size[cls] + hak_cls_size[cls] / 4;
  unsigned span = pool ? HAK_BORROW_CLASSES_POOL : HAK_BORROW_CLASSES;
  /* A class that gave blocks back since it last cut new ones may take from a lender's
   * TLS list too; one that only grows would take, one slow path each, the fresh blocks
   * the lender's own refills cut. */
  hak_tc_grow* g = &h->grow[cls];
  bool from_tc = h->cc[cls].flushes != g->cut_flushes;
  if (g->borrows >= HAK_BORROW_RUN) return NULL;
  for (unsigned c = cls + 1; c <= cls + span && c < HAK_NCLS && hak_cls_size[c] <= limit; c++) {
    if (HAK_UNLIKELY(h->tc[c].head == g->last_borrowed && h->tc[c].nfree == g->lender_nfree + 1)) {
      /* The block lent last came straight back, the lender's only free since. Again
       * and again, that is a malloc/free loop of cls that would take the slow path
       * every time: it gets blocks of its own (the run starts over at its next refill
       * of its own). Once is a coincidence (a lender that rarely frees). */
      if (++g->pingpong >= HAK_BORROW_PINGPONG) {
        g->borrows = HAK_BORROW_RUN;
        return NULL;
      }
    } else if (c == g->lender) {
      g->pingpong = 0;
    }
    hak_block* b = NULL;
    unsigned scanned = 0;
    for (hak_slab* s = h->partial[c]; s && scanned < HAK_BORROW_SCAN; s = s->next, scanned++) {
      b = s->free;
      if (!b) continue;
      hak_block* n = HAK_DEC(b, b->next);
      hak_slab_check_free(s, b, n, "malloc");
      s->free = n;
      s->nfree--;
      s->used++;
      if (s->bsize >= 2 * HAK_PAGE_SIZE) take_released(b, s->bsize);
      if (n == NULL && hak_load_relaxed(&s->bump) + s->bsize > s->end) {
        hak_slab_list_remove(h, s);
        hak_slab_list_push(h, s, HAK_SLAB_FULL);
      }
      h->cc[c].refilled++;     /* allocated as a block of c (hak_heap_allocs) */
      b->next = NULL;
      b->key = 0;
      break;
    }
    if (!b && from_tc) b = hak_tcache_pop_fast(h, c);   /* counted as c's (the list got shorter) */
    if (b) {
      g->borrows++;
      g->last_borrowed = b;
      g->lender = (uint16_t)c;
      g->lender_nfree = h->tc[c].nfree;
      HAK_DBG(h, REFILL_BORROW);
      return b;
    }
  }
  return NULL;
}

/* A slab of class cls with blocks to give, or NULL when out of memory. The caller
 * has looked at the full slabs that received remote frees. */
static hak_slab* acquire_slab(hak_heap* h, unsigned cls) {
  unsigned kind = hak_cls_kind[cls];
  /* 2. an unused slab in one of our segments: one whose pages are still resident if
   * one of the first few segments has it, else the first with any. (The newest
   * segment comes first: a class whose slab emptied in an older one cut a never-used
   * slab in the newest, and both stayed resident: micro-xthread's 32 classes did so
   * over two segments.) Only a few are looked at: a big heap's list is long and
   * mostly full. */
  hak_segment* seg = NULL;
  if (kind != HAK_SEG_POOL) {
    unsigned looked = 0;
    for (hak_segment* g = h->segs[kind]; g; g = g->next) {
      if (++looked > 8 && seg) break;
      if (!g->free_slabs) continue;
      if (g->free_slabs & g->dirty_free) { seg = g; break; }
      if (!seg) seg = g;
    }
  }
  /* 3. an abandoned segment; 4. a new one */
  if (!seg) {
    hak_segment* adopted = hak_heap_adopt(h, kind, cls);
    if (adopted) {
      HAK_DBG(h, REFILL_ADOPTED);
      if (h->partial[cls]) return h->partial[cls];
      if (adopted->free_slabs) seg = adopted;
      else return h->partial[cls];   /* NULL: caller loops and tries again */
    }
  }
  if (!seg) {
    if ((h->ctr.segs_new & 7) == 7) hak_abandoned_reclaim();
    seg = hak_segment_new(h, kind, cls);
    if (!seg) return NULL;
    hak_heap_link_segment(h, seg);
  }
  hak_slab* s = hak_segment_take_slab(seg, cls);
  hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
  h->ctr.slabs_new++;
  HAK_DBG(h, REFILL_NEW_SLAB);
  return s;
}

void* hak_tcache_refill(hak_heap* h, unsigned cls, bool borrow) {
  knobs_refresh(h);
  hak_class_ready(h, cls);
  if (h->rb_mask) hak_remote_flush(h);     /* the other heaps see our frees in time */
  if (HAK_LIKELY(h->lat_count++ % HAK_LAT_SAMPLE != 0)) {
    hak_heap_lock(h);
    void* p = refill_locked(h, cls, borrow);
    hak_heap_unlock(h);
    return p;
  }
  /* A sampled refill: its time, lock wait included, goes into the heap's histogram. */
  uint64_t t0 = hak_prim_now_ns();
  hak_heap_lock(h);
  void* p = refill_locked(h, cls, borrow);
  hak_heap_unlock(h);
  uint64_t ns = hak_prim_now_ns() - t0;
  unsigned b = ns ? 64u - (unsigned)__builtin_clzll(ns) : 0;
  h->lat_hist[b < HAK_LAT_BUCKETS ? b : HAK_LAT_BUCKETS - 1]++;
  return p;
}

static void* refill_locked(hak_heap* h, unsigned cls, bool borrow) {
  if (HAK_UNLIKELY(h->tc_cut[cls] != 0)) {    /* blocks cut off by a scavenger (tc_trim.c) */
    h->tc[cls].room += (int32_t)h->tc_cut[cls];
    h->tc_cut[cls] = 0;
  }
  h->cc[cls].refills++;
  tc_refill_check(h, cls);
  heap_slow_event(h);
  if (++h->refills_since_drain[cls] >= h->drain_interval[cls]) {
    h->refills_since_drain[cls] = 0;
    revive_full_slabs(h, cls, false);
  }
  uint32_t want = h->batch[cls], got = 0;
  if (want < h->batch_max[cls]) {
    uint32_t next = want * 2;
    h->batch[cls] = (uint16_t)(next < h->batch_max[cls] ? next : h->batch_max[cls]);
  }
  uint32_t bsize = hak_cls_size[cls];
  hak_block *first = NULL, *last = NULL;
  unsigned tries = 0;
  bool revived = false;
  while (got < want) {
    hak_slab* s = h->partial[cls];
    if (!s) {
      /* 1. full slabs that received remote frees; then a larger class's free block
       * (the first block only); 2-4. a slab from a segment (acquire_slab) */
      s = revive_full_slabs(h, cls, true);
      if (!s && got == 0 && borrow) {
        void* b = borrow_block(h, cls);
        if (b) return b;
      }
      if (!s) s = acquire_slab(h, cls);
      if (!s) {
        if (++tries < 64 && h->partial[cls] == NULL) continue;  /* adopted a full segment */
        break;
      }
    }
    uint32_t took = 0;
    if (s->free == NULL && s->parked_pages) hak_slab_unpark(s);   /* before never-used space */
    bool big = bsize >= 2 * HAK_PAGE_SIZE;      /* blocks whose inner pages may be released */
    if (got < want && s->free) {
      /* A run of the slab's list joins the chain as it is: its links are the chain's
       * (the same encoding), so only the link into its first block is written; each
       * block is checked as it is passed, and the slab's list is cut once. */
      hak_block* b = s->free;
      if (last) last->next = HAK_ENC(last, b); else first = b;
      uint32_t room = want - got;
      do {
        hak_block* n = HAK_DEC(b, b->next);
        hak_slab_check_free(s, b, n, "malloc");
        if (big) take_released(b, bsize);
        last = b;
        b = n;
        took++;
      } while (took < room && b);
      s->free = b;
      s->nfree -= took;
    }
    HAK_DBG_ADD(h, REFILL_SLAB_FREELIST, took);
    uint32_t from_list = took;
    /* Then the remote frees, before never-used space: a block that came back is
     * resident, the bump pointer's next one may not be (mimalloc collects its thread
     * frees before it extends a page, too). Drained blocks are in `used` already. */
    uint32_t drained = 0;
    if (got + took < want && hak_load_relaxed(&s->remote) != NULL) {
      drained = hak_remote_drain_into(s, want - got - took, &first, &last);
      HAK_DBG(h, REFILL_REMOTE_DRAIN);
    }
    /* ... and the remote frees waiting on full slabs, once per refill, when another
     * thread has pushed on a full slab's empty stack since the last look (a thread
     * whose full slabs get nothing does not walk them in every refill that cuts new
     * blocks: a growing one would walk up to 64 each time). */
    if (got + took + drained < want && !revived && hak_load_relaxed(&h->full_remote[cls])) {
      revived = true;
      hak_store_relaxed(&h->full_remote[cls], 0);
      hak_slab* r = revive_full_slabs(h, cls, true);
      if (r) {
        hak_store_relaxed(&h->full_remote[cls], 1);   /* it stopped at the first: maybe more */
        s->used += took;
        got += took + drained;
        continue;
      }
    }
    if (took + drained == 0 && got == 0 && borrow) {
      void* b = borrow_block(h, cls);    /* rather than never-used space */
      if (b) return b;
    }
    uint8_t* bump = hak_load_relaxed(&s->bump);
    /* A class that has given blocks back since it last cut new ones is at the
     * high-water mark of blocks that come and go, not growing: the blocks of a whole
     * batch beyond the one wanted now would wait in the TLS list, resident and never
     * used before, and raise the mark for good. It cuts a quarter of a batch (or
     * stops at what it has); a growing class keeps whole batches (bench/alloc_test,
     * fixed work: 63.0-63.5 MiB -> 61.8-62.4 MiB, mimalloc 61.8-62.3). Given back
     * means flushed by this thread, or freed by another and found on the slabs (a
     * producer whose consumer frees every block never flushes). */
    uint32_t have = got + took + drained;
    if (took + drained) h->grow[cls].came_back = true;
    if ((h->cc[cls].flushes != h->grow[cls].cut_flushes || h->grow[cls].came_back) && want > 4) {
      uint32_t w = want / 4;
      want = w > have ? w : have;
    }
    size_t space = bump + bsize <= s->end ? (size_t)(s->end - bump) / bsize : 0;   /* blocks */
    uint32_t cut = want > have ? (want - have < space ? want - have : (uint32_t)space) : 0;
    if (cut) {
      /* Never-used blocks, one after another: each gets its free mark and the link to
       * the next; the count is known before the loop (one division per refill). */
      hak_block* b = (hak_block*)bump;
      if (last) last->next = HAK_ENC(last, b); else first = b;
      for (uint32_t i = 1;; i++) {
        HAK_VG_MAKE_UNDEFINED(b, bsize);   /* nothing outside -DHAK_VALGRIND=ON builds */
        b->key = hak_free_mark(b);
        if (big) ((uintptr_t*)b)[HAK_BLOCK_TAG_WORD] = 0;   /* no stale tag of an earlier slab */
        if (i == cut) break;
        hak_block* nb = (hak_block*)((uint8_t*)b + bsize);
        b->next = HAK_ENC(b, nb);
        b = nb;
      }
      last = b;
      bump += (size_t)cut * bsize;
      took += cut;
    }
    if (took > from_list) {
      h->grow[cls].cut_flushes = h->cc[cls].flushes;
      h->grow[cls].came_back = false;
    }
    hak_slab_set_bump(s, bump);
    HAK_DBG_ADD(h, REFILL_BUMP, took - from_list);
    s->used += took;
    got += took + drained;
    if (s->free == NULL && bump + bsize > s->end) {
      /* Remote frees go straight into the chain (checked once, in the drain); what the
       * chain does not need stays on the slab's list. */
      if (hak_load_relaxed(&s->remote) != NULL) {
        got += hak_remote_drain_into(s, want - got, &first, &last);
        HAK_DBG(h, REFILL_REMOTE_DRAIN);
        if (s->free) continue;
      }
      hak_slab_list_remove(h, s);
      hak_slab_list_push(h, s, HAK_SLAB_FULL);
    }
  }
  if (!first) {
    HAK_DBG(h, EARLY_REFILL_OOM);
    return NULL;
  }
  h->grow[cls].borrows = 0;
  h->grow[cls].pingpong = 0;
  h->grow[cls].last_borrowed = NULL;
  last->next = HAK_ENC(last, h->tc[cls].head);
  hak_block* b = first;
  hak_tcache* tc = &h->tc[cls];
  tc->head = HAK_DEC(b, b->next);
  tc->room -= (int32_t)(got - 1);
  h->cc[cls].refilled += got;
  b->next = NULL;
  b->key = 0;
  return b;
}

void hak_tcache_flush_all(hak_heap* h) {
  hak_remote_flush(h);                  /* no buffered cross-thread free is lost */
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (h->tc[c].head) hak_tcache_flush(h, c, 0);
  }
}

void hak_tcache_flush(hak_heap* h, unsigned cls, uint32_t keep) {
  knobs_refresh(h);
  hak_class_ready(h, cls);
  if (h->rb_mask) hak_remote_flush(h);
  /* The free path's flush of a full list (it keeps half; the thread flush and teardown
   * keep nothing) is an overflow: a refill soon after it grows the cap. */
  hak_tcache* tc = &h->tc[cls];
  /* (blocks cut off by a scavenger, not yet counted out of room, are no overflow) */
  int32_t room = tc->room + (int32_t)__atomic_load_n(&h->tc_cut[cls], __ATOMIC_RELAXED);
  if (room <= 0 && (keep > 0 || tc->cap == 1)) h->grow[cls].flush_ops = hak_class_ops(h, cls) + 1;
  hak_heap_lock(h);
  h->cc[cls].flushes++;
  heap_slow_event(h);
  flush_locked(h, cls, keep);
  hak_heap_unlock(h);
}

/* Keep the newest `keep` blocks of the list of cls, return the rest to their slabs. */
static void flush_locked(hak_heap* h, unsigned cls, uint32_t keep) {
  hak_tcache* tc = &h->tc[cls];
  hak_block* b = tc->head;
  hak_block* prev = NULL;
  uint32_t kept = 0;
  /* Kept blocks: each link is checked as the pop's is (the pop checks it again); every
   * block that goes back to a slab is checked fully first (integrity.c). */
  for (; kept < keep && b; kept++) {
    prev = b;
    b = HAK_DEC(b, b->next);
    if (HAK_UNLIKELY(!hak_link_plausible(b))) hak_list_corrupt("free", prev, cls, b);
  }
  hak_slab* s = b ? hak_tc_block_slab(h, cls, b) : NULL;
  if (b && HAK_UNLIKELY(s == NULL)) {
    if (prev) hak_list_corrupt("free", prev, cls, b);
    hak_mark_corrupt("free", b, cls);      /* the head: pushed by a free, then written over */
  }
  if (prev) prev->next = HAK_ENC(prev, NULL); else tc->head = NULL;
  tc->room = (int32_t)tc->cap - (int32_t)kept;
  h->tc_cut[cls] = 0;                      /* counted: the length is kept */
  if (b) h->cc[cls].flushed += hak_tcache_return_chain(h, cls, b, s, true);
}

uint64_t hak_tcache_return_chain(hak_heap* h, unsigned cls, hak_block* b, hak_slab* s, bool owner) {
  uint64_t flushed = 0;
  while (b) {
    /* A run of blocks of one slab goes back in one piece: their links stay as they are
     * (the slab's list uses the same encoding), the last one's is pointed at the slab's
     * list. Each block's link is checked before it is followed: a block of the same
     * slab by the slab's own test, another by the free map (hak_tc_block_slab). b is
     * checked (s is its slab). */
    hak_block* run = b;
    hak_block* next;
    hak_slab* ns = NULL;
    uint32_t n = 0;
    for (;;) {
      next = HAK_DEC(b, b->next);
      n++;
      if (!next) break;
      if (HAK_LIKELY(hak_slab_handed_block(s, (uintptr_t)next) && next->key == hak_free_mark(next))) {
        b = next;
        continue;
      }
      ns = owner ? hak_tc_block_slab(h, cls, next) : hak_tc_block_slab_slow(h, cls, next);
      if (HAK_UNLIKELY(ns == NULL)) hak_list_corrupt("free", b, cls, next);
      break;
    }
    hak_slab_return_run(h, s, run, b, n);
    flushed += n;
    HAK_DBG_ADD(h, FLUSH_TO_SLAB, n);
    b = next;
    s = ns;
  }
  return flushed;
}
