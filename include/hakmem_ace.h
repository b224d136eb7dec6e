/* hakmem_ace.h — the knob snapshot: every value the allocator's slow paths steer by.
 *
 * A snapshot is built from the HAKMEM_* options at start-up; the ACE controller (and
 * only it) publishes newer ones. A snapshot is immutable once published, and
 * `generation` grows with each one, so a thread notices a new snapshot with one load
 * and takes its values on its next refill or flush. The struct is versioned like
 * hak_stats: set `size` before hak_knobs_get().
 */
#ifndef HAKMEM_ACE_H
#define HAKMEM_ACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_KNOBS_VERSION 2
#define HAKMEM_KNOB_CLASSES 112

typedef struct hak_knobs {
  uint32_t size;             /* in: sizeof(hak_knobs) of the caller; out: bytes filled */
  uint32_t version;          /* out: HAKMEM_KNOBS_VERSION */
  uint64_t generation;       /* 1 for the start-up snapshot, +1 per published snapshot */

  /* Per size class (index = class, see hak_stats_class.block_size). */
  uint32_t tls_cap[HAKMEM_KNOB_CLASSES];       /* most free blocks a thread caches (>= 1) */
  uint32_t refill_batch[HAKMEM_KNOB_CLASSES];  /* most blocks moved from slabs per refill: the
                                                  "bundle width" (1..tls_cap; the first refill of
                                                  a class moves about one page, then doubles) */
  uint32_t remote_drain_interval[HAKMEM_KNOB_CLASSES]; /* refills of the class between drains of
                                                  the remote frees waiting on its full slabs */

  /* Per thread heap. */
  uint32_t sweep_interval;        /* refills + flushes between heap sweeps (drain every remote
                                     list, give back empty slabs, purge unused pages) */
  uint32_t diet_pct;              /* percent of tls_cap in force, 1..100 (100: no diet) */
  uint32_t purge_delay_ms;        /* unused slabs and cached segments and mappings stay
                                     resident this long before their pages go back */
  uint32_t partial_release_pages; /* smallest run of whole free pages a release inside a
                                     partly used slab gives back */

  /* Process-wide caches. */
  uint64_t segment_cache_bytes;        /* address space of empty segments kept for reuse */
  uint64_t segment_cache_dirty_bytes;  /* of which resident before the purge delay */
  uint64_t large_cache_bytes;          /* bytes of freed large mappings kept for reuse */
  uint32_t large_cache_entries;        /* freed large mappings kept for reuse */

  /* realloc. */
  uint32_t realloc_shrink_keep_pct;    /* a block shrunk to at least this percent of its
                                          usable size stays where it is */
  uint32_t realloc_grow_headroom_pct;  /* a block (<= 1 MiB) that grows by less than this
                                          percent and must move gets this much room */
  uint32_t reserved;
} hak_knobs;

/* Copy the current snapshot into *out (out->size must be set). Returns 0, or -1 with
 * errno EINVAL when out is NULL or out->size is smaller than size and version. */
int hak_knobs_get(hak_knobs* out);

#ifdef __cplusplus
}
#endif
#endif
