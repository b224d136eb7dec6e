/* trace.c — HAKMEM_ACE_TRACE=path: one JSON object per line and tick, so that a person
 * can see what the controller saw, decided and why (tools/ace-plot draws it):
 *   {"t":1.503,"tick":"fast","mode":"steering","policy":"ucb1","pmu":"software",
 *    "metrics":{...},"knobs":{...},"reason":"...","scavenged":123}
 * Written with write(2) from the ACE thread only. */
#include "ace/ace.h"
#include "prim/prim.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static hak_kept_fd trace = HAK_KEPT_FD_NONE;   /* the trace file (prim.h: kept fds); fd -1: none */
/* The file opened last: a restart of ACE in the same process (switched off and on)
 * appends to it, a new name (a fork child's %p) starts a file afresh. */
static char last_path[512];

void ace_trace_open(const char* path) {
  if (!path || !*path || trace.fd >= 0) return;
  bool again = strcmp(path, last_path) == 0;
  int fd = hak_prim_fd_high(open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (again ? O_APPEND : O_TRUNC), 0644));
  if (fd < 0) {
    ace_log(1, "cannot open the trace file %s", path);
    return;
  }
  snprintf(last_path, sizeof last_path, "%s", path);
  hak_prim_kept_adopt(&trace, fd);
}

bool ace_trace_active(void) { return trace.fd >= 0; }

typedef struct line { char buf[4096]; size_t len; } line;

