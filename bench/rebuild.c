/* rebuild.c — a large structure freed at once and built again right after, round after
 * round: a compiler dropping one unit's trees before parsing the next, a server
 * rebuilding a cache, a batch job reloading its tables.
 *
 * Each round allocates blocks of 16 B - 4 KiB (log-uniform) until they add up to --ws
 * bytes, writes every byte of each (a tag, checked before the free), then frees them
 * all in allocation order. What it measures is whether the allocator keeps the memory
 * the program just gave back long enough to hand it out again, or returns it to the OS
 * at once and faults every page in again on the next round (on these VMs a fault costs
 * 10-15 us, so 256 MiB is about a second of faults).
 *
 * Whole-process benchmark: the work is fixed (--rounds x --ws); compare.sh reports
 * ops / the process's wall time, first-touch faults of the first round included.
 * ops = malloc calls + free calls.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t opt_ws = (size_t)256 << 20;
static uint64_t opt_rounds = 5;
static size_t opt_min = 16;
static size_t opt_max = 4096;
static uint64_t opt_seed = 5;

typedef struct {
  void *p;
  size_t size;
  uint64_t key;
} blk_t;

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"ws", BC_OPT_SIZE, &opt_ws, 1 << 20, 1e12, "bytes allocated in each round (K/M/G suffixes)"},
      {"rounds", BC_OPT_U64, &opt_rounds, 1, 1e9, "rounds of build and free (the fixed work)"},
      {"min", BC_OPT_SIZE, &opt_min, 8, 1 << 30, "smallest block"},
      {"max", BC_OPT_SIZE, &opt_max, 8, 1 << 30, "largest block"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
  };
  bc_parse_args(argc, argv, "rebuild",
                "A structure of small blocks freed at once and built again, round after round.",
                opts, (int)(sizeof opts / sizeof opts[0]));
  if (opt_min > opt_max) bc_usage_error("--min (%zu) is larger than --max (%zu)", opt_min, opt_max);
  size_t cap = opt_ws / opt_min + 1;
  blk_t *v = bc_got(malloc(cap * sizeof *v), cap * sizeof *v, "rebuild index");
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, 0);
  uint64_t ops = 0, key = 0, blocks = 0;
  double t0 = bc_now(), slowest = 0;
  for (uint64_t r = 0; r < opt_rounds; r++) {
    double rs = bc_now();
    size_t n = 0, total = 0;
    while (total < opt_ws && n < cap) {
      size_t sz = bc_rng_logrange(&rng, opt_min, opt_max);
      void *p = bc_got(malloc(sz), sz, "rebuild malloc");
      memset(p, (int)(key & 0xff), sz);              /* every byte, as a structure's data */
      bc_fill(p, sz, ++key);
      v[n++] = (blk_t){p, sz, key};
      total += sz;
    }
    for (size_t i = 0; i < n; i++) {
      bc_check(v[i].p, v[i].size, v[i].key, "rebuild free");
      free(v[i].p);
    }
    ops += 2 * n;
    blocks += n;
    double rt = bc_now() - rs;
    if (rt > slowest) slowest = rt;
  }
  double secs = bc_now() - t0;
  free(v);
  printf("RESULT bench=rebuild ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%llu rounds=%llu ws=%zu "
         "blocks=%llu slowest_round_s=%.3f\n",
         (double)ops / secs, bc_status_kb("VmHWM"), secs, (unsigned long long)ops, (unsigned long long)opt_rounds,
         opt_ws, (unsigned long long)blocks, slowest);
  return 0;
}
