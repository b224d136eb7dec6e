/* idle_return.c — does the allocator give memory back while the program idles?
 *
 * Two threads each build half of a scattered working set (random sizes 16 B..32 KiB,
 * every byte written), then each frees 90 % of the OTHER thread's blocks (cross-thread
 * frees), and then every thread idles: no malloc, no free. The main thread samples the
 * RSS every second. glibc, mimalloc, jemalloc and tcmalloc keep it all (measured); a
 * background scavenger can return it.
 *
 * --pool T: a thread pool gone quiet instead. T threads each build 1/T of the working
 * set of smaller blocks (16 B..2 KiB, the sizes thread caches hold) and free 90 % of
 * their own (local frees: each thread's caches end up full), then idle. --keep-every K
 * keeps one block in K (default 10; 0: none).
 *
 *   idle_return [--mib N] [--seconds S] [--keep-every K] [--pool T]
 * Prints "rss_t=<s> rss_mib=<m>" lines and a last line
 *   RESULT ops_per_sec=<blocks built per s> rss_after_free_mib=.. rss_end_mib=..
 *          rss_end_pct=<end / after-free * 100> seconds_to_40pct=<s or -1>
 * Contents of the kept blocks are checked at the end (exit 1 on damage). */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct half {
  unsigned char** blk;
  size_t* len;
  size_t n;
  unsigned seed;
} half;

static half* halves;
static int nthreads = 2;
static bool pool;            /* --pool: each thread frees its own blocks */
static size_t target_bytes;
static unsigned keep_every = 10;
static pthread_barrier_t built, freed;

static void* worker(void* arg) {
  int me = (int)(intptr_t)arg;
  half* h = &halves[me];
  size_t cap = 1 << 16, total = 0;
  h->blk = malloc(cap * sizeof *h->blk);
  h->len = malloc(cap * sizeof *h->len);
  unsigned r = h->seed;
  size_t max_len = pool ? 2048 : 32768;
  while (total < target_bytes / (size_t)nthreads) {
    if (h->n == cap) {
      cap *= 2;
      h->blk = realloc(h->blk, cap * sizeof *h->blk);
      h->len = realloc(h->len, cap * sizeof *h->len);
    }
    r = r * 1103515245u + 12345u;
    size_t len = 16 + (r >> 8) % (max_len - 16);
    unsigned char* p = malloc(len);
    if (!p) { fprintf(stderr, "idle_return: out of memory\n"); exit(2); }
    memset(p, (int)(h->n & 0xff), len);
    h->blk[h->n] = p;
    h->len[h->n] = len;
    h->n++;
    total += len;
  }
  pthread_barrier_wait(&built);
  half* other = pool ? h : &halves[1 - me];      /* free the other thread's blocks */
  for (size_t i = 0; i < other->n; i++) {
    if (keep_every && i % keep_every == 0) continue;
    free(other->blk[i]);
    other->blk[i] = NULL;
  }
  pthread_barrier_wait(&freed);
  for (;;) pause();                              /* idle for good */
  return NULL;
}

static double rss_mib(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) { if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0; fclose(f); }
  return (double)res * 4096 / 1048576.0;
}

int main(int argc, char** argv) {
  double mib = 400, seconds = 70;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) mib = atof(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--keep-every") == 0 && i + 1 < argc) keep_every = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc) { pool = true; nthreads = atoi(argv[++i]); }
    else { fprintf(stderr, "usage: idle_return [--mib N] [--seconds S] [--keep-every K] [--pool T]\n"); return 2; }
  }
  if (nthreads < 1 || nthreads > 1024) { fprintf(stderr, "idle_return: --pool takes 1..1024 threads\n"); return 2; }
  target_bytes = (size_t)(mib * 1048576.0);
  halves = calloc((size_t)nthreads, sizeof *halves);
  pthread_t* t = calloc((size_t)nthreads, sizeof *t);
  if (!halves || !t) return 2;
  for (int i = 0; i < nthreads; i++) halves[i].seed = 12345u + 55555u * (unsigned)i;
  pthread_barrier_init(&built, NULL, (unsigned)nthreads + 1);
  pthread_barrier_init(&freed, NULL, (unsigned)nthreads + 1);
  double t0 = bc_now();
  for (intptr_t i = 0; i < nthreads; i++) pthread_create(&t[i], NULL, worker, (void*)i);
  pthread_barrier_wait(&built);
  double built_s = bc_now() - t0;
  pthread_barrier_wait(&freed);
  double after = rss_mib(), end = after, to40 = -1;
  printf("rss_t=0 rss_mib=%.1f\n", after);
  double start = bc_now();
  for (int s = 1; s <= (int)seconds; s++) {
    double next = start + s;
    while (bc_now() < next) usleep(20000);
    end = rss_mib();
    printf("rss_t=%d rss_mib=%.1f\n", s, end);
    fflush(stdout);
    if (to40 < 0 && end <= after * 0.40) to40 = s;
  }
  int bad = 0;
  size_t blocks = 0;
  for (int h = 0; h < nthreads; h++) {
    blocks += halves[h].n;
    for (size_t i = 0; keep_every && i < halves[h].n; i += keep_every) {
      const unsigned char* p = halves[h].blk[i];
      for (size_t j = 0; j < halves[h].len[i]; j += 251) if (p[j] != (unsigned char)(i & 0xff)) { bad++; break; }
    }
  }
  printf("RESULT ops_per_sec=%.0f rss_after_free_mib=%.1f rss_end_mib=%.1f rss_end_pct=%.1f seconds_to_40pct=%.0f damaged=%d\n",
         (double)blocks / built_s, after, end, after > 0 ? end / after * 100 : 0, to40, bad);
  fflush(stdout);
  _exit(bad ? 1 : 0);
}
