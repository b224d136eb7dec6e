/* stats.c — the public hak_stats_* API over the allocator's collection (alloc/collect.h),
 * and the report printed at exit when HAKMEM_STATS is set (1: text, json: JSON), on
 * stderr or, with HAKMEM_STATS_FILE, appended to a file.
 *
 * peak_bytes_in_use is the largest bytes_in_use that a collection saw: hakmem keeps no
 * exact running total (that would cost the fast paths), so the peak is sampled by every
 * reader: ACE's fast tick (every 500 ms while it runs), hak_stats_get/_json/_print,
 * mallinfo2/mallinfo/malloc_info and the exit report. A peak that lives and dies between
 * two collections is missed. peak_rss_bytes is the kernel's exact VmHWM. */
#include "runtime/runtime.h"
#include "alloc/alloc_fast.h"
#include "alloc/collect.h"
#include "base/io.h"
#include "base/versioned.h"
#include "base/options.h"
#include "prim/prim.h"
#include "hakmem.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(HAKMEM_STATS_CLASSES == HAK_NCLS, "public class count matches the size-class table");
_Static_assert(HAK_DBG_COUNT <= HAKMEM_STATS_DEBUG_MAX, "debug counters fit the public struct");
_Static_assert(offsetof(hak_stats, expand_failed) - offsetof(hak_stats, realloc_in_place) ==
               (HAK_RE_COUNT - 1) * sizeof(uint64_t) &&
               offsetof(hak_stats, realloc_failed) - offsetof(hak_stats, realloc_in_place) ==
               HAK_RE_FAILED * sizeof(uint64_t), "the realloc fields follow the HAK_RE_* order");

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

static uint64_t stats_start_ns;           /* CLOCK_MONOTONIC at hak_stats_init */
static _Atomic uint64_t stats_peak_in_use;

static uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hak_stats_note_in_use(uint64_t bytes) {
  uint64_t seen = hak_load_relaxed(&stats_peak_in_use);
  while (bytes > seen &&
         !atomic_compare_exchange_weak_explicit(&stats_peak_in_use, &seen, bytes, memory_order_relaxed,
                                                memory_order_relaxed)) {}
}

/* Fill *st from one collection (alloc/collect.h); allocates nothing. */
static void stats_collect(hak_stats* st) {
  hak_collect c;
  hak_collect_all(&c);
  hak_stats_note_in_use(c.bytes_in_use);
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
  uint64_t* re = &st->realloc_in_place;       /* the realloc fields follow HAK_RE_* order */
  for (unsigned i = 0; i < HAK_RE_COUNT; i++) re[i] = c.realloc[i];
  st->idle_cache_trimmed_bytes = c.tc_trimmed_bytes;
  st->idle_cache_trims = c.tc_cuts;
  st->superslab = hak_opt(HAK_OPT_TINY_USE_SUPERSLAB) != 0;
  st->ace = hak_load_relaxed(&stats_ace_running);
  st->pmu_mode = hak_load_relaxed(&stats_pmu_mode);
  st->nclasses = HAK_NCLS;
#if HAK_DEBUG_COUNTERS
  st->debug_counters = HAK_DBG_COUNT;
  for (unsigned i = 0; i < HAK_DBG_COUNT; i++) st->debug[i] = c.dbg[i];
#endif
  st->pid = (uint64_t)getpid();
  st->run_time_ns = stats_start_ns ? monotonic_ns() - stats_start_ns : 0;
  st->peak_rss_bytes = hak_prim_peak_rss_bytes();
  st->peak_bytes_in_use = hak_load_relaxed(&stats_peak_in_use);
  memcpy(st->hakmem_version, HAKMEM_VERSION_STRING, sizeof HAKMEM_VERSION_STRING);
  const char* prog = program_invocation_short_name ? program_invocation_short_name : "";
  size_t n = strlen(prog);
  if (n > sizeof st->program - 1) n = sizeof st->program - 1;
  memcpy(st->program, prog, n);
  st->program[n] = 0;
}

HAK_EXPORT int hak_stats_get(hak_stats* out) {
  if (!hak_versioned_ok(out)) return -1;
  hak_ensure_init();
  if (out->size >= sizeof *out) {   /* the whole struct: fill it in place */
    stats_collect(out);
    return 0;
  }
  hak_stats full;                   /* an older, shorter struct: its prefix */
  stats_collect(&full);
  hak_versioned_copy(out, &full, sizeof full);
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

/* `v` bytes in binary units for people: "512 B", "64.0 KiB", "1.5 GiB". */
static const char* human_bytes(char* buf, size_t size, uint64_t v) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (v < 1024) { snprintf(buf, size, "%llu B", (unsigned long long)v); return buf; }
  double x = (double)v / 1024.0;
  unsigned u = 0;
  while (x >= 1024.0 && u < 5) { x /= 1024.0; u++; }
  snprintf(buf, size, "%.1f %s", x, units[u]);
  return buf;
}

