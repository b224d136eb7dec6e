/* mstress.c — threads in rounds that allocate, share blocks through a common table and
 * free each other's blocks.
 *
 * The pattern of the allocator stress tests (mimalloc's test-stress and its kin),
 * written from that description. Each round the main thread starts --threads fresh
 * threads and waits for them; a thread runs --steps random steps:
 *   50 %  allocate a block and keep it (sizes: 90 % log-uniform 16-256 B, 9 % up to
 *         8 KiB, 1 % up to 256 KiB);
 *   30 %  free one of the blocks it holds, chosen at random (it may have been
 *         allocated by another thread, of this round or of an earlier one);
 *   20 %  swap one of its blocks into a random slot of the shared --transfer table
 *         (an atomic exchange) and keep whatever was there.
 * At the end of its round a thread frees everything it holds and exits; the table
 * keeps its blocks into the next round, whose new threads pick them up, so memory
 * allocated by threads that are gone is freed by threads that did not exist yet. The
 * main thread frees every fourth table slot between rounds and the rest at the end.
 *
 * Whole-process benchmark: the work is fixed (--rounds x --threads x --steps), thread
 * start and exit are part of it, and compare.sh reports ops / the process's wall time.
 * The program's own ops_per_sec covers the rounds and the final clean-up.
 *
 * Blocks carry their size and a key in their first 16 bytes and a tag derived from both
 * in their last 8; both are checked before every free and every hand-over.
 * ops = malloc calls + free calls.
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
static uint64_t opt_rounds = 30;
static uint64_t opt_steps = 50000;
static size_t opt_transfer = 1000;
static size_t opt_max = 256 * 1024;
static uint64_t opt_seed = 2;

enum { MIN_BLOCK = 24 };

typedef struct {
  uint64_t size; /* bytes requested */
  uint64_t key;  /* unique among live blocks */
} hdr_t;

static _Atomic(hdr_t *) *g_transfer;
static _Atomic uint64_t g_ops;

static hdr_t *blk_new(bc_rng *r, uint64_t key) {
  uint64_t u = bc_rng_below(r, 100);
  size_t hi = u < 90 ? 256 : u < 99 ? 8192 : 262144;
  if (hi > opt_max) hi = opt_max;
  size_t sz = bc_rng_logrange(r, MIN_BLOCK, hi);
  hdr_t *h = bc_got(malloc(sz), sz, "mstress malloc");
  h->size = sz;
  h->key = key;
  uint64_t t = bc_tag(sz, key);
  memcpy((char *)h + sz - 8, &t, 8);
  return h;
}

static void blk_check(const hdr_t *h, const char *where) {
  uint64_t sz = h->size, t;
  if (BC_UNLIKELY(sz < MIN_BLOCK || sz > opt_max)) bc_fail("%s: block %p has a bad size %llu", where, (const void *)h, (unsigned long long)sz);
  memcpy(&t, (const char *)h + sz - 8, 8);
  if (BC_UNLIKELY(t != bc_tag(sz, h->key)))
    bc_fail("%s: block %p (%llu bytes, key %llu): tail tag clobbered", where, (const void *)h,
            (unsigned long long)sz, (unsigned long long)h->key);
}

static void blk_free(hdr_t *h, const char *where) {
  blk_check(h, where);
  h->key = ~h->key; /* a second free of the same block would now fail its check */
  free(h);
}

typedef struct {
  uint64_t index; /* global thread number: round * threads + i */
  pthread_t th;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, w->index);
  size_t cap = 1024, n = 0;
  hdr_t **held = bc_got(malloc(cap * sizeof *held), cap * sizeof *held, "mstress held");
  uint64_t key = w->index << 32, ops = 0;
  for (uint64_t s = 0; s < opt_steps; s++) {
    uint64_t u = bc_rng_below(&rng, 100);
    if (u < 50 || n == 0) {
      if (n == cap) {
        cap *= 2;
        held = bc_got(realloc(held, cap * sizeof *held), cap * sizeof *held, "mstress held grow");
      }
      held[n++] = blk_new(&rng, ++key);
      ops++;
    } else if (u < 80) {
      size_t i = (size_t)bc_rng_below(&rng, n);
      blk_free(held[i], "mstress free");
      held[i] = held[--n];
      ops++;
    } else {
      size_t i = (size_t)bc_rng_below(&rng, n);
      blk_check(held[i], "mstress hand-over");
      hdr_t *old = atomic_exchange_explicit(&g_transfer[bc_rng_below(&rng, opt_transfer)], held[i],
                                            memory_order_acq_rel);
      if (old) {
        blk_check(old, "mstress taken over");
        held[i] = old;
      } else {
        held[i] = held[--n];
      }
    }
  }
  for (size_t i = 0; i < n; i++) blk_free(held[i], "mstress end of round");
  ops += n;
  free(held);
  atomic_fetch_add(&g_ops, ops);
  return NULL;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "threads per round"},
      {"rounds", BC_OPT_U64, &opt_rounds, 1, 1e9, "rounds (fresh threads each round)"},
      {"steps", BC_OPT_U64, &opt_steps, 1, 1e12, "random steps per thread per round"},
      {"transfer", BC_OPT_SIZE, &opt_transfer, 1, 1e8, "slots of the shared table"},
      {"max", BC_OPT_SIZE, &opt_max, 256, 1ull << 30, "largest block size"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
  };
  bc_parse_args(argc, argv, "mstress",
                "Rounds of fresh threads that allocate, swap blocks through a shared table and "
                "free each other's blocks; fixed work, meant to be timed as a whole process.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  g_transfer = calloc(opt_transfer, sizeof *g_transfer);
  worker_t *w = calloc(opt_threads, sizeof *w);
  if (!g_transfer || !w) bc_fail("mstress: calloc");
  uint64_t main_ops = 0;
  double t0 = bc_now();
  for (uint64_t r = 0; r < opt_rounds; r++) {
    for (uint64_t i = 0; i < opt_threads; i++) {
      w[i].index = r * opt_threads + i + 1;
      if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) bc_fail("mstress: pthread_create");
    }
    for (uint64_t i = 0; i < opt_threads; i++) pthread_join(w[i].th, NULL);
    for (size_t k = r % 4; k < opt_transfer; k += 4) {
      hdr_t *h = atomic_exchange(&g_transfer[k], NULL);
      if (h) {
        blk_free(h, "mstress main frees a table slot");
        main_ops++;
      }
    }
  }
  for (size_t k = 0; k < opt_transfer; k++) {
    hdr_t *h = atomic_exchange(&g_transfer[k], NULL);
    if (h) {
      blk_free(h, "mstress final free");
      main_ops++;
    }
  }
  double secs = bc_now() - t0;
  uint64_t ops = atomic_load(&g_ops) + main_ops;
  free(w);
  free(g_transfer);
  printf("RESULT bench=mstress ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%llu threads=%llu "
         "rounds=%llu steps=%llu transfer=%zu threads_created=%llu\n",
         (double)ops / secs, bc_status_kb("VmHWM"), secs, (unsigned long long)ops,
         (unsigned long long)opt_threads, (unsigned long long)opt_rounds, (unsigned long long)opt_steps,
         opt_transfer, (unsigned long long)(opt_rounds * opt_threads));
  return 0;
}
