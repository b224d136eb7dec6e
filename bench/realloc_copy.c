/* realloc_copy.c — the cost of a realloc that must copy, by size: to find where
 * non-temporal stores start to beat memcpy (hakmem's knob realloc_nt_threshold).
 *
 * For each size n from --min to --max (doubling), --blocks blocks of n bytes are
 * reallocated round-robin to the same size, which moves each one under
 * HAKMEM_REALLOC_INPLACE=0. Two numbers per size, each the median of --reps timed
 * rounds: ns per realloc, and ns per realloc plus one read pass over the moved block
 * (the program using what it reallocated: streaming stores leave the copy out of the
 * cache). Run it twice, e.g.
 *   HAKMEM_REALLOC_INPLACE=0 HAKMEM_REALLOC_NT_THRESHOLD=0   LD_PRELOAD=libhakmem.so realloc_copy
 *   HAKMEM_REALLOC_INPLACE=0 HAKMEM_REALLOC_NT_THRESHOLD=1T  LD_PRELOAD=libhakmem.so realloc_copy
 * and compare the columns (docs/BENCHMARKS.md has this machine's numbers). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t opt_min = 4096, opt_max = 32u << 20, opt_blocks = 4;
static uint64_t opt_reps = 9;
static double opt_bytes = 256e6;   /* bytes moved per timed round */

static int cmp_dbl(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static volatile uint64_t sink;

int main(int argc, char** argv) {
  const bc_opt opts[] = {
      {"min", BC_OPT_SIZE, &opt_min, 64, 1ull << 34, "smallest block size"},
      {"max", BC_OPT_SIZE, &opt_max, 64, 1ull << 34, "largest block size"},
      {"blocks", BC_OPT_SIZE, &opt_blocks, 1, 1024, "blocks reallocated round-robin"},
      {"reps", BC_OPT_U64, &opt_reps, 1, 1000, "timed rounds per size (the median is reported)"},
      {"bytes", BC_OPT_DBL, &opt_bytes, 1e3, 1e12, "bytes copied per round"},
  };
  bc_parse_args(argc, argv, "realloc_copy", "ns per moving realloc, by block size (run with HAKMEM_REALLOC_INPLACE=0).",
                opts, (int)(sizeof opts / sizeof opts[0]));
  void** b = bc_got(calloc(opt_blocks, sizeof *b), opt_blocks * sizeof *b, "realloc_copy blocks");
  double* t = bc_got(calloc(opt_reps, sizeof *t), opt_reps * sizeof *t, "realloc_copy times");
  double* u = bc_got(calloc(opt_reps, sizeof *u), opt_reps * sizeof *u, "realloc_copy times");
  for (size_t n = opt_min; n <= opt_max; n *= 2) {
    for (size_t i = 0; i < opt_blocks; i++) {
      b[i] = bc_got(malloc(n), n, "realloc_copy malloc");
      memset(b[i], (int)i + 1, n);
    }
    uint64_t calls = (uint64_t)(opt_bytes / (double)n);
    if (calls < 4 * opt_blocks) calls = 4 * opt_blocks;
    for (int read = 0; read < 2; read++) {
      for (uint64_t r = 0; r < opt_reps + 1; r++) {   /* round 0 warms up */
        uint64_t acc = 0, t0 = bc_now_ns();
        for (uint64_t k = 0; k < calls; k++) {
          size_t i = k % opt_blocks;
          b[i] = bc_got(realloc(b[i], n), n, "realloc_copy realloc");
          if (read) {
            const uint64_t* w = b[i];
            for (size_t j = 0; j < n / 8; j += 8) acc += w[j];   /* one word per line */
          }
        }
        uint64_t t1 = bc_now_ns();
        sink += acc;
        if (r) (read ? u : t)[r - 1] = (double)(t1 - t0) / (double)calls;
      }
    }
    qsort(t, opt_reps, sizeof *t, cmp_dbl);
    qsort(u, opt_reps, sizeof *u, cmp_dbl);
    double m = t[opt_reps / 2], mu = u[opt_reps / 2];
    printf("RESULT bench=realloc_copy size=%zu ns_per_realloc=%.0f ns_per_realloc_read=%.0f GBps=%.2f\n", n, m, mu,
           (double)n / m);
    fflush(stdout);
    for (size_t i = 0; i < opt_blocks; i++) {
      if (((unsigned char*)b[i])[n - 1] != (unsigned char)(i + 1)) bc_fail("realloc_copy: contents lost at %zu", n);
      free(b[i]);
    }
  }
  free(b);
  free(t);
  free(u);
  return 0;
}
