/* phases.c — a program whose allocation behaviour changes every few seconds.
 *
 * An adaptive allocator (hakmem's ACE) has to follow a program through its phases;
 * this benchmark gives it four, cycled --rounds times, each lasting --phase-seconds:
 *
 *   prodcons  one thread mallocs 16-256 B blocks and passes them through a
 *             single-producer/single-consumer ring to a second thread, which checks
 *             and frees them: every free is a cross-thread free.
 *             ops = malloc calls + free calls.
 *   hugews    one thread builds a working set of --ws bytes (blocks of 64 B-4 KiB,
 *             log-uniform, every byte written), then until the phase ends picks random
 *             blocks, checks and touches them, and replaces --replace-pct of them; at
 *             the end of the phase the whole set is freed. The build always completes,
 *             so a slow build makes the phase longer than --phase-seconds.
 *             ops = accesses + malloc calls + free calls.
 *   churn     one thread allocates batches of n = 25, 50, ..., 1600 blocks of 16-64 B
 *             and frees each batch, FIFO for even batches and LIFO for odd ones.
 *             ops = malloc calls + free calls.
 *   idle      every thread of the program sleeps; nothing is allocated or freed. A
 *             background scavenger may give memory back now. ops = 0.
 *
 * Two worker threads live for the whole run (the producer and consumer of prodcons;
 * the first also runs hugews and churn), so thread caches persist across phases.
 * A sampler thread reads /proc/self/statm every --sample-ms (100) into an array made
 * before the first phase: its loop never calls malloc, so it does not disturb the
 * allocator it watches. The samples go to --rss-csv (t_seconds,rss_bytes,phase) and
 * give the sampled peak and the area under the RSS curve (MiB*s, left Riemann sum).
 *
 * Output: one "phase ..." line per phase run (t_start: seconds since the start, the
 * clock of the CSV), one "kind ..." line per phase kind
 * (median over the rounds and total ops / total seconds), then
 *   RESULT bench=phases ops_per_sec=<geomean of the three active kinds' medians> ...
 * The geomean keeps the fast churn phase from drowning the other two.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double opt_phase_seconds = 3.0;
static uint64_t opt_rounds = 2;
static uint64_t opt_seed = 7;
static size_t opt_ws = (size_t)384 << 20;
static double opt_replace = 20.0;
static uint64_t opt_sample_ms = 100;
static const char *opt_rss_csv = NULL;

enum { PH_PRODCONS, PH_HUGEWS, PH_CHURN, PH_IDLE, PH_COUNT, PH_START = PH_COUNT, PH_END };
static const char *const ph_name[] = {"prodcons", "hugews", "churn", "idle", "start", "end"};

/* ---- shared control ---------------------------------------------------------------- */

static pthread_barrier_t g_go, g_done; /* main + 2 workers: phase start / phase end */
static _Atomic int g_phase = PH_START; /* what the workers run next; the sampler's label */
static _Atomic int g_stop;             /* set by main when the phase time is up */
static _Atomic int g_quit;             /* workers leave after the last phase */
static uint64_t g_ops[2];              /* ops of the phase just run, per worker */

/* ---- prodcons: an SPSC ring of tagged blocks ----------------------------------------- */

#define RING 4096 /* power of two */
typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} item_t;
static item_t g_ring[RING];
static _Atomic uint64_t g_head, g_tail; /* producer writes head, consumer tail */
static _Atomic int g_prod_done;

static uint64_t run_producer(bc_rng *rng, uint64_t *key) {
  uint64_t ops = 0, head = atomic_load_explicit(&g_head, memory_order_relaxed);
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    for (int k = 0; k < 64; k++) {
      while (head - atomic_load_explicit(&g_tail, memory_order_acquire) >= RING) sched_yield();
      size_t sz = bc_rng_range(rng, 16, 256);
      void *p = bc_got(malloc(sz), sz, "phases prodcons malloc");
      bc_fill(p, sz, ++*key);
      g_ring[head & (RING - 1)] = (item_t){p, sz, *key};
      atomic_store_explicit(&g_head, ++head, memory_order_release);
      ops++;
    }
  }
  atomic_store_explicit(&g_prod_done, 1, memory_order_release);
  return ops;
}

