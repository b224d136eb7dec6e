/* remote.c — frees of blocks owned by another thread's slab.
 *
 * Each slab has an MPSC stack: any thread pushes with a compare-and-swap (release);
 * the owner takes the whole stack with one exchange (acquire) and moves the blocks to
 * the slab's local free list. Blocks carry the free key while on the stack, so a second
 * free of the same block is caught. The slab cannot go away while a push is in flight:
 * the block being pushed still counts in slab->used until the owner drains it.
 *
 * A thread's heap does not push each block: it chains the blocks it frees into one slab
 * of another heap in a slot of its remote buffer (one per tiny class; alloc.h) and
 * pushes the chain with one compare-and-swap when hak_rb_limit blocks are waiting (32,
 * or 4 KiB of blocks), when a free of the slot's class goes to another slab, on its
 * refills and flushes, hak_thread_flush, stats collection and at its exit.
 * Buffered blocks carry the free key (a second free of one aborts, by any thread) and
 * still count in their slab's `used`, so the slab and its segment stay while they wait;
 * they count as the heap's frees (and remote frees) once pushed. Exiting threads (no
 * heap) push directly. */
#include "alloc/slab.h"
#include "alloc/os_counters.h"

/* The first push on a full slab's empty stack tells its owner's refills that a full
 * slab of the class has blocks to give (hak_heap.full_remote). The slab's state, class
 * and TLS list pointer are the owner's plain fields, read here racily and before the
 * push (once pushed, the block no longer keeps the slab alive: the owner may drain it
 * and give the slab back at once): a stale read costs a missed hint (the periodic
 * drain still comes) or a spurious one (a walk of the full slabs). The hint goes into
 * the heap the list pointer names, which is never unmapped (heap structs are recycled;
 * one recycled meanwhile gets a needless hint). Not instrumented for TSan: the races
 * are the point (and kept whole: an inlined copy, or GCC's IPA-SRA moving the field
 * loads into the caller, would be instrumented). */
#if defined(__clang__)
#define HINT_FN __attribute__((noinline, no_sanitize_thread))
#else
#define HINT_FN __attribute__((noipa, no_sanitize_thread))
#endif
HINT_FN static _Atomic uint8_t* full_hint_of(const hak_slab* s) {
  if (s->state != HAK_SLAB_FULL || s->tc == NULL) return NULL;
  unsigned cls = s->cls;
  hak_heap* owner = (hak_heap*)((uint8_t*)(s->tc - cls) - offsetof(hak_heap, tc));
  return &owner->full_remote[cls];
}
HINT_FN static void full_hint_set(_Atomic uint8_t* hint) {
  if (!hak_load_relaxed(hint)) hak_store_relaxed(hint, 1);
}

/* Push the chain first..last (linked by `next`) on s's remote stack. */
static inline void push_chain(hak_slab* s, hak_block* first, hak_block* last) {
  _Atomic uint8_t* hint = full_hint_of(s);
  hak_block* old = hak_load_relaxed(&s->remote);
  do {
    last->next = HAK_ENC(last, old);
  } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, first, memory_order_release,
                                                  memory_order_relaxed));
  if (old == NULL && hint) full_hint_set(hint);
}

void hak_remote_push(hak_slab* s, hak_block* b) {
  b->key = hak_free_mark(b);
  push_chain(s, b, b);
}

void hak_remote_flush_slot(hak_heap* h, unsigned i) {
  hak_rbuf* r = &h->rb[i];
  hak_slab* s = r->slab;
  uint32_t n = hak_rb_limit(s->bsize) - r->left;
  /* Everything read from s and its segment is read before the push: once the chain is
   * on the stack, the owner may drain it, give the slab back, and the segment may go. */
  unsigned cls = s->cls;
  bool abandoned = hak_load_relaxed(&hak_slab_segment(s)->state) == HAK_SEGST_ABANDONED;
  push_chain(s, r->head, r->tail);
  r->slab = NULL;
  r->head = r->tail = NULL;
  r->left = 0;
  h->rb_mask &= ~(1u << i);
  h->cc[cls].remote_out += n;
  if (abandoned) {
    /* Frees into a segment whose owner has exited stay remote frees, and every 256 of
     * them this thread collects the abandoned segments that emptied. (Taking the
     * segment over instead made a thread that frees other threads' blocks - a main
     * thread joining workers - pile up hundreds of nearly empty segments.) */
    uint32_t before = h->abandoned_frees;
    h->abandoned_frees += n;
    if ((before ^ h->abandoned_frees) >> 8) {
      HAK_DBG(h, FREE_ADOPT);
      hak_abandoned_reclaim();
    }
  }
}

