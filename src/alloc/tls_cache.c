/* tls_cache.c — moving blocks between a thread's TLS lists and its slabs.
 *
 *   refill(cls)  TLS list empty: take up to batch[cls] blocks from the class's partial
 *                slabs (local free list first, then never-used space), draining remote
 *                frees when a slab runs dry; find or make a slab when none is partial.
 *   flush(cls)   TLS list full: keep the newest `keep` blocks, return the rest to
 *                their slabs; a slab whose blocks are all back goes to its segment.
 * Only the owning thread runs these (or any thread holding hak_global_lock for the
 * global heap), so slab lists and slab local state need no locks. */
#include "alloc/alloc.h"
#include "hak_knobs.h"
#include "prim/prim.h"

#include <stddef.h>

static inline hak_segment* slab_segment(hak_slab* s) {
  return (hak_segment*)((uint8_t*)(s - s->idx) - offsetof(hak_segment, slabs));
}

/* Copy the knob snapshot's values into the heap (its TLS caps, batch bounds, sweep
 * period and purge delay) and remember the generation they came from. */
void hak_heap_set_caps(hak_heap* h) {
  uint64_t gen = hak_load_acquire(&hak_knobs_generation);
  const hak_knobs* k = hak_knobs_read();
  long long batch = k->bundle_width;
  h->knob_gen = gen;
  h->drain_threshold = k->drain_threshold ? k->drain_threshold : 1;
  h->purge_delay_ns = (uint64_t)k->purge_delay_ms * 1000000u;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    long long cap = k->tls_cap[c] ? k->tls_cap[c] : 1;
    long long b = cap / 2 < batch ? cap / 2 : batch;
    if (b < 1) b = 1;
    h->tc[c].cap = (uint32_t)cap;
    h->batch_max[c] = (uint16_t)b;
    /* Slow start: the first refill of a class touches about one page; each refill then
     * doubles the batch up to batch_max, so a class used once costs little memory. */
    long long first = (long long)(HAK_PAGE_SIZE / hak_cls_size[c]);
    if (first < 1) first = 1;
    h->batch[c] = (uint16_t)(first < b ? first : b);
  }
}

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

