/* test_glibc_ext.c — glibc's malloc extensions answered by hakmem (src/shim/glibc_ext.c):
 * mallinfo2/mallinfo, malloc_trim, malloc_stats, malloc_info, mallopt and the
 * __libc_* aliases.
 *
 * Built twice: linked with -lhakmem (test_glibc_ext) and as a plain program run under
 * LD_PRELOAD (test_glibc_ext_plain). Either way every call must reach hakmem: the
 * numbers come from hakmem's counters (glibc's arena is empty), and hak_owns() (looked
 * up with dlsym, so the plain build needs no -lhakmem) says the __libc_* blocks are
 * hakmem's.
 *
 *   test_glibc_ext [NAME...]       the tests (test_trim prints the program's view:
 *                                  bytes in use, RSS before and after malloc_trim)
 *   test_glibc_ext --print-info    allocate a known set of blocks, print malloc_info's
 *                                  XML on stdout (test/api/test_malloc_info.sh parses it)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakmem_ace.h"

#include "hak_test.h"
#include "hakmem_ace.h"

extern void* __libc_malloc(size_t);
extern void  __libc_free(void*);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_valloc(size_t);
extern void* __libc_pvalloc(size_t);

#define MiB (1024.0 * 1024.0)

static int (*owns)(const void*);
static int (*knobs_get)(hak_knobs*);       /* hak_knobs_get, looked up like hak_owns */

static size_t rss_bytes(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (size_t)sysconf(_SC_PAGESIZE);
}

/* ~300 MiB in four tiers: 100 MiB of 256 B (tiny), 80 MiB of 16 KiB (mid), 80 MiB of
 * 256 KiB (pool) and 10 large blocks of 4 MiB; every size is a class size exactly, so
 * hakmem's bytes in use are what the program asked for. */
#define N_TINY  (100u << 12)   /* x 256 B   = 100 MiB */
#define N_MID   (80u << 6)     /* x 16 KiB  =  80 MiB */
#define N_POOL  (80u << 2)     /* x 256 KiB =  80 MiB */
#define N_LARGE 10u            /* x 4 MiB   =  40 MiB */

/* Turn hakmem's background scavenger off or back on (found with dlsym: this file is
 * also built without hakmem, for LD_PRELOAD; no-op where hakmem is absent). Returns the
 * previous setting. test_trim's subject is malloc_trim: a scavenger tick between the
 * frees and the trim may give the memory back first, and trim then rightly returns 0. */
static int ace_set_enabled(int on) {
  int (*get)(hakmem_ace_config_t*) = (int (*)(hakmem_ace_config_t*))dlsym(RTLD_DEFAULT, "hakmem_ace_config_get");
  int (*set)(const hakmem_ace_config_t*) = (int (*)(const hakmem_ace_config_t*))dlsym(RTLD_DEFAULT, "hakmem_ace_config");
  if (!get || !set) return -1;
  hakmem_ace_config_t c;
  memset(&c, 0, sizeof c);
  c.size = sizeof c;
  c.version = HAKMEM_ACE_CONFIG_VERSION;
  if (get(&c) != 0) return -1;
  int was = (int)c.enabled;
  c.enabled = (uint32_t)on;
  CHECK_EQ(set(&c), 0);
  return was;
}

