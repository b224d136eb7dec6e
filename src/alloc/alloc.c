/* alloc.c — the allocation front door.
 *
 * Call tree:
 *   hak_malloc ── hak_malloc_fast (alloc_fast.h: TLS pop, inline)
 *                 └─ hak_malloc_slow: process init, thread heap init, size checks
 *                      ├─ size > 1 MiB → hak_large_alloc
 *                      ├─ exiting thread → the global heap under hak_global_lock
 *                      └─ hak_tcache_refill (tls_cache.c)
 *   hak_calloc / hak_aligned_alloc / posix_memalign / memalign / valloc / pvalloc
 *     → hak_alloc_aligned: a class whose blocks are all aligned (align and size ≤ 1 MiB),
 *       else large
 */
#include "alloc/alloc_fast.h"
#include "base/options.h"
#include "prim/prim.h"

#include <errno.h>
#include <string.h>

#define TC_OFF_ENTRY(c) (uint16_t)HAK_TC_OFF(c),
const uint16_t hak_tc_off_small[65] = { HAK_CLS_SMALL_LIST(TC_OFF_ENTRY) };
_Static_assert(HAK_TC_OFF(HAK_NCLS) <= UINT16_MAX, "TLS-list offsets fit 16 bits");

/* An allocation from a class, for a thread whose heap is gone (TSD destructors). */
static void* alloc_cls_global(unsigned cls, bool borrow) {
  hak_lock_take(&hak_global_lock);
  void* p = hak_tcache_pop_fast(&hak_heap_global, cls);
  if (!p) p = hak_tcache_refill(&hak_heap_global, cls, borrow);
  hak_lock_release(&hak_global_lock);
  return p;
}

void* hak_alloc_cls_slow(unsigned cls, bool borrow) {
  hak_ensure_init();
  hak_heap* h = hak_tls_heap;
  if (HAK_UNLIKELY(h == &hak_heap_empty)) {
    h = hak_heap_thread_init();
    if (!h) { errno = ENOMEM; return NULL; }
  }
  void* p;
  if (HAK_UNLIKELY(h == &hak_heap_dead)) p = alloc_cls_global(cls, borrow);
  else {
    p = hak_tcache_pop_fast(h, cls);
    if (!p) {
      p = hak_tcache_refill(h, cls, borrow);
      hak_slow_hook_tick(h);
    }
  }
  if (HAK_UNLIKELY(!p)) errno = ENOMEM;
  return p;
}

_Atomic(void (*)(void)) hak_slow_hook;
_Atomic(void (*)(void)) hak_thread_exit_hook;

static void call_slow_hook(void) {
  void (*hook)(void) = hak_load_acquire(&hak_slow_hook);
  if (hook) hook();
}

void hak_slow_hook_tick(hak_heap* h) {
  if (HAK_LIKELY(h->hook_countdown-- != 0)) return;
  h->hook_countdown = HAK_SLOW_HOOK_PERIOD;
  call_slow_hook();
}

/* Large blocks need no heap, so they cannot use a heap's countdown: every 16th large
 * allocation of the process calls the hook (a shared counter costs nothing next to a
 * mapping), and every one that hands out pages still to be faulted in (the hook is a
 * few loads next to those faults). Without it a program of large blocks alone never
 * started ACE; with every 16th alone, one that builds 300 MiB of 15 MiB blocks
 * started it when the build was nearly over. */
void hak_slow_hook_tick_large(bool fresh) {
  static _Atomic uint32_t large_ticks;
  if ((atomic_fetch_add_explicit(&large_ticks, 1, memory_order_relaxed) & 15) == 15 || fresh) call_slow_hook();
}

HAK_NOINLINE void* hak_malloc_slow(size_t size) {
  if (HAK_UNLIKELY(size > HAK_POOL_MAX)) {
    if (size > PTRDIFF_MAX) { errno = ENOMEM; return NULL; }
    hak_ensure_init();
    return hak_large_alloc(size, 0, false);
  }
  return hak_alloc_cls_slow(hak_size_to_cls(size), true);
}

void* hak_alloc_calloc(size_t n, size_t size) {
  size_t total;
  if (HAK_UNLIKELY(__builtin_mul_overflow(n, size, &total) || total > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  if (total > HAK_POOL_MAX) {
    hak_ensure_init();
    return hak_large_alloc(total, 0, true);
  }
  void* p = hak_malloc_fast(total);
  if (HAK_LIKELY(p != NULL)) memset(p, 0, total);
  return p;
}

/* The smallest class ≥ size whose block size is a multiple of align (align ≤ 1 MiB):
 * a slab's block 0 sits on the largest power of two dividing its block size
 * (segment.c), so every block of that class is aligned. An 8 KiB-aligned 100-byte
 * block is a block of the 8 KiB class (its second page stays untouched) instead of a
 * mapping of its own: 70,000 of them used to hit vm.max_map_count. */
static unsigned aligned_cls(size_t size, size_t align) {
  unsigned c = hak_size_to_cls(size < align ? align : size);
  while (hak_cls_size[c] & (align - 1)) c++;   /* the 1 MiB class ends the search */
  return c;
}

void* hak_alloc_aligned(size_t align, size_t size) {
  if (align <= 16) return hak_malloc_fast(size);
  if (HAK_UNLIKELY(size > PTRDIFF_MAX)) { errno = ENOMEM; return NULL; }
  hak_ensure_init();
  if (align <= HAK_POOL_MAX && size <= HAK_POOL_MAX) {
    unsigned c = aligned_cls(size, align);
    void* p = hak_tcache_pop_fast(hak_tls_heap, c);
    return p ? p : hak_alloc_cls_slow(c, false);
  }
  return hak_large_alloc(size, align, false);
}

void* hak_alloc_aligned_alloc(size_t align, size_t size) {
  if (HAK_UNLIKELY(!HAK_IS_POW2(align))) { errno = EINVAL; return NULL; }
  return hak_alloc_aligned(align, size);
}

int hak_alloc_posix_memalign(void** out, size_t align, size_t size) {
  if (HAK_UNLIKELY(!HAK_IS_POW2(align) || align % sizeof(void*) != 0)) return EINVAL;
  int e = errno;
  void* p = hak_alloc_aligned(align, size);
  if (!p) { errno = e; return ENOMEM; }
  *out = p;
  return 0;
}

void* hak_alloc_memalign(size_t align, size_t size) {
  /* glibc: a non-power-of-two alignment is rounded up to the next power of two. */
  if (align > ((size_t)1 << 62)) { errno = EINVAL; return NULL; }
  if (!HAK_IS_POW2(align) && align > 1) align = (size_t)1 << (64 - __builtin_clzll(align - 1));
  return hak_alloc_aligned(align, size);
}

void* hak_alloc_valloc(size_t size) { return hak_alloc_aligned(HAK_PAGE_SIZE, size); }

void* hak_alloc_pvalloc(size_t size) {
  if (size > PTRDIFF_MAX) { errno = ENOMEM; return NULL; }
  size_t rounded = HAK_ALIGN_UP(size, HAK_PAGE_SIZE);
  if (rounded == 0) rounded = HAK_PAGE_SIZE;
  return hak_alloc_aligned(HAK_PAGE_SIZE, rounded);
}
