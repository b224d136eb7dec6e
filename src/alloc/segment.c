/* segment.c — segments: mapping, header set-up, slabs inside them, and the cache of
 * empty segments.
 *
 * Geometry (header = first 4 KiB, so every slab area starts on a page):
 *   tiny SuperSlab  2 MiB, 32 slabs of 64 KiB  (slab 0 loses the header page): blocks to 8 KiB
 *   mid segment     4 MiB,  8 slabs of 512 KiB: blocks of 9-32 KiB
 *   pool segment    one slab; 4 KiB + 8 blocks of its class, rounded up to 2 MiB
 * Block 0 of a slab sits at the first multiple of its class's alignment (the largest
 * power of two dividing the block size, at most 1 MiB) inside the slab's area, so
 * every block of a class is aligned to it: aligned_alloc(8 KiB, 100) is a block of the
 * 8 KiB class. Only slab 0 and pool slabs (areas starting after the header) move: by
 * less than one block, and as the area ends on a multiple of that alignment the
 * number of blocks stays the same.
 * A segment stays registered while it sits in the cache, so a stale free into it is
 * still recognised (and reported) rather than mistaken for a foreign pointer.
 * A hardened build keeps the last page of every segment inaccessible (SEG_GUARD): a
 * write running off the segment's last block faults there instead of landing in the
 * next segment's header. It costs a page of address space and one more kernel mapping
 * per segment. */
#include "alloc/slab.h"
#include "alloc/knobs.h"
#include "alloc/churn.h"
#include "prim/prim.h"
#include "alloc/os_counters.h"

#include <errno.h>

#define TINY_SLAB_SHIFT 16               /* 64 KiB slabs ... */
#define TINY_SLABS      32               /* ... 32 of them: one 2 MiB chunk */
#define MID_SLAB_SHIFT  19               /* 512 KiB slabs ... */
#define MID_SLABS       8                /* ... 8 of them: two chunks */
#define POOL_SLAB_SHIFT 40               /* one slab: the shift only has to exceed the size */
#define POOL_BLOCKS     8                /* blocks per pool segment */
#define MAX_SLABS       32               /* free_slabs and dirty_free are 32-bit masks */
#if HAK_HARDENED
#define SEG_GUARD       HAK_PAGE_SIZE    /* the guard page at each segment's end */
#else
#define SEG_GUARD       0
#endif

_Static_assert(sizeof(hak_segment) + MAX_SLABS * sizeof(hak_slab) <= HAK_SEG_HDR, "segment header fits a page");
_Static_assert(TINY_SLABS << TINY_SLAB_SHIFT == HAK_CHUNK_SIZE, "a SuperSlab is one chunk");
_Static_assert(MID_SLABS << MID_SLAB_SHIFT == 2 * HAK_CHUNK_SIZE, "a mid segment is two chunks");

static hak_lock seg_cache_lock = HAK_LOCK_INIT;
static hak_segment* seg_cache;        /* empty segments, LIFO */
static size_t seg_cache_bytes;        /* bytes mapped by cached segments */
static _Atomic size_t seg_cache_dirty; /* of which not decommitted (changed under the lock) */
/* Bytes of segments taken back out of the cache per purge-delay window (under the
 * lock): a program that keeps reusing what it gives back - threads that come and go -
 * may keep that much resident in the cache, beyond segment_cache_dirty_bytes. */
static hak_churn seg_reuse_churn;
/* Bytes the heaps that used them gave back to the cache per purge-delay window: a
 * program that frees a large structure at once mostly builds the next one right after
 * (peers keep such memory for their purge delay too). Decommitting all but the floor
 * at once made rebuilding 384 MiB of small blocks fault every page in again: 1.7 s
 * against mimalloc's 0.05 s. What nothing reuses goes back after the purge delay
 * (hak_segment_cache_purge: the owners' sweeps and the ACE thread's scavenger). */
