/* fragment_stress.c — long-lived objects interleaved with short-lived ones whose size
 * mix shifts in phases, so that freed memory ends up scattered between survivors.
 *
 * Each thread (--threads, default 1, each an independent copy with its own seed stream):
 *   - a long-lived set of --long-lived blocks, filled from the first phase's mix;
 *   - each round allocates a burst of --burst short-lived blocks from the current
 *     phase's size mix; a burst lives --lifetime rounds, then is freed in random order;
 *   - --survive-pct percent of each burst is promoted: it replaces a random long-lived
 *     block (which is freed), so the long-lived set slowly drifts through every phase
 *     and old-phase survivors stay pinned among new-phase holes;
 *   - every --phase-rounds rounds the size mix changes (six mixes, in a cycle).
 * The work is fixed (--rounds); --seconds, if > 0, caps the time.
 *
 * Reports: ops_per_sec (malloc + free calls / wall time), peak_rss_kb (VmHWM),
 * final_rss_kb (VmRSS with only the long-lived sets live), live_kb (bytes requested in
 * the long-lived sets), final_over_live (final RSS / live bytes: 1.0 is no waste), and
 * empty_rss_kb (VmRSS after everything was freed: what the allocator kept).
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

static uint64_t opt_threads = 1;
static double opt_seconds = 0;
static uint64_t opt_rounds = 1500;
static uint64_t opt_seed = 7;
static size_t opt_long = 20000;
static size_t opt_burst = 1000;
static uint64_t opt_lifetime = 4;
static uint64_t opt_phase_rounds = 125;
static double opt_survive = 1.0;

/* A phase's size mix: half the draws log-uniform in [a_lo,a_hi], half in [b_lo,b_hi]. */
typedef struct {
  const char *name;
  size_t a_lo, a_hi, b_lo, b_hi;
} phase_t;

static const phase_t k_phases[] = {
    {"small", 16, 256, 16, 256},
    {"medium", 256, 4096, 256, 4096},
    {"large", 4096, 32768, 4096, 32768},
    {"mixed", 16, 65536, 16, 65536},
    {"tiny", 8, 64, 8, 64},
    {"bimodal", 24, 48, 3000, 5000},
};
#define N_PHASES (sizeof k_phases / sizeof k_phases[0])

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} blk_t;

typedef struct {
  int id;
  pthread_t th;
  bc_rng rng;
  uint64_t key;
  blk_t *longs;  /* opt_long */
  blk_t *shorts; /* opt_lifetime bursts of opt_burst, a ring indexed by round */
  size_t *order; /* scratch for shuffled frees */
  uint64_t ops, rounds, promoted;
  uint64_t measured_ops; /* ops when the measured part ended */
  uint64_t live_bytes;
} worker_t;

static _Atomic double g_deadline;   /* set before the start barrier: workers read it right after */
static pthread_barrier_t g_bar;

static inline size_t phase_size(bc_rng *r, const phase_t *ph) {
  if (bc_rng_next(r) & 1) return bc_rng_logrange(r, ph->a_lo, ph->a_hi);
  return bc_rng_logrange(r, ph->b_lo, ph->b_hi);
}

static inline void blk_alloc(worker_t *w, blk_t *b, size_t sz) {
  b->p = bc_got(malloc(sz), sz, "fragment malloc");
  b->size = sz;
  b->key = ++w->key;
  bc_fill(b->p, sz, b->key);
  w->ops++;
}

static inline void blk_free(worker_t *w, blk_t *b, const char *where) {
  bc_check(b->p, b->size, b->key, where);
  free(b->p);
  b->p = NULL;
  w->ops++;
}

