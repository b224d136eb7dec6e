/* collect.h — the alloc -> runtime/ACE seam for numbers: one call fills a caller's
 * struct with the allocator's counters and memory by state. It allocates nothing and
 * holds the heap-pool lock only while it sums the live heaps' counters, so a
 * controller can call it every few milliseconds. Per-thread counters are plain stores
 * of their owners, read here without ordering: a reading may lag by the operations in
 * flight, never by more. */
#ifndef HAK_ALLOC_COLLECT_H
#define HAK_ALLOC_COLLECT_H

#include "alloc/alloc.h"

typedef struct hak_collect_class {
  uint64_t block_size;
  uint64_t allocs, frees;          /* blocks, cumulative */
  uint64_t refills, flushes;       /* TLS list slow paths, cumulative */
  uint64_t remote_frees;           /* cross-thread frees (and frees by heap-less threads) */
  uint64_t remote_drained;         /* of those, taken back by the owner */
  uint64_t remote_backlog;         /* remote_frees - remote_drained, now */
  uint64_t in_use;                 /* blocks with the program, now */
  uint64_t bytes_in_use;           /* in_use * block_size */
  uint64_t bytes_held;             /* slab area assigned to the class, now */
} hak_collect_class;

typedef struct hak_collect {
  hak_collect_class cls[HAK_NCLS];
  uint64_t allocs, frees, refills, flushes, remote_frees, remote_drained, remote_backlog;
  uint64_t bytes_in_use;                       /* small blocks + large blocks (usable size) */
  uint64_t slab_bytes_held;                    /* slab areas assigned to classes */
  uint64_t unused_dirty_bytes[HAK_SEG_KINDS];  /* unused slabs still resident, by tier */
  uint64_t segment_cache_dirty_bytes;          /* resident bytes of cached empty segments */
  uint64_t large_cache_dirty_bytes;            /* resident bytes of cached large mappings */
  uint64_t large_allocs, large_frees, large_in_use_bytes;
  uint64_t large_fresh_bytes;                  /* cumulative: large-block bytes handed out not
                                                  resident (fresh mappings, given-back spans) */
  uint64_t seg_fresh_bytes;                    /* cumulative: likewise, segments */
  uint64_t bytes_mapped, bytes_cached;         /* now */
  uint64_t bytes_decommitted, purge_bytes;     /* cumulative */
  uint64_t interior_release_bytes, interior_refault_bytes, slab_refault_bytes;
  uint64_t tc_trimmed_bytes, tc_cuts;      /* idle threads' TLS lists cut (tc_trim.c) */
  uint64_t lat_hist[HAK_LAT_BUCKETS];          /* sampled refill times, log2(ns) buckets */
  uint64_t os_failures, decommit_calls;
  uint64_t segment_cache_hits, large_cache_hits, large_grown_in_place, large_moved;
  uint64_t segments_mapped, segments_unmapped, segments_listed, segments_adopted;
  uint64_t slabs_assigned;
  uint64_t lock_waits;
  uint64_t threads_started, threads_ended;
  uint64_t realloc[HAK_RE_COUNT];              /* realloc outcomes (HAK_RE_*) */
  hak_copy_samples copy;                       /* timed big realloc copies, cumulative */
  uint64_t dbg[HAK_DBG_COUNT];                 /* zero unless HAK_DEBUG_COUNTERS */
} hak_collect;

/* Fill *out (every field). Safe from any thread, at any time after init. */
HAK_HIDDEN void hak_collect_all(hak_collect* out);

#endif
