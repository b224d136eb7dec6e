/* test_faults.c — the allocator under injected OS failures (reliability issue).
 *
 *  - mmap: every entry point (malloc, calloc, realloc across tiers, aligned_alloc,
 *    posix_memalign, memalign, valloc, pvalloc; the first block of each tier; large
 *    blocks) runs with the Nth map failing, N = 1, 2, ... until a call succeeds without
 *    reaching the fault; once with only the Nth map failing, once with every map from the
 *    Nth on failing. A failed call returns NULL with errno ENOMEM (posix_memalign:
 *    ENOMEM, errno kept), leaves bytes_held and the process's address space (VmSize of
 *    /proc/self/statm) exactly as they were, and keeps the contents of the blocks
 *    allocated before (the block being reallocated included); once the fault clears the
 *    same call succeeds. Each scenario runs in a child forked before this process ever
 *    called hakmem, so its first allocation of a tier really maps a new segment.
 *  - munmap / madvise / mremap refused: large frees (cache on and off), hak_trim, the
 *    release walk over segments with the segment cache off, a large realloc's shrink and
 *    grow: no block loses its contents, calloc still gives zeros, refused madvise calls
 *    are counted in os_failures, the allocator keeps working.
 *  - the ACE thread failing to start; the PMU failing to open (perf_event_open refused by
 *    a seccomp filter, HAKMEM_ACE_PMU=auto|software|off in re-executed children);
 *    /proc unreadable (tmpfs mounted over /proc in a private mount namespace; skipped
 *    with a message where that is not permitted; and every open() refused by seccomp).
 *
 *  - a refused munmap of a whole mapping is counted in os_failures and its bytes stay in
 *    bytes_held (test_refused_munmap_counted; it was a bug: large.c and segment.c
 *    ignored hak_prim_unmap's result and lost the mapping from the count).
 *
 *   unit_faults [test names]        (HAK_FAULTS_DEBUG=1: one line per attempt)
 * Links the static library (prim hooks, hak_trim, the release walk, ACE's test hook). */
#define _GNU_SOURCE
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"
#include "alloc/release.h"
#include "base/options.h"
#include "ace/ace.h"
#include "prim/prim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int hak_knobs_publish(const hak_knobs* candidate);
size_t hak_trim(void);

#define MiB ((size_t)1 << 20)

/* ---- helpers --------------------------------------------------------------------------- */
static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static hak_stats stats(void) {
  hak_stats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  return st;
}

/* VmSize in bytes (the first field of /proc/self/statm): every mapping of the process. */
static size_t vm_size(void) {
  int fd = open("/proc/self/statm", O_RDONLY);
  char buf[128] = {0};
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  return n > 0 ? (size_t)strtoull(buf, NULL, 10) * 4096 : 0;
}

static void fill(void* q, size_t n, unsigned seed) {
  unsigned char* p = q;
  for (size_t i = 0; i < n; i += 509) p[i] = (unsigned char)(seed + i / 509);
  if (n) p[n - 1] = (unsigned char)(seed ^ 0xa5);
}
static bool intact(const void* q, size_t n, unsigned seed) {
  const unsigned char* p = q;
  for (size_t i = 0; i < n; i += 509) if (p[i] != (unsigned char)(seed + i / 509)) return false;
  return n == 0 || p[n - 1] == (unsigned char)(seed ^ 0xa5);
}
static bool prefix_intact(const void* q, size_t n, unsigned seed) {   /* fill()'s bytes below n */
  const unsigned char* p = q;
  for (size_t i = 0; i < n; i += 509) if (p[i] != (unsigned char)(seed + i / 509)) return false;
  return true;
}
static bool zeroed(const void* q, size_t n) {
  const unsigned char* p = q;
  for (size_t i = 0; i < n; i += 257) if (p[i]) return false;
  return n == 0 || p[n - 1] == 0;
}

static void knobs_set_caches(uint64_t seg_cache, uint64_t large_cache) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  k.segment_cache_bytes = seg_cache;
  if (k.segment_cache_dirty_bytes > seg_cache) k.segment_cache_dirty_bytes = seg_cache;
  k.large_cache_bytes = large_cache;
  CHECK_EQ(hak_knobs_publish(&k), 0);
}

/* ---- the fault hooks -------------------------------------------------------------------- */
static atomic_long map_calls;       /* map_aligned calls since arm_map() */
static atomic_long map_fail_at;     /* 0: none; else the call number that fails ... */
static atomic_int  map_fail_rest;   /* ... and with this set, every later one too */
static atomic_long maps_failed;
static atomic_int  refuse_unmap, refuse_decommit, refuse_mremap;
static atomic_long unmaps_refused, decommits_refused, mremaps_refused;

