/* test_thread_exit.c — memory of threads that have exited (reliability issue, items 5
 * and 8).
 *
 *   - a thread whose first allocation comes in the last round of thread-specific-data
 *     destructors (after hakmem's own key's destructor ran for that round) gets a heap
 *     whose destructor never runs: 1,000 such threads, one after another, must not
 *     leave 1,000 heaps and their segments behind (they are reaped once their thread
 *     is gone), and the blocks they keep stay intact;
 *   - thread A allocates ~150 MB of small blocks and exits, thread B frees them all and
 *     then idles: the frees themselves give the abandoned segments back (no scavenger:
 *     ctest also runs this with HAKMEM_ACE_ENABLED=0), and malloc_trim's work
 *     (hak_trim) returns what the segment cache keeps;
 *   - but a lane of blocks handed from thread to thread (Larson) keeps the segments its
 *     threads empty resident in the cache, as these threads keep setting up segments;
 *   - a thread that exits with little memory parks its heap and the next thread that
 *     starts takes it (no adoption); malloc_trim tears parked heaps down.
 * Links the static library (hak_* names; libc's malloc stays glibc's). */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int hak_knobs_publish(const hak_knobs* candidate);   /* runtime layer, internal */

/* Under ASan and TSan the process's RSS and VmSize include the sanitizer's shadow
 * memory (TSan: four bytes of shadow per byte touched, never given back here), so only
 * hakmem's own numbers and the mappings are checked there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PROCESS_MEMORY_CHECKS 0
#else
#define PROCESS_MEMORY_CHECKS 1
#endif

size_t hak_trim(void);   /* the runtime's malloc_trim (runtime/runtime.h) */

static hak_stats stats(void) {
  hak_stats st;
  st.size = sizeof st;
  hak_stats_get(&st);
  return st;
}

static void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed * 131u + i);
}
static bool intact(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) if (p[i] != (unsigned char)(seed * 131u + i)) return false;
  return true;
}

/* ---- first malloc in the last round of TSD destructors ------------------------------ */
enum { LATE_THREADS = 1000, LATE_ROUNDS = 4 };   /* PTHREAD_DESTRUCTOR_ITERATIONS */
static pthread_key_t late_key;
static unsigned char* late_kept[LATE_THREADS];
static atomic_long late_bad, late_round4;
static int late_index;

static void late_destructor(void* v) {
  uintptr_t round = (uintptr_t)v;
  if (round < LATE_ROUNDS) {               /* ask for another round */
    pthread_setspecific(late_key, (void*)(round + 1));
    return;
  }
  atomic_fetch_add(&late_round4, 1);
  /* This thread's first allocations: several tiers, freed again, and one block kept
   * for the main thread to check and free. */
  static const size_t sizes[] = {16, 100, 1000, 5000, 40000, 300000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    unsigned char* p = hak_malloc(sizes[k]);
    if (!p) { atomic_fetch_add(&late_bad, 1); continue; }
    fill(p, sizes[k], (unsigned)k);
    if (!intact(p, sizes[k], (unsigned)k)) atomic_fetch_add(&late_bad, 1);
    hak_free(p);
  }
  unsigned char* keep = hak_malloc(200);
  if (keep) fill(keep, 200, (unsigned)late_index);
  late_kept[late_index] = keep;
}

static void* late_thread(void* arg) {
  (void)arg;
  pthread_setspecific(late_key, (void*)(uintptr_t)1);   /* no allocation before round 4 */
  return NULL;
}

