/* slab.h — slabs: blocks of one size class inside a segment (types in alloc.h).
 * The owner's operations are in slab.c; the checks every free makes are inline here. */
#ifndef HAK_SLAB_H
#define HAK_SLAB_H

#include "alloc/alloc.h"

#include <stddef.h>

/* The slab that holds address a of segment seg. */
HAK_INLINE hak_slab* hak_slab_of(hak_segment* seg, uintptr_t a) {
  return &seg->slabs[(a - (uintptr_t)seg) >> seg->slab_shift];
}
/* Block tests with one multiply (no divide). With d = bsize, m = floor(2^64 / d) + 1 and
 * E = d * m mod 2^64 = d - (2^64 mod d), which lies in [1, d]: an offset off = q*d + r
 * (0 <= r < d) from block 0 gives off * m mod 2^64 = q*E + r*m exactly, with no
 * wrap-around, as long as (q + 1) * E < m, i.e. roughly off + d < 2^64 / d (slabs are
 * at most a few MiB, d at most 1 MiB: off * d < 2^45). So
 *   - off is a block start   iff  off * m < m        (q*E stays below m; r >= 1 gives >= m)
 *   - ... one of the first n iff  off * m < n * E    (= (n*d) * m: `handed`)
 * An address a little below block 0 (the header page before slab 0, a pool slab's
 * alignment gap; a "negative" off) gives 2^64 - (its distance * m) > m: never a block.
 * d a power of two has 2^64 mod d = 0: m is 2^64/d + 1 there, so that E = d, not 0. */
HAK_INLINE uint64_t hak_slab_divmagic(uint32_t bsize) {
  return UINT64_MAX / bsize + 1 + ((bsize & (bsize - 1)) == 0);
}
/* True when off (within the slab's span) is a multiple of s's block size. */
HAK_INLINE bool hak_slab_off_is_block(const hak_slab* s, uintptr_t off) {
  return off * s->divmagic < s->divmagic;
}
/* True when a is the start of a block that slab s has handed out at some point (any
 * thread: reads bump; the owner's fast path reads `handed` instead). */
HAK_INLINE bool hak_slab_is_block(const hak_slab* s, uintptr_t a) {
  uintptr_t off = a - (uintptr_t)s->start;
  return a >= (uintptr_t)s->start && a < (uintptr_t)hak_load_relaxed(&s->bump) && hak_slab_off_is_block(s, off);
}
/* True when a is the start of a block s has handed out, read through `handed`: the
 * owner, or a thread holding the lock under which `handed` is written (the owner's heap
 * lock; for an abandoned segment, the abandoned list's lock, taken after its last owner
 * wrote it). One multiply and one compare (see hak_slab_divmagic). */
HAK_INLINE bool hak_slab_handed_block(const hak_slab* s, uintptr_t a) {
  return (a - (uintptr_t)s->start) * s->divmagic < s->handed;
}
/* True when n, decoded from a link of s's free or remote list, may be followed: NULL or
 * a block start s has handed out (integrity.c; the caller may read `handed`). */
HAK_INLINE bool hak_slab_link_valid(const hak_slab* s, const hak_block* n) {
  return n == NULL || hak_slab_handed_block(s, (uintptr_t)n);
}
/* Free block b of s, taken off s's free or remote list, links to n: it must carry its
 * mark and n must be followable, else the program stops naming b (integrity.c). */
HAK_INLINE void hak_slab_check_free(const hak_slab* s, const hak_block* b, const hak_block* n, const char* fn) {
  if (HAK_UNLIKELY(b->key != hak_free_mark(b))) hak_mark_corrupt(fn, b, s->cls);
  if (HAK_UNLIKELY(!hak_slab_link_valid(s, n))) hak_list_corrupt(fn, b, s->cls, n);
}
/* The slab of b, a block that may sit in h's TLS list of class cls, or NULL when it
 * is not one (alloc.h: hak_tc_block_slab_slow). The free map names the slab of most of
 * a heap's blocks; what it names is h's own and handed-out blocks lie below `handed`. */