static void* f_map(size_t size, size_t align) {
  long n = atomic_fetch_add(&map_calls, 1) + 1;
  long at = atomic_load(&map_fail_at);
  if (at > 0 && (n == at || (n > at && atomic_load(&map_fail_rest)))) {
    atomic_fetch_add(&maps_failed, 1);
    return NULL;
  }
  return hak_prim_linux.map_aligned(size, align);
}
static bool f_unmap(void* p, size_t n) {
  if (atomic_load(&refuse_unmap)) { atomic_fetch_add(&unmaps_refused, 1); return false; }
  return hak_prim_linux.unmap(p, n);
}
static bool f_decommit(void* p, size_t n) {
  if (atomic_load(&refuse_decommit)) { atomic_fetch_add(&decommits_refused, 1); return false; }
  return hak_prim_linux.decommit(p, n);
}
static bool f_grow(void* p, size_t o, size_t n) {
  if (atomic_load(&refuse_mremap)) { atomic_fetch_add(&mremaps_refused, 1); return false; }
  return hak_prim_linux.grow_in_place(p, o, n);
}
static bool f_move(void* p, size_t o, void* to, size_t n) {
  if (atomic_load(&refuse_mremap)) { atomic_fetch_add(&mremaps_refused, 1); return false; }
  return hak_prim_linux.move(p, o, to, n);
}
static hak_prim_ops fault_ops;

static void hooks_on(void) {
  fault_ops = hak_prim_linux;
  fault_ops.map_aligned = f_map;
  fault_ops.unmap = f_unmap;
  fault_ops.decommit = f_decommit;
  fault_ops.grow_in_place = f_grow;
  fault_ops.move = f_move;
  hak_prim_set_ops(&fault_ops);
}
static void arm_map(long at, bool rest) {
  atomic_store(&map_calls, 0);
  atomic_store(&maps_failed, 0);
  atomic_store(&map_fail_rest, rest);
  atomic_store(&map_fail_at, at);
}
static void disarm(void) {
  atomic_store(&map_fail_at, 0);
  atomic_store(&refuse_unmap, 0);
  atomic_store(&refuse_decommit, 0);
  atomic_store(&refuse_mremap, 0);
}

/* ---- mmap failing at every entry point ------------------------------------------------------ */
enum { OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_ALIGNED_ALLOC, OP_POSIX_MEMALIGN, OP_MEMALIGN, OP_VALLOC,
       OP_PVALLOC };

typedef struct scenario {
  const char* name;
  int    op;
  size_t size;        /* bytes asked for (calloc: n * size with n = `align`) */
  size_t align;       /* aligned ops: the alignment; calloc: the count */
  size_t old;         /* realloc: the block's size before (allocated with the fault off) */
  bool   maps;        /* in a fresh process the call must map (a tier not used before) */
} scenario;

static const scenario scenarios[] = {
  {"malloc tiny",          OP_MALLOC, 24, 0, 0, true},
  {"malloc mid",           OP_MALLOC, 12000, 0, 0, true},   /* mid segments: 9-32 KiB */
  {"malloc pool",          OP_MALLOC, 100000, 0, 0, true},
  {"malloc large 3 MiB",   OP_MALLOC, 3 * MiB, 0, 0, true},
  {"malloc large 64 MiB",  OP_MALLOC, 64 * MiB, 0, 0, true},
  {"calloc tiny",          OP_CALLOC, 8, 3, 0, true},
  {"calloc mid",           OP_CALLOC, 40, 300, 0, true},
  {"calloc pool",          OP_CALLOC, 100, 1000, 0, true},
  {"calloc large",         OP_CALLOC, 4096, 1024, 0, true},
  {"realloc tiny grow",    OP_REALLOC, 200, 0, 24, false},
  {"realloc tiny->mid",    OP_REALLOC, 12000, 0, 100, true},
  {"realloc mid->pool",    OP_REALLOC, 200000, 0, 12000, true},
  {"realloc pool->large",  OP_REALLOC, 3 * MiB, 0, 200000, true},
  {"realloc tiny->large",  OP_REALLOC, 2 * MiB, 0, 64, true},
  {"realloc large grow",   OP_REALLOC, 9 * MiB, 0, 3 * MiB, false},
  {"realloc large->mid",   OP_REALLOC, 1000, 0, 3 * MiB, true},
  {"realloc large shrink", OP_REALLOC, 2 * MiB, 0, 9 * MiB, false},
  {"realloc mid shrink",   OP_REALLOC, 100, 0, 20000, true},
  {"aligned_alloc 64",     OP_ALIGNED_ALLOC, 100, 64, 0, true},
  {"aligned_alloc 4096",   OP_ALIGNED_ALLOC, 8192, 4096, 0, true},
  {"aligned_alloc 64 KiB", OP_ALIGNED_ALLOC, 100, 65536, 0, true},
  {"aligned_alloc 4 MiB",  OP_ALIGNED_ALLOC, 3 * MiB, 4 * MiB, 0, true},
  {"posix_memalign 256",   OP_POSIX_MEMALIGN, 1000, 256, 0, true},
  {"posix_memalign 64 KiB",OP_POSIX_MEMALIGN, 10, 65536, 0, true},
  {"posix_memalign large", OP_POSIX_MEMALIGN, 2 * MiB, 8192, 0, true},
  {"memalign 8192",        OP_MEMALIGN, 5, 8192, 0, true},
  {"memalign 512",         OP_MEMALIGN, 3000, 512, 0, true},
  {"valloc",               OP_VALLOC, 10000, 0, 0, true},
  {"valloc large",         OP_VALLOC, 5 * MiB, 0, 0, true},
  {"pvalloc",              OP_PVALLOC, 100, 0, 0, true},
};