static void test_first_malloc_in_last_tsd_round_is_torn_down(void) {
#if defined(__SANITIZE_THREAD__)
  /* ThreadSanitizer finishes a thread's state in its own key destructor: in the last
   * round any instrumented access (this test's included) crashes inside TSan. */
  printf("test_first_malloc_in_last_tsd_round_is_torn_down: skipped (ThreadSanitizer build)\n");
  CHECK(1);
  return;
#endif
  hak_free(hak_malloc(1));                 /* hakmem's key exists before ours: lower index */
  CHECK_EQ(pthread_key_create(&late_key, late_destructor), 0);
  hak_stats s0 = stats();
  /* Warm up (segments and caches settle), then measure over the rest. */
  hak_stats a = s0;
  long vm0 = 0;
  for (int i = 0; i < LATE_THREADS; i++) {
    if (i == 50) { a = stats(); vm0 = ht_status_kib("VmSize"); }
    late_index = i;
    pthread_t t;
    if (pthread_create(&t, NULL, late_thread, NULL) != 0) { CHECK(0); break; }
    pthread_join(t, NULL);
  }
  hak_stats b = stats();
  long vm1 = ht_status_kib("VmSize");
  CHECK_EQ(atomic_load(&late_round4), LATE_THREADS);
  CHECK_EQ(atomic_load(&late_bad), 0);
  long live_a = (long)(a.threads_started - a.threads_ended);
  long live_b = (long)(b.threads_started - b.threads_ended);
  CHECK_MSG(b.threads_started - a.threads_started >= LATE_THREADS - 50, "%llu heaps made",
            (unsigned long long)(b.threads_started - a.threads_started));
  /* Reaped: heaps do not pile up (950 would be left otherwise), nor does memory. */
  CHECK_MSG(live_b - live_a < 8, "live heaps %ld after the warm-up, %ld after %d threads", live_a, live_b,
            LATE_THREADS);
  /* The ACE thread starts once the process has lived 1 s: if it started in between, its
   * heap's segments are allowed for, and VmSize is not compared (its stack and, in this
   * binary, glibc's arena for its own mallocs add some 72 MiB). 950 heaps kept would be
   * some 12 GiB. */
  bool ace_started = b.ace && !a.ace;
  /* A heap whose thread has just exited may still be waiting for the next thread to
   * reap it when b is taken (on a loaded machine the last thread's exit is not always
   * seen at once): each heap alive beyond those of the warm-up may hold its first
   * segments, 8 MiB (measured: held +8 MiB with one more live heap, 2 of 72 runs three
   * at a time beside 4 busy loops). */
  long long extra = live_b > live_a ? (long long)(live_b - live_a) * (8 << 20) : 0;
  CHECK_MSG((long long)b.bytes_held - (long long)a.bytes_held < (ace_started ? 16 << 20 : 8 << 20) + extra,
            "held %llu -> %llu", (unsigned long long)a.bytes_held, (unsigned long long)b.bytes_held);
  if (PROCESS_MEMORY_CHECKS && !ace_started) {
    CHECK_MSG(vm1 - vm0 < 8 * 1024 + extra / 1024, "VmSize %ld KiB -> %ld KiB", vm0, vm1);
  }
  long bad = 0;
  for (int i = 0; i < LATE_THREADS; i++) {
    if (!late_kept[i] || !intact(late_kept[i], 200, (unsigned)i)) bad++;
    hak_free(late_kept[i]);
  }
  CHECK_EQ(bad, 0);
  /* The last thread's heap waits for the next thread to look; malloc_trim's round over
   * all memory looks at every heap. (The ACE thread may have started meanwhile.) */
  hak_trim();
  hak_stats c = stats();
  long live_0 = (long)(s0.threads_started - s0.threads_ended);
  long live_c = (long)(c.threads_started - c.threads_ended);
  CHECK_MSG(live_c <= live_0 + (c.ace ? 1 : 0), "live heaps %ld before the threads, %ld after malloc_trim", live_0, live_c);
  fprintf(stderr, "    live heaps %ld before the threads, %ld after malloc_trim\n", live_0, live_c);
  pthread_key_delete(late_key);
  fprintf(stderr, "    live heaps %ld -> %ld, held %llu -> %llu KiB, VmSize %ld -> %ld KiB\n", live_a, live_b,
          (unsigned long long)a.bytes_held >> 10, (unsigned long long)b.bytes_held >> 10, vm0, vm1);
}

/* ---- an exited thread's blocks freed by a thread that then idles --------------------- */
enum { HANDOFF_BYTES = 150 << 20 };
static unsigned char** handoff;
static size_t handoff_n;
static const size_t handoff_sizes[] = {48, 128, 256, 1000, 3000};
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_phase;             /* 1: B freed everything; 2: B may exit */
static long handoff_bad;

