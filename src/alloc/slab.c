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

#include <string.h>

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


/* ---- pages of small blocks ------------------------------------------------------------
 * A page on which every block is free (on the slab's free list, or parked already) goes
 * back to the OS in runs of min_pages or more, and the blocks that touch it leave the
 * free list: their link and free mark were on the page. They are parked: parked_pages
 * names the pages, and every handed-out block touching one of them is parked. Slabs of
 * 16 pages at most (SuperSlab slabs; not the 512 KiB mid slabs small classes use with
 * HAKMEM_TINY_USE_SUPERSLAB=0). A refill that finds the free list empty puts them all back
 * (hak_slab_unpark) before it uses never-used space. Only pages below the bump pointer
 * are candidates, and nothing of hakmem's writes a parked page until the unpark: one
 * that no longer reads as zeros was written by the program after the free (a second
 * free writes its link and mark there), and the unpark stops the program naming it.
 * (Contents, not residency: khugepaged may map such pages again on its own.) */
#define SMALL_MAX_PAGES 16                                  /* bits of parked_pages */
#define SMALL_MAX_BLOCKS (SMALL_MAX_PAGES * HAK_PAGE_SIZE / 16)

static uintptr_t page_base(const hak_slab* s) { return HAK_ALIGN_DOWN((uintptr_t)s->start, HAK_PAGE_SIZE); }
/* Bits first .. end-1 of a page mask. */
static uint32_t page_bits(unsigned first, unsigned end) {
  return (uint32_t)((1ull << end) - 1) & ~((1u << first) - 1);
}
/* Bits of the pages block i of s touches. */
static uint32_t block_pages(const hak_slab* s, uintptr_t pbase, uint32_t i) {
  uintptr_t b = (uintptr_t)s->start + (uintptr_t)i * s->bsize;
  return page_bits((unsigned)((b - pbase) / HAK_PAGE_SIZE), (unsigned)((b + s->bsize - 1 - pbase) / HAK_PAGE_SIZE) + 1);
}
/* The lowest run of set bits of *left, as pages [*first, return value), taken off *left. */
static unsigned take_run(uint32_t* left, unsigned* first) {
  unsigned a = (unsigned)__builtin_ctz(*left), b = a;
  while (b < 32 && (*left >> b & 1)) b++;
  *left &= b >= 32 ? 0 : ~0u << b;
  *first = a;
  return b;
}

static size_t release_small_pages(hak_slab* s, unsigned min_pages) {
  uintptr_t start = (uintptr_t)s->start, bump = (uintptr_t)hak_load_relaxed(&s->bump);
  uintptr_t pbase = page_base(s);
  uintptr_t lo = HAK_ALIGN_UP(start, HAK_PAGE_SIZE), hi = HAK_ALIGN_DOWN(bump, HAK_PAGE_SIZE);
  if (HAK_ALIGN_UP((uintptr_t)s->end, HAK_PAGE_SIZE) - pbase > SMALL_MAX_PAGES * HAK_PAGE_SIZE) return 0;
  if (hi < lo + (size_t)min_pages * HAK_PAGE_SIZE || s->free == NULL) return 0;
  uint32_t nblocks = (uint32_t)((bump - start) / s->bsize);
  uint64_t isfree[SMALL_MAX_BLOCKS / 64];
  memset(isfree, 0, ((nblocks + 63) / 64) * sizeof isfree[0]);
  for (hak_block *b = s->free, *n; b; b = n) {
    n = HAK_DEC(b, b->next);
    if (HAK_UNLIKELY(!hak_slab_link_valid(s, n))) hak_list_corrupt("free", b, s->cls, n);
    uint32_t i = (uint32_t)(((uintptr_t)b - start) / s->bsize);
    isfree[i / 64] |= 1ull << (i % 64);
  }
  /* The pages whose blocks are all free; then the runs of min_pages or more. */
  uint32_t candidates = 0;
  for (uintptr_t p = lo; p < hi; p += HAK_PAGE_SIZE) {
    unsigned pi = (unsigned)((p - pbase) / HAK_PAGE_SIZE);
    if (s->parked_pages >> pi & 1) continue;
    uint32_t first = (uint32_t)((p - start) / s->bsize), last = (uint32_t)((p + HAK_PAGE_SIZE - 1 - start) / s->bsize);
    bool all = true;
    for (uint32_t i = first; all && i <= last; i++) {
      all = (isfree[i / 64] >> (i % 64) & 1) || (block_pages(s, pbase, i) & s->parked_pages);
    }
    if (all) candidates |= 1u << pi;
  }
  /* The runs of min_pages or more. */
  uint32_t released = 0;
  for (uint32_t left = candidates; left;) {
    unsigned a, b = take_run(&left, &a);
    if (b - a >= min_pages) released |= page_bits(a, b);
  }
  if (released == 0) { s->pages_clean = true; return 0; }
  /* The blocks touching those pages leave the free list (order kept) before the pages
   * go: their links are on them. */
  hak_block *head = NULL, *tail = NULL;
  uint32_t parked = 0;
  for (hak_block *b = s->free, *n; b; b = n) {
    n = HAK_DEC(b, b->next);
    uint32_t i = (uint32_t)(((uintptr_t)b - start) / s->bsize);
    if (block_pages(s, pbase, i) & released) { parked++; continue; }
    if (tail) tail->next = HAK_ENC(tail, b); else head = b;
    tail = b;
  }
  if (tail) tail->next = HAK_ENC(tail, NULL);
  s->free = head;
  s->nfree -= parked;
  s->parked_pages = (uint16_t)(s->parked_pages | released);
  size_t bytes = 0;
  for (uint32_t left = released; left;) {
    unsigned a, b = take_run(&left, &a);
    void* from = (void*)(pbase + (uintptr_t)a * HAK_PAGE_SIZE);
    size_t len = (size_t)(b - a) * HAK_PAGE_SIZE;
    if (hak_prim_decommit(from, len)) { bytes += len; continue; }
    HAK_OS_COUNT(os_failures, 1);
    memset(from, 0, len);               /* parked pages read as zero (hak_slab_unpark) */
  }
  if (bytes) {
    HAK_OS_COUNT(interior_release_bytes, bytes);
    HAK_OS_COUNT(decommit_bytes, bytes);
    HAK_OS_COUNT(decommit_calls, 1);
  }
  s->pages_clean = true;                 /* until a block comes home (return_run, drain) */
  return bytes;
}

