/* alloc_test.c — random sizes, random lifetimes, several threads.
 *
 * The pattern of the classic "allocator test" programs, written from that description:
 * each of --threads threads owns --slots pointer slots, all empty at the start. One
 * step picks a random slot: an empty slot gets a new block, a full one has its block
 * checked and freed. The slots therefore drift to about half full, and a block lives
 * for a random (geometric) number of steps. Sizes: 90 % log-uniform in 8 B - 1 KiB,
 * 9 % in 1 - 16 KiB, 1 % in 16 - 128 KiB (--max caps them), so every size-class tier
 * is in play but small blocks dominate. Every 16th block is written in full (memset),
 * the others get only their tags, so the run touches memory the way a program does
 * without turning into a memset benchmark.
 *
 * Nothing is untimed: the clock starts with the threads, while the slots are still
 * filling, and stops after the last block of the final clean-up was freed.
 * ops = malloc calls + free calls (the clean-up's included) / the measured time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t opt_threads = 2;
static double opt_seconds = 1.0;
static uint64_t opt_iterations = 0;
static size_t opt_slots = 20000;
static size_t opt_max = 128 * 1024;
static uint64_t opt_seed = 77;

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} slot_t;

typedef struct {
  int id;
  pthread_t th;
  uint64_t ops, live_max;
} worker_t;

static _Atomic int g_stop;
static pthread_barrier_t g_bar;

static size_t draw_size(bc_rng *r) {
  uint64_t u = bc_rng_below(r, 100);
  size_t lo = 8, hi = 1024;
  if (u >= 99) lo = 16384, hi = 131072;
  else if (u >= 90) lo = 1024, hi = 16384;
  if (hi > opt_max) hi = opt_max;
  if (lo > hi) lo = hi;
  return bc_rng_logrange(r, lo, hi);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  const size_t n = opt_slots;
  slot_t *s = calloc(n, sizeof *s);
  if (!s) bc_fail("alloc_test: calloc slots");
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, (uint64_t)w->id);
  uint64_t key = (uint64_t)w->id << 48, ops = 0, live = 0, live_max = 0;
  pthread_barrier_wait(&g_bar);
  for (uint64_t step = 0;; step++) {
    if ((step & 255) == 0 &&
        (opt_iterations ? step >= opt_iterations : atomic_load_explicit(&g_stop, memory_order_relaxed)))
      break;
    slot_t *x = &s[bc_rng_below(&rng, n)];
    if (x->p) {
      bc_check(x->p, x->size, x->key, "alloc_test free");
      free(x->p);
      x->p = NULL;
      live--;
    } else {
      size_t sz = draw_size(&rng);
      x->p = bc_got(malloc(sz), sz, "alloc_test malloc");
      x->size = sz;
      x->key = ++key;
      if ((key & 15) == 0) memset(x->p, (int)(key & 0xff), sz);
      bc_fill(x->p, sz, x->key);
      if (++live > live_max) live_max = live;
    }
    ops++;
  }
  for (size_t i = 0; i < n; i++)
    if (s[i].p) {
      bc_check(s[i].p, s[i].size, s[i].key, "alloc_test final free");
      free(s[i].p);
      ops++;
    }
  free(s);
  w->ops = ops;
  w->live_max = live_max;
  return NULL;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "threads"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.001, 86400, "run time"},
      {"iterations", BC_OPT_U64, &opt_iterations, 0, 1e15, "if > 0: steps per thread instead of --seconds"},
      {"slots", BC_OPT_SIZE, &opt_slots, 1, 1e8, "pointer slots per thread (about half end up live)"},
      {"max", BC_OPT_SIZE, &opt_max, 8, 1ull << 30, "largest block size"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
  };
  bc_parse_args(argc, argv, "alloc_test",
                "Random sizes (mostly small) with random lifetimes in per-thread slot arrays, "
                "timed from empty to empty.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  size_t nt = (size_t)opt_threads;
  worker_t *w = calloc(nt, sizeof *w);
  if (!w) bc_fail("alloc_test: calloc workers");
  pthread_barrier_init(&g_bar, NULL, (unsigned)(nt + 1));
  double t0 = bc_now();
  for (size_t i = 0; i < nt; i++) {
    w[i].id = (int)i;
    if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) bc_fail("alloc_test: pthread_create");
  }
  pthread_barrier_wait(&g_bar);
  if (!opt_iterations) {
    bc_sleep(opt_seconds);
    atomic_store(&g_stop, 1);
  }
  uint64_t ops = 0, live_max = 0;
  for (size_t i = 0; i < nt; i++) {
    pthread_join(w[i].th, NULL);
    ops += w[i].ops;
    live_max += w[i].live_max;
  }
  double secs = bc_now() - t0;
  free(w);
  pthread_barrier_destroy(&g_bar);
  printf("RESULT bench=alloc_test ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%llu threads=%zu "
         "slots=%zu max=%zu live_blocks_max=%llu\n",
         (double)ops / secs, bc_status_kb("VmHWM"), secs, (unsigned long long)ops, nt, opt_slots, opt_max,
         (unsigned long long)live_max);
  return 0;
}
