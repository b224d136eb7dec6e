/* large.c — blocks above 1 MiB (and blocks aligned beyond a page): a span of chunks
 * each, chunk-aligned, with the segment header on the first page and the block at
 * `off` = max(4 KiB, alignment). Every chunk of a span is registered to it, so free()
 * validates the pointer by comparing it with header->user. A span is a mapping of its
 * own or part of one: freed spans are split and joined like a page heap's runs.
 *
 * Freed spans go to a cache sized by bytes and time (knobs large_cache_*):
 *   - a freed span joins the cached pieces of its mapping right before and after it
 *     (one header, one registry owner), whatever their residency: each span keeps the
 *     one range where old data may lie, so calloc zeroes only that and the resident
 *     bytes are counted as they are. Pieces of different mappings stay apart (the
 *     kernel may keep them as two mappings, which mremap refuses to treat as one);
 *   - it stays resident (dirty) for the purge delay; after that it stays only within
 *     the dirty budget, the oldest beyond it decommitted first. The budget follows the
 *     program's recent churn: the bytes of large blocks freed in the current and the
 *     previous purge-delay window, plus those of the windows before weighted down
 *     linearly over HAK_CHURN_WINDOWS windows, at most the knob large_cache_dirty_bytes
 *     (which also bounds the young spans). A steady replacer keeps its spans resident;
 *     when the frees stop, the budget falls linearly to nothing over HAK_CHURN_WINDOWS
 *     + 1 purge delays, so the memory goes back smoothly rather than at once;
 *   - a decommitted span unused for the purge delay plus large_cache_unmap_delay_ms is
 *     unmapped; beyond large_cache_entries or large_cache_bytes the oldest is unmapped.
 *     Unmapping a piece splits the kernel's mapping, which it refuses at
 *     vm.max_map_count: the span then stays cached, decommitted.
 * Decay runs on every large free and from the sweeps and scavenger (purge).
 *
 * Reuse (cache_take): the smallest cached span that holds the request, resident ones
 * first. Its surplus stays with the block while it is at most large_reuse_slack_pct of
 * the request plus a chunk; beyond that the span is split at the chunk boundary after
 * the request plus the slack (when a chunk or more is left), and the rest stays cached as a span of its own (resident
 * pages and all: the next request of that size takes it without faults). A slack of 0
 * (ACE sets it when RSS is above its target) decommits that rest instead. When no
 * cached span is big enough, the largest resident one smaller than the request is
 * grown (mremap in place, else moved to a new aligned place without copying), so only
 * the difference is faulted in. calloc zeroes only the part of the block that may hold
 * old data; pages never touched or decommitted read as zero.
 *
 * realloc grows in place with mremap when the address space after the block is free,
 * or by taking the cached span that follows it, and otherwise moves the pages (mremap
 * to a fresh aligned mapping) instead of copying; it shrinks in place, unmapping a tail
 * of a chunk or more. */
#include "alloc/alloc.h"
#include "alloc/knobs.h"
#include "alloc/churn.h"
#include "prim/prim.h"
#include "alloc/os_counters.h"

#include <errno.h>
#include <string.h>

/* The cache: at most large_cache_entries (<= 64) spans, unordered, scanned under the
 * lock. A span being decommitted, unmapped or handed out is off the list meanwhile. */
static hak_lock large_lock = HAK_LOCK_INIT;
static hak_segment* large_cache;
static size_t large_cache_bytes, large_cache_dirty;
static _Atomic unsigned large_cache_n;   /* written under the lock, read without */
/* Bytes of large blocks freed per purge-delay window, for the dirty budget; under the
 * lock. */
static hak_churn freed_churn;

/* The spans that leave the cache on one pass, handled after the lock is released. */
typedef struct cache_work {
  hak_segment* decommit;    /* to decommit and put back */
  hak_segment* unmap;       /* to unmap */
} cache_work;

static size_t large_offset(size_t align) { return align > HAK_PAGE_SIZE ? align : HAK_PAGE_SIZE; }
static size_t large_map_align(size_t align) { return align > HAK_CHUNK_SIZE ? align : HAK_CHUNK_SIZE; }