void hak_slab_unpark(hak_slab* s) {
  uint32_t pages = s->parked_pages;
  if (pages == 0) return;
  uintptr_t start = (uintptr_t)s->start, pbase = page_base(s);
  for (uint32_t left = pages; left; left &= left - 1) {
    const uint64_t* w = (const uint64_t*)(pbase + (uintptr_t)__builtin_ctz(left) * HAK_PAGE_SIZE);
    uint64_t any = 0;
    for (size_t k = 0; k < HAK_PAGE_SIZE / sizeof *w; k++) any |= w[k];
    if (HAK_UNLIKELY(any != 0)) hak_fatal("malloc", "write after free (on a page of free blocks given back)", w);
  }
  /* Back on the free list in address order, each with its free mark. */
  uint32_t nblocks = (uint32_t)(((uintptr_t)hak_load_relaxed(&s->bump) - start) / s->bsize), n = 0;
  hak_block* head = s->free;
  for (uint32_t i = nblocks; i-- > 0;) {
    if (!(block_pages(s, pbase, i) & pages)) continue;
    hak_block* b = (hak_block*)(start + (uintptr_t)i * s->bsize);
    b->key = hak_free_mark(b);
    b->next = HAK_ENC(b, head);
    head = b;
    n++;
  }
  s->free = head;
  s->nfree += n;
  s->parked_pages = 0;
  HAK_OS_COUNT(interior_refault_bytes, (size_t)__builtin_popcount(pages) * HAK_PAGE_SIZE);
}

/* Pages inside free blocks: a free block of two pages or more keeps its first page (its
 * list link and free key live there) and gives the pages after it back. The block stays
 * on the free list and reads as zero past its first page when it is handed out again;
 * its third word carries hak_released_tag() so that it is released once and its
 * return counts as a refault (refill clears the tag). Blocks in TLS lists are the
 * owner thread's alone and are not touched.
 * Smaller blocks share pages with their neighbours: release_small_pages above. */
size_t hak_slab_release_free_pages(hak_slab* s, unsigned min_pages, bool small) {
  if (s->pages_clean) return 0;
  if (s->bsize < 2 * HAK_PAGE_SIZE) return small ? release_small_pages(s, min_pages) : 0;
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
  s->pages_clean = !refused;            /* until a block comes home (return_run, drain) */
  if (bytes) {
    HAK_OS_COUNT(interior_release_bytes, bytes);
    HAK_OS_COUNT(decommit_bytes, bytes);
    HAK_OS_COUNT(decommit_calls, 1);
  }
  return bytes;
}

size_t hak_segment_release_free_pages(hak_segment* seg, unsigned min_pages, bool small, uint64_t deadline) {
  size_t bytes = 0;
  for (unsigned i = 0; i < seg->nslabs; i++) {
    if (seg->slabs[i].state == HAK_SLAB_UNUSED) continue;
    if (deadline && hak_prim_now_ns() >= deadline) break;
    bytes += hak_slab_release_free_pages(&seg->slabs[i], min_pages, small);
  }
  return bytes;
}
