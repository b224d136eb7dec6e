/* test_stats.c — the statistics count the right events: known allocation patterns in
 * their own threads, asserted against hak_stats_get() deltas; the versioned struct;
 * the text and JSON renderings. Linked to libhakmem-api (hak_* only), so the only
 * allocations hakmem sees are the test's own and the stats snapshots (class 8 KiB). */
#include "hak_test.h"
#include "ht_json.h"
#include "hakmem.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#define SMALL_SIZE 520     /* class 576: used by nothing else here */
#define MID_SIZE 3000      /* class 3072 */
#define N_LOCAL 1000
#define N_REMOTE 500

static unsigned cls_of_size(const hak_stats* st, size_t size) {
  for (unsigned c = 0; c < st->nclasses; c++) if (st->cls[c].block_size >= size) return c;
  return 0;
}

static hak_stats* snap(void) {
  static hak_stats slots[8];
  static int next;
  hak_stats* st = &slots[next++ % 8];
  st->size = sizeof *st;
  CHECK_EQ(hak_stats_get(st), 0);
  return st;
}

static int dbg_index(const char* name) {
  for (unsigned i = 0; hak_stats_debug_name(i); i++) {
    if (strcmp(hak_stats_debug_name(i), name) == 0) return (int)i;
  }
  return -1;
}

/* ---- local pattern: one thread allocates and frees N blocks ----------------------- */
static void* local_worker(void* arg) {
  (void)arg;
  void* p[N_LOCAL];
  for (int i = 0; i < N_LOCAL; i++) { p[i] = hak_malloc(SMALL_SIZE); memset(p[i], i, SMALL_SIZE); }
  for (int i = 0; i < N_LOCAL; i++) hak_free(p[i]);
  return NULL;
}

static void test_local_pattern_counts(void) {
  hak_stats* a = snap();
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, local_worker, NULL), 0);
  pthread_join(t, NULL);
  hak_stats* b = snap();
  unsigned c = cls_of_size(a, SMALL_SIZE);
  CHECK_EQ(a->cls[c].block_size, 576);
  CHECK_EQ(b->cls[c].allocs - a->cls[c].allocs, N_LOCAL);
  CHECK_EQ(b->cls[c].frees - a->cls[c].frees, N_LOCAL);
  CHECK_EQ(b->cls[c].in_use, a->cls[c].in_use);
  CHECK(b->cls[c].refills > a->cls[c].refills);            /* 1000 blocks need refills */
  CHECK(b->cls[c].flushes > a->cls[c].flushes);            /* and the TLS list overflowed */
  CHECK_EQ(b->cls[c].remote_frees, a->cls[c].remote_frees);
  CHECK(b->allocs - a->allocs >= N_LOCAL);
  CHECK(b->threads_started - a->threads_started >= 1);
  CHECK(b->threads_ended - a->threads_ended >= 1);
  if (b->debug_counters) {   /* HAK_DEBUG_COUNTERS build: where the frees went */
    int sll = dbg_index("tls_sll"), ss = dbg_index("ss_local"), mid = dbg_index("mid_local");
    CHECK(sll >= 0 && ss >= 0 && mid >= 0);
    uint64_t frees = (b->debug[sll] + b->debug[ss] + b->debug[mid]) -
                     (a->debug[sll] + a->debug[ss] + a->debug[mid]);
    CHECK_MSG(frees >= N_LOCAL && frees <= N_LOCAL + 8, "frees counted by the pipeline: %llu",
              (unsigned long long)frees);
    int hit = dbg_index("malloc_tls_hit"), fl = dbg_index("refill_slab_freelist"),
        bump = dbg_index("refill_bump");
    CHECK(b->debug[hit] - a->debug[hit] > 0);
    CHECK(b->debug[fl] + b->debug[bump] - a->debug[fl] - a->debug[bump] >= 1);
  } else {
    CHECK(hak_stats_debug_name(0) != NULL);   /* names exist even when not compiled in */
  }
}

/* ---- remote pattern: a live owner, another thread frees its blocks ---------------- */
static void* remote_blocks[N_REMOTE];
static pthread_barrier_t bar;

static void* owner_worker(void* arg) {
  (void)arg;
  for (int i = 0; i < N_REMOTE; i++) remote_blocks[i] = hak_malloc(MID_SIZE);
  pthread_barrier_wait(&bar);   /* 1: blocks published */
  pthread_barrier_wait(&bar);   /* 2: main freed them; exit drains the remote lists */
  return NULL;
}

