/* test_block_check.c — the free fast path's block test (slab.h): one multiply by the
 * slab's divmagic and one compare against `handed` must accept exactly the starts of the
 * blocks a slab has handed out, for every size class, and nothing else: not an address
 * inside a block, not one past the bump pointer, not one below block 0 (the header page
 * before slab 0, a pool slab's alignment gap). The slow path's hak_slab_off_is_block
 * must accept exactly the block starts of the slab's span. The free map before it
 * (alloc.h: hak_fc_tag) must match no user-space address in a zeroed heap: the empty
 * heap every thread starts with is zero until initialization.
 *
 * Offsets are checked one by one over the whole span of every tiny class, and around
 * every block boundary plus at random for mid and pool classes.
 *
 *   unit_block_check [test names] */
#include "hak_test.h"
#include "alloc/slab.h"

#include <stdint.h>

/* What the fast path computes (alloc_fast.h). */
static bool fast_accepts(const hak_slab* s, intptr_t off) {
  return (uintptr_t)off * s->divmagic < s->handed;
}

static void slab_init(hak_slab* s, uint32_t bsize, uint8_t* start) {
  memset(s, 0, sizeof *s);
  s->bsize = bsize;
  s->start = start;
  s->divmagic = hak_slab_divmagic(bsize);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static long failures;

/* One offset of a slab with `handed` blocks handed out. */
static void check_off(const hak_slab* s, intptr_t off, size_t handed, size_t span) {
  intptr_t d = (intptr_t)s->bsize;
  bool start = off >= 0 && off % d == 0;
  bool want = start && (size_t)(off / d) < handed;
  if (fast_accepts(s, off) != want) {
    if (failures++ < 10)
      fprintf(stderr, "    bsize %u, %zu handed: offset %ld %s by the fast test\n", s->bsize, handed, (long)off,
              want ? "refused" : "accepted");
  }
  if (off >= 0 && (size_t)off < span && hak_slab_off_is_block(s, (uintptr_t)off) != start) {
    if (failures++ < 10)
      fprintf(stderr, "    bsize %u: offset %ld %s by hak_slab_off_is_block\n", s->bsize, (long)off,
              start ? "refused" : "accepted");
  }
}

/* The span of a slab of class cls (at most: segment.c gives classes up to 8 KiB 64 KiB
 * SuperSlab slabs, the other mid classes 512 KiB slabs; the first slab of a segment
 * starts after a 4 KiB header; a pool slab after the header, on its class's alignment,
 * in a segment of 8 blocks rounded up to 2 MiB) and the most it may lie above its
 * area's start. */
static void geometry(unsigned cls, size_t* span, size_t* below) {
  size_t d = hak_cls_size[cls], align = d & (0 - d);
  if (cls <= HAK_CLS_TINY_LAST) *span = 64u << 10;
  else if (cls <= HAK_CLS_MID_LAST) *span = 512u << 10;
  else *span = HAK_ALIGN_UP(4096 + 8 * d, (size_t)2 << 20);
  *below = 4096 + align;
}

static void check_class(unsigned cls, bool every_offset) {
  static uint8_t base[1];    /* only its address is used: nothing is dereferenced */
  uint32_t d = hak_cls_size[cls];
  size_t span, below;
  geometry(cls, &span, &below);
  size_t nmax = span / d;
  size_t counts[] = {0, 1, 2, nmax / 2, nmax - 1, nmax};
  hak_slab s;
  slab_init(&s, d, base);
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    size_t n = counts[k];
    hak_slab_set_bump(&s, base + n * d);
    if (every_offset) {
      for (intptr_t off = -(intptr_t)below; off < (intptr_t)span; off++) check_off(&s, off, n, span);
      continue;
    }
    for (size_t q = 0; q <= nmax; q++)                   /* around every boundary */
      for (intptr_t r = -64; r <= 64; r++) check_off(&s, (intptr_t)(q * d) + r, n, span);
    for (intptr_t off = -(intptr_t)below; off < -(intptr_t)below + 4096; off++) check_off(&s, off, n, span);
    for (int i = 0; i < 200000; i++) {                   /* and anywhere */
      intptr_t off = (intptr_t)(rng() % (span + below)) - (intptr_t)below;
      check_off(&s, off, n, span);
    }
  }
}

