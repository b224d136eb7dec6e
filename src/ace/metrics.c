/* metrics.c — one window of metrics from two collections (alloc/collect.h) and two PMU
 * readings. Pure: the controller supplies the inputs, tests supply scripted ones. */
#include "ace/ace.h"

#include <string.h>

uint64_t ace_hist_percentile(const uint64_t* hist, unsigned buckets, double p) {
  uint64_t total = 0;
  for (unsigned b = 0; b < buckets; b++) total += hist[b];
  if (total == 0) return 0;
  uint64_t rank = (uint64_t)((double)total * p / 100.0);
  if (rank >= total) rank = total - 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < buckets; b++) {
    seen += hist[b];
    if (seen > rank) return b == 0 ? 1 : (uint64_t)1 << b;   /* the bucket's upper bound */
  }
  return (uint64_t)1 << (buckets - 1);
}

static uint64_t delta(uint64_t a, uint64_t b) { return b > a ? b - a : 0; }

void ace_metrics_compute(const hak_collect* prev, const hak_collect* cur, const ace_pmu_reading* pprev,
                         const ace_pmu_reading* pcur, uint64_t dt_ns, ace_metrics* out) {
  memset(out, 0, sizeof *out);
  out->dt_ns = dt_ns;
  double dt = dt_ns ? (double)dt_ns / 1e9 : 1e-9;
  uint64_t ops = delta(prev->allocs, cur->allocs) + delta(prev->frees, cur->frees);
  out->ops_per_s = (double)ops / dt;
  uint64_t cpu = delta(pprev->cpu_ns, pcur->cpu_ns);
  out->cpu_fraction = (double)cpu / 1e9 / dt;
  out->ops_per_cpu_s = cpu ? (double)ops / ((double)cpu / 1e9) : 0;
  uint64_t sys = delta(pprev->sys_ns, pcur->sys_ns);
  out->sys_share = cpu ? (sys < cpu ? (double)sys / (double)cpu : 1.0) : 0;
  uint64_t hist[HAK_LAT_BUCKETS];
  for (unsigned b = 0; b < HAK_LAT_BUCKETS; b++) {
    hist[b] = delta(prev->lat_hist[b], cur->lat_hist[b]);
    out->lat_samples += hist[b];
  }
  out->lat_p50_ns = ace_hist_percentile(hist, HAK_LAT_BUCKETS, 50);
  out->lat_p90_ns = ace_hist_percentile(hist, HAK_LAT_BUCKETS, 90);
  out->lat_p99_ns = ace_hist_percentile(hist, HAK_LAT_BUCKETS, 99);
  uint64_t frees = 0, remote = 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    out->backlog[c] = cur->cls[c].remote_backlog;
    uint64_t a = delta(prev->cls[c].allocs, cur->cls[c].allocs);
    uint64_t f = delta(prev->cls[c].frees, cur->cls[c].frees);
    uint64_t r = delta(prev->cls[c].refills, cur->cls[c].refills);
    uint64_t fl = delta(prev->cls[c].flushes, cur->cls[c].flushes);
    out->allocs[c] = a;
    out->frees[c] = f;
    out->hit_rate[c] = a ? 1.0 - (double)(r < a ? r : a) / (double)a : 1.0;
    out->slow_rate[c] = a + f ? (double)(r + fl) / (double)(a + f) : 0.0;
    out->tier_ops[c <= HAK_CLS_TINY_LAST ? HAK_SEG_TINY : c <= HAK_CLS_MID_LAST ? HAK_SEG_MID : HAK_SEG_POOL] += a + f;
    frees += f;
    remote += delta(prev->cls[c].remote_frees, cur->cls[c].remote_frees);
  }
  out->tier_ops[HAK_SEG_LARGE] = delta(prev->large_allocs, cur->large_allocs) + delta(prev->large_frees, cur->large_frees);
  out->remote_fraction = frees ? (double)(remote < frees ? remote : frees) / (double)frees : 0.0;
  out->remote_backlog = cur->remote_backlog;
  out->lock_waits_per_s = (double)delta(prev->lock_waits, cur->lock_waits) / dt;
  if (pcur->mode == 2 && pcur->llc_loads > pprev->llc_loads) {
    out->llc_miss_rate = (double)delta(pprev->llc_misses, pcur->llc_misses) /
                         (double)delta(pprev->llc_loads, pcur->llc_loads);
  } else {
    out->llc_miss_rate = -1;
  }
  out->page_faults_per_s = pcur->mode >= 1 ? (double)delta(pprev->page_faults, pcur->page_faults) / dt : -1;
  out->compact_stalls_per_s = (double)delta(pprev->compact_stalls, pcur->compact_stalls) / dt;
  uint64_t refault = delta(prev->interior_refault_bytes + prev->slab_refault_bytes,
                           cur->interior_refault_bytes + cur->slab_refault_bytes);
  out->refault_bytes_per_s = (double)refault / dt;
  out->large_fresh_bytes_per_s = (double)delta(prev->large_fresh_bytes, cur->large_fresh_bytes) / dt;
  out->seg_fresh_bytes_per_s = (double)delta(prev->seg_fresh_bytes, cur->seg_fresh_bytes) / dt;
  /* Segments alone: large blocks left out at their usable size (their headers and
   * page rounding are within a page each). */
  uint64_t live = cur->bytes_mapped > cur->bytes_cached ? cur->bytes_mapped - cur->bytes_cached : 0;
  out->seg_bytes_live = live > cur->large_in_use_bytes ? live - cur->large_in_use_bytes : 0;
  out->seg_sample_bytes = out->seg_sample_resident = 0;   /* the controller's, when needed */
  out->idle_cache_trimmed_bytes = delta(prev->tc_trimmed_bytes, cur->tc_trimmed_bytes);
  out->bytes_in_use = cur->bytes_in_use;
  out->bytes_held = cur->bytes_mapped;
  uint64_t unused = cur->segment_cache_dirty_bytes + cur->large_cache_dirty_bytes;
  for (unsigned k = 0; k < HAK_SEG_KINDS; k++) unused += cur->unused_dirty_bytes[k];
  out->unused_resident = unused;
  out->large_cache_resident = cur->large_cache_dirty_bytes;
  out->fragmentation = cur->bytes_mapped ? (double)cur->bytes_in_use / (double)cur->bytes_mapped : 1.0;
}