static void test_trim(void) {
  int ace_was = ace_set_enabled(0);
  static const struct { unsigned n; size_t size; } tiers[] = {
    {N_TINY, 256}, {N_MID, 16 << 10}, {N_POOL, 256 << 10}, {N_LARGE, 4 << 20}};
  size_t total_n = 0, total_bytes = 0;
  for (int t = 0; t < 4; t++) { total_n += tiers[t].n; total_bytes += tiers[t].n * tiers[t].size; }
  void** v = (void**)malloc(total_n * sizeof(void*));
  CHECK(v != NULL);
  if (!v) return;
  struct mallinfo2 m0 = mallinfo2();
  size_t k = 0;
  for (int t = 0; t < 4; t++) {
    for (unsigned i = 0; i < tiers[t].n; i++, k++) {
      v[k] = malloc(tiers[t].size);
      if (!v[k]) { CHECK_MSG(0, "malloc(%zu) failed", tiers[t].size); return; }
      memset(v[k], 0x5a, tiers[t].size);
    }
  }
  struct mallinfo2 m1 = mallinfo2();
  size_t rss_full = rss_bytes();
  size_t grew = m1.uordblks - m0.uordblks;
  CHECK_MSG(grew >= total_bytes * 95 / 100 && grew <= total_bytes * 105 / 100,
            "mallinfo2: uordblks grew by %zu bytes for %zu allocated (not within 5 %%)", grew, total_bytes);
  CHECK_MSG(m1.arena >= m1.uordblks, "arena %zu < uordblks %zu", m1.arena, m1.uordblks);
  CHECK_MSG(m1.fordblks == m1.arena - m1.uordblks, "fordblks %zu != arena %zu - uordblks %zu",
            m1.fordblks, m1.arena, m1.uordblks);
  CHECK_MSG(m1.hblks >= N_LARGE, "hblks %zu, %u large blocks live", m1.hblks, N_LARGE);
  CHECK_MSG(m1.hblkhd >= (size_t)N_LARGE * (4 << 20) && m1.hblkhd < (size_t)N_LARGE * (5 << 20),
            "hblkhd %zu for %u blocks of 4 MiB", m1.hblkhd, N_LARGE);
  CHECK_EQ(m1.usmblks, 0);
  CHECK_EQ(m1.smblks, 0);
  CHECK_MSG(m1.ordblks > 0, "ordblks (segments held) %zu", m1.ordblks);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo mi = mallinfo();
#pragma GCC diagnostic pop
  CHECK_MSG((size_t)mi.uordblks == (m1.uordblks > INT_MAX ? (size_t)INT_MAX : m1.uordblks),
            "mallinfo().uordblks %d, mallinfo2().uordblks %zu", mi.uordblks, m1.uordblks);
  CHECK_MSG(mi.arena == (m1.arena > INT_MAX ? INT_MAX : (int)m1.arena), "mallinfo().arena %d, mallinfo2 %zu",
            mi.arena, m1.arena);
  CHECK_EQ(mi.hblks, (int)m1.hblks);

  for (size_t i = 0; i < total_n; i++) free(v[i]);
  free(v);
  size_t rss_freed = rss_bytes();
  struct mallinfo2 m2 = mallinfo2();
  CHECK_MSG(m2.uordblks < m0.uordblks + (8u << 20), "uordblks %zu after freeing everything (%zu before)",
            m2.uordblks, m0.uordblks);
  int r = malloc_trim(0);
  int r2 = malloc_trim(0);   /* nothing left to give back: a second trim at once releases nothing */
  size_t rss_trim = rss_bytes();
  struct mallinfo2 m3 = mallinfo2();
  printf("view: mallinfo2 uordblks %.1f MiB in use, arena %.1f MiB held (allocated %.1f MiB); "
         "RSS %.1f MiB in use, %.1f MiB after free, keepcost %.1f MiB; "
         "malloc_trim(0) = %d; RSS %.1f MiB after trim, keepcost %.1f MiB\n",
         m1.uordblks / MiB, m1.arena / MiB, total_bytes / MiB, rss_full / MiB, rss_freed / MiB,
         m2.keepcost / MiB, r, rss_trim / MiB, m3.keepcost / MiB);
  CHECK_MSG(r == 1, "malloc_trim(0) returned %d after freeing %zu bytes", r, total_bytes);
  CHECK_MSG(rss_full > rss_trim && rss_full - rss_trim >= total_bytes / 2,
            "RSS %zu before free, %zu after trim: fell by less than half of %zu freed", rss_full, rss_trim,
            total_bytes);
  CHECK_MSG(m3.keepcost < (8u << 20), "keepcost %zu after malloc_trim(0): unused resident memory left", m3.keepcost);
  CHECK_MSG(r2 == 0, "a second malloc_trim(0) at once returned %d", r2);
  if (ace_was >= 0) ace_set_enabled(ace_was);
}

