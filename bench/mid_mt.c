/* mid_mt.c — multi-thread mid-size (1–32 KiB) allocation with cross-thread frees.
 *
 * Each of --threads threads owns --slots slots. One operation: pick a random slot;
 * its block is either freed here (check, free) or, with probability --remote-pct,
 * handed to a random other thread, which frees it; then a new block of random size
 * in [--min, --max] goes into the slot. Handed-over blocks travel through a per-thread
 * lock-free inbox (a Treiber stack whose links live inside the blocks); the owner takes
 * the whole inbox with one atomic exchange every 32 operations and frees what it got.
 *
 * Before a block is sent its tags are checked; the sender then writes the link, size
 * and key into its first 24 bytes and the receiver checks the tail tag before freeing.
 *
 * The loop first runs --warmup seconds untimed.
 * ops = malloc calls + free calls (local and remote) during the measured time.
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

static uint64_t opt_threads = 2;
static double opt_seconds = 2.0;
static uint64_t opt_iterations = 0;
static uint64_t opt_seed = 11;
static size_t opt_min = 1024;
static size_t opt_max = 32768;
static size_t opt_slots = 512;
static double opt_remote = 50.0;
static double opt_warmup = 0.1;

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} blk_t;

/* What a block in transit carries in its first 24 bytes. */
typedef struct msg {
  struct msg *next;
  size_t size;
  uint64_t key;
} msg_t;

typedef struct {
  _Alignas(64) _Atomic(msg_t *) inbox;
  _Alignas(64) int id;
  pthread_t th;
  bc_rng rng;
  uint64_t key;
  blk_t *slots;
  uint64_t mallocs, local_frees, remote_frees, sent; /* totals, warm-up included */
  uint64_t measured_ops, measured_remote;             /* the measured part only */
} worker_t;

static worker_t *g_w;
static size_t g_n;
static _Atomic int g_stop;
static pthread_barrier_t g_bar;

static void drain(worker_t *w) {
  msg_t *m = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
  while (m) {
    msg_t *next = m->next;
    size_t sz = m->size;
    if (sz < opt_min || sz > opt_max || sz < sizeof(msg_t))
      bc_fail("mid_mt: block %p arrived with a corrupted header (size %zu)", (void *)m, sz);
    uint64_t tail, want = ~bc_tag(sz, m->key);
    memcpy(&tail, (char *)m + sz - 8, 8);
    if (tail != want) bc_fail("mid_mt: block %p (size %zu) lost its tail tag in transit", (void *)m, sz);
    free(m);
    w->remote_frees++;
    m = next;
  }
}

static void send_to(worker_t *to, blk_t *b) {
  msg_t *m = b->p;
  m->size = b->size;
  m->key = b->key;
  msg_t *head = atomic_load_explicit(&to->inbox, memory_order_relaxed);
  do {
    m->next = head;
  } while (!atomic_compare_exchange_weak_explicit(&to->inbox, &head, m, memory_order_release,
                                                  memory_order_relaxed));
}

