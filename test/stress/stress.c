/* stress.c — multi-threaded allocator stress: transfers, thread churn, fork.
 *
 *   stress [THREADS [SCALE [ITERATIONS]]] [--smoke] [--phase=transfer|churn|fork|forkhard|all]
 *          [--churn=N] [--forks=N] [--forks-hard=N] [--rss-limit=MiB] [--no-rss-check] [--seed=S]
 *          [--soak=SECONDS] [--soak-slack=MiB] [--phase=soak]
 *
 * transfer  ITERATIONS rounds; each round starts THREADS threads that allocate
 *           random sizes (mostly tiny, some mid/pool/large), write a pattern that
 *           depends on the block, check it before every free, and pass about a
 *           quarter of their blocks to other threads through shared atomic slots.
 *           The slots outlive the round, so blocks are freed by threads other than
 *           the (maybe exited) thread that allocated them.  SCALE sets the live
 *           set per thread (10*SCALE slots) and the work (500*SCALE ops a round).
 * churn     N (default 20,000) short-lived threads, 2-8 alive at a time; each
 *           frees a block the main thread handed it, does a few allocations and
 *           returns one block to the main thread.  VmRSS may grow by at most
 *           --rss-limit MiB (default 1: docs/design.md promises under 1 MiB of
 *           growth) over the first or the second half of the threads after the
 *           first 1,000 (memory kept per thread grows in both).
 * fork      THREADS/2+1 threads allocate in a loop while the main thread forks
 *           --forks times (default 50); each child frees inherited blocks,
 *           allocates in every tier and _exit(0)s, with an alarm so that a
 *           deadlock is a failure.  Every child must exit 0.
 * forkhard  the same, with the other threads kept in the slow paths: THREADS/2+1 (at
 *           least 2) threads allocate, grow (mremap) and free large blocks, cycle pool blocks
 *           (one-block thread caches: every free flushes, every malloc refills) and
 *           trade blocks through shared slots (remote frees), while one more thread
 *           starts and ends short-lived threads (heap set-up and teardown, abandoned
 *           segments).  The main thread forks --forks-hard times (default 100) back to
 *           back; each child frees inherited blocks of the other threads, allocates
 *           and reallocates in every tier, starts a thread (not under ASan/TSan), and
 *           exits 0 (exit() or _exit() in turn with the libc names).  The parent
 *           checks every child's status.
 * soak      --soak=SECONDS (default 10; the environment's HAK_SOAK_SECONDS overrides it,
 *           and with it or --soak the soak also ends a full run): THREADS workers allocate
 *           (malloc, calloc checked for zeros, aligned_alloc), free, reallocate across tiers
 *           (the moved prefix checked) and trade blocks through shared slots (remote
 *           frees); tiny (16..32 B), every tier and huge (2..10 MiB) sizes; one more thread
 *           starts and joins short-lived threads; the main thread forks a child every
 *           300 ms (frees inherited blocks, allocates in every tier, exits 0) and samples
 *           VmRSS 10 times a second: it must stay under (the largest live bytes of the last
 *           second, or hakmem's bytes in use by usable size if more) x 2 + 64 MiB
 *           (--soak-slack) + VmRSS at the start + what hakmem reports it keeps for
 *           reuse (bytes_unused_resident). Every block is checked
 *           before it is freed.
 *
 * Deterministic: every thread's PRNG (splitmix64) is seeded from --seed, the
 * round and the thread index (the interleaving of course is not).
 * The same source builds against the libc names (default) or, with
 * HAK_STRESS_HAK_API, against hak_malloc & co.  The idea follows mimalloc's
 * test-stress; the code is hakmem's own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hak_test.h"
#include "hakmem_stats.h"

/* hakmem's statistics when hakmem is linked in (the stress and stress_hak builds); a
 * plain build (stress_plain, other allocators) has none. */
extern int hak_stats_get(hak_stats* out) __attribute__((weak));

/* From hakmem's statistics (0 without hakmem): resident bytes it keeps on purpose for
 * reuse (cached mappings and segments, unused slabs; each within a knob's budget and
 * returned on a time curve), and the bytes the program holds by usable size (a large
 * block reused from a bigger cached mapping is usable, and may be resident, beyond the
 * size asked for). In KiB. */
static void hakmem_view_kib(long* kept, long* in_use) {
  *kept = *in_use = 0;
  if (!hak_stats_get) return;
  hak_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  if (hak_stats_get(&s) != 0) return;
  *kept = (long)(s.bytes_unused_resident / 1024);
  *in_use = (long)(s.bytes_in_use / 1024);
}

#ifdef HAK_STRESS_HAK_API
#include "hakmem.h"
#define S_MALLOC(n)          hak_malloc(n)
#define S_FREE(p)            hak_free(p)
#define S_CALLOC(n, s)       hak_calloc(n, s)
#define S_REALLOC(p, n)      hak_realloc(p, n)
#define S_ALIGNED(a, n)      hak_aligned_alloc(a, n)
#define S_USABLE(p)          hak_malloc_usable_size(p)
#define S_NAME               "hak_* API"
#else
#include <malloc.h>
#define S_MALLOC(n)          malloc(n)
#define S_FREE(p)            free(p)
#define S_CALLOC(n, s)       calloc(n, s)
#define S_REALLOC(p, n)      realloc(p, n)
#define S_ALIGNED(a, n)      aligned_alloc(a, n)
#define S_USABLE(p)          malloc_usable_size(p)
#define S_NAME               "libc names"
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ---- options ------------------------------------------------------------------- */

static int opt_threads = 8;
static int opt_scale = 50;
static int opt_iter = 10;
static long opt_churn = 20000;
static int opt_forks = 50;
static int opt_forks_hard = 100;
static long opt_rss_limit_mib = 1;   /* measured: +200..600 KiB over 20,000 threads */
static int opt_rss_check = 1;
static uint64_t opt_seed = 42;
static const char* opt_phase = "all";
static long opt_soak = 0;              /* --soak=SECONDS (HAK_SOAK_SECONDS overrides) */
static long opt_soak_rss_factor = 2;   /* soak: VmRSS <= live bytes x this + slack + start */
static long opt_soak_rss_slack_mib = 64;

/* ---- PRNG ------------------------------------------------------------------------ */