static inline bool slab_has_local(const hak_slab* s) {
  return s->free != NULL || hak_load_relaxed(&s->bump) < s->end;
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
  hak_segment* seg = slab_segment(s);
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

/* Periodic upkeep of a heap (every HAKMEM_DRAIN_THRESHOLD slow-path events): drain
 * slabs with pending remote frees, give back slabs that became empty (and the class's
 * last slab once it stayed empty for the purge delay), and decommit unused slabs after
 * HAKMEM_PURGE_DELAY ms. It visits at most SWEEP_SEGMENTS segments per call, resuming
 * where the last call stopped, so its cost stays bounded however much the heap holds. */
#define SWEEP_SEGMENTS 64

static void sweep_segment(hak_heap* h, hak_segment* seg, uint64_t now, uint64_t delay) {
  bool released = false;
  for (unsigned i = 0; !released && i < seg->nslabs; i++) {   /* released: seg is gone */
    hak_slab* s = &seg->slabs[i];
    if (s->state == HAK_SLAB_UNUSED) continue;
    if (s->used == 0 && s->freed_at + delay <= now) {
      /* The class's last slab, kept empty for reuse and not reused within the
       * delay: give it back and let the purge below return its pages. */
      uint64_t empty_since = s->freed_at;
      released = hak_slab_release(h, s);
      if (!released) s->freed_at = empty_since;
      continue;
    }
    if (hak_load_relaxed(&s->remote) == NULL) continue;
    hak_remote_drain(s);
    if (s->state == HAK_SLAB_FULL && slab_has_local(s)) {
      hak_slab_list_remove(h, s);
      hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
    }
    if (s->used == 0) released = hak_slab_maybe_release(h, s);
  }
  if (!released) hak_segment_purge(seg, now, delay);
}

static void heap_sweep(hak_heap* h) {
  HAK_DBG(h, EARLY_SWEEP);
  uint64_t now = hak_prim_now_ns();
  uint64_t delay = h->purge_delay_ns;
  unsigned budget = SWEEP_SEGMENTS, kinds_started = 0;
  while (budget > 0) {
    hak_segment* seg = h->sweep_next;
    if (seg == NULL) {                       /* end of a kind's list: start the next kind */
      if (kinds_started == HAK_SEG_LARGE) break;
      h->sweep_kind = (h->sweep_kind + 1) % HAK_SEG_LARGE;
      h->sweep_next = h->segs[h->sweep_kind];
      kinds_started++;
      continue;
    }
    h->sweep_next = seg->next;               /* advance first: seg may be released */
    budget--;
    HAK_ASSERT(seg->linked == h && hak_load_relaxed(&seg->heap) == h);
    sweep_segment(h, seg, now, delay);
  }
  hak_segment_cache_purge(now, delay);
}

/* Bookkeeping of every refill and flush: pick up a new knob snapshot, and sweep every
 * drain_threshold events. */
static inline void heap_slow_event(hak_heap* h) {
  if (HAK_UNLIKELY(h->knob_gen != hak_load_acquire(&hak_knobs_generation))) hak_heap_set_caps(h);
  if (++h->slow_events >= h->drain_threshold) {
    h->slow_events = 0;
    heap_sweep(h);
  }
}

/* A slab of class cls with blocks to give, or NULL when out of memory. */
static hak_slab* acquire_slab(hak_heap* h, unsigned cls) {
  unsigned kind = hak_cls_kind[cls];
  /* 1. full slabs that received remote frees */
  unsigned scanned = 0;
  for (hak_slab* s = h->full[cls]; s && scanned < 64; scanned++) {
    hak_slab* next = s->next;
    if (hak_load_relaxed(&s->remote) != NULL) {
      hak_remote_drain(s);
      if (slab_has_local(s)) {
        hak_slab_list_remove(h, s);
        hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
        HAK_DBG(h, REFILL_FULL_SLAB);
        return s;
      }
    }
    s = next;
  }
  /* 2. an unused slab in one of our segments */
  hak_segment* seg = NULL;
  if (kind != HAK_SEG_POOL) {
    for (seg = h->segs[kind]; seg; seg = seg->next) if (seg->free_slabs) break;
  }
  /* 3. an abandoned segment; 4. a new one */
  if (!seg) {
    hak_segment* adopted = hak_heap_adopt(h, kind, cls);
    if (adopted) {
      HAK_DBG(h, REFILL_ADOPTED);
      if (h->partial[cls]) return h->partial[cls];
      if (adopted->free_slabs) seg = adopted;
      else return h->partial[cls];   /* NULL: caller loops and tries again */
    }
  }
  if (!seg) {
    if ((h->ctr.segs_new & 7) == 7) hak_abandoned_reclaim();
    seg = hak_segment_new(h, kind, cls);
    if (!seg) return NULL;
    hak_heap_link_segment(h, seg);
  }
  hak_slab* s = hak_segment_take_slab(seg, cls);
  hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
  h->ctr.slabs_new++;
  HAK_DBG(h, REFILL_NEW_SLAB);
  return s;
}

void* hak_tcache_refill(hak_heap* h, unsigned cls) {
  h->cc[cls].refills++;
  heap_slow_event(h);
  uint32_t want = h->batch[cls], got = 0;
  if (want < h->batch_max[cls]) {
    uint32_t next = want * 2;
    h->batch[cls] = (uint16_t)(next < h->batch_max[cls] ? next : h->batch_max[cls]);
  }
  uint32_t bsize = hak_cls_size[cls];
  hak_block *first = NULL, *last = NULL;
  unsigned tries = 0;
  while (got < want) {
    hak_slab* s = h->partial[cls];
    if (!s) {
      s = acquire_slab(h, cls);
      if (!s) {
        if (++tries < 64 && h->partial[cls] == NULL) continue;  /* adopted a full segment */
        break;
      }
    }
    uint32_t took = 0;
    while (got + took < want && s->free) {
      hak_block* b = s->free;
      s->free = HAK_DEC(b, b->next);
      s->nfree--;
      if (last) last->next = HAK_ENC(last, b); else first = b;
      last = b;
      took++;
    }
    HAK_DBG_ADD(h, REFILL_SLAB_FREELIST, took);
    uint32_t from_list = took;
    (void)from_list;
    uint8_t* bump = hak_load_relaxed(&s->bump);
    while (got + took < want && bump + bsize <= s->end) {
      hak_block* b = (hak_block*)bump;
      bump += bsize;
      b->key = hak_free_key;
      if (last) last->next = HAK_ENC(last, b); else first = b;
      last = b;
      took++;
    }
    hak_store_release(&s->bump, bump);
    HAK_DBG_ADD(h, REFILL_BUMP, took - from_list);
    s->used += took;
    got += took;
    if (s->free == NULL && bump + bsize > s->end) {
      if (hak_load_relaxed(&s->remote) != NULL && hak_remote_drain(s) > 0) {
        HAK_DBG(h, REFILL_REMOTE_DRAIN);
        continue;
      }
      hak_slab_list_remove(h, s);
      hak_slab_list_push(h, s, HAK_SLAB_FULL);
    }
  }
  if (!first) {
    HAK_DBG(h, EARLY_REFILL_OOM);
    return NULL;
  }
  last->next = HAK_ENC(last, h->tc[cls].head);
  hak_block* b = first;
  hak_tcache* tc = &h->tc[cls];
  tc->head = HAK_DEC(b, b->next);
  tc->count += got - 1;
  tc->nalloc++;
  b->key = 0;
  return b;
}

void hak_tcache_flush(hak_heap* h, unsigned cls, uint32_t keep) {
  h->cc[cls].flushes++;
  heap_slow_event(h);
  hak_tcache* tc = &h->tc[cls];
  hak_block* b = tc->head;
  hak_block* prev = NULL;
  uint32_t kept = 0;
  for (; kept < keep && b; kept++) { prev = b; b = HAK_DEC(b, b->next); }
  if (prev) prev->next = HAK_ENC(prev, NULL); else tc->head = NULL;
  tc->count = kept;
  while (b) {
    hak_block* next = HAK_DEC(b, b->next);
    hak_segment* seg = hak_registry_lookup((uintptr_t)b);
    hak_slab_return_local(h, hak_slab_of(seg, (uintptr_t)b), b);
    HAK_DBG(h, FLUSH_TO_SLAB);
    b = next;
  }
}