static hak_churn seg_release_churn;

/* What the recent traffic through the cache says it should keep resident: the larger
 * of the bytes recently reused from it and given back to it (under the lock). Once
 * the traffic stops it falls to nothing over HAK_CHURN_WINDOWS purge delays. */
static size_t churn_allowance(uint64_t now) {
  uint64_t delay = HAK_KNOB(purge_delay_ns);
  size_t cap = (size_t)HAK_KNOB(segment_cache_bytes);
  hak_churn_advance(&seg_reuse_churn, now, delay);
  hak_churn_advance(&seg_release_churn, now, delay);
  size_t reuse = hak_churn_budget(&seg_reuse_churn, cap);
  size_t released = hak_churn_budget(&seg_release_churn, cap);
  return released > reuse ? released : reuse;
}

/* How many bytes of cached segments may stay resident when one is released (under the
 * lock): the churn, and at least the floor. */
static size_t dirty_allowance(uint64_t now) {
  size_t floor = (size_t)HAK_KNOB(segment_cache_dirty_bytes);
  size_t churn = churn_allowance(now);
  return churn > floor ? churn : floor;
}

static size_t segment_size(unsigned kind, unsigned pool_cls, unsigned* shift, unsigned* nslabs) {
  switch (kind) {
    case HAK_SEG_TINY: *shift = TINY_SLAB_SHIFT; *nslabs = TINY_SLABS; return HAK_CHUNK_SIZE;
    case HAK_SEG_MID:  *shift = MID_SLAB_SHIFT;  *nslabs = MID_SLABS;  return 2 * HAK_CHUNK_SIZE;
    default:
      *shift = POOL_SLAB_SHIFT; *nslabs = 1;
      return HAK_ALIGN_UP(HAK_SEG_HDR + POOL_BLOCKS * (size_t)hak_cls_size[pool_cls], HAK_CHUNK_SIZE);
  }
}

/* Start of slab i's area: after the header for slab 0, else the slab's boundary. */
static uint8_t* slab_area_start(const hak_segment* seg, unsigned i) {
  return (uint8_t*)seg + (i == 0 ? HAK_SEG_HDR : ((size_t)i << seg->slab_shift));
}

/* End of slab i's area: the next slab's start, or the segment's end (its guard page). */
static uint8_t* slab_area_end(const hak_segment* seg, unsigned i) {
  if (i + 1u == seg->nslabs) return (uint8_t*)seg + seg->size - SEG_GUARD;
  return (uint8_t*)seg + ((size_t)(i + 1) << seg->slab_shift);
}

/* Guard the last page of a segment of `size` bytes (hardened builds). Counted as an OS
 * failure when refused (the page then stays unused, unguarded). */
static void segment_guard(hak_segment* seg, size_t size) {
  if (SEG_GUARD && !hak_prim_guard((uint8_t*)seg + size - SEG_GUARD, SEG_GUARD)) HAK_OS_COUNT(os_failures, 1);
}

/* Transparent huge pages for segments (knob huge_pages 2). A segment is advised whole
 * when it is mapped, before its header page is written (a 2 MiB range with a 4 KiB
 * page in it is not served by a huge page on its next fault). A decommitted one taken
 * from the cache still has its header page, so its first 2 MiB are collapsed into a
 * huge page at once (MADV_COLLAPSE: one 2 MiB page zeroed and the header copied,
 * instead of 511 faults to come). The advice comes off when the segment's pages go
 * back in the cache (else khugepaged fills the 511 empty pages around the resident
 * header page again), and off live segments when the knob falls below 2
 * (hak_segment_drop_huge, from the release walk). The owner, the cache and the walk
 * each touch the flag under the lock that holds the segment then; relaxed atomics
 * all the same, as a segment passes between them (a second madvise is harmless). */
