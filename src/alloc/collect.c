/* collect.c — summing the allocator's counters without allocating (see collect.h). */
#include "alloc/collect.h"
#include "alloc/os_counters.h"

#include <string.h>

hak_os_counters hak_os_ctr;

/* Other threads' counters are read racily on purpose: each is a word-sized plain store
 * by its owner, and a statistic may lag by the operations in flight. */
#define RD(x) (*(const volatile uint64_t*)&(x))

static uint64_t nonneg(int64_t v) { return v < 0 ? 0 : (uint64_t)v; }

__attribute__((no_sanitize_thread))
static void add_heap(const hak_heap* h, void* arg) {
  hak_collect* out = arg;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    hak_collect_class* k = &out->cls[c];
    k->allocs += hak_heap_allocs(h, c);
    k->frees += RD(h->tc[c].nfree) + RD(h->cc[c].remote_out);
    k->refills += RD(h->cc[c].refills);
    k->flushes += RD(h->cc[c].flushes);
    k->remote_frees += RD(h->cc[c].remote_out);
  }
  out->slabs_assigned += RD(h->ctr.slabs_new);
  for (unsigned b = 0; b < HAK_LAT_BUCKETS; b++) out->lat_hist[b] += RD(h->lat_hist[b]);
  out->segments_adopted += RD(h->ctr.segs_adopted);
  for (unsigned i = 0; i < HAK_RE_COUNT; i++) out->realloc[i] += RD(h->realloc_ctr[i]);
  for (unsigned m = 0; m < 2; m++) {
    for (unsigned b = 0; b < HAK_COPY_BUCKETS; b++) {
      out->copy.n[m][b] += RD(h->copy.n[m][b]);
      out->copy.bytes[m][b] += RD(h->copy.bytes[m][b]);
      out->copy.ns[m][b] += RD(h->copy.ns[m][b]);
    }
  }
#if HAK_DEBUG_COUNTERS
  for (unsigned i = 0; i < HAK_DBG_COUNT; i++) out->dbg[i] += RD(h->dbg[i]);
#endif
}

void hak_collect_all(hak_collect* out) {
  memset(out, 0, sizeof *out);
  /* The caller's batched cross-thread frees go to their slabs first: the backlog then
   * counts what the owners have not taken, not what this thread still holds. */
  hak_heap* self = hak_tls_heap;
  if (hak_heap_is_thread_heap(self)) hak_remote_flush(self);
  if (hak_load_acquire(&hak_init_state) == 2) {
    hak_heap_foreach(add_heap, out, &out->threads_started, &out->threads_ended);
  }
  hak_os_counters* o = &hak_os_ctr;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    hak_collect_class* k = &out->cls[c];
    k->block_size = hak_cls_size[c];
    uint64_t orphan = hak_load_relaxed(&o->orphan_frees[c]);
    k->frees += orphan;
    k->remote_frees += orphan;
    k->remote_drained = hak_load_relaxed(&o->remote_drained[c]);
    k->remote_backlog = k->remote_frees > k->remote_drained ? k->remote_frees - k->remote_drained : 0;
    k->in_use = k->allocs > k->frees ? k->allocs - k->frees : 0;
    k->bytes_in_use = k->in_use * k->block_size;
    k->bytes_held = nonneg(hak_load_relaxed(&o->slab_bytes[c]));
    out->allocs += k->allocs;
    out->frees += k->frees;
    out->refills += k->refills;
    out->flushes += k->flushes;
    out->remote_frees += k->remote_frees;
    out->remote_drained += k->remote_drained;
    out->remote_backlog += k->remote_backlog;
    out->bytes_in_use += k->bytes_in_use;
    out->slab_bytes_held += k->bytes_held;
  }
  for (unsigned kind = 0; kind < HAK_SEG_KINDS; kind++) {
    out->unused_dirty_bytes[kind] = nonneg(hak_load_relaxed(&o->unused_dirty_bytes[kind]));
  }
  out->segment_cache_dirty_bytes = hak_segment_cache_dirty_bytes();
  out->large_cache_dirty_bytes = hak_large_cache_dirty_bytes();
  out->large_allocs = hak_load_relaxed(&o->large_allocs);
  out->large_frees = hak_load_relaxed(&o->large_frees);
  out->large_in_use_bytes = nonneg(hak_load_relaxed(&o->large_in_use));
  out->large_fresh_bytes = hak_load_relaxed(&o->large_fresh_bytes);
  out->seg_fresh_bytes = hak_load_relaxed(&o->seg_fresh_bytes);
  out->allocs += out->large_allocs;
  out->frees += out->large_frees;
  out->bytes_in_use += out->large_in_use_bytes;
  out->bytes_mapped = nonneg(hak_load_relaxed(&o->bytes_mapped));
  out->bytes_cached = nonneg(hak_load_relaxed(&o->bytes_cached));
  out->bytes_decommitted = hak_load_relaxed(&o->decommit_bytes);
  out->purge_bytes = hak_load_relaxed(&o->purge_bytes);
  out->interior_release_bytes = hak_load_relaxed(&o->interior_release_bytes);
  out->tc_trimmed_bytes = hak_load_relaxed(&o->tc_trimmed_bytes);
  out->tc_cuts = hak_load_relaxed(&o->tc_cuts);
  out->interior_refault_bytes = hak_load_relaxed(&o->interior_refault_bytes);
  out->slab_refault_bytes = hak_load_relaxed(&o->slab_refault_bytes);
  out->os_failures = hak_load_relaxed(&o->os_failures);
  out->decommit_calls = hak_load_relaxed(&o->decommit_calls);
  out->segment_cache_hits = hak_load_relaxed(&o->seg_cache_hits);
  out->large_cache_hits = hak_load_relaxed(&o->large_cache_hits);
  out->large_grown_in_place = hak_load_relaxed(&o->large_grow_in_place);
  out->large_moved = hak_load_relaxed(&o->large_moved);
  out->segments_mapped = hak_load_relaxed(&o->seg_mapped);
  out->segments_unmapped = hak_load_relaxed(&o->seg_unmapped);
  out->segments_listed = hak_seglist_count();
  out->lock_waits = hak_load_relaxed(&hak_lock_waits);
  for (unsigned i = 0; i < HAK_RE_COUNT; i++) out->realloc[i] += hak_load_relaxed(&o->realloc_orphan[i]);
}