static inline uint64_t sm64(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* mostly tiny, some mid, few pool, rare large */
static size_t pick_size(uint64_t* rng) {
  uint64_t r = sm64(rng);
  unsigned pct = (unsigned)(r % 1000);
  r >>= 10;
  if (pct < 800) return 1 + r % 1024;                        /* tiny: 80 % */
  if (pct < 945) return 1025 + r % (32 * KiB - 1024);        /* mid: 14.5 % */
  if (pct < 995) return 32 * KiB + 1 + r % (1 * MiB - 32 * KiB); /* pool: 5 % */
  return MiB + 1 + r % (3 * MiB);                            /* large: 0.5 % */
}

/* ---- blocks with a self-describing pattern ----------------------------------------
 * Blocks of >= 16 bytes carry their size and a cookie in the first 16 bytes, so any
 * thread can check them.  Byte i >= 16 is (cookie + i * 31) mod 256.  Blocks above
 * 4 KiB are written and checked sparsely (head, every 4 KiB, tail) to keep the run
 * about the allocator, not memset. */

#define HDR 16

static inline uint8_t pbyte(uint64_t cookie, size_t i) { return (uint8_t)(cookie + i * 31 + (i >> 9)); }

/* every page up to 256 KiB, then every 16th page (page faults are slow on VMs) */
static inline size_t sparse_step(size_t i) { return i < 256 * KiB ? 4096 : 64 * KiB; }

__attribute__((noinline)) static void block_fill(uint8_t* p, size_t n, uint64_t cookie) {
  if (n < HDR) {
    for (size_t i = 0; i < n; i++) p[i] = pbyte(cookie, i);
    return;
  }
  memcpy(p, &n, 8);
  memcpy(p + 8, &cookie, 8);
  if (n <= 4096) {
    for (size_t i = HDR; i < n; i++) p[i] = pbyte(cookie, i);
  } else {
    for (size_t i = HDR; i < 512; i++) p[i] = pbyte(cookie, i);
    for (size_t i = 4096; i < n; i += sparse_step(i)) p[i] = pbyte(cookie, i);
    for (size_t i = n - 64; i < n; i++) p[i] = pbyte(cookie, i);
  }
}

/* 0 when intact; else 1 and a message.  For n < HDR the caller passes size and cookie. */
static int block_check(const uint8_t* p, size_t n, uint64_t cookie, const char* where) {
  size_t bad = SIZE_MAX;
  if (n >= HDR) {
    size_t hn;
    uint64_t hc;
    memcpy(&hn, p, 8);
    memcpy(&hc, p + 8, 8);
    if (hn != n || hc != cookie) {
      fprintf(stderr, "stress: %s: block %p header corrupt (size %zu/%zu, cookie %llx/%llx)\n",
              where, (const void*)p, hn, n, (unsigned long long)hc, (unsigned long long)cookie);
      return 1;
    }
    if (n <= 4096) {
      for (size_t i = HDR; i < n && bad == SIZE_MAX; i++) if (p[i] != pbyte(cookie, i)) bad = i;
    } else {
      for (size_t i = HDR; i < 512 && bad == SIZE_MAX; i++) if (p[i] != pbyte(cookie, i)) bad = i;
      for (size_t i = 4096; i < n && bad == SIZE_MAX; i += sparse_step(i)) if (p[i] != pbyte(cookie, i)) bad = i;
      for (size_t i = n - 64; i < n && bad == SIZE_MAX; i++) if (p[i] != pbyte(cookie, i)) bad = i;
    }
  } else {
    for (size_t i = 0; i < n && bad == SIZE_MAX; i++) if (p[i] != pbyte(cookie, i)) bad = i;
  }
  if (bad != SIZE_MAX) {
    fprintf(stderr, "stress: %s: block %p (%zu bytes) corrupt at byte %zu: %#x, expected %#x\n",
            where, (const void*)p, n, bad, p[bad], pbyte(cookie, bad));
    return 1;
  }
  return 0;
}

/* A self-describing block can be checked knowing only its address. */
static int block_check_self(const uint8_t* p, const char* where) {
  size_t n;
  uint64_t c;
  memcpy(&n, p, 8);
  memcpy(&c, p + 8, 8);
  if (n < HDR || n > 64 * MiB) {
    fprintf(stderr, "stress: %s: block %p has a bad size word %zu\n", where, (const void*)p, n);
    return 1;
  }
  return block_check(p, n, c, where);
}

/* ---- shared failure counter (threads cannot use CHECK: its counters are plain) ---- */

static atomic_long g_fail;
static atomic_long g_ops;

static void fail_if(int bad) {
  if (bad) atomic_fetch_add(&g_fail, 1);
}

/* ---- phase 1: transfers ------------------------------------------------------------ */

#define NTRANSFER 1024
static _Atomic(uint8_t*) g_transfer[NTRANSFER];

typedef struct {
  uint8_t* p;
  size_t n;
  uint64_t cookie;
} slot_t;

typedef struct {
  int tid;
  int round;
} worker_arg;

static void slot_release(slot_t* s, const char* where) {
  if (!s->p) return;
  fail_if(block_check(s->p, s->n, s->cookie, where));
  S_FREE(s->p);
  s->p = NULL;
}

static void* transfer_worker(void* argp) {
  worker_arg* a = (worker_arg*)argp;
  uint64_t rng = opt_seed ^ ((uint64_t)a->round << 32) ^ ((uint64_t)a->tid * 0x1234567ull);
  size_t nslots = (size_t)opt_scale * 10;
  long ops = (long)opt_scale * 500;
  slot_t* slots = (slot_t*)calloc(nslots, sizeof(slot_t));  /* bookkeeping: not under test */
  if (!slots) { fail_if(1); return NULL; }
  for (long op = 0; op < ops; op++) {
    uint64_t r = sm64(&rng);
    slot_t* s = &slots[r % nslots];
    unsigned what = (unsigned)((r >> 32) % 100);
    if (s->p) {
      if (what < 10 && s->n >= HDR) {
        /* realloc: the prefix survives, the block is rewritten at its new size */
        fail_if(block_check(s->p, s->n, s->cookie, "before realloc"));
        size_t nn = pick_size(&rng);
        if (nn < HDR) nn = HDR;
        uint8_t* q = (uint8_t*)S_REALLOC(s->p, nn);
        if (!q) { fail_if(1); fprintf(stderr, "stress: realloc(%zu) failed\n", nn); continue; }
        size_t hn;
        memcpy(&hn, q, 8);
        fail_if(hn != s->n);  /* the header moved with the data */
        s->p = q;
        s->n = nn;
        s->cookie = sm64(&rng);
        block_fill(q, nn, s->cookie);
      } else {
        slot_release(s, "free");
      }
      continue;
    }
    size_t n = pick_size(&rng);
    uint8_t* p;
    if (what < 5) {
      p = (uint8_t*)S_CALLOC(1, n);
      if (p) {
        size_t lim = n < 4096 ? n : 4096;
        for (size_t i = 0; i < lim; i++)
          if (p[i]) { fail_if(1); fprintf(stderr, "stress: calloc(%zu) byte %zu not zero\n", n, i); break; }
      }
    } else if (what < 8) {
      size_t al = (size_t)16 << (r % 9);
      p = (uint8_t*)S_ALIGNED(al, n);
      if (p && ((uintptr_t)p & (al - 1))) { fail_if(1); fprintf(stderr, "stress: aligned_alloc(%zu) misaligned %p\n", al, (void*)p); }
    } else {
      p = (uint8_t*)S_MALLOC(n);
    }
    if (!p) { fail_if(1); fprintf(stderr, "stress: allocation of %zu failed\n", n); continue; }
    if (S_USABLE(p) < n) { fail_if(1); fprintf(stderr, "stress: usable %zu < %zu\n", S_USABLE(p), n); }
    uint64_t cookie = sm64(&rng);
    block_fill(p, n, cookie);
    if (what >= 75 && n >= HDR) {
      /* hand it to whichever thread next touches this transfer slot */
      uint8_t* old = atomic_exchange_explicit(&g_transfer[(r >> 20) % NTRANSFER], p, memory_order_acq_rel);
      if (old) {
        fail_if(block_check_self(old, "received block"));
        if ((r >> 40) & 1) {
          S_FREE(old);
        } else {
          /* keep it: it will be freed later by this thread, or passed on again */
          size_t on;
          uint64_t oc;
          memcpy(&on, old, 8);
          memcpy(&oc, old + 8, 8);
          s->p = old;
          s->n = on;
          s->cookie = oc;
        }
      }
    } else {
      s->p = p;
      s->n = n;
      s->cookie = cookie;
    }
  }
  atomic_fetch_add(&g_ops, ops);
  /* leave about a tenth of the live blocks in the transfer slots for the next round */
  for (size_t i = 0; i < nslots; i++) {
    if (slots[i].p && slots[i].n >= HDR && i % 10 == 0) {
      uint8_t* old = atomic_exchange_explicit(&g_transfer[(i * 7 + (size_t)a->tid) % NTRANSFER], slots[i].p,
                                              memory_order_acq_rel);
      slots[i].p = NULL;
      if (old) { fail_if(block_check_self(old, "received block at exit")); S_FREE(old); }
    }
    slot_release(&slots[i], "free at exit");
  }
  free(slots);
  return NULL;
}

static void drain_transfers(void) {
  for (int i = 0; i < NTRANSFER; i++) {
    uint8_t* p = atomic_exchange(&g_transfer[i], NULL);
    if (p) { fail_if(block_check_self(p, "drained block")); S_FREE(p); }
  }
}

static void phase_transfer(void) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t* th = (pthread_t*)calloc((size_t)opt_threads, sizeof(pthread_t));
  worker_arg* args = (worker_arg*)calloc((size_t)opt_threads, sizeof(worker_arg));
  long before = atomic_load(&g_fail);
  for (int round = 0; round < opt_iter; round++) {
    for (int t = 0; t < opt_threads; t++) {
      args[t].tid = t;
      args[t].round = round;
      int rc = pthread_create(&th[t], NULL, transfer_worker, &args[t]);
      CHECK_MSG(rc == 0, "pthread_create: %s", strerror(rc));
    }
    for (int t = 0; t < opt_threads; t++) pthread_join(th[t], NULL);
  }
  drain_transfers();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long fails = atomic_load(&g_fail) - before;
  CHECK_MSG(fails == 0, "transfer phase: %ld corrupt or failed blocks", fails);
  printf("transfer: %d threads x %d rounds, %ld ops, %.2f s\n", opt_threads, opt_iter,
         atomic_load(&g_ops), (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
  free(th);
  free(args);
}

/* ---- phase 2: thread churn --------------------------------------------------------- */

static long vm_rss_kib(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) { kib = strtol(line + 6, NULL, 10); break; }
  fclose(f);
  return kib;
}

typedef struct {
  uint8_t* gift;  /* a block from the main thread, to check and free */
  uint64_t seed;
} churn_arg;

static void* churn_thread(void* argp) {
  churn_arg* a = (churn_arg*)argp;
  uint64_t rng = a->seed;
  if (a->gift) {
    fail_if(block_check_self(a->gift, "gift from main"));
    S_FREE(a->gift);
  }
  void* v[12];
  for (int i = 0; i < 12; i++) {
    size_t n = (i < 9) ? 1 + sm64(&rng) % 1024 : (i == 9 ? 2000 + sm64(&rng) % 30000 : 40000 + sm64(&rng) % 200000);
    v[i] = S_MALLOC(n);
    if (!v[i]) { fail_if(1); continue; }
    memset(v[i], i, n < 256 ? n : 256);
  }
  for (int i = 0; i < 12; i += 2) S_FREE(v[i]);
  for (int i = 1; i < 12; i += 2) S_FREE(v[i]);
  size_t n = HDR + sm64(&rng) % 3000;
  uint8_t* out = (uint8_t*)S_MALLOC(n);
  if (out) block_fill(out, n, sm64(&rng));
  return out;
}

static void phase_churn(void) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t rng = opt_seed * 77 + 1;
  long created = 0, base_kib = -1, mid_kib = -1, fails_before = atomic_load(&g_fail);
  long create_errors = 0;
  pthread_t th[8];
  churn_arg args[8];
  long checkpoint = opt_churn < 2000 ? opt_churn / 2 : 1000;
  long midpoint = checkpoint + (opt_churn - checkpoint) / 2;
  while (created < opt_churn) {
    int batch = 2 + (int)(sm64(&rng) % 7);
    if (batch > opt_churn - created) batch = (int)(opt_churn - created);
    int started = 0;
    for (int i = 0; i < batch; i++) {
      size_t gn = HDR + sm64(&rng) % 500;
      args[i].gift = (uint8_t*)S_MALLOC(gn);
      if (args[i].gift) block_fill(args[i].gift, gn, sm64(&rng));
      args[i].seed = sm64(&rng);
      int rc = pthread_create(&th[i], NULL, churn_thread, &args[i]);
      if (rc != 0) {
        if (create_errors++ < 3) fprintf(stderr, "stress: pthread_create: %s\n", strerror(rc));
        S_FREE(args[i].gift);
        break;
      }
      started++;
    }
    for (int i = 0; i < started; i++) {
      void* r = NULL;
      pthread_join(th[i], &r);
      if (!r) { fail_if(1); continue; }
      fail_if(block_check_self((uint8_t*)r, "block from a churn thread"));
      S_FREE(r);
    }
    if (started == 0) break;
    long prev = created;
    created += started;
    if (prev < checkpoint && created >= checkpoint) base_kib = vm_rss_kib();
    if (prev < midpoint && created >= midpoint) mid_kib = vm_rss_kib();
  }
  long end_kib = vm_rss_kib();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK_MSG(create_errors == 0, "pthread_create failed %ld times", create_errors);
  CHECK_MSG(created == opt_churn, "only %ld of %ld threads ran", created, opt_churn);
  long fails = atomic_load(&g_fail) - fails_before;
  CHECK_MSG(fails == 0, "churn phase: %ld corrupt or failed blocks", fails);
  printf("churn: %ld threads, %.2f s, VmRSS %ld KiB after %ld threads, %ld KiB after %ld, %ld KiB at the end "
         "(+%ld KiB, +%ld KiB)\n",
         created, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, base_kib, checkpoint, mid_kib,
         midpoint, end_kib, mid_kib - base_kib, end_kib - mid_kib);
  if (opt_rss_check) {
    /* Memory kept per thread grows in both halves alike; a one-off step (the ACE thread
     * starting, a cache or glibc's stack cache filling up) lands in one of them. */
    CHECK(base_kib > 0 && mid_kib > 0 && end_kib > 0);
    long first = mid_kib - base_kib, second = end_kib - mid_kib;
    long grew = first < second ? first : second;
    CHECK_MSG(grew <= opt_rss_limit_mib * 1024,
              "VmRSS grew by %ld KiB and then by %ld KiB over two halves of the churn (limit %ld MiB each): "
              "thread caches not returned?", first, second, opt_rss_limit_mib);
  }
}

