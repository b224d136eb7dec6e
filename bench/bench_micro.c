/* bench_micro.c — allocator microbenchmarks.
 *
 * Cases (--case):
 *   tight    one thread, malloc(size) / free in a tight loop, for each size in
 *            16 64 256 1024 8192 65536 (or only --size). The fast path of each tier.
 *   batch    one thread, allocate --batch blocks then free them all (fifo, lifo or
 *            random order). Exercises refill and flush of the thread cache.
 *   xthread  ceil(T/2) producer threads malloc blocks and pass them through lock-free
 *            single-producer/single-consumer rings to floor(T/2) consumer threads,
 *            which check and free them: every free is a cross-thread free.
 *   all      the three above in turn (one RESULT line each).
 *
 * ops = malloc calls + free calls; ops_per_sec divides by wall time of the measured loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *opt_case = "all";
static uint64_t opt_threads = 2;
static double opt_seconds = 1.0;
static uint64_t opt_iterations = 0;
static uint64_t opt_seed = 42;
static size_t opt_size = 0;
static size_t opt_min = 16;
static size_t opt_max = 1024;
static size_t opt_batch = 1000;
static const char *opt_order = "fifo";

static const size_t k_tight_sizes[] = {16, 64, 256, 1024, 8192, 65536};
#define N_TIGHT (sizeof k_tight_sizes / sizeof k_tight_sizes[0])

/* Run control: either a deadline or a fixed iteration count. The clock is read once
 * per chunk; chunks start at 1 iteration and double up to 256, so a slow allocator
 * (one that faults pages on every call) still stops close to the deadline. */
typedef struct {
  double deadline;
  uint64_t iters; /* 0: run to the deadline */
  uint64_t chunk;
} until_t;

static until_t until_make(double seconds, uint64_t iters) {
  until_t u = {bc_now() + seconds, iters, 1};
  return u;
}

/* How many iterations to run before asking again (0 = stop). */
static inline uint64_t until_chunk(until_t *u, uint64_t done) {
  if (u->iters) return done >= u->iters ? 0 : (u->iters - done < 256 ? u->iters - done : 256);
  if (bc_now() >= u->deadline) return 0;
  if (u->chunk < 256) u->chunk *= 2;
  return u->chunk;
}

static void print_result(const char *cas, double ops, double secs, const char *extra) {
  printf("RESULT bench=micro case=%s ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%.0f%s%s\n",
         cas, secs > 0 ? ops / secs : 0.0, bc_status_kb("VmHWM"), secs, ops, extra[0] ? " " : "",
         extra);
  fflush(stdout);
}

/* ---- tight ------------------------------------------------------------------------- */

static uint64_t tight_one(size_t size, double seconds, uint64_t iters, double *secs_out) {
  uint64_t key = 1, done = 0;
  double t0 = bc_now();
  until_t u = until_make(seconds, iters);
  for (uint64_t chunk; (chunk = until_chunk(&u, done)) != 0; done += chunk) {
    for (uint64_t k = 0; k < chunk; k++, key++) {
      void *p = bc_got(malloc(size), size, "tight malloc");
      bc_fill(p, size, key);
      bc_check(p, size, key, "tight free");
      free(p);
    }
  }
  *secs_out = bc_now() - t0;
  return done * 2;
}

static void run_tight(void) {
  size_t sizes[N_TIGHT];
  size_t n = 0;
  if (opt_size) sizes[n++] = opt_size;
  else
    for (size_t i = 0; i < N_TIGHT; i++) sizes[n++] = k_tight_sizes[i];
  char extra[512] = "";
  size_t len = 0;
  double total_ops = 0, total_secs = 0;
  for (size_t i = 0; i < n; i++) {
    double secs;
    uint64_t ops = tight_one(sizes[i], opt_seconds / (double)n, opt_iterations, &secs);
    total_ops += (double)ops;
    total_secs += secs;
    len += (size_t)snprintf(extra + len, sizeof extra - len, "%sops_%zu=%.0f", i ? " " : "", sizes[i],
                            secs > 0 ? (double)ops / secs : 0.0);
  }
  print_result("tight", total_ops, total_secs, extra);
}

/* ---- batch ------------------------------------------------------------------------- */

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} blk_t;