static bool seg_huge(const hak_segment* seg) { return __atomic_load_n(&seg->huge, __ATOMIC_RELAXED); }
void hak_segment_drop_huge(hak_segment* seg) {
  if (!seg_huge(seg)) return;
  __atomic_store_n(&seg->huge, false, __ATOMIC_RELAXED);
  hak_prim_huge(seg, seg->size, false);
}

/* Give back the pages of a cached segment past its header; true when the kernel took
 * them (the segment is then fresh: it reads as zero). */
static bool cache_decommit(hak_segment* seg) {
  hak_segment_drop_huge(seg);
  return hak_prim_decommit((uint8_t*)seg + HAK_SEG_HDR, seg->size - HAK_SEG_HDR);
}

/* Put seg at the head of the cache list (the cache's lock held). */
static void cache_push_locked(hak_segment* seg) {
  seg->prev = NULL;
  seg->next = seg_cache;
  if (seg_cache) seg_cache->prev = seg;
  seg_cache = seg;
}

/* Take seg off the cache list (the cache's lock held; its links are left as they were). */
static void cache_unlink_locked(hak_segment* seg) {
  if (seg->prev) seg->prev->next = seg->next; else seg_cache = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
}

/* How well a cached segment suits a request of `size` bytes for `kind` (and pool class
 * `cls`); higher is better, 0 not at all. A segment keeps its last kind and pool class
 * in the cache, and a resident one keeps the pages its blocks touched: the same
 * geometry reuses them without page faults, while another geometry faults its own pages
 * in and leaves the old ones resident and unused (a pool segment cut over a SuperSlab's
 * dense slabs holds 1-2 MiB it never uses), so a decommitted segment of the right size
 * serves it better. A larger segment is cut down (its tail unmapped): last resort. */
static unsigned cache_fit(const hak_segment* seg, size_t size, unsigned kind, unsigned cls) {
  if (seg->size < size) return 0;
  if (seg->size > size) return 1;
  bool same = seg->kind == kind && (kind != HAK_SEG_POOL || seg->pool_cls == cls);
  if (seg->fresh) return 3;                  /* decommitted: reads as zero wherever */
  return same ? 4 : 2;
}

/* The best cached segment for `size`, `kind` and `cls` (cache_fit; among larger ones
 * the smallest, cut down to size: its tail chunks unmapped), else NULL. */
static hak_segment* cache_take(size_t size, unsigned kind, unsigned cls) {
  hak_lock_take(&seg_cache_lock);
  hak_segment* best = NULL;
  unsigned best_fit = 0;
  for (hak_segment* seg = seg_cache; seg; seg = seg->next) {
    unsigned fit = cache_fit(seg, size, kind, cls);
    if (fit > best_fit || (fit == 1 && best_fit == 1 && seg->size < best->size)) { best = seg; best_fit = fit; }
    if (fit == 4) break;
  }
  if (best) {
    cache_unlink_locked(best);
    seg_cache_bytes -= best->size;
    if (best->fresh == false) atomic_fetch_sub(&seg_cache_dirty, best->size);   /* `fresh` = decommitted */
    hak_churn_add(&seg_reuse_churn, hak_prim_now_ns(), HAK_KNOB(purge_delay_ns), size);
  }
  hak_lock_release(&seg_cache_lock);
  if (best && best->size > size) {
    size_t extra = best->size - size;
    hak_registry_set((uint8_t*)best + size, extra, NULL);
    if (hak_prim_unmap((uint8_t*)best + size, extra)) {
      HAK_OS_COUNT(bytes_mapped, -(int64_t)extra);
      HAK_OS_COUNT(bytes_cached, -(int64_t)extra);   /* the caller subtracts `size` */
      best->size = size;
      segment_guard(best, size);
    } else {
      /* Refused: the segment goes back to the cache whole and the caller maps a new
       * one (handed out at `size`, its tail would be mapped and registered but no
       * longer part of any segment's size). */
      hak_registry_set((uint8_t*)best + size, extra, best);
      HAK_OS_COUNT(os_failures, 1);
      hak_lock_take(&seg_cache_lock);
      seg_cache_bytes += best->size;
      if (!best->fresh) atomic_fetch_add(&seg_cache_dirty, best->size);
      cache_push_locked(best);
      hak_lock_release(&seg_cache_lock);
      return NULL;
    }
  }
  return best;
}