/* Where old data may lie in a span: [lo, hi) (empty: 0, 0, and the span is fresh). */
static void span_set_dirty(hak_segment* seg, size_t lo, size_t hi) {
  if (lo >= hi) lo = hi = 0;
  seg->dirty_lo = lo;
  seg->dirty_hi = hi;
  seg->fresh = hi == 0;
}
static size_t span_dirty(const hak_segment* seg) { return seg->dirty_hi - seg->dirty_lo; }

/* Transparent huge pages (knob huge_pages) for the first `len` bytes of a span, or
 * (len 0) none in all of it. A block is advised over the 2 MiB ranges that lie inside
 * it (huge_len): a range it only begins would bring up to 2 MiB past its end into RSS
 * at its first touch (large_replace: 362 -> 427 MiB peak). A span whose pages go back
 * loses the advice: khugepaged would otherwise collapse the 511 empty pages around its
 * resident header page into a huge page again. */
static size_t huge_len(size_t off, size_t size) { return HAK_ALIGN_DOWN(off + size, HAK_CHUNK_SIZE); }
static void span_huge(hak_segment* seg, size_t len) {
  if (seg->huge == (len != 0)) return;
  if (len == 0) {
    hak_prim_huge(seg, seg->size, false);
    seg->huge = false;
  } else {
    seg->huge = hak_prim_huge(seg, len, true);
  }
}

/* Give back the pages of a span (on no list) that may hold old data; it is fresh then.
 * Returns the bytes decommitted, 0 when there were none or the kernel refused (counted). */
static size_t span_decommit(hak_segment* seg) {
  size_t n = span_dirty(seg);
  if (n == 0) return 0;
  if (!hak_prim_decommit((uint8_t*)seg + seg->dirty_lo, n)) {
    HAK_OS_COUNT(os_failures, 1);       /* refused: stays dirty */
    return 0;
  }
  span_set_dirty(seg, 0, 0);
  span_huge(seg, 0);
  HAK_OS_COUNT(decommit_calls, 1);
  HAK_OS_COUNT(decommit_bytes, n);
  return n;
}

static void cache_link(hak_segment* seg) {
  seg->prev = NULL;
  seg->next = large_cache;
  if (large_cache) large_cache->prev = seg;
  large_cache = seg;
  large_cache_bytes += seg->size;
  large_cache_dirty += span_dirty(seg);
  large_cache_n++;
}

static void cache_unlink(hak_segment* seg) {
  if (seg->prev) seg->prev->next = seg->next; else large_cache = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  large_cache_bytes -= seg->size;
  large_cache_dirty -= span_dirty(seg);
  large_cache_n--;
}

/* Under the lock: the cached piece of the same mapping that ends where `seg` starts
 * (after == false) or starts where it ends (after == true); NULL when there is none.
 * Spans start on a chunk, so the one before ends on a chunk too. Pieces of different
 * mappings are not joined: the kernel may keep them apart (two VMAs), and mremap
 * refuses a range over two (EFAULT; a kernel may unmap the target before it checks). */
static hak_segment* cache_neighbour(const hak_segment* seg, bool after) {
  const uint8_t* lo = (const uint8_t*)seg;
  const uint8_t* hi = lo + seg->size;
  for (hak_segment* c = large_cache; c; c = c->next) {
    if (c->origin != seg->origin) continue;
    if (after ? (const uint8_t*)c == hi : (const uint8_t*)c + c->size == lo) return c;
  }
  return NULL;
}

/* `hi`, right after `lo` in the address space and on no list, becomes part of `lo`: its
 * chunks are registered to lo and its header page holds zeros from now on. Old data
 * may lie anywhere from lo's to the end of hi's (one range: the clean gap between them,
 * if any, is zeroed again by calloc); the age is the byte-weighted mean, so a span
 * freed now does not make an old neighbour young. */