static void test_tiny_classes_every_offset(void) {
  failures = 0;
  for (unsigned cls = 0; cls <= HAK_CLS_TINY_LAST; cls++) check_class(cls, true);
  CHECK_MSG(failures == 0, "%ld wrong answers", failures);
}

static void test_mid_and_pool_classes(void) {
  failures = 0;
  for (unsigned cls = HAK_CLS_TINY_LAST + 1; cls < HAK_NCLS; cls++) check_class(cls, false);
  CHECK_MSG(failures == 0, "%ld wrong answers", failures);
}

/* Powers of two are the case the plain floor(2^64/d) + 1 magic gets wrong for `handed`
 * (its E would be 0, and every block start would pass as handed out). */
static void test_power_of_two_sizes_bound_by_handed(void) {
  static uint8_t base[1];
  hak_slab s;
  for (uint32_t d = 16; d <= (1u << 20); d *= 2) {
    slab_init(&s, d, base);
    hak_slab_set_bump(&s, base + 3 * (size_t)d);
    CHECK(fast_accepts(&s, 0));
    CHECK(fast_accepts(&s, 2 * (intptr_t)d));
    CHECK(!fast_accepts(&s, 3 * (intptr_t)d));
    CHECK(!fast_accepts(&s, 100 * (intptr_t)d));
    CHECK(!fast_accepts(&s, (intptr_t)d + 8));
    CHECK(!fast_accepts(&s, -(intptr_t)d));
  }
}

/* A zeroed free map (the empty heap in .bss) matches no address a program can free:
 * NULL, the first page, every 64 KiB boundary and its neighbours up to the top of the
 * user address space; with the empty markers set, not even the top 64 KiB of all. */
static uint64_t fc_matches(const uintptr_t* fc_unit, uintptr_t a) {
  uintptr_t tag = hak_fc_tag(a);
  return fc_unit[tag & (HAK_FC_SIZE - 1)] == tag;
}
static void test_zero_free_map_matches_nothing(void) {
  static uintptr_t zero[HAK_FC_SIZE], marked[HAK_FC_SIZE];
  for (unsigned i = 0; i < HAK_FC_SIZE; i++) marked[i] = HAK_FC_EMPTY(i);
  const uintptr_t unit = (uintptr_t)1 << HAK_FC_SHIFT, top = (uintptr_t)1 << 47;
  uint64_t hits = 0, hits_marked = 0, n = 0;
  for (uintptr_t a = 0; a < 4 * unit; a += 8, n++) hits += fc_matches(zero, a);
  for (uintptr_t u = 1; u < 40; u++) {
    for (int s = 0; s < 47 - HAK_FC_SHIFT; s += 3) {
      uintptr_t base = (u << s) * unit;
      uintptr_t probe[] = {base - 16, base - 1, base, base + 8, base + unit - 16};
      for (unsigned k = 0; k < 5; k++, n++) { hits += fc_matches(zero, probe[k]); hits_marked += fc_matches(marked, probe[k]); }
    }
  }
  for (uintptr_t a = top - 4 * unit; a < top; a += 16, n++) hits += fc_matches(zero, a);
  CHECK_EQ(hits, 0);
  CHECK(n > 50000);
  /* The top 64 KiB of the address space (tag 0) are where a zeroed entry 0 would match;
   * HAK_FC_EMPTY(0) in every initialized heap closes it. */
  CHECK_EQ(fc_matches(zero, (uintptr_t)0 - 16), 1);
  CHECK_EQ(fc_matches(marked, (uintptr_t)0 - 16), 0);
  for (uintptr_t a = 0; a < 2 * unit; a += 8) hits_marked += fc_matches(marked, a) + fc_matches(marked, (uintptr_t)0 - unit + a);
  CHECK_EQ(hits_marked, 0);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_zero_free_map_matches_nothing);
  HT_RUN(test_power_of_two_sizes_bound_by_handed);
  HT_RUN(test_tiny_classes_every_offset);
  HT_RUN(test_mid_and_pool_classes);
  return ht_report();
}