hak_segment* hak_segment_new(hak_heap* heap, unsigned kind, unsigned pool_cls) {
  unsigned shift, nslabs;
  size_t size = segment_size(kind, pool_cls, &shift, &nslabs);
  hak_segment* seg = cache_take(size, kind, pool_cls);
  bool cached = seg != NULL;
  uint64_t now = hak_prim_now_ns();
  bool huge = false;
  if (!seg) {
    seg = hak_prim_map_aligned(size, HAK_CHUNK_SIZE);
    if (!seg) return NULL;
    if (HAK_KNOB(huge_pages) >= 2) huge = hak_prim_huge(seg, size, true);   /* before any write */
    if (!hak_registry_set(seg, size, seg)) { hak_prim_unmap(seg, size); return NULL; }
    hak_segment_cache_exchange(size);
    segment_guard(seg, size);
    hak_seglist_add(seg);
    HAK_OS_COUNT(seg_mapped, 1);
    HAK_OS_COUNT(bytes_mapped, (int64_t)size);
    HAK_DBG(heap, REFILL_NEW_SEG_OS);
  } else {
    HAK_OS_COUNT(seg_cache_hits, 1);
    HAK_OS_COUNT(bytes_cached, -(int64_t)size);
    HAK_DBG(heap, REFILL_NEW_SEG_CACHE);
  }
  seg->magic = HAK_SEG_MAGIC;
  seg->kind = (uint8_t)kind;
  seg->slab_shift = (uint8_t)shift;
  seg->nslabs = (uint8_t)nslabs;
  seg->size = size;
  seg->free_slabs = nslabs == MAX_SLABS ? 0xffffffffu : (1u << nslabs) - 1;
  seg->used_slabs = 0;
  /* A segment that comes dirty from the cache has resident pages in every slab: they
   * count as unused-dirty until reused or purged. */
  bool dirty = cached && !seg->fresh;
  seg->dirty_free = dirty ? seg->free_slabs : 0;
  seg->purged = 0;
  seg->pool_cls = (uint16_t)pool_cls;
  seg->next = seg->prev = NULL;
  seg->linked = NULL;
  seg->user = NULL; seg->usable = 0; seg->align = 0;
  for (unsigned i = 0; i < nslabs; i++) {
    hak_slab* s = &seg->slabs[i];
    s->idx = (uint8_t)i;
    s->state = HAK_SLAB_UNUSED;
    s->start = slab_area_start(seg, i);
    hak_store_relaxed(&s->bump, s->start);
    s->handed = 0;
    hak_store_relaxed(&s->remote, NULL);
    s->free = NULL; s->nfree = 0; s->used = 0; s->next = s->prev = NULL;
    s->freed_at = now;
  }
  /* Pages the segment's blocks will fault in: all of a new mapping's, all but the
   * header of a decommitted cached one. */
  if (!cached || seg->fresh) HAK_OS_COUNT(seg_fresh_bytes, cached ? size - HAK_SEG_HDR : size);
  if (!cached) {
    __atomic_store_n(&seg->huge, huge, __ATOMIC_RELAXED);
  } else if (seg->fresh && !seg_huge(seg) && HAK_KNOB(huge_pages) >= 2 && hak_prim_huge(seg, size, true)) {
    __atomic_store_n(&seg->huge, true, __ATOMIC_RELAXED);
    hak_prim_collapse(seg, HAK_CHUNK_SIZE);
  }
  seg->fresh = false;
  if (dirty) HAK_OS_COUNT(unused_dirty_bytes[kind], (int64_t)(size - HAK_SEG_HDR));
  hak_store_relaxed(&seg->state, HAK_SEGST_OWNED);
  hak_store_release(&seg->heap, heap);
  heap->ctr.segs_new++;
  heap->ctr.seg_taken_at = now;
  return seg;
}