/* read everything written to fd 2 while fn runs */
static size_t capture_stderr(void (*fn)(void), char* buf, size_t cap) {
  char path[] = "/tmp/hak_glibc_ext.XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 0;
  unlink(path);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, buf, cap - 1, 0);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  return n > 0 ? (size_t)n : 0;
}

static void call_malloc_stats(void) { malloc_stats(); }

static void test_malloc_stats(void) {
  static char buf[1 << 16];
  void* p = malloc(777);
  capture_stderr(call_malloc_stats, buf, sizeof buf);
  free(p);
  CHECK_MSG(strncmp(buf, "hakmem: stats: ", 15) == 0, "malloc_stats wrote: %.200s", buf);
  CHECK_MSG(strstr(buf, "bytes_in_use") != NULL, "no bytes_in_use line: %.300s", buf);
  CHECK_MSG(strstr(buf, "modes: superslab") != NULL, "no modes line: %.300s", buf);
  /* glibc's would say "Arena 0:" */
  CHECK_MSG(strstr(buf, "Arena 0:") == NULL, "glibc's malloc_stats answered: %.300s", buf);
}

static void test_malloc_info(void) {
  FILE* f = tmpfile();
  CHECK(f != NULL);
  if (!f) return;
  void* p = malloc(100);
  CHECK_EQ(malloc_info(0, f), 0);
  free(p);
  long n = ftell(f);
  static char buf[1 << 17];
  rewind(f);
  size_t got = fread(buf, 1, sizeof buf - 1, f);
  buf[got] = 0;
  CHECK_MSG(n > 0 && (size_t)n == got, "malloc_info wrote %ld bytes, read %zu", n, got);
  CHECK_MSG(strncmp(buf, "<malloc version=\"1\" allocator=\"hakmem\"", 38) == 0, "XML starts: %.120s", buf);
  CHECK_MSG(got > 10 && strcmp(buf + got - 10, "</malloc>\n") == 0, "XML ends: %s", got > 40 ? buf + got - 40 : buf);
  CHECK_MSG(strstr(buf, "<tier name=\"tiny\"") && strstr(buf, "<tier name=\"large\""), "no tiers: %.300s", buf);
  CHECK_MSG(strstr(buf, "block_size=\"112\"") != NULL, "no size entry for the 112-byte class of malloc(100)");
  errno = 0;
  CHECK_EQ(malloc_info(1, f), EINVAL);
  CHECK_EQ(errno, EINVAL);
  fclose(f);
}

