/* test_knobs.c — the knob snapshot (include/hakmem_ace.h): versioned copy-out, values
 * derived from the HAKMEM_* options, and the alloc layer obeying them (a thread's TLS
 * list never holds more blocks than its class's tls_cap). */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <stdlib.h>

/* tls_cap of a class = HAKMEM_TLS_CACHE_BYTES / block size, at least 1, at most
 * HAKMEM_TLS_CAP_MAX (README, Configuration). The values below are worked out by hand
 * for the settings the ctest entries use, not recomputed with that formula. */
typedef struct { uint32_t block; unsigned cls; uint32_t cap; } cap_case;
typedef struct {
  long long bytes, capmax;
  cap_case c[10];
} cap_table;

static const cap_table cap_tables[] = {
  /* defaults: 64 KiB per class, at most 256 blocks (ctest unit_knobs) */
  {64 << 10, 256, {{16, 0, 256},          /* 65536/16 = 4096 -> capped at 256 */
                   {128, 7, 256},         /* 512 -> 256 */
                   {208, 12, 256},        /* 315 -> 256 */
                   {288, 16, 227},        /* 65536/288 = 227.6 */
                   {1024, 31, 64},
                   {8192, 55, 8},
                   {32768, 71, 2},
                   {36864, 72, 1},        /* 1.8 */
                   {131072, 87, 1},       /* 0.5 -> at least 1 */
                   {1048576, 111, 1}}},
  /* HAKMEM_TLS_CACHE_BYTES=8K HAKMEM_TLS_CAP_MAX=100 (ctest unit_knobs_small) */
  {8 << 10, 100, {{16, 0, 100},           /* 512 -> 100 */
                  {128, 7, 64},
                  {208, 12, 39},          /* 8192/208 = 39.4 */
                  {288, 16, 28},          /* 28.4 */
                  {1024, 31, 8},
                  {8192, 55, 1},
                  {32768, 71, 1},         /* 0.25 -> 1 */
                  {36864, 72, 1},
                  {131072, 87, 1},
                  {1048576, 111, 1}}},
  /* HAKMEM_TLS_CACHE_BYTES=1M HAKMEM_TLS_CAP_MAX=4096 (ctest unit_knobs_large) */
  {1 << 20, 4096, {{16, 0, 4096},         /* 65536 -> 4096 */
                   {128, 7, 4096},        /* 8192 -> 4096 */
                   {208, 12, 4096},       /* 5041 -> 4096 */
                   {288, 16, 3640},       /* 1048576/288 = 3640.9 */
                   {1024, 31, 1024},
                   {8192, 55, 128},
                   {32768, 71, 32},
                   {36864, 72, 28},       /* 28.4 */
                   {131072, 87, 8},
                   {1048576, 111, 1}}},
};

static void test_snapshot_values(void) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  CHECK_EQ(k.size, sizeof k);
  CHECK_EQ(k.version, HAKMEM_KNOBS_VERSION);
  CHECK(k.generation >= 1);
  long long bytes = hak_option_value("HAKMEM_TLS_CACHE_BYTES");
  long long capmax = hak_option_value("HAKMEM_TLS_CAP_MAX");
  hak_stats st;
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  const cap_table* t = NULL;
  for (size_t i = 0; i < sizeof cap_tables / sizeof cap_tables[0]; i++)
    if (cap_tables[i].bytes == bytes && cap_tables[i].capmax == capmax) t = &cap_tables[i];
  CHECK_MSG(t != NULL, "no expected tls_cap values for HAKMEM_TLS_CACHE_BYTES=%lld HAKMEM_TLS_CAP_MAX=%lld "
            "(add them to cap_tables)", bytes, capmax);
  if (t) {
    for (size_t i = 0; i < sizeof t->c / sizeof t->c[0]; i++) {
      const cap_case* c = &t->c[i];
      CHECK_MSG(st.cls[c->cls].block_size == c->block, "class %u has block size %llu, expected %u",
                c->cls, (unsigned long long)st.cls[c->cls].block_size, c->block);
      CHECK_MSG(k.tls_cap[c->cls] == c->cap, "bytes %lld, cap max %lld: class %u (%u B) tls_cap %u, expected %u",
                bytes, capmax, c->cls, c->block, k.tls_cap[c->cls], c->cap);
    }
  }
  /* every class: never 0, never above the cap, never more bytes than asked for unless 1 */
  for (unsigned c = 0; c < HAKMEM_KNOB_CLASSES; c++) {
    CHECK(k.tls_cap[c] >= 1 && k.tls_cap[c] <= capmax);
    CHECK(k.tls_cap[c] == 1 || (long long)k.tls_cap[c] * (long long)st.cls[c].block_size <= bytes);
    if (c > 0) CHECK(k.tls_cap[c] <= k.tls_cap[c - 1]);
  }
  CHECK_EQ(k.bundle_width, hak_option_value("HAKMEM_REFILL_BATCH"));
  CHECK_EQ(k.drain_threshold, hak_option_value("HAKMEM_DRAIN_THRESHOLD"));
  CHECK_EQ(k.purge_delay_ms, hak_option_value("HAKMEM_PURGE_DELAY"));
}

static void test_versioned_copy(void) {
  errno = 0;
  CHECK_EQ(hak_knobs_get(NULL), -1);
  CHECK_EQ(errno, EINVAL);
  union { hak_knobs k; unsigned char raw[sizeof(hak_knobs)]; } u;
  memset(&u, 0x5A, sizeof u);
  u.k.size = 16;                                   /* size, version, generation */
  CHECK_EQ(hak_knobs_get(&u.k), 0);
  CHECK_EQ(u.k.size, 16);
  CHECK(u.k.generation >= 1);
  CHECK_EQ(u.raw[16], 0x5A);
}

/* Free many blocks of one class on one thread (n well above tls_cap): the frees beyond
 * tls_cap must go back to the slabs (flushes), so the flush count grows by at least
 * (n - cap) / cap. */
static void test_cap_is_obeyed(void) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  hak_stats a, b;
  a.size = b.size = sizeof a;
  CHECK_EQ(hak_stats_get(&a), 0);
  unsigned c = 0;
  while (a.cls[c].block_size < 200) c++;                  /* class 208 */
  uint32_t cap = k.tls_cap[c];
  CHECK(cap >= 1);
  size_t n = (size_t)cap * 3 + 1000;                      /* well past the cap */
  void** p = (void**)calloc(n, sizeof *p);                /* bookkeeping: the system malloc */
  for (size_t i = 0; i < n; i++) p[i] = hak_malloc(200);
  for (size_t i = 0; i < n; i++) hak_free(p[i]);
  CHECK_EQ(hak_stats_get(&b), 0);
  free(p);
  uint64_t flushes = b.cls[c].flushes - a.cls[c].flushes;
  CHECK_MSG(flushes >= (uint64_t)(n - cap) / cap, "cap %u, %zu frees, flushes %llu", cap, n,
            (unsigned long long)flushes);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_snapshot_values);
  HT_RUN(test_versioned_copy);
  HT_RUN(test_cap_is_obeyed);
  return ht_report();
}