/* Run the call; *rc gets posix_memalign's result (0 for the others). */
static void* run_op(const scenario* s, void* old, int* rc) {
  *rc = 0;
  switch (s->op) {
    case OP_MALLOC:  return hak_malloc(s->size);
    case OP_CALLOC:  return hak_calloc(s->align, s->size);
    case OP_REALLOC: return hak_realloc(old, s->size);
    case OP_ALIGNED_ALLOC: return hak_aligned_alloc(s->align, s->size);
    case OP_POSIX_MEMALIGN: {
      void* q = (void*)0x1;
      *rc = hak_posix_memalign(&q, s->align, s->size);
      return *rc == 0 ? q : NULL;
    }
    case OP_MEMALIGN: return hak_memalign(s->align, s->size);
    case OP_VALLOC:  return hak_valloc(s->size);
    default:         return hak_pvalloc(s->size);
  }
}
static size_t op_bytes(const scenario* s) { return s->op == OP_CALLOC ? s->size * s->align : s->size; }

/* Blocks allocated before the scenario's call: they must survive every failed attempt. */
static bool heap_meta_seen;   /* the thread's heap was set up inside a failed call */

typedef struct bystander { void* p; size_t n; } bystander;

/* One scenario: the fault at N = 1, 2, ... (`rest`: every map from N on fails). Returns
 * the number of attempts that failed as they should. */
static int run_scenario(const scenario* s, bool rest, bystander* by, int nby) {
  int failed_ok = 0;
  for (long n = 1; n <= 64; n++) {
    void* old = NULL;
    if (s->op == OP_REALLOC) {
      old = hak_malloc(s->old);
      CHECK_MSG(old != NULL, "%s: the block to reallocate", s->name);
      if (!old) return failed_ok;
      fill(old, s->old, 77);
    }
    hak_stats a = stats();
    size_t vm_a = vm_size();
    arm_map(n, rest);
    errno = 12345;
    int rc;
    void* q = run_op(s, old, &rc);
    int e = errno;
    long touched = atomic_load(&map_calls);
    if (getenv("HAK_FAULTS_DEBUG")) fprintf(stderr, "%s N=%ld rest=%d: touched %ld injected %ld q=%p\n", s->name, n, rest, touched, (long)atomic_load(&maps_failed), q);
    long injected = atomic_load(&maps_failed);
    disarm();
    size_t want = op_bytes(s);
    for (int i = 0; i < nby; i++) CHECK_MSG(intact(by[i].p, by[i].n, (unsigned)i), "%s N=%ld: block %d", s->name, n, i);
    if (q == NULL) {
      hak_stats b = stats();
      size_t vm_b = vm_size();
      CHECK_MSG(injected > 0, "%s N=%ld: NULL without an injected fault (errno %d)", s->name, n, e);
      if (s->op == OP_POSIX_MEMALIGN) {
        CHECK_MSG(rc == ENOMEM && e == 12345, "%s N=%ld: rc %d errno %d", s->name, n, rc, e);
      } else {
        CHECK_MSG(e == ENOMEM, "%s N=%ld: errno %d, want ENOMEM", s->name, n, e);
      }
      CHECK_MSG(b.bytes_held == a.bytes_held, "%s N=%ld: bytes_held %llu -> %llu", s->name, n,
                (unsigned long long)a.bytes_held, (unsigned long long)b.bytes_held);
      CHECK_MSG(b.bytes_in_use == a.bytes_in_use, "%s N=%ld: bytes_in_use %llu -> %llu", s->name, n,
                (unsigned long long)a.bytes_in_use, (unsigned long long)b.bytes_in_use);
      /* The first call of a thread sets up its heap (metadata mapped with hak_prim_map,
       * which is not hooked, and kept for the thread's life), also when the call then
       * fails: once per process here, at most 2 MiB (a region of the heap structs of
       * about 33 KiB that fit in 2 MiB). Every other failure, and the same failure repeated, leaves the
       * address space exactly as it was. */
      if (vm_b != vm_a && !heap_meta_seen && vm_b > vm_a && vm_b - vm_a <= 2 * MiB) {
        heap_meta_seen = true;
      } else {
        CHECK_MSG(vm_b == vm_a, "%s N=%ld: VmSize %zu -> %zu", s->name, n, vm_a, vm_b);
      }
      if (rest) {
        arm_map(1, true);
        errno = 0;
        size_t vm_c = vm_size();
        void* again = run_op(s, old, &rc);
        int e2 = errno;
        disarm();
        CHECK_MSG(again == NULL && (s->op == OP_POSIX_MEMALIGN ? rc == ENOMEM : e2 == ENOMEM),
                  "%s N=%ld: a repeated failure gave %p", s->name, n, again);
        if (again) hak_free(again);
        CHECK_MSG(vm_size() == vm_c, "%s N=%ld: a repeated failure grew VmSize %zu -> %zu", s->name, n, vm_c, vm_size());
        CHECK_EQ(stats().bytes_held, b.bytes_held);
      }
      if (old) {
        CHECK_MSG(intact(old, s->old, 77), "%s N=%ld: the block lost its contents", s->name, n);
        CHECK(hak_malloc_usable_size(old) >= s->old);
      }
      failed_ok++;
      /* the same call once the fault is gone */
      q = run_op(s, old, &rc);
      CHECK_MSG(q != NULL && rc == 0, "%s N=%ld: fails again without a fault", s->name, n);
    }
    if (q) {
      CHECK(hak_malloc_usable_size(q) >= want);
      if (s->align && s->op != OP_CALLOC) CHECK_ALIGNED(q, s->align);
      if (s->op == OP_VALLOC || s->op == OP_PVALLOC) CHECK_ALIGNED(q, 4096);
      if (s->op == OP_CALLOC) CHECK_MSG(zeroed(q, want), "%s N=%ld: calloc not zeroed", s->name, n);
      if (old) CHECK_MSG(s->old <= s->size ? intact(q, s->old, 77) : prefix_intact(q, s->size, 77),
                         "%s N=%ld: realloc lost the contents", s->name, n);
      fill(q, want, 5);
      CHECK(intact(q, want, 5));
      hak_free(q);
    } else if (old) {
      hak_free(old);
    }
    if (touched < n) {           /* the call never reached the fault: done */
      CHECK_MSG(injected == 0, "%s", s->name);
      break;
    }
  }
  return failed_ok;
}

