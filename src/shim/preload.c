/* preload.c — the libc allocation names, for -lhakmem and LD_PRELOAD. Only overrides
 * live here; malloc and free inline the fast paths so that they cost no extra call. */
#include "alloc/alloc_fast.h"
#include "runtime/runtime.h"
#include "ace/ace.h"
#include "shim/valgrind.h"

#include <stdlib.h>

#define HAK_SHIM HAK_EXPORT __attribute__((used))

/* Fork handlers and the exit report at load time. api.c has the same constructor; a
 * static link may take this object without that one. Both are idempotent. */
__attribute__((constructor)) static void preload_init_at_load(void) {
  hak_runtime_init();
  hak_ace_init();
}

HAK_SHIM void* malloc(size_t size) { return HAK_VG_ALLOC(hak_malloc_fast(size)); }
HAK_SHIM void free(void* p) { HAK_VG_FREE(p); hak_free_fast(p); }
HAK_SHIM void cfree(void* p) { HAK_VG_FREE(p); hak_free_fast(p); }
HAK_SHIM void free_sized(void* p, size_t size) { (void)size; HAK_VG_FREE(p); hak_free_fast(p); }
HAK_SHIM void free_aligned_sized(void* p, size_t align, size_t size) {
  (void)align; (void)size;
  HAK_VG_FREE(p);
  hak_free_fast(p);
}
HAK_SHIM void* calloc(size_t n, size_t size) { return HAK_VG_CALLOC(n, size); }
HAK_SHIM void* realloc(void* p, size_t size) { return HAK_VG_REALLOC(p, size); }
HAK_SHIM void* reallocarray(void* p, size_t n, size_t size) { return HAK_VG_REALLOCARRAY(p, n, size); }
HAK_SHIM void* aligned_alloc(size_t align, size_t size) { return HAK_VG_ALLOC(hak_alloc_aligned_alloc(align, size)); }
HAK_SHIM int posix_memalign(void** out, size_t align, size_t size) {
  int r = hak_alloc_posix_memalign(out, align, size);
  if (r == 0) (void)HAK_VG_ALLOC(*out);
  return r;
}
HAK_SHIM void* memalign(size_t align, size_t size) { return HAK_VG_ALLOC(hak_alloc_memalign(align, size)); }
HAK_SHIM void* valloc(size_t size) { return HAK_VG_ALLOC(hak_alloc_valloc(size)); }
HAK_SHIM void* pvalloc(size_t size) { return HAK_VG_ALLOC(hak_alloc_pvalloc(size)); }
HAK_SHIM size_t malloc_usable_size(void* p) { return HAK_VG_USABLE(p); }