static void run_batch(void) {
  size_t n = opt_batch;
  blk_t *b = bc_got(malloc(n * sizeof *b), n * sizeof *b, "batch array");
  size_t *order = bc_got(malloc(n * sizeof *order), n * sizeof *order, "batch order");
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, 1);
  int ord = strcmp(opt_order, "fifo") == 0 ? 0 : strcmp(opt_order, "lifo") == 0 ? 1 : 2;
  for (size_t i = 0; i < n; i++) order[i] = ord == 1 ? n - 1 - i : i;
  uint64_t key = 1, rounds = 0, pairs = 0;
  uint64_t max_rounds = opt_iterations ? (opt_iterations + n - 1) / n : 0;
  double t0 = bc_now(), deadline = t0 + opt_seconds;
  for (;;) {
    if (max_rounds ? rounds >= max_rounds : bc_now() >= deadline) break;
    for (size_t i = 0; i < n; i++, key++) {
      size_t sz = opt_size ? opt_size : bc_rng_range(&rng, opt_min, opt_max);
      b[i].p = bc_got(malloc(sz), sz, "batch malloc");
      b[i].size = sz;
      b[i].key = key;
      bc_fill(b[i].p, sz, key);
    }
    if (ord == 2) /* Fisher-Yates: a fresh free order each round */
      for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)bc_rng_below(&rng, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    for (size_t i = 0; i < n; i++) {
      blk_t *x = &b[order[i]];
      bc_check(x->p, x->size, x->key, "batch free");
      free(x->p);
    }
    rounds++;
    pairs += n;
  }
  double secs = bc_now() - t0;
  char extra[128];
  snprintf(extra, sizeof extra, "batch=%zu order=%s rounds=%llu", n, opt_order,
           (unsigned long long)rounds);
  free(order);
  free(b);
  print_result("batch", (double)pairs * 2, secs, extra);
}

/* ---- xthread ----------------------------------------------------------------------- */

#define RING_CAP 1024 /* entries; a power of two */

typedef struct {
  _Alignas(64) _Atomic uint64_t tail; /* written by the producer */
  _Alignas(64) _Atomic uint64_t head; /* written by the consumer */
  _Alignas(64) blk_t slot[RING_CAP];
} ring_t;

typedef struct {
  int id;
  pthread_t th;
  ring_t *ring;                  /* producer: its one ring */
  _Atomic int done;              /* producer: finished sending */
  uint64_t mallocs, frees, full_waits;
} worker_t;

static worker_t *g_prod, *g_cons;
static size_t g_np, g_nc;
static _Atomic int g_stop;
static pthread_barrier_t g_bar;

static void *producer_main(void *arg) {
  worker_t *w = arg;
  ring_t *r = w->ring;
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, 100 + (uint64_t)w->id);
  uint64_t tail = 0, head_cache = 0, key = ((uint64_t)w->id << 48) + 1;
  uint64_t limit = opt_iterations;
  pthread_barrier_wait(&g_bar);
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed) && (!limit || w->mallocs < limit)) {
    if (tail - head_cache == RING_CAP) {
      head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
      if (tail - head_cache == RING_CAP) {
        w->full_waits++;
        sched_yield();
        continue;
      }
    }
    size_t sz = opt_size ? opt_size : bc_rng_range(&rng, opt_min, opt_max);
    void *p = bc_got(malloc(sz), sz, "xthread malloc");
    bc_fill(p, sz, key);
    blk_t *s = &r->slot[tail & (RING_CAP - 1)];
    s->p = p;
    s->size = sz;
    s->key = key++;
    atomic_store_explicit(&r->tail, ++tail, memory_order_release);
    w->mallocs++;
  }
  atomic_store_explicit(&w->done, 1, memory_order_release);
  return NULL;
}

static void *consumer_main(void *arg) {
  worker_t *w = arg;
  size_t nmine = 0;
  size_t mine[64];
  for (size_t p = (size_t)w->id; p < g_np && nmine < 64; p += g_nc) mine[nmine++] = p;
  uint64_t heads[64] = {0};
  pthread_barrier_wait(&g_bar);
  for (;;) {
    int got = 0, all_done = 1;
    for (size_t k = 0; k < nmine; k++) {
      worker_t *pw = &g_prod[mine[k]];
      ring_t *r = pw->ring;
      int done = atomic_load_explicit(&pw->done, memory_order_acquire);
      uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
      uint64_t head = heads[k];
      while (head != tail) {
        blk_t *s = &r->slot[head & (RING_CAP - 1)];
        bc_check(s->p, s->size, s->key, "xthread cross-thread free");
        free(s->p);
        head++;
        w->frees++;
        got = 1;
        if ((head & 31) == 0) atomic_store_explicit(&r->head, head, memory_order_release);
      }
      atomic_store_explicit(&r->head, head, memory_order_release);
      heads[k] = head;
      /* `done` was read before `tail`, so an empty ring now means nothing more comes. */
      if (!done) all_done = 0;
    }
    if (!got) {
      if (all_done) break;
      sched_yield();
    }
  }
  return NULL;
}