static uint64_t run_consumer(void) {
  uint64_t ops = 0, tail = atomic_load_explicit(&g_tail, memory_order_relaxed);
  for (;;) {
    uint64_t head = atomic_load_explicit(&g_head, memory_order_acquire);
    if (head == tail) {
      if (atomic_load_explicit(&g_prod_done, memory_order_acquire) &&
          atomic_load_explicit(&g_head, memory_order_acquire) == tail)
        break;
      sched_yield();
      continue;
    }
    while (tail != head) {
      item_t *it = &g_ring[tail & (RING - 1)];
      bc_check(it->p, it->size, it->key, "phases prodcons free");
      free(it->p);
      ops++;
      tail++;
    }
    atomic_store_explicit(&g_tail, tail, memory_order_release);
  }
  return ops;
}

/* ---- hugews ------------------------------------------------------------------------- */

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} blk_t;

static inline void blk_new(blk_t *b, bc_rng *rng, uint64_t *key) {
  size_t sz = bc_rng_logrange(rng, 64, 4096);
  b->p = bc_got(malloc(sz), sz, "phases hugews malloc");
  b->size = sz;
  b->key = ++*key;
  memset(b->p, (int)(b->key & 0xff), sz); /* touch every byte: the set is resident */
  bc_fill(b->p, sz, b->key);
}

static uint64_t run_hugews(bc_rng *rng, uint64_t *key) {
  size_t cap = 4096, n = 0, total = 0;
  uint64_t ops = 0, sink = 0;
  blk_t *b = bc_got(malloc(cap * sizeof *b), cap * sizeof *b, "phases hugews array");
  while (total < opt_ws) {
    if (n == cap) {
      cap *= 2;
      b = bc_got(realloc(b, cap * sizeof *b), cap * sizeof *b, "phases hugews array");
    }
    blk_new(&b[n], rng, key);
    total += b[n++].size;
    ops++;
  }
  const uint64_t repl_ppm = (uint64_t)(opt_replace * 10000.0 + 0.5);
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    for (int k = 0; k < 64; k++) {
      blk_t *x = &b[bc_rng_below(rng, n)];
      bc_check(x->p, x->size, x->key, "phases hugews access");
      volatile unsigned char *c = (unsigned char *)x->p + 8 + bc_rng_below(rng, x->size - 16);
      sink += *c;
      *c = (unsigned char)(*c + 1);
      ops++;
      if (bc_rng_below(rng, 1000000) < repl_ppm) {
        free(x->p);
        blk_new(x, rng, key);
        ops += 2;
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    bc_check(b[i].p, b[i].size, b[i].key, "phases hugews free");
    free(b[i].p);
  }
  ops += n;
  free(b);
  __asm__ volatile("" : : "r"(sink));
  return ops;
}

/* ---- churn -------------------------------------------------------------------------- */

static uint64_t run_churn(bc_rng *rng, uint64_t *key) {
  enum { MAXN = 1600 };
  static blk_t set[MAXN]; /* only the first worker runs churn */
  uint64_t ops = 0, batch = 0;
  size_t n = 25;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    for (size_t i = 0; i < n; i++) {
      size_t sz = bc_rng_range(rng, 16, 64);
      set[i].p = bc_got(malloc(sz), sz, "phases churn malloc");
      set[i].size = sz;
      set[i].key = ++*key;
      bc_fill(set[i].p, sz, set[i].key);
    }
    if (batch & 1) {
      for (size_t i = n; i-- > 0;) {
        bc_check(set[i].p, set[i].size, set[i].key, "phases churn free");
        free(set[i].p);
      }
    } else {
      for (size_t i = 0; i < n; i++) {
        bc_check(set[i].p, set[i].size, set[i].key, "phases churn free");
        free(set[i].p);
      }
    }
    ops += 2 * n;
    batch++;
    n = n >= MAXN ? 25 : n * 2; /* 25, 50, ..., 1600, 25, ... */
  }
  return ops;
}

/* ---- workers ------------------------------------------------------------------------ */

static void *worker_main(void *arg) {
  int id = (int)(intptr_t)arg;
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, (uint64_t)id);
  uint64_t key = (uint64_t)(id + 1) << 56;
  for (;;) {
    pthread_barrier_wait(&g_go);
    if (atomic_load(&g_quit)) return NULL;
    int ph = atomic_load(&g_phase);
    uint64_t ops = 0;
    switch (ph) {
    case PH_PRODCONS: ops = id == 0 ? run_producer(&rng, &key) : run_consumer(); break;
    case PH_HUGEWS: if (id == 0) ops = run_hugews(&rng, &key); break;
    case PH_CHURN: if (id == 0) ops = run_churn(&rng, &key); break;
    default: break; /* idle: straight to the end barrier, then sleep in the next wait */
    }
    g_ops[id] = ops;
    pthread_barrier_wait(&g_done);
  }
}

