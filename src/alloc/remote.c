/* remote.c — frees of blocks owned by another thread's slab.
 *
 * Each slab has an MPSC stack: any thread pushes with a compare-and-swap (release);
 * the owner takes the whole stack with one exchange (acquire) and moves the blocks to
 * the slab's local free list. Blocks carry the free key while on the stack, so a second
 * free of the same block is caught. The slab cannot go away while a push is in flight:
 * the block being pushed still counts in slab->used until the owner drains it. */
#include "alloc/alloc.h"
#include "alloc/os_counters.h"

void hak_remote_push(hak_slab* s, hak_block* b) {
  b->key = hak_free_key;
  hak_block* old = hak_load_relaxed(&s->remote);
  do {
    b->next = HAK_ENC(b, old);
  } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, b, memory_order_release,
                                                  memory_order_relaxed));
}

uint32_t hak_remote_drain(hak_slab* s) {
  hak_block* b = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
  uint32_t n = 0;
  while (b) {
    hak_block* next = HAK_DEC(b, b->next);
    b->next = HAK_ENC(b, s->free);
    s->free = b;
    n++;
    b = next;
  }
  s->nfree += n;
  s->used -= n;
  if (n) s->pages_clean = false;
  if (n) HAK_OS_COUNT(remote_drained[s->cls], n);
  return n;
}
