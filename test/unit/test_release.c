/* test_release.c — memory that a second thread can find and release safely (issue
 * "Core ready for ACE"): the walk over all segments gives back what an idle thread's
 * heap no longer uses, while other threads allocate and free (contents checked); the
 * purge delay follows the (replaceable) clock; a refused madvise is survived.
 *
 *   unit_release [--seconds=S] [test names]   (the walk under load runs S seconds, default 3)
 * The test links the static library and calls the alloc layer's release walk and the
 * prim layer's hooks directly. */
#define _GNU_SOURCE
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"
#include "alloc/alloc.h"
#include "alloc/release.h"
#include "base/options.h"
#include "prim/prim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

int hak_knobs_publish(const hak_knobs* candidate);

static double seconds = 3;

static size_t rss_bytes(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) { if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0; fclose(f); }
  return res * 4096;
}

static hak_stats stats(void) {
  hak_stats st;
  st.size = sizeof st;
  hak_stats_get(&st);
  return st;
}

static void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i + 1 < n; i += 64) p[i] = (unsigned char)(seed + i / 64);
  p[n - 1] = (unsigned char)(seed ^ 0x5a);
}
static bool intact(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i + 1 < n; i += 64) if (p[i] != (unsigned char)(seed + i / 64)) return false;
  return p[n - 1] == (unsigned char)(seed ^ 0x5a);
}

/* ---- an idle owner's memory, freed by another thread ------------------------------- */
enum { IDLE_N = 4000 };
static unsigned char* idle_blocks[IDLE_N];
static size_t idle_size[IDLE_N];
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_phase;              /* 0 start, 1 owner built, 2 owner may check and exit */
static long idle_bad;

static void* idle_owner(void* arg) {
  (void)arg;
  for (int i = 0; i < IDLE_N; i++) {
    idle_size[i] = i % 3 == 0 ? 16384 : i % 3 == 1 ? 24576 : 60000;   /* mid and pool classes */
    idle_blocks[i] = hak_malloc(idle_size[i]);
    fill(idle_blocks[i], idle_size[i], (unsigned)i);
  }
  pthread_mutex_lock(&idle_mu);
  idle_phase = 1;
  pthread_cond_broadcast(&idle_cv);
  while (idle_phase != 2) pthread_cond_wait(&idle_cv, &idle_mu);   /* idle: no malloc */
  pthread_mutex_unlock(&idle_mu);
  for (int i = 0; i < IDLE_N; i++) {
    if (!idle_blocks[i]) continue;
    if (!intact(idle_blocks[i], idle_size[i], (unsigned)i)) idle_bad++;
    hak_free(idle_blocks[i]);
  }
  return NULL;
}

static void test_idle_owner_memory_released_by_another_thread(void) {
  pthread_t t;
  pthread_create(&t, NULL, idle_owner, NULL);
  pthread_mutex_lock(&idle_mu);
  while (idle_phase != 1) pthread_cond_wait(&idle_cv, &idle_mu);
  pthread_mutex_unlock(&idle_mu);
  size_t freed = 0;
  for (int i = 0; i < IDLE_N; i++) {            /* free 90 % from this thread: remote frees */
    if (i % 10 == 0) continue;
    freed += idle_size[i];
    hak_free(idle_blocks[i]);
    idle_blocks[i] = NULL;
  }
  size_t rss_before = rss_bytes();
  hak_stats a = stats();
  size_t released = hak_release_all(0);
  hak_stats b = stats();
  size_t rss_after = rss_bytes();
  CHECK_MSG(released >= freed / 2, "released %zu of %zu freed bytes", released, freed);
  CHECK_MSG(rss_before - rss_after >= freed / 2, "RSS %zu -> %zu after freeing %zu", rss_before, rss_after, freed);
  CHECK(b.bytes_decommitted - a.bytes_decommitted >= released);
  CHECK(b.bytes_released_inside_blocks > a.bytes_released_inside_blocks);
  CHECK_EQ(b.remote_backlog, 0);                /* the idle owner's remote frees were drained */
  pthread_mutex_lock(&idle_mu);
  idle_phase = 2;
  pthread_cond_broadcast(&idle_cv);
  pthread_mutex_unlock(&idle_mu);
  pthread_join(t, NULL);
  CHECK_EQ(idle_bad, 0);
  /* Blocks whose pages went back and are handed out again read as zero after their
   * first page and count as refaults. */
  hak_stats c = stats();
  unsigned char* p[64];
  for (int i = 0; i < 64; i++) { p[i] = hak_malloc(16384); fill(p[i], 16384, (unsigned)i + 7); }
  for (int i = 0; i < 64; i++) { CHECK(intact(p[i], 16384, (unsigned)i + 7)); hak_free(p[i]); }
  hak_stats d = stats();
  CHECK(d.bytes_refaulted >= c.bytes_refaulted);
}

