/* release.c — giving memory that holds no block back to the OS, from any thread: the
 * scavenger's and malloc_trim's way into every heap, not only the caller's own.
 *
 * A walk visits segments of the list of all segments (seglist.c), each pinned while it
 * is visited, and works on a segment under the lock its state names:
 *   owned      the owning heap's lock, taken with trylock (a heap whose owner is in a
 *              slow path is skipped this time); then as the owner's own sweep would:
 *              remote frees drained, slabs empty for the purge delay given back,
 *              unused slabs decommitted, pages inside free blocks released. Segments
 *              stay with their heap (h->hold_segments): unmapping one would wait for
 *              the very pin the walk holds.
 *   abandoned  the abandoned-list lock (trylock), the same work (heap.c).
 *   cached     the cache purges (segment and large caches), once per walk.
 *   large      nothing: a live large block is all in use.
 * The thread caches (TLS lists) of a heap whose lists and slow paths have not moved
 * for the delay are cut to two blocks per class (tc_trim.c) before its pages go back. */
#include "alloc/release.h"
#include "alloc/knobs.h"
#include "alloc/slab.h"

static size_t release_owned(hak_segment* seg, uint64_t now, uint64_t delay, unsigned min_pages,
                            bool small, uint64_t deadline, bool* busy) {
  hak_heap* h = hak_load_acquire(&seg->heap);
  if (!h) return 0;
  if (!hak_spin_try(&h->lock)) { *busy = true; return 0; }
  size_t bytes = 0;
  /* The owner may have changed before the lock was ours (abandon, adoption by another
   * heap, a recycled heap struct): only a segment that is still h's is touched. */
  if (hak_load_acquire(&seg->heap) == h && hak_load_relaxed(&seg->state) == HAK_SEGST_OWNED) {
    h->hold_segments = true;
    /* Huge pages no longer wanted on segments: the advice comes off the live ones as
     * the walk passes (their purged slabs would be filled again by khugepaged). An
     * abandoned segment keeps it until it is adopted or cached. */
    if (HAK_KNOB(huge_pages) < 2) hak_segment_drop_huge(seg);
    bool gone;
    bytes += hak_heap_sweep_segment(h, seg, now, delay, &gone);
    /* Pages inside free blocks go back only once the heap has been idle (no refill or
     * flush) for the delay: a busy heap would fault them straight back in. */
    uint64_t act = hak_load_relaxed(&h->activity);
    if (act != h->scav_activity) { h->scav_activity = act; h->scav_idle_since = now; }
    /* A thread asleep that long holds its TLS lists for nothing: cut them short
     * (tc_trim.c), so that their blocks' pages can go back too. */
    hak_tcache_trim_idle(h, now, delay);
    if (now >= h->scav_idle_since + delay) bytes += hak_segment_release_free_pages(seg, min_pages, small, deadline);
    h->hold_segments = false;
  }
  hak_spin_release(&h->lock);
  return bytes;
}

size_t hak_release_segment(hak_segment* seg, uint64_t now, uint64_t delay, unsigned min_pages,
                           bool small, uint64_t deadline, bool* busy) {
  switch (hak_load_acquire(&seg->state)) {
    case HAK_SEGST_OWNED:     return release_owned(seg, now, delay, min_pages, small, deadline, busy);
    case HAK_SEGST_ABANDONED: return hak_abandoned_release(seg, now, delay, min_pages, small, deadline);
    default:                  return 0;
  }
}

/* One walker at a time, and none across fork (a walker holds heap locks). */
static hak_lock release_lock = HAK_LOCK_INIT;

void hak_release_walk(hak_release_walk_t* w, uint64_t now, uint64_t delay) {
  hak_lock_take(&release_lock);
  w->out_of_time = false;
  w->calls++;
  /* The caches and the emptied abandoned segments first (no pin is held, so a segment
   * may be unmapped): every call without a deadline, every 4th call with one. Their
   * time counts against the same deadline as the walk. */
  if (!w->deadline_ns || (w->calls & 3) == 1) {
    if ((w->calls & 3) == 1) {
      hak_heap_reap_orphans(1, 4);     /* threads gone untorn-down */
      /* parked long ago, no thread took them: as idle as a heap gets */
      uint64_t idle = delay * HAK_PARK_IDLE_DELAYS;
      hak_heap_unpark(now > idle ? now - idle : 0);
    }
    hak_abandoned_reclaim();
    uint64_t cd = w->cache_delay ? w->cache_delay : delay;
    w->released += hak_segment_cache_purge(now, cd);
    w->released += hak_large_cache_purge(now, cd);
  }
  uint64_t start = w->released;
  unsigned min_pages = HAK_KNOB(partial_release_pages);
  size_t total = hak_seglist_count(), n = total;
  if (w->max_segments && w->max_segments < n) n = w->max_segments;
  for (size_t i = 0; i < n; i++) {
    if (w->deadline_ns && hak_prim_now_ns() >= w->deadline_ns) { w->out_of_time = true; break; }
    if (w->max_bytes && w->released - start >= w->max_bytes) break;
    hak_segment* seg = hak_seglist_next(&w->cursor, true);
    if (!seg) break;
    w->visited++;
    bool busy = false;
    bool small = !w->deadline_ns || w->small_round;
    w->released += hak_release_segment(seg, now, delay, min_pages, small, w->deadline_ns, &busy);
    w->busy += busy;
    hak_seglist_unpin(seg);
    if (++w->round_seen >= total) {       /* a round ends: small pages next if it found nothing */
      w->small_round = !w->small_round && w->released == w->round_start;
      w->round_seen = 0;
      w->round_start = w->released;
    }
  }
  if (!w->deadline_ns) {          /* a full round (malloc_trim, tests): what it emptied too */
    hak_abandoned_reclaim();
    w->released += hak_segment_cache_purge(now, delay);
  }
  hak_lock_release(&release_lock);
}

void hak_release_fork_lock(void) { hak_lock_take(&release_lock); }
void hak_release_fork_unlock(bool child) {
  if (child) hak_lock_reset(&release_lock); else hak_lock_release(&release_lock);
}

size_t hak_release_all(uint64_t delay) {
  hak_heap_reap_orphans(~0u, ~0u);     /* every heap whose thread is gone untorn-down */
  if (delay == 0) hak_heap_unpark(UINT64_MAX);   /* malloc_trim: every parked one too */
  hak_release_walk_t w = {0};
  hak_seglist_cursor_open(&w.cursor);
  uint64_t now = hak_prim_now_ns();
  hak_release_walk(&w, now, delay);
  hak_seglist_cursor_close(&w.cursor);
  return w.released;
}
