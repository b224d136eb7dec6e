/* large.c — blocks above 1 MiB (and blocks aligned beyond a page): one mapping each,
 * chunk-aligned, with the segment header on the first page and the block at
 * `off` = max(4 KiB, alignment). Every chunk of the mapping is registered, so free()
 * validates the pointer by comparing it with header->user.
 *
 * Freed mappings go to a small cache (knobs large_cache_bytes and _entries); only a
 * quarter of it stays dirty, the rest is decommitted on the way in, and a dirty one is
 * decommitted once it stays unused for the purge delay (hak_large_cache_purge). realloc
 * grows in place with mremap when the address space after the block is free, and
 * otherwise moves the pages (mremap to a fresh aligned mapping) instead of copying. */
#include "alloc/alloc.h"
#include "alloc/knobs.h"
#include "prim/prim.h"
#include "alloc/os_counters.h"

#include <errno.h>
#include <string.h>

static hak_lock large_lock = HAK_LOCK_INIT;
static hak_segment* large_cache;    /* most recent first */
static size_t large_cache_bytes, large_cache_dirty;
static _Atomic unsigned large_cache_n;   /* written under the lock, read without */

static size_t large_offset(size_t align) { return align > HAK_PAGE_SIZE ? align : HAK_PAGE_SIZE; }
static size_t large_map_align(size_t align) { return align > HAK_CHUNK_SIZE ? align : HAK_CHUNK_SIZE; }

static void large_unmap(hak_segment* seg) {
  hak_seglist_remove(seg);
  HAK_OS_COUNT(bytes_mapped, -(int64_t)seg->size);
  hak_registry_set(seg, seg->size, NULL);
  hak_prim_unmap(seg, seg->size);
}

static hak_segment* cache_take(size_t need, size_t map_align) {
  if (hak_load_relaxed(&large_cache_n) == 0) return NULL;
  hak_segment* best = NULL;
  hak_lock_take(&large_lock);
  for (hak_segment* seg = large_cache; seg; seg = seg->next) {
    if (seg->size >= need && seg->size - need <= need / 4 + HAK_CHUNK_SIZE &&
        ((uintptr_t)seg & (map_align - 1)) == 0 && (!best || seg->size < best->size)) {
      best = seg;
    }
  }
  if (best) {
    if (best->prev) best->prev->next = best->next; else large_cache = best->next;
    if (best->next) best->next->prev = best->prev;
    large_cache_bytes -= best->size;
    if (!best->fresh) large_cache_dirty -= best->size;
    large_cache_n--;
  }
  hak_lock_release(&large_lock);
  if (best) {
    HAK_OS_COUNT(large_cache_hits, 1);
    HAK_OS_COUNT(bytes_cached, -(int64_t)best->size);
  }
  return best;
}

