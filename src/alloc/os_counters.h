/* os_counters.h — process-wide counters of OS-level events (mappings, decommits) and of
 * memory by state. These change off the fast paths only, so relaxed atomic adds are
 * cheap enough. */
#ifndef HAK_STATS_OS_H
#define HAK_STATS_OS_H
#include "alloc/alloc.h"

typedef struct hak_os_counters {
  _Atomic uint64_t seg_mapped, seg_cache_hits, seg_unmapped;
  _Atomic uint64_t decommit_calls, decommit_bytes, purge_bytes;
  _Atomic int64_t  bytes_mapped;          /* segments + large mappings, now */
  _Atomic int64_t  bytes_cached;          /* of which in the segment and large caches */
  _Atomic uint64_t large_allocs, large_frees, large_cache_hits, large_grow_in_place, large_moved;
  _Atomic int64_t  large_in_use;          /* usable bytes of live large blocks */
  _Atomic uint64_t large_fresh_bytes;     /* large blocks handed out with pages to fault in */
  _Atomic uint64_t seg_fresh_bytes;       /* segments handed out with pages to fault in */
  _Atomic uint64_t orphan_frees[HAK_NCLS];   /* frees by threads without a heap, per class */
  _Atomic uint64_t remote_drained[HAK_NCLS]; /* remote frees taken back, per class */
  _Atomic int64_t  slab_bytes[HAK_NCLS];     /* slab area assigned to each class, now */
  _Atomic int64_t  unused_dirty_bytes[HAK_SEG_KINDS]; /* unused slabs still resident, now */
  _Atomic uint64_t interior_release_bytes;   /* pages inside free blocks given back */
  _Atomic uint64_t interior_refault_bytes;   /* of those, handed out again (faulted back) */
  _Atomic uint64_t slab_refault_bytes;       /* purged slabs reused (faulted back) */
  _Atomic uint64_t tc_trimmed_bytes;         /* blocks cut off idle threads' TLS lists */
  _Atomic uint64_t tc_cuts, tc_cuts_undone;  /* lists cut, and cuts undone (owner moved) */
  _Atomic uint64_t os_failures;              /* munmap/madvise calls the kernel refused */
  _Atomic uint64_t realloc_orphan[HAK_RE_COUNT]; /* realloc outcomes of threads without a heap */
} hak_os_counters;

HAK_HIDDEN extern hak_os_counters hak_os_ctr;
#define HAK_OS_COUNT(field, n) atomic_fetch_add_explicit(&hak_os_ctr.field, (n), memory_order_relaxed)
#endif
