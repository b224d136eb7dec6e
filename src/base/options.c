/* options.c — the table of HAKMEM_* options: name, default, range, unit, help.
 * Adding an option = one enum entry in options.h + one row here.
 * Parsing uses no malloc and no stdio: it runs inside the first malloc call. */
#include "base/options.h"
#include "hakmem.h"
#include "base/io.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/auxv.h>

extern char** environ;

typedef struct hak_option_row {
  const char* name;
  long long   def, min, max;
  const char* unit;
  const char* help;
  const char* words;   /* optional keyword values, "word=value,word=value" */
} hak_option_row;

static const hak_option_row hak_option_rows[HAK_OPT_COUNT] = {
  [HAK_OPT_VERBOSE] = {"HAKMEM_VERBOSE", 0, 0, 1, "bool",
    "print the effective options at start-up", NULL},
  [HAK_OPT_TINY_USE_SUPERSLAB] = {"HAKMEM_TINY_USE_SUPERSLAB", 1, 0, 1, "bool",
    "serve sizes up to 8 KiB from 2 MiB SuperSlabs with 64 KiB slabs; 0 uses mid segments", NULL},
  [HAK_OPT_STATS] = {"HAKMEM_STATS", 0, 0, 2, "enum",
    "print statistics at exit: 0 off, 1 text summary, json (=2) JSON", "json=2,text=1,off=0"},
  [HAK_OPT_STATS_FILE] = {"HAKMEM_STATS_FILE", 0, 0, 1, "path",
    "file that receives the exit report instead of stderr (%p: the pid; appended; implies HAKMEM_STATS=1)", NULL},
  [HAK_OPT_TLS_CACHE_BYTES] = {"HAKMEM_TLS_CACHE_BYTES", 64 << 10, 1 << 10, 64 << 20, "bytes",
    "bytes a thread may cache per size class before flushing back to its slabs", NULL},
  [HAK_OPT_TLS_CAP_MAX] = {"HAKMEM_TLS_CAP_MAX", 256, 1, 4096, "count",
    "upper bound on cached blocks per size class per thread", NULL},
  [HAK_OPT_TLS_GROW_BYTES] = {"HAKMEM_TLS_GROW_BYTES", 256 << 10, 1 << 10, 64 << 20, "bytes",
    "bytes the cache of a size class may grow to when it keeps giving blocks back and taking them again", NULL},
  [HAK_OPT_TLS_GROW_MAX] = {"HAKMEM_TLS_GROW_MAX", 2048, 1, 65535, "count",
    "upper bound on cached blocks per size class per thread after growth", NULL},
  [HAK_OPT_TLS_GROW_BUDGET] = {"HAKMEM_TLS_GROW_BUDGET", 4 << 20, 0, 1LL << 40, "bytes",
    "per thread, bytes of cache capacity all size classes together may grow by (0: no growth)", NULL},
  [HAK_OPT_REFILL_BATCH] = {"HAKMEM_REFILL_BATCH", 32, 1, 1024, "count",
    "blocks moved from a slab into a thread cache per refill (bundle width)", NULL},
  [HAK_OPT_SWEEP_INTERVAL] = {"HAKMEM_SWEEP_INTERVAL", 64, 1, 1 << 20, "count",
    "refills + flushes between sweeps of a thread heap (remote frees, empty slabs, purge)", NULL},
  [HAK_OPT_REMOTE_DRAIN_INTERVAL] = {"HAKMEM_REMOTE_DRAIN_INTERVAL", 64, 1, 1 << 20, "count",
    "refills of a size class between drains of the remote frees on its full slabs", NULL},
  [HAK_OPT_PARTIAL_RELEASE_PAGES] = {"HAKMEM_PARTIAL_RELEASE_PAGES", 1, 1, 512, "count",
    "smallest run of free pages given back from inside a partly used slab", NULL},
  [HAK_OPT_PURGE_DELAY] = {"HAKMEM_PURGE_DELAY", 100, 0, 1000000, "ms",
    "unused slabs stay resident this long before their pages go back to the OS", NULL},
  [HAK_OPT_HEAP_PARK] = {"HAKMEM_HEAP_PARK", 4, 0, 64, "count",
    "heaps of exited threads kept (slabs, segments) for the next threads that start; 0 tears every one down", NULL},
  [HAK_OPT_SEGMENT_CACHE] = {"HAKMEM_SEGMENT_CACHE", 1LL << 30, 0, 1LL << 40, "bytes",
    "address space of empty segments kept mapped for reuse (decommitted ones cost no memory)", NULL},
  [HAK_OPT_SEGMENT_CACHE_DIRTY] = {"HAKMEM_SEGMENT_CACHE_DIRTY", 16 << 20, 0, 1LL << 40, "bytes",
    "of those, bytes always kept resident until the purge delay; beyond this and the bytes recently freed into or reused from the cache, a released segment is decommitted at once", NULL},
  [HAK_OPT_LARGE_CACHE] = {"HAKMEM_LARGE_CACHE", 1LL << 30, 0, 1LL << 40, "bytes",
    "address space of freed large mappings kept for reuse (decommitted ones cost no memory)", NULL},
  [HAK_OPT_LARGE_CACHE_ENTRIES] = {"HAKMEM_LARGE_CACHE_ENTRIES", 64, 0, 64, "count",
    "freed large mappings kept for reuse", NULL},
  [HAK_OPT_LARGE_CACHE_DIRTY] = {"HAKMEM_LARGE_CACHE_DIRTY", 512 << 20, 0, 1LL << 40, "bytes",
    "most bytes of freed large mappings kept resident (the budget in force is at most the bytes "
    "of large blocks freed over the last one to two purge delays)", NULL},
  [HAK_OPT_LARGE_CACHE_UNMAP_DELAY] = {"HAKMEM_LARGE_CACHE_UNMAP_DELAY", 2000, 0, 1000000, "ms",
    "a freed large mapping decommitted after the purge delay is unmapped once unused this much longer", NULL},
  [HAK_OPT_LARGE_REUSE_SLACK] = {"HAKMEM_LARGE_REUSE_SLACK", 50, 0, 10000, "percent",
    "a cached large mapping serves a smaller request whole while its surplus is at most this percent "
    "of the request (plus 2 MiB); beyond that it is split and the rest stays cached (0: decommitted)", NULL},
  [HAK_OPT_REALLOC_INPLACE] = {"HAKMEM_REALLOC_INPLACE", 1, 0, 1, "bool",
    "realloc keeps a block that fits and grows or shrinks large blocks in place (0: every realloc "
    "moves the block, the copy-always baseline for comparisons; hak_expand grows nothing)", NULL},
  [HAK_OPT_REALLOC_NT_THRESHOLD] = {"HAKMEM_REALLOC_NT_THRESHOLD", 128LL << 20, 0, 1LL << 40, "bytes",
    "a realloc that must copy this many bytes or more copies with non-temporal stores (below: memcpy)", NULL},
  [HAK_OPT_HUGE_PAGES] = {"HAKMEM_HUGE_PAGES", 3, 0, 3, "enum",
    "transparent huge pages: auto (=3) ACE turns them on for large blocks while new ones are written "
    "whole and their page faults cost the program time, and for segments too while the heap is also "
    "nearly all resident; large (=1, also on) always for large blocks; all (=2) for large blocks and "
    "segments; off (=0) never", "auto=3,all=2,large=1,on=1,off=0"},
  [HAK_OPT_ACE_ENABLED] = {"HAKMEM_ACE_ENABLED", 1, 0, 1, "bool",
    "run the ACE controller thread once the process is worth steering (0: never a thread)", NULL},
  [HAK_OPT_ACE_FAST_INTERVAL_MS] = {"HAKMEM_ACE_FAST_INTERVAL_MS", 500, 10, 60000, "ms",
    "ACE fast loop period: metrics, rules, guards, scavenger", NULL},
  [HAK_OPT_ACE_SLOW_INTERVAL_S] = {"HAKMEM_ACE_SLOW_INTERVAL_S", 30, 1, 3600, "s",
    "ACE slow loop period: RSS, fragmentation, unused resident memory", NULL},
  [HAK_OPT_ACE_SCAVENGE_BUDGET_US] = {"HAKMEM_ACE_SCAVENGE_BUDGET_US", 4000, 100, 1000000, "us",
    "time the scavenger may spend returning memory per fast tick", NULL},
  [HAK_OPT_ACE_START_DELAY_MS] = {"HAKMEM_ACE_START_DELAY_MS", 1000, 0, 3600000, "ms",
    "the ACE thread starts once the process has lived this long ...", NULL},
  [HAK_OPT_ACE_START_BYTES] = {"HAKMEM_ACE_START_BYTES", 64LL << 20, 0, 1LL << 40, "bytes",
    "... or, once 100 ms old, holds this many bytes (0: only the delay counts)", NULL},
  [HAK_OPT_ACE_MAX_P99_LAT_NS] = {"HAKMEM_ACE_MAX_P99_LAT_NS", 10000000, 0, 1000000000000LL, "ns",
    "guard: sampled slow-path p99 latency above this stops the steering (0: no guard)", NULL},
  [HAK_OPT_ACE_MAX_RSS_MB] = {"HAKMEM_ACE_MAX_RSS_MB", 0, 0, 1LL << 24, "MiB",
    "guard: RSS above this stops the steering; 90 % of it is the diet's target (0: none)", NULL},
  [HAK_OPT_ACE_MAX_CPU_PERCENT] = {"HAKMEM_ACE_MAX_CPU_PERCENT", 5, 1, 100, "percent",
    "guard: ACE thread CPU time per wall time above this stops steering and scavenging", NULL},
  [HAK_OPT_ACE_LOG_LEVEL] = {"HAKMEM_ACE_LOG_LEVEL", 0, 0, 2, "enum",
    "ACE messages on stderr: 0 off, 1 decisions, 2 every tick", "off=0,info=1,debug=2"},
  [HAK_OPT_ACE_PMU] = {"HAKMEM_ACE_PMU", 2, 0, 2, "enum",
    "ACE's PMU: auto (=2) hardware events where the kernel allows, software (=1) events only, off (=0)",
    "auto=2,software=1,off=0"},
  [HAK_OPT_ACE_PIN] = {"HAKMEM_ACE_PIN", 0, 0, 15, "mask",
    "knob groups ACE leaves alone: 1 tls_cap, 2 refill_batch, 4 remote drain, 8 scavenging", NULL},
  [HAK_OPT_ACE_POLICY] = {"HAKMEM_ACE_POLICY", 0, 0, 5, "enum",
    "how ACE steers: default (=0), static (=1), rules (=2), decay (=3), resize (=4), ucb1 (=5); see docs/ACE.md",
    "default=0,static=1,rules=2,decay=3,resize=4,ucb1=5"},
  [HAK_OPT_ACE_TRACE] = {"HAKMEM_ACE_TRACE", 0, 0, 1, "path",
    "file that receives one JSON line per ACE tick (metrics, knobs, reasons)", NULL},
};