/* Bytes of the slab areas in mask (slabs of seg). */
static size_t slabs_bytes(const hak_segment* seg, uint32_t mask) {
  size_t bytes = 0;
  for (; mask; mask &= mask - 1) {
    unsigned i = (unsigned)__builtin_ctz(mask);
    bytes += (size_t)(slab_area_end(seg, i) - slab_area_start(seg, i));
  }
  return bytes;
}

void hak_segment_unmap(hak_segment* seg) {
  hak_seglist_remove(seg);
  size_t size = seg->size;         /* the header goes with the mapping */
  hak_registry_set(seg, size, NULL);
  /* A refused munmap is counted; the mapping the kernel kept stays counted as held (it
   * is lost to hakmem, not to the process). */
  if (hak_prim_unmap(seg, size)) HAK_OS_COUNT(bytes_mapped, -(int64_t)size);
  else HAK_OS_COUNT(os_failures, 1);
}

/* Unmap seg, which is in no cache list (it stays registered until here). */
static void segment_unmap(hak_segment* seg) {
  hak_segment_unmap(seg);
  HAK_OS_COUNT(seg_unmapped, 1);
}

/* The cache is full and `need` more bytes must fit: take decommitted entries out,
 * oldest in list order first (the list's tail; a purge puts entries back at the head,
 * so the order is about age, not exact), and return them linked by `next` for the
 * caller to unmap once the lock is gone. Resident entries keep their place: the next
 * thread that needs a segment gets those without page faults, while a decommitted one
 * saves only an mmap. Without this a cache filled with decommitted segments of sizes no
 * longer asked for turned every new release into an unmap (the cache lock held). */
static hak_segment* evict_decommitted_locked(size_t need) {
  hak_segment* tail = seg_cache;
  while (tail && tail->next) tail = tail->next;
  hak_segment* out = NULL;
  size_t got = 0;
  for (hak_segment* seg = tail; seg && got < need;) {
    hak_segment* prev = seg->prev;
    if (seg->fresh) {
      cache_unlink_locked(seg);
      seg_cache_bytes -= seg->size;
      got += seg->size;
      seg->prev = NULL;
      seg->next = out;
      out = seg;
    }
    seg = prev;
  }
  return out;
}

/* Unmap the entries evict_decommitted_locked took out of the cache (no lock held). */
static void unmap_evicted(hak_segment* list) {
  while (list) {
    hak_segment* next = list->next;
    list->next = NULL;
    HAK_OS_COUNT(bytes_cached, -(int64_t)list->size);
    segment_unmap(list);
    list = next;
  }
}

/* reuse_likely: released by the heap that used it (a thread giving back its empty
 * segments, at its exit too), or an abandoned segment emptied by a thread that is itself
 * setting up or adopting segments (a successor taking over a lane of blocks: larson's
 * threads): the cache may keep what the program recently reused resident. Else (an
 * abandoned segment emptied by a thread that only frees, or by the scavenger) no one is
 * about to reuse it and only the floor applies. */
