/* test_hak_api.c — the same conformance cases for the hak_* API.
 *
 * Linked to libhakmem-api.a (no libc names replaced), so it is the binary
 * that runs in the ASan+UBSan and TSan builds.  Adds the hak_*-only calls:
 * hak_owns and hak_thread_flush.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <sys/mman.h>

#include "hakmem.h"
#include "hakmem_stats.h"

#define T_MALLOC              hak_malloc
#define T_FREE                hak_free
#define T_CALLOC              hak_calloc
#define T_REALLOC             hak_realloc
#define T_REALLOCARRAY        hak_reallocarray
#define T_ALIGNED_ALLOC       hak_aligned_alloc
#define T_POSIX_MEMALIGN      hak_posix_memalign
#define T_MEMALIGN            hak_memalign
#define T_VALLOC              hak_valloc
#define T_PVALLOC             hak_pvalloc
#define T_USABLE              hak_malloc_usable_size
#define T_FREE_SIZED          hak_free_sized
#define T_FREE_ALIGNED_SIZED  hak_free_aligned_sized
#define T_CFREE               ((void (*)(void*))0)   /* cfree has no hak_ name */
#define T_STATS_GET           hak_stats_get

#include "api_cases.h"

static void test_hak_owns(void) {
  CHECK(!hak_owns(NULL));
  int local = 0;
  static int global_var;
  CHECK(!hak_owns(&local));
  CHECK(!hak_owns(&global_var));
  CHECK(!hak_owns((const void*)test_hak_owns));
  void* m = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED);
  CHECK(!hak_owns(m));
  CHECK(!hak_owns((char*)m + 2 * MiB));
  munmap(m, 4 * MiB);
  void* sys = malloc(100);  /* the system allocator's (or the sanitizer's) block */
  CHECK(!hak_owns(sys));
  free(sys);
  for (size_t i = 0; i < N_TIER_SIZES; i++) {
    void* p = hak_malloc(tier_sizes[i]);
    CHECK_MSG(hak_owns(p), "hak_owns(hak_malloc(%zu) = %p) == 0", tier_sizes[i], p);
    hak_free(p);
  }
  void* a = hak_aligned_alloc(4 * MiB, 10);
  CHECK(hak_owns(a));
  hak_free(a);
  /* A large block's mapping ends on a page; the rest of its last 2 MiB chunk is not
   * hakmem's. Memory the program maps there itself is not hakmem's either. */
  char* big = hak_malloc(3 * MiB);                      /* header page + 3 MiB: 2 chunks, part used */
  CHECK(hak_owns(big) && hak_owns(big + 3 * MiB - 1));
  /* The mapping ends where the usable size does (a reused cached mapping may be larger
   * than the request). */
  uintptr_t end = (uintptr_t)big + hak_malloc_usable_size(big);
  CHECK_EQ(end & 4095, 0);
  CHECK(hak_owns((void*)(end - 1)));
  uintptr_t chunk_end = (end + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1);
  if (chunk_end > end) {     /* (a mapping ending on a chunk may have a hakmem neighbour) */
    CHECK(!hak_owns((void*)end));
    void* mine = mmap((void*)end, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (mine != MAP_FAILED) {
      CHECK_MSG(mine == (void*)end && !hak_owns(mine), "hak_owns(%p) of the program's own mapping", mine);
      munmap(mine, 4096);
    }
  }
  hak_free(big);
}

static void* flush_thread(void* arg) {
  void** keep = (void**)arg;
  for (int round = 0; round < 10; round++) {
    void* v[500];
    for (int i = 0; i < 500; i++) v[i] = hak_malloc((size_t)(i % 64) * 16 + 1);
    for (int i = 0; i < 500; i++) hak_free(v[i]);
    hak_thread_flush();
  }
  for (int i = 0; i < 100; i++) { keep[i] = hak_malloc(48); memset(keep[i], i, 48); }
  hak_thread_flush();  /* live blocks stay valid across a flush */
  return NULL;
}

