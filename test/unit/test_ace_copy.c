/* test_ace_copy.c — ACE's choice of realloc_nt_threshold (src/ace/copy.c) on scripted
 * samples of timed realloc copies: no evidence keeps the threshold, streaming that wins
 * the big buckets brings it down to the start of their run, memcpy that wins the
 * biggest bucket pushes it past it, thin or marginal buckets are no evidence, noise
 * below the top run is ignored, and the window sums decay. Plus the allocator side:
 * copies of 1 MiB and more are timed, by method, and some explore the other method. */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "ace/ace.h"
#include "alloc/collect.h"

#include <string.h>

int hak_knobs_publish(const hak_knobs* candidate);   /* runtime layer, internal */

#define MiB (1ull << 20)

/* Bucket b (copies of 2^(20+b) bytes): `n` copies per method at these ns per byte. */
static void put(hak_copy_samples* s, unsigned b, unsigned n, double memcpy_ns_per_b, double nt_ns_per_b) {
  uint64_t bytes = (uint64_t)n << (20 + b);
  s->n[0][b] = s->n[1][b] = n;
  s->bytes[0][b] = s->bytes[1][b] = bytes;
  s->ns[0][b] = (uint64_t)((double)bytes * memcpy_ns_per_b);
  s->ns[1][b] = (uint64_t)((double)bytes * nt_ns_per_b);
}

static void test_no_evidence_keeps_the_threshold(void) {
  hak_copy_samples s;
  memset(&s, 0, sizeof s);
  CHECK_EQ(ace_copy_threshold(&s, 128 * MiB), 128 * MiB);
  CHECK_EQ(ace_copy_threshold(&s, 0), 0);
  put(&s, 3, ACE_COPY_MIN_SAMPLES - 1, 0.10, 0.01);      /* too few copies */
  CHECK_EQ(ace_copy_threshold(&s, 128 * MiB), 128 * MiB);
  s.n[0][3] = ACE_COPY_MIN_SAMPLES;                       /* memcpy enough, streaming not */
  CHECK_EQ(ace_copy_threshold(&s, 128 * MiB), 128 * MiB);
}

/* This machine's shape (docs/BENCHMARKS.md): memcpy wins to 64 MiB, streaming from 128. */
static void test_streaming_wins_the_big_buckets(void) {
  hak_copy_samples s;
  memset(&s, 0, sizeof s);
  for (unsigned b = 0; b <= 6; b++) put(&s, b, 20, 0.070, 0.090);   /* 1..128 MiB: memcpy */
  for (unsigned b = 7; b <= 8; b++) put(&s, b, 20, 0.090, 0.065);   /* 128..512 MiB: streaming */
  CHECK_EQ(ace_copy_threshold(&s, 1ull << 40), 128 * MiB);          /* from "never" down */
  CHECK_EQ(ace_copy_threshold(&s, 1 * MiB), 128 * MiB);             /* from too low up */
  CHECK_EQ(ace_copy_threshold(&s, 128 * MiB), 128 * MiB);           /* stable */
  CHECK_EQ(ace_copy_threshold(&s, 100 * MiB), 128 * MiB);           /* inside a memcpy bucket */
  /* without the 64 MiB bucket, 64..128 MiB has no evidence: a threshold there stays */
  memset(&s.n[0][6], 0, sizeof s.n[0][6]);
  CHECK_EQ(ace_copy_threshold(&s, 100 * MiB), 100 * MiB);
  CHECK_EQ(ace_copy_threshold(&s, 1 * MiB), 64 * MiB);
  /* streaming everywhere measured: down to the lowest bucket, never below a lower one */
  memset(&s, 0, sizeof s);
  for (unsigned b = 2; b <= 5; b++) put(&s, b, 20, 0.2, 0.1);
  CHECK_EQ(ace_copy_threshold(&s, 1ull << 40), 4 * MiB);
  CHECK_EQ(ace_copy_threshold(&s, 1 * MiB), 1 * MiB);               /* below: nothing says no */
}

static void test_memcpy_wins_the_biggest_bucket(void) {
  hak_copy_samples s;
  memset(&s, 0, sizeof s);
  for (unsigned b = 0; b <= 4; b++) put(&s, b, 20, 0.05, 0.08);     /* to 16 MiB: memcpy */
  CHECK_EQ(ace_copy_threshold(&s, 2 * MiB), 32 * MiB);              /* past the 16 MiB bucket */
  CHECK_EQ(ace_copy_threshold(&s, 128 * MiB), 128 * MiB);           /* above it: no evidence */
  /* a streaming win below a memcpy win higher up does not count */
  put(&s, 1, 20, 0.09, 0.05);
  CHECK_EQ(ace_copy_threshold(&s, 1 * MiB), 32 * MiB);
}

