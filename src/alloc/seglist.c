/* seglist.c — every mapping hakmem holds for blocks, on one list that any thread can
 * walk: segments of every tier (owned, abandoned or in the segment cache) and large
 * blocks (live or in the large cache). The registry answers "which segment covers this
 * address"; this list answers "what memory is there", for scavenging and statistics.
 *
 * Rules:
 *   - a segment joins the list when it is mapped and leaves it before it is unmapped;
 *     list links change only under `all_lock` (held for a few pointer writes);
 *   - a walker pins the segment it visits (pins++, under the lock) and unpins it after;
 *     hak_seglist_remove unlinks under the lock and then waits until the segment has
 *     no pins, so a walker never reads an unmapped header. Visits must be short and
 *     must never wait for anything that the thread unmapping could hold (they take
 *     other locks only with trylock);
 *   - a walk resumes where it stopped: cursors are fixed up by removals.
 * The segment's contents are protected by whichever lock its state names (heap.c). */
#include "alloc/alloc.h"
#include "prim/prim.h"

#include <sched.h>

static hak_lock all_lock = HAK_LOCK_INIT;
static hak_segment* all_head;
static size_t all_count;
static hak_seg_cursor* cursors;        /* live cursors, fixed up on removal */

void hak_seglist_add(hak_segment* seg) {
  hak_store_relaxed(&seg->pins, 0);
  hak_lock_take(&all_lock);
  seg->all_prev = NULL;
  seg->all_next = all_head;
  if (all_head) all_head->all_prev = seg;
  all_head = seg;
  all_count++;
  hak_lock_release(&all_lock);
}

void hak_seglist_remove(hak_segment* seg) {
  hak_lock_take(&all_lock);
  for (hak_seg_cursor* c = cursors; c; c = c->next_cursor) {
    if (c->next == seg) c->next = seg->all_next;
  }
  if (seg->all_prev) seg->all_prev->all_next = seg->all_next; else all_head = seg->all_next;
  if (seg->all_next) seg->all_next->all_prev = seg->all_prev;
  seg->all_next = seg->all_prev = NULL;
  all_count--;
  hak_lock_release(&all_lock);
  while (hak_load_acquire(&seg->pins) != 0) sched_yield();   /* a walker is inside */
}

void hak_seglist_cursor_open(hak_seg_cursor* c) {
  hak_lock_take(&all_lock);
  c->next = all_head;
  c->next_cursor = cursors;
  cursors = c;
  hak_lock_release(&all_lock);
}

void hak_seglist_cursor_close(hak_seg_cursor* c) {
  hak_lock_take(&all_lock);
  for (hak_seg_cursor** p = &cursors; *p; p = &(*p)->next_cursor) {
    if (*p == c) { *p = c->next_cursor; break; }
  }
  hak_lock_release(&all_lock);
}

hak_segment* hak_seglist_next(hak_seg_cursor* c, bool wrap) {
  hak_lock_take(&all_lock);
  hak_segment* seg = c->next;
  if (!seg && wrap) seg = all_head;
  if (seg) {
    atomic_fetch_add_explicit(&seg->pins, 1, memory_order_relaxed);
    c->next = seg->all_next;
  }
  hak_lock_release(&all_lock);
  return seg;
}

void hak_seglist_unpin(hak_segment* seg) {
  atomic_fetch_sub_explicit(&seg->pins, 1, memory_order_release);
}

size_t hak_seglist_count(void) {
  hak_lock_take(&all_lock);
  size_t n = all_count;
  hak_lock_release(&all_lock);
  return n;
}

void hak_seglist_fork_lock(void) { hak_lock_take(&all_lock); }
void hak_seglist_fork_unlock(bool child) {
  if (!child) { hak_lock_release(&all_lock); return; }
  /* Walkers of other threads are gone in the child: drop their pins and cursors. */
  for (hak_segment* seg = all_head; seg; seg = seg->all_next) hak_store_relaxed(&seg->pins, 0);
  cursors = NULL;
  hak_lock_reset(&all_lock);
}

void hak_seglist_residency(size_t max, uint64_t* mapped, uint64_t* resident) {
  *mapped = *resident = 0;
  hak_seg_cursor c;
  hak_seglist_cursor_open(&c);
  size_t n = hak_seglist_count();
  if (n > max) n = max;
  for (size_t i = 0; i < n; i++) {
    hak_segment* seg = hak_seglist_next(&c, false);
    if (!seg) break;
    /* Its first chunk only, which every segment has (a pinned one stays mapped): the
     * header's fields may be rewritten meanwhile by a new owner (a segment back from
     * the cache), so none is read but the atomic state. */
    if (hak_load_acquire(&seg->state) == HAK_SEGST_OWNED) {
      *mapped += HAK_CHUNK_SIZE;
      *resident += hak_prim_resident_bytes(seg, HAK_CHUNK_SIZE);
    }
    hak_seglist_unpin(seg);
  }
  hak_seglist_cursor_close(&c);
}
