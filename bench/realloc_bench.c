/* realloc_bench.c — realloc-heavy patterns with sampled per-call latency.
 *
 * Each thread (--threads independent copies) keeps --buffers live buffers and applies
 * realloc to a randomly chosen one, in one of four patterns (--case):
 *   grow-small   grow by 1..64 bytes per call up to --grow-limit, then start over at 16
 *                (the appending-to-a-string pattern)
 *   grow-double  double per call up to --double-limit, then start over (vector growth)
 *   shrink       start log-uniform in [32 KiB, 512 KiB], shrink by up to a quarter per
 *                call until under 16 bytes, then start over (trimming buffers)
 *   random       each call picks a new log-uniform size in [1, 256 KiB]
 *   all          the four in turn, each for --seconds/4; one RESULT line per case and a
 *                final case=all line (total ops / total time, merged latency)
 * Every realloc is checked: the tags written before the call must survive in the
 * preserved prefix (head tag, and the old tail tag when growing).
 *
 * Each case starts with --warmup seconds of the same pattern, untimed.
 * ops = realloc calls plus the malloc/free calls of the restarts. Latency: one call in
 * --sample-every is timed with clock_gettime around the realloc alone (the ~20-40 ns
 * cost of the clock read is included); p50/p99/max in ns over the samples.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *opt_case = "all";
static uint64_t opt_threads = 1;
static double opt_seconds = 2.0;
static uint64_t opt_iterations = 0;
static uint64_t opt_seed = 5;
static size_t opt_buffers = 64;
static uint64_t opt_sample_every = 8;
static size_t opt_grow_limit = 65536;
static size_t opt_double_limit = 1 << 20;
static size_t opt_max_samples = 1 << 20;
static double opt_warmup = 0.1;

enum { C_GROW_SMALL, C_GROW_DOUBLE, C_SHRINK, C_RANDOM, N_CASES };
static const char *const k_case_names[N_CASES] = {"grow-small", "grow-double", "shrink", "random"};

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} blk_t;

typedef struct {
  uint32_t *v;   /* mmap'ed, so sampling does not use the allocator under test */
  size_t n, cap;
  uint64_t seen; /* samples offered (reservoir sampling once v is full) */
  uint64_t max;
} samples_t;

typedef struct {
  int id;
  pthread_t th;
  bc_rng rng;
  uint64_t key;
  blk_t *b;
  int cas;
  uint64_t ops, reallocs;
  samples_t s;
} worker_t;

static _Atomic int g_stop;
static pthread_barrier_t g_bar;