/* ---- phase 3: fork while other threads allocate ------------------------------------ */

static atomic_int g_stop;
static uint8_t* g_prefork[4];
static const size_t g_prefork_size[4] = {48, 3000, 100000, 2 * MiB + 5};

static void* fork_worker(void* argp) {
  uint64_t rng = opt_seed ^ (uint64_t)(uintptr_t)argp * 991;
  enum { N = 64 };
  slot_t s[N];
  memset(s, 0, sizeof s);
  long ops = 0;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    uint64_t r = sm64(&rng);
    slot_t* x = &s[r % N];
    if (x->p) {
      slot_release(x, "fork worker free");
    } else {
      size_t n = pick_size(&rng);
      if (n > MiB && (r >> 50) % 4) n = 1 + n % 4096;  /* keep the large share modest */
      x->p = (uint8_t*)S_MALLOC(n);
      if (!x->p) { fail_if(1); continue; }
      x->n = n;
      x->cookie = sm64(&rng);
      block_fill(x->p, n, x->cookie);
      if (n >= HDR && (r >> 8) % 8 == 0) {
        uint8_t* old = atomic_exchange(&g_transfer[(r >> 16) % NTRANSFER], x->p);
        x->p = NULL;
        if (old) { fail_if(block_check_self(old, "fork worker received")); S_FREE(old); }
      }
    }
    ops++;
  }
  for (int i = 0; i < N; i++) slot_release(&s[i], "fork worker exit");
  atomic_fetch_add(&g_ops, ops);
  return NULL;
}