static void free_burst_shuffled(worker_t *w, blk_t *burst) {
  size_t n = opt_burst;
  for (size_t i = 0; i < n; i++) w->order[i] = i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)bc_rng_below(&w->rng, i + 1), t = w->order[i];
    w->order[i] = w->order[j];
    w->order[j] = t;
  }
  for (size_t i = 0; i < n; i++) {
    blk_t *b = &burst[w->order[i]];
    if (b->p) blk_free(w, b, "fragment short-lived free");
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  const uint64_t survive_ppm = (uint64_t)(opt_survive * 10000.0 + 0.5);
  for (size_t i = 0; i < opt_long; i++) blk_alloc(w, &w->longs[i], phase_size(&w->rng, &k_phases[0]));
  w->ops = 0;
  pthread_barrier_wait(&g_bar);
  for (uint64_t r = 0; r < opt_rounds; r++) {
    if (opt_seconds > 0 && (r & 15) == 0 && bc_now() >= atomic_load_explicit(&g_deadline, memory_order_relaxed)) break;
    const phase_t *ph = &k_phases[(r / opt_phase_rounds) % N_PHASES];
    blk_t *burst = &w->shorts[(r % opt_lifetime) * opt_burst];
    if (r >= opt_lifetime) free_burst_shuffled(w, burst); /* the oldest burst dies */
    for (size_t i = 0; i < opt_burst; i++) {
      blk_alloc(w, &burst[i], phase_size(&w->rng, ph));
      if (bc_rng_below(&w->rng, 1000000) < survive_ppm) {
        blk_t *victim = &w->longs[bc_rng_below(&w->rng, opt_long)];
        blk_free(w, victim, "fragment long-lived free");
        *victim = burst[i];
        burst[i].p = NULL;
        w->promoted++;
      }
    }
    w->rounds++;
  }
  w->measured_ops = w->ops;
  pthread_barrier_wait(&g_bar); /* all threads done with the measured part */
  /* Free the remaining short-lived bursts; only the long-lived set stays. */
  for (uint64_t k = 0; k < opt_lifetime; k++) free_burst_shuffled(w, &w->shorts[k * opt_burst]);
  w->live_bytes = 0;
  for (size_t i = 0; i < opt_long; i++) w->live_bytes += w->longs[i].size;
  return NULL;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "independent copies, one per thread"},
      {"rounds", BC_OPT_U64, &opt_rounds, 1, 1e12, "rounds of work per thread (the iteration count)"},
      {"iterations", BC_OPT_U64, &opt_rounds, 1, 1e12, "same as --rounds"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0, 86400, "if > 0: stop after this long even if rounds remain"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"long-lived", BC_OPT_SIZE, &opt_long, 1, 1e8, "long-lived blocks per thread"},
      {"burst", BC_OPT_SIZE, &opt_burst, 1, 1e8, "short-lived blocks allocated per round"},
      {"lifetime", BC_OPT_U64, &opt_lifetime, 1, 1000, "rounds a burst stays alive"},
      {"phase-rounds", BC_OPT_U64, &opt_phase_rounds, 1, 1e12, "rounds before the size mix changes"},
      {"survive-pct", BC_OPT_DBL, &opt_survive, 0, 100, "percent of short-lived blocks promoted to long-lived"},
  };
  bc_parse_args(argc, argv, "fragment_stress",
                "Long-lived objects interleaved with short-lived ones of shifting size mixes; "
                "reports throughput, peak and final RSS.",
                opts, (int)(sizeof opts / sizeof opts[0]));

  size_t nt = (size_t)opt_threads;
  worker_t *ws = calloc(nt, sizeof *ws);
  if (!ws) bc_fail("fragment: calloc");
  for (size_t t = 0; t < nt; t++) {
    worker_t *w = &ws[t];
    w->id = (int)t;
    w->key = (uint64_t)t << 48;
    bc_rng_seed(&w->rng, opt_seed, t);
    w->longs = bc_got(calloc(opt_long, sizeof(blk_t)), opt_long * sizeof(blk_t), "longs");
    w->shorts = bc_got(calloc(opt_burst * opt_lifetime, sizeof(blk_t)), opt_burst * opt_lifetime * sizeof(blk_t), "shorts");
    w->order = bc_got(malloc(opt_burst * sizeof(size_t)), opt_burst * sizeof(size_t), "order");
  }
  pthread_barrier_init(&g_bar, NULL, (unsigned)nt + 1);
  for (size_t t = 0; t < nt; t++)
    if (pthread_create(&ws[t].th, NULL, worker_main, &ws[t]) != 0) bc_fail("pthread_create");
  g_deadline = bc_now() + opt_seconds + 3600;     /* until the start: no early stop */
  pthread_barrier_wait(&g_bar); /* set-up done */
  double t0 = bc_now();
  atomic_store_explicit(&g_deadline, t0 + opt_seconds, memory_order_relaxed);
  pthread_barrier_wait(&g_bar); /* measured part done */
  double secs = bc_now() - t0;
  for (size_t t = 0; t < nt; t++) pthread_join(ws[t].th, NULL);

  long peak = bc_status_kb("VmHWM");
  long final_rss = bc_status_kb("VmRSS");
  uint64_t ops = 0, rounds = 0, promoted = 0, live = 0;
  for (size_t t = 0; t < nt; t++) {
    ops += ws[t].measured_ops;
    rounds += ws[t].rounds;
    promoted += ws[t].promoted;
    live += ws[t].live_bytes;
  }
  for (size_t t = 0; t < nt; t++) {
    worker_t *w = &ws[t];
    for (size_t i = 0; i < opt_long; i++) {
      bc_check(w->longs[i].p, w->longs[i].size, w->longs[i].key, "fragment final free");
      free(w->longs[i].p);
    }
    free(w->longs);
    free(w->shorts);
    free(w->order);
  }
  long empty_rss = bc_status_kb("VmRSS");
  free(ws);
  pthread_barrier_destroy(&g_bar);
  double live_kb = (double)live / 1024.0;
  printf("RESULT bench=fragment ops_per_sec=%.0f peak_rss_kb=%ld final_rss_kb=%ld live_kb=%.0f "
         "final_over_live=%.2f empty_rss_kb=%ld seconds=%.3f ops=%llu rounds=%llu promoted=%llu "
         "threads=%zu\n",
         secs > 0 ? (double)ops / secs : 0.0, peak, final_rss, live_kb,
         live_kb > 0 ? (double)final_rss / live_kb : 0.0, empty_rss, secs, (unsigned long long)ops,
         (unsigned long long)rounds, (unsigned long long)promoted, nt);
  return 0;
}
