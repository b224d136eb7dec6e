/* huge_ws.c — a working set much larger than the last-level cache.
 *
 * Set-up (not timed): each thread fills its share of --ws bytes with blocks of
 * log-uniform sizes in [--min, --max], writing every byte of each block (--init full)
 * so the working set is resident.
 * Measured loop, per thread: pick a random block, check its tags, read and write one
 * cache line at a random offset inside it; with probability --replace-pct free it
 * and allocate a new block of a fresh random size (written in full). Placement matters
 * here: an allocator that packs the set densely touches fewer pages and TLB entries,
 * and one that reuses freed memory poorly grows RSS.
 *
 * ops = accesses (each: check + touch, sometimes a free + malloc); also reported:
 * replacements per second, peak RSS, final RSS and the live bytes.
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
static double opt_seconds = 2.0;
static uint64_t opt_iterations = 0;
static uint64_t opt_seed = 99;
static size_t opt_ws = (size_t)256 << 20;
static size_t opt_min = 16;
static size_t opt_max = 32768;
static double opt_replace = 10.0;
static const char *opt_init = "full";

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
  blk_t *b;
  size_t n;
  uint64_t accesses, replaces, sink;
  uint64_t live_bytes;
} worker_t;

static int g_full_init;
static _Atomic int g_stop;
static pthread_barrier_t g_bar;

static inline void blk_new(worker_t *w, blk_t *b, size_t sz) {
  b->p = bc_got(malloc(sz), sz, "huge_ws malloc");
  b->size = sz;
  b->key = ++w->key;
  if (g_full_init) memset(b->p, (int)(b->key & 0xff), sz);
  bc_fill(b->p, sz, b->key);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  size_t share = opt_ws / (size_t)opt_threads, cap = 1024, total = 0;
  w->b = bc_got(malloc(cap * sizeof(blk_t)), cap * sizeof(blk_t), "huge_ws array");
  while (total < share) {
    if (w->n == cap) {
      cap *= 2;
      w->b = bc_got(realloc(w->b, cap * sizeof(blk_t)), cap * sizeof(blk_t), "huge_ws array");
    }
    size_t sz = bc_rng_logrange(&w->rng, opt_min, opt_max);
    blk_new(w, &w->b[w->n++], sz);
    total += sz;
  }
  const uint64_t repl_ppm = (uint64_t)(opt_replace * 10000.0 + 0.5);
  pthread_barrier_wait(&g_bar);
  for (;;) {
    if (opt_iterations ? w->accesses >= opt_iterations
                       : atomic_load_explicit(&g_stop, memory_order_relaxed))
      break;
    for (int k = 0; k < 64; k++) {
      blk_t *b = &w->b[bc_rng_below(&w->rng, w->n)];
      bc_check(b->p, b->size, b->key, "huge_ws access");
      if (b->size >= 24) { /* one cache line inside, away from the tags */
        size_t off = 8 + (size_t)bc_rng_below(&w->rng, b->size - 16);
        volatile unsigned char *c = (unsigned char *)b->p + off;
        w->sink += *c;
        *c = (unsigned char)(*c + 1);
      }
      w->accesses++;
      if (bc_rng_below(&w->rng, 1000000) < repl_ppm) {
        bc_check(b->p, b->size, b->key, "huge_ws free");
        free(b->p);
        blk_new(w, b, bc_rng_logrange(&w->rng, opt_min, opt_max));
        w->replaces++;
      }
    }
  }
  pthread_barrier_wait(&g_bar);
  for (size_t i = 0; i < w->n; i++) w->live_bytes += w->b[i].size;
  return NULL;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"threads", BC_OPT_U64, &opt_threads, 1, 1024, "threads, each with its own share of the working set"},
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.001, 86400, "measured time"},
      {"iterations", BC_OPT_U64, &opt_iterations, 0, 1e15, "if > 0: accesses per thread instead of --seconds"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"ws", BC_OPT_SIZE, &opt_ws, 4096, 1ull << 40, "total working set in bytes (K/M/G suffixes)"},
      {"min", BC_OPT_SIZE, &opt_min, 1, 1ull << 30, "smallest block"},
      {"max", BC_OPT_SIZE, &opt_max, 1, 1ull << 30, "largest block"},
      {"replace-pct", BC_OPT_DBL, &opt_replace, 0, 100, "percent of accesses that free the block and allocate a new one"},
      {"init", BC_OPT_STR, &opt_init, 0, 0, "full: write every byte of a new block | ends: only the tags"},
  };
  bc_parse_args(argc, argv, "huge_ws",
                "Random access and random replacement over a working set much larger than the LLC.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  if (opt_min > opt_max) bc_usage_error("--min (%zu) is larger than --max (%zu)", opt_min, opt_max);
  if (strcmp(opt_init, "full") == 0) g_full_init = 1;
  else if (strcmp(opt_init, "ends") == 0) g_full_init = 0;
  else bc_usage_error("--init must be full or ends, not '%s'", opt_init);
  if (opt_ws / opt_threads < opt_max) bc_usage_error("--ws per thread is smaller than --max");

  size_t nt = (size_t)opt_threads;
  worker_t *ws = calloc(nt, sizeof *ws);
  if (!ws) bc_fail("huge_ws: calloc");
  pthread_barrier_init(&g_bar, NULL, (unsigned)nt + 1);
  double s0 = bc_now();
  for (size_t t = 0; t < nt; t++) {
    ws[t].id = (int)t;
    ws[t].key = (uint64_t)t << 48;
    bc_rng_seed(&ws[t].rng, opt_seed, t);
    if (pthread_create(&ws[t].th, NULL, worker_main, &ws[t]) != 0) bc_fail("pthread_create");
  }
  pthread_barrier_wait(&g_bar);
  double t0 = bc_now();
  long setup_rss = bc_status_kb("VmRSS");
  if (!opt_iterations) {
    bc_sleep(opt_seconds);
    atomic_store(&g_stop, 1);
  }
  pthread_barrier_wait(&g_bar);
  double secs = bc_now() - t0;
  for (size_t t = 0; t < nt; t++) pthread_join(ws[t].th, NULL);
  long peak = bc_status_kb("VmHWM"), final_rss = bc_status_kb("VmRSS");
  uint64_t acc = 0, rep = 0, live = 0, nblocks = 0, sink = 0;
  for (size_t t = 0; t < nt; t++) {
    worker_t *w = &ws[t];
    acc += w->accesses;
    rep += w->replaces;
    live += w->live_bytes;
    nblocks += w->n;
    sink += w->sink;
    for (size_t i = 0; i < w->n; i++) {
      bc_check(w->b[i].p, w->b[i].size, w->b[i].key, "huge_ws final free");
      free(w->b[i].p);
    }
    free(w->b);
  }
  free(ws);
  pthread_barrier_destroy(&g_bar);
  printf("RESULT bench=huge_ws ops_per_sec=%.0f peak_rss_kb=%ld final_rss_kb=%ld setup_rss_kb=%ld "
         "live_kb=%llu replaces_per_sec=%.0f blocks=%llu setup_seconds=%.3f seconds=%.3f threads=%zu "
         "sink=%llu\n",
         (double)acc / secs, peak, final_rss, setup_rss, (unsigned long long)(live / 1024),
         (double)rep / secs, (unsigned long long)nblocks, t0 - s0, secs, nt,
         (unsigned long long)(sink & 0xff));
  return 0;
}