/* The child: only async-signal-safe-ish work plus the allocator (that is the point). */
static void fork_child(int k) {
  alarm(10);
  int bad = 0;
  /* blocks inherited from the parent's main thread and from the worker threads */
  for (int i = 0; i < 4; i++) bad |= block_check(g_prefork[i], g_prefork_size[i], 0xf0f0 + (uint64_t)i, "child: inherited");
  S_FREE(g_prefork[k % 4]);
  for (int i = 0; i < 8; i++) {
    uint8_t* p = atomic_exchange(&g_transfer[(k * 13 + i * 101) % NTRANSFER], NULL);
    if (p) { bad |= block_check_self(p, "child: inherited transfer"); S_FREE(p); }
  }
  uint64_t rng = opt_seed + (uint64_t)k;
  static const size_t tiers[] = {1, 16, 200, 1024, 1025, 8000, 32769, 300000, MiB + 1, 3 * MiB};
  void* v[20];
  for (int i = 0; i < 20; i++) {
    size_t n = tiers[i % 10] + sm64(&rng) % 16;
    v[i] = S_MALLOC(n);
    if (!v[i]) { bad = 1; continue; }
    block_fill((uint8_t*)v[i], n, 7);
    if (i % 3 == 0 && n < MiB) {
      void* q = S_REALLOC(v[i], n * 2 + 10);
      if (!q) bad = 1;
      else { bad |= block_check((uint8_t*)q, n, 7, "child: realloc"); v[i] = q; }
    }
  }
  for (int i = 0; i < 20; i++) S_FREE(v[i]);
  _exit(bad ? 3 : 0);
}

static void phase_fork(void) {
  int nworkers = opt_threads / 2 + 1;
  pthread_t th[64];
  if (nworkers > 64) nworkers = 64;
  for (int i = 0; i < 4; i++) {
    g_prefork[i] = (uint8_t*)S_MALLOC(g_prefork_size[i]);
    CHECK(g_prefork[i] != NULL);
    if (g_prefork[i]) block_fill(g_prefork[i], g_prefork_size[i], 0xf0f0 + (uint64_t)i);
  }
  atomic_store(&g_stop, 0);
  for (int i = 0; i < nworkers; i++) pthread_create(&th[i], NULL, fork_worker, (void*)(uintptr_t)(i + 1));
  usleep(20000);
  int ok = 0, failed = 0;
  for (int k = 0; k < opt_forks; k++) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { CHECK_MSG(0, "fork: %s", strerror(errno)); break; }
    if (pid == 0) fork_child(k);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      ok++;
    } else {
      failed++;
      if (WIFSIGNALED(st))
        CHECK_MSG(0, "fork child %d killed by signal %d (%s)%s", k, WTERMSIG(st), strsignal(WTERMSIG(st)),
                  WTERMSIG(st) == SIGALRM ? ": deadlocked in the allocator after fork?" : "");
      else
        CHECK_MSG(0, "fork child %d exited with status %d", k, WEXITSTATUS(st));
    }
    usleep(1000 + (k % 5) * 1000);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < nworkers; i++) pthread_join(th[i], NULL);
  drain_transfers();
  for (int i = 0; i < 4; i++) {
    if (g_prefork[i]) fail_if(block_check(g_prefork[i], g_prefork_size[i], 0xf0f0 + (uint64_t)i, "parent: pre-fork block"));
    S_FREE(g_prefork[i]);
  }
  CHECK_EQ(ok, opt_forks);
  CHECK_MSG(atomic_load(&g_fail) == 0, "fork phase: %ld corrupt or failed blocks", atomic_load(&g_fail));
  printf("fork: %d forks with %d allocating threads: %d children ok, %d failed\n", opt_forks, nworkers, ok, failed);
}

