/* stats.c — the public hak_stats_* API over the allocator's collection (alloc/collect.h),
 * and the report printed at exit when HAKMEM_STATS is set (1: text, json: JSON). */
#include "runtime/runtime.h"
#include "alloc/alloc_fast.h"
#include "alloc/collect.h"
#include "base/io.h"
#include "base/options.h"
#include "prim/prim.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(HAKMEM_STATS_CLASSES == HAK_NCLS, "public class count matches the size-class table");
_Static_assert(HAK_DBG_COUNT <= HAKMEM_STATS_DEBUG_MAX, "debug counters fit the public struct");

static const char* const dbg_names[HAK_DBG_COUNT] = {
#define HAK_DBG_NAME(e, name, help) name,
  HAK_DBG_LIST(HAK_DBG_NAME)
#undef HAK_DBG_NAME
};

/* Set by the ACE layer (it stands above this one) when its thread starts and stops. */
static _Atomic uint32_t stats_ace_running, stats_pmu_mode;
void hak_stats_set_ace(uint32_t running, uint32_t pmu_mode) {
  hak_store_relaxed(&stats_ace_running, running);
  hak_store_relaxed(&stats_pmu_mode, pmu_mode);
}

/* Fill *st from one collection (alloc/collect.h); allocates nothing. */
static void stats_collect(hak_stats* st) {
  hak_collect c;
  hak_collect_all(&c);
  memset(st, 0, sizeof *st);
  st->size = sizeof *st;
  st->version = HAKMEM_STATS_VERSION;
  for (unsigned i = 0; i < HAK_NCLS; i++) {
    const hak_collect_class* from = &c.cls[i];
    hak_stats_class* k = &st->cls[i];
    k->block_size = from->block_size;
    k->allocs = from->allocs;
    k->frees = from->frees;
    k->in_use = from->in_use;
    k->refills = from->refills;
    k->flushes = from->flushes;
    k->remote_frees = from->remote_frees;
    k->remote_backlog = from->remote_backlog;
  }
  st->allocs = c.allocs;
  st->frees = c.frees;
  st->refills = c.refills;
  st->flushes = c.flushes;
  st->remote_frees = c.remote_frees;
  st->remote_drained = c.remote_drained;
  st->remote_backlog = c.remote_backlog;
  st->bytes_in_use = c.bytes_in_use;
  st->bytes_held = c.bytes_mapped;
  st->bytes_cached = c.bytes_cached;
  st->bytes_decommitted = c.bytes_decommitted;
  st->rss_bytes = hak_prim_rss_bytes();
  st->segments_mapped = c.segments_mapped;
  st->segments_unmapped = c.segments_unmapped;
  st->segments_adopted = c.segments_adopted;
  st->slabs_assigned = c.slabs_assigned;
  st->large_allocs = c.large_allocs;
  st->large_frees = c.large_frees;
  st->lock_waits = c.lock_waits;
  st->threads_started = c.threads_started;
  st->threads_ended = c.threads_ended;
  uint64_t unused = c.segment_cache_dirty_bytes + c.large_cache_dirty_bytes;
  for (unsigned kind = 0; kind < HAK_SEG_KINDS; kind++) unused += c.unused_dirty_bytes[kind];
  st->bytes_unused_resident = unused;
  st->bytes_released_inside_blocks = c.interior_release_bytes;
  st->bytes_refaulted = c.interior_refault_bytes + c.slab_refault_bytes;
  st->os_failures = c.os_failures;
  st->decommit_calls = c.decommit_calls;
  st->segment_cache_hits = c.segment_cache_hits;
  st->large_cache_hits = c.large_cache_hits;
  st->large_grown_in_place = c.large_grown_in_place;
  st->large_moved = c.large_moved;
  st->superslab = hak_opt(HAK_OPT_TINY_USE_SUPERSLAB) != 0;
  st->ace = hak_load_relaxed(&stats_ace_running);
  st->pmu_mode = hak_load_relaxed(&stats_pmu_mode);
  st->nclasses = HAK_NCLS;
#if HAK_DEBUG_COUNTERS
  st->debug_counters = HAK_DBG_COUNT;
  for (unsigned i = 0; i < HAK_DBG_COUNT; i++) st->debug[i] = c.dbg[i];
#endif
}

HAK_EXPORT int hak_stats_get(hak_stats* out) {
  if (!out || out->size < 2 * sizeof(uint32_t)) { errno = EINVAL; return -1; }
  hak_ensure_init();
  if (out->size >= sizeof *out) {   /* the whole struct: fill it in place */
    stats_collect(out);
    return 0;
  }
  hak_stats full;
  stats_collect(&full);
  size_t n = out->size;
  memcpy(out, &full, n);
  out->size = (uint32_t)n;
  return 0;
}

HAK_EXPORT const char* hak_stats_debug_name(unsigned i) {
  return i < HAK_DBG_COUNT ? dbg_names[i] : NULL;
}

/* ---- output -------------------------------------------------------------------------- */
typedef struct outbuf { char* buf; size_t size, len; } outbuf;