typedef struct child_result { long passed, failed; int nfailed_ok; } child_result;

/* Run fn in a child of a process that has not called hakmem yet; its checks count here. */
static void in_child(void (*fn)(const void*), const void* arg, const char* what) {
  int fds[2];
  if (pipe(fds) != 0) { CHECK(!"pipe"); return; }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    ht_passed = ht_failed = 0;
    fn(arg);
    child_result r = {ht_passed, ht_failed, 0};
    if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  child_result r = {0, 0, 0};
  ssize_t got = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK_MSG(got == (ssize_t)sizeof r && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "%s: the child died (status %#x)", what, st);
  ht_passed += r.passed;
  ht_failed += r.failed;
}

static void scenario_child(const void* arg) {
  const scenario* s = arg;
  hooks_on();
  /* A pristine process with every map from the Nth on failing: the call fails at N = 1
   * where it needs a new segment. Then only the Nth map failing (a refill may retry and
   * succeed, which is fine). */
  int a = run_scenario(s, true, NULL, 0);
  int b = run_scenario(s, false, NULL, 0);
  if (s->maps) CHECK_MSG(a >= 1, "%s: no attempt failed (%d, %d)", s->name, a, b);
  hak_prim_set_ops(NULL);
}

static void test_mmap_fails_at_every_entry_point(void) {
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    in_child(scenario_child, &scenarios[i], scenarios[i].name);
  }
}

/* The first block of each tier, in order, with the blocks of the earlier tiers (and a
 * large one) alive and checked after every failed attempt. */
static void tiers_child(const void* arg) {
  (void)arg;
  hooks_on();
  static const scenario tiers[] = {
    {"first tiny", OP_MALLOC, 48, 0, 0, true},      {"first mid", OP_MALLOC, 9000, 0, 0, true},
    {"first pool", OP_MALLOC, 300000, 0, 0, true},  {"first large", OP_MALLOC, 6 * MiB, 0, 0, true},
    {"first aligned", OP_ALIGNED_ALLOC, 70000, 1 << 20, 0, true}, {"calloc again", OP_CALLOC, 64, 64, 0, false},
  };
  bystander by[6 * 8];
  int nby = 0;
  for (size_t t = 0; t < sizeof tiers / sizeof tiers[0]; t++) {
    int failed_ok = run_scenario(&tiers[t], true, by, nby);
    run_scenario(&tiers[t], false, by, nby);
    if (t < 4) CHECK_MSG(failed_ok >= 1, "%s: the first block of a tier did not map", tiers[t].name);
    for (int k = 0; k < 8; k++) {              /* bystanders of this tier for the next ones */
      size_t n = op_bytes(&tiers[t]) + (size_t)k;
      by[nby].p = hak_malloc(n);
      by[nby].n = n;
      CHECK(by[nby].p != NULL);
      if (by[nby].p) { fill(by[nby].p, n, (unsigned)nby); nby++; }
    }
  }
  for (int i = 0; i < nby; i++) { CHECK(intact(by[i].p, by[i].n, (unsigned)i)); hak_free(by[i].p); }
  hak_prim_set_ops(NULL);
}

static void test_mmap_fails_for_the_first_block_of_each_tier(void) {
  in_child(tiers_child, NULL, "tiers");
}

/* ---- munmap / madvise / mremap refused -------------------------------------------------------- */
enum { NB = 64 };
static void* keep[NB];
static size_t keep_n[NB];
static void keep_alloc(void) {
  for (int i = 0; i < NB; i++) {
    keep_n[i] = i % 4 == 0 ? 40 : i % 4 == 1 ? 3000 : i % 4 == 2 ? 70000 : 2 * MiB + 4096;
    keep[i] = hak_malloc(keep_n[i]);
    fill(keep[i], keep_n[i], (unsigned)i + 1000);
  }
}
static bool keep_intact(void) {
  for (int i = 0; i < NB; i++) if (!intact(keep[i], keep_n[i], (unsigned)i + 1000)) return false;
  return true;
}
static void keep_free(void) { for (int i = 0; i < NB; i++) hak_free(keep[i]); }