static void segment_release(hak_segment* seg, bool reuse_likely) {
  HAK_ASSERT(seg->used_slabs == 0 && seg->next == NULL && seg->prev == NULL && seg->linked == NULL);
  HAK_OS_COUNT(unused_dirty_bytes[seg->kind], -(int64_t)slabs_bytes(seg, seg->dirty_free & seg->free_slabs));
  seg->dirty_free = 0;
  hak_store_release(&seg->heap, NULL);
  hak_store_release(&seg->state, HAK_SEGST_CACHED);
  size_t limit = (size_t)HAK_KNOB(segment_cache_bytes);
  hak_lock_take(&seg_cache_lock);
  hak_segment* evicted = NULL;
  if (seg_cache_bytes + seg->size > limit && seg->size <= limit) {
    evicted = evict_decommitted_locked(seg_cache_bytes + seg->size - limit);
  }
  if (seg_cache_bytes + seg->size <= limit) {
    /* Cached dirty: a thread that needs a segment soon gets it without page faults.
     * hak_segment_cache_purge decommits what stays unused for the purge delay; past the
     * dirty allowance the segment is decommitted before it becomes visible. */
    uint64_t now = hak_prim_now_ns();
    if (reuse_likely) hak_churn_add(&seg_release_churn, now, HAK_KNOB(purge_delay_ns), seg->size);
    size_t allowance = reuse_likely ? dirty_allowance(now) : (size_t)HAK_KNOB(segment_cache_dirty_bytes);
    bool decommit = hak_load_relaxed(&seg_cache_dirty) + seg->size > allowance;
    seg->cached_at = now;
    seg_cache_bytes += seg->size;
    if (decommit) {
      hak_lock_release(&seg_cache_lock);
      decommit = cache_decommit(seg);
      if (decommit) {
        HAK_OS_COUNT(decommit_calls, 1);
        HAK_OS_COUNT(decommit_bytes, seg->size - HAK_SEG_HDR);
      } else {
        HAK_OS_COUNT(os_failures, 1);      /* refused: it stays dirty */
      }
      hak_lock_take(&seg_cache_lock);
    }
    seg->fresh = decommit;
    if (!decommit) atomic_fetch_add(&seg_cache_dirty, seg->size);
    cache_push_locked(seg);
    size_t size = seg->size;      /* seg may be taken and reused once the lock is gone */
    hak_lock_release(&seg_cache_lock);
    HAK_OS_COUNT(bytes_cached, (int64_t)size);
    unmap_evicted(evicted);
    return;
  }
  hak_lock_release(&seg_cache_lock);
  unmap_evicted(evicted);
  segment_unmap(seg);
}

void hak_segment_release(hak_segment* seg) { segment_release(seg, true); }
void hak_segment_release_abandoned(hak_segment* seg) {
  hak_heap* h = hak_tls_heap;
  bool taking = h->ctr.seg_taken_at && hak_prim_now_ns() - h->ctr.seg_taken_at < HAK_KNOB(purge_delay_ns);
  segment_release(seg, taking);
}

/* Decommit the dirty entries `old` (taken out of the cache, linked by `next`) with no
 * lock held, and put them back clean (or dirty, where the kernel refused). Returns the
 * bytes decommitted. */
static size_t decommit_taken(hak_segment* old) {
  if (!old) return 0;
  size_t bytes = 0;
  for (hak_segment* seg = old; seg; seg = seg->next) {
    seg->fresh = cache_decommit(seg);
    if (!seg->fresh) { HAK_OS_COUNT(os_failures, 1); continue; }
    bytes += seg->size - HAK_SEG_HDR;
    HAK_OS_COUNT(decommit_calls, 1);
  }
  HAK_OS_COUNT(decommit_bytes, bytes);
  HAK_OS_COUNT(purge_bytes, bytes);
  hak_lock_take(&seg_cache_lock);
  while (old) {
    hak_segment* seg = old;
    old = old->next;
    if (!seg->fresh) atomic_fetch_add(&seg_cache_dirty, seg->size);   /* refused: still dirty */
    cache_push_locked(seg);
  }
  hak_lock_release(&seg_cache_lock);
  return bytes;
}

/* Under the lock: take dirty entries cached at or before `before` out, oldest first
 * (the list's tail), while the cache's dirty bytes exceed `keep` plus those of the
 * dirty entries cached after `before` (which stay). */
