/* stats.c — statistics: per-heap counters summed over live heaps, OS counters, and
 * the summary printed at exit when HAKMEM_STATS is set. */
#include "alloc/alloc.h"
#include "options.h"
#include "prim/prim.h"
#include "stats_os.h"

#include <stdio.h>
#include <stdlib.h>

hak_os_counters hak_os_ctr;

static void stats_at_exit(void) {
  hak_os_counters* c = &hak_os_ctr;
  char buf[1024];
  int n = snprintf(buf, sizeof buf,
    "hakmem: stats: segments mapped %llu, cache hits %llu, cached %llu, unmapped %llu; "
    "decommit calls %llu, bytes %llu (purge %llu); rss %zu KiB\n",
    (unsigned long long)c->seg_mapped, (unsigned long long)c->seg_cache_hits,
    (unsigned long long)c->seg_cached, (unsigned long long)c->seg_unmapped,
    (unsigned long long)c->decommit_calls, (unsigned long long)c->decommit_bytes,
    (unsigned long long)c->purge_bytes, hak_prim_rss_bytes() >> 10);
  if (n > 0) hak_prim_write_err(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

HAK_HIDDEN void hak_stats_init(void) {
  if (hak_opt(HAK_OPT_STATS)) atexit(stats_at_exit);
}