/* ---- the release walk under load ------------------------------------------------------ */
#define LOAD_THREADS 3
enum { LOAD_SLOTS = 2048 };
static _Atomic(unsigned char*) shared_slot[LOAD_SLOTS];   /* blocks handed between threads */
static atomic_int load_stop;
static atomic_long load_bad, load_ops;

static size_t pick_size(unsigned r) {
  switch (r % 4) {
    case 0:  return 32 + r % 1000;           /* tiny (room for the length at 8..15) */
    case 1:  return 1024 + r % 31000;        /* mid */
    case 2:  return 32768 + r % 200000;      /* pool */
    default: return 8192 + r % 8192;         /* mid, several pages */
  }
}

static void* load_thread(void* arg) {
  unsigned r = (unsigned)(uintptr_t)arg * 2654435761u + 17;
  enum { MINE = 256 };
  unsigned char* mine[MINE] = {0};
  size_t len[MINE] = {0};
  unsigned seed[MINE] = {0};
  long ops = 0;
  while (!atomic_load(&load_stop)) {
    r = r * 1103515245u + 12345u;
    unsigned i = (r >> 7) % MINE;
    if (mine[i]) {
      if (!intact(mine[i], len[i], seed[i])) atomic_fetch_add(&load_bad, 1);
      if ((r >> 20) & 1) {
        /* hand it over: another thread frees it (a remote free), after checking it */
        unsigned s = (r >> 3) % LOAD_SLOTS;
        fill(mine[i], len[i], s);
        memcpy(mine[i] + 8, &len[i], sizeof len[i]);      /* the block carries its length */
        unsigned char* old = atomic_exchange(&shared_slot[s], mine[i]);
        if (old) {
          size_t n;
          memcpy(&n, old + 8, sizeof n);
          if (!intact(old, n, s)) atomic_fetch_add(&load_bad, 1);
          hak_free(old);
        }
      } else {
        hak_free(mine[i]);
      }
      mine[i] = NULL;
    } else {
      len[i] = pick_size(r >> 4);
      mine[i] = hak_malloc(len[i]);
      seed[i] = r;
      fill(mine[i], len[i], seed[i]);
    }
    if (++ops == 1024) { atomic_fetch_add(&load_ops, ops); ops = 0; }
  }
  for (unsigned i = 0; i < MINE; i++) hak_free(mine[i]);
  atomic_fetch_add(&load_ops, ops);
  return NULL;
}