static void test_remote_frees_and_backlog(void) {
  pthread_barrier_init(&bar, NULL, 2);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, owner_worker, NULL), 0);
  pthread_barrier_wait(&bar);
  hak_stats* a = snap();
  unsigned c = cls_of_size(a, MID_SIZE);
  CHECK_EQ(a->cls[c].block_size, 3072);
  CHECK_EQ(a->cls[c].in_use, N_REMOTE);
  for (int i = 0; i < N_REMOTE; i++) hak_free(remote_blocks[i]);
  hak_stats* b = snap();
  CHECK_EQ(b->cls[c].remote_frees - a->cls[c].remote_frees, N_REMOTE);
  CHECK_EQ(b->cls[c].remote_backlog, N_REMOTE);      /* the owner has not looked yet */
  CHECK_EQ(b->cls[c].frees - a->cls[c].frees, N_REMOTE);
  CHECK_EQ(b->cls[c].in_use, 0);
  CHECK(b->remote_backlog >= N_REMOTE);
  pthread_barrier_wait(&bar);
  pthread_join(t, NULL);
  hak_stats* d = snap();
  CHECK_EQ(d->cls[c].remote_backlog, 0);             /* drained when the owner left */
  CHECK(d->remote_drained - b->remote_drained >= N_REMOTE);
  pthread_barrier_destroy(&bar);
}

/* ---- mixed sizes freed by another thread: buffered per class ----------------------
 * A consumer frees an owner's blocks of all 32 tiny classes in turn. Each class has its
 * own slot in the consumer's remote buffer, so nothing is pushed (nor counted) until a
 * slot fills or the consumer flushes; with one slot for all, every free of another
 * class pushed the chain before it (a compare-and-swap per block). A slot is full at
 * 32 blocks or 4 KiB of them, at least 2 (alloc.h, hak_rb_limit): of 20 blocks of
 * 1024 B, 20 are pushed in five chains of 4; of 20 blocks of 192 B or less, none. */
enum { MIX_PER_CLASS = 20, MIX_CLASSES = 32 };
static uint64_t mix_pushed_before_flush(size_t size) {
  size_t limit = 4096 / size;
  limit = limit < 2 ? 2 : limit > 32 ? 32 : limit;
  return MIX_PER_CLASS / limit * limit;
}
static void* mix_blocks[MIX_CLASSES * MIX_PER_CLASS];
static pthread_barrier_t mix_bar;

static void* mix_owner(void* arg) {
  const hak_stats* st = arg;
  for (int i = 0; i < MIX_CLASSES * MIX_PER_CLASS; i++) mix_blocks[i] = hak_malloc(st->cls[i % MIX_CLASSES].block_size);
  pthread_barrier_wait(&mix_bar);   /* 1: blocks published */
  pthread_barrier_wait(&mix_bar);   /* 2 */
  pthread_barrier_wait(&mix_bar);   /* 3 */
  pthread_barrier_wait(&mix_bar);   /* 4: flushed */
  pthread_barrier_wait(&mix_bar);   /* 5: checked; exit drains */
  return NULL;
}

static void* mix_consumer(void* arg) {
  (void)arg;
  pthread_barrier_wait(&mix_bar);   /* 1 */
  for (int i = 0; i < MIX_CLASSES * MIX_PER_CLASS; i++) hak_free(mix_blocks[i]);
  pthread_barrier_wait(&mix_bar);   /* 2: freed, not flushed */
  pthread_barrier_wait(&mix_bar);   /* 3: checked */
  hak_thread_flush();
  pthread_barrier_wait(&mix_bar);   /* 4: flushed */
  pthread_barrier_wait(&mix_bar);   /* 5 */
  return NULL;
}

