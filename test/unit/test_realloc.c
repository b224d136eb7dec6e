/* test_realloc.c — realloc's outcomes (free.c, large.c, copy.c): the contents survive
 * each one, each moves its own hak_stats counter and no other, hak_expand grows in
 * place or fails with ENOMEM and the block unchanged, the non-temporal copy copies
 * exactly the bytes asked for, HAKMEM_REALLOC_INPLACE=0 really moves every block, and
 * the realloc_nt_threshold knob is validated.
 *
 * Runs twice (test/CMakeLists.txt): with the defaults and with HAKMEM_REALLOC_INPLACE=0;
 * the cases read the option and expect the outcome of the mode in force. Without the
 * ACE thread: nothing else publishes knobs or allocates while a case counts. Large
 * blocks grow in place only into free address space: the cases make the space after a
 * block free (or taken) themselves with mmap(MAP_FIXED_NOREPLACE) probes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* internal (the test links the static library) */
int hak_knobs_publish(const hak_knobs* candidate);
void hak_copy_nt(void* dst, const void* src, size_t n);

#define MiB ((size_t)1 << 20)

enum { IN_PLACE, SHRUNK, GROWN, MREMAP, MEMCPY, NT, FAILED, EXPAND_FAILED, NOUT };
static const char* const out_names[NOUT] = {"in_place", "shrunk", "grown", "mremap", "memcpy",
                                            "nt_copy", "failed", "expand_failed"};

typedef struct { uint64_t v[NOUT]; } outcomes;

static outcomes counters(void) {
  hak_stats st;
  st.size = sizeof st;
  CHECK_EQ(hak_stats_get(&st), 0);
  outcomes o = {{st.realloc_in_place, st.realloc_shrunk, st.realloc_grown, st.realloc_mremap,
                 st.realloc_memcpy, st.realloc_nt_copy, st.realloc_failed, st.expand_failed}};
  return o;
}

/* Exactly one outcome `want` between a and b, every other counter unchanged. */
#define EXPECT_ONLY(a, b, want) expect_only(&(a), &(b), (want), __LINE__)
static void expect_only(const outcomes* a, const outcomes* b, int want, int line) {
  for (int i = 0; i < NOUT; i++) {
    uint64_t d = b->v[i] - a->v[i];
    CHECK_MSG(d == (i == want ? 1u : 0u), "line %d: counter %s moved by %llu (expected only %s to move by 1)",
              line, out_names[i], (unsigned long long)d, out_names[want]);
  }
}

static hak_knobs knobs_now(void) {
  hak_knobs k;
  k.size = sizeof k;
  CHECK_EQ(hak_knobs_get(&k), 0);
  return k;
}

static int inplace_on(void) { return knobs_now().realloc_inplace != 0; }

static void set_nt_threshold(uint64_t bytes) {
  hak_knobs k = knobs_now();
  k.realloc_nt_threshold = bytes;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  CHECK_EQ(knobs_now().realloc_nt_threshold, bytes);
}

/* A pattern that depends on the seed and the offset, so a shifted copy never matches. */
static unsigned char pat(uint32_t seed, size_t i) {
  uint32_t x = seed * 2654435761u ^ (uint32_t)(i * 40503u) ^ (uint32_t)(i >> 13);
  return (unsigned char)(x ^ x >> 11);
}
static void fill(void* p, size_t n, uint32_t seed) {
  unsigned char* c = p;
  for (size_t i = 0; i < n; i++) c[i] = pat(seed, i);
}
static size_t first_bad(const void* p, size_t n, uint32_t seed) {
  const unsigned char* c = p;
  for (size_t i = 0; i < n; i++) if (c[i] != pat(seed, i)) return i;
  return (size_t)-1;
}
#define CHECK_CONTENTS(p, n, seed) do { size_t bad_ = first_bad((p), (n), (seed)); \
  CHECK_MSG(bad_ == (size_t)-1, "line %d: byte %zu of %zu lost", __LINE__, bad_, (size_t)(n)); } while (0)

/* Large blocks: the mapping ends at p + usable (one page of header before p). Is the
 * address space [end, end + len) free? Probed with a mapping that cannot replace one. */