/* The large cache keeps nothing resident: a freed large block is decommitted at once. */
static void knobs_large_cache_clean(void) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  k.large_cache_dirty_bytes = 0;
  k.purge_delay_ms = 0;
  CHECK_EQ(hak_knobs_publish(&k), 0);
}

static void test_refused_madvise_large_free_and_trim(void) {
  hooks_on();
  keep_alloc();
  knobs_set_caches(256 * MiB, 64 * MiB);
  knobs_large_cache_clean();
  atomic_store(&refuse_decommit, 1);
  hak_stats a = stats();
  /* Freed large blocks the cache may not keep resident are decommitted: refused. */
  void* big[6];
  for (int i = 0; i < 6; i++) { big[i] = hak_malloc(8 * MiB); CHECK(big[i] != NULL); memset(big[i], 0xee, 8 * MiB); }
  for (int i = 0; i < 6; i++) hak_free(big[i]);
  hak_stats b = stats();
  CHECK_MSG(b.os_failures > a.os_failures, "os_failures %llu -> %llu", (unsigned long long)a.os_failures,
            (unsigned long long)b.os_failures);
  CHECK(atomic_load(&decommits_refused) > 0);
  /* Cached dirty after the refusal: calloc from the cache must still clear it. */
  for (int i = 0; i < 6; i++) {
    big[i] = hak_calloc(1, 8 * MiB);
    CHECK(big[i] != NULL && zeroed(big[i], 8 * MiB));
  }
  for (int i = 0; i < 6; i++) hak_free(big[i]);
  /* small blocks freed, then hak_trim with madvise refused: nothing given back, counted */
  void* p[400];
  for (int i = 0; i < 400; i++) { p[i] = hak_malloc(20000); fill(p[i], 20000, (unsigned)i); }
  for (int i = 0; i < 400; i += 2) hak_free(p[i]);
  hak_stats c = stats();
  size_t trimmed = hak_trim();
  hak_stats d = stats();
  CHECK_EQ(trimmed, 0);
  CHECK(d.os_failures > c.os_failures);
  CHECK_EQ(d.bytes_decommitted, c.bytes_decommitted);
  for (int i = 1; i < 400; i += 2) CHECK(intact(p[i], 20000, (unsigned)i));
  CHECK(keep_intact());
  disarm();
  trimmed = hak_trim();                      /* the same trim once madvise works */
  CHECK(trimmed > 0);
  for (int i = 1; i < 400; i += 2) { CHECK(intact(p[i], 20000, (unsigned)i)); hak_free(p[i]); }
  CHECK(keep_intact());
  keep_free();
  hak_prim_set_ops(NULL);
}

static void test_refused_munmap_loses_no_block(void) {
  hooks_on();
  keep_alloc();
  knobs_set_caches(0, 0);                    /* every release unmaps */
  atomic_store(&refuse_unmap, 1);
  /* large frees */
  for (int r = 0; r < 4; r++) {
    void* q = hak_malloc(3 * MiB);
    CHECK(q != NULL);
    fill(q, 3 * MiB, 9);
    hak_free(q);
    CHECK_EQ(hak_owns(q), 0);
  }
  /* a large realloc that gives its tail back */
  void* q = hak_malloc(9 * MiB);
  fill(q, 9 * MiB, 3);
  void* r = hak_realloc(q, 2 * MiB);
  CHECK(r != NULL && prefix_intact(r, 2 * MiB, 3));
  hak_free(r);
  /* segments emptied and released with no cache: the release walk unmaps them */
  void* m[600];
  for (int i = 0; i < 600; i++) { m[i] = hak_malloc(9000 + (size_t)(i % 5) * 1000); fill(m[i], 9000, (unsigned)i); }
  for (int i = 0; i < 600; i++) if (i % 50) hak_free(m[i]);
  hak_thread_flush();
  hak_release_all(0);
  for (int i = 0; i < 600; i += 50) CHECK(intact(m[i], 9000, (unsigned)i));
  CHECK(keep_intact());
  CHECK(atomic_load(&unmaps_refused) > 0);
  disarm();
  /* everything still works: the same sizes again, contents checked */
  for (int i = 0; i < 600; i++) if (i % 50) { m[i] = hak_malloc(9000); CHECK(m[i] != NULL); fill(m[i], 9000, (unsigned)i); }
  for (int i = 0; i < 600; i++) { CHECK(intact(m[i], 9000, (unsigned)i)); hak_free(m[i]); }
  q = hak_malloc(3 * MiB);
  CHECK(q != NULL);
  fill(q, 3 * MiB, 1);
  CHECK(intact(q, 3 * MiB, 1));
  hak_free(q);
  CHECK(keep_intact());
  keep_free();
  knobs_set_caches(256 * MiB, 64 * MiB);
  hak_prim_set_ops(NULL);
}