static void test_mixed_remote_frees_are_buffered_per_class(void) {
  hak_stats* a = snap();
  CHECK_EQ(a->cls[MIX_CLASSES - 1].block_size, 1024);
  CHECK_EQ(a->cls[MIX_CLASSES].block_size, 1152);     /* the classes 0..31 are the tiny ones */
  pthread_barrier_init(&mix_bar, NULL, 3);
  pthread_t to, tc;
  CHECK_EQ(pthread_create(&to, NULL, mix_owner, a), 0);
  CHECK_EQ(pthread_create(&tc, NULL, mix_consumer, NULL), 0);
  pthread_barrier_wait(&mix_bar);   /* 1 */
  pthread_barrier_wait(&mix_bar);   /* 2 */
  hak_stats* b = snap();
  unsigned small_unpushed = 0;
  for (unsigned c = 0; c < MIX_CLASSES; c++) {
    uint64_t pushed = b->cls[c].remote_frees - a->cls[c].remote_frees;
    uint64_t want = mix_pushed_before_flush(a->cls[c].block_size);
    CHECK_MSG(pushed == want, "class %u (%u B): %llu of %d frees pushed before the consumer flushed, want %llu", c,
              (unsigned)a->cls[c].block_size, (unsigned long long)pushed, MIX_PER_CLASS, (unsigned long long)want);
    if (want == 0) small_unpushed++;
  }
  CHECK_EQ(small_unpushed, 12);   /* 16..192 B (slots of 21 or more): all 20 still wait */
  pthread_barrier_wait(&mix_bar);   /* 3 */
  pthread_barrier_wait(&mix_bar);   /* 4 */
  hak_stats* d = snap();
  for (unsigned c = 0; c < MIX_CLASSES; c++) {
    CHECK_EQ(d->cls[c].remote_frees - a->cls[c].remote_frees, MIX_PER_CLASS);
    CHECK_EQ(d->cls[c].frees - a->cls[c].frees, MIX_PER_CLASS);
  }
  /* Between b and d the owner waits at a barrier: nothing of it is drained (before b,
   * its own refills may have drained frees left from earlier tests; after barrier 5 it
   * exits and drains). */
  CHECK_MSG(d->remote_drained == b->remote_drained, "drained %llu -> %llu", (unsigned long long)b->remote_drained,
            (unsigned long long)d->remote_drained);
  pthread_barrier_wait(&mix_bar);   /* 5: the owner may exit (and drain) now */
  pthread_join(tc, NULL);
  pthread_join(to, NULL);
  pthread_barrier_destroy(&mix_bar);
}

/* ---- a refill reuses blocks other threads freed before fresh space -----------------
 * An owner hands blocks to a consumer, which frees them all (cross-thread) and flushes
 * its buffer; the owner's next refills take those blocks back from the slab's remote
 * stack before moving the bump pointer, so a producer/consumer pair keeps reusing the
 * same memory. (Draining only once the bump pointer reached the slab's end touched
 * every page of every slab: 1.4x mimalloc's RSS on micro-xthread.) */
enum { REUSE_SIZE = 880, REUSE_FIRST = 24, REUSE_SECOND = 40 };   /* 74 blocks per 64 KiB slab */
static void* reuse_first[REUSE_FIRST];
static pthread_barrier_t reuse_bar;
static unsigned reuse_found;

static void* reuse_owner(void* arg) {
  (void)arg;
  for (int i = 0; i < REUSE_FIRST; i++) reuse_first[i] = hak_malloc(REUSE_SIZE);
  pthread_barrier_wait(&reuse_bar);   /* 1: blocks published */
  pthread_barrier_wait(&reuse_bar);   /* 2: freed and flushed by the consumer */
  void* second[REUSE_SECOND];
  for (int i = 0; i < REUSE_SECOND; i++) second[i] = hak_malloc(REUSE_SIZE);
  for (int i = 0; i < REUSE_SECOND; i++) {
    for (int j = 0; j < REUSE_FIRST; j++) reuse_found += second[i] == reuse_first[j];
  }
  for (int i = 0; i < REUSE_SECOND; i++) hak_free(second[i]);
  return NULL;
}

static void* reuse_consumer(void* arg) {
  (void)arg;
  pthread_barrier_wait(&reuse_bar);   /* 1 */
  for (int i = 0; i < REUSE_FIRST; i++) hak_free(reuse_first[i]);
  hak_thread_flush();
  pthread_barrier_wait(&reuse_bar);   /* 2 */
  return NULL;
}