static void run_xthread(void) {
  size_t t = (size_t)opt_threads;
  g_np = (t + 1) / 2;
  g_nc = t / 2;
  if (g_nc == 0) bc_usage_error("--case xthread needs --threads >= 2");
  if (g_np > 64 * g_nc) bc_usage_error("too many producers per consumer");
  g_prod = calloc(g_np, sizeof *g_prod);
  g_cons = calloc(g_nc, sizeof *g_cons);
  if (!g_prod || !g_cons) bc_fail("xthread: calloc failed");
  atomic_store(&g_stop, 0);
  pthread_barrier_init(&g_bar, NULL, (unsigned)(t + 1));
  for (size_t i = 0; i < g_np; i++) {
    g_prod[i].id = (int)i;
    if (posix_memalign((void **)&g_prod[i].ring, 64, sizeof(ring_t)) != 0) bc_fail("ring alloc");
    memset(g_prod[i].ring, 0, sizeof(ring_t));
    if (pthread_create(&g_prod[i].th, NULL, producer_main, &g_prod[i]) != 0) bc_fail("pthread_create");
  }
  for (size_t i = 0; i < g_nc; i++) {
    g_cons[i].id = (int)i;
    if (pthread_create(&g_cons[i].th, NULL, consumer_main, &g_cons[i]) != 0) bc_fail("pthread_create");
  }
  pthread_barrier_wait(&g_bar);
  double t0 = bc_now();
  if (!opt_iterations) {
    bc_sleep(opt_seconds);
    atomic_store(&g_stop, 1);
  }
  for (size_t i = 0; i < g_np; i++) pthread_join(g_prod[i].th, NULL);
  for (size_t i = 0; i < g_nc; i++) pthread_join(g_cons[i].th, NULL);
  double secs = bc_now() - t0;
  uint64_t m = 0, f = 0, waits = 0;
  for (size_t i = 0; i < g_np; i++) {
    m += g_prod[i].mallocs;
    waits += g_prod[i].full_waits;
    free(g_prod[i].ring);
  }
  for (size_t i = 0; i < g_nc; i++) f += g_cons[i].frees;
  if (m != f) bc_fail("xthread: %llu blocks sent but %llu freed", (unsigned long long)m,
                      (unsigned long long)f);
  pthread_barrier_destroy(&g_bar);
  free(g_prod);
  free(g_cons);
  char extra[160];
  snprintf(extra, sizeof extra, "threads=%zu producers=%zu consumers=%zu ring_full_waits=%llu", t,
           g_np, g_nc, (unsigned long long)waits);
  print_result("xthread", (double)(m + f), secs, extra);
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"case", BC_OPT_STR, &opt_case, 0, 0, "tight | batch | xthread | all"},
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "threads for xthread (producers = ceil(T/2))"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.001, 86400, "duration of each case (tight splits it over its sizes)"},
      {"iterations", BC_OPT_U64, &opt_iterations, 0, 1e15, "if > 0: malloc/free pairs per case (per size, per producer) instead of --seconds"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"size", BC_OPT_SIZE, &opt_size, 0, 1ull << 32, "fixed block size; 0: tight uses its size list, others draw from [min,max]"},
      {"min", BC_OPT_SIZE, &opt_min, 1, 1ull << 32, "smallest random size (batch, xthread)"},
      {"max", BC_OPT_SIZE, &opt_max, 1, 1ull << 32, "largest random size (batch, xthread)"},
      {"batch", BC_OPT_SIZE, &opt_batch, 1, 1e8, "blocks per batch"},
      {"order", BC_OPT_STR, &opt_order, 0, 0, "free order in batch: fifo | lifo | random"},
  };
  bc_parse_args(argc, argv, "bench_micro",
                "Allocator microbenchmarks: tight malloc/free per size, batch alloc-then-free, "
                "cross-thread producer/consumer frees.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  if (opt_min > opt_max) bc_usage_error("--min (%zu) is larger than --max (%zu)", opt_min, opt_max);
  if (strcmp(opt_order, "fifo") && strcmp(opt_order, "lifo") && strcmp(opt_order, "random"))
    bc_usage_error("--order must be fifo, lifo or random, not '%s'", opt_order);
  int all = strcmp(opt_case, "all") == 0;
  if (!all && strcmp(opt_case, "tight") && strcmp(opt_case, "batch") && strcmp(opt_case, "xthread"))
    bc_usage_error("--case must be tight, batch, xthread or all, not '%s'", opt_case);
  if ((all || !strcmp(opt_case, "xthread")) && opt_threads < 2)
    bc_usage_error("--case xthread needs --threads >= 2");
  if (all || !strcmp(opt_case, "tight")) run_tight();
  if (all || !strcmp(opt_case, "batch")) run_batch();
  if (all || !strcmp(opt_case, "xthread")) run_xthread();
  return 0;
}