static void* producer(void* arg) {
  (void)arg;
  size_t bytes = 0, n = 0;
  while (bytes < HANDOFF_BYTES) {
    size_t sz = handoff_sizes[n % 5];
    unsigned char* p = hak_malloc(sz);
    if (!p) { handoff_bad++; break; }
    p[0] = (unsigned char)n;
    p[sz - 1] = (unsigned char)(n >> 3);
    handoff[n++] = p;
    bytes += sz;
  }
  handoff_n = n;
  return NULL;                     /* A exits: its segments are abandoned */
}

static void* freer(void* arg) {
  (void)arg;
  for (size_t i = 0; i < handoff_n; i++) {
    size_t sz = handoff_sizes[i % 5];
    unsigned char* p = handoff[i];
    if (p[0] != (unsigned char)i || p[sz - 1] != (unsigned char)(i >> 3)) handoff_bad++;
    hak_free(p);
  }
  pthread_mutex_lock(&idle_mu);
  idle_phase = 1;
  pthread_cond_broadcast(&idle_cv);
  while (idle_phase != 2) pthread_cond_wait(&idle_cv, &idle_mu);   /* idle: no malloc, no free */
  pthread_mutex_unlock(&idle_mu);
  return NULL;
}

static void test_exited_threads_blocks_freed_by_idle_thread_are_given_back(void) {
  hak_trim();
  hak_stats a = stats();
  long rss0 = ht_status_kib("VmRSS");
  handoff = malloc(sizeof *handoff * (HANDOFF_BYTES / 48 + 1));   /* glibc's, not counted */
  pthread_t ta, tb;
  pthread_create(&ta, NULL, producer, NULL);
  pthread_join(ta, NULL);
  hak_stats b = stats();
  long rss1 = ht_status_kib("VmRSS");
  pthread_create(&tb, NULL, freer, NULL);
  pthread_mutex_lock(&idle_mu);
  while (idle_phase != 1) pthread_cond_wait(&idle_cv, &idle_mu);
  pthread_mutex_unlock(&idle_mu);
  /* B has freed everything and idles. */
  hak_stats c = stats();
  long rss2 = ht_status_kib("VmRSS");
  hak_trim();
  hak_stats d = stats();
  long rss3 = ht_status_kib("VmRSS");
  pthread_mutex_lock(&idle_mu);
  idle_phase = 2;
  pthread_cond_broadcast(&idle_cv);
  pthread_mutex_unlock(&idle_mu);
  pthread_join(tb, NULL);
  free(handoff);
  CHECK_EQ(handoff_bad, 0);
  CHECK(b.bytes_in_use - a.bytes_in_use >= HANDOFF_BYTES);
  if (PROCESS_MEMORY_CHECKS) CHECK(rss1 - rss0 > 100 * 1024);
  CHECK_MSG(c.bytes_in_use <= a.bytes_in_use, "in use %llu before, %llu after the frees",
            (unsigned long long)a.bytes_in_use, (unsigned long long)c.bytes_in_use);
  /* After the free burst itself: no segment holds the freed blocks any more (what is
   * held is the segment cache, bounded by its knobs), and RSS is down to the cache's
   * dirty budget (16 MiB) plus slack. */
#define IN_SEGMENTS(st) ((long long)(st).bytes_held - (long long)(st).bytes_cached)
  long long ace = c.ace && !a.ace ? (long long)8 << 20 : 0;   /* its heap, if it started meanwhile */
  CHECK_MSG(IN_SEGMENTS(c) - IN_SEGMENTS(a) < (8 << 20) + ace, "held outside the cache: %lld KiB before, %lld after",
            IN_SEGMENTS(a) >> 10, IN_SEGMENTS(c) >> 10);
  if (PROCESS_MEMORY_CHECKS) {
    CHECK_MSG(rss2 - rss0 < 40 * 1024, "RSS %ld KiB before, %ld with the blocks, %ld after the frees", rss0, rss1,
              rss2);
    /* malloc_trim(0): the cache's pages go too. */
    CHECK_MSG(rss3 - rss0 < 16 * 1024, "RSS %ld KiB before, %ld after malloc_trim", rss0, rss3);
  }
  /* hakmem's own count: nothing left in use, and after malloc_trim nothing cached dirty
   * (its resident unused bytes are what the cache's dirty budget allowed before). */
  CHECK_MSG(d.bytes_unused_resident <= a.bytes_unused_resident + (4u << 20) + (uint64_t)ace,
            "unused resident %llu KiB before, %llu after malloc_trim",
            (unsigned long long)a.bytes_unused_resident >> 10, (unsigned long long)d.bytes_unused_resident >> 10);
  fprintf(stderr, "    RSS %ld -> %ld (blocks) -> %ld (freed) -> %ld KiB (trim); held outside the cache %lld -> "
          "%lld KiB\n", rss0, rss1, rss2, rss3, IN_SEGMENTS(b) >> 10, IN_SEGMENTS(c) >> 10);
}

