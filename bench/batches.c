/* batches.c — batches of small blocks allocated, then freed in FIFO or LIFO order.
 *
 * The pattern of the SmartHeap-style benchmarks (sh6bench, sh8bench), written from
 * that description: a thread allocates a batch of n blocks of 16-64 B, then frees the
 * whole batch, the next batch in the other order. n walks 25, 50, 100, ... 1600 and
 * back to 25, so the thread cache sees every depth from "fits easily" to "refills and
 * flushes many times per batch". Batches alternate between FIFO frees (the order of
 * allocation) and LIFO frees (the reverse), so half of the frees come back in the
 * order an allocator's free list hands blocks out and half in the opposite one.
 *
 * --threads T runs T such threads, each on its own blocks (pattern 4: the same batches
 * from several threads). --idle-threads K starts K more threads that only wait for the
 * end (pattern 3 "with a second thread running": the process is multi-threaded, so an
 * allocator that takes a single-thread shortcut while only one thread exists loses it,
 * but no other thread allocates).
 *
 * Every block is tagged after malloc and checked before free (bench_common.h).
 * ops = malloc calls + free calls; ops_per_sec = ops / the measured time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t opt_threads = 1;
static uint64_t opt_idle = 0;
static double opt_seconds = 1.0;
static uint64_t opt_iterations = 0;
static size_t opt_min = 16;
static size_t opt_max = 64;
static size_t opt_nmin = 25;
static size_t opt_nmax = 1600;
static uint64_t opt_seed = 6;

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} blk_t;

typedef struct {
  int id;
  pthread_t th;
  uint64_t ops, batches;
} worker_t;

static _Atomic int g_stop;
static pthread_barrier_t g_bar;
static pthread_mutex_t g_idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_idle_cv = PTHREAD_COND_INITIALIZER;
static int g_idle_release;

/* One batch: allocate n blocks, free them FIFO (lifo = 0) or LIFO (lifo = 1). */
static void one_batch(blk_t *b, size_t n, int lifo, bc_rng *rng, uint64_t *key) {
  for (size_t i = 0; i < n; i++) {
    size_t sz = bc_rng_range(rng, opt_min, opt_max);
    b[i].p = bc_got(malloc(sz), sz, "batches malloc");
    b[i].size = sz;
    b[i].key = ++*key;
    bc_fill(b[i].p, sz, b[i].key);
  }
  for (size_t k = 0; k < n; k++) {
    blk_t *x = &b[lifo ? n - 1 - k : k];
    bc_check(x->p, x->size, x->key, lifo ? "batches lifo free" : "batches fifo free");
    free(x->p);
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, (uint64_t)w->id);
  blk_t *b = bc_got(malloc(opt_nmax * sizeof *b), opt_nmax * sizeof *b, "batches array");
  uint64_t key = (uint64_t)w->id << 48, ops = 0, nb = 0;
  size_t n = opt_nmin;
  int up = 1;
  pthread_barrier_wait(&g_bar);
  for (;;) {
    if (opt_iterations ? ops / 2 >= opt_iterations : atomic_load_explicit(&g_stop, memory_order_relaxed)) break;
    one_batch(b, n, (int)(nb & 1), &rng, &key);
    ops += 2 * n;
    nb++;
    /* 25, 50, ... 1600, 800, ... 25, 50, ...: each depth twice per sweep (one FIFO,
     * one LIFO) before moving on */
    if ((nb & 1) == 0) {
      if (up && n * 2 > opt_nmax) up = 0;
      else if (!up && n / 2 < opt_nmin) up = 1;
      n = up ? n * 2 : n / 2;
    }
  }
  free(b);
  w->ops = ops;
  w->batches = nb;
  return NULL;
}

static void *idle_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_idle_mu);
  while (!g_idle_release) pthread_cond_wait(&g_idle_cv, &g_idle_mu);
  pthread_mutex_unlock(&g_idle_mu);
  return NULL;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "threads doing batches"},
      {"idle-threads", BC_OPT_U64, &opt_idle, 0, 1024, "extra threads that only wait (the process is multi-threaded)"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.001, 86400, "measured time"},
      {"iterations", BC_OPT_U64, &opt_iterations, 0, 1e15, "if > 0: at least this many malloc/free pairs per thread instead of --seconds"},
      {"min", BC_OPT_SIZE, &opt_min, 1, 1 << 20, "smallest block"},
      {"max", BC_OPT_SIZE, &opt_max, 1, 1 << 20, "largest block"},
      {"batch-min", BC_OPT_SIZE, &opt_nmin, 1, 1e7, "smallest batch"},
      {"batch-max", BC_OPT_SIZE, &opt_nmax, 1, 1e7, "largest batch (the batch doubles from batch-min up to it)"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
  };
  bc_parse_args(argc, argv, "batches",
                "Batches of 25-1600 small blocks allocated then freed, alternately FIFO and LIFO, "
                "from one or more threads.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  if (opt_min > opt_max) bc_usage_error("--min (%zu) is larger than --max (%zu)", opt_min, opt_max);
  if (opt_nmin > opt_nmax) bc_usage_error("--batch-min (%zu) is larger than --batch-max (%zu)", opt_nmin, opt_nmax);

  size_t nt = (size_t)opt_threads, ni = (size_t)opt_idle;
  pthread_t *idle = bc_got(malloc((ni + 1) * sizeof *idle), (ni + 1) * sizeof *idle, "batches idle");
  for (size_t i = 0; i < ni; i++)
    if (pthread_create(&idle[i], NULL, idle_main, NULL) != 0) bc_fail("batches: pthread_create (idle)");
  worker_t *w = calloc(nt, sizeof *w);
  if (!w) bc_fail("batches: calloc workers");
  pthread_barrier_init(&g_bar, NULL, (unsigned)(nt + 1));
  for (size_t i = 0; i < nt; i++) {
    w[i].id = (int)i;
    if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) bc_fail("batches: pthread_create");
  }
  pthread_barrier_wait(&g_bar);
  double t0 = bc_now();
  if (!opt_iterations) {
    bc_sleep(opt_seconds);
    atomic_store(&g_stop, 1);
  }
  uint64_t ops = 0, nb = 0;
  for (size_t i = 0; i < nt; i++) {
    pthread_join(w[i].th, NULL);
    ops += w[i].ops;
    nb += w[i].batches;
  }
  double secs = bc_now() - t0;
  pthread_mutex_lock(&g_idle_mu);
  g_idle_release = 1;
  pthread_cond_broadcast(&g_idle_cv);
  pthread_mutex_unlock(&g_idle_mu);
  for (size_t i = 0; i < ni; i++) pthread_join(idle[i], NULL);
  free(idle);
  free(w);
  pthread_barrier_destroy(&g_bar);
  printf("RESULT bench=batches ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%llu threads=%zu "
         "idle_threads=%zu batches=%llu min=%zu max=%zu batch_min=%zu batch_max=%zu\n",
         (double)ops / secs, bc_status_kb("VmHWM"), secs, (unsigned long long)ops, nt, ni,
         (unsigned long long)nb, opt_min, opt_max, opt_nmin, opt_nmax);
  return 0;
}