long long hak_opt_values[HAK_OPT_COUNT];
static const char* hak_opt_texts[HAK_OPT_COUNT];   /* "path" options: the environment's string */

const char* hak_opt_text(hak_opt o) { return o < HAK_OPT_COUNT ? hak_opt_texts[o] : NULL; }
static hak_option_info hak_option_infos[HAK_OPT_COUNT];

/* --- tiny formatting helpers (no stdio inside malloc) --------------------------- */
typedef struct hak_line { char buf[512]; size_t n; } hak_line;
static void line_str(hak_line* l, const char* s) {
  while (*s && l->n < sizeof l->buf - 1) l->buf[l->n++] = *s++;
}
static void line_num(hak_line* l, long long v) {
  char tmp[24]; int i = 0;
  unsigned long long u = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
  do { tmp[i++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) line_str(l, "-");
  while (i > 0 && l->n < sizeof l->buf - 1) l->buf[l->n++] = tmp[--i];
}
static void line_flush(hak_line* l) { l->buf[l->n++] = '\n'; hak_write_err(l->buf, l->n); l->n = 0; }

static bool word_eq(const char* a, size_t an, const char* b) {
  size_t bn = strlen(b);
  if (an != bn) return false;
  for (size_t i = 0; i < an; i++) {
    char c = a[i]; if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

/* Edit distance (insertions, deletions, substitutions; case-insensitive) between
 * a[0..an) and b, each cut at 63 characters; two rows on the stack, no malloc. */
static unsigned edit_distance(const char* a, size_t an, const char* b) {
  enum { M = 63 };
  size_t bn = strlen(b);
  if (an > M) an = M;
  if (bn > M) bn = M;
  unsigned prev[M + 1], cur[M + 1];
  for (size_t j = 0; j <= bn; j++) prev[j] = (unsigned)j;
  for (size_t i = 1; i <= an; i++) {
    cur[0] = (unsigned)i;
    for (size_t j = 1; j <= bn; j++) {
      char x = a[i - 1], y = b[j - 1];
      if (x >= 'a' && x <= 'z') x = (char)(x - 'a' + 'A');
      if (y >= 'a' && y <= 'z') y = (char)(y - 'a' + 'A');
      unsigned del = prev[j] + 1, ins = cur[j - 1] + 1, sub = prev[j - 1] + (x != y);
      cur[j] = del < ins ? (del < sub ? del : sub) : (ins < sub ? ins : sub);
    }
    memcpy(prev, cur, (bn + 1) * sizeof prev[0]);
  }
  return prev[bn];
}

/* One warning per HAKMEM_* variable of the environment that names no option, with the
 * option whose name is closest (a misspelt variable would otherwise change nothing and
 * say nothing). Closest: the smallest edit distance, where an option whose name extends
 * the unknown one by "_..." counts 2 (HAKMEM_ACE suggests HAKMEM_ACE_ENABLED, the first
 * such row); ties go to the earlier row. */
static void warn_unknown_names(void) {
  for (char** env = environ; env && *env; env++) {
    const char* e = *env;
    if (strncmp(e, "HAKMEM_", 7) != 0) continue;
    const char* eq = strchr(e, '=');
    if (!eq) continue;
    size_t n = (size_t)(eq - e);
    bool known = false;
    unsigned best = ~0u;
    int best_i = 0;
    for (int i = 0; i < HAK_OPT_COUNT && !known; i++) {
      const char* name = hak_option_rows[i].name;
      if (strlen(name) == n && strncmp(name, e, n) == 0) { known = true; break; }
      unsigned d = edit_distance(e, n, name);
      if (d > 2 && strlen(name) > n && strncmp(name, e, n) == 0 && name[n] == '_') d = 2;
      if (d < best) { best = d; best_i = i; }
    }
    if (known) continue;
    hak_line l = {.n = 0};
    line_str(&l, "hakmem: warning: unknown variable ");
    size_t k = 0;
    while (k < n && k < 200 && l.n < sizeof l.buf - 1) l.buf[l.n++] = e[k++];
    line_str(&l, " (did you mean "); line_str(&l, hak_option_rows[best_i].name); line_str(&l, "?)");
    line_flush(&l);
  }
}

/* Parse `s` as the row's type. Returns false when invalid or out of range. */
static bool parse_value(const hak_option_row* row, const char* s, long long* out) {
  size_t n = strlen(s);
  if (n == 0) return false;
  if (row->words) {   /* keyword list "word=value,..." */
    const char* w = row->words;
    while (*w) {
      const char* eq = strchr(w, '=');
      const char* end = strchr(w, ',');
      if (!end) end = w + strlen(w);
      if (eq && eq < end && (size_t)(eq - w) == n) {
        char tmp[32]; size_t k = (size_t)(eq - w) < sizeof tmp - 1 ? (size_t)(eq - w) : sizeof tmp - 1;
        memcpy(tmp, w, k); tmp[k] = 0;
        if (word_eq(s, n, tmp)) {
          long long v = 0; for (const char* d = eq + 1; d < end; d++) v = v * 10 + (*d - '0');
          *out = v; return true;
        }
      }
      w = *end ? end + 1 : end;
    }
  }
  if (strcmp(row->unit, "path") == 0) { *out = 1; return true; }   /* the text is kept aside */
  if (strcmp(row->unit, "bool") == 0) {
    static const char* const yes[] = {"1", "true", "yes", "on"};
    static const char* const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
      if (word_eq(s, n, yes[i])) { *out = 1; return true; }
      if (word_eq(s, n, no[i])) { *out = 0; return true; }
    }
    return false;
  }
  long long v = 0;
  size_t i = 0;
  if (s[0] < '0' || s[0] > '9') return false;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    if (v > (1LL << 50)) return false;
    v = v * 10 + (s[i] - '0');
  }
  if (i < n) {   /* size suffix of byte options: K M G T or KiB MiB GiB TiB, any case, binary */
    if (strcmp(row->unit, "bytes") != 0) return false;
    int shift;
    switch (s[i]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
      default: return false;
    }
    if (i + 1 != n && !word_eq(s + i + 1, n - i - 1, "ib")) return false;
    if (v > (LLONG_MAX >> shift)) return false;   /* 17179869184G: out of range, not 0 */
    v <<= shift;
  }
  if (v < row->min || v > row->max) return false;
  *out = v;
  return true;
}

/* In a setuid or setgid program (AT_SECURE: the kernel says so), the environment
 * belongs to a less privileged user: every HAKMEM_* variable is ignored, like
 * secure_getenv would, so none can name a file to write (HAKMEM_ACE_TRACE,
 * HAKMEM_STATS_FILE) or change the allocator's behaviour. */
static bool options_secure(void) { return getauxval(AT_SECURE) != 0; }

void hak_options_init(void) {
  bool secure = options_secure();
  if (!secure) warn_unknown_names();
  for (int i = 0; i < HAK_OPT_COUNT; i++) {
    const hak_option_row* row = &hak_option_rows[i];
    hak_option_info* info = &hak_option_infos[i];
    info->name = row->name; info->def = row->def; info->min = row->min; info->max = row->max;
    info->unit = row->unit; info->help = row->help;
    info->value = row->def; info->from_env = 0;
    const char* s = secure ? NULL : hak_getenv(row->name);
    if (s) {
      long long v;
      if (parse_value(row, s, &v)) {
        info->value = v; info->from_env = 1;
        if (strcmp(row->unit, "path") == 0) hak_opt_texts[i] = s;
      }
      else {
        hak_line l = {.n = 0};
        line_str(&l, "hakmem: warning: "); line_str(&l, row->name); line_str(&l, "=");
        line_str(&l, s); line_str(&l, " is invalid (expected "); line_str(&l, row->unit);
        line_str(&l, " in ["); line_num(&l, row->min); line_str(&l, ", "); line_num(&l, row->max);
        line_str(&l, "]); using the default "); line_num(&l, row->def);
        line_flush(&l);
      }
    }
    hak_opt_values[i] = info->value;
  }
  if (hak_opt_values[HAK_OPT_VERBOSE]) {
    for (int i = 0; i < HAK_OPT_COUNT; i++) {
      const hak_option_info* info = &hak_option_infos[i];
      hak_line l = {.n = 0};
      line_str(&l, "hakmem: option "); line_str(&l, info->name); line_str(&l, " = ");
      line_num(&l, info->value); line_str(&l, " "); line_str(&l, info->unit);
      if (info->from_env) { line_str(&l, " (from the environment; default "); line_num(&l, info->def); line_str(&l, ")"); }
      else line_str(&l, " (default)");
      line_str(&l, " — ");
      line_str(&l, info->help);
      line_flush(&l);
    }
  }
}

const hak_option_info* hak_options_info(int i) {
  return i >= 0 && i < HAK_OPT_COUNT ? &hak_option_infos[i] : NULL;
}

long long hak_options_lookup(const char* name, bool* found) {
  *found = false;
  if (name) {
    for (int i = 0; i < HAK_OPT_COUNT; i++) {
      const char* full = hak_option_rows[i].name;
      if (strcmp(full, name) == 0 || strcmp(full + 7, name) == 0) { *found = true; return hak_opt_values[i]; }
    }
  }
  return -1;
}
