/* glibc_ext.c — glibc's malloc extensions, answered by hakmem: mallinfo2, mallinfo,
 * malloc_trim, malloc_stats, malloc_info, mallopt, and the __libc_* aliases of the
 * allocation calls. Without these a program that links or preloads hakmem asks glibc's
 * (empty) arena and gets numbers about nothing.
 *
 * mallinfo2 maps hakmem's numbers onto glibc's field meanings (README, "glibc's malloc
 * extensions", has the table):
 *   arena    bytes hakmem holds: every mapping it made (segments, large blocks, caches)
 *   ordblks  segments hakmem holds (glibc: free chunks; hakmem has no such list)
 *   smblks   0 (glibc: fastbin chunks)
 *   hblks    large blocks in use (> 1 MiB, each its own mapping)
 *   hblkhd   bytes of those large blocks (usable size)
 *   usmblks  0 (glibc: always 0)
 *   fsmblks  bytes of empty segments and freed large mappings kept for reuse
 *   uordblks bytes in use: live blocks at their block size, large blocks at usable size
 *   fordblks arena - uordblks: held but not in a live block
 *   keepcost resident bytes in no block (unused slabs, cached segments and mappings):
 *            what malloc_trim(0) can give back now (glibc: the releasable top)
 * mallinfo is the same with every field clamped to INT_MAX. */
#include "alloc/alloc_fast.h"
#include "alloc/collect.h"
#include "alloc/sizeclass.h"
#include "runtime/runtime.h"
#include "shim/valgrind.h"
#include "prim/prim.h"
#include "hakmem.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>

#define HAK_SHIM HAK_EXPORT __attribute__((used))

/* ---- numbers ------------------------------------------------------------------------ */

static void ext_collect(hak_collect* c) {
  hak_ensure_init();
  hak_collect_all(c);
  hak_stats_note_in_use(c->bytes_in_use);
}

static uint64_t ext_unused_resident(const hak_collect* c) {
  uint64_t unused = c->segment_cache_dirty_bytes + c->large_cache_dirty_bytes;
  for (unsigned k = 0; k < HAK_SEG_KINDS; k++) unused += c->unused_dirty_bytes[k];
  return unused;
}

HAK_SHIM struct mallinfo2 mallinfo2(void) {
  hak_collect c;
  ext_collect(&c);
  struct mallinfo2 m = {0};
  uint64_t held = c.bytes_mapped, used = c.bytes_in_use;
  m.arena = held;
  m.ordblks = c.segments_mapped >= c.segments_unmapped ? c.segments_mapped - c.segments_unmapped : 0;
  m.hblks = c.large_allocs >= c.large_frees ? c.large_allocs - c.large_frees : 0;
  m.hblkhd = c.large_in_use_bytes;
  m.fsmblks = c.bytes_cached;
  m.uordblks = used;
  m.fordblks = held > used ? held - used : 0;
  m.keepcost = ext_unused_resident(&c);
  return m;
}

static int clamp_int(size_t v) { return v > (size_t)INT_MAX ? INT_MAX : (int)v; }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
HAK_SHIM struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m;
  m.arena = clamp_int(m2.arena);
  m.ordblks = clamp_int(m2.ordblks);
  m.smblks = clamp_int(m2.smblks);
  m.hblks = clamp_int(m2.hblks);
  m.hblkhd = clamp_int(m2.hblkhd);
  m.usmblks = clamp_int(m2.usmblks);
  m.fsmblks = clamp_int(m2.fsmblks);
  m.uordblks = clamp_int(m2.uordblks);
  m.fordblks = clamp_int(m2.fordblks);
  m.keepcost = clamp_int(m2.keepcost);
  return m;
}
#pragma GCC diagnostic pop

/* ---- trim, stats, info -------------------------------------------------------------- */

/* pad is ignored: hakmem keeps no heap top to leave padding on. */
HAK_SHIM int malloc_trim(size_t pad) {
  (void)pad;
  return hak_trim() > 0;
}

HAK_SHIM void malloc_stats(void) { hak_stats_print(); }

/* The tier of size class c (by its block size). */
static unsigned ext_tier(uint64_t block_size) {
  return block_size <= HAK_TINY_MAX ? HAK_SEG_TINY : block_size <= HAK_MID_MAX ? HAK_SEG_MID : HAK_SEG_POOL;
}

/* XML like glibc's (<malloc version="1">...), with hakmem's tiers in place of arenas:
 *   <tier name="tiny|mid|pool" max_size in_use held unused_resident/> per slab tier
 *     (in_use: bytes in live blocks; held: slab area assigned to the tier's classes;
 *      unused_resident: its unused slabs not yet given back),
 *   <tier name="large" blocks in_use/>,
 *   <sizes> one <size class block_size count in_use held allocs frees/> per class used,
 *   <total type="in_use|held|cached|unused_resident|rss" size/>. */