static inline void fresh(worker_t *w, blk_t *b) {
  size_t sz = bc_rng_range(&w->rng, opt_min, opt_max);
  b->p = bc_got(malloc(sz), sz, "mid_mt malloc");
  b->size = sz;
  b->key = ++w->key;
  bc_fill(b->p, sz, b->key);
  w->mallocs++;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  const uint64_t remote_ppm = g_n > 1 ? (uint64_t)(opt_remote * 10000.0 + 0.5) : 0;
  for (size_t i = 0; i < opt_slots; i++) fresh(w, &w->slots[i]);
  /* Untimed warm-up with the same loop (first-touch page faults are not the subject). */
  double warm_end = bc_now() + opt_warmup;
  int warming = 1; /* the barrier below is passed even when --warmup is 0 */
  uint64_t base_ops = 0, base_remote = 0;
  uint64_t it = 0;
  for (;;) {
    if (warming) {
      if (bc_now() >= warm_end) {
        warming = 0;
        base_ops = w->mallocs + w->local_frees + w->remote_frees;
        base_remote = w->remote_frees;
        it = 0;
        pthread_barrier_wait(&g_bar);
      }
    } else if (opt_iterations ? it >= opt_iterations
                              : atomic_load_explicit(&g_stop, memory_order_relaxed)) {
      break;
    }
    for (int k = 0; k < 32; k++, it++) {
      blk_t *b = &w->slots[bc_rng_below(&w->rng, opt_slots)];
      bc_check(b->p, b->size, b->key, "mid_mt free");
      if (bc_rng_below(&w->rng, 1000000) < remote_ppm) {
        size_t to = (size_t)bc_rng_below(&w->rng, g_n - 1);
        if (to >= (size_t)w->id) to++;
        send_to(&g_w[to], b);
        w->sent++;
      } else {
        free(b->p);
        w->local_frees++;
      }
      fresh(w, b);
    }
    drain(w);
  }
  w->measured_ops = w->mallocs + w->local_frees + w->remote_frees - base_ops;
  w->measured_remote = w->remote_frees - base_remote;
  pthread_barrier_wait(&g_bar); /* nobody sends any more */
  drain(w);
  for (size_t i = 0; i < opt_slots; i++) {
    bc_check(w->slots[i].p, w->slots[i].size, w->slots[i].key, "mid_mt final free");
    free(w->slots[i].p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "threads"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.001, 86400, "measured time"},
      {"iterations", BC_OPT_U64, &opt_iterations, 0, 1e15, "if > 0: operations per thread instead of --seconds"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"min", BC_OPT_SIZE, &opt_min, 24, 1ull << 30, "smallest block (at least 24)"},
      {"max", BC_OPT_SIZE, &opt_max, 24, 1ull << 30, "largest block"},
      {"slots", BC_OPT_SIZE, &opt_slots, 1, 1e8, "live blocks per thread"},
      {"warmup", BC_OPT_DBL, &opt_warmup, 0, 3600, "untimed warm-up seconds before measuring"},
      {"remote-pct", BC_OPT_DBL, &opt_remote, 0, 100, "percent of frees done by another thread"},
  };
  bc_parse_args(argc, argv, "mid_mt",
                "Multi-thread 1-32 KiB allocation with cross-thread frees through lock-free inboxes.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  if (opt_min > opt_max) bc_usage_error("--min (%zu) is larger than --max (%zu)", opt_min, opt_max);

  g_n = (size_t)opt_threads;
  g_w = NULL;
  if (posix_memalign((void **)&g_w, 64, g_n * sizeof(worker_t)) != 0) bc_fail("mid_mt: workers");
  memset(g_w, 0, g_n * sizeof(worker_t));
  pthread_barrier_init(&g_bar, NULL, (unsigned)g_n + 1);
  /* Every worker is set up before the first thread starts: a started worker sends to
   * the others at once, and setting up a later one's inbox then wiped what it had been
   * sent (under load, CI saw 30-1600 of worker 0's first blocks "sent but not freed",
   * with every allocator fast enough to send before main went on). */
  for (size_t t = 0; t < g_n; t++) {
    worker_t *w = &g_w[t];
    w->id = (int)t;
    w->key = (uint64_t)t << 48;
    atomic_init(&w->inbox, NULL);
    bc_rng_seed(&w->rng, opt_seed, t);
    w->slots = bc_got(malloc(opt_slots * sizeof(blk_t)), opt_slots * sizeof(blk_t), "slots");
  }
  for (size_t t = 0; t < g_n; t++) {
    if (pthread_create(&g_w[t].th, NULL, worker_main, &g_w[t]) != 0) bc_fail("pthread_create");
  }
  pthread_barrier_wait(&g_bar);
  double t0 = bc_now();
  if (!opt_iterations) {
    bc_sleep(opt_seconds);
    atomic_store(&g_stop, 1);
  }
  pthread_barrier_wait(&g_bar);
  double secs = bc_now() - t0;
  uint64_t ops = 0, sent = 0, rfree = 0, mremote = 0;
  for (size_t t = 0; t < g_n; t++) pthread_join(g_w[t].th, NULL);
  for (size_t t = 0; t < g_n; t++) {
    ops += g_w[t].measured_ops;
    sent += g_w[t].sent;
    rfree += g_w[t].remote_frees;
    mremote += g_w[t].measured_remote;
    free(g_w[t].slots);
  }
  if (sent != rfree) bc_fail("mid_mt: %llu blocks sent but %llu freed by their receivers",
                             (unsigned long long)sent, (unsigned long long)rfree);
  free(g_w);
  pthread_barrier_destroy(&g_bar);
  printf("RESULT bench=mid_mt ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%llu threads=%zu "
         "slots=%zu min=%zu max=%zu remote_frees=%llu\n",
         (double)ops / secs, bc_status_kb("VmHWM"), secs, (unsigned long long)ops, g_n, opt_slots,
         opt_min, opt_max, (unsigned long long)mremote);
  return 0;
}