/* ---- phase 4: fork while the other threads are in the slow paths -------------------- */

#define FH_SLOTS 256
static _Atomic(uint8_t*) g_fh_slot[FH_SLOTS];   /* blocks in flight between threads */
static atomic_long g_fh_ops, g_fh_threads;

/* A self-describing block of n >= HDR bytes, or NULL (counted as a failure). */
static uint8_t* fh_block(size_t n, uint64_t* rng) {
  uint8_t* p = (uint8_t*)S_MALLOC(n);
  if (!p) { fail_if(1); fprintf(stderr, "stress: forkhard: malloc(%zu) failed\n", n); return NULL; }
  block_fill(p, n, sm64(rng));
  return p;
}

/* Put p into a shared slot; free (after checking) what was there: a remote free when
 * another thread allocated it. */
static void fh_trade(uint8_t* p, uint64_t r) {
  uint8_t* old = atomic_exchange(&g_fh_slot[r % FH_SLOTS], p);
  if (old) { fail_if(block_check_self(old, "forkhard: traded block")); S_FREE(old); }
}

static void* forkhard_worker(void* argp) {
  uint64_t rng = opt_seed * 31 + (uint64_t)(uintptr_t)argp * 0x9e3779b9ull;
  long ops = 0;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    uint64_t r = sm64(&rng);
    switch (r % 8) {
      case 0: case 1: {          /* large: map (or take from the cache), grow, free */
        size_t n = MiB + 1 + (size_t)((r >> 8) % (3 * MiB));
        uint8_t* p = fh_block(n, &rng);
        if (!p) break;
        if ((r >> 40) & 1) {
          uint64_t c;
          memcpy(&c, p + 8, 8);
          uint8_t* q = (uint8_t*)S_REALLOC(p, n + MiB + (size_t)((r >> 44) % MiB));
          if (!q) { fail_if(1); S_FREE(p); break; }
          fail_if(block_check(q, n, c, "forkhard: large realloc"));
          p = q;
          memcpy(&n, p, 8);
        }
        if ((r >> 41) & 1) fh_trade(p, r >> 48); else S_FREE(p);
        break;
      }
      case 2: case 3: {          /* pool: one-block caches, so flush and refill each time */
        uint8_t* v[6];
        for (int i = 0; i < 6; i++) v[i] = fh_block(32 * KiB + 1 + (size_t)(sm64(&rng) % (MiB - 32 * KiB)), &rng);
        for (int i = 5; i >= 0; i -= 2) if (v[i]) { fail_if(block_check_self(v[i], "forkhard: pool")); S_FREE(v[i]); }
        for (int i = 0; i < 6; i += 2) if (v[i]) fh_trade(v[i], sm64(&rng));
        break;
      }
      case 4: case 5: {          /* trades of every tier: remote frees and their drains */
        for (int i = 0; i < 8; i++) {
          size_t n = pick_size(&rng);
          if (n < HDR) n = HDR;
          uint8_t* p = fh_block(n, &rng);
          if (p) fh_trade(p, sm64(&rng));
        }
        break;
      }
      case 6: {                  /* aligned beyond a page: the large tier */
        size_t al = (size_t)1 << (13 + (r >> 8) % 9);       /* 8 KiB .. 2 MiB */
        size_t n = HDR + (size_t)((r >> 16) % (2 * MiB));
        uint8_t* p = (uint8_t*)S_ALIGNED(al, n);
        if (!p || ((uintptr_t)p & (al - 1))) { fail_if(1); fprintf(stderr, "stress: forkhard: aligned_alloc(%zu, %zu) = %p\n", al, n, (void*)p); }
        if (p) { block_fill(p, n, r); fail_if(block_check_self(p, "forkhard: aligned")); S_FREE(p); }
        break;
      }
      default: {                 /* a burst of tiny and mid frees past the cache cap */
        uint8_t* v[300];
        size_t n = HDR + (size_t)((r >> 8) % 4000);
        for (int i = 0; i < 300; i++) v[i] = (uint8_t*)S_MALLOC(n);
        for (int i = 0; i < 300; i++) S_FREE(v[i]);
#ifdef HAK_STRESS_HAK_API
        if ((r >> 30) & 1) hak_thread_flush();
#endif
        break;
      }
    }
    ops++;
  }
  atomic_fetch_add(&g_fh_ops, ops);
  return NULL;
}

/* Short-lived threads: heap creation, thread-exit teardown, abandoned segments. */
static void* forkhard_short(void* argp) {
  uint64_t rng = (uint64_t)(uintptr_t)argp;
  uint8_t* v[10];
  for (int i = 0; i < 10; i++) v[i] = fh_block(HDR + (size_t)(pick_size(&rng) % (256 * KiB)), &rng);
  for (int i = 0; i < 10; i++) {
    if (!v[i]) continue;
    if (i % 3 == 0) fh_trade(v[i], sm64(&rng)); else S_FREE(v[i]);
  }
  return NULL;
}

static void* forkhard_churner(void* argp) {
  uint64_t seed = (uint64_t)(uintptr_t)argp;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    pthread_t t;
    if (pthread_create(&t, NULL, forkhard_short, (void*)(uintptr_t)(seed++)) != 0) { usleep(100); continue; }
    pthread_join(t, NULL);
    atomic_fetch_add(&g_fh_threads, 1);
  }
  return NULL;
}

/* Under the sanitizers the child starts no thread: TSan kills the child of a
 * multi-threaded program that does, and ASan (GCC 12) does not lock its own allocator
 * across fork, so the child's pthread_create can wait forever on a lock that a parent
 * thread held at the fork (seen: SizeClassAllocator64::GetFromAllocator). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FH_CHILD_THREAD 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FH_CHILD_THREAD 0
#endif
#endif
#ifndef FH_CHILD_THREAD
#define FH_CHILD_THREAD 1
#endif

static void* forkhard_child_thread(void* argp) {
  uint64_t rng = (uint64_t)(uintptr_t)argp;
  int bad = 0;
  for (int i = 0; i < 20; i++) {
    size_t n = HDR + pick_size(&rng);
    uint8_t* p = (uint8_t*)S_MALLOC(n);
    if (!p) { bad = 1; continue; }
    block_fill(p, n, 5);
    bad |= block_check(p, n, 5, "child thread");
    S_FREE(p);
  }
  return bad ? (void*)1 : NULL;
}

/* The child: frees what the other (now absent) threads allocated, uses every tier,
 * starts a thread; an alarm turns a deadlock into a failure. */