static void test_release_walk_under_load(void) {
  hak_stats a = stats();
  pthread_t t[LOAD_THREADS];
  for (long i = 0; i < LOAD_THREADS; i++) pthread_create(&t[i], NULL, load_thread, (void*)i);
  hak_release_walk_t w = {0};
  hak_seglist_cursor_open(&w.cursor);
  w.max_segments = 16;
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long rounds = 0;
  do {
    hak_release_walk(&w, hak_prim_now_ns(), 0);   /* no delay: as aggressive as it gets */
    rounds++;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* The walks run for `seconds`, and on a loaded machine (or under a sanitizer) on
     * until the load threads have done 10,000 operations: the assertions are about
     * walks racing with real work, not about speed (at most 5 minutes). */
  } while ((now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 < seconds ||
           (atomic_load(&load_ops) <= 10000 && now.tv_sec - t0.tv_sec < 300));
  hak_seglist_cursor_close(&w.cursor);
  atomic_store(&load_stop, 1);
  for (int i = 0; i < LOAD_THREADS; i++) pthread_join(t[i], NULL);
  for (unsigned s = 0; s < LOAD_SLOTS; s++) {
    unsigned char* p = atomic_exchange(&shared_slot[s], NULL);
    size_t n = 0;
    if (p) memcpy(&n, p + 8, sizeof n);
    if (p && !intact(p, n, s)) atomic_fetch_add(&load_bad, 1);
    hak_free(p);
  }
  hak_stats b = stats();
  CHECK_EQ(atomic_load(&load_bad), 0);
  CHECK(atomic_load(&load_ops) > 10000);
  CHECK_MSG(w.released > 0, "released %llu in %ld rounds", (unsigned long long)w.released, rounds);
  CHECK(b.bytes_decommitted > a.bytes_decommitted);
  CHECK(w.visited > 0);
  fprintf(stderr, "    %ld walks, %llu segments visited, %llu busy, %llu bytes released, %ld ops\n", rounds,
          (unsigned long long)w.visited, (unsigned long long)w.busy, (unsigned long long)w.released,
          atomic_load(&load_ops));
}

/* ---- the purge delay follows the clock (a fake one) --------------------------------- */
static _Atomic uint64_t fake_now = 1000000000ull;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }

static void test_purge_delay_on_a_fake_clock(void) {
  hak_release_all(0);                        /* settle what earlier tests left behind */
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;
  hak_prim_set_ops(&ops);
  enum { N = 200 };
  void* p[N];
  for (int i = 0; i < N; i++) p[i] = hak_malloc(3000);     /* a class nothing else uses here */
  for (int i = 0; i < N; i++) hak_free(p[i]);
  hak_thread_flush();                        /* slabs empty at fake time T */
  const uint64_t delay = 1000000000ull;      /* 1 s */
  hak_stats a = stats();
  hak_release_all(delay);
  hak_stats b = stats();
  atomic_fetch_add(&fake_now, delay - 1000000);   /* T + 0.999 s: not yet */
  hak_release_all(delay);
  hak_stats c = stats();
  atomic_fetch_add(&fake_now, 2000000);           /* T + 1.001 s */
  hak_release_all(delay);
  hak_stats d = stats();
  hak_prim_set_ops(NULL);
  /* Slab purges only: pages inside free blocks of earlier tests' heaps follow their
   * own idle rule. */
#define PURGED(st) ((st).bytes_decommitted - (st).bytes_released_inside_blocks)
  CHECK_EQ(PURGED(b), PURGED(a));
  CHECK_EQ(PURGED(c), PURGED(b));
  CHECK_MSG(PURGED(d) - PURGED(c) >= 60000, "purged %llu bytes after the delay",
            (unsigned long long)(PURGED(d) - PURGED(c)));
}

/* ---- the segment cache keeps resident what threads that come and go reuse ---------- */
size_t hak_segment_cache_dirty_bytes(void);

static void* segment_churn_thread(void* arg) {
  (void)arg;
  enum { N = 1200 };                         /* 1,200 x 32 KiB: about ten mid segments */
  static __thread void* v[N];
  for (int i = 0; i < N; i++) { v[i] = hak_malloc(32768); memset(v[i], i, 64); }
  for (int i = 0; i < N; i++) hak_free(v[i]);
  return NULL;                               /* its exit gives the segments back */
}

static void churn_round(void) {
  pthread_t t;
  pthread_create(&t, NULL, segment_churn_thread, NULL);
  pthread_join(t, NULL);
}

/* The segment cache and the slab reuse below are what threads that exit with their
 * heap torn down go through: parking (heap.c) would hand the heap to the next thread
 * instead, so these tests turn it off. */