/* ---- RSS sampler -------------------------------------------------------------------- */

typedef struct {
  double t;
  uint64_t rss;
  int phase;
} sample_t;

static sample_t *g_samples; /* allocated before the sampler starts */
static size_t g_nsamples, g_cap_samples, g_dropped;
static _Atomic int g_sampler_quit;
static double g_t0;
static long g_page;

/* Resident bytes from /proc/self/statm, read into a stack buffer (no malloc, no stdio). */
static uint64_t statm_rss(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n;
  do n = read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char *s = buf;
  while (*s && *s != ' ') s++; /* skip the size field */
  uint64_t pages = 0;
  while (*s == ' ') s++;
  while (*s >= '0' && *s <= '9') pages = pages * 10 + (uint64_t)(*s++ - '0');
  return pages * (uint64_t)g_page;
}

static void sample_once(void) {
  if (g_nsamples == g_cap_samples) {
    g_dropped++;
    return;
  }
  g_samples[g_nsamples++] = (sample_t){bc_now() - g_t0, statm_rss(), atomic_load(&g_phase)};
}

static void *sampler_main(void *arg) {
  (void)arg;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!atomic_load(&g_sampler_quit)) {
    sample_once();
    next.tv_nsec += (long)(opt_sample_ms * 1000000ull);
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
    }
  }
  return NULL;
}

