/* sizeclass.h — size classes shared by the tiny, mid and pool tiers.
 *
 * Classes are multiples of 16 bytes (malloc must return 16-byte aligned memory on
 * x86_64): 16, 32, ..., 128 in steps of 16, then eight classes per doubling up to
 * 1 MiB. Above 128 B the internal waste (class - size) / class stays below 1/9
 * (11.1 %); below 128 B it is at most 15 bytes. sizeclass.c validates the table.
 *
 *   classes  0..31   tiny   16 B .. 1 KiB   (SuperSlab slabs of 64 KiB)
 *   classes 32..71   mid    1 KiB .. 32 KiB (up to 8 KiB SuperSlab slabs of 64 KiB,
 *                                            then mid segment slabs of 512 KiB)
 *   classes 72..111  pool   32 KiB .. 1 MiB (single-slab pool segments)
 * The tiers name size ranges (stats, ACE's tier mix, malloc_info); which segment serves
 * a class is hak_cls_kind (alloc/init.c): blocks up to HAK_SS_MAX come from SuperSlab
 * slabs. A 512 KiB slab given to a class that uses a few blocks of it - threads that
 * come and go - kept pages of the class it served before resident past its own blocks;
 * at 64 KiB that is bounded by a few of the class's blocks (mstress: 9-16 MB of mid
 * slabs resident, 4-9 MB of it past the slabs' bump pointers, before the change).
 */
#ifndef HAK_SIZECLASS_H
#define HAK_SIZECLASS_H

#include "base/base.h"

#define HAK_NCLS          112
#define HAK_TINY_MAX      1024u
#define HAK_MID_MAX       (32u << 10)
#define HAK_POOL_MAX      (1u << 20)
#define HAK_CLS_TINY_LAST 31
#define HAK_CLS_MID_LAST  71
#define HAK_SS_MAX        (8u << 10)   /* largest block served from SuperSlab slabs ... */
#define HAK_CLS_SS_LAST   55           /* ... its class (sizeclass.c checks) */

/* Block size of each class. */
HAK_HIDDEN extern const uint32_t hak_cls_size[HAK_NCLS];
/* Class for sizes 0..1024, indexed by (size + 15) >> 4. The list is an X-macro so that
 * the malloc fast path's table of TLS-list offsets (alloc_fast.h) is built from it. */
#define HAK_CLS_SMALL_LIST(X) \
  X(0) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) \
  X(15) X(16) X(16) X(17) X(17) X(18) X(18) X(19) X(19) X(20) X(20) X(21) X(21) X(22) X(22) X(23) \
  X(23) X(24) X(24) X(24) X(24) X(25) X(25) X(25) X(25) X(26) X(26) X(26) X(26) X(27) X(27) X(27) \
  X(27) X(28) X(28) X(28) X(28) X(29) X(29) X(29) X(29) X(30) X(30) X(30) X(30) X(31) X(31) X(31) \
  X(31)
HAK_HIDDEN extern const uint8_t hak_cls_small[65];

/* Class of `size` (must be <= HAK_POOL_MAX). */
HAK_INLINE unsigned hak_size_to_cls(size_t size) {
  if (HAK_LIKELY(size <= HAK_TINY_MAX)) return hak_cls_small[(size + 15) >> 4];
  size_t s = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll(s);          /* floor(log2(s)), >= 10 here */
  return 8u + (b - 7u) * 8u + (unsigned)((s >> (b - 3u)) & 7u);
}

/* Validate the table against the formula and the waste bound; aborts on mismatch. */
HAK_HIDDEN void hak_sizeclass_check(void);

#endif