static void put(line* l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(line* l, const char* fmt, ...) {
  if (l->len >= sizeof l->buf) return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(l->buf + l->len, sizeof l->buf - l->len, fmt, ap);
  va_end(ap);
  if (w > 0) l->len = l->len + (size_t)w < sizeof l->buf ? l->len + (size_t)w : sizeof l->buf - 1;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_str(line* l, const char* s) {
  put(l, "\"");
  for (; *s && l->len + 8 < sizeof l->buf; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') put(l, "\\%c", c);
    else if (c < 0x20) put(l, "\\u%04x", c);
    else l->buf[l->len++] = (char)c;
  }
  put(l, "\"");
}

/* A number that JSON accepts (no nan/inf). */
static void put_num(line* l, const char* key, double v) {
  if (v != v || v > 1e300 || v < -1e300) v = -1;
  put(l, ",\"%s\":%.6g", key, v);
}

void ace_trace_tick(double t_s, const char* tick, const ace_metrics* m, const hak_knobs* k, const char* mode,
                    const char* policy, const char* pmu, const char* reason, uint64_t scavenged) {
  if (trace.fd < 0) return;
  line l = {.len = 0};
  put(&l, "{\"t\":%.3f,\"tick\":", t_s);
  put_str(&l, tick);
  put(&l, ",\"mode\":");
  put_str(&l, mode);
  put(&l, ",\"policy\":");
  put_str(&l, policy);
  put(&l, ",\"pmu\":");
  put_str(&l, pmu);
  put(&l, ",\"metrics\":{\"dt_ms\":%.1f", (double)m->dt_ns / 1e6);
  put_num(&l, "ops_per_s", m->ops_per_s);
  put_num(&l, "ops_per_cpu_s", m->ops_per_cpu_s);
  put_num(&l, "cpu_fraction", m->cpu_fraction);
  put(&l, ",\"lat_p50_ns\":%llu,\"lat_p90_ns\":%llu,\"lat_p99_ns\":%llu,\"lat_samples\":%llu",
      (unsigned long long)m->lat_p50_ns, (unsigned long long)m->lat_p90_ns, (unsigned long long)m->lat_p99_ns,
      (unsigned long long)m->lat_samples);
  put(&l, ",\"remote_backlog\":%llu", (unsigned long long)m->remote_backlog);
  put_num(&l, "lock_waits_per_s", m->lock_waits_per_s);
  put_num(&l, "llc_miss_rate", m->llc_miss_rate);
  put_num(&l, "page_faults_per_s", m->page_faults_per_s);
  put_num(&l, "sys_share", m->sys_share);
  put_num(&l, "refault_bytes_per_s", m->refault_bytes_per_s);
  put_num(&l, "large_fresh_bytes_per_s", m->large_fresh_bytes_per_s);
  put_num(&l, "compact_stalls_per_s", m->compact_stalls_per_s);
  put_num(&l, "seg_fresh_bytes_per_s", m->seg_fresh_bytes_per_s);
  put(&l, ",\"seg_bytes_live\":%llu,\"seg_sample_bytes\":%llu,\"seg_sample_resident\":%llu",
      (unsigned long long)m->seg_bytes_live, (unsigned long long)m->seg_sample_bytes,
      (unsigned long long)m->seg_sample_resident);
  put(&l, ",\"idle_cache_trimmed_bytes\":%llu", (unsigned long long)m->idle_cache_trimmed_bytes);
  put(&l, ",\"bytes_in_use\":%llu,\"bytes_held\":%llu,\"unused_resident\":%llu",
      (unsigned long long)m->bytes_in_use, (unsigned long long)m->bytes_held, (unsigned long long)m->unused_resident);
  put_num(&l, "fragmentation", m->fragmentation);
  put(&l, ",\"rss_bytes\":%llu", (unsigned long long)m->rss_bytes);
  put_num(&l, "ace_cpu_fraction", m->ace_cpu_fraction);
  put(&l, ",\"ace_cpu_ms\":%.3f,\"scavenge_cpu_ms\":%.3f,\"scavenge_delay_ms\":%llu}", (double)m->ace_cpu_ns / 1e6,
      (double)m->scavenge_cpu_ns / 1e6, (unsigned long long)m->scavenge_delay_ms);
  /* Knobs: the per-heap and process-wide ones, and the per-class arrays summed (one
   * number per array tells whether a diet or a widening is in force). */
  uint64_t caps = 0, batch = 0, drain = 0;
  for (unsigned c = 0; c < HAKMEM_KNOB_CLASSES; c++) {
    caps += k->tls_cap[c];
    batch += k->refill_batch[c];
    drain += k->remote_drain_interval[c];
  }
  put(&l, ",\"knobs\":{\"generation\":%llu,\"tls_cap_sum\":%llu,\"refill_batch_sum\":%llu,"
          "\"remote_drain_interval_sum\":%llu,\"tls_cap_16\":%u,\"tls_cap_1k\":%u,\"tls_cap_32k\":%u,"
          "\"tls_grow_budget_bytes\":%llu,"
          "\"sweep_interval\":%u,\"diet_pct\":%u,\"purge_delay_ms\":%u,\"partial_release_pages\":%u,"
          "\"segment_cache_dirty_bytes\":%llu,\"large_cache_bytes\":%llu,\"huge_pages\":%u}",
      (unsigned long long)k->generation, (unsigned long long)caps, (unsigned long long)batch,
      (unsigned long long)drain, k->tls_cap[0], k->tls_cap[31], k->tls_cap[71],
      (unsigned long long)k->tls_grow_budget_bytes, k->sweep_interval, k->diet_pct,
      k->purge_delay_ms, k->partial_release_pages, (unsigned long long)k->segment_cache_dirty_bytes,
      (unsigned long long)k->large_cache_bytes, k->huge_pages);
  put(&l, ",\"reason\":");
  put_str(&l, reason ? reason : "");
  put(&l, ",\"scavenged\":%llu}\n", (unsigned long long)scavenged);
  if (l.len >= sizeof l.buf - 1) { l.buf[sizeof l.buf - 2] = '\n'; l.len = sizeof l.buf - 1; }
  if (!hak_prim_kept_valid(&trace)) {   /* the program took the number: stop tracing */
    trace.fd = -1;
    return;
  }
  size_t off = 0;
  while (off < l.len) {
    ssize_t w = write(trace.fd, l.buf + off, l.len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
}

void ace_trace_close(void) {
  hak_prim_kept_close(&trace);
}