/* ---- a lane of blocks handed from thread to thread (Larson's server) ----------------
 * Each thread allocates, frees the blocks its exited predecessor left (they sit in
 * abandoned segments) and allocates their replacements. The segments it empties go to the cache
 * resident: this thread and its successors are setting up segments all the time, and
 * decommitting them would make every hand-off fault the lane's pages in again (larson
 * with mixed sizes: 4.4 GB decommitted in 2 s, half mimalloc's throughput). */
enum { LANE_BLOCKS = 160, LANE_ROUNDS = 8 };
/* Two pool classes, one per round in turn, so that the blocks freed are never of the
 * class allocated (which would adopt their segments instead): 160 blocks are 32 MiB. */
#define LANE_SIZE(round) ((size_t)((round) % 2 ? 200 : 150) << 10)
static unsigned char* lane[LANE_BLOCKS];
static atomic_long lane_bad;

static void* lane_thread(void* arg) {
  unsigned round = (unsigned)(uintptr_t)arg;
  unsigned char* first = hak_malloc(LANE_SIZE(round));   /* this thread takes segments */
  for (unsigned i = 0; i < LANE_BLOCKS && round > 0; i++) {
    if (!intact(lane[i], 64, round - 1 + i)) lane_bad++;
    hak_free(lane[i]);
  }
  for (unsigned i = 0; i < LANE_BLOCKS; i++) {
    lane[i] = i == 0 ? first : hak_malloc(LANE_SIZE(round));
    if (!lane[i]) { lane_bad++; continue; }
    fill(lane[i], 64, round + i);
  }
  return NULL;
}

static void test_lane_handed_between_threads_stays_resident(void) {
  /* What the successors' own releases keep is the subject; ACE's scavenger and the
   * purges of what stays unused for the purge delay (rounds take longer than 100 ms
   * under a sanitizer on a loaded machine: a TSan run decommitted 85 MiB so) are kept
   * out of it: ACE off, a purge delay of 100 s. */
  hakmem_ace_config_t cfg;
  cfg.size = sizeof cfg;
  CHECK_EQ(hakmem_ace_config_get(&cfg), 0);
  uint32_t enabled_was = cfg.enabled;
  cfg.enabled = 0;
  CHECK_EQ(hakmem_ace_config(&cfg), 0);
  hak_knobs knobs_was, k;
  knobs_was.size = sizeof knobs_was;
  CHECK_EQ(hak_knobs_get(&knobs_was), 0);
  k = knobs_was;
  k.purge_delay_ms = 100000;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  uint64_t decommitted[LANE_ROUNDS + 1];
  for (unsigned r = 0; r <= LANE_ROUNDS; r++) {
    decommitted[r] = stats().bytes_decommitted;
    if (r == LANE_ROUNDS) break;
    pthread_t t;
    pthread_create(&t, NULL, lane_thread, (void*)(uintptr_t)r);
    pthread_join(t, NULL);
  }
  for (unsigned i = 0; i < LANE_BLOCKS; i++) {
    if (!intact(lane[i], 64, LANE_ROUNDS - 1 + i)) lane_bad++;
    hak_free(lane[i]);
  }
  CHECK_EQ(lane_bad, 0);
  uint64_t late = decommitted[LANE_ROUNDS] - decommitted[LANE_ROUNDS / 2];
  fprintf(stderr, "    decommitted per round:");
  for (unsigned r = 0; r < LANE_ROUNDS; r++)
    fprintf(stderr, " %llu", (unsigned long long)((decommitted[r + 1] - decommitted[r]) >> 20));
  fprintf(stderr, " MiB\n");
  /* Floor-only releases decommit 16 MiB or more of the 32 MiB lane every round. */
  CHECK_MSG(late < (LANE_SIZE(0) * LANE_BLOCKS) / 2, "%llu MiB decommitted over the last %u rounds",
            (unsigned long long)(late >> 20), LANE_ROUNDS / 2);
  CHECK_EQ(hak_knobs_publish(&knobs_was), 0);
  cfg.enabled = enabled_was;
  CHECK_EQ(hakmem_ace_config(&cfg), 0);
}