static void test_refused_mremap_large_realloc(void) {
  hooks_on();
  knobs_set_caches(256 * MiB, 64 * MiB);
  atomic_store(&refuse_mremap, 1);
  void* q = hak_malloc(3 * MiB);
  fill(q, 3 * MiB, 21);
  void* r = hak_realloc(q, 20 * MiB);        /* neither grow nor move: copied */
  CHECK(r != NULL && intact(r, 3 * MiB, 21));
  CHECK(atomic_load(&mremaps_refused) > 0);
  /* mremap refused and every map failing: NULL, ENOMEM, the block as it was */
  fill(r, 20 * MiB, 22);
  hak_stats a = stats();
  arm_map(1, true);
  errno = 0;
  void* s = hak_realloc(r, 60 * MiB);
  int e = errno;
  disarm();
  hak_stats b = stats();
  CHECK(s == NULL);
  CHECK_EQ(e, ENOMEM);
  CHECK_EQ(b.bytes_held, a.bytes_held);
  CHECK(intact(r, 20 * MiB, 22));
  s = hak_realloc(r, 60 * MiB);              /* and it works once the faults are gone */
  CHECK(s != NULL && intact(s, 20 * MiB, 22));
  hak_free(s);
  hak_prim_set_ops(NULL);
}

/* A smaller segment cut from a bigger cached one, the tail's munmap refused: the bigger
 * segment stays in the cache whole (handed out cut, its tail was mapped and registered
 * but part of no segment) and the request gets a new segment. In a child of a process
 * that has not allocated yet, so that the cache holds nothing of the size asked for. */
static void *pool_thread(void* arg) {
  (void)arg;
  void* p = hak_malloc(1000000);             /* the 1 MiB class: a 10 MiB pool segment */
  fill(p, 1000000, 7);
  hak_free(p);
  return NULL;                               /* its exit puts the segment in the cache */
}
static void refused_cut_child(const void* arg) {
  (void)arg;
  hak_opt_values[HAK_OPT_HEAP_PARK] = 0;     /* the thread's heap is torn down, not parked */
  pthread_t t;
  pthread_create(&t, NULL, pool_thread, NULL);
  pthread_join(t, NULL);
  hooks_on();
  hak_stats a = stats();
  atomic_store(&refuse_unmap, 1);
  void* q = hak_malloc(5000);                /* the first mid block: a 4 MiB segment */
  disarm();
  hak_stats b = stats();
  CHECK_MSG(atomic_load(&unmaps_refused) > 0, "no cut was tried (the cache held %llu bytes)",
            (unsigned long long)a.bytes_cached);
  CHECK(q != NULL);
  if (q) { fill(q, 5000, 3); CHECK(intact(q, 5000, 3)); }
  CHECK_MSG(b.bytes_cached == a.bytes_cached, "bytes_cached %llu -> %llu: the cut segment left the cache",
            (unsigned long long)a.bytes_cached, (unsigned long long)b.bytes_cached);
  CHECK_MSG(b.os_failures == a.os_failures + 1, "os_failures %llu -> %llu", (unsigned long long)a.os_failures,
            (unsigned long long)b.os_failures);
  hak_free(q);
  hak_prim_set_ops(NULL);
}
static void test_refused_cut_keeps_the_cached_segment(void) {
  in_child(refused_cut_child, NULL, "refused cut");
}

/* A refused munmap: counted, and the mapping the kernel kept is still held. */
static void test_refused_munmap_counted(void) {
  hooks_on();
  knobs_set_caches(0, 0);
  void* q = hak_malloc(3 * MiB);
  fill(q, 3 * MiB, 1);
  hak_stats a = stats();
  size_t vm_a = vm_size();
  atomic_store(&refuse_unmap, 1);
  hak_free(q);
  disarm();
  hak_stats b = stats();
  size_t vm_b = vm_size();
  CHECK(atomic_load(&unmaps_refused) > 0);
  CHECK_MSG(vm_b == vm_a, "the kernel kept the mapping: VmSize %zu -> %zu", vm_a, vm_b);
  CHECK_MSG(b.os_failures == a.os_failures + 1, "os_failures %llu -> %llu after a refused munmap",
            (unsigned long long)a.os_failures, (unsigned long long)b.os_failures);
  CHECK_MSG(b.bytes_held == a.bytes_held, "bytes_held %llu -> %llu although nothing was unmapped",
            (unsigned long long)a.bytes_held, (unsigned long long)b.bytes_held);
  knobs_set_caches(256 * MiB, 64 * MiB);
  hak_prim_set_ops(NULL);
}

/* ---- ACE: the thread failing to start ------------------------------------------------------ */
static hakmem_ace_state_t ace_st(void) {
  hakmem_ace_state_t s;
  s.size = sizeof s;
  CHECK_EQ(hakmem_ace_state_get(&s), 0);
  return s;
}
static void ace_enable(uint32_t on, uint32_t pmu) {
  hakmem_ace_config_t c;
  c.size = sizeof c;
  CHECK_EQ(hakmem_ace_config_get(&c), 0);
  c.enabled = on;
  c.start_delay_ms = 0;
  c.fast_interval_ms = 50;
  c.slow_interval_s = 1;
  c.max_cpu_percent = 100;
  c.max_p99_lat_ns = 0;
  c.pmu = pmu;
  CHECK_EQ(hakmem_ace_config(&c), 0);
}
/* Allocate, check and free blocks of every tier (returns false on a damaged block). */
static bool churn(int rounds) {
  bool ok = true;
  for (int r = 0; r < rounds; r++) {
    void* p[256];
    size_t n[256];
    for (int i = 0; i < 256; i++) {
      n[i] = i % 64 == 63 ? 2 * MiB : i % 8 == 7 ? 40000 : 16 + (size_t)(i * 37 % 3000);
      p[i] = hak_malloc(n[i]);
      if (!p[i]) { ok = false; continue; }
      fill(p[i], n[i], (unsigned)(i + r));
    }
    for (int i = 0; i < 256; i++) {
      if (p[i] && !intact(p[i], n[i], (unsigned)(i + r))) ok = false;
      hak_free(p[i]);
    }
    hak_thread_flush();
  }
  return ok;
}
static bool wait_mode(uint32_t mode, int ms) {
  for (int t = 0; t < ms; t += 10) {
    churn(1);
    if (ace_st().mode == mode) return true;
    sleep_ms(10);
  }
  return false;
}

