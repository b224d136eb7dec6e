/* larson.c — a server-style benchmark after Larson and Krishnan (ISMM '98), written
 * from the description of the workload, not from any existing source.
 *
 * Model: --threads lanes, each owning an array of --slots live blocks. The main thread
 * allocates every lane's initial blocks (so the first frees in each lane are frees of
 * memory another thread allocated), shuffles them and replaces --warmup x slots of them
 * at random (the reference's warm-up: the lanes start from a mixed-up heap, not from
 * blocks laid out in allocation order). A lane's thread repeatedly picks a random slot,
 * checks and frees its block, and allocates a new block of random size in [min, max].
 * After --rounds-per-thread such replacements the thread hands the lane (its slot array
 * and RNG) to a newly created thread and exits, like a server that serves each
 * connection on a fresh thread: blocks outlive the thread that allocated them, and the
 * allocator's per-thread state is born and torn down all the time.
 *
 * After --seconds the main thread raises a stop flag (or, with --iterations, each lane
 * stops after that many replacements), waits until every lane's current thread has
 * finished, checks and frees all live blocks.
 * ops = malloc calls + free calls by the lane threads; ops_per_sec = ops / elapsed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t opt_threads = 2;
static double opt_seconds = 2.0;
static size_t opt_min = 8;
static size_t opt_max = 1024;
/* The reference defaults (larson 5 8 1000 5000 100 4141 N): 5,000 blocks per lane and
 * 100 x 5,000 replacements per thread before the hand-off. The old defaults of this
 * program (1,000 slots, 20,000 replacements, no warm-up) are compare.sh's larson-churn:
 * at 100M+ ops/s they hand off every ~0.2 ms per lane and mostly time thread start/exit. */
static size_t opt_slots = 5000;
static uint64_t opt_rounds = 500000;
static uint64_t opt_warmup = 4;
static uint64_t opt_seed = 4141;
static uint64_t opt_iterations = 0;
static const char *opt_dist = "uniform";

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} slot_t;

typedef struct {
  int id;
  slot_t *slots;
  bc_rng rng;
  uint64_t key;          /* last key handed out in this lane */
  uint64_t ops;          /* malloc+free calls, summed over the lane's threads */
  uint64_t generations;  /* threads that served this lane */
  uint64_t create_fail;  /* pthread_create failures (the old thread kept going) */
  _Atomic int finished;  /* set by the lane's last thread after it saw the stop flag */
} lane_t;

static _Atomic int g_stop;
static int g_log_dist;
static pthread_attr_t g_detached;

static inline size_t draw_size(bc_rng *r) {
  return g_log_dist ? bc_rng_logrange(r, opt_min, opt_max) : bc_rng_range(r, opt_min, opt_max);
}