HAK_INLINE hak_slab* hak_tc_block_slab(const hak_heap* h, unsigned cls, const hak_block* b) {
  uintptr_t a = (uintptr_t)b;
  uintptr_t tag = hak_fc_tag(a);
  unsigned i = (unsigned)tag & (HAK_FC_SIZE - 1);
  if (HAK_LIKELY(h->fc_unit[i] == tag)) {
    hak_slab* s = h->fc_slab[i];
    bool ok = s->cls == cls && hak_slab_handed_block(s, a) && b->key == hak_free_mark(b);
    return ok ? s : NULL;
  }
  return hak_tc_block_slab_slow(h, cls, b);
}
HAK_INLINE bool hak_tc_block_valid(const hak_heap* h, unsigned cls, const hak_block* b) {
  return hak_tc_block_slab(h, cls, b) != NULL;
}
/* The owner moves s's bump pointer (and the `handed` mirror its fast path reads). */
HAK_INLINE void hak_slab_set_bump(hak_slab* s, uint8_t* bump) {
  s->handed = (uintptr_t)(bump - s->start) * s->divmagic;   /* blocks handed out * E */
  hak_store_release(&s->bump, bump);
}
/* The segment whose header holds slab s. */
HAK_INLINE hak_segment* hak_slab_segment(hak_slab* s) {
  return (hak_segment*)((uint8_t*)(s - s->idx) - offsetof(hak_segment, slabs));
}
/* True when s can give blocks without draining: a local free block (on its list or on
 * a page given back) or never-used space. */
HAK_INLINE bool hak_slab_has_local(const hak_slab* s) {
  return s->free != NULL || s->parked_pages != 0 || hak_load_relaxed(&s->bump) < s->end;
}

/* Take s off its heap's partial/full list of its class. */
HAK_HIDDEN void hak_slab_list_remove(hak_heap* h, hak_slab* s);
/* Put s at the head of its heap's list for `state` (partial or full). */
HAK_HIDDEN void hak_slab_list_push(hak_heap* h, hak_slab* s, uint8_t state);
/* A full slab that gets a block back moves to the partial list; an empty one may go
 * back to its segment (slab.c). */
HAK_HIDDEN void hak_slab_return_local_slow(hak_heap* h, hak_slab* s);
/* Blocks first .. last of s, n of them already linked to one another, come home (from a
 * TLS list: they carry their free marks already). */
HAK_INLINE void hak_slab_return_run(hak_heap* h, hak_slab* s, hak_block* first, hak_block* last, uint32_t n) {
  s->pages_clean = false;
  last->next = HAK_ENC(last, s->free);
  s->free = first;
  s->nfree += n;
  s->used -= n;
  if (HAK_UNLIKELY(s->state == HAK_SLAB_FULL || s->used == 0)) hak_slab_return_local_slow(h, s);
}
/* Give an empty slab back to its segment unless it is its class's only partial slab
 * (kept against map/unmap churn); true when that released the segment too. */
HAK_HIDDEN bool hak_slab_maybe_release(hak_heap* h, hak_slab* s);
/* Give an empty slab back now (no keep-one rule); true when the segment went too. */
HAK_HIDDEN bool hak_slab_release(hak_heap* h, hak_slab* s);

/* Give back the pages of s's free blocks: for blocks of two pages or more, the pages
 * after their first page (min_pages of them or more); for smaller blocks, runs of
 * min_pages pages or more on which every block is free, whose blocks are parked (taken
 * off the free list until hak_slab_unpark), when `small` (release.c says when). Returns
 * bytes released. */
HAK_HIDDEN size_t hak_slab_release_free_pages(hak_slab* s, unsigned min_pages, bool small);
/* Put s's parked blocks back on its free list (their pages fault in again as they are
 * used). A parked page that is mapped again was touched by the program after the free
 * (a write after free or a second free): the program stops naming it. */
HAK_HIDDEN void hak_slab_unpark(hak_slab* s);
/* The same for every slab in use of seg, stopping at `deadline` (prim clock; 0: none).
 * The caller holds the lock that seg's state names. */
HAK_HIDDEN size_t hak_segment_release_free_pages(hak_segment* seg, unsigned min_pages, bool small, uint64_t deadline);

/* The word of a free block that marks its inner pages as given back (see slab.c). */
#define HAK_BLOCK_TAG_WORD 2
HAK_INLINE uintptr_t hak_released_tag(void) { return hak_free_key ^ (uintptr_t)0x52454c4541534544ull; }

#endif