static void samples_init(samples_t *s, size_t cap) {
  s->v = mmap(NULL, cap * sizeof(uint32_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s->v == MAP_FAILED) bc_fail("realloc_bench: mmap for samples");
  s->cap = cap;
  s->n = 0;
  s->seen = 0;
  s->max = 0;
}

static void samples_free(samples_t *s) { munmap(s->v, s->cap * sizeof(uint32_t)); }

static inline void samples_add(samples_t *s, bc_rng *r, uint64_t ns) {
  if (ns > s->max) s->max = ns;
  uint32_t v = ns > 0xffffffffu ? 0xffffffffu : (uint32_t)ns;
  s->seen++;
  if (s->n < s->cap) s->v[s->n++] = v;
  else {
    uint64_t j = bc_rng_below(r, s->seen);
    if (j < s->cap) s->v[j] = v;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static size_t start_size(worker_t *w) {
  switch (w->cas) {
  case C_GROW_SMALL: return 16;
  case C_GROW_DOUBLE: return bc_rng_range(&w->rng, 8, 64);
  case C_SHRINK: return bc_rng_logrange(&w->rng, 32768, 524288);
  default: return bc_rng_logrange(&w->rng, 1, 262144);
  }
}

/* The next size for a buffer, or 0 when the pattern starts the buffer over. */
static size_t next_size(worker_t *w, size_t cur) {
  switch (w->cas) {
  case C_GROW_SMALL: {
    size_t n = cur + bc_rng_range(&w->rng, 1, 64);
    return n > opt_grow_limit ? 0 : n;
  }
  case C_GROW_DOUBLE: return cur * 2 > opt_double_limit ? 0 : cur * 2;
  case C_SHRINK: {
    size_t n = cur - bc_rng_range(&w->rng, 1, cur / 4 + 1);
    return n < 16 ? 0 : n;
  }
  default: return bc_rng_logrange(&w->rng, 1, 262144);
  }
}

static inline void blk_start(worker_t *w, blk_t *b) {
  size_t sz = start_size(w);
  b->p = bc_got(malloc(sz), sz, "realloc_bench malloc");
  b->size = sz;
  b->key = ++w->key;
  bc_fill(b->p, sz, b->key);
}

static inline void one_op(worker_t *w, uint64_t *countdown) {
  blk_t *b = &w->b[bc_rng_below(&w->rng, opt_buffers)];
  bc_check(b->p, b->size, b->key, "realloc_bench before realloc");
  size_t old = b->size, n = next_size(w, old);
  if (n == 0) {
    free(b->p);
    blk_start(w, b);
    w->ops += 2;
    return;
  }
  uint64_t head = 0, oldtail = 0;
  if (old >= 8) memcpy(&head, b->p, 8);
  if (old >= 16) memcpy(&oldtail, (char *)b->p + old - 8, 8);
  void *q;
  if (--*countdown == 0) {
    *countdown = opt_sample_every;
    uint64_t t0 = bc_now_ns();
    q = realloc(b->p, n);
    uint64_t t1 = bc_now_ns();
    samples_add(&w->s, &w->rng, t1 - t0);
  } else {
    q = realloc(b->p, n);
  }
  bc_got(q, n, "realloc_bench realloc");
  uint64_t h2 = 0, t2 = 0;
  if (old >= 8 && n >= 8) {
    memcpy(&h2, q, 8);
    if (h2 != head) bc_fail("realloc %zu -> %zu lost the head of the block (%p)", old, n, q);
  }
  if (old >= 16 && n >= old) {
    memcpy(&t2, (char *)q + old - 8, 8);
    if (t2 != oldtail) bc_fail("realloc %zu -> %zu lost the tail of the old block (%p)", old, n, q);
  }
  b->p = q;
  b->size = n;
  bc_fill(q, n, b->key);
  w->ops++;
  w->reallocs++;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  for (size_t i = 0; i < opt_buffers; i++) blk_start(w, &w->b[i]);
  uint64_t countdown = opt_sample_every;
  /* Untimed warm-up: the first pass through a pattern faults in fresh pages, which on
   * some VMs costs ~20 us each and would swamp a short run. */
  for (double end = bc_now() + opt_warmup; bc_now() < end;)
    for (int k = 0; k < 32; k++) one_op(w, &countdown);
  w->ops = 0;
  w->reallocs = 0;
  w->s.n = 0;
  w->s.seen = 0;
  w->s.max = 0;
  pthread_barrier_wait(&g_bar);
  for (;;) {
    if (opt_iterations ? w->ops >= opt_iterations : atomic_load_explicit(&g_stop, memory_order_relaxed))
      break;
    for (int k = 0; k < 32; k++) one_op(w, &countdown);
  }
  pthread_barrier_wait(&g_bar);
  for (size_t i = 0; i < opt_buffers; i++) {
    bc_check(w->b[i].p, w->b[i].size, w->b[i].key, "realloc_bench final free");
    free(w->b[i].p);
  }
  return NULL;
}

static void report(const char *name, double ops, double reallocs, double secs, samples_t *s) {
  uint64_t p50 = 0, p99 = 0;
  if (s->n) {
    qsort(s->v, s->n, sizeof(uint32_t), cmp_u32);
    p50 = s->v[(s->n - 1) / 2];
    p99 = s->v[(size_t)((double)(s->n - 1) * 0.99)];
  }
  printf("RESULT bench=realloc case=%s ops_per_sec=%.0f peak_rss_kb=%ld reallocs_per_sec=%.0f "
         "p50_ns=%llu p99_ns=%llu max_ns=%llu samples=%zu seconds=%.3f threads=%llu\n",
         name, secs > 0 ? ops / secs : 0.0, bc_status_kb("VmHWM"), secs > 0 ? reallocs / secs : 0.0,
         (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)s->max, s->n, secs,
         (unsigned long long)opt_threads);
  fflush(stdout);
}

static void merge_into(samples_t *dst, const samples_t *src, bc_rng *r) {
  for (size_t i = 0; i < src->n; i++) {
    if (dst->n < dst->cap) dst->v[dst->n++] = src->v[i];
    else {
      uint64_t j = bc_rng_below(r, dst->n + i + 1);
      if (j < dst->cap) dst->v[j] = src->v[i];
    }
  }
  if (src->max > dst->max) dst->max = src->max;
}

static void run_case(int cas, double seconds, samples_t *all, double *tot_ops, double *tot_re,
                     double *tot_secs) {
  size_t nt = (size_t)opt_threads;
  worker_t *ws = calloc(nt, sizeof *ws);
  if (!ws) bc_fail("realloc_bench: calloc");
  atomic_store(&g_stop, 0);
  pthread_barrier_init(&g_bar, NULL, (unsigned)nt + 1);
  for (size_t t = 0; t < nt; t++) {
    worker_t *w = &ws[t];
    w->id = (int)t;
    w->cas = cas;
    w->key = (uint64_t)t << 48;
    bc_rng_seed(&w->rng, opt_seed, t * 16 + (uint64_t)cas);
    w->b = bc_got(calloc(opt_buffers, sizeof(blk_t)), opt_buffers * sizeof(blk_t), "buffers");
    samples_init(&w->s, opt_max_samples);
    if (pthread_create(&w->th, NULL, worker_main, w) != 0) bc_fail("pthread_create");
  }
  pthread_barrier_wait(&g_bar);
  double t0 = bc_now();
  if (!opt_iterations) {
    bc_sleep(seconds);
    atomic_store(&g_stop, 1);
  }
  pthread_barrier_wait(&g_bar);
  double secs = bc_now() - t0;
  samples_t merged;
  samples_init(&merged, opt_max_samples);
  bc_rng r;
  bc_rng_seed(&r, opt_seed, 999);
  double ops = 0, re = 0;
  for (size_t t = 0; t < nt; t++) {
    pthread_join(ws[t].th, NULL);
    ops += (double)ws[t].ops;
    re += (double)ws[t].reallocs;
    merge_into(&merged, &ws[t].s, &r);
    if (all) merge_into(all, &ws[t].s, &r);
    samples_free(&ws[t].s);
    free(ws[t].b);
  }
  free(ws);
  pthread_barrier_destroy(&g_bar);
  report(k_case_names[cas], ops, re, secs, &merged);
  samples_free(&merged);
  *tot_ops += ops;
  *tot_re += re;
  *tot_secs += secs;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"case", BC_OPT_STR, &opt_case, 0, 0, "grow-small | grow-double | shrink | random | all"},
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "independent copies, one per thread"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.001, 86400, "measured time (all: split over the four cases)"},
      {"iterations", BC_OPT_U64, &opt_iterations, 0, 1e15, "if > 0: operations per thread per case instead of --seconds"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"buffers", BC_OPT_SIZE, &opt_buffers, 1, 1e7, "live buffers per thread"},
      {"sample-every", BC_OPT_U64, &opt_sample_every, 1, 1e9, "time one realloc in this many"},
      {"grow-limit", BC_OPT_SIZE, &opt_grow_limit, 32, 1ull << 32, "grow-small restarts above this size"},
      {"double-limit", BC_OPT_SIZE, &opt_double_limit, 128, 1ull << 34, "grow-double restarts above this size"},
      {"warmup", BC_OPT_DBL, &opt_warmup, 0, 3600, "untimed warm-up seconds per case before measuring"},
      {"max-samples", BC_OPT_SIZE, &opt_max_samples, 16, 1ull << 28, "latency samples kept per thread (reservoir)"},
  };
  bc_parse_args(argc, argv, "realloc_bench",
                "realloc-heavy patterns (grow by small steps, grow by doubling, shrink, random) "
                "with sampled p50/p99/max latency.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  int sel = -1;
  for (int c = 0; c < N_CASES; c++)
    if (strcmp(opt_case, k_case_names[c]) == 0) sel = c;
  if (sel < 0 && strcmp(opt_case, "all") != 0)
    bc_usage_error("--case must be grow-small, grow-double, shrink, random or all, not '%s'", opt_case);
  if (sel >= 0) {
    double o = 0, r = 0, s = 0;
    run_case(sel, opt_seconds, NULL, &o, &r, &s);
    return 0;
  }
  samples_t all;
  samples_init(&all, opt_max_samples);
  double o = 0, r = 0, s = 0;
  for (int c = 0; c < N_CASES; c++) run_case(c, opt_seconds / N_CASES, &all, &o, &r, &s);
  report("all", o, r, s, &all);
  samples_free(&all);
  return 0;
}
