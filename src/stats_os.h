/* stats_os.h — process-wide counters of OS-level events (mappings, decommits). These
 * happen off the fast path only, so relaxed atomic adds are cheap enough. */
#ifndef HAK_STATS_OS_H
#define HAK_STATS_OS_H
#include "hak_base.h"

typedef struct hak_os_counters {
  _Atomic uint64_t seg_mapped, seg_cache_hits, seg_cached, seg_unmapped;
  _Atomic uint64_t decommit_calls, decommit_bytes, purge_bytes;
  _Atomic uint64_t large_mapped, large_cache_hits, large_unmapped, large_grow_in_place, large_moved;
} hak_os_counters;

HAK_HIDDEN extern hak_os_counters hak_os_ctr;
#define HAK_OS_COUNT(field, n) atomic_fetch_add_explicit(&hak_os_ctr.field, (n), memory_order_relaxed)
#endif