static void test_hak_thread_flush(void) {
  hak_thread_flush();
  void* p = hak_malloc(100);
  memset(p, 9, 100);
  hak_thread_flush();
  CHECK(((unsigned char*)p)[99] == 9);
  hak_free(p);
  hak_thread_flush();
  hak_thread_flush();
  void* keep[100];
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, flush_thread, keep), 0);
  pthread_join(t, NULL);
  int bad = 0;
  for (int i = 0; i < 100; i++) {
    if (((unsigned char*)keep[i])[47] != (unsigned char)i) bad++;
    hak_free(keep[i]);
  }
  CHECK_EQ(bad, 0);
  /* and the allocator still works afterwards */
  void* q = hak_malloc(10);
  CHECK(q != NULL);
  hak_free(q);
}

/* hak_thread_flush must do something observable: it hands the thread's cached blocks
 * back, so the class's flush count rises, and the next malloc of that class finds its
 * TLS list empty and refills. Without the flush the same malloc is served from the list
 * (the control). */
static void test_hak_thread_flush_observable(void) {
  enum { SIZE = 700, K = 10 };            /* class 704: nothing else here uses it */
  static hak_stats a, b;
  void* v[K];
  for (int i = 0; i < K; i++) v[i] = hak_malloc(SIZE);
  for (int i = 0; i < K; i++) hak_free(v[i]);   /* K blocks cached in the TLS list */
  SNAP(a);
  unsigned c = 0;
  while (a.cls[c].block_size < SIZE) c++;
  CHECK_EQ(a.cls[c].block_size, 704);

  /* control: no flush, the malloc pops a cached block */
  void* p = hak_malloc(SIZE);
  SNAP(b);
  CHECK_MSG(b.cls[c].refills == a.cls[c].refills, "malloc with %d blocks cached refilled", K);
  CHECK_EQ(b.cls[c].flushes, a.cls[c].flushes);
  hak_free(p);

  SNAP(a);
  hak_thread_flush();
  SNAP(b);
  CHECK_MSG(b.cls[c].flushes > a.cls[c].flushes, "hak_thread_flush: flushes of class %u stayed %llu", c,
            (unsigned long long)a.cls[c].flushes);
  CHECK_EQ(b.cls[c].in_use, a.cls[c].in_use);   /* cached blocks were free all along */
  p = hak_malloc(SIZE);
  SNAP(a);
  CHECK_MSG(a.cls[c].refills == b.cls[c].refills + 1,
            "malloc after hak_thread_flush: refills %llu -> %llu, expected one refill (the cache was emptied)",
            (unsigned long long)b.cls[c].refills, (unsigned long long)a.cls[c].refills);
  hak_free(p);
}

static void test_superslab_option(void) {
  const char* e = getenv("HAKMEM_TINY_USE_SUPERSLAB");
  long long want = (e && strcmp(e, "0") == 0) ? 0 : 1;
  CHECK_EQ(hak_option_value("HAKMEM_TINY_USE_SUPERSLAB"), want);
}

/* hak_version(): the header's macros, the library's string and the CMake project version
 * (HAK_TEST_PROJECT_VERSION, from test/CMakeLists.txt) all say 0.2.0. */
static void test_version(void) {
  const char* v = hak_version();
  CHECK(v != NULL);
  if (!v) return;
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", HAKMEM_VERSION_MAJOR, HAKMEM_VERSION_MINOR, HAKMEM_VERSION_PATCH);
  CHECK_MSG(strcmp(v, want) == 0, "hak_version() = \"%s\", the header's macros say %s", v, want);
  CHECK_MSG(strcmp(v, "0.2.0") == 0, "hak_version() = \"%s\", expected 0.2.0", v);
  CHECK_MSG(strcmp(v, HAKMEM_VERSION_STRING) == 0, "hak_version() = \"%s\", HAKMEM_VERSION_STRING = %s", v,
            HAKMEM_VERSION_STRING);
#ifdef HAK_TEST_PROJECT_VERSION
  CHECK_MSG(strcmp(v, HAK_TEST_PROJECT_VERSION) == 0, "hak_version() = \"%s\", CMake project version %s", v,
            HAK_TEST_PROJECT_VERSION);
#endif
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_version);
  HT_RUN(test_superslab_option);
  HT_RUN(test_hak_owns);
  HT_RUN(test_hak_thread_flush);
  HT_RUN(test_hak_thread_flush_observable);
  API_RUN_SHARED_CASES();
  return ht_report();
}
