/* large.c — blocks above 1 MiB (and blocks aligned beyond a page): a span of chunks
 * each, chunk-aligned, with the segment header on the first page and the block at
 * `off` = max(4 KiB, alignment). Every chunk of a span is registered to it, so free()
 * validates the pointer by comparing it with header->user. A span is a mapping of its
 * own or part of one: freed spans are split and joined like a page heap's runs.
 *
 * Freed spans go to a cache sized by bytes and time (knobs large_cache_*):
 *   - a freed span joins the cached spans right before and after it in the address
 *     space when they have the same residency (one header, one registry owner), so
 *     the pieces a split made come back together;
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

static size_t large_offset(size_t align) { return align > HAK_PAGE_SIZE ? align : HAK_PAGE_SIZE; }
static size_t large_map_align(size_t align) { return align > HAK_CHUNK_SIZE ? align : HAK_CHUNK_SIZE; }

static void cache_link(hak_segment* seg) {
  seg->prev = NULL;
  seg->next = large_cache;
  if (large_cache) large_cache->prev = seg;
  large_cache = seg;
  large_cache_bytes += seg->size;
  if (!seg->fresh) large_cache_dirty += seg->size;
  large_cache_n++;
}

static void cache_unlink(hak_segment* seg) {
  if (seg->prev) seg->prev->next = seg->next; else large_cache = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  large_cache_bytes -= seg->size;
  if (!seg->fresh) large_cache_dirty -= seg->size;
  large_cache_n--;
}

/* Under the lock: the cached span that ends where `seg` starts (after == false) or
 * starts where it ends (after == true); NULL when there is none. Spans start on a
 * chunk, so the one before ends on a chunk too. */
static hak_segment* cache_neighbour(const hak_segment* seg, bool after) {
  const uint8_t* lo = (const uint8_t*)seg;
  const uint8_t* hi = lo + seg->size;
  for (hak_segment* c = large_cache; c; c = c->next) {
    if (after ? (const uint8_t*)c == hi : (const uint8_t*)c + c->size == lo) return c;
  }
  return NULL;
}

/* `hi`, right after `lo` in the address space and on no list, becomes part of `lo`: its
 * chunks are registered to lo and its header is plain memory from now on. The joined
 * span is resident (not fresh) when either part was; calloc zeroes it up to the end of
 * hi's old data, hi's old header at least. */
