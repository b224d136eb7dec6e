/* vg.h — the one memcheck client request the allocator's internals need in a
 * -DHAK_VALGRIND=ON build (the shim announces blocks: shim/valgrind.h). Nothing in other
 * builds. A slab's never-used space may hold blocks of an earlier class that memcheck
 * was told are freed (no access); carving new blocks there makes each one addressable
 * again before hakmem writes its free-list words into it. */
#ifndef HAK_BASE_VG_H
#define HAK_BASE_VG_H

#if HAK_VALGRIND
#include <valgrind/memcheck.h>
#define HAK_VG_MAKE_UNDEFINED(p, n) ((void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n)))
#else
#define HAK_VG_MAKE_UNDEFINED(p, n) ((void)0)
#endif

#endif