static void out_printf(outbuf* o, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(outbuf* o, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->size ? o->size - o->len : 0;
  int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

static const char* pmu_mode_name(uint32_t m) { return m == 2 ? "hardware" : m == 1 ? "software" : "none"; }

static void stats_text(const hak_stats* st, outbuf* o) {
  out_printf(o, "hakmem: stats: modes: superslab %s, ACE %s, PMU %s, debug counters %s\n",
             st->superslab ? "on" : "off", st->ace ? "on" : "off",
             pmu_mode_name(st->pmu_mode), st->debug_counters ? "on" : "off");
#define HAK_TEXT_FIELD(name, help) out_printf(o, "hakmem: stats: %-18s %20llu  %s\n", #name, (unsigned long long)st->name, help);
  HAKMEM_STATS_FIELDS(HAK_TEXT_FIELD)
#undef HAK_TEXT_FIELD
  out_printf(o, "hakmem: stats: %5s %8s %12s %12s %10s %8s %8s %10s %8s\n", "class", "size", "allocs",
             "frees", "in_use", "refills", "flushes", "remote", "backlog");
  for (unsigned c = 0; c < st->nclasses; c++) {
    const hak_stats_class* k = &st->cls[c];
    if (!k->allocs && !k->frees) continue;
    out_printf(o, "hakmem: stats: %5u %8llu %12llu %12llu %10llu %8llu %8llu %10llu %8llu\n", c,
               (unsigned long long)k->block_size, (unsigned long long)k->allocs,
               (unsigned long long)k->frees, (unsigned long long)k->in_use,
               (unsigned long long)k->refills, (unsigned long long)k->flushes,
               (unsigned long long)k->remote_frees, (unsigned long long)k->remote_backlog);
  }
  for (unsigned i = 0; i < st->debug_counters; i++) {
    out_printf(o, "hakmem: stats: debug %-24s %20llu\n", dbg_names[i], (unsigned long long)st->debug[i]);
  }
}

static void stats_json(const hak_stats* st, outbuf* o) {
  out_printf(o, "{\"version\":%u,\"modes\":{\"superslab\":%s,\"ace\":%s,\"pmu\":\"%s\",\"debug_counters\":%s}",
             st->version, st->superslab ? "true" : "false", st->ace ? "true" : "false",
             pmu_mode_name(st->pmu_mode), st->debug_counters ? "true" : "false");
#define HAK_JSON_FIELD(name, help) out_printf(o, ",\"%s\":%llu", #name, (unsigned long long)st->name);
  HAKMEM_STATS_FIELDS(HAK_JSON_FIELD)
#undef HAK_JSON_FIELD
  out_printf(o, ",\"classes\":[");
  bool first = true;
  for (unsigned c = 0; c < st->nclasses; c++) {
    const hak_stats_class* k = &st->cls[c];
    if (!k->allocs && !k->frees) continue;
    out_printf(o, "%s{\"class\":%u,\"size\":%llu,\"allocs\":%llu,\"frees\":%llu,\"in_use\":%llu,"
               "\"refills\":%llu,\"flushes\":%llu,\"remote_frees\":%llu,\"remote_backlog\":%llu}",
               first ? "" : ",", c, (unsigned long long)k->block_size, (unsigned long long)k->allocs,
               (unsigned long long)k->frees, (unsigned long long)k->in_use,
               (unsigned long long)k->refills, (unsigned long long)k->flushes,
               (unsigned long long)k->remote_frees, (unsigned long long)k->remote_backlog);
    first = false;
  }
  out_printf(o, "],\"debug\":{");
  for (unsigned i = 0; i < st->debug_counters; i++) {
    out_printf(o, "%s\"%s\":%llu", i ? "," : "", dbg_names[i], (unsigned long long)st->debug[i]);
  }
  out_printf(o, "}}");
}

/* Where the exit report goes: a private copy of stderr taken at start-up, because
 * programs may close stderr in their own exit handlers (coreutils does) before ours. */
static int stats_fd = -1;

static void write_all(const char* s, size_t n) {
  if (stats_fd >= 0) hak_write_fd(stats_fd, s, n);
  else hak_write_err(s, n);
}

/* Render one snapshot with `fmt` (text or JSON) and write it to stderr: measure, then
 * allocate and fill, so the output is whole even though allocating moves the counters. */
static void stats_write(void (*fmt)(const hak_stats*, outbuf*), bool newline) {
  hak_stats* st = hak_malloc_fast(sizeof *st);
  if (!st) return;
  stats_collect(st);
  outbuf o = {NULL, 0, 0};
  fmt(st, &o);
  o.buf = hak_malloc_fast(o.len + 2);
  if (o.buf) {
    o.size = o.len + 1;
    o.len = 0;
    fmt(st, &o);
    if (newline) o.buf[o.len++] = '\n';
    write_all(o.buf, o.len);
    hak_free_fast(o.buf);
  }
  hak_free_fast(st);
}

HAK_EXPORT void hak_stats_print(void) {
  int saved = stats_fd;
  stats_fd = -1;               /* the program's stderr as it is now */
  stats_write(stats_text, false);
  stats_fd = saved;
}

HAK_EXPORT size_t hak_stats_json(char* buf, size_t size) {
  hak_ensure_init();
  hak_stats st;
  stats_collect(&st);
  outbuf o = {buf, buf ? size : 0, 0};
  stats_json(&st, &o);
  if (buf && size && o.len >= size) buf[size - 1] = 0;
  return o.len;
}

static void stats_at_exit(void) {
  if (hak_opt(HAK_OPT_STATS) == 2) stats_write(stats_json, true);
  else stats_write(stats_text, false);
}

HAK_HIDDEN void hak_stats_init(void) {
  if (hak_opt(HAK_OPT_STATS)) {
    stats_fd = hak_dup_stderr();
    atexit(stats_at_exit);
  }
}