static void test_refill_reuses_remote_frees_before_fresh_space(void) {
  pthread_barrier_init(&reuse_bar, NULL, 2);
  pthread_t to, tc;
  CHECK_EQ(pthread_create(&to, NULL, reuse_owner, NULL), 0);
  CHECK_EQ(pthread_create(&tc, NULL, reuse_consumer, NULL), 0);
  pthread_join(tc, NULL);
  pthread_join(to, NULL);
  pthread_barrier_destroy(&reuse_bar);
  /* The owner's TLS list keeps what its last refill brought beyond the first 24; after
   * those, every block the consumer freed comes back before a new one. */
  CHECK_MSG(reuse_found == REUSE_FIRST, "%u of the %d blocks freed by the consumer reused", reuse_found, REUSE_FIRST);
}

/* ---- large blocks and byte counts ------------------------------------------------- */
static void test_large_and_bytes(void) {
  hak_stats* a = snap();
  void* p[3];
  for (int i = 0; i < 3; i++) { p[i] = hak_malloc(5u << 20); memset(p[i], 1, 4096); }
  hak_stats* b = snap();
  CHECK_EQ(b->large_allocs - a->large_allocs, 3);
  CHECK(b->bytes_in_use - a->bytes_in_use >= (uint64_t)15 << 20);
  CHECK(b->bytes_held >= b->bytes_in_use);
  CHECK(b->rss_bytes > 0);
  for (int i = 0; i < 3; i++) hak_free(p[i]);
  hak_stats* d = snap();
  CHECK_EQ(d->large_frees - b->large_frees, 3);
  CHECK(b->bytes_in_use - d->bytes_in_use >= (uint64_t)15 << 20);
}

/* ---- the struct's versioning and the modes ------------------------------------------ */
static void test_versioned_struct(void) {
  errno = 0;
  CHECK_EQ(hak_stats_get(NULL), -1);
  CHECK_EQ(errno, EINVAL);
  hak_stats tiny;
  tiny.size = 4;
  errno = 0;
  CHECK_EQ(hak_stats_get(&tiny), -1);
  CHECK_EQ(errno, EINVAL);

  /* An older, shorter struct: only its prefix is written. */
  void* keep = hak_malloc(100);                         /* at least one allocation to count */
  union { hak_stats st; unsigned char raw[sizeof(hak_stats)]; } u;
  memset(&u, 0xAB, sizeof u);
  size_t prefix = offsetof(hak_stats, frees) + sizeof(uint64_t);
  u.st.size = (uint32_t)prefix;
  CHECK_EQ(hak_stats_get(&u.st), 0);
  CHECK_EQ(u.st.size, prefix);
  CHECK_EQ(u.st.version, HAKMEM_STATS_VERSION);
  CHECK(u.st.allocs > 0);
  CHECK_EQ(u.raw[prefix], 0xAB);                       /* nothing written past it */
  hak_free(keep);

  /* A program built against version 4 gets exactly its fields; version 5's follow. */
  size_t v4 = offsetof(hak_stats, idle_cache_trimmed_bytes);
  CHECK_EQ(offsetof(hak_stats, expand_failed) + sizeof(uint64_t), v4);
  memset(&u, 0xAB, sizeof u);
  u.st.size = (uint32_t)v4;
  CHECK_EQ(hak_stats_get(&u.st), 0);
  CHECK_EQ(u.st.size, v4);
  CHECK_EQ(u.raw[v4], 0xAB);

  hak_stats* full = snap();
  CHECK_EQ(full->size, sizeof(hak_stats));
  CHECK_EQ(full->nclasses, HAKMEM_STATS_CLASSES);
  CHECK_EQ(full->superslab, hak_option_value("HAKMEM_TINY_USE_SUPERSLAB"));
  CHECK_EQ(full->ace, 0);
  CHECK(full->pmu_mode <= 2);
  for (unsigned c = 1; c < full->nclasses; c++) CHECK(full->cls[c].block_size > full->cls[c - 1].block_size);
}

/* ---- renderings --------------------------------------------------------------------- */

/* hak_stats_json parsed as JSON: exactly the documented keys, each once, with values that
 * agree with hak_stats_get snapshots taken just before (a) and after (b) the rendering
 * (single-threaded here: a counter of the JSON lies between its two readings). */
static int in_range(uint64_t v, uint64_t x, uint64_t y) { return x <= y ? (v >= x && v <= y) : (v >= y && v <= x); }