static void test_mallopt(void) {
  static const struct { int param; int value; int want; const char* name; } cases[] = {
    {M_MMAP_THRESHOLD, 1 << 20, 1, "M_MMAP_THRESHOLD"}, {M_MMAP_THRESHOLD, 64 << 10, 1, "M_MMAP_THRESHOLD"},
    {M_TRIM_THRESHOLD, 0, 1, "M_TRIM_THRESHOLD"},       {M_TOP_PAD, 1 << 16, 1, "M_TOP_PAD"},
    {M_MMAP_MAX, 0, 1, "M_MMAP_MAX"},                   {M_ARENA_MAX, 1, 1, "M_ARENA_MAX"},
    {M_ARENA_TEST, 8, 1, "M_ARENA_TEST"},               {M_CHECK_ACTION, 3, 1, "M_CHECK_ACTION"},
    {M_PERTURB, 0xa5, 1, "M_PERTURB"},                  {M_MXFAST, 64, 1, "M_MXFAST"},
    {M_MXFAST, 100000, 0, "M_MXFAST (beyond glibc's 160)"},
    {12345, 1, 1, "an unknown parameter (1, as glibc 2.36)"},
    {M_TRIM_THRESHOLD, -1, 0, "M_TRIM_THRESHOLD (negative)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int r = mallopt(cases[i].param, cases[i].value);
    CHECK_MSG(r == cases[i].want, "mallopt(%s, %d) = %d, expected %d", cases[i].name, cases[i].value, r,
              cases[i].want);
  }
  /* M_TRIM_THRESHOLD sets the dirty budget of the empty-segment cache. */
  hak_knobs k;
  k.size = sizeof k;
  CHECK_MSG(knobs_get != NULL, "hak_knobs_get not found: is hakmem linked or preloaded?");
  CHECK_EQ(mallopt(M_TRIM_THRESHOLD, 1 << 20), 1);
  if (knobs_get) {
    CHECK_EQ(knobs_get(&k), 0);
    CHECK_EQ(k.segment_cache_dirty_bytes, 1 << 20);
  }
  CHECK_EQ(mallopt(M_TRIM_THRESHOLD, 16 << 20), 1);
  if (knobs_get) {
    CHECK_EQ(knobs_get(&k), 0);
    CHECK_EQ(k.segment_cache_dirty_bytes, 16 << 20);
  }
  void* p = malloc(2 << 20);   /* M_MMAP_THRESHOLD changed nothing: still works */
  CHECK(p != NULL && owns && owns(p));
  free(p);
}

static void test_libc_aliases(void) {
  CHECK_MSG(owns != NULL, "hak_owns not found: is hakmem linked or preloaded?");
  if (!owns) return;
  char* p = (char*)__libc_malloc(100);
  CHECK(p != NULL && owns(p));
  memset(p, 7, 100);
  p = (char*)__libc_realloc(p, 5000);
  CHECK(p != NULL && owns(p));
  CHECK(p && p[0] == 7 && p[99] == 7);
  __libc_free(p);
  unsigned char* z = (unsigned char*)__libc_calloc(300, 10);
  CHECK(z != NULL && owns(z));
  int zero = 1;
  for (int i = 0; z && i < 3000; i++) zero &= z[i] == 0;
  CHECK(zero);
  free(z);                              /* a __libc_ block through free() */
  void* a = __libc_memalign(4096, 100);
  CHECK(a != NULL && owns(a) && ((uintptr_t)a & 4095) == 0);
  CHECK(malloc_usable_size(a) >= 100);
  __libc_free(a);
  void* m = malloc(50);                 /* a malloc() block through __libc_free */
  CHECK(m != NULL && owns(m));
  __libc_free(m);
  void* va = __libc_valloc(10);
  CHECK(va != NULL && owns(va) && ((uintptr_t)va & 4095) == 0);
  __libc_free(va);
  void* pv = __libc_pvalloc(10);
  CHECK(pv != NULL && owns(pv) && ((uintptr_t)pv & 4095) == 0 && malloc_usable_size(pv) >= 4096);
  __libc_free(pv);
  __libc_free(NULL);
  errno = 0;
  CHECK(__libc_malloc(SIZE_MAX / 2 + 1) == NULL && errno == ENOMEM);
}

/* a known set of blocks, then malloc_info's XML on stdout */
static int print_info(void) {
  static void* small[1000];
  void* large[3];
  for (int i = 0; i < 1000; i++) small[i] = malloc(100);
  for (int i = 0; i < 3; i++) large[i] = malloc(2 << 20);
  int r = malloc_info(0, stdout);
  fflush(stdout);
  for (int i = 0; i < 1000; i++) free(small[i]);
  for (int i = 0; i < 3; i++) free(large[i]);
  return r;
}

int main(int argc, char** argv) {
  owns = (int (*)(const void*))dlsym(RTLD_DEFAULT, "hak_owns");
  knobs_get = (int (*)(hak_knobs*))dlsym(RTLD_DEFAULT, "hak_knobs_get");
  if (argc > 1 && strcmp(argv[1], "--print-info") == 0) return print_info();
  ht_init(argc, argv);
  HT_RUN(test_trim);
  HT_RUN(test_malloc_stats);
  HT_RUN(test_malloc_info);
  HT_RUN(test_mallopt);
  HT_RUN(test_libc_aliases);
  return ht_report();
}