/* Streaming must be ACE_COPY_MARGIN faster: 3 % is a tie, and a tie goes to memcpy. */
static void test_margin(void) {
  hak_copy_samples s;
  memset(&s, 0, sizeof s);
  put(&s, 4, 30, 0.100, 0.097);
  CHECK_EQ(ace_copy_threshold(&s, 1 * MiB), 32 * MiB);
  put(&s, 4, 30, 0.100, 0.090);
  CHECK_EQ(ace_copy_threshold(&s, 1ull << 40), 16 * MiB);
}

/* Noise below the top run: the run ends at the first memcpy win under it. */
static void test_top_run(void) {
  hak_copy_samples s;
  memset(&s, 0, sizeof s);
  put(&s, 2, 20, 0.1, 0.05);     /* 4 MiB: streaming (noise) */
  put(&s, 3, 20, 0.05, 0.1);     /* 8 MiB: memcpy */
  put(&s, 5, 20, 0.1, 0.05);     /* 32 MiB: streaming; 16 MiB has no evidence */
  put(&s, 6, 20, 0.1, 0.05);     /* 64 MiB: streaming */
  CHECK_EQ(ace_copy_threshold(&s, 1ull << 40), 32 * MiB);
  CHECK_EQ(ace_copy_threshold(&s, 1 * MiB), 16 * MiB);   /* clamped to just above the 8 MiB bucket */
  CHECK_EQ(ace_copy_threshold(&s, 20 * MiB), 20 * MiB);  /* 16..32 MiB: no evidence, stays */
}

static void test_accumulate_and_decay(void) {
  hak_copy_samples acc, prev, cur;
  memset(&acc, 0, sizeof acc);
  memset(&prev, 0, sizeof prev);
  memset(&cur, 0, sizeof cur);
  put(&prev, 2, 10, 0.1, 0.2);
  put(&cur, 2, 30, 0.1, 0.2);
  ace_copy_accumulate(&acc, &prev, &cur);
  CHECK_EQ(acc.n[0][2], 20);
  CHECK_EQ(acc.bytes[1][2], 20ull << 22);
  CHECK_EQ(acc.ns[1][2], cur.ns[1][2] - prev.ns[1][2]);
  ace_copy_accumulate(&acc, &cur, &cur);             /* an empty window adds nothing */
  CHECK_EQ(acc.n[0][2], 20);
  ace_copy_decay(&acc);
  CHECK_EQ(acc.n[0][2], 10);
  CHECK_EQ(acc.n[1][2], 10);
  CHECK_EQ(acc.bytes[0][2], 10ull << 22);
  ace_copy_decay(&acc);
  ace_copy_decay(&acc);
  CHECK_EQ(acc.n[0][2], 2);                          /* below ACE_COPY_MIN_SAMPLES: no evidence */
  CHECK_EQ(ace_copy_threshold(&acc, 5 * MiB), 5 * MiB);
}

/* The allocator's side: reallocs that copy 2 MiB are timed into bucket 1, most with the
 * method the threshold picks (memcpy at the default), one in HAK_COPY_EXPLORE with the
 * other one. Copy-always mode makes each realloc copy. */
static void test_big_copies_are_timed(void) {
  hak_knobs k, keep;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  keep = k;
  k.realloc_inplace = 0;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  static hak_collect a, b;
  hak_collect_all(&a);
  enum { N = 4 * HAK_COPY_EXPLORE };
  void* p = hak_malloc(2 * MiB);
  memset(p, 7, 2 * MiB);
  for (int i = 0; i < N; i++) p = hak_realloc(p, 2 * MiB);
  CHECK(((unsigned char*)p)[2 * MiB - 1] == 7);
  hak_free(p);
  hak_collect_all(&b);
  uint64_t mem = b.copy.n[0][1] - a.copy.n[0][1], nt = b.copy.n[1][1] - a.copy.n[1][1];
  CHECK_EQ(mem + nt, N);
  CHECK_EQ(nt, N / HAK_COPY_EXPLORE);                /* the explorations */
  CHECK(b.copy.bytes[0][1] - a.copy.bytes[0][1] >= mem * 2 * MiB);
  CHECK(b.copy.ns[0][1] > a.copy.ns[0][1] && b.copy.ns[1][1] > a.copy.ns[1][1]);
  CHECK_EQ(b.realloc[HAK_RE_NT] - a.realloc[HAK_RE_NT], nt);   /* counted as non-temporal copies */
  keep.generation = 0;
  CHECK_EQ(hak_knobs_publish(&keep), 0);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_no_evidence_keeps_the_threshold);
  HT_RUN(test_streaming_wins_the_big_buckets);
  HT_RUN(test_memcpy_wins_the_biggest_bucket);
  HT_RUN(test_margin);
  HT_RUN(test_top_run);
  HT_RUN(test_accumulate_and_decay);
  HT_RUN(test_big_copies_are_timed);
  return ht_report();
}