static hak_segment* take_dirty_locked(size_t keep, uint64_t before) {
  hak_segment* tail = seg_cache;
  for (hak_segment* y = seg_cache; y; y = y->next) {
    if (!y->fresh && y->cached_at > before) keep += y->size;
    tail = y;
  }
  size_t dirty = hak_load_relaxed(&seg_cache_dirty);
  hak_segment* old = NULL;
  for (hak_segment* seg = tail; seg && dirty > keep;) {
    hak_segment* prev = seg->prev;
    if (!seg->fresh && seg->cached_at <= before) {
      cache_unlink_locked(seg);
      atomic_fetch_sub(&seg_cache_dirty, seg->size);
      dirty -= seg->size;
      seg->next = old;
      old = seg;
    }
    seg = prev;
  }
  return old;
}

size_t hak_segment_cache_purge(uint64_t now, uint64_t delay_ns) {
  if (hak_load_relaxed(&seg_cache_dirty) == 0) return 0;
  if (now < delay_ns) return 0;                                  /* nothing is that old */
  if (pthread_mutex_trylock(&seg_cache_lock.m) != 0) return 0;   /* someone else is at it */
  /* Take the old dirty entries out, decommit them unlocked, put them back clean. Past
   * the purge delay an entry stays resident only within the churn allowance, as large
   * spans do (a delay of 0, malloc_trim: none). */
  size_t budget = delay_ns ? churn_allowance(now) : 0;
  hak_segment* old = take_dirty_locked(budget, now - delay_ns);
  hak_lock_release(&seg_cache_lock);
  return decommit_taken(old);
}

void hak_segment_cache_exchange(size_t mapped) {
  size_t floor = (size_t)HAK_KNOB(segment_cache_dirty_bytes);
  size_t dirty = hak_load_relaxed(&seg_cache_dirty);
  if (dirty <= floor) return;
  size_t keep = dirty - (mapped < dirty - floor ? mapped : dirty - floor);
  hak_lock_take(&seg_cache_lock);
  hak_segment* old = take_dirty_locked(keep, UINT64_MAX);
  hak_lock_release(&seg_cache_lock);
  decommit_taken(old);
}

hak_slab* hak_segment_take_slab(hak_segment* seg, unsigned cls) {
  if (seg->free_slabs == 0) return NULL;
  /* Prefer a slab whose pages are still resident: no page faults, nothing to purge; and
   * among those one that last served this class: its blocks sit where the class's blocks
   * go again, so its resident pages are the ones the class touches (another class's
   * leave pages resident past the new blocks, where a purge never reaches while the
   * slab is in use). A slab keeps its cls while unused, in the cache too. */
  uint32_t dirty = seg->free_slabs & seg->dirty_free;
  unsigned i = (unsigned)__builtin_ctz(dirty ? dirty : seg->free_slabs);
  for (uint32_t d = dirty; d; d &= d - 1) {
    unsigned j = (unsigned)__builtin_ctz(d);
    if (seg->slabs[j].cls == cls) { i = j; break; }
  }
  hak_slab* s = &seg->slabs[i];
  uint8_t* slab_end = slab_area_end(seg, i);
  uint8_t* area_start = slab_area_start(seg, i);
  size_t area = (size_t)(slab_end - area_start);
  if (seg->dirty_free & (1u << i)) HAK_OS_COUNT(unused_dirty_bytes[seg->kind], -(int64_t)area);
  if (seg->purged & (1u << i)) {       /* decommitted by a purge: its pages fault back in */
    seg->purged &= ~(1u << i);
    HAK_OS_COUNT(slab_refault_bytes, area);
  }
  HAK_OS_COUNT(slab_bytes[cls], (int64_t)area);
  seg->free_slabs &= ~(1u << i);
  seg->dirty_free &= ~(1u << i);
  seg->used_slabs++;
  uint32_t bsize = hak_cls_size[cls];
  /* Block 0 on the class's alignment; a slab area starts at least page aligned, and
   * slab 0 is the only one of a tiny or mid segment whose start may move. */
  size_t align = (size_t)bsize & (0 - (size_t)bsize);
  s->start = (uint8_t*)HAK_ALIGN_UP((uintptr_t)area_start, align);
  size_t cap = (size_t)(slab_end - s->start) / bsize;
  HAK_ASSERT(cap >= 1);
  s->cls = (uint16_t)cls;
  s->bsize = bsize;
  s->divmagic = hak_slab_divmagic(bsize);
  s->tc = &hak_load_relaxed(&seg->heap)->tc[cls];   /* the owner takes slabs */
  s->end = s->start + cap * bsize;
  s->free = NULL; s->nfree = 0; s->used = 0;
  s->parked_pages = 0;
  s->next = s->prev = NULL;
  s->pages_clean = false;
  hak_slab_set_bump(s, s->start);
  return s;
}