static long long park_off(void) {
  long long was = hak_opt_values[HAK_OPT_HEAP_PARK];
  hak_opt_values[HAK_OPT_HEAP_PARK] = 0;
  hak_release_all(0);                        /* no heap parked from earlier tests */
  return was;
}

static void test_segment_cache_keeps_what_is_reused(void) {
  long long park = park_off();
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;
  hak_prim_set_ops(&ops);
  atomic_fetch_add(&fake_now, 60000000000ull);     /* past any earlier reuse history */
  hak_release_all(0);
  const size_t floor = 16u << 20;            /* HAKMEM_SEGMENT_CACHE_DIRTY's default */
  /* Rounds 10 ms apart (fake time; purge delay 100 ms): each reuses the last one's
   * segments, and the cache keeps them resident (before: at most the floor). */
  for (int r = 0; r < 6; r++) { atomic_fetch_add(&fake_now, 10000000); churn_round(); }
  size_t churning = hak_segment_cache_dirty_bytes();
  /* Once the rounds stop, a purge gives it all back when their churn has decayed
   * (HAK_CHURN_WINDOWS purge delays). */
  atomic_fetch_add(&fake_now, 2000000000);
  hak_release_all(100000000);
  size_t idle = hak_segment_cache_dirty_bytes();
  hak_prim_set_ops(NULL);
  CHECK_MSG(churning > floor + (8u << 20), "reused rounds left %zu bytes resident in the cache", churning);
  CHECK_EQ(idle, 0);
  hak_opt_values[HAK_OPT_HEAP_PARK] = park;
}

/* A program that frees much at once mostly builds the same again right after: the
 * cache keeps what it was given resident past the floor, and gives it back over the
 * purge delays that follow (malloc_trim at once). Before, all but the 16 MiB floor was
 * decommitted at once, and rebuilding 384 MiB of small blocks faulted every page again
 * (1.7 s against mimalloc's 0.05 s). */
static void* segment_burst_thread(void* arg) {
  (void)arg;
  enum { N = 1600 };                         /* 1,600 x 32 KiB: 50 MiB of mid segments */
  static __thread void* v[N];
  for (int i = 0; i < N; i++) { v[i] = hak_malloc(32768); memset(v[i], i, 32768); }
  for (int i = 0; i < N; i++) hak_free(v[i]);
  return NULL;                               /* its exit gives the segments back */
}

static void test_segment_cache_keeps_a_burst_for_a_while(void) {
  long long park = park_off();
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;
  hak_prim_set_ops(&ops);
  atomic_fetch_add(&fake_now, 60000000000ull);     /* past any earlier history */
  hak_release_all(0);
  const size_t floor = 16u << 20;
  for (int round = 0; round < 2; round++) {
    pthread_t t;
    pthread_create(&t, NULL, segment_burst_thread, NULL);
    pthread_join(t, NULL);
    size_t burst = hak_segment_cache_dirty_bytes();
    atomic_fetch_add(&fake_now, 150000000);        /* past the 100 ms purge delay */
    hak_release_all(100000000);
    size_t after_delay = hak_segment_cache_dirty_bytes();
    CHECK_MSG(burst >= floor + (24u << 20), "round %d: a 50 MiB burst left %zu bytes resident", round, burst);
    CHECK_MSG(after_delay >= burst / 2, "round %d: %zu of %zu bytes resident one purge delay later", round,
              after_delay, burst);
    if (round == 0) {
      atomic_fetch_add(&fake_now, 2000000000);     /* the churn has decayed: all back */
      hak_release_all(100000000);
      CHECK_EQ(hak_segment_cache_dirty_bytes(), 0);
    } else {
      hak_release_all(0);                          /* malloc_trim: all back at once */
      CHECK_EQ(hak_segment_cache_dirty_bytes(), 0);
    }
  }
  /* Kept only while it may be reused: new memory mapped from the OS instead (a large
   * block here) sends as many of the cache's resident bytes back, down to the floor. */
  pthread_t t;
  pthread_create(&t, NULL, segment_burst_thread, NULL);
  pthread_join(t, NULL);
  size_t before = hak_segment_cache_dirty_bytes();
  size_t big = (40u << 20) + 12288;
  void* p = hak_malloc(big);
  CHECK(p != NULL);
  size_t after = hak_segment_cache_dirty_bytes();
  hak_free(p);
  hak_release_all(0);
  CHECK_MSG(before >= floor + (24u << 20), "the burst left %zu bytes resident", before);
  CHECK_MSG(after <= floor || after + (big - (1u << 20)) <= before,
            "a %zu-byte block mapped anew left %zu of %zu cached bytes resident", big, after, before);
  hak_prim_set_ops(NULL);
  hak_opt_values[HAK_OPT_HEAP_PARK] = park;
}