static void stats_text(const hak_stats* st, outbuf* o) {
  char h1[32], h2[32];
  out_printf(o, "hakmem: stats: modes: superslab %s, ACE %s, PMU %s, debug counters %s\n",
             st->superslab ? "on" : "off", st->ace ? "on" : "off",
             pmu_mode_name(st->pmu_mode), st->debug_counters ? "on" : "off");
  out_printf(o, "hakmem: stats: process: pid %llu (%s), hakmem %s, run time %.3f s, peak RSS %s, "
             "sampled peak in use %s\n", (unsigned long long)st->pid, st->program, st->hakmem_version,
             (double)st->run_time_ns / 1e9, human_bytes(h1, sizeof h1, st->peak_rss_bytes),
             human_bytes(h2, sizeof h2, st->peak_bytes_in_use));
  /* byte counts (the fields named *bytes*) in KiB/MiB/GiB; hak_stats_json has them raw */
#define HAK_TEXT_FIELD(name, help)                                                                     \
  if (strstr(#name, "bytes"))                                                                          \
    out_printf(o, "hakmem: stats: %-18s %20s  %s\n", #name, human_bytes(h1, sizeof h1, st->name), help); \
  else                                                                                                 \
    out_printf(o, "hakmem: stats: %-18s %20llu  %s\n", #name, (unsigned long long)st->name, help);
  HAKMEM_STATS_FIELDS(HAK_TEXT_FIELD)
  HAKMEM_STATS_REALLOC_FIELDS(HAK_TEXT_FIELD)
  HAKMEM_STATS_IDLE_FIELDS(HAK_TEXT_FIELD)
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
  HAKMEM_STATS_REALLOC_FIELDS(HAK_JSON_FIELD)
  HAKMEM_STATS_IDLE_FIELDS(HAK_JSON_FIELD)
#undef HAK_JSON_FIELD
  out_printf(o, ",\"pid\":%llu,\"program\":\"", (unsigned long long)st->pid);
  for (const char* p = st->program; *p; p++) {   /* a JSON string: escape what must be */
    unsigned char ch = (unsigned char)*p;
    if (ch == '"' || ch == '\\') out_printf(o, "\\%c", ch);
    else if (ch < 0x20) out_printf(o, "\\u%04x", ch);
    else out_printf(o, "%c", ch);
  }
  out_printf(o, "\",\"hakmem_version\":\"%s\",\"run_time_ns\":%llu,\"peak_rss_bytes\":%llu,"
             "\"peak_bytes_in_use\":%llu", st->hakmem_version, (unsigned long long)st->run_time_ns,
             (unsigned long long)st->peak_rss_bytes, (unsigned long long)st->peak_bytes_in_use);
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

/* HAKMEM_STATS_FILE, made absolute at start-up (the program may chdir before exit);
 * %p becomes the pid when the report is written, so each process of a family that
 * inherits the variable writes its own file. */
static char stats_path[PATH_MAX];

static void stats_path_init(const char* path) {
  size_t n = 0;
  if (path[0] != '/' && getcwd(stats_path, sizeof stats_path - 2)) {
    n = strlen(stats_path);
    if (n && stats_path[n - 1] != '/') stats_path[n++] = '/';
  }
  size_t len = strlen(path);
  if (n + len >= sizeof stats_path) len = sizeof stats_path - 1 - n;
  memcpy(stats_path + n, path, len);
  stats_path[n + len] = 0;
}

/* Open the report file (the template with %p expanded, %% a percent sign): appended,
 * created 0644. -1 with a warning on stderr when it cannot be opened. */
static int stats_open_file(void) {
  char path[PATH_MAX + 32];
  size_t n = 0;
  for (const char* t = stats_path; *t && n < sizeof path - 24; t++) {
    if (t[0] == '%' && t[1] == 'p') { n += (size_t)snprintf(path + n, 24, "%d", (int)getpid()); t++; }
    else if (t[0] == '%' && t[1] == '%') { path[n++] = '%'; t++; }
    else path[n++] = *t;
  }
  path[n] = 0;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    char msg[PATH_MAX + 128];
    int m = snprintf(msg, sizeof msg, "hakmem: warning: HAKMEM_STATS_FILE: cannot open %s: %s; report on stderr\n",
                     path, strerror(errno));
    if (m > 0) write_all(msg, (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1);
  }
  return fd;
}

static void stats_at_exit(void) {
  int saved = stats_fd, file = -1;
  if (stats_path[0]) {
    file = stats_open_file();
    if (file >= 0) stats_fd = file;
  }
  if (hak_opt(HAK_OPT_STATS) == 2) stats_write(stats_json, true);
  else stats_write(stats_text, false);
  if (file >= 0) { close(file); stats_fd = saved; }
}

HAK_HIDDEN void hak_stats_init(void) {
  stats_start_ns = monotonic_ns();
  const char* path = hak_opt_text(HAK_OPT_STATS_FILE);
  if (path && *path) stats_path_init(path);
  if (hak_opt(HAK_OPT_STATS) || stats_path[0]) {
    stats_fd = hak_dup_stderr();
    atexit(stats_at_exit);
  }
}