static void forkhard_child(int k) {
  alarm(10);
  int bad = 0;
  for (int i = 0; i < 24; i++) {
    uint8_t* p = atomic_exchange(&g_fh_slot[(k * 37 + i * 11) % FH_SLOTS], NULL);
    if (p) { bad |= block_check_self(p, "child: inherited block"); S_FREE(p); }
  }
  uint64_t rng = opt_seed + 1000 + (uint64_t)k;
  static const size_t sizes[] = {HDR, 100, 1024, 1025, 9000, 32769, 200000, MiB, MiB + 1, 3 * MiB};
  uint8_t* v[10];
  for (int i = 0; i < 10; i++) {
    size_t n = sizes[i] + (size_t)(sm64(&rng) % 64);
    v[i] = (uint8_t*)S_MALLOC(n);
    if (!v[i]) { bad = 1; continue; }
    block_fill(v[i], n, 9 + (uint64_t)i);
    uint8_t* q = (uint8_t*)S_REALLOC(v[i], sizes[(i + 3) % 10] + 17);
    if (!q) { bad = 1; continue; }
    size_t keep = n < sizes[(i + 3) % 10] + 17 ? n : sizes[(i + 3) % 10] + 17;
    if (keep >= HDR) { size_t hn; memcpy(&hn, q, 8); bad |= hn != n; }
    v[i] = q;
  }
  for (int i = 0; i < 10; i++) S_FREE(v[i]);
  uint8_t* a = (uint8_t*)S_ALIGNED(2 * MiB, 5000);
  if (!a || ((uintptr_t)a & (2 * MiB - 1))) bad = 1;
  S_FREE(a);
#if FH_CHILD_THREAD
  pthread_t t;
  void* tr = (void*)1;
  if (pthread_create(&t, NULL, forkhard_child_thread, (void*)(uintptr_t)k) == 0) pthread_join(t, &tr);
  bad |= tr != NULL;
#endif
#ifndef HAK_STRESS_HAK_API
  /* every other child leaves through exit(): atexit handlers and stdio, whose buffers are
   * hakmem's here (in the hak_* build they are the system's, or ASan's: no point) */
  if (k & 1) exit(bad ? 3 : 0);
#endif
  _exit(bad ? 3 : 0);
}

