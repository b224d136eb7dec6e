/* guards.c — the controller's safety valves. Crossing one makes the controller put the
 * defaults back and stop steering (the CPU guard also stops the scavenger): a
 * controller that hurts latency, memory or CPU is worse than none. Pure. */
#include "ace/ace.h"

#include <stdio.h>

ace_guard ace_guards_check(const ace_metrics* m, const hakmem_ace_config_t* cfg, double ace_cpu_fraction,
                           char* reason, size_t n) {
  if (cfg->max_cpu_percent && ace_cpu_fraction * 100.0 > (double)cfg->max_cpu_percent) {
    snprintf(reason, n, "guard: ACE thread CPU %.1f%% > %u%% (5 s average): defaults restored, steering and scavenging stopped",
             ace_cpu_fraction * 100.0, cfg->max_cpu_percent);
    return ACE_GUARD_CPU;
  }
  if (cfg->max_rss_bytes && m->rss_bytes > cfg->max_rss_bytes) {
    snprintf(reason, n, "guard: RSS %llu MiB > %llu MiB: defaults restored, steering stopped",
             (unsigned long long)(m->rss_bytes >> 20), (unsigned long long)(cfg->max_rss_bytes >> 20));
    return ACE_GUARD_RSS;
  }
  if (cfg->max_p99_lat_ns && m->lat_samples >= ACE_GUARD_MIN_SAMPLES && m->lat_p99_ns > cfg->max_p99_lat_ns) {
    snprintf(reason, n, "guard: slow-path p99 %llu ns > %llu ns (%llu samples): defaults restored, steering stopped",
             (unsigned long long)m->lat_p99_ns, (unsigned long long)cfg->max_p99_lat_ns,
             (unsigned long long)m->lat_samples);
    return ACE_GUARD_LATENCY;
  }
  if (n) reason[0] = 0;
  return ACE_GUARD_OK;
}

double ace_cpu_average(double avg, double fraction, uint64_t dt_ns) {
  double w = (double)dt_ns / (double)ACE_GUARD_CPU_WINDOW_NS;
  if (w > 1) w = 1;
  return avg + (fraction - avg) * w;
}
