/* api.c — the public hak_* allocation API (include/hakmem.h). The same operations as
 * the libc names of preload.c, under names of hakmem's own, so that a program can call
 * hakmem however it is linked (libhakmem-api.a replaces no libc name). */
#include "alloc/alloc_fast.h"
#include "runtime/runtime.h"
#include "ace/ace.h"
#include "shim/valgrind.h"
#include "hakmem.h"

_Static_assert(HAKMEM_VERSION_MAJOR == 0 && HAKMEM_VERSION_MINOR == 2 && HAKMEM_VERSION_PATCH == 0 &&
               sizeof HAKMEM_VERSION_STRING == sizeof "0.2.0", "the version macros agree");

/* Fork handlers and the exit report, as soon as the library is loaded (also when the
 * program only uses the hak_* names). */
__attribute__((constructor)) static void api_init_at_load(void) {
  hak_runtime_init();
  hak_ace_init();
}

HAK_EXPORT void*  hak_malloc(size_t size) { return HAK_VG_ALLOC(hak_malloc_fast(size)); }
HAK_EXPORT void   hak_free(void* p) { HAK_VG_FREE(p); hak_free_fast(p); }
HAK_EXPORT void   hak_free_sized(void* p, size_t size) { (void)size; HAK_VG_FREE(p); hak_free_fast(p); }
HAK_EXPORT void   hak_free_aligned_sized(void* p, size_t align, size_t size) {
  (void)align; (void)size;
  HAK_VG_FREE(p);
  hak_free_fast(p);
}
HAK_EXPORT void*  hak_calloc(size_t n, size_t size) { return HAK_VG_CALLOC(n, size); }
HAK_EXPORT void*  hak_realloc(void* p, size_t size) { return HAK_VG_REALLOC(p, size); }
HAK_EXPORT void*  hak_reallocarray(void* p, size_t n, size_t size) { return HAK_VG_REALLOCARRAY(p, n, size); }
HAK_EXPORT void*  hak_aligned_alloc(size_t align, size_t size) { return HAK_VG_ALLOC(hak_alloc_aligned_alloc(align, size)); }
HAK_EXPORT int    hak_posix_memalign(void** out, size_t align, size_t size) {
  int r = hak_alloc_posix_memalign(out, align, size);
  if (r == 0) (void)HAK_VG_ALLOC(*out);
  return r;
}
HAK_EXPORT void*  hak_memalign(size_t align, size_t size) { return HAK_VG_ALLOC(hak_alloc_memalign(align, size)); }
HAK_EXPORT void*  hak_valloc(size_t size) { return HAK_VG_ALLOC(hak_alloc_valloc(size)); }
HAK_EXPORT void*  hak_pvalloc(size_t size) { return HAK_VG_ALLOC(hak_alloc_pvalloc(size)); }
HAK_EXPORT size_t hak_malloc_usable_size(const void* p) { return HAK_VG_USABLE(p); }
HAK_EXPORT void*  hak_expand(void* p, size_t size) { return HAK_VG_EXPAND(p, size); }
HAK_EXPORT int    hak_owns(const void* p) { return hak_alloc_owns(p); }
HAK_EXPORT void   hak_thread_flush(void) { hak_alloc_thread_flush(); }
HAK_EXPORT const char* hak_version(void) { return HAKMEM_VERSION_STRING; }