void hak_remote_flush(hak_heap* h) {
  while (h->rb_mask) hak_remote_flush_slot(h, (unsigned)__builtin_ctz(h->rb_mask));
}

void hak_remote_buffer(hak_heap* h, hak_slab* s, hak_block* b) {
  b->key = hak_free_mark(b);
  unsigned i = s->cls % HAK_RB_SLOTS;
  hak_rbuf* r = &h->rb[i];
  if (r->slab == s) {
    b->next = HAK_ENC(b, r->head);
    r->head = b;
    if (--r->left == 0) hak_remote_flush_slot(h, i);
    return;
  }
  if (r->slab) hak_remote_flush_slot(h, i);
  b->next = HAK_ENC(b, NULL);
  r->slab = s;
  r->head = r->tail = b;
  r->left = hak_rb_limit(s->bsize) - 1;
  h->rb_mask |= 1u << i;
}

/* Take s's remote stack (owner, or the abandoned list's lock): every block is checked;
 * up to `want` go to the chain *first..*last (linked with HAK_ENC, *last's link left to
 * the caller), the rest to s's free list. Returns the blocks drained; *took those the
 * chain got. */
/* The run of s's free blocks from b, at most max of them, each checked as it is passed
 * (a free block of s whose link can be followed, integrity.c): *tail gets the run's
 * last block, *count grows by its length. Returns the block after it (NULL: the end). */
HAK_INLINE hak_block* check_run(const hak_slab* s, hak_block* b, uint32_t max, hak_block** tail, uint32_t* count) {
  uint32_t n = 0;
  do {
    hak_block* next = HAK_DEC(b, b->next);
    hak_slab_check_free(s, b, next, "free");
    *tail = b;
    b = next;
    n++;
  } while (n < max && b);
  *count += n;
  return b;
}

HAK_INLINE uint32_t drain_stack(hak_slab* s, uint32_t want, hak_block** first, hak_block** last, uint32_t* took_out) {
  hak_block* b = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
  if (!b) { *took_out = 0; return 0; }
  /* The stack's links are free-list links (the same encoding): its first `want` blocks
   * join the chain as they are and the rest go onto s's list as one run; only the links
   * at the two junctions are written. */
  uint32_t took = 0, rest = 0;
  hak_block* tail = NULL;
  if (want) {
    if (*last) (*last)->next = HAK_ENC(*last, b); else *first = b;
    b = check_run(s, b, want, &tail, &took);
    *last = tail;
  }
  if (b) {
    hak_block* run = b;
    check_run(s, b, UINT32_MAX, &tail, &rest);
    tail->next = HAK_ENC(tail, s->free);
    s->free = run;
  }
  /* The blocks taken stay out (in `used`): from the remote stack to the TLS list. */
  s->nfree += rest;
  s->used -= rest;
  if (rest) s->pages_clean = false;
  HAK_OS_COUNT(remote_drained[s->cls], took + rest);
  *took_out = took;
  return took + rest;
}

uint32_t hak_remote_drain(hak_slab* s) {
  hak_block *first = NULL, *last = NULL;
  uint32_t took;
  return drain_stack(s, 0, &first, &last, &took);
}

uint32_t hak_remote_drain_into(hak_slab* s, uint32_t want, hak_block** first, hak_block** last) {
  uint32_t took;
  drain_stack(s, want, first, last, &took);
  return took;
}