static void span_join(hak_segment* lo, hak_segment* hi) {
  hak_seglist_remove(hi);
  hak_registry_set(hi, hi->size, lo);   /* the leaves exist: no allocation, no failure */
  size_t at = lo->size;
  size_t dlo = lo->dirty_hi ? lo->dirty_lo : at + hi->dirty_lo;
  size_t dhi = hi->dirty_hi ? at + hi->dirty_hi : lo->dirty_hi;
  unsigned __int128 age = (unsigned __int128)lo->cached_at * lo->size + (unsigned __int128)hi->cached_at * hi->size;
  size_t hsize = hi->size;
  lo->huge |= hi->huge;                 /* advice on part of it: dropped whole on decommit */
  memset(hi, 0, sizeof *hi);            /* no stale header inside lo */
  lo->size += hsize;
  lo->cached_at = (uint64_t)(age / lo->size);
  span_set_dirty(lo, dlo, dhi);
}

/* Under the lock: put `seg` (on no list) into the cache, joined with the cached spans
 * around it. */
static void cache_link_joined(hak_segment* seg) {
  hak_segment* n = cache_neighbour(seg, true);
  if (n) { cache_unlink(n); span_join(seg, n); }
  n = cache_neighbour(seg, false);
  if (n) { cache_unlink(n); span_join(n, seg); seg = n; }
  cache_link(seg);
}

static void cache_collect(cache_work* w, uint64_t now, uint64_t delay);
static size_t cache_finish(cache_work* w);

/* Put `seg` (a span nobody holds, on no list) into the cache, joined with its
 * neighbours, and apply the cache's limits and decay; `freed` bytes of a large free
 * count toward the churn that sets the dirty budget. */
static void cache_insert(hak_segment* seg, uint64_t now, size_t freed) {
  uint64_t delay = HAK_KNOB(purge_delay_ns);
  HAK_OS_COUNT(bytes_cached, (int64_t)seg->size);
  cache_work w = {NULL, NULL};
  hak_lock_take(&large_lock);
  if (freed) hak_churn_add(&freed_churn, now, delay, freed);
  cache_link_joined(seg);
  cache_collect(&w, now, delay);
  hak_lock_release(&large_lock);
  cache_finish(&w);
}

/* `seg` (off the cache, being handed out) keeps its first `keep` bytes (a chunk
 * multiple, less than its size); the rest becomes a cached span of its own with the
 * same age and origin, and the same residency unless `give_back` (then it is
 * decommitted). The cache's limits apply at once, as after a free. */
static void span_split(hak_segment* seg, size_t keep, bool give_back) {
  hak_segment* rest = (hak_segment*)((uint8_t*)seg + keep);
  size_t size = seg->size - keep;
  size_t dlo = seg->dirty_lo > keep ? seg->dirty_lo - keep : 0;
  size_t dhi = seg->dirty_hi > keep ? seg->dirty_hi - keep : 0;
  /* The rest's header page holds its header and zeros, like every span's. */
  memset(rest, 0, dlo < HAK_PAGE_SIZE && dhi > 0 ? HAK_PAGE_SIZE : sizeof *rest);
  rest->magic = HAK_SEG_MAGIC;
  rest->kind = HAK_SEG_LARGE;
  rest->slab_shift = 63;
  rest->size = size;
  rest->origin = seg->origin;
  rest->cached_at = seg->cached_at;
  rest->huge = seg->huge;
  hak_store_relaxed(&rest->state, HAK_SEGST_LARGE_FREE);
  span_set_dirty(rest, dlo > HAK_PAGE_SIZE ? dlo : HAK_PAGE_SIZE, dhi);
  if (give_back) span_decommit(rest);
  hak_registry_set(rest, size, rest);   /* chunks that were seg's: the leaves exist */
  hak_seglist_add(rest);
  seg->size = keep;
  span_set_dirty(seg, seg->dirty_lo, seg->dirty_hi < keep ? seg->dirty_hi : keep);
  cache_insert(rest, hak_prim_now_ns(), 0);
}