static void phase_forkhard(void) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int nworkers = opt_threads / 2 + 1;   /* 3 for --smoke; the churner makes one more */
  if (nworkers < 2) nworkers = 2;
  if (nworkers > 32) nworkers = 32;
  pthread_t th[33];
  long fails_before = atomic_load(&g_fail);
  atomic_store(&g_stop, 0);
  for (int i = 0; i < nworkers; i++) {
    int rc = pthread_create(&th[i], NULL, forkhard_worker, (void*)(uintptr_t)(i + 1));
    CHECK_MSG(rc == 0, "pthread_create: %s", strerror(rc));
  }
  int rc = pthread_create(&th[nworkers], NULL, forkhard_churner, (void*)(uintptr_t)(opt_seed * 7));
  CHECK_MSG(rc == 0, "pthread_create: %s", strerror(rc));
  usleep(50000);                       /* let them get going: caches warm, slots full */
  int ok = 0, failed = 0;
  for (int k = 0; k < opt_forks_hard; k++) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { CHECK_MSG(0, "fork: %s", strerror(errno)); break; }
    if (pid == 0) forkhard_child(k);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      ok++;
    } else if (failed++ < 10) {
      if (WIFSIGNALED(st))
        CHECK_MSG(0, "forkhard child %d killed by signal %d (%s)%s", k, WTERMSIG(st), strsignal(WTERMSIG(st)),
                  WTERMSIG(st) == SIGALRM ? ": deadlocked in the allocator after fork?" : "");
      else
        CHECK_MSG(0, "forkhard child %d exited with status %d", k, WEXITSTATUS(st));
    }
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i <= nworkers; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < FH_SLOTS; i++) {
    uint8_t* p = atomic_exchange(&g_fh_slot[i], NULL);
    if (p) { fail_if(block_check_self(p, "forkhard: left in a slot")); S_FREE(p); }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK_EQ(ok, opt_forks_hard);
  long fails = atomic_load(&g_fail) - fails_before;
  CHECK_MSG(fails == 0, "forkhard phase: %ld corrupt or failed blocks", fails);
  printf("forkhard: %d forks with %d threads in the slow paths (%ld ops, %ld short-lived threads), "
         "%d children ok, %d failed, %.2f s\n", opt_forks_hard, nworkers + 1, atomic_load(&g_fh_ops),
         atomic_load(&g_fh_threads), ok, failed,
         (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
}

/* ---- soak: everything at once for a given time, RSS bounded ----------------------------- */

#define SOAK_SLOTS 512
#define SOAK_MINE 192
static _Atomic(uint8_t*) g_soak_slot[SOAK_SLOTS];   /* blocks in flight between threads */
static atomic_long g_soak_live;                     /* bytes of live soak blocks (asked for) */
static atomic_long g_soak_ops, g_soak_threads, g_soak_huge;
static atomic_int g_soak_stop;

/* Sizes for the soak: pick_size's mix plus tiny (1..16 bytes, here HDR..32) and huge
 * (2..10 MiB) blocks. Every block carries its size and cookie (n >= HDR). */
static size_t soak_size(uint64_t* rng) {
  uint64_t r = sm64(rng);
  switch (r % 64) {
    case 0:  return 2 * MiB + (size_t)((r >> 8) % (8 * MiB));   /* huge */
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8:
      return HDR + (size_t)((r >> 8) % 17);                    /* tiny */
    default: { size_t n = pick_size(rng); return n < HDR ? HDR : n; }
  }
}

static uint8_t* soak_alloc(size_t n, uint64_t* rng, int how) {
  uint8_t* p;
  if (how == 0) {
    p = (uint8_t*)S_CALLOC(1, n);
    if (p) {   /* calloc: zero, checked where the pattern goes */
      int bad = p[0] | p[n - 1] | p[n / 2];
      if (bad) { fail_if(1); fprintf(stderr, "stress: soak: calloc(%zu) not zeroed\n", n); }
    }
  } else if (how == 1) {
    size_t al = (size_t)64 << ((sm64(rng) >> 5) % 12);   /* 64 B .. 128 KiB */
    p = (uint8_t*)S_ALIGNED(al, n);
    if (p && ((uintptr_t)p & (al - 1))) { fail_if(1); fprintf(stderr, "stress: soak: misaligned %p\n", (void*)p); }
  } else {
    p = (uint8_t*)S_MALLOC(n);
  }
  if (!p) { fail_if(1); fprintf(stderr, "stress: soak: allocation of %zu bytes failed\n", n); return NULL; }
  block_fill(p, n, sm64(rng));
  atomic_fetch_add(&g_soak_live, (long)n);
  if (n > MiB) atomic_fetch_add(&g_soak_huge, 1);
  return p;
}
static void soak_free(uint8_t* p, const char* where) {
  size_t n;
  memcpy(&n, p, 8);
  fail_if(block_check_self(p, where));
  atomic_fetch_sub(&g_soak_live, (long)n);
  S_FREE(p);
}
static void soak_trade(uint8_t* p, uint64_t r) {
  uint8_t* old = atomic_exchange(&g_soak_slot[r % SOAK_SLOTS], p);
  if (old) soak_free(old, "soak: traded block");
}

static void* soak_worker(void* argp) {
  uint64_t rng = opt_seed * 131 + (uint64_t)(uintptr_t)argp * 0x9e3779b97ull;
  uint8_t* mine[SOAK_MINE] = {0};
  long ops = 0;
  while (!atomic_load_explicit(&g_soak_stop, memory_order_relaxed)) {
    uint64_t r = sm64(&rng);
    unsigned i = (unsigned)((r >> 8) % SOAK_MINE);
    switch (r % 8) {
      case 0: case 1: case 2:                /* allocate (or replace) */
        if (mine[i]) soak_free(mine[i], "soak: own block");
        mine[i] = soak_alloc(soak_size(&rng), &rng, (int)((r >> 20) % 6));
        break;
      case 3: case 4:                        /* free */
        if (mine[i]) { soak_free(mine[i], "soak: own block"); mine[i] = NULL; }
        break;
      case 5:                                /* hand over: another thread frees it */
        if (mine[i]) { fail_if(block_check_self(mine[i], "soak: before the trade")); soak_trade(mine[i], r >> 16); mine[i] = NULL; }
        break;
      default: {                             /* realloc across tiers, contents kept */
        if (!mine[i]) break;
        size_t n, m = soak_size(&rng);
        uint64_t c;
        memcpy(&n, mine[i], 8);
        memcpy(&c, mine[i] + 8, 8);
        fail_if(block_check(mine[i], n, c, "soak: before realloc"));
        uint8_t* q = (uint8_t*)S_REALLOC(mine[i], m);
        if (!q) { fail_if(1); fprintf(stderr, "stress: soak: realloc(%zu) failed\n", m); break; }
        /* the first min(n, m) bytes moved with it: check the header's cookie and the
         * pattern, then describe the new size */
        uint64_t c2;
        memcpy(&c2, q + 8, 8);
        if (c2 != c || (n > HDR && m > HDR && q[HDR] != pbyte(c, HDR)) ||
            (n > HDR && n <= m && q[n - 1] != pbyte(c, n - 1))) {
          fail_if(1);
          fprintf(stderr, "stress: soak: realloc %zu -> %zu lost the contents\n", n, m);
        }
        block_fill(q, m, c + 1);
        atomic_fetch_add(&g_soak_live, (long)m - (long)n);
        if (m > MiB) atomic_fetch_add(&g_soak_huge, 1);
        mine[i] = q;
        break;
      }
    }
    ops++;
  }
  for (unsigned k = 0; k < SOAK_MINE; k++) if (mine[k]) soak_free(mine[k], "soak: own block at the end");
  atomic_fetch_add(&g_soak_ops, ops);
  return NULL;
}

static void* soak_short(void* argp) {
  uint64_t rng = (uint64_t)(uintptr_t)argp;
  for (int i = 0; i < 12; i++) {
    uint8_t* p = soak_alloc(HDR + pick_size(&rng) % (64 * KiB), &rng, i % 3);
    if (p && i % 3 == 0) soak_trade(p, sm64(&rng)); else if (p) soak_free(p, "soak: short-lived thread");
  }
  return NULL;
}
static void* soak_churner(void* argp) {
  uint64_t seed = (uint64_t)(uintptr_t)argp;
  while (!atomic_load_explicit(&g_soak_stop, memory_order_relaxed)) {
    pthread_t t;
    if (pthread_create(&t, NULL, soak_short, (void*)(uintptr_t)(seed++)) != 0) { usleep(100); continue; }
    pthread_join(t, NULL);
    atomic_fetch_add(&g_soak_threads, 1);
  }
  return NULL;
}

/* A fork child: frees inherited blocks (checked), allocates in every tier, huge
 * included, and exits; an alarm makes a deadlock a failure. */
static void soak_child(int k) {
  alarm(10);
  int bad = 0;
  for (int i = 0; i < 16; i++) {
    uint8_t* p = atomic_exchange(&g_soak_slot[(k * 53 + i * 7) % SOAK_SLOTS], NULL);
    if (p) { bad |= block_check_self(p, "soak child: inherited block"); S_FREE(p); }
  }
  static const size_t sizes[] = {HDR, 40, 1000, 5000, 40000, 300000, 2 * MiB, 9 * MiB};
  for (int i = 0; i < 8; i++) {
    uint8_t* p = (uint8_t*)S_MALLOC(sizes[i]);
    if (!p) { bad = 1; continue; }
    block_fill(p, sizes[i], (uint64_t)k + (uint64_t)i);
    bad |= block_check(p, sizes[i], (uint64_t)k + (uint64_t)i, "soak child");
    S_FREE(p);
  }
  _exit(bad ? 3 : 0);
}

static void phase_soak(void) {
  const char* env = getenv("HAK_SOAK_SECONDS");
  if (env && atol(env) > 0) opt_soak = atol(env);
  if (opt_soak <= 0) opt_soak = 10;
  alarm((unsigned)opt_soak + 120);   /* a hang fails (SIGALRM) rather than stalling ctest */
  int nworkers = opt_threads < 2 ? 2 : opt_threads > 32 ? 32 : opt_threads;
  pthread_t th[33];
  long fails_before = atomic_load(&g_fail);
  long rss0 = vm_rss_kib();
  atomic_store(&g_soak_stop, 0);
  for (int i = 0; i < nworkers; i++) {
    int rc = pthread_create(&th[i], NULL, soak_worker, (void*)(uintptr_t)(i + 1));
    CHECK_MSG(rc == 0, "pthread_create: %s", strerror(rc));
  }
  int rc = pthread_create(&th[nworkers], NULL, soak_churner, (void*)(uintptr_t)(opt_seed * 11));
  CHECK_MSG(rc == 0, "pthread_create: %s", strerror(rc));
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int forks = 0, forks_ok = 0, samples = 0, over = 0;
  long worst_rss = 0, worst_live = 0, peak_rss = 0;
  long recent_live[10] = {0};
  double elapsed = 0;
  while (elapsed < (double)opt_soak) {
    usleep(100000);
    /* RSS against the live bytes: a bound, not a timing (sampled 10 times a second) */
    /* the largest live bytes of the last second: what was freed since may still sit in
     * caches kept for the purge delay (and the count is read racily with the RSS) */
    long live_now = atomic_load(&g_soak_live);
    recent_live[samples % 10] = live_now > 0 ? live_now : 0;
    long live = 0;
    for (int k = 0; k < 10; k++) if (recent_live[k] > live) live = recent_live[k];
    long rss = vm_rss_kib();
    if (rss >= 0) {
      /* What hakmem keeps for reuse is not a leak: it is bounded by the cache budgets
       * (knobs) and decays once reuse stops; the bound allows for it as measured. */
      long kept, in_use;
      hakmem_view_kib(&kept, &in_use);
      long live_kib = live / 1024 > in_use ? live / 1024 : in_use;
      long bound = live_kib * opt_soak_rss_factor + opt_soak_rss_slack_mib * 1024 + rss0 + kept;
      samples++;
      if (rss > peak_rss) peak_rss = rss;
      if (rss > bound) {
        if (over++ < 5)
          fprintf(stderr, "stress: soak: VmRSS %ld KiB over the bound %ld KiB (live %ld KiB, kept for reuse %ld KiB)\n",
                  rss, bound, live / 1024, kept);
        worst_rss = rss;
        worst_live = live;
      }
    }
    if (samples % 3 == 0) {          /* a fork every 300 ms */
      fflush(stdout);
      fflush(stderr);
      pid_t pid = fork();
      if (pid == 0) soak_child(forks);
      if (pid > 0) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) forks_ok++;
        else CHECK_MSG(0, "soak child %d: status %#x", forks, st);
      }
      forks++;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    elapsed = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) * 1e-9;
  }
  atomic_store(&g_soak_stop, 1);
  for (int i = 0; i <= nworkers; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < SOAK_SLOTS; i++) {
    uint8_t* p = atomic_exchange(&g_soak_slot[i], NULL);
    if (p) soak_free(p, "soak: left in a slot");
  }
  alarm(0);
  long fails = atomic_load(&g_fail) - fails_before;
  CHECK_MSG(fails == 0, "soak: %ld corrupt or failed blocks", fails);
  CHECK_EQ(atomic_load(&g_soak_live), 0);
  CHECK_EQ(forks_ok, forks);
  CHECK(forks > 0);
  CHECK(atomic_load(&g_soak_huge) > 0);
  CHECK(atomic_load(&g_soak_threads) > 0);
  if (opt_rss_check) {
    CHECK(samples > 0);
    CHECK_MSG(over == 0, "soak: VmRSS over recent live x %ld + %ld MiB in %d of %d samples (worst %ld KiB, live %ld KiB)",
              opt_soak_rss_factor, opt_soak_rss_slack_mib, over, samples, worst_rss, worst_live / 1024);
  }
  printf("soak: %.1f s, %d workers, %ld ops, %ld short-lived threads, %ld huge blocks, %d forks (%d ok), "
         "VmRSS start %ld KiB peak %ld KiB, %d samples over the bound\n", elapsed, nworkers,
         atomic_load(&g_soak_ops), atomic_load(&g_soak_threads), atomic_load(&g_soak_huge), forks, forks_ok,
         rss0, peak_rss, over);
}