/* ---- a parked heap goes to the next thread ------------------------------------------
 * Thread A takes PARK_BLOCKS blocks (about 2.5 MiB: some 40 slabs), keeps every
 * PARK_KEEP-th (the main thread holds them) and frees the rest, then exits; thread B
 * starts and mallocs once. A's heap, with more than 1 MiB of slabs in use, was parked
 * and B took it whole, A's slabs on its partial list: B's block comes from one of them,
 * and no segment was adopted. (Torn down, A's segments, still holding the kept blocks,
 * were abandoned and B's new heap adopted one.) After malloc_trim, which tears parked
 * heaps down, the next thread's heap is new and adopts. */
enum { PARK_BLOCKS = 12000, PARK_KEEP = 256, PARK_SIZE = 208 };
static void* park_blocks[PARK_BLOCKS];
static void* park_got;

static void* park_a(void* arg) {
  (void)arg;
  for (int i = 0; i < PARK_BLOCKS; i++) park_blocks[i] = hak_malloc(PARK_SIZE);
  for (int i = 0; i < PARK_BLOCKS; i++) if (i % PARK_KEEP) hak_free(park_blocks[i]);
  return NULL;
}

static void* park_b(void* arg) {
  (void)arg;
  park_got = hak_malloc(PARK_SIZE);
  hak_free(park_got);
  return NULL;
}

static void run_thread(void* (*fn)(void*)) {
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, fn, NULL), 0);
  pthread_join(t, NULL);
}

/* p lies in one of the 64 KiB slabs of A's blocks */
static bool park_in_as_slabs(const void* p) {
  for (int i = 0; i < PARK_BLOCKS; i++) if (((uintptr_t)p >> 16) == ((uintptr_t)park_blocks[i] >> 16)) return true;
  return false;
}

static void park_free_kept(void) {
  for (int i = 0; i < PARK_BLOCKS; i += PARK_KEEP) hak_free(park_blocks[i]);
}

static void test_exited_threads_heap_goes_to_the_next_thread(void) {
  hak_free(hak_malloc(PARK_SIZE));           /* the process is set up */
  run_thread(park_a);
  hak_stats a = stats();
  run_thread(park_b);
  hak_stats b = stats();
  CHECK_MSG(park_in_as_slabs(park_got), "B got %p, A's blocks are at %p", park_got, park_blocks[1]);
  CHECK_EQ(b.segments_adopted, a.segments_adopted);
  CHECK_EQ(b.threads_started - a.threads_started, 1);
  CHECK_EQ(b.threads_ended - a.threads_ended, 1);
  park_free_kept();
  /* malloc_trim: no parked heap is left; B's successor makes a heap of its own, which
   * adopts the segment A's heap left abandoned. */
  run_thread(park_a);
  hak_trim();
  hak_stats c = stats();
  run_thread(park_b);
  hak_stats d = stats();
  CHECK_MSG(d.segments_adopted > c.segments_adopted, "adopted %llu -> %llu: the heap was not new",
            (unsigned long long)c.segments_adopted, (unsigned long long)d.segments_adopted);
  CHECK_MSG(park_in_as_slabs(park_got), "B got %p, A's blocks are at %p", park_got, park_blocks[1]);
  park_free_kept();
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  /* First: before the ACE thread may start (it would take the parked heap). */
  HT_RUN(test_exited_threads_heap_goes_to_the_next_thread);
  HT_RUN(test_first_malloc_in_last_tsd_round_is_torn_down);
  HT_RUN(test_exited_threads_blocks_freed_by_idle_thread_are_given_back);
  HT_RUN(test_lane_handed_between_threads_stays_resident);
  return ht_report();
}