/* Unmap a span that is nobody's block and on no list but the list of all segments. A
 * piece of a mapping is unmapped by splitting the kernel's mapping, which fails at
 * vm.max_map_count: the span is then decommitted and cached (fresh) instead of lost. */
static void span_unmap(hak_segment* seg) {
  size_t size = seg->size;              /* the header goes with the mapping */
  hak_seglist_remove(seg);
  hak_registry_set(seg, size, NULL);
  if (hak_prim_unmap(seg, size)) {
    HAK_OS_COUNT(bytes_mapped, -(int64_t)size);
    return;
  }
  HAK_OS_COUNT(os_failures, 1);
  span_decommit(seg);
  hak_registry_set(seg, seg->size, seg);
  hak_seglist_add(seg);
  seg->cached_at = hak_prim_now_ns();
  HAK_OS_COUNT(bytes_cached, (int64_t)seg->size);
  hak_lock_take(&large_lock);
  cache_link(seg);
  hak_lock_release(&large_lock);
}

/* Surplus a reused mapping may keep: slack_pct of the request plus a chunk. */
static size_t reuse_slack(size_t need, uint32_t pct) {
  unsigned __int128 s = (unsigned __int128)need * pct / 100 + HAK_CHUNK_SIZE;
  return s > SIZE_MAX ? SIZE_MAX : (size_t)s;
}

/* A cached mapping for `need` bytes at `map_align`: the smallest that holds it,
 * resident ones first (*grow false); else the largest resident one smaller than `need`
 * (*grow true), for the caller to grow. NULL when neither is cached. */
static hak_segment* cache_take(size_t need, size_t map_align, bool* grow) {
  if (hak_load_relaxed(&large_cache_n) == 0) return NULL;
  hak_segment *fit = NULL, *donor = NULL;
  hak_lock_take(&large_lock);
  for (hak_segment* seg = large_cache; seg; seg = seg->next) {
    if (((uintptr_t)seg & (map_align - 1)) != 0) continue;
    if (seg->size >= need) {
      if (!fit || (fit->fresh && !seg->fresh) || (fit->fresh == seg->fresh && seg->size < fit->size)) fit = seg;
    } else if (!seg->fresh && (!donor || seg->size > donor->size)) {
      donor = seg;
    }
  }
  hak_segment* got = fit ? fit : donor;
  if (got) cache_unlink(got);
  hak_lock_release(&large_lock);
  if (got) {
    HAK_OS_COUNT(large_cache_hits, 1);
    HAK_OS_COUNT(bytes_cached, -(int64_t)got->size);
  }
  *grow = !fit;
  return got;
}

/* A mapping cache_take handed out and the caller could not use: back into the cache as
 * it was (an allocation that fails must not cost the cache its memory). */
static void cache_return(hak_segment* seg) {
  HAK_OS_COUNT(bytes_cached, (int64_t)seg->size);
  hak_lock_take(&large_lock);
  cache_link_joined(seg);
  hak_lock_release(&large_lock);
}

/* Grow the cached mapping `seg` (off every list but the list of all segments) to `need`
 * bytes: in place, else moved to a new aligned mapping. Returns the mapping (seg or
 * its new place), or NULL when neither worked (seg is then back in the cache, or
 * unmapped when the move failed half way). */
static hak_segment* large_grow_cached(hak_segment* seg, size_t need, size_t map_align) {
  size_t old = seg->size;
  if (hak_prim_grow_in_place(seg, old, need)) {
    if (hak_registry_set(seg, need, seg)) {
      HAK_OS_COUNT(bytes_mapped, (int64_t)(need - old));
      seg->size = need;
      return seg;
    }
    hak_prim_unmap((uint8_t*)seg + old, need - old);
    span_unmap(seg);
    return NULL;
  }
  hak_segment* to = hak_prim_map_aligned(need, map_align);
  if (to && !hak_registry_set(to, need, to)) { hak_prim_unmap(to, need); to = NULL; }
  if (!to) { cache_return(seg); return NULL; }
  hak_registry_set(seg, old, NULL);
  hak_seglist_remove(seg);              /* the header moves with the pages */
  if (!hak_prim_move(seg, old, to, need)) {
    hak_registry_set(to, need, NULL);
    hak_prim_unmap(to, need);
    HAK_OS_COUNT(bytes_mapped, -(int64_t)old);
    hak_prim_unmap(seg, old);
    return NULL;
  }
  hak_seglist_add(to);
  HAK_OS_COUNT(bytes_mapped, (int64_t)(need - old));
  to->size = need;
  to->origin = (uintptr_t)to;           /* a mapping of its own now */
  return to;
}