/* ---- main ------------------------------------------------------------------------ */

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int pos = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (strcmp(a, "--smoke") == 0) {
      opt_threads = 4; opt_scale = 10; opt_iter = 4; opt_forks = 50;
    } else if (strncmp(a, "--phase=", 8) == 0) opt_phase = a + 8;
    else if (strncmp(a, "--churn=", 8) == 0) opt_churn = atol(a + 8);
    else if (strncmp(a, "--forks=", 8) == 0) opt_forks = atoi(a + 8);
    else if (strncmp(a, "--forks-hard=", 13) == 0) opt_forks_hard = atoi(a + 13);
    else if (strncmp(a, "--rss-limit=", 12) == 0) opt_rss_limit_mib = atol(a + 12);
    else if (strcmp(a, "--no-rss-check") == 0) opt_rss_check = 0;
    else if (strncmp(a, "--soak=", 7) == 0) opt_soak = atol(a + 7);
    else if (strncmp(a, "--soak-slack=", 13) == 0) opt_soak_rss_slack_mib = atol(a + 13);
    else if (strncmp(a, "--seed=", 7) == 0) opt_seed = strtoull(a + 7, NULL, 0);
    else if (a[0] != '-' && pos < 3) {
      int v = atoi(a);
      if (pos == 0) opt_threads = v;
      else if (pos == 1) opt_scale = v;
      else opt_iter = v;
      pos++;
    } else {
      fprintf(stderr, "usage: %s [THREADS [SCALE [ITERATIONS]]] [--smoke] [--phase=transfer|churn|fork|forkhard|all]\n"
                      "       [--churn=N] [--forks=N] [--forks-hard=N] [--rss-limit=MiB] [--no-rss-check] [--seed=S] [--soak=SECONDS]\n", argv[0]);
      return 2;
    }
  }
  if (opt_threads < 1) opt_threads = 1;
  if (opt_scale < 1) opt_scale = 1;
  if (opt_iter < 1) opt_iter = 1;
  printf("stress (%s): threads %d, scale %d, iterations %d, phase %s, seed %llu\n", S_NAME, opt_threads,
         opt_scale, opt_iter, opt_phase, (unsigned long long)opt_seed);
  int all = strcmp(opt_phase, "all") == 0;
  int any = 0;
  if (all || strcmp(opt_phase, "transfer") == 0) { ht_current = "transfer"; phase_transfer(); any = 1; }
  if (all || strcmp(opt_phase, "churn") == 0) { ht_current = "churn"; phase_churn(); any = 1; }
  if (all || strcmp(opt_phase, "fork") == 0) { ht_current = "fork"; phase_fork(); any = 1; }
  if (all || strcmp(opt_phase, "forkhard") == 0) { ht_current = "forkhard"; phase_forkhard(); any = 1; }
  if ((all && (opt_soak > 0 || getenv("HAK_SOAK_SECONDS"))) || strcmp(opt_phase, "soak") == 0) {
    ht_current = "soak"; phase_soak(); any = 1;
  }
  if (!any) { fprintf(stderr, "stress: unknown phase '%s'\n", opt_phase); return 2; }
  return ht_report();
}