void* hak_large_alloc(size_t size, size_t align, bool zero) {
  size_t off = large_offset(align);
  if (size > PTRDIFF_MAX - off - HAK_CHUNK_SIZE) { errno = ENOMEM; return NULL; }
  /* At least one page past `off`: the block must lie inside the mapping even at size 0. */
  size_t need = HAK_ALIGN_UP(off + (size ? size : 1), HAK_PAGE_SIZE);
  size_t map_align = large_map_align(align);
  hak_segment* seg = cache_take(need, map_align);
  bool fresh;
  if (seg) {
    fresh = seg->fresh;    /* decommitted in the cache: reads as zero again */
  } else {
    seg = hak_prim_map_aligned(need, map_align);
    if (!seg) { errno = ENOMEM; return NULL; }
    if (!hak_registry_set(seg, need, seg)) { hak_prim_unmap(seg, need); errno = ENOMEM; return NULL; }
    seg->size = need;
    hak_seglist_add(seg);
    fresh = true;
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
  if (zero && !fresh) memset(seg->user, 0, size);
  HAK_OS_COUNT(large_allocs, 1);
  HAK_OS_COUNT(large_in_use, (int64_t)seg->usable);
  return seg->user;
}

void hak_large_free(hak_segment* seg, void* p, const char* fn) {
  uint8_t live = HAK_SEGST_LARGE_LIVE;
  if (p != seg->user) hak_fatal(fn, "invalid pointer", p);
  if (!atomic_compare_exchange_strong(&seg->state, &live, HAK_SEGST_LARGE_FREE)) {
    hak_fatal(fn, live == HAK_SEGST_LARGE_FREE ? "double free" : "invalid pointer", p);
  }
  HAK_OS_COUNT(large_frees, 1);
  HAK_OS_COUNT(large_in_use, -(int64_t)seg->usable);
  size_t limit = (size_t)HAK_KNOB(large_cache_bytes);
  unsigned max_n = HAK_KNOB(large_cache_entries);
  if (seg->size > limit || max_n == 0) { large_unmap(seg); return; }
  /* Decide dirty-or-decommitted before the mapping becomes visible in the cache. */
  hak_lock_take(&large_lock);
  bool decommit = large_cache_dirty + seg->size > limit / 4;
  hak_lock_release(&large_lock);
  if (decommit && !hak_prim_decommit((uint8_t*)seg + HAK_PAGE_SIZE, seg->size - HAK_PAGE_SIZE)) {
    HAK_OS_COUNT(os_failures, 1);     /* refused: cached dirty */
    decommit = false;
  }
  seg->fresh = decommit;
  if (decommit) { HAK_OS_COUNT(decommit_calls, 1); HAK_OS_COUNT(decommit_bytes, seg->size - HAK_PAGE_SIZE); }
  HAK_OS_COUNT(bytes_cached, (int64_t)seg->size);
  hak_segment* evict = NULL;
  hak_lock_take(&large_lock);
  seg->cached_at = hak_prim_now_ns();
  seg->prev = NULL;
  seg->next = large_cache;
  if (large_cache) large_cache->prev = seg;
  large_cache = seg;
  large_cache_bytes += seg->size;
  if (!decommit) large_cache_dirty += seg->size;
  large_cache_n++;
  /* Evict from the tail (oldest) while over budget; unmap outside the lock. */
  while (large_cache_n > max_n || large_cache_bytes > limit) {
    hak_segment* old = large_cache;
    while (old->next) old = old->next;
    if (old->prev) old->prev->next = NULL; else large_cache = NULL;
    large_cache_bytes -= old->size;
    if (!old->fresh) large_cache_dirty -= old->size;
    large_cache_n--;
    old->next = evict;
    evict = old;
    HAK_OS_COUNT(bytes_cached, -(int64_t)old->size);
  }
  hak_lock_release(&large_lock);
  while (evict) { hak_segment* n = evict->next; large_unmap(evict); evict = n; }
}

void* hak_large_realloc(hak_segment* seg, void* p, size_t size) {
  size_t off = large_offset(seg->align);
  size_t need = HAK_ALIGN_UP(off + size, HAK_PAGE_SIZE);
  if (size <= seg->usable) {
    if (seg->size - need >= HAK_CHUNK_SIZE) {     /* give a large tail back */
      HAK_OS_COUNT(bytes_mapped, -(int64_t)(seg->size - need));
      HAK_OS_COUNT(large_in_use, -(int64_t)(seg->usable - (need - off)));
      hak_registry_set(seg, seg->size, NULL);
      hak_prim_unmap((uint8_t*)seg + need, seg->size - need);
      seg->size = need;
      seg->usable = need - off;
      hak_registry_set(seg, need, seg);
    }
    return p;
  }
  /* Grow with 1/8 headroom so that a run of small growths stays in place. */
  size_t want = need + HAK_ALIGN_UP(need / 8, HAK_PAGE_SIZE);
  if (want < need) want = need;
  for (int attempt = 0; attempt < 2; attempt++) {
    size_t target = attempt == 0 ? want : need;
    if (hak_prim_grow_in_place(seg, seg->size, target)) {
      if (!hak_registry_set(seg, target, seg)) {
        hak_prim_unmap((uint8_t*)seg + seg->size, target - seg->size);
        return NULL;
      }
      HAK_OS_COUNT(bytes_mapped, (int64_t)(target - seg->size));
      HAK_OS_COUNT(large_in_use, (int64_t)(target - off - seg->usable));
      HAK_OS_COUNT(large_grow_in_place, 1);
      seg->size = target;
      seg->usable = target - off;
      return p;
    }
  }
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
  hak_seglist_add(to);
  to->size = want;
  to->user = (uint8_t*)to + off;
  to->usable = want - off;
  return to->user;
}

size_t hak_large_cache_purge(uint64_t now, uint64_t delay_ns) {
  if (hak_load_relaxed(&large_cache_n) == 0) return 0;
  if (pthread_mutex_trylock(&large_lock.m) != 0) return 0;   /* someone else is at it */
  /* Take the old dirty mappings out, decommit them unlocked, put them back clean. */
  hak_segment* old = NULL;
  for (hak_segment* seg = large_cache; seg;) {
    hak_segment* next = seg->next;
    if (!seg->fresh && seg->cached_at + delay_ns <= now) {
      if (seg->prev) seg->prev->next = seg->next; else large_cache = seg->next;
      if (seg->next) seg->next->prev = seg->prev;
      large_cache_bytes -= seg->size;
      large_cache_dirty -= seg->size;
      large_cache_n--;
      seg->next = old;
      old = seg;
    }
    seg = next;
  }
  hak_lock_release(&large_lock);
  size_t bytes = 0;
  for (hak_segment* seg = old; seg; seg = seg->next) {
    seg->fresh = hak_prim_decommit((uint8_t*)seg + HAK_PAGE_SIZE, seg->size - HAK_PAGE_SIZE);
    if (!seg->fresh) { HAK_OS_COUNT(os_failures, 1); continue; }
    bytes += seg->size - HAK_PAGE_SIZE;
    HAK_OS_COUNT(decommit_calls, 1);
  }
  if (!old) return 0;
  HAK_OS_COUNT(decommit_bytes, bytes);
  HAK_OS_COUNT(purge_bytes, bytes);
  hak_lock_take(&large_lock);
  while (old) {     /* back at the tail: they are the oldest */
    hak_segment* seg = old;
    old = old->next;
    seg->next = NULL;
    hak_segment** tail = &large_cache;
    hak_segment* prev = NULL;
    while (*tail) { prev = *tail; tail = &(*tail)->next; }
    seg->prev = prev;
    *tail = seg;
    large_cache_bytes += seg->size;
    if (!seg->fresh) large_cache_dirty += seg->size;   /* refused: still dirty */
    large_cache_n++;
  }
  hak_lock_release(&large_lock);
  return bytes;
}

size_t hak_large_cache_dirty_bytes(void) {
  hak_lock_take(&large_lock);
  size_t n = large_cache_dirty;
  hak_lock_release(&large_lock);
  return n;
}

void hak_large_fork_lock(void) { hak_lock_take(&large_lock); }
void hak_large_fork_unlock(bool child) {
  if (child) hak_lock_reset(&large_lock); else hak_lock_release(&large_lock);
}