static int space_free(void* end, size_t len) {
  void* m = mmap(end, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (m == MAP_FAILED) return 0;
  munmap(m, len);
  return m == end;   /* an old kernel without NOREPLACE may put it elsewhere */
}

/* A large block of `size` bytes with at least `room` bytes of free address space after
 * its mapping, or NULL. The kernel places mappings top-down, against the mapping above
 * the gap: so a reservation is cut into a hole with a ceiling above it, the block is
 * mapped into the hole, and the ceiling is then unmapped. A block that landed in another
 * gap is kept until the end (freeing it would only reopen that gap). */
static void* large_with_room(size_t size, size_t room) {
  void* keep[8];
  int nkeep = 0;
  void* got = NULL;
  for (int i = 0; i < 8 && !got; i++) {
    size_t hole = size + 8 * MiB;
    char* r = mmap(NULL, hole + room, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) break;
    munmap(r, hole);
    void* p = hak_malloc(size);
    munmap(r + hole, room);
    if (!p) break;
    if (space_free((char*)p + hak_malloc_usable_size(p), room)) got = p;
    else keep[nkeep++] = p;
  }
  for (int i = 0; i < nkeep; i++) hak_free(keep[i]);
  return got;
}

/* ---- small blocks (size classes) ------------------------------------------------------ */

static void test_small_fits_in_place(void) {
  unsigned char* p = hak_malloc(100);
  size_t u = hak_malloc_usable_size(p);
  CHECK(u >= 100 && u < 200);
  fill(p, u, 1);
  outcomes a = counters();
  unsigned char* q = hak_realloc(p, u);            /* grows to the usable size */
  outcomes b = counters();
  CHECK(q != NULL);
  CHECK_CONTENTS(q, u, 1);
  if (inplace_on()) { CHECK(q == p); EXPECT_ONLY(a, b, IN_PLACE); }
  else { CHECK(q != p); EXPECT_ONLY(a, b, MEMCPY); }
  p = q;
  u = hak_malloc_usable_size(p);
  a = counters();
  q = hak_realloc(p, u * 3 / 4);                   /* shrinks, keeps >= 50 % */
  b = counters();
  CHECK_CONTENTS(q, u * 3 / 4, 1);
  if (inplace_on()) { CHECK(q == p); EXPECT_ONLY(a, b, IN_PLACE); }
  else { CHECK(q != p); EXPECT_ONLY(a, b, MEMCPY); }
  hak_free(q);
}

static void test_small_moves(void) {
  uint64_t keep = knobs_now().realloc_nt_threshold;
  set_nt_threshold(1ull << 40);                    /* every copy by memcpy */
  unsigned char* p = hak_malloc(100);
  fill(p, 100, 2);
  outcomes a = counters();
  unsigned char* q = hak_realloc(p, 5000);         /* tiny -> mid */
  outcomes b = counters();
  CHECK(q != NULL && q != p);
  /* a moving realloc rounds up to 2^k or 1.5 * 2^k (6 KiB); copy-always asks for the
   * size itself (class 5 KiB) */
  CHECK_EQ(hak_malloc_usable_size(q), inplace_on() ? 6144 : 5120);
  CHECK_CONTENTS(q, 100, 2);
  EXPECT_ONLY(a, b, MEMCPY);
  if (inplace_on()) {
    fill(q, 6144, 2);
    a = counters();
    CHECK(hak_realloc(q, 6144) == q);             /* the room it got: no copy */
    b = counters();
    EXPECT_ONLY(a, b, IN_PLACE);
  }
  fill(q, 5000, 3);
  a = counters();
  p = hak_realloc(q, 200);                         /* shrinks below half: moves down */
  b = counters();
  CHECK(p != NULL && p != q);
  CHECK(hak_malloc_usable_size(p) < 5000);
  CHECK_CONTENTS(p, 200, 3);
  EXPECT_ONLY(a, b, MEMCPY);
  hak_free(p);
  set_nt_threshold(keep);
}

/* Above the threshold the copy is non-temporal (and exact); below it memcpy. */
static void test_nt_threshold_selects_the_copy(void) {
  uint64_t keep = knobs_now().realloc_nt_threshold;
  set_nt_threshold(4096);
  unsigned char* p = hak_malloc(30001);
  fill(p, 30001, 4);
  outcomes a = counters();
  unsigned char* q = hak_realloc(p, 200003);       /* mid -> pool: copies the usable 30 KiB+ */
  outcomes b = counters();
  CHECK(q != NULL && q != p);
  CHECK_CONTENTS(q, 30001, 4);
  EXPECT_ONLY(a, b, NT);
  unsigned char* s = hak_malloc(1000);
  fill(s, 1000, 5);
  a = counters();
  unsigned char* t = hak_realloc(s, 3000);         /* 1 KiB < 4096: memcpy */
  b = counters();
  CHECK(t != NULL && t != s);
  CHECK_CONTENTS(t, 1000, 5);
  EXPECT_ONLY(a, b, MEMCPY);
  /* a large block that cannot grow in place or move (copy-always mode) or a large block
   * moving down to the pool tier copies too */
  unsigned char* l = hak_malloc(3 * MiB);
  fill(l, 3 * MiB, 6);
  a = counters();
  unsigned char* m = hak_realloc(l, 500000);
  b = counters();
  CHECK(m != NULL && m != l);
  CHECK_CONTENTS(m, 500000, 6);
  EXPECT_ONLY(a, b, NT);
  hak_free(q);
  hak_free(t);
  hak_free(m);
  set_nt_threshold(keep);
}

/* ---- large blocks ------------------------------------------------------------------------ */

static void test_large_grows_in_place(void) {
  unsigned char* p = large_with_room(3 * MiB, 16 * MiB);
  CHECK(p != NULL);
  if (!p) return;
  fill(p, 3 * MiB, 7);
  outcomes a = counters();
  unsigned char* q = hak_realloc(p, 6 * MiB);
  outcomes b = counters();
  CHECK(q != NULL);
  CHECK(hak_malloc_usable_size(q) >= 6 * MiB);
  CHECK_CONTENTS(q, 3 * MiB, 7);
  if (inplace_on()) { CHECK(q == p); EXPECT_ONLY(a, b, GROWN); }
  else { CHECK(q != p); CHECK_EQ(b.v[MEMCPY] + b.v[NT] - a.v[MEMCPY] - a.v[NT], 1); CHECK_EQ(b.v[GROWN], a.v[GROWN]); }
  hak_free(q);
}

/* The space after the block is taken: realloc moves the pages with mremap (in-place on)
 * and hak_expand fails, the block unchanged. */
static void test_large_blocked(void) {
  unsigned char* p = large_with_room(3 * MiB, 4096);
  CHECK(p != NULL);
  if (!p) return;
  size_t u = hak_malloc_usable_size(p);
  void* wall = mmap(p + u, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK(wall == (void*)(p + u));
  fill(p, u, 8);
  outcomes a = counters();
  errno = 0;
  CHECK(hak_expand(p, u + 1) == NULL);
  CHECK_EQ(errno, ENOMEM);
  outcomes b = counters();
  EXPECT_ONLY(a, b, EXPAND_FAILED);
  CHECK_EQ(hak_malloc_usable_size(p), u);
  CHECK_CONTENTS(p, u, 8);
  a = counters();
  unsigned char* q = hak_realloc(p, 5 * MiB);
  b = counters();
  CHECK(q != NULL && q != p);
  CHECK_CONTENTS(q, u, 8);
  if (inplace_on()) EXPECT_ONLY(a, b, MREMAP);
  else CHECK_EQ(b.v[MEMCPY] + b.v[NT] - a.v[MEMCPY] - a.v[NT], 1);
  CHECK_EQ(b.v[MREMAP] - a.v[MREMAP], inplace_on() ? 1 : 0);
  if (wall != MAP_FAILED) munmap(wall, 4096);
  hak_free(q);
}

static void test_large_shrinks_in_place(void) {
  unsigned char* p = hak_malloc(9 * MiB);
  fill(p, 3 * MiB, 9);
  outcomes a = counters();
  unsigned char* q = hak_realloc(p, 3 * MiB);      /* 6 MiB of tail: given back */
  outcomes b = counters();
  CHECK(q != NULL);
  CHECK_CONTENTS(q, 3 * MiB, 9);
  if (inplace_on()) {
    CHECK(q == p);
    EXPECT_ONLY(a, b, SHRUNK);
    CHECK(hak_malloc_usable_size(q) < 4 * MiB);
  } else {
    CHECK(q != p);
    CHECK_EQ(b.v[MEMCPY] + b.v[NT] - a.v[MEMCPY] - a.v[NT], 1);
  }
  size_t u = hak_malloc_usable_size(q);
  a = counters();
  unsigned char* r = hak_realloc(q, u - 100000);   /* less than a chunk: nothing to give back */
  b = counters();
  CHECK_CONTENTS(r, u - 100000, 9);
  if (inplace_on()) { CHECK(r == q); EXPECT_ONLY(a, b, IN_PLACE); CHECK_EQ(hak_malloc_usable_size(r), u); }
  else CHECK(r != q);
  hak_free(r);
}

/* ---- hak_expand --------------------------------------------------------------------------- */

static void test_expand(void) {
  unsigned char* p = hak_malloc(100);
  size_t u = hak_malloc_usable_size(p);
  fill(p, u, 10);
  outcomes a = counters();
  CHECK(hak_expand(p, u) == p);                    /* fits: p, in every mode */
  outcomes b = counters();
  EXPECT_ONLY(a, b, IN_PLACE);
  CHECK(hak_expand(p, 1) == p);                    /* never shrinks */
  CHECK_EQ(hak_malloc_usable_size(p), u);
  a = counters();
  errno = 0;
  CHECK(hak_expand(p, u + 1) == NULL);             /* a size class never grows */
  CHECK_EQ(errno, ENOMEM);
  b = counters();
  EXPECT_ONLY(a, b, EXPAND_FAILED);
  CHECK_CONTENTS(p, u, 10);
  errno = 0;
  CHECK(hak_expand(p, (size_t)PTRDIFF_MAX + 1) == NULL);
  CHECK_EQ(errno, ENOMEM);
  errno = 0;
  CHECK(hak_expand(NULL, 10) == NULL);
  CHECK_EQ(errno, EINVAL);
  hak_free(p);                                     /* still a valid block */

  unsigned char* l = large_with_room(3 * MiB, 16 * MiB);
  CHECK(l != NULL);
  if (!l) return;
  size_t lu = hak_malloc_usable_size(l);
  fill(l, lu, 11);
  a = counters();
  errno = 0;
  unsigned char* e = hak_expand(l, 7 * MiB);
  b = counters();
  if (inplace_on()) {
    CHECK(e == l);
    EXPECT_ONLY(a, b, GROWN);
    CHECK(hak_malloc_usable_size(l) >= 7 * MiB);
  } else {                                         /* in place off: nothing grows */
    CHECK(e == NULL);
    CHECK_EQ(errno, ENOMEM);
    EXPECT_ONLY(a, b, EXPAND_FAILED);
    CHECK_EQ(hak_malloc_usable_size(l), lu);
  }
  CHECK_CONTENTS(l, lu, 11);
  memset(l + lu, 0x5c, hak_malloc_usable_size(l) - lu);   /* the new bytes are the block's */
  errno = 0;
  CHECK(hak_expand(l, (size_t)PTRDIFF_MAX) == NULL);      /* no address space is that big */
  CHECK_EQ(errno, ENOMEM);
  CHECK_CONTENTS(l, lu, 11);
  hak_free(l);
}

/* ---- failure -------------------------------------------------------------------------------- */

static void test_failed(void) {
  unsigned char* p = hak_malloc(5000);
  fill(p, 5000, 12);
  outcomes a = counters();
  errno = 0;
  CHECK(hak_realloc(p, (size_t)PTRDIFF_MAX + 1) == NULL);
  CHECK_EQ(errno, ENOMEM);
  outcomes b = counters();
  EXPECT_ONLY(a, b, FAILED);
  a = counters();
  errno = 0;
  CHECK(hak_realloc(p, (size_t)1 << 50) == NULL);  /* 1 PiB: no mapping that big */
  CHECK_EQ(errno, ENOMEM);
  b = counters();
  EXPECT_ONLY(a, b, FAILED);
  CHECK_CONTENTS(p, 5000, 12);
  /* malloc- and free-like reallocs are not realloc outcomes */
  a = counters();
  void* n = hak_realloc(NULL, 100);
  CHECK(hak_realloc(n, 0) == NULL);
  b = counters();
  for (int i = 0; i < NOUT; i++) CHECK_EQ(b.v[i], a.v[i]);
  hak_free(p);
}

/* ---- copy-always mode --------------------------------------------------------------------------- */

/* HAKMEM_REALLOC_INPLACE=0 (knob realloc_inplace 0): every realloc moves, even to the
 * same size. */
static void test_copy_always(void) {
  if (inplace_on()) {
    printf("  (HAKMEM_REALLOC_INPLACE=1: the copy-always cases run in unit_realloc_copy_always)\n");
    return;
  }
  size_t sizes[] = {24, 700, 5000, 100000, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char* p = hak_malloc(sizes[i]);
    fill(p, sizes[i], 13);
    outcomes a = counters();
    unsigned char* q = hak_realloc(p, sizes[i]);
    outcomes b = counters();
    CHECK_MSG(q != NULL && q != p, "size %zu: realloc to the same size did not move (%p -> %p)", sizes[i],
              (void*)p, (void*)q);
    CHECK_CONTENTS(q, sizes[i], 13);
    CHECK_EQ(b.v[MEMCPY] + b.v[NT] - a.v[MEMCPY] - a.v[NT], 1);
    CHECK_EQ(b.v[IN_PLACE] + b.v[SHRUNK] + b.v[GROWN] + b.v[MREMAP], a.v[IN_PLACE] + a.v[SHRUNK] + a.v[GROWN] + a.v[MREMAP]);
    hak_free(q);
  }
}

/* ---- the non-temporal copy itself ------------------------------------------------------------------ */

/* Every length 0..600 and a few big odd ones, at every source and destination
 * misalignment 0..17: exactly n bytes copied, not one byte around them touched. */
static void test_copy_nt_exact(void) {
  enum { PAD = 64 };
  size_t big[] = {4095, 4097, 65536 + 13, 1000003};
  size_t maxn = 1000003 + 2 * PAD + 64;
  unsigned char* src = mmap(NULL, maxn, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char* dst = mmap(NULL, maxn, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(src != MAP_FAILED && dst != MAP_FAILED);
  if (src == MAP_FAILED || dst == MAP_FAILED) return;
  fill(src, maxn, 14);
  long bad = 0;
  for (int round = 0; round < 2; round++) {
    size_t nn = round == 0 ? 601 : sizeof big / sizeof big[0];
    for (size_t k = 0; k < nn; k++) {
      size_t n = round == 0 ? k : big[k];
      for (unsigned so = 0; so < 18; so += round ? 5 : 1) {
        for (unsigned d0 = 0; d0 < 18; d0 += round ? 3 : 1) {
          unsigned char* d = dst + PAD + d0;
          memset(dst, 0xEE, n + 2 * PAD + 18);
          hak_copy_nt(d, src + so, n);
          if (memcmp(d, src + so, n) != 0) bad++;
          for (size_t i = 0; i < PAD + d0; i++) if (dst[i] != 0xEE) { bad++; break; }
          for (size_t i = 0; i < PAD; i++) if (d[n + i] != 0xEE) { bad++; break; }
        }
      }
    }
  }
  CHECK_MSG(bad == 0, "%ld copies wrong or touching bytes outside", bad);
  munmap(src, maxn);
  munmap(dst, maxn);
}

/* ---- counters of other threads ---------------------------------------------------------------------- */

enum { THREAD_REALLOCS = 1000 };
static void* realloc_worker(void* arg) {
  (void)arg;
  for (int i = 0; i < THREAD_REALLOCS; i++) {
    void* p = hak_malloc(64);
    p = hak_realloc(p, 60);                        /* in place (or a memcpy: copy-always) */
    hak_free(p);
  }
  return NULL;
}

/* A thread's counters are plain stores in its heap: summed while it runs and kept when
 * it exits. */
static void test_thread_counters_survive_exit(void) {
  outcomes a = counters();
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, realloc_worker, NULL), 0);
  pthread_join(t, NULL);
  outcomes b = counters();
  int want = inplace_on() ? IN_PLACE : MEMCPY;
  CHECK_EQ(b.v[want] - a.v[want], THREAD_REALLOCS);
}

/* ---- the knob and the statistics' ABI ---------------------------------------------------------------- */

static void test_knob(void) {
  hak_knobs k = knobs_now();
  CHECK_EQ(k.version, HAKMEM_KNOBS_VERSION);
  CHECK_EQ(k.realloc_nt_threshold, (uint64_t)hak_option_value("HAKMEM_REALLOC_NT_THRESHOLD"));
  hak_knobs bad = k;
  bad.realloc_nt_threshold = (1ull << 40) + 1;
  errno = 0;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  CHECK_EQ(errno, EINVAL);
  CHECK_EQ(knobs_now().generation, k.generation);
  bad.realloc_nt_threshold = 0;                     /* 0: every copy non-temporal */
  CHECK_EQ(hak_knobs_publish(&bad), 0);
  unsigned char* p = hak_malloc(40);
  fill(p, 40, 15);
  outcomes a = counters();
  unsigned char* q = hak_realloc(p, 4000);
  outcomes b = counters();
  CHECK_CONTENTS(q, 40, 15);
  EXPECT_ONLY(a, b, NT);
  hak_free(q);
  bad = k;
  bad.realloc_inplace = 2;
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  bad = k;
  bad.huge_pages = 3;                  /* 0..2 */
  CHECK_EQ(hak_knobs_publish(&bad), -1);
  CHECK_EQ(knobs_now().generation, k.generation + 1);   /* only the good one went out */
  /* the in-place switch is a knob: published, it takes effect at once */
  CHECK_EQ(k.realloc_inplace, (uint32_t)hak_option_value("HAKMEM_REALLOC_INPLACE"));
  bad = k;
  bad.realloc_inplace = !k.realloc_inplace;
  CHECK_EQ(hak_knobs_publish(&bad), 0);
  p = hak_malloc(100);
  fill(p, 100, 16);
  a = counters();
  q = hak_realloc(p, 90);
  b = counters();
  CHECK_CONTENTS(q, 90, 16);
  if (bad.realloc_inplace) { CHECK(q == p); EXPECT_ONLY(a, b, IN_PLACE); }
  else { CHECK(q != p); EXPECT_ONLY(a, b, MEMCPY); }
  hak_free(q);
  CHECK_EQ(hak_knobs_publish(&k), 0);
  /* a program built against knob version 3 gets exactly its fields */
  union { hak_knobs k; unsigned char raw[sizeof(hak_knobs)]; } u;
  memset(&u, 0x5A, sizeof u);
  size_t v3 = offsetof(hak_knobs, realloc_nt_threshold);
  u.k.size = (uint32_t)v3;
  CHECK_EQ(hak_knobs_get(&u.k), 0);
  CHECK_EQ(u.k.size, v3);
  CHECK_EQ(u.raw[v3], 0x5A);
}

static void test_stats_abi(void) {
  /* a program built against stats version 3 gets exactly its fields */
  union { hak_stats st; unsigned char raw[sizeof(hak_stats)]; } u;
  memset(&u, 0xAB, sizeof u);
  size_t v3 = offsetof(hak_stats, realloc_in_place);
  u.st.size = (uint32_t)v3;
  CHECK_EQ(hak_stats_get(&u.st), 0);
  CHECK_EQ(u.st.size, v3);
  CHECK_EQ(u.st.version, HAKMEM_STATS_VERSION);
  CHECK_EQ(u.raw[v3], 0xAB);
  CHECK_EQ(offsetof(hak_stats, program) + 64, v3);  /* appended after version 3's last field */
  /* text and JSON carry the counters */
  outcomes o = counters();
  char buf[65536];
  size_t n = hak_stats_json(buf, sizeof buf);
  CHECK(n < sizeof buf);
  char want[96];
  snprintf(want, sizeof want, "\"realloc_in_place\":");
  const char* at = strstr(buf, want);
  CHECK(at != NULL);
  unsigned long long v = 0;
  if (at) CHECK(sscanf(at + strlen(want), "%llu", &v) == 1 && v >= o.v[IN_PLACE]);
  static const char* const keys[] = {"\"realloc_shrunk\":", "\"realloc_grown\":", "\"realloc_mremap\":",
                                     "\"realloc_memcpy\":", "\"realloc_nt_copy\":", "\"realloc_failed\":",
                                     "\"expand_failed\":"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) CHECK_MSG(strstr(buf, keys[i]) != NULL, "JSON has no %s", keys[i]);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  /* no cache of freed large mappings: every large block is a fresh mapping where the
   * case wants it (large_with_room) */
  hak_knobs k = knobs_now();
  k.large_cache_entries = 0;
  CHECK_EQ(hak_knobs_publish(&k), 0);
  HT_RUN(test_small_fits_in_place);
  HT_RUN(test_small_moves);
  HT_RUN(test_nt_threshold_selects_the_copy);
  HT_RUN(test_large_grows_in_place);
  HT_RUN(test_large_blocked);
  HT_RUN(test_large_shrinks_in_place);
  HT_RUN(test_expand);
  HT_RUN(test_failed);
  HT_RUN(test_copy_always);
  HT_RUN(test_copy_nt_exact);
  HT_RUN(test_thread_counters_survive_exit);
  HT_RUN(test_knob);
  HT_RUN(test_stats_abi);
  return ht_report();
}