/* ---- the segment cache hands a segment back to its own geometry -------------------- */
/* A thread that takes one block of `size`, writes all of it and frees it: its pool
 * segment (one class, 2 MiB) goes to the cache resident at its exit. */
static uintptr_t geo_block;
static long geo_faults;
static void* geometry_thread(void* arg) {
  size_t size = *(const size_t*)arg;
  struct rusage a, b;
  getrusage(RUSAGE_THREAD, &a);
  unsigned char* p = hak_malloc(size);
  memset(p, 7, size);
  getrusage(RUSAGE_THREAD, &b);
  geo_faults = b.ru_minflt - a.ru_minflt;
  geo_block = (uintptr_t)p;
  hak_free(p);
  return NULL;
}
static void* geometry_prep_thread(void* arg) {
  (void)arg;
  void* a = hak_malloc(120000);              /* two more pool classes: two segments */
  void* b = hak_malloc(100000);
  hak_free(a);
  hak_free(b);
  return NULL;
}
static uintptr_t geometry_round(size_t size) {
  pthread_t t;
  pthread_create(&t, NULL, geometry_thread, &size);
  pthread_join(t, NULL);
  return geo_block & ~(uintptr_t)((2u << 20) - 1);     /* its segment: one 2 MiB chunk */
}

static void test_segment_cache_reuses_same_geometry(void) {
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;                   /* frozen: nothing is purged meanwhile */
  hak_prim_set_ops(&ops);
  atomic_fetch_add(&fake_now, 60000000000ull);
  const size_t x = 150000, y = 200000;      /* two pool classes, 2 MiB segments */
  pthread_t t;
  pthread_create(&t, NULL, geometry_prep_thread, NULL);
  pthread_join(t, NULL);
  hak_release_all(0);                        /* every cached segment decommitted */
  uintptr_t sx = geometry_round(x);          /* cached resident, at the head of the cache */
  /* Another class: not x's resident segment (its blocks sit elsewhere: it would fault
   * its own pages in and keep x's resident for nothing) but a decommitted one. */
  uintptr_t sy = geometry_round(y);
  /* x again: its own segment, whose pages are still there (y's came back in between
   * and is now the head of the cache). */
  uintptr_t sx2 = geometry_round(x);
  long faults = geo_faults;
  hak_prim_set_ops(NULL);
  CHECK(sy != sx);
  CHECK(sx2 == sx);
  CHECK_MSG(faults < 16, "%ld page faults writing a block of %zu bytes in a reused segment", faults, x);
}

/* ---- a slab taken over by another class holds few of its pages ---------------------- */
/* One thread fills 512 KiB with 4 KiB blocks and frees them (its segment goes to the
 * cache resident); the next takes one 6 KiB block (same segment kind, so the same
 * segment and one of those slabs) and exits holding it. Once the purge delay has
 * passed, the unused slabs are decommitted; the slab in use keeps the earlier class's
 * pages resident past its own block: with 512 KiB slabs for these sizes that was a whole
 * 512 KiB, with 64 KiB slabs (blocks up to 8 KiB come from SuperSlabs) at most 64 KiB. */
