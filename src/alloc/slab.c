/* slab.c — a slab's life inside its owner's heap: which list it is on (partial: has
 * local blocks to give; full: has none), blocks coming back to it, and giving it back
 * to its segment when all its blocks are home.
 *
 * Only the heap that owns the slab's segment runs these, with the heap's lock held
 * (see heap.c for the lock protocol); other threads touch a slab only through its
 * remote list (remote.c). */
#include "alloc/slab.h"
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
  if (seg->used_slabs == 0 && (h->segs[seg->kind] != seg || seg->next != NULL || seg->kind == HAK_SEG_POOL)) {
    hak_heap_unlink_segment(h, seg);
    hak_segment_release(seg);
    return true;
  }
  if (seg->used_slabs == 0) HAK_DBG(h, EARLY_KEEP_LAST_SEG);
  return false;
}

void hak_slab_return_local(hak_heap* h, hak_slab* s, hak_block* b) {
  b->key = hak_free_key;
  b->next = HAK_ENC(b, s->free);
  s->free = b;
  s->nfree++;
  s->used--;
  if (s->state == HAK_SLAB_FULL) {
    hak_slab_list_remove(h, s);
    hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
  }
  if (s->used == 0) hak_slab_maybe_release(h, s);
}