void* hak_large_alloc(size_t size, size_t align, bool zero) {
  size_t off = large_offset(align);
  if (size > PTRDIFF_MAX - off - HAK_CHUNK_SIZE) { errno = ENOMEM; return NULL; }
  /* At least one page past `off`: the block must lie inside the mapping even at size 0. */
  size_t need = HAK_ALIGN_UP(off + (size ? size : 1), HAK_PAGE_SIZE);
  size_t map_align = large_map_align(align);
  size_t hlen = huge_len(off, size);    /* what huge pages would cover (0: none) */
  size_t dlo = 0, dhi = 0;              /* where old data may lie, from the span's start */
  bool grow;
  hak_segment* seg = cache_take(need, map_align, &grow);
  if (seg && grow) {
    size_t old_lo = seg->dirty_lo, old_hi = seg->dirty_hi;
    seg = large_grow_cached(seg, need, map_align);
    if (seg) { dlo = old_lo; dhi = old_hi; }
  } else if (seg) {
    uint32_t pct = HAK_KNOB(large_reuse_slack_pct);
    size_t slack = reuse_slack(need, pct);
    if (seg->size - need > slack) {   /* the surplus beyond the slack stays cached */
      size_t keep = HAK_ALIGN_UP(need + slack - HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
      if (keep < seg->size && seg->size - keep >= HAK_CHUNK_SIZE) span_split(seg, keep, pct == 0);
    }
    dlo = seg->dirty_lo;
    dhi = seg->dirty_hi;
  }
  if (!seg) {
    seg = hak_prim_map_aligned(need, map_align);
    if (!seg) { errno = ENOMEM; return NULL; }
    if (!hak_registry_set(seg, need, seg)) { hak_prim_unmap(seg, need); errno = ENOMEM; return NULL; }
    /* Before the header is written: a 2 MiB range with one 4 KiB page in it already is
     * not served by a huge page on its next fault. */
    bool huge = hlen && HAK_KNOB(huge_pages) && hak_prim_huge(seg, hlen, true);
    hak_segment_cache_exchange(need);
    seg->size = need;
    seg->origin = (uintptr_t)seg;
    seg->huge = huge;
    hak_seglist_add(seg);
    HAK_OS_COUNT(bytes_mapped, (int64_t)need);
  }
  seg->magic = HAK_SEG_MAGIC;
  seg->kind = HAK_SEG_LARGE;
  seg->nslabs = 0;
  seg->slab_shift = 63;
  hak_store_relaxed(&seg->heap, NULL);
  seg->user = (uint8_t*)seg + off;
  seg->usable = seg->size - off;
  seg->align = align;
  seg->fresh = false;
  seg->next = seg->prev = NULL;
  /* Pages this block will fault in: huge pages when the knob says so (from the start:
   * advice after the first touch only helps once khugepaged passes). */
  size_t resident = dhi > dlo ? dhi - dlo : 0;
  if (seg->size > resident) {
    HAK_OS_COUNT(large_fresh_bytes, seg->size - resident);
    if (HAK_KNOB(huge_pages) && hlen) span_huge(seg, hlen);
  }
  hak_store_release(&seg->state, HAK_SEGST_LARGE_LIVE);
  if (zero) {                           /* zero where old data may lie within the request */
    size_t from = dlo > off ? dlo : off, to = off + size < dhi ? off + size : dhi;
    if (from < to) memset((uint8_t*)seg + from, 0, to - from);
  }
  HAK_OS_COUNT(large_allocs, 1);
  HAK_OS_COUNT(large_in_use, (int64_t)seg->usable);
  hak_slow_hook_tick_large(seg->size > resident);
  return seg->user;
}

/* ---- decay -------------------------------------------------------------------------- */

static void work_push(hak_segment** list, hak_segment* seg) {
  cache_unlink(seg);
  seg->next = *list;
  *list = seg;
}

/* The oldest cached mapping, or NULL. */
static hak_segment* cache_oldest(void) {
  hak_segment* old = NULL;
  for (hak_segment* seg = large_cache; seg; seg = seg->next) {
    if (!old || seg->cached_at < old->cached_at) old = seg;
  }
  return old;
}

/* The dirty budget for mappings older than the purge delay (churn.h), at most the knob. */
static size_t dirty_budget(void) { return hak_churn_budget(&freed_churn, (size_t)HAK_KNOB(large_cache_dirty_bytes)); }

/* The oldest resident mapping cached before `before` (any age: UINT64_MAX), or NULL. */
static hak_segment* cache_oldest_dirty(uint64_t before) {
  hak_segment* old = NULL;
  for (hak_segment* seg = large_cache; seg; seg = seg->next) {
    if (seg->fresh || seg->cached_at >= before) continue;
    if (!old || seg->cached_at < old->cached_at) old = seg;
  }
  return old;
}

/* Under the lock: move what decays now from the cache to `w`. A purge delay of 0
 * (malloc_trim) decommits every resident mapping. */
static void cache_collect(cache_work* w, uint64_t now, uint64_t delay) {
  uint64_t unmap_delay = HAK_KNOB(large_cache_unmap_delay_ns);
  hak_churn_advance(&freed_churn, now, HAK_KNOB(purge_delay_ns));
  for (hak_segment* seg = large_cache; seg;) {
    hak_segment* next = seg->next;
    if (seg->fresh && seg->cached_at + delay + unmap_delay <= now) work_push(&w->unmap, seg);
    seg = next;
  }
  hak_segment* seg;
  size_t cap = (size_t)HAK_KNOB(large_cache_dirty_bytes);
  while (large_cache_dirty > cap && (seg = cache_oldest_dirty(UINT64_MAX))) work_push(&w->decommit, seg);
  /* Past the purge delay a mapping stays resident only within the budget. */
  size_t budget = delay ? dirty_budget() : 0, young = 0;
  uint64_t before = now >= delay ? now - delay + 1 : 0;
  for (hak_segment* y = large_cache; y; y = y->next) {
    if (y->cached_at >= before) young += span_dirty(y);
  }
  while (large_cache_dirty - young > budget && (seg = cache_oldest_dirty(before))) work_push(&w->decommit, seg);
  size_t limit = (size_t)HAK_KNOB(large_cache_bytes);
  unsigned max_n = HAK_KNOB(large_cache_entries);
  while ((large_cache_n > max_n || large_cache_bytes > limit) && (seg = cache_oldest())) {
    work_push(&w->unmap, seg);
  }
}

/* Without the lock: unmap and decommit what cache_collect took out, then put the
 * decommitted mappings back (unless the cache filled up meanwhile). Returns the bytes
 * decommitted. */
static size_t cache_finish(cache_work* w) {
  while (w->unmap) {
    hak_segment* seg = w->unmap;
    w->unmap = seg->next;
    HAK_OS_COUNT(bytes_cached, -(int64_t)seg->size);
    span_unmap(seg);
  }
  if (!w->decommit) return 0;
  size_t bytes = 0;
  for (hak_segment* seg = w->decommit; seg; seg = seg->next) bytes += span_decommit(seg);
  HAK_OS_COUNT(purge_bytes, bytes);
  size_t limit = (size_t)HAK_KNOB(large_cache_bytes);
  unsigned max_n = HAK_KNOB(large_cache_entries);
  hak_segment* drop = NULL;
  hak_lock_take(&large_lock);
  while (w->decommit) {
    hak_segment* seg = w->decommit;
    w->decommit = seg->next;
    if (large_cache_n >= max_n || large_cache_bytes + seg->size > limit) { seg->next = drop; drop = seg; continue; }
    cache_link_joined(seg);
  }
  hak_lock_release(&large_lock);
  while (drop) {
    hak_segment* seg = drop;
    drop = seg->next;
    HAK_OS_COUNT(bytes_cached, -(int64_t)seg->size);
    span_unmap(seg);
  }
  return bytes;
}

void hak_large_free(hak_segment* seg, void* p, const char* fn) {
  uint8_t live = HAK_SEGST_LARGE_LIVE;
  if (p != seg->user) hak_fatal(fn, "invalid pointer", p);
  if (!atomic_compare_exchange_strong(&seg->state, &live, HAK_SEGST_LARGE_FREE)) {
    hak_fatal(fn, live == HAK_SEGST_LARGE_FREE ? "double free" : "invalid pointer", p);
  }
  HAK_OS_COUNT(large_frees, 1);
  HAK_OS_COUNT(large_in_use, -(int64_t)seg->usable);
  span_set_dirty(seg, HAK_PAGE_SIZE, seg->size);   /* the header page holds only the header */
  if (seg->size > (size_t)HAK_KNOB(large_cache_bytes) || HAK_KNOB(large_cache_entries) == 0) {
    span_unmap(seg);
    return;
  }
  uint64_t now = hak_prim_now_ns();
  seg->cached_at = now;
  cache_insert(seg, now, seg->size);
}

/* The live block `seg` grows to `need` bytes (`want` when that fits too) by taking the
 * cached span right after it, whatever its residency; what is left beyond `want`'s
 * chunk stays cached. False when no such span is cached or it is too small. */
static bool grow_into_cached(hak_segment* seg, size_t need, size_t want) {
  if (hak_load_relaxed(&large_cache_n) == 0) return false;
  hak_lock_take(&large_lock);
  hak_segment* n = cache_neighbour(seg, true);
  if (!n || seg->size + n->size < need) {
    hak_lock_release(&large_lock);
    return false;
  }
  cache_unlink(n);
  size_t took = n->size;
  span_set_dirty(seg, HAK_PAGE_SIZE, seg->size);   /* the block's own bytes: anything */
  span_join(seg, n);
  hak_lock_release(&large_lock);
  HAK_OS_COUNT(bytes_cached, -(int64_t)took);
  size_t keep = HAK_ALIGN_UP(want < seg->size ? want : need, HAK_CHUNK_SIZE);
  if (keep < seg->size && seg->size - keep >= HAK_CHUNK_SIZE) span_split(seg, keep, false);
  size_t off = seg->user - (uint8_t*)seg;
  HAK_OS_COUNT(large_in_use, (int64_t)(seg->size - off - seg->usable));
  HAK_OS_COUNT(large_grow_in_place, 1);
  HAK_OS_COUNT(large_cache_hits, 1);
  seg->usable = seg->size - off;
  return true;
}

bool hak_large_grow_in_place(hak_segment* seg, size_t size) {
  size_t off = large_offset(seg->align);
  if (size > PTRDIFF_MAX - off - HAK_CHUNK_SIZE) return false;
  size_t need = HAK_ALIGN_UP(off + size, HAK_PAGE_SIZE);
  /* 1/8 headroom first, so that a run of small growths stays in place. */
  size_t want = need + HAK_ALIGN_UP(need / 8, HAK_PAGE_SIZE);
  if (want < need) want = need;
  if (grow_into_cached(seg, need, want)) return true;
  for (int attempt = 0; attempt < 2; attempt++) {
    size_t target = attempt == 0 ? want : need;
    if (hak_prim_grow_in_place(seg, seg->size, target)) {
      if (!hak_registry_set(seg, target, seg)) {   /* no memory for the registry */
        hak_registry_set((uint8_t*)seg + seg->size, target - seg->size, NULL);
        hak_prim_unmap((uint8_t*)seg + seg->size, target - seg->size);
        return false;
      }
      HAK_OS_COUNT(bytes_mapped, (int64_t)(target - seg->size));
      HAK_OS_COUNT(large_in_use, (int64_t)(target - off - seg->usable));
      HAK_OS_COUNT(large_grow_in_place, 1);
      seg->size = target;
      seg->usable = target - off;
      return true;
    }
  }
  return false;
}

void* hak_large_realloc(hak_segment* seg, void* p, size_t size, unsigned* outcome) {
  size_t off = large_offset(seg->align);
  size_t need = HAK_ALIGN_UP(off + size, HAK_PAGE_SIZE);
  if (size <= seg->usable) {
    *outcome = HAK_RE_IN_PLACE;
    if (seg->size - need >= HAK_CHUNK_SIZE) {     /* give a large tail back */
      hak_registry_set(seg, seg->size, NULL);
      if (hak_prim_unmap((uint8_t*)seg + need, seg->size - need)) {
        HAK_OS_COUNT(bytes_mapped, -(int64_t)(seg->size - need));
        HAK_OS_COUNT(large_in_use, -(int64_t)(seg->usable - (need - off)));
        seg->size = need;
        seg->usable = need - off;
        *outcome = HAK_RE_SHRUNK;
      } else {
        HAK_OS_COUNT(os_failures, 1);          /* refused: the block keeps its tail */
      }
      hak_registry_set(seg, seg->size, seg);
    }
    return p;
  }
  if (hak_large_grow_in_place(seg, size)) {
    *outcome = HAK_RE_GROWN;
    return p;
  }
  size_t want = need + HAK_ALIGN_UP(need / 8, HAK_PAGE_SIZE);
  if (want < need) want = need;
  /* Move the pages to a new chunk-aligned place without copying them. */
  size_t map_align = large_map_align(seg->align);
  hak_segment* to = hak_prim_map_aligned(want, map_align);
  if (!to) return NULL;
  if (!hak_registry_set(to, want, to)) { hak_prim_unmap(to, want); return NULL; }
  size_t old_size = seg->size;
  hak_registry_set(seg, old_size, NULL);
  hak_seglist_remove(seg);              /* the header moves with the pages */
  if (!hak_prim_move(seg, old_size, to, want)) {
    hak_seglist_add(seg);
    hak_registry_set(seg, old_size, seg);
    hak_registry_set(to, want, NULL);
    hak_prim_unmap(to, want);
    return NULL;
  }
  HAK_OS_COUNT(bytes_mapped, (int64_t)(want - old_size));
  HAK_OS_COUNT(large_in_use, (int64_t)(want - off - to->usable));
  HAK_OS_COUNT(large_moved, 1);
  *outcome = HAK_RE_MREMAP;
  hak_seglist_add(to);
  to->size = want;
  to->user = (uint8_t*)to + off;
  to->usable = want - off;
  return to->user;
}

size_t hak_large_cache_purge(uint64_t now, uint64_t delay_ns) {
  if (hak_load_relaxed(&large_cache_n) == 0) return 0;
  if (pthread_mutex_trylock(&large_lock.m) != 0) return 0;   /* someone else is at it */
  cache_work w = {NULL, NULL};
  cache_collect(&w, now, delay_ns);
  hak_lock_release(&large_lock);
  return cache_finish(&w);
}

size_t hak_large_cache_dirty_bytes(void) {
  hak_lock_take(&large_lock);
  size_t n = large_cache_dirty;
  hak_lock_release(&large_lock);
  return n;
}

void hak_large_cache_usage(size_t* bytes, size_t* dirty, unsigned* entries) {
  hak_lock_take(&large_lock);
  *bytes = large_cache_bytes;
  *dirty = large_cache_dirty;
  *entries = hak_load_relaxed(&large_cache_n);
  hak_lock_release(&large_lock);
}

void hak_large_fork_lock(void) { hak_lock_take(&large_lock); }
void hak_large_fork_unlock(bool child) {
  if (child) hak_lock_reset(&large_lock); else hak_lock_release(&large_lock);
}
