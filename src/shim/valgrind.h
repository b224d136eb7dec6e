/* valgrind.h — memcheck client requests in the shim's allocation entry points, for
 * builds configured with -DHAK_VALGRIND=ON (<valgrind/valgrind.h>, Debian's valgrind
 * package). Without the option every macro is its plain argument or nothing, so the
 * default build's entry points compile to exactly what they were.
 *
 * With it, each block handed out is announced with VALGRIND_MALLOCLIKE_BLOCK at its
 * usable size (hakmem itself reads and copies whole blocks, slack included), and each
 * block given back with VALGRIND_FREELIKE_BLOCK before hakmem takes it back, so memcheck
 * reports reads and writes of freed blocks, invalid and double frees, and leaks of a
 * program that links hakmem. The first 16 bytes of a freed block are then made defined
 * again: they hold hakmem's free-list link and free mark, which hakmem reads and writes
 * (a use after free that touches only them is not reported; the third word too in blocks of
 * 24 bytes or more: the tag of given-back inner pages). realloc is malloc + copy +
 * free when the block must grow (no in-place or mremap growth in this build), so that no
 * block is ever handed back to hakmem before memcheck knows it is free. */
#ifndef HAK_SHIM_VALGRIND_H
#define HAK_SHIM_VALGRIND_H

#include "alloc/alloc_fast.h"

#if HAK_VALGRIND
#include <errno.h>
#include <string.h>
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

static inline void* hak_vg_alloced(void* p, int zeroed) {
  if (p) VALGRIND_MALLOCLIKE_BLOCK(p, hak_alloc_usable_size(p), 0, zeroed);   /* key is 0: defined */
  return p;
}
/* malloc_usable_size reads the block's free mark to catch a freed block: its first 16
 * bytes, which the program may not have written yet. Read with them marked defined,
 * then give them back their state, so memcheck neither complains inside hakmem nor
 * loses track of the program's uninitialised bytes. */
static inline size_t hak_vg_usable_in(const void* p, const char* fn) {
  if (!p) return 0;
  unsigned char vbits[16];
  int got = VALGRIND_GET_VBITS(p, vbits, 16);
  if (got == 1) VALGRIND_MAKE_MEM_DEFINED(p, 16);
  size_t n = hak_usable_checked(p, fn);   /* aborts on a bad pointer, naming fn */
  if (got == 1) (void)VALGRIND_SET_VBITS(p, vbits, 16);
  return n;
}
static inline size_t hak_vg_usable(const void* p) { return hak_vg_usable_in(p, "malloc_usable_size"); }
/* Before hakmem takes a block back: memcheck forgets it, then the words hakmem keeps
 * in a free block become defined again (next, key; and the given-back tag of blocks
 * of 24 bytes and more, HAK_BLOCK_TAG_WORD). */
static inline void hak_vg_freeing(void* p) {
  if (!p) return;
  size_t n = hak_vg_usable_in(p, "free");
  VALGRIND_FREELIKE_BLOCK(p, 0);
  VALGRIND_MAKE_MEM_DEFINED(p, n >= 24 ? 24 : 16);
}
/* calloc: hakmem zeroes a reused block before it returns it, so memcheck must know the
 * block first: allocate, announce, then zero here. */
static inline void* hak_vg_calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) { errno = ENOMEM; return NULL; }
  void* p = hak_vg_alloced(hak_malloc_fast(total), 0);
  if (p) memset(p, 0, hak_vg_usable(p));
  return p;
}
static inline void* hak_vg_realloc(void* p, size_t size) {
  if (!p) return hak_vg_alloced(hak_malloc_fast(size), 0);
  if (size == 0) { hak_vg_freeing(p); hak_free_fast(p); return NULL; }
  size_t have = hak_vg_usable_in(p, "realloc");
  if (size <= have) return p;
  void* q = hak_vg_alloced(hak_malloc_fast(size), 0);
  if (!q) return NULL;
  memcpy(q, p, have);
  hak_vg_freeing(p);
  hak_free_fast(p);
  return q;
}
/* hak_expand: only a size that already fits (no mremap growth in this build). */
static inline void* hak_vg_expand(void* p, size_t size) {
  if (!p) { errno = EINVAL; return NULL; }
  if (size <= hak_vg_usable_in(p, "hak_expand")) return p;
  errno = ENOMEM;
  return NULL;
}
static inline void* hak_vg_reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) { errno = ENOMEM; return NULL; }
  return hak_vg_realloc(p, total);
}
#define HAK_VG_ALLOC(expr)        hak_vg_alloced((expr), 0)
#define HAK_VG_CALLOC(n, size)    hak_vg_calloc((n), (size))
#define HAK_VG_USABLE(p)          hak_vg_usable(p)
#define HAK_VG_FREE(p)            hak_vg_freeing(p)
#define HAK_VG_REALLOC(p, size)   hak_vg_realloc((p), (size))
#define HAK_VG_REALLOCARRAY(p, n, size) hak_vg_reallocarray((p), (n), (size))
#define HAK_VG_EXPAND(p, size)    hak_vg_expand((p), (size))
#else
#define HAK_VG_ALLOC(expr)        (expr)
#define HAK_VG_CALLOC(n, size)    hak_alloc_calloc((n), (size))
#define HAK_VG_USABLE(p)          hak_alloc_usable_size(p)
#define HAK_VG_FREE(p)            ((void)0)
#define HAK_VG_REALLOC(p, size)   hak_alloc_realloc((p), (size))
#define HAK_VG_REALLOCARRAY(p, n, size) hak_alloc_reallocarray((p), (n), (size))
#define HAK_VG_EXPAND(p, size)    hak_alloc_expand((p), (size))
#endif

#endif