static void* stale_fill_thread(void* arg) {
  (void)arg;
  enum { N = 128 };
  void* v[N];
  for (int i = 0; i < N; i++) { v[i] = hak_malloc(4096); memset(v[i], i, 4096); }
  for (int i = 0; i < N; i++) hak_free(v[i]);
  return NULL;
}
static void* stale_take_thread(void* arg) {
  unsigned char* p = hak_malloc(6000);
  memset(p, 1, 6000);
  *(void**)arg = p;
  return NULL;                               /* exits holding it: segment abandoned */
}

static void test_slab_reused_by_another_class_keeps_few_stale_pages(void) {
  long long park = park_off();
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;
  hak_prim_set_ops(&ops);
  atomic_fetch_add(&fake_now, 60000000000ull);
  hak_release_all(0);                        /* every cached segment decommitted */
  pthread_t t;
  pthread_create(&t, NULL, stale_fill_thread, NULL);
  pthread_join(t, NULL);
  void* p = NULL;
  pthread_create(&t, NULL, stale_take_thread, &p);
  pthread_join(t, NULL);
  const uint64_t delay = 100000000ull;
  atomic_fetch_add(&fake_now, 2 * delay);
  hak_release_all(delay);                    /* unused slabs decommitted */
  hak_segment* seg = hak_registry_lookup((uintptr_t)p);
  CHECK(seg != NULL);
  size_t resident = 0;
  if (seg) {
    size_t pages = seg->size / 4096;
    unsigned char* vec = malloc(pages);
    CHECK(mincore(seg, seg->size, vec) == 0);
    for (size_t i = 0; i < pages; i++) resident += vec[i] & 1;
    free(vec);
  }
  hak_free(p);
  hak_prim_set_ops(NULL);
  /* header page + one 64 KiB slab */
  CHECK_MSG(resident * 4096 <= (64u << 10) + 8192, "%zu pages resident in the segment of one 6 KiB block",
            resident);
  hak_opt_values[HAK_OPT_HEAP_PARK] = park;
}

/* ---- a class gets back a resident slab it served before ---------------------------- */
/* One thread fills a slab of 96-byte blocks and one of 160-byte blocks, in that order,
 * and frees them all (its SuperSlab goes to the cache resident); the next asks for
 * 160-byte blocks: it gets the slab that held them, whose pages lie where its blocks go,
 * not the first resident slab (the 96-byte one: 48 more pages faulted in while the old
 * ones stayed resident past its blocks). */
static uintptr_t same_cls_first[2];
static void* same_cls_fill_thread(void* arg) {
  (void)arg;
  enum { N = 400 };                          /* 37.5 and 62.5 KiB: within one slab each */
  void* a[N];
  void* b[N];
  for (int i = 0; i < N; i++) { a[i] = hak_malloc(96); memset(a[i], 1, 96); }
  for (int i = 0; i < N; i++) { b[i] = hak_malloc(160); memset(b[i], 2, 160); }
  same_cls_first[0] = (uintptr_t)b[0];
  for (int i = 0; i < N; i++) { hak_free(a[i]); hak_free(b[i]); }
  return NULL;
}
static void* same_cls_take_thread(void* arg) {
  (void)arg;
  void* p = hak_malloc(160);
  same_cls_first[1] = (uintptr_t)p;
  hak_free(p);
  return NULL;
}

static void test_class_gets_its_own_resident_slab_back(void) {
  hak_prim_ops ops = hak_prim_linux;
  ops.now_ns = fake_clock;                   /* frozen: nothing is purged meanwhile */
  hak_prim_set_ops(&ops);
  atomic_fetch_add(&fake_now, 60000000000ull);
  hak_release_all(0);                        /* cached segments decommitted: none resident */
  pthread_t t;
  pthread_create(&t, NULL, same_cls_fill_thread, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, same_cls_take_thread, NULL);
  pthread_join(t, NULL);
  hak_prim_set_ops(NULL);
  const uintptr_t slab = 64u << 10;
  CHECK_MSG(same_cls_first[0] / slab == same_cls_first[1] / slab, "160-byte blocks at %#lx, then at %#lx",
            (unsigned long)same_cls_first[0], (unsigned long)same_cls_first[1]);
}