HAK_SHIM int malloc_info(int options, FILE* fp) {
  if (options != 0) { errno = EINVAL; return EINVAL; }
  if (!fp) { errno = EINVAL; return EINVAL; }   /* glibc would crash; say no instead */
  hak_collect c;
  ext_collect(&c);
  static const char* const tier_name[HAK_SEG_KINDS] = {"tiny", "mid", "pool", "large"};
  static const uint64_t tier_max[HAK_SEG_KINDS] = {HAK_TINY_MAX, HAK_MID_MAX, HAK_POOL_MAX, 0};
  uint64_t in_use[HAK_SEG_KINDS] = {0}, held[HAK_SEG_KINDS] = {0};
  for (unsigned i = 0; i < HAK_NCLS; i++) {
    unsigned t = ext_tier(c.cls[i].block_size);
    in_use[t] += c.cls[i].bytes_in_use;
    held[t] += c.cls[i].bytes_held;
  }
  fprintf(fp, "<malloc version=\"1\" allocator=\"hakmem\" hakmem_version=\"%s\">\n", HAKMEM_VERSION_STRING);
  fprintf(fp, "<tiers>\n");
  for (unsigned t = 0; t < HAK_SEG_LARGE; t++) {
    fprintf(fp, "<tier name=\"%s\" max_size=\"%llu\" in_use=\"%llu\" held=\"%llu\" unused_resident=\"%llu\"/>\n",
            tier_name[t], (unsigned long long)tier_max[t], (unsigned long long)in_use[t],
            (unsigned long long)held[t], (unsigned long long)c.unused_dirty_bytes[t]);
  }
  fprintf(fp, "<tier name=\"large\" blocks=\"%llu\" in_use=\"%llu\"/>\n",
          (unsigned long long)(c.large_allocs >= c.large_frees ? c.large_allocs - c.large_frees : 0),
          (unsigned long long)c.large_in_use_bytes);
  fprintf(fp, "</tiers>\n<sizes>\n");
  for (unsigned i = 0; i < HAK_NCLS; i++) {
    const hak_collect_class* k = &c.cls[i];
    if (!k->allocs && !k->frees && !k->bytes_held) continue;
    fprintf(fp, "<size class=\"%u\" tier=\"%s\" block_size=\"%llu\" count=\"%llu\" in_use=\"%llu\" "
            "held=\"%llu\" allocs=\"%llu\" frees=\"%llu\"/>\n",
            i, tier_name[ext_tier(k->block_size)], (unsigned long long)k->block_size,
            (unsigned long long)k->in_use, (unsigned long long)k->bytes_in_use,
            (unsigned long long)k->bytes_held, (unsigned long long)k->allocs, (unsigned long long)k->frees);
  }
  fprintf(fp, "</sizes>\n");
  fprintf(fp, "<total type=\"in_use\" size=\"%llu\"/>\n", (unsigned long long)c.bytes_in_use);
  fprintf(fp, "<total type=\"held\" size=\"%llu\"/>\n", (unsigned long long)c.bytes_mapped);
  fprintf(fp, "<total type=\"cached\" size=\"%llu\"/>\n", (unsigned long long)c.bytes_cached);
  fprintf(fp, "<total type=\"unused_resident\" size=\"%llu\"/>\n", (unsigned long long)ext_unused_resident(&c));
  fprintf(fp, "<total type=\"rss\" size=\"%llu\"/>\n", (unsigned long long)hak_prim_rss_bytes());
  fprintf(fp, "</malloc>\n");
  return 0;
}

/* glibc's M_* parameters (<malloc.h>). M_TRIM_THRESHOLD keeps its meaning: how much
 * freed memory may stay resident before it goes back to the OS; here that is the dirty
 * budget of the empty-segment cache (knob segment_cache_dirty_bytes), published as a new
 * knob snapshot. hakmem has no arenas, no heap top and a fixed 1 MiB boundary to its
 * large tier, so the others change nothing; they are accepted (1) as glibc accepts them,
 * except M_MXFAST out of glibc's range (0, as glibc). A parameter glibc does not know
 * gives 1 too: glibc 2.36 ignores those and returns 1. */
static int trim_threshold(int value) {
  if (value < 0) return 0;
  hak_knobs k;
  k.size = sizeof k;
  if (hak_knobs_get(&k) != 0) return 0;
  k.segment_cache_dirty_bytes = (uint64_t)value;
  return hak_knobs_publish(&k) == 0;
}

HAK_SHIM int mallopt(int param, int value) {
  switch (param) {
    case M_MXFAST:         return value >= 0 && (size_t)value <= 80 * sizeof(size_t) / 4;
    case M_TRIM_THRESHOLD: return trim_threshold(value);
    case M_NLBLKS: case M_GRAIN: case M_KEEP:   /* SVID, ignored by glibc as well */
    case M_TOP_PAD:                             /* no heap top: nothing to pad */
    case M_MMAP_THRESHOLD:                      /* the large tier starts at 1 MiB, fixed */
    case M_MMAP_MAX:                            /* large blocks are always mappings */
    case M_CHECK_ACTION:                        /* hakmem always reports and aborts */
    case M_PERTURB:                             /* not implemented */
    case M_ARENA_TEST: case M_ARENA_MAX:        /* per-thread heaps, no arenas */
    default:
      return 1;
  }
}

/* ---- glibc's internal names of the allocation calls --------------------------------- */

HAK_SHIM void* __libc_malloc(size_t size) { return HAK_VG_ALLOC(hak_malloc_fast(size)); }
HAK_SHIM void  __libc_free(void* p) { HAK_VG_FREE(p); hak_free_fast(p); }
HAK_SHIM void* __libc_calloc(size_t n, size_t size) { return HAK_VG_CALLOC(n, size); }
HAK_SHIM void* __libc_realloc(void* p, size_t size) { return HAK_VG_REALLOC(p, size); }
HAK_SHIM void* __libc_memalign(size_t align, size_t size) { return HAK_VG_ALLOC(hak_alloc_memalign(align, size)); }
HAK_SHIM void* __libc_valloc(size_t size) { return HAK_VG_ALLOC(hak_alloc_valloc(size)); }
HAK_SHIM void* __libc_pvalloc(size_t size) { return HAK_VG_ALLOC(hak_alloc_pvalloc(size)); }
