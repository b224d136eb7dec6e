/* test_knobs.c — the knob snapshot (include/hakmem_ace.h): versioned copy-out, values
 * derived from the HAKMEM_* options, and the alloc layer obeying them (a thread's TLS
 * list never holds more blocks than its class's tls_cap). */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"

#include <errno.h>

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
  for (unsigned c = 0; c < HAKMEM_KNOB_CLASSES; c++) {
    long long want = bytes / (long long)st.cls[c].block_size;
    if (want < 1) want = 1;
    if (want > capmax) want = capmax;
    CHECK_EQ(k.tls_cap[c], want);
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

/* Free many blocks of one class on one thread: the frees beyond tls_cap must go back to
 * the slabs (flushes), so the flush count grows by at least (n - cap) / cap. */
static void test_cap_is_obeyed(void) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  enum { N = 4000 };
  static void* p[N];
  hak_stats a, b;
  a.size = b.size = sizeof a;
  CHECK_EQ(hak_stats_get(&a), 0);
  for (int i = 0; i < N; i++) p[i] = hak_malloc(200);   /* class 208 */
  for (int i = 0; i < N; i++) hak_free(p[i]);
  CHECK_EQ(hak_stats_get(&b), 0);
  unsigned c = 0;
  while (a.cls[c].block_size < 200) c++;
  uint32_t cap = k.tls_cap[c];
  CHECK(cap >= 1);
  uint64_t flushes = b.cls[c].flushes - a.cls[c].flushes;
  CHECK_MSG(flushes >= (uint64_t)(N - cap) / cap, "cap %u, flushes %llu", cap, (unsigned long long)flushes);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_snapshot_values);
  HT_RUN(test_versioned_copy);
  HT_RUN(test_cap_is_obeyed);
  return ht_report();
}