static void check_json_uint(const ht_json* d, int obj, const char* key, uint64_t lo, uint64_t hi,
                            uint64_t* out) {
  int n = ht_json_count(d, obj, key);
  CHECK_MSG(n == 1, "JSON key \"%s\" appears %d times", key, n);
  int m = ht_json_member(d, obj, key);
  if (m < 0) return;
  CHECK_MSG(d->n[m].type == HT_JNUM && d->n[m].is_uint, "JSON \"%s\" is not an unsigned integer", key);
  CHECK_MSG(in_range(d->n[m].u, lo, hi), "JSON \"%s\" = %llu, hak_stats_get said %llu and %llu", key,
            (unsigned long long)d->n[m].u, (unsigned long long)lo, (unsigned long long)hi);
  if (out) *out = d->n[m].u;
}

static void check_json_bool(const ht_json* d, int obj, const char* key, int want) {
  int m = ht_json_member(d, obj, key);
  CHECK_MSG(m >= 0 && ht_json_count(d, obj, key) == 1, "JSON modes.%s missing or repeated", key);
  if (m < 0) return;
  int t = d->n[m].type;
  CHECK_MSG(t == (want ? HT_JTRUE : HT_JFALSE), "JSON modes.%s is %s, expected %s", key,
            t == HT_JTRUE ? "true" : t == HT_JFALSE ? "false" : "not a boolean", want ? "true" : "false");
}

