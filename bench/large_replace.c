/* large_replace.c — zero-filled large blocks replaced at random.
 *
 * Set-up (not timed): --live blocks of uniform random sizes in [--min, --max]
 * (default 20 blocks of 5-25 MiB), each zero-filled and used (one word written per
 * 4 KiB page), so the set is resident.
 * Measured loop, one round: pick a live block at random, check it (tags, a few words
 * that must still be zero), free it, allocate a block of a fresh random size,
 * zero-fill it (--zero calloc: calloc; memset: malloc + memset; mixed, the default:
 * one or the other at random), check that a sample of its words read zero, and use it
 * (write one word per page plus the tags).
 *
 * An allocator that gives every freed block's pages back to the kernel and faults them
 * in again for the next block spends most of each round in page faults; one that keeps
 * freed mappings (or spans) resident and reuses them spends it in the zero fill.
 *
 * ops_per_sec = rounds (one free + one allocation + the fill) per second of the loop;
 * also reported: the MiB zeroed per second, peak RSS, final RSS and the live bytes, and
 * ops = the KiB of blocks allocated and zero-filled in all (set-up + rounds), which
 * compare.sh divides by the wall time of the whole process (--rounds: fixed work),
 * because most of the cost of this pattern is page faults, set-up's included (KiB, not
 * blocks, so that a run of a few dozen blocks still gives a ratio to two digits).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double opt_seconds = 2.0;
static uint64_t opt_rounds = 0;
static uint64_t opt_seed = 7;
static uint64_t opt_live = 20;
static size_t opt_min = (size_t)5 << 20;
static size_t opt_max = (size_t)25 << 20;
static const char *opt_zero = "mixed";

enum { Z_CALLOC, Z_MEMSET, Z_MIXED };
enum { PAGE = 4096, ZERO_PROBES = 16 };

typedef struct {
  unsigned char *p;
  size_t size;
  uint64_t key;
} blk_t;

static int g_zero;
static uint64_t g_key, g_sink;

/* A sample of words inside the block (away from the tags) must read zero: the fill
 * was calloc's or memset's and the use below writes only one word per page at an
 * offset the probes avoid (the probes look at the second half of each page). */
static void check_zero(bc_rng *r, const unsigned char *p, size_t size, const char *where) {
  for (int i = 0; i < ZERO_PROBES; i++) {
    size_t page = (size_t)bc_rng_below(r, size / PAGE - 1);
    size_t off = page * PAGE + PAGE / 2 + 8 * (size_t)bc_rng_below(r, PAGE / 16);
    uint64_t w;
    memcpy(&w, p + off, sizeof w);
    if (w != 0) bc_fail("%s: block %p (%zu bytes) has %#llx at offset %zu, expected zero", where, (const void *)p,
                        size, (unsigned long long)w, off);
  }
}

static void blk_new(bc_rng *r, blk_t *b) {
  size_t sz = bc_rng_range(r, opt_min, opt_max);
  int how = g_zero == Z_MIXED ? (int)bc_rng_below(r, 2) : g_zero;
  if (how == Z_CALLOC) {
    b->p = bc_got(calloc(1, sz), sz, "large_replace calloc");
  } else {
    b->p = bc_got(malloc(sz), sz, "large_replace malloc");
    memset(b->p, 0, sz);
  }
  b->size = sz;
  b->key = ++g_key;
  check_zero(r, b->p, sz, "large_replace new block");
  for (size_t off = 64; off < sz - 16; off += PAGE) b->p[off] = (unsigned char)b->key;
  bc_fill(b->p, sz, b->key);
}

static void blk_free(bc_rng *r, blk_t *b) {
  bc_check(b->p, b->size, b->key, "large_replace free");
  check_zero(r, b->p, b->size, "large_replace before free");
  g_sink += b->p[64 + PAGE * (size_t)bc_rng_below(r, (b->size - 128) / PAGE)];
  free(b->p);
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"seconds", BC_OPT_DBL, &opt_seconds, 0.001, 86400, "measured time"},
      {"rounds", BC_OPT_U64, &opt_rounds, 0, 1e15, "if > 0: this many rounds instead of --seconds"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"live", BC_OPT_U64, &opt_live, 1, 100000, "live blocks"},
      {"min", BC_OPT_SIZE, &opt_min, 65536, 1ull << 36, "smallest block (K/M/G suffixes)"},
      {"max", BC_OPT_SIZE, &opt_max, 65536, 1ull << 36, "largest block"},
      {"zero", BC_OPT_STR, &opt_zero, 0, 0, "calloc | memset (malloc + memset) | mixed (each at random)"},
  };
  bc_parse_args(argc, argv, "large_replace",
                "Zero-filled large blocks freed and replaced by new ones of random sizes.", opts,
                (int)(sizeof opts / sizeof opts[0]));
  if (opt_min > opt_max) bc_usage_error("--min (%zu) is larger than --max (%zu)", opt_min, opt_max);
  if (strcmp(opt_zero, "calloc") == 0) g_zero = Z_CALLOC;
  else if (strcmp(opt_zero, "memset") == 0) g_zero = Z_MEMSET;
  else if (strcmp(opt_zero, "mixed") == 0) g_zero = Z_MIXED;
  else bc_usage_error("--zero must be calloc, memset or mixed, not '%s'", opt_zero);

  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, 0);
  size_t n = (size_t)opt_live;
  blk_t *b = bc_got(malloc(n * sizeof *b), n * sizeof *b, "large_replace array");
  double s0 = bc_now();
  for (size_t i = 0; i < n; i++) blk_new(&rng, &b[i]);
  long setup_rss = bc_status_kb("VmRSS");
  uint64_t setup_bytes = 0;
  for (size_t i = 0; i < n; i++) setup_bytes += b[i].size;
  double t0 = bc_now(), deadline = t0 + opt_seconds, secs;
  uint64_t rounds = 0, zeroed = 0;
  for (;;) {
    if (opt_rounds ? rounds >= opt_rounds : bc_now() >= deadline) break;   /* a round takes ms */
    blk_t *v = &b[bc_rng_below(&rng, n)];
    blk_free(&rng, v);
    blk_new(&rng, v);
    zeroed += v->size;
    rounds++;
  }
  secs = bc_now() - t0;
  long peak = bc_status_kb("VmHWM"), final_rss = bc_status_kb("VmRSS");
  uint64_t live = 0;
  for (size_t i = 0; i < n; i++) {
    live += b[i].size;
    blk_free(&rng, &b[i]);
  }
  free(b);
  printf("RESULT bench=large_replace ops_per_sec=%.0f peak_rss_kb=%ld final_rss_kb=%ld setup_rss_kb=%ld "
         "live_kb=%llu zeroed_mib_per_sec=%.0f rounds=%llu ops=%llu setup_seconds=%.3f seconds=%.3f zero=%s sink=%llu\n",
         (double)rounds / secs, peak, final_rss, setup_rss, (unsigned long long)(live / 1024),
         (double)zeroed / secs / 1048576.0, (unsigned long long)rounds, (unsigned long long)((setup_bytes + zeroed) / 1024), t0 - s0, secs, opt_zero,
         (unsigned long long)(g_sink & 0xff));
  return 0;
}