/* thread.c: a failed pthread_create leaves the defaults in force and the allocator
 * working; a later slow path tries again (up to three failures in a row). */
static void test_ace_thread_fails_to_start(void) {
  keep_alloc();
  ace_enable(0, 0);
  hak_knobs before;
  before.size = sizeof before;
  CHECK_EQ(hak_knobs_get(&before), 0);
  ace_thread_fail_next_start();
  ace_enable(1, 0);
  /* FAILED lasts until the retry 500 ms later starts the thread: a churn slowed by a
   * sanitizer on a busy machine can miss it, while the reason stays. */
  bool failed = false;
  for (int t = 0; t < 3000 && !failed; t += 10) {
    churn(1);
    hakmem_ace_state_t st = ace_st();
    failed = st.mode == HAKMEM_ACE_MODE_FAILED || strstr(st.last_reason, "could not be started") != NULL;
    if (!failed) sleep_ms(10);
  }
  CHECK(failed);
  CHECK_MSG(strstr(ace_st().last_reason, "could not be started") != NULL, "%s", ace_st().last_reason);
  hak_knobs after;
  after.size = sizeof after;
  CHECK_EQ(hak_knobs_get(&after), 0);
  CHECK(memcmp(after.tls_cap, before.tls_cap, sizeof after.tls_cap) == 0);
  CHECK(keep_intact());
  CHECK(churn(3));                           /* the allocator works on, and the next try starts it */
  CHECK(wait_mode(HAKMEM_ACE_MODE_STEERING, 3000));
  CHECK_EQ(stats().ace, 1);
  CHECK(churn(3));
  ace_enable(0, 0);
  CHECK_EQ(stats().ace, 0);
  CHECK(keep_intact());
  keep_free();
}

/* ---- seccomp: refuse a system call with an errno ---------------------------------------------- */
static bool seccomp_refuse(int nr, int err) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/* ---- the PMU failing to open ------------------------------------------------------------------- */
static void pmu_child(const void* arg) {
  uint32_t pmu = (uint32_t)(uintptr_t)arg;
  CHECK(seccomp_refuse(SYS_perf_event_open, EACCES));
  CHECK(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0) < 0 && errno == EACCES);
  keep_alloc();
  ace_enable(1, pmu);
  CHECK(wait_mode(HAKMEM_ACE_MODE_STEERING, 3000));
  hakmem_ace_state_t s0 = ace_st();
  sleep_ms(200);
  CHECK(churn(4));
  hakmem_ace_state_t s1 = ace_st();
  /* No perf event could be opened: software mode needs none (getrusage counts the page
   * faults), so auto and software give it; off stays off. */
  CHECK_EQ(s1.pmu_mode, pmu == 0 ? 0u : 1u);
  CHECK_EQ(s1.mode, HAKMEM_ACE_MODE_STEERING);
  CHECK_MSG(s1.fast_ticks > s0.fast_ticks, "ticks %llu -> %llu", (unsigned long long)s0.fast_ticks,
            (unsigned long long)s1.fast_ticks);
  CHECK(keep_intact());
  ace_enable(0, pmu);
  keep_free();
}

static void test_pmu_fails_to_open(void) {
  for (uintptr_t pmu = 0; pmu <= 2; pmu++) in_child(pmu_child, (const void*)pmu, "pmu");
}

/* HAKMEM_ACE_PMU in the environment of a re-executed copy of this program (the options
 * are read once at start-up); the copy runs `--pmu-exec` (main) under the filter. */
static int pmu_exec_main(void) {
  ht_passed = ht_failed = 0;
  keep_alloc();
  CHECK(wait_mode(HAKMEM_ACE_MODE_STEERING, 3000));
  sleep_ms(200);
  CHECK(churn(4));
  const char* want = getenv("HAKMEM_ACE_PMU");
  uint32_t mode = want && strcmp(want, "off") == 0 ? 0 : 1;   /* perf refused: software, by getrusage */
  CHECK_EQ(ace_st().pmu_mode, mode);
  CHECK_EQ(stats().pmu_mode, mode);
  CHECK(keep_intact());
  keep_free();
  printf("pmu-exec %s: %ld passed, %ld failed\n", getenv("HAKMEM_ACE_PMU"), ht_passed, ht_failed);
  return ht_failed == 0 && ht_passed > 0 ? 0 : 1;
}