/* ---- pages of small blocks (slab.c: release_small_pages, hak_slab_unpark) ------------
 * An idle owner holds 2048 blocks of 64 B (two 64 KiB slabs) and frees every other run
 * of 256 (four whole pages each). The walk gives those pages back and parks their
 * blocks; the live blocks keep their contents. The owner's next 1024 mallocs get the
 * parked blocks back (no new memory), counted as refaults. A write after free on a page
 * given back stops the program at the unpark, naming the page. */
enum { SMALL_N = 2048, SMALL_SIZE = 64, SMALL_RUN = 256 };
static unsigned char* small_blocks[SMALL_N];
static pthread_barrier_t small_bar;
static long small_bad, small_reused;

static bool small_freed(int i) { return (i / SMALL_RUN) % 2 == 1; }
static bool page_resident(const void* p) {
  unsigned char v = 0;
  void* page = (void*)((uintptr_t)p & ~(uintptr_t)4095);
  return mincore(page, 4096, &v) == 0 && (v & 1);
}

static void small_build(void) {
  for (int i = 0; i < SMALL_N; i++) {
    small_blocks[i] = hak_malloc(SMALL_SIZE);
    fill(small_blocks[i], SMALL_SIZE, (unsigned)i);
  }
  for (int i = 0; i < SMALL_N; i++) if (small_freed(i)) hak_free(small_blocks[i]);
  hak_thread_flush();           /* the freed blocks go back to their slabs' lists */
}

static void* small_owner(void* arg) {
  (void)arg;
  small_build();
  pthread_barrier_wait(&small_bar);   /* 1: built, idle */
  pthread_barrier_wait(&small_bar);   /* 2: released */
  unsigned char* again[SMALL_N / 2];
  for (int k = 0; k < SMALL_N / 2; k++) {
    again[k] = hak_malloc(SMALL_SIZE);
    for (int i = 0; i < SMALL_N; i++) {
      if (small_freed(i) && again[k] == small_blocks[i]) { small_reused++; break; }
    }
    fill(again[k], SMALL_SIZE, 1000u + (unsigned)k);
  }
  for (int i = 0; i < SMALL_N; i++) if (!small_freed(i) && !intact(small_blocks[i], SMALL_SIZE, (unsigned)i)) small_bad++;
  for (int k = 0; k < SMALL_N / 2; k++) {
    if (!intact(again[k], SMALL_SIZE, 1000u + (unsigned)k)) small_bad++;
    hak_free(again[k]);
  }
  for (int i = 0; i < SMALL_N; i++) if (!small_freed(i)) hak_free(small_blocks[i]);
  return NULL;
}

static void test_small_block_pages_released_and_reused(void) {
  pthread_barrier_init(&small_bar, NULL, 2);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, small_owner, NULL), 0);
  pthread_barrier_wait(&small_bar);   /* 1 */
  hak_stats a = stats();
  hak_release_all(0);
  hak_stats b = stats();
  long resident_freed = 0, resident_kept = 0, pages = 0;
  for (int i = 0; i < SMALL_N; i += 64) {      /* one block per page */
    pages++;
    if (small_freed(i)) resident_freed += page_resident(small_blocks[i]);
    else resident_kept += page_resident(small_blocks[i]);
  }
  CHECK_MSG(resident_freed == 0, "%ld of %ld pages of freed blocks still resident", resident_freed, pages / 2);
  CHECK_EQ(resident_kept, pages / 2);
  /* (a run may end on a page shared with never-used space past the bump pointer) */
  CHECK_MSG(b.bytes_released_inside_blocks - a.bytes_released_inside_blocks >= (uint64_t)SMALL_N / 2 * SMALL_SIZE * 3 / 4,
            "released %llu bytes inside blocks",
            (unsigned long long)(b.bytes_released_inside_blocks - a.bytes_released_inside_blocks));
  pthread_barrier_wait(&small_bar);   /* 2 */
  pthread_join(t, NULL);
  hak_stats c = stats();
  CHECK_EQ(small_bad, 0);
  CHECK_MSG(small_reused == SMALL_N / 2, "%ld of %d mallocs got a parked block back", small_reused, SMALL_N / 2);
  CHECK(c.bytes_refaulted - b.bytes_refaulted >= (uint64_t)SMALL_N / 2 * SMALL_SIZE * 3 / 4);
  pthread_barrier_destroy(&small_bar);
}

