/* slab.c — a slab's life inside its owner's heap: which list it is on (partial: has
 * local blocks to give; full: has none), blocks coming back to it, and giving it back
 * to its segment when all its blocks are home.
 *
 * Only the heap that owns the slab's segment runs these, with the heap's lock held
 * (see heap.c for the lock protocol); other threads touch a slab only through its
 * remote list (remote.c). */
#include "alloc/slab.h"
#include "alloc/os_counters.h"
#include "prim/prim.h"

void hak_slab_list_remove(hak_heap* h, hak_slab* s) {
  hak_slab** head = s->state == HAK_SLAB_PARTIAL ? &h->partial[s->cls] : &h->full[s->cls];
  if (s->prev) s->prev->next = s->next; else *head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

void hak_slab_list_push(hak_heap* h, hak_slab* s, uint8_t state) {
  hak_slab** head = state == HAK_SLAB_PARTIAL ? &h->partial[s->cls] : &h->full[s->cls];
  s->state = state;
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
}

/* A slab whose blocks are all back goes to its segment, unless it is the class's only
 * partial slab (keeping one avoids mapping churn on alloc/free ping-pong). An empty
 * segment goes to the cache unless it is the heap's last of its kind. */
bool hak_slab_maybe_release(hak_heap* h, hak_slab* s) {
  if (s->used != 0) return false;
  if (s->state == HAK_SLAB_PARTIAL && h->partial[s->cls] == s && s->next == NULL && !h->is_global) {
    HAK_DBG(h, EARLY_KEEP_LAST_SLAB);
    s->freed_at = hak_prim_now_ns();   /* heap_sweep gives it back if it stays empty */
    return false;
  }
  return hak_slab_release(h, s);
}

bool hak_slab_release(hak_heap* h, hak_slab* s) {
  hak_segment* seg = hak_slab_segment(s);
  hak_slab_list_remove(h, s);
  hak_segment_give_slab(seg, s);
  if (seg->used_slabs == 0 && !h->hold_segments &&
      (h->segs[seg->kind] != seg || seg->next != NULL || seg->kind == HAK_SEG_POOL)) {
    hak_heap_unlink_segment(h, seg);
    hak_segment_release(seg);
    return true;
  }
  if (seg->used_slabs == 0) HAK_DBG(h, EARLY_KEEP_LAST_SEG);
  return false;
}

void hak_slab_return_local_slow(hak_heap* h, hak_slab* s) {
  if (s->state == HAK_SLAB_FULL) {
    hak_slab_list_remove(h, s);
    hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
  }
  if (s->used == 0) hak_slab_maybe_release(h, s);
}


/* Pages inside free blocks: a free block of two pages or more keeps its first page (its
 * list link and free key live there) and gives the pages after it back. The block stays
 * on the free list and reads as zero past its first page when it is handed out again;
 * its third word carries hak_released_tag() so that it is released once and its
 * return counts as a refault (refill clears the tag). Blocks in TLS lists are the
 * owner thread's alone and are not touched.
 * Smaller blocks share pages with their neighbours; giving such a page back needs
 * every block on it free and off every list, which this does not attempt. */
size_t hak_slab_release_free_pages(hak_slab* s, unsigned min_pages) {
  if (s->bsize < 2 * HAK_PAGE_SIZE || s->pages_clean) return 0;
  uintptr_t tag = hak_released_tag();
  size_t bytes = 0;
  bool refused = false;
  for (hak_block *b = s->free, *n; b; b = n) {
    n = HAK_DEC(b, b->next);
    if (HAK_UNLIKELY(!hak_slab_link_valid(s, n))) hak_list_corrupt("free", b, s->cls, n);
    uintptr_t* word = &((uintptr_t*)b)[HAK_BLOCK_TAG_WORD];
    if (*word == tag) continue;
    uintptr_t from = HAK_ALIGN_UP((uintptr_t)b + 1, HAK_PAGE_SIZE);
    uintptr_t to = HAK_ALIGN_DOWN((uintptr_t)b + s->bsize, HAK_PAGE_SIZE);
    if (to <= from || to - from < (size_t)min_pages * HAK_PAGE_SIZE) continue;
    if (!hak_prim_decommit((void*)from, to - from)) { HAK_OS_COUNT(os_failures, 1); refused = true; continue; }
    *word = tag;
    bytes += to - from;
  }
  s->pages_clean = !refused;            /* until a block comes home (return_local, drain) */
  if (bytes) {
    HAK_OS_COUNT(interior_release_bytes, bytes);
    HAK_OS_COUNT(decommit_bytes, bytes);
    HAK_OS_COUNT(decommit_calls, 1);
  }
  return bytes;
}

size_t hak_segment_release_free_pages(hak_segment* seg, unsigned min_pages, uint64_t deadline) {
  size_t bytes = 0;
  for (unsigned i = 0; i < seg->nslabs; i++) {
    if (seg->slabs[i].state == HAK_SLAB_UNUSED) continue;
    if (deadline && hak_prim_now_ns() >= deadline) break;
    bytes += hak_slab_release_free_pages(&seg->slabs[i], min_pages);
  }
  return bytes;
}