/* the parser itself: it must reject what is not JSON, or the check above proves nothing */
static void test_json_parser(void) {
  static ht_json doc;
  static const char* const good[] = {"{}", "[]", "0", " {\"a\" : [1, 2, {\"b\": null}], \"c\": \"x\\\"y\\u00e9\", "
                                     "\"d\": -1.5e3, \"e\": true, \"f\": false} ", "18446744073709551615"};
  static const char* const bad[] = {"", "{", "{\"a\":1,}", "[1 2]", "{\"a\":01}", "{'a':1}", "\"abc",
                                    "{\"a\":1}x", "{\"a\":tru}", "{\"a\" 1}", "[1,]", "{\"a\":\"\\x\"}",
                                    "-", "1.", "1e", "{\"a\":1}{\"b\":2}", "[\"\t\"]"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    CHECK_MSG(ht_json_parse(&doc, good[i], strlen(good[i])), "rejected valid JSON %s: %s", good[i], doc.error);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(!ht_json_parse(&doc, bad[i], strlen(bad[i])), "accepted invalid JSON %s", bad[i]);
  CHECK(ht_json_parse(&doc, good[3], strlen(good[3])));
  int a = ht_json_member(&doc, 0, "a");
  CHECK(a >= 0 && doc.n[a].type == HT_JARR && ht_json_length(&doc, a) == 3);
  CHECK(ht_json_member(&doc, 0, "zz") < 0);
  CHECK(ht_json_parse(&doc, good[4], strlen(good[4])) && doc.n[0].is_uint && doc.n[0].u == UINT64_MAX);
  CHECK(ht_json_parse(&doc, "18446744073709551616", 20) && !doc.n[0].is_uint);
}

static void test_json_rendering(void) {
  static ht_json doc;
  hak_stats* a = snap();
  size_t n = hak_stats_json(NULL, 0);
  CHECK(n > 100);
  char* buf = malloc(n + 64);
  size_t m = hak_stats_json(buf, n + 64);
  hak_stats* b = snap();
  CHECK_EQ(strlen(buf), m);
  CHECK(m > 100 && m <= n + 63);
  int ok = ht_json_parse(&doc, buf, m);
  CHECK_MSG(ok, "hak_stats_json is not valid JSON: %s at byte %zu: ...%.40s", doc.error ? doc.error : "?",
            doc.error_at, buf + (doc.error_at < m ? doc.error_at : m));
  if (!ok) { free(buf); return; }
  const ht_json* d = &doc;
  CHECK_EQ(d->n[0].type, HT_JOBJ);

  /* the top level: version, modes, every HAKMEM_STATS_FIELDS counter, classes, debug */
  int keys = 0;
  for (int i = d->n[0].first; i >= 0; i = d->n[i].next) keys++;
  int want_keys = 4 + 6;   /* + pid, program, hakmem_version, run_time_ns, peak_rss_bytes, peak_bytes_in_use */
#define COUNT_FIELD(name, help) want_keys++;
  HAKMEM_STATS_FIELDS(COUNT_FIELD)
  HAKMEM_STATS_REALLOC_FIELDS(COUNT_FIELD)
  HAKMEM_STATS_IDLE_FIELDS(COUNT_FIELD)
#undef COUNT_FIELD
  CHECK_MSG(keys == want_keys, "JSON top level has %d keys, expected %d", keys, want_keys);
  check_json_uint(d, 0, "version", HAKMEM_STATS_VERSION, HAKMEM_STATS_VERSION, NULL);
  uint64_t allocs = 0, frees = 0, large_allocs = 0, large_frees = 0;
#define CHECK_FIELD(name, help)                                                                    \
  if (strcmp(#name, "rss_bytes") == 0) check_json_uint(d, 0, #name, 1, UINT64_MAX, NULL);          \
  else check_json_uint(d, 0, #name, a->name, b->name,                                              \
                       strcmp(#name, "allocs") == 0 ? &allocs : strcmp(#name, "frees") == 0 ? &frees \
                       : strcmp(#name, "large_allocs") == 0 ? &large_allocs                        \
                       : strcmp(#name, "large_frees") == 0 ? &large_frees : NULL);
  HAKMEM_STATS_FIELDS(CHECK_FIELD)
  HAKMEM_STATS_REALLOC_FIELDS(CHECK_FIELD)
  HAKMEM_STATS_IDLE_FIELDS(CHECK_FIELD)
#undef CHECK_FIELD

  /* version 3: which process, and its peaks */
  check_json_uint(d, 0, "pid", (uint64_t)getpid(), (uint64_t)getpid(), NULL);
  check_json_uint(d, 0, "run_time_ns", a->run_time_ns, b->run_time_ns, NULL);
  check_json_uint(d, 0, "peak_rss_bytes", a->peak_rss_bytes, b->peak_rss_bytes, NULL);
  check_json_uint(d, 0, "peak_bytes_in_use", a->peak_bytes_in_use, b->peak_bytes_in_use, NULL);
  int prog = ht_json_member(d, 0, "program");
  CHECK_MSG(prog >= 0 && d->n[prog].type == HT_JSTR && ht_json_str_eq(d->n[prog].str, d->n[prog].len, "unit_test_stats"),
            "JSON \"program\" is not \"unit_test_stats\"");
  int ver = ht_json_member(d, 0, "hakmem_version");
  CHECK_MSG(ver >= 0 && d->n[ver].type == HT_JSTR && ht_json_str_eq(d->n[ver].str, d->n[ver].len, "0.2.0"),
            "JSON \"hakmem_version\" is not \"0.2.0\"");

  int modes = ht_json_member(d, 0, "modes");
  CHECK_MSG(modes >= 0 && d->n[modes].type == HT_JOBJ && ht_json_length(d, modes) == 4,
            "JSON \"modes\" is not an object of 4 members");
  if (modes >= 0) {
    check_json_bool(d, modes, "superslab", hak_option_value("HAKMEM_TINY_USE_SUPERSLAB") != 0);
    check_json_bool(d, modes, "ace", 0);
    check_json_bool(d, modes, "debug_counters", a->debug_counters != 0);
    int pmu = ht_json_member(d, modes, "pmu");
    static const char* const pmu_names[] = {"none", "software", "hardware"};
    CHECK_MSG(pmu >= 0 && d->n[pmu].type == HT_JSTR && a->pmu_mode <= 2 &&
              ht_json_str_eq(d->n[pmu].str, d->n[pmu].len, pmu_names[a->pmu_mode <= 2 ? a->pmu_mode : 0]),
              "JSON modes.pmu does not name PMU mode %u", a->pmu_mode);
  }

  /* classes: one object per class with any activity, in class order, with exact keys */
  int classes = ht_json_member(d, 0, "classes");
  CHECK_MSG(classes >= 0 && d->n[classes].type == HT_JARR, "JSON \"classes\" is not an array");
  uint64_t sum_allocs = 0, sum_frees = 0;
  int listed = 0;
  if (classes >= 0) {
    static const char* const ckeys[] = {"class", "size", "allocs", "frees", "in_use", "refills",
                                        "flushes", "remote_frees", "remote_backlog"};
    long prev = -1;
    for (int e = d->n[classes].first; e >= 0; e = d->n[e].next) {
      listed++;
      CHECK_MSG(d->n[e].type == HT_JOBJ && ht_json_length(d, e) == 9, "classes[%d] is not an object of 9 members",
                listed - 1);
      for (int k = 0; k < 9; k++) {
        int v = ht_json_member(d, e, ckeys[k]);
        CHECK_MSG(v >= 0 && d->n[v].type == HT_JNUM && d->n[v].is_uint, "classes[%d].%s missing or not an integer",
                  listed - 1, ckeys[k]);
      }
      int ci = ht_json_member(d, e, "class");
      if (ci < 0 || d->n[ci].u >= HAKMEM_STATS_CLASSES) { CHECK_MSG(0, "classes[%d]: bad class", listed - 1); continue; }
      unsigned c = (unsigned)d->n[ci].u;
      CHECK_MSG((long)c > prev, "classes not in increasing order at %u", c);
      prev = (long)c;
      uint64_t v[9];
      for (int k = 0; k < 9; k++) { int x = ht_json_member(d, e, ckeys[k]); v[k] = x >= 0 ? d->n[x].u : 0; }
      CHECK_EQ(v[1], a->cls[c].block_size);
      CHECK_MSG(in_range(v[2], a->cls[c].allocs, b->cls[c].allocs), "class %u allocs %llu", c, (unsigned long long)v[2]);
      CHECK_MSG(in_range(v[3], a->cls[c].frees, b->cls[c].frees), "class %u frees %llu", c, (unsigned long long)v[3]);
      CHECK_MSG(v[4] == v[2] - v[3] && v[2] >= v[3], "class %u: in_use %llu != allocs - frees", c, (unsigned long long)v[4]);
      CHECK_MSG(in_range(v[5], a->cls[c].refills, b->cls[c].refills), "class %u refills", c);
      CHECK_MSG(in_range(v[6], a->cls[c].flushes, b->cls[c].flushes), "class %u flushes", c);
      CHECK_MSG(in_range(v[7], a->cls[c].remote_frees, b->cls[c].remote_frees), "class %u remote_frees", c);
      CHECK_MSG(in_range(v[8], a->cls[c].remote_backlog, b->cls[c].remote_backlog), "class %u remote_backlog", c);
      CHECK_MSG(v[2] || v[3], "class %u listed without any allocation or free", c);
      sum_allocs += v[2];
      sum_frees += v[3];
    }
  }
  unsigned active = 0;
  for (unsigned c = 0; c < HAKMEM_STATS_CLASSES; c++) active += (a->cls[c].allocs || a->cls[c].frees);
  CHECK_MSG((unsigned)listed >= active, "%d classes listed, %u had activity before the rendering", listed, active);
  CHECK_EQ(sum_allocs + large_allocs, allocs);
  CHECK_EQ(sum_frees + large_frees, frees);

  /* debug: one unsigned member per compiled-in debug counter, by name */
  int dbg = ht_json_member(d, 0, "debug");
  CHECK_MSG(dbg >= 0 && d->n[dbg].type == HT_JOBJ, "JSON \"debug\" is not an object");
  if (dbg >= 0) {
    CHECK_EQ(ht_json_length(d, dbg), a->debug_counters);
    for (unsigned i = 0; i < a->debug_counters; i++) {
      const char* name = hak_stats_debug_name(i);
      int v = ht_json_member(d, dbg, name ? name : "");
      CHECK_MSG(v >= 0 && d->n[v].type == HT_JNUM && d->n[v].is_uint && in_range(d->n[v].u, a->debug[i], b->debug[i]),
                "JSON debug.%s missing or out of range", name ? name : "?");
    }
  }

  /* a short buffer is cut and terminated, and the full length is still reported */
  char small[16];
  CHECK(hak_stats_json(small, sizeof small) > sizeof small);
  CHECK_EQ(strlen(small), sizeof small - 1);
  CHECK(!ht_json_parse(&doc, small, strlen(small)));   /* and the parser does reject a cut one */
  free(buf);
}

static void test_text_rendering(void) {
  char path[] = "/tmp/hak_stats_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  hak_stats_print();
  dup2(saved, 2);
  close(saved);
  char text[16384] = {0};
  ssize_t got = pread(fd, text, sizeof text - 1, 0);
  close(fd);
  unlink(path);
  CHECK(got > 0);
  CHECK(strstr(text, "hakmem: stats: modes: superslab ") != NULL);
  CHECK(strstr(text, "hakmem: stats: allocs ") != NULL);
  CHECK(strstr(text, "hakmem: stats: remote_backlog ") != NULL);
  CHECK(strstr(text, "hakmem: stats: class ") != NULL);
  char want[128];
  snprintf(want, sizeof want, "hakmem: stats: process: pid %d (unit_test_stats), hakmem 0.2.0, run time ", (int)getpid());
  CHECK_MSG(strstr(text, want) != NULL, "no line \"%s...\" in:\n%.400s", want, text);
  CHECK(strstr(text, ", peak RSS ") != NULL && strstr(text, ", sampled peak in use ") != NULL);
  /* byte counts in human units: "bytes_held   18.5 MiB  bytes mapped ..." */
  const char* held = strstr(text, "hakmem: stats: bytes_held ");
  CHECK(held != NULL);
  if (held) {
    double x = 0;
    char unit[8] = {0};
    int n = sscanf(held + 26, "%lf %7s", &x, unit);
    CHECK_MSG(n == 2 && x > 0 && x < 1024 && (strcmp(unit, "KiB") == 0 || strcmp(unit, "MiB") == 0 ||
              strcmp(unit, "GiB") == 0), "bytes_held not in human units: %.80s", held);
  }
  const char* allocs = strstr(text, "hakmem: stats: allocs ");
  unsigned long long na = 0;
  CHECK_MSG(allocs && sscanf(allocs + 22, "%llu", &na) == 1 && na > 0, "allocs is a plain count: %.80s",
            allocs ? allocs : "(none)");
}

/* version 3 fields: pid, program, version, run time, peak RSS, peak bytes in use */
static void test_process_and_peaks(void) {
  hak_stats* a = snap();
  CHECK_EQ(a->version, HAKMEM_STATS_VERSION);
  CHECK_EQ(a->pid, getpid());
  CHECK_MSG(strcmp(a->program, "unit_test_stats") == 0, "program \"%s\"", a->program);
  CHECK_MSG(strcmp(a->hakmem_version, "0.2.0") == 0, "hakmem_version \"%s\"", a->hakmem_version);
  CHECK(a->run_time_ns > 0);
  CHECK_MSG(a->peak_rss_bytes >= a->rss_bytes && a->peak_rss_bytes > 0, "peak RSS %llu, RSS %llu",
            (unsigned long long)a->peak_rss_bytes, (unsigned long long)a->rss_bytes);
  CHECK(a->peak_bytes_in_use >= a->bytes_in_use);
  uint64_t t0 = a->run_time_ns, rss0 = a->peak_rss_bytes;   /* snap()'s slots are static */
  /* 96 MiB in use and touched: both peaks pass it and stay there after the free */
  size_t big = 96u << 20;
  char* p = (char*)hak_malloc(big);
  CHECK(p != NULL);
  if (!p) return;
  memset(p, 1, big);
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  hak_stats* b = snap();
  hak_free(p);
  hak_stats* c = snap();
  CHECK_MSG(b->run_time_ns >= t0 + 20000000, "run time %llu ns, %llu before a 20 ms sleep",
            (unsigned long long)b->run_time_ns, (unsigned long long)t0);
  CHECK_MSG(b->peak_bytes_in_use >= big, "peak in use %llu with %zu live", (unsigned long long)b->peak_bytes_in_use, big);
  CHECK_MSG(c->peak_bytes_in_use >= big && c->bytes_in_use < big, "after the free: peak %llu, in use %llu",
            (unsigned long long)c->peak_bytes_in_use, (unsigned long long)c->bytes_in_use);
  CHECK_MSG(c->peak_rss_bytes >= rss0 + big * 9 / 10, "peak RSS %llu, was %llu before touching %zu bytes",
            (unsigned long long)c->peak_rss_bytes, (unsigned long long)rss0, big);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_versioned_struct);
  HT_RUN(test_local_pattern_counts);
  HT_RUN(test_remote_frees_and_backlog);
  HT_RUN(test_mixed_remote_frees_are_buffered_per_class);
  HT_RUN(test_refill_reuses_remote_frees_before_fresh_space);
  HT_RUN(test_large_and_bytes);
  HT_RUN(test_json_parser);
  HT_RUN(test_json_rendering);
  HT_RUN(test_text_rendering);
  HT_RUN(test_process_and_peaks);
  return ht_report();
}