static void test_pmu_env_variants_fail_to_open(void) {
  static const char* modes[] = {"auto", "software", "off", "2"};
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  CHECK(n > 0);
  if (n <= 0) return;
  exe[n] = 0;
  for (int i = 0; i < 4; i++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      if (!seccomp_refuse(SYS_perf_event_open, EACCES)) _exit(4);
      setenv("HAKMEM_ACE_PMU", modes[i], 1);
      setenv("HAKMEM_ACE_ENABLED", "1", 1);
      setenv("HAKMEM_ACE_START_DELAY_MS", "0", 1);
      setenv("HAKMEM_ACE_FAST_INTERVAL_MS", "50", 1);
      setenv("HAKMEM_ACE_MAX_CPU_PERCENT", "100", 1);
      execl(exe, exe, "--pmu-exec", (char*)NULL);
      _exit(5);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "HAKMEM_ACE_PMU=%s: status %#x", modes[i], st);
  }
}

/* ---- /proc unreadable ------------------------------------------------------------------------- */
/* The allocator, its statistics, trim and the ACE thread (with an RSS guard, which reads
 * /proc) in a process that cannot read /proc/self/statm. */
static void proc_gone_checks(void) {
  int fd = open("/proc/self/statm", O_RDONLY);
  CHECK_MSG(fd < 0, "/proc/self/statm is still readable");
  if (fd >= 0) close(fd);
  keep_alloc();
  CHECK(churn(4));
  hak_stats st = stats();
  CHECK_EQ(st.rss_bytes, 0);                 /* unknown, said as 0 */
  CHECK(st.bytes_held > 0);
  char json[8192];
  CHECK(hak_stats_json(json, sizeof json) > 0 && strstr(json, "\"rss_bytes\"") != NULL);
  hakmem_ace_config_t c;
  c.size = sizeof c;
  CHECK_EQ(hakmem_ace_config_get(&c), 0);
  c.enabled = 1; c.start_delay_ms = 0; c.fast_interval_ms = 50; c.slow_interval_s = 1;
  c.max_cpu_percent = 100; c.max_p99_lat_ns = 0; c.pmu = 2; c.max_rss_bytes = 1ull << 30;
  CHECK_EQ(hakmem_ace_config(&c), 0);
  CHECK(wait_mode(HAKMEM_ACE_MODE_STEERING, 3000));
  hakmem_ace_state_t s0 = ace_st();
  for (int i = 0; i < 12; i++) { CHECK(churn(1)); sleep_ms(100); }   /* past one slow tick */
  hakmem_ace_state_t s1 = ace_st();
  CHECK(s1.slow_ticks > s0.slow_ticks);
  CHECK_EQ(s1.mode, HAKMEM_ACE_MODE_STEERING);   /* an unknown RSS does not trip the guard */
  void* p[100];
  for (int i = 0; i < 100; i++) { p[i] = hak_malloc(30000); fill(p[i], 30000, (unsigned)i); }
  for (int i = 0; i < 100; i += 2) hak_free(p[i]);
  hak_trim();
  for (int i = 1; i < 100; i += 2) { CHECK(intact(p[i], 30000, (unsigned)i)); hak_free(p[i]); }
  c.enabled = 0;
  CHECK_EQ(hakmem_ace_config(&c), 0);
  CHECK(keep_intact());
  keep_free();
}

static void proc_mount_child(const void* arg) {
  (void)arg;
  bool ns = unshare(CLONE_NEWNS) == 0;
  if (!ns && unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) {
    int fd = open("/proc/self/setgroups", O_WRONLY);
    if (fd >= 0) { (void)!write(fd, "deny", 4); close(fd); }
    fd = open("/proc/self/uid_map", O_WRONLY);
    if (fd >= 0) { (void)!write(fd, "0 0 1", 5); close(fd); }
    ns = true;
  }
  /* Private first, so nothing mounted here reaches the parent's namespace. */
  if (!ns || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("none", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k") != 0) {
    printf("    skipped: no private mount namespace here (%s)\n", strerror(errno));
    ht_passed++;
    return;
  }
  proc_gone_checks();
}

static void proc_seccomp_child(const void* arg) {
  (void)arg;
  CHECK(seccomp_refuse(SYS_openat, EACCES) && seccomp_refuse(SYS_open, EACCES));
  proc_gone_checks();
}

static void test_proc_unreadable(void) {
  in_child(proc_mount_child, NULL, "/proc under tmpfs");
  in_child(proc_seccomp_child, NULL, "open refused");
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  for (int i = 1; i < argc; i++) if (strcmp(argv[i], "--pmu-exec") == 0) return pmu_exec_main();
  /* The children forked by these two must find hakmem untouched: they run first. */
  HT_RUN(test_mmap_fails_at_every_entry_point);
  HT_RUN(test_mmap_fails_for_the_first_block_of_each_tier);
  HT_RUN(test_refused_cut_keeps_the_cached_segment);
  HT_RUN(test_pmu_fails_to_open);
  HT_RUN(test_proc_unreadable);
  HT_RUN(test_pmu_env_variants_fail_to_open);
  HT_RUN(test_refused_madvise_large_free_and_trim);
  HT_RUN(test_refused_munmap_loses_no_block);
  HT_RUN(test_refused_mremap_large_realloc);
  HT_RUN(test_ace_thread_fails_to_start);
  HT_RUN(test_refused_munmap_counted);
  return ht_report();
}
