/* stats.c — statistics: the per-thread counters of every heap (plain stores, read here
 * without synchronisation), the process-wide OS counters, the public hak_stats_* API, and
 * the report printed at exit when HAKMEM_STATS is set (1: text, json: JSON). */
#include "alloc/alloc.h"
#include "hakmem.h"
#include "hakmem_stats.h"
#include "options.h"
#include "prim/prim.h"
#include "stats_os.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(HAKMEM_STATS_CLASSES == HAK_NCLS, "public class count matches the size-class table");
_Static_assert(HAK_DBG_COUNT <= HAKMEM_STATS_DEBUG_MAX, "debug counters fit the public struct");

hak_os_counters hak_os_ctr;
_Atomic uint64_t hak_lock_waits;

static const char* const dbg_names[HAK_DBG_COUNT] = {
#define HAK_DBG_NAME(e, name, help) name,
  HAK_DBG_LIST(HAK_DBG_NAME)
#undef HAK_DBG_NAME
};

typedef struct stats_acc {
  hak_stats* st;
  uint64_t slabs, adopted;
  uint64_t dbg[HAK_DBG_COUNT];
} stats_acc;

/* Other threads' counters are read racily on purpose: each is a word-sized plain store
 * by its owner, and a statistic may lag by the operations in flight. */
#define RD(x) (*(const volatile uint64_t*)&(x))

__attribute__((no_sanitize_thread))
static void add_heap(const hak_heap* h, void* arg) {
  stats_acc* a = arg;
  hak_stats* st = a->st;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    st->cls[c].allocs += RD(h->tc[c].nalloc);
    st->cls[c].frees += RD(h->tc[c].nfree);
    st->cls[c].refills += RD(h->cc[c].refills);
    st->cls[c].flushes += RD(h->cc[c].flushes);
    st->cls[c].remote_frees += RD(h->cc[c].remote_out);
  }
  a->slabs += RD(h->ctr.slabs_new);
  a->adopted += RD(h->ctr.segs_adopted);
#if HAK_DEBUG_COUNTERS
  for (unsigned i = 0; i < HAK_DBG_COUNT; i++) a->dbg[i] += RD(h->dbg[i]);
#endif
}

static uint64_t nonneg(int64_t v) { return v < 0 ? 0 : (uint64_t)v; }

static void stats_collect(hak_stats* st) {
  memset(st, 0, sizeof *st);
  st->size = sizeof *st;
  st->version = HAKMEM_STATS_VERSION;
  stats_acc a;
  memset(&a, 0, sizeof a);
  a.st = st;
  uint64_t started = 0, ended = 0;
  if (hak_load_acquire(&hak_init_state) == 2) hak_heap_foreach(add_heap, &a, &started, &ended);
  hak_os_counters* o = &hak_os_ctr;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    hak_stats_class* k = &st->cls[c];
    k->block_size = hak_cls_size[c];
    uint64_t orphan = hak_load_relaxed(&o->orphan_frees[c]);
    k->frees += orphan;
    k->remote_frees += orphan;
    uint64_t drained = hak_load_relaxed(&o->remote_drained[c]);
    k->in_use = k->allocs > k->frees ? k->allocs - k->frees : 0;
    k->remote_backlog = k->remote_frees > drained ? k->remote_frees - drained : 0;
    st->allocs += k->allocs;
    st->frees += k->frees;
    st->refills += k->refills;
    st->flushes += k->flushes;
    st->remote_frees += k->remote_frees;
    st->remote_drained += drained;
    st->remote_backlog += k->remote_backlog;
    st->bytes_in_use += k->in_use * k->block_size;
  }
  st->large_allocs = hak_load_relaxed(&o->large_allocs);
  st->large_frees = hak_load_relaxed(&o->large_frees);
  st->allocs += st->large_allocs;
  st->frees += st->large_frees;
  st->bytes_in_use += nonneg(hak_load_relaxed(&o->large_in_use));
  st->bytes_held = nonneg(hak_load_relaxed(&o->bytes_mapped));
  st->bytes_cached = nonneg(hak_load_relaxed(&o->bytes_cached));
  st->bytes_decommitted = hak_load_relaxed(&o->decommit_bytes);
  st->rss_bytes = hak_prim_rss_bytes();
  st->segments_mapped = hak_load_relaxed(&o->seg_mapped);
  st->segments_unmapped = hak_load_relaxed(&o->seg_unmapped);
  st->segments_adopted = a.adopted;
  st->slabs_assigned = a.slabs;
  st->lock_waits = hak_load_relaxed(&hak_lock_waits);
  st->threads_started = started;
  st->threads_ended = ended;
  st->superslab = hak_opt(HAK_OPT_TINY_USE_SUPERSLAB) != 0;
  st->ace = 0;
  st->pmu_mode = 0;
  st->nclasses = HAK_NCLS;
#if HAK_DEBUG_COUNTERS
  st->debug_counters = HAK_DBG_COUNT;
  for (unsigned i = 0; i < HAK_DBG_COUNT; i++) st->debug[i] = a.dbg[i];
#endif
}

HAK_EXPORT int hak_stats_get(hak_stats* out) {
  if (!out || out->size < 2 * sizeof(uint32_t)) { errno = EINVAL; return -1; }
  hak_stats* full = hak_malloc(sizeof *full);
  if (!full) return -1;
  stats_collect(full);
  size_t n = out->size < sizeof *full ? out->size : sizeof *full;
  memcpy(out, full, n);
  out->size = (uint32_t)n;
  hak_free(full);
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
             st->superslab ? "on" : "off", st->ace ? "on" : "off (not built yet)",
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
  if (stats_fd >= 0) hak_prim_write_fd(stats_fd, s, n);
  else hak_prim_write_err(s, n);
}

/* Render one snapshot with `fmt` (text or JSON) and write it to stderr: measure, then
 * allocate and fill, so the output is whole even though allocating moves the counters. */
static void stats_write(void (*fmt)(const hak_stats*, outbuf*), bool newline) {
  hak_stats* st = hak_malloc(sizeof *st);
  if (!st) return;
  stats_collect(st);
  outbuf o = {NULL, 0, 0};
  fmt(st, &o);
  o.buf = hak_malloc(o.len + 2);
  if (o.buf) {
    o.size = o.len + 1;
    o.len = 0;
    fmt(st, &o);
    if (newline) o.buf[o.len++] = '\n';
    write_all(o.buf, o.len);
    hak_free(o.buf);
  }
  hak_free(st);
}

HAK_EXPORT void hak_stats_print(void) {
  int saved = stats_fd;
  stats_fd = -1;               /* the program's stderr as it is now */
  stats_write(stats_text, false);
  stats_fd = saved;
}

HAK_EXPORT size_t hak_stats_json(char* buf, size_t size) {
  hak_stats* st = hak_malloc(sizeof *st);
  if (!st) { if (buf && size) buf[0] = 0; return 0; }
  stats_collect(st);
  outbuf o = {buf, buf ? size : 0, 0};
  stats_json(st, &o);
  if (buf && size && o.len >= size) buf[size - 1] = 0;
  hak_free(st);
  return o.len;
}

static void stats_at_exit(void) {
  if (hak_opt(HAK_OPT_STATS) == 2) stats_write(stats_json, true);
  else stats_write(stats_text, false);
}

HAK_HIDDEN void hak_stats_init(void) {
  if (hak_opt(HAK_OPT_STATS)) {
    stats_fd = hak_prim_dup_err();
    atexit(stats_at_exit);
  }
}