void hak_segment_give_slab(hak_segment* seg, hak_slab* s) {
  s->state = HAK_SLAB_UNUSED;
  s->free = NULL; s->nfree = 0;
  s->parked_pages = 0;   /* its pages go back with the slab's (purge) */
  hak_slab_set_bump(s, s->start);           /* frees into it now fail validation */
  seg->free_slabs |= 1u << s->idx;
  seg->used_slabs--;
  /* The pages stay resident for now: a slab freed and soon reused costs no page
   * faults. hak_segment_purge returns them once they have stayed unused long enough. */
  s->freed_at = hak_prim_now_ns();
  seg->dirty_free |= 1u << s->idx;
  size_t area = (size_t)(slab_area_end(seg, s->idx) - slab_area_start(seg, s->idx));
  HAK_OS_COUNT(slab_bytes[s->cls], -(int64_t)area);
  HAK_OS_COUNT(unused_dirty_bytes[seg->kind], (int64_t)area);
}

size_t hak_segment_purge(hak_segment* seg, uint64_t now, uint64_t delay_ns) {
  uint32_t dirty = seg->dirty_free & seg->free_slabs;
  uint32_t old = 0;
  for (uint32_t d = dirty; d; d &= d - 1) {
    unsigned i = (unsigned)__builtin_ctz(d);
    if (seg->slabs[i].freed_at + delay_ns <= now) old |= 1u << i;   /* freed_at may be after now */
  }
  size_t bytes = 0;
  seg->dirty_free &= ~old;
  while (old) {
    unsigned i = (unsigned)__builtin_ctz(old);
    old &= old - 1;
    /* Merge runs of adjacent slabs into one madvise call. */
    unsigned j = i;
    while (j + 1 < MAX_SLABS && (old & (1u << (j + 1)))) { j++; old &= ~(1u << j); }
    uint8_t* from = slab_area_start(seg, i);
    uint8_t* to = slab_area_end(seg, j);
    if (!hak_prim_decommit(from, (size_t)(to - from))) {
      HAK_OS_COUNT(os_failures, 1);
      for (unsigned k = i; k <= j; k++) seg->dirty_free |= 1u << k;   /* still resident */
      continue;
    }
    bytes += (size_t)(to - from);
    for (unsigned k = i; k <= j; k++) seg->purged |= 1u << k;
    HAK_OS_COUNT(decommit_calls, 1);
  }
  if (bytes) {
    HAK_OS_COUNT(purge_bytes, bytes);
    HAK_OS_COUNT(decommit_bytes, bytes);
    HAK_OS_COUNT(unused_dirty_bytes[seg->kind], -(int64_t)bytes);
  }
  return bytes;
}

size_t hak_segment_cache_dirty_bytes(void) { return hak_load_relaxed(&seg_cache_dirty); }

void hak_segment_fork_lock(void) { hak_lock_take(&seg_cache_lock); }
void hak_segment_fork_unlock(bool child) {
  if (child) hak_lock_reset(&seg_cache_lock); else hak_lock_release(&seg_cache_lock);
}