static void span_join(hak_segment* lo, hak_segment* hi) {
  hak_seglist_remove(hi);
  hak_registry_set(hi, hi->size, lo);   /* the leaves exist: no allocation, no failure */
  lo->dirty_end = lo->size + hi->dirty_end;         /* at least hi's old header */
  lo->fresh = lo->fresh && hi->fresh;
  lo->size += hi->size;
  if (hi->cached_at > lo->cached_at) lo->cached_at = hi->cached_at;
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

/* `seg` (off the cache, being handed out) keeps its first `keep` bytes (a chunk
 * multiple, less than its size); the rest becomes a cached span of its own with the
 * same age, and the same residency unless `give_back` (then it is decommitted). */
static void span_split(hak_segment* seg, size_t keep, bool give_back) {
  hak_segment* rest = (hak_segment*)((uint8_t*)seg + keep);
  size_t size = seg->size - keep;
  memset(rest, 0, sizeof *rest);
  rest->magic = HAK_SEG_MAGIC;
  rest->kind = HAK_SEG_LARGE;
  rest->slab_shift = 63;
  rest->size = size;
  rest->fresh = seg->fresh;
  rest->dirty_end = seg->dirty_end > keep + HAK_PAGE_SIZE ? seg->dirty_end - keep : HAK_PAGE_SIZE;
  rest->cached_at = seg->cached_at;
  hak_store_relaxed(&rest->state, HAK_SEGST_LARGE_FREE);
  if (give_back && rest->dirty_end > HAK_PAGE_SIZE) {
    if (hak_prim_decommit((uint8_t*)rest + HAK_PAGE_SIZE, rest->dirty_end - HAK_PAGE_SIZE)) {
      HAK_OS_COUNT(decommit_calls, 1);
      HAK_OS_COUNT(decommit_bytes, rest->dirty_end - HAK_PAGE_SIZE);
      rest->dirty_end = HAK_PAGE_SIZE;
    } else {
      HAK_OS_COUNT(os_failures, 1);
    }
  }
  rest->fresh = rest->dirty_end == HAK_PAGE_SIZE;
  hak_registry_set(rest, size, rest);   /* chunks that were seg's: the leaves exist */
  hak_seglist_add(rest);
  seg->size = keep;
  if (seg->dirty_end > keep) seg->dirty_end = keep;
  HAK_OS_COUNT(bytes_cached, (int64_t)size);
  hak_lock_take(&large_lock);
  cache_link_joined(rest);
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
    hak_segment_unmap(seg);
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
  return to;
}

void* hak_large_alloc(size_t size, size_t align, bool zero) {
  size_t off = large_offset(align);
  if (size > PTRDIFF_MAX - off - HAK_CHUNK_SIZE) { errno = ENOMEM; return NULL; }
  /* At least one page past `off`: the block must lie inside the mapping even at size 0. */
  size_t need = HAK_ALIGN_UP(off + (size ? size : 1), HAK_PAGE_SIZE);
  size_t map_align = large_map_align(align);
  size_t dirty = 0;                     /* bytes from the mapping's start that may hold old data */
  bool grow;
  hak_segment* seg = cache_take(need, map_align, &grow);
  if (seg && grow) {
    size_t old_dirty = seg->dirty_end;
    seg = large_grow_cached(seg, need, map_align);
    if (seg) dirty = old_dirty;
  } else if (seg) {
    uint32_t pct = HAK_KNOB(large_reuse_slack_pct);
    size_t slack = reuse_slack(need, pct);
    if (seg->size - need > slack) {   /* the surplus beyond the slack stays cached */
      size_t keep = HAK_ALIGN_UP(need + slack - HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
      if (keep < seg->size && seg->size - keep >= HAK_CHUNK_SIZE) span_split(seg, keep, pct == 0);
    }
    dirty = seg->dirty_end;
  }
  if (!seg) {
    seg = hak_prim_map_aligned(need, map_align);
    if (!seg) { errno = ENOMEM; return NULL; }
    if (!hak_registry_set(seg, need, seg)) { hak_prim_unmap(seg, need); errno = ENOMEM; return NULL; }
    seg->size = need;
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
  hak_store_release(&seg->state, HAK_SEGST_LARGE_LIVE);
  if (zero && dirty > off) memset(seg->user, 0, size < dirty - off ? size : dirty - off);
  HAK_OS_COUNT(large_allocs, 1);
  HAK_OS_COUNT(large_in_use, (int64_t)seg->usable);
  hak_slow_hook_tick_large();
  return seg->user;
}

/* ---- decay -------------------------------------------------------------------------- */

/* The mappings that leave the cache on one pass, handled after the lock is released. */
typedef struct cache_work {
  hak_segment* decommit;    /* to decommit and put back */
  hak_segment* unmap;       /* to unmap */
} cache_work;

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
    if (!y->fresh && y->cached_at >= before) young += y->size;
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
    hak_segment_unmap(seg);
  }
  if (!w->decommit) return 0;
  size_t bytes = 0;
  for (hak_segment* seg = w->decommit; seg; seg = seg->next) {
    seg->fresh = hak_prim_decommit((uint8_t*)seg + HAK_PAGE_SIZE, seg->size - HAK_PAGE_SIZE);
    if (!seg->fresh) { HAK_OS_COUNT(os_failures, 1); continue; }   /* refused: stays dirty */
    seg->dirty_end = HAK_PAGE_SIZE;
    bytes += seg->size - HAK_PAGE_SIZE;
    HAK_OS_COUNT(decommit_calls, 1);
  }
  HAK_OS_COUNT(decommit_bytes, bytes);
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
    hak_segment_unmap(seg);
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
  if (seg->size > (size_t)HAK_KNOB(large_cache_bytes) || HAK_KNOB(large_cache_entries) == 0) {
    hak_segment_unmap(seg);
    return;
  }
  uint64_t now = hak_prim_now_ns(), delay = HAK_KNOB(purge_delay_ns);
  seg->fresh = false;
  seg->dirty_end = seg->size;
  seg->cached_at = now;
  HAK_OS_COUNT(bytes_cached, (int64_t)seg->size);
  cache_work w = {NULL, NULL};
  hak_lock_take(&large_lock);
  hak_churn_add(&freed_churn, now, delay, seg->size);
  cache_link_joined(seg);
  cache_collect(&w, now, delay);
  hak_lock_release(&large_lock);
  cache_finish(&w);
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