static void *lane_main(void *arg) {
  lane_t *L = arg;
  const size_t n = opt_slots;
  for (;;) {
    uint64_t ops = 0;
    int stopped = 0;
    uint64_t todo = opt_rounds;
    if (opt_iterations) { /* fixed work: a lane ends after opt_iterations replacements */
      uint64_t left = opt_iterations - L->ops / 2;
      if (left <= todo) {
        todo = left;
        stopped = 1;
      }
    }
    for (uint64_t i = 0; i < todo; i++) {
      if (atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        stopped = 1;
        break;
      }
      slot_t *s = &L->slots[bc_rng_below(&L->rng, n)];
      bc_check(s->p, s->size, s->key, "larson free");
      free(s->p);
      size_t sz = draw_size(&L->rng);
      s->p = bc_got(malloc(sz), sz, "larson malloc");
      s->size = sz;
      s->key = ++L->key;
      bc_fill(s->p, sz, s->key);
      ops += 2;
    }
    L->ops += ops;
    if (stopped || atomic_load_explicit(&g_stop, memory_order_relaxed)) {
      atomic_store_explicit(&L->finished, 1, memory_order_release);
      return NULL;
    }
    /* Hand the lane to a new thread. After a successful create this thread must not
     * touch L again: the successor owns it. */
    L->generations++;
    pthread_t t;
    int rc = pthread_create(&t, &g_detached, lane_main, L);
    if (rc == 0) return NULL;
    L->generations--;
    L->create_fail++;
    if (rc != EAGAIN) bc_fail("larson: pthread_create: %s", strerror(rc));
  }
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"threads", BC_OPT_U64, &opt_threads, 1, 4096, "lanes (threads alive at any time)"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.01, 86400, "run time"},
      {"min", BC_OPT_SIZE, &opt_min, 1, 1ull << 30, "smallest block size"},
      {"max", BC_OPT_SIZE, &opt_max, 1, 1ull << 30, "largest block size"},
      {"slots", BC_OPT_SIZE, &opt_slots, 1, 1e8, "live blocks per lane"},
      {"rounds-per-thread", BC_OPT_U64, &opt_rounds, 1, 1e15, "free+malloc replacements a thread does before handing its lane to a new thread"},
      {"warmup", BC_OPT_U64, &opt_warmup, 0, 1000, "untimed warm-up: shuffle each lane's initial blocks and replace warmup x slots of them (0: neither)"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"iterations", BC_OPT_U64, &opt_iterations, 0, 1e15, "if > 0: free+malloc replacements per lane instead of --seconds"},
      {"dist", BC_OPT_STR, &opt_dist, 0, 0, "size distribution: uniform | log (log-uniform, each doubling equally likely)"},
  };
  bc_parse_args(argc, argv, "larson",
                "Larson-Krishnan style server benchmark: lanes of live blocks replaced at random "
                "by short-lived threads that hand their lane on to a successor.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  if (opt_min > opt_max) bc_usage_error("--min (%zu) is larger than --max (%zu)", opt_min, opt_max);
  if (strcmp(opt_dist, "uniform") == 0) g_log_dist = 0;
  else if (strcmp(opt_dist, "log") == 0) g_log_dist = 1;
  else bc_usage_error("--dist must be uniform or log, not '%s'", opt_dist);

  const size_t nl = (size_t)opt_threads;
  lane_t *lanes = calloc(nl, sizeof *lanes);
  if (!lanes) bc_fail("larson: calloc lanes");
  pthread_attr_init(&g_detached);
  pthread_attr_setdetachstate(&g_detached, PTHREAD_CREATE_DETACHED);

  /* The main thread allocates every lane's initial blocks. */
  for (size_t l = 0; l < nl; l++) {
    lane_t *L = &lanes[l];
    L->id = (int)l;
    L->key = (uint64_t)l << 48;
    bc_rng_seed(&L->rng, opt_seed, l);
    L->slots = bc_got(malloc(opt_slots * sizeof(slot_t)), opt_slots * sizeof(slot_t), "larson slots");
    for (size_t i = 0; i < opt_slots; i++) {
      slot_t *s = &L->slots[i];
      s->size = draw_size(&L->rng);
      s->p = bc_got(malloc(s->size), s->size, "larson warmup malloc");
      s->key = ++L->key;
      bc_fill(s->p, s->size, s->key);
    }
    if (opt_warmup) {
      /* Shuffle (Fisher-Yates), then replace warmup x slots blocks at random. */
      for (size_t i = opt_slots; i > 1; i--) {
        size_t j = (size_t)bc_rng_below(&L->rng, i);
        slot_t t = L->slots[i - 1];
        L->slots[i - 1] = L->slots[j];
        L->slots[j] = t;
      }
      for (uint64_t k = 0; k < opt_warmup * opt_slots; k++) {
        slot_t *s = &L->slots[bc_rng_below(&L->rng, opt_slots)];
        bc_check(s->p, s->size, s->key, "larson warmup free");
        free(s->p);
        s->size = draw_size(&L->rng);
        s->p = bc_got(malloc(s->size), s->size, "larson warmup malloc");
        s->key = ++L->key;
        bc_fill(s->p, s->size, s->key);
      }
    }
  }

  double t0 = bc_now();
  for (size_t l = 0; l < nl; l++) {
    pthread_t t;
    lanes[l].generations = 1;
    int rc = pthread_create(&t, &g_detached, lane_main, &lanes[l]);
    if (rc != 0) bc_fail("larson: pthread_create for lane %zu: %s", l, strerror(rc));
  }
  if (!opt_iterations) {
    bc_sleep(opt_seconds);
    atomic_store(&g_stop, 1);
  }
  for (size_t l = 0; l < nl; l++)
    while (!atomic_load_explicit(&lanes[l].finished, memory_order_acquire)) bc_sleep(0.0005);
  double secs = bc_now() - t0;

  uint64_t ops = 0, gens = 0, fails = 0, live = 0;
  for (size_t l = 0; l < nl; l++) {
    lane_t *L = &lanes[l];
    ops += L->ops;
    gens += L->generations;
    fails += L->create_fail;
    for (size_t i = 0; i < opt_slots; i++) live += L->slots[i].size;
  }
  long hwm = bc_status_kb("VmHWM"), rss = bc_status_kb("VmRSS");
  for (size_t l = 0; l < nl; l++) {
    lane_t *L = &lanes[l];
    for (size_t i = 0; i < opt_slots; i++) {
      bc_check(L->slots[i].p, L->slots[i].size, L->slots[i].key, "larson final free");
      free(L->slots[i].p);
    }
    free(L->slots);
  }
  free(lanes);
  printf("RESULT bench=larson ops_per_sec=%.0f peak_rss_kb=%ld rss_kb=%ld seconds=%.3f ops=%llu "
         "threads=%zu slots=%zu min=%zu max=%zu dist=%s rounds_per_thread=%llu warmup=%llu threads_created=%llu "
         "create_failures=%llu live_kb=%llu\n",
         (double)ops / secs, hwm, rss, secs, (unsigned long long)ops, nl, opt_slots, opt_min, opt_max,
         opt_dist, (unsigned long long)opt_rounds, (unsigned long long)opt_warmup, (unsigned long long)gens,
         (unsigned long long)fails, (unsigned long long)(live / 1024));
  return 0;
}