/* ---- main --------------------------------------------------------------------------- */

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"phase-seconds", BC_OPT_DBL, &opt_phase_seconds, 0.01, 3600, "length of each phase"},
      {"rounds", BC_OPT_U64, &opt_rounds, 1, 1000, "cycles through the four phases"},
      {"ws", BC_OPT_SIZE, &opt_ws, 1 << 16, 1ull << 36, "hugews working set in bytes (K/M/G suffixes)"},
      {"replace-pct", BC_OPT_DBL, &opt_replace, 0, 100, "hugews: percent of accesses that replace the block"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"sample-ms", BC_OPT_U64, &opt_sample_ms, 10, 10000, "RSS sampling period in ms"},
      {"rss-csv", BC_OPT_STR, &opt_rss_csv, 0, 0, "write the RSS samples here (t_seconds,rss_bytes,phase)"},
  };
  bc_parse_args(argc, argv, "phases",
                "Cross-thread producer/consumer, a huge working set, tiny-object churn and idle, in turn.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  FILE *csv = NULL;
  if (opt_rss_csv && !(csv = fopen(opt_rss_csv, "w")))
    bc_usage_error("--rss-csv: cannot open %s: %s", opt_rss_csv, strerror(errno));

  g_page = sysconf(_SC_PAGESIZE);
  size_t nruns = (size_t)opt_rounds * PH_COUNT;
  /* room for the planned time four times over (a slow hugews build stretches its phase) */
  g_cap_samples = (size_t)(4.0 * (double)nruns * opt_phase_seconds * 1000.0 / (double)opt_sample_ms) + 4096;
  g_samples = bc_got(malloc(g_cap_samples * sizeof *g_samples), g_cap_samples * sizeof *g_samples,
                     "phases samples");
  memset(g_samples, 0, g_cap_samples * sizeof *g_samples); /* resident before sampling starts */
  double *secs = bc_got(malloc(nruns * sizeof *secs), nruns * sizeof *secs, "phases results");
  uint64_t *ops = bc_got(malloc(nruns * sizeof *ops), nruns * sizeof *ops, "phases results");

  pthread_barrier_init(&g_go, NULL, 3);
  pthread_barrier_init(&g_done, NULL, 3);
  g_t0 = bc_now();
  pthread_t sampler, workers[2];
  if (pthread_create(&sampler, NULL, sampler_main, NULL) != 0) bc_fail("pthread_create");
  for (intptr_t i = 0; i < 2; i++)
    if (pthread_create(&workers[i], NULL, worker_main, (void *)i) != 0) bc_fail("pthread_create");

  for (size_t r = 0; r < opt_rounds; r++) {
    for (int ph = 0; ph < PH_COUNT; ph++) {
      size_t k = r * PH_COUNT + (size_t)ph;
      atomic_store(&g_stop, 0);
      atomic_store(&g_prod_done, 0);
      atomic_store(&g_phase, ph);
      long rss0 = bc_status_kb("VmRSS");
      double t0 = bc_now();
      pthread_barrier_wait(&g_go);
      bc_sleep(opt_phase_seconds);
      atomic_store(&g_stop, 1);
      pthread_barrier_wait(&g_done);
      secs[k] = bc_now() - t0;
      ops[k] = g_ops[0] + g_ops[1];
      long rss1 = bc_status_kb("VmRSS");
      printf("phase round=%zu kind=%s seconds=%.3f ops=%llu ops_per_sec=%.0f rss_start_kb=%ld rss_end_kb=%ld "
             "t_start=%.3f\n",
             r + 1, ph_name[ph], secs[k], (unsigned long long)ops[k], (double)ops[k] / secs[k], rss0, rss1, t0 - g_t0);
      fflush(stdout);
    }
  }
  atomic_store(&g_phase, PH_END);
  atomic_store(&g_quit, 1);
  pthread_barrier_wait(&g_go);
  for (int i = 0; i < 2; i++) pthread_join(workers[i], NULL);
  atomic_store(&g_sampler_quit, 1);
  pthread_join(sampler, NULL);
  sample_once(); /* the last point, so the curve covers the whole run */
  double wall = bc_now() - g_t0;

  /* per kind: median ops/s over the rounds, and total ops / total seconds */
  double med[PH_COUNT] = {0}, tot[PH_COUNT] = {0};
  double *v = bc_got(malloc(opt_rounds * sizeof *v), opt_rounds * sizeof *v, "phases medians");
  for (int ph = 0; ph < PH_COUNT; ph++) {
    double so = 0, ss = 0;
    for (size_t r = 0; r < opt_rounds; r++) {
      size_t k = r * PH_COUNT + (size_t)ph;
      v[r] = (double)ops[k] / secs[k];
      so += (double)ops[k];
      ss += secs[k];
    }
    qsort(v, opt_rounds, sizeof *v, cmp_dbl);
    med[ph] = opt_rounds % 2 ? v[opt_rounds / 2] : (v[opt_rounds / 2 - 1] + v[opt_rounds / 2]) / 2;
    tot[ph] = so / ss;
    printf("kind kind=%s rounds=%llu median_ops_per_sec=%.0f total_ops_per_sec=%.0f seconds=%.3f\n", ph_name[ph],
           (unsigned long long)opt_rounds, med[ph], tot[ph], ss);
  }
  free(v);

  /* RSS curve: sampled peak and area (left Riemann sum, each sample held until the next) */
  uint64_t peak = 0;
  double area = 0; /* MiB*s */
  for (size_t i = 0; i < g_nsamples; i++) {
    if (g_samples[i].rss > peak) peak = g_samples[i].rss;
    if (i + 1 < g_nsamples) area += (double)g_samples[i].rss / 1048576.0 * (g_samples[i + 1].t - g_samples[i].t);
  }
  if (csv) {
    fprintf(csv, "t_seconds,rss_bytes,phase\n");
    for (size_t i = 0; i < g_nsamples; i++)
      fprintf(csv, "%.3f,%llu,%s\n", g_samples[i].t, (unsigned long long)g_samples[i].rss,
              ph_name[g_samples[i].phase]);
    if (fclose(csv) != 0) bc_fail("phases: writing %s failed", opt_rss_csv);
  }
  double gm = exp((log(med[PH_PRODCONS] > 0 ? med[PH_PRODCONS] : 1) + log(med[PH_HUGEWS] > 0 ? med[PH_HUGEWS] : 1) +
                   log(med[PH_CHURN] > 0 ? med[PH_CHURN] : 1)) / 3.0);
  printf("RESULT bench=phases ops_per_sec=%.0f peak_rss_kb=%ld sampled_peak_rss_kb=%llu rss_area_mib_s=%.1f "
         "ops_prodcons=%.0f ops_hugews=%.0f ops_churn=%.0f rss_end_kb=%ld samples=%zu dropped=%zu "
         "rounds=%llu phase_seconds=%g wall_seconds=%.2f\n",
         gm, bc_status_kb("VmHWM"), (unsigned long long)(peak / 1024), area, med[PH_PRODCONS], med[PH_HUGEWS],
         med[PH_CHURN], bc_status_kb("VmRSS"), g_nsamples, g_dropped, (unsigned long long)opt_rounds,
         opt_phase_seconds, wall);
  free(secs);
  free(ops);
  free(g_samples);
  return 0;
}