/* The program writes into a freed block whose page went back; the next refill of the
 * class finds the page no longer zero and stops (in a child process). */
static void test_write_after_free_on_a_released_page_stops(void) {
  int pfd[2];
  CHECK_EQ(pipe(pfd), 0);
  uintptr_t* page_seen = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(page_seen != MAP_FAILED);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[0]);
    dup2(pfd[1], 2);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    alarm(20);
    small_build();
    hak_release_all(0);
    small_blocks[SMALL_RUN + 5][20] = 0x77;    /* a write after free */
    *page_seen = (uintptr_t)(small_blocks[SMALL_RUN + 5] + 20) & ~(uintptr_t)4095;
    for (int i = 0; i < SMALL_N; i++) hak_malloc(SMALL_SIZE);
    _exit(0);
  }
  close(pfd[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while ((r = read(pfd[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
  buf[len] = 0;
  close(pfd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child status %#x; stderr: %s", st, buf);
  char want[128];
  snprintf(want, sizeof want, "hakmem: malloc(): write after free (on a page of free blocks given back) %p",
           (void*)*page_seen);
  CHECK(*page_seen != 0);
  CHECK_MSG(strstr(buf, want) != NULL, "stderr lacks \"%s\": %s", want, buf);
  munmap(page_seen, 4096);
}

/* ---- madvise refused: counted, nothing breaks, works again afterwards -------------- */
static atomic_int refuse;
static bool refusing_decommit(void* p, size_t n) {
  if (atomic_load(&refuse)) return false;
  return hak_prim_linux.decommit(p, n);
}

static void test_refused_decommit_is_survived(void) {
  hak_prim_ops ops = hak_prim_linux;
  ops.decommit = refusing_decommit;
  hak_prim_set_ops(&ops);
  atomic_store(&refuse, 1);
  unsigned char* p[300];
  for (int i = 0; i < 300; i++) { p[i] = hak_malloc(20000); fill(p[i], 20000, (unsigned)i); }
  for (int i = 0; i < 300; i += 2) hak_free(p[i]);
  hak_thread_flush();
  hak_stats a = stats();
  size_t released = hak_release_all(0);
  hak_stats b = stats();
  CHECK_EQ(released, 0);
  CHECK(b.os_failures > a.os_failures);
  for (int i = 1; i < 300; i += 2) CHECK(intact(p[i], 20000, (unsigned)i));
  atomic_store(&refuse, 0);
  released = hak_release_all(0);
  CHECK(released > 0);
  for (int i = 1; i < 300; i += 2) { CHECK(intact(p[i], 20000, (unsigned)i)); hak_free(p[i]); }
  hak_prim_set_ops(NULL);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  for (int i = 1; i < argc; i++) if (strncmp(argv[i], "--seconds=", 10) == 0) seconds = atof(argv[i] + 10);
  HT_RUN(test_idle_owner_memory_released_by_another_thread);
  HT_RUN(test_release_walk_under_load);
  HT_RUN(test_purge_delay_on_a_fake_clock);
  HT_RUN(test_refused_decommit_is_survived);
  HT_RUN(test_segment_cache_keeps_what_is_reused);
  HT_RUN(test_segment_cache_keeps_a_burst_for_a_while);
  HT_RUN(test_segment_cache_reuses_same_geometry);
  HT_RUN(test_slab_reused_by_another_class_keeps_few_stale_pages);
  HT_RUN(test_class_gets_its_own_resident_slab_back);
  HT_RUN(test_small_block_pages_released_and_reused);
  HT_RUN(test_write_after_free_on_a_released_page_stops);
  return ht_report();
}
