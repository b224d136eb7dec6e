/* test_api.c — conformance of the libc allocation names as hakmem exports them.
 *
 * Built linked to libhakmem.so (test_api) and as a plain program run under
 * LD_PRELOAD (test_api_preload).  It compiles and runs against glibc alone too
 * (then the C23 and cfree cases skip and the hakmem-specific checks report
 * glibc's differences), which is how the tests themselves are tested.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Not in glibc 2.36: weak, so the binary also links without hakmem. */
extern void free_sized(void* p, size_t size) __attribute__((weak));
extern void free_aligned_sized(void* p, size_t alignment, size_t size) __attribute__((weak));
extern void cfree(void* p) __attribute__((weak));

#define T_MALLOC              malloc
#define T_FREE                free
#define T_CALLOC              calloc
#define T_REALLOC             realloc
#define T_REALLOCARRAY        reallocarray
#define T_ALIGNED_ALLOC       aligned_alloc
#define T_POSIX_MEMALIGN      posix_memalign
#define T_MEMALIGN            memalign
#define T_VALLOC              valloc
#define T_PVALLOC             pvalloc
#define T_USABLE              malloc_usable_size
#define T_FREE_SIZED          free_sized
#define T_FREE_ALIGNED_SIZED  free_aligned_sized
#define T_CFREE               cfree

/* hakmem serves the libc names (linked or preloaded), not glibc */
static int api_hakmem_active(void) { return dlsym(RTLD_DEFAULT, "hak_owns") != NULL; }
#define T_HAKMEM_ACTIVE       api_hakmem_active

#include "api_cases.h"

typedef int (*owns_fn)(const void*);
typedef long long (*optval_fn)(const char*);

/* hakmem is the allocator behind the libc names (not glibc). */
static void test_hakmem_is_active(void) {
  owns_fn owns = (owns_fn)dlsym(RTLD_DEFAULT, "hak_owns");
  if (!owns) {
    CHECK_MSG(!require_hakmem(), "hak_owns not found: hakmem is not loaded");
    printf("  (hakmem not loaded: testing the system allocator)\n");
    return;
  }
  static const size_t sizes[] = {8, 1000, 20000, 500000, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void* p = malloc(sizes[i]);
    CHECK_MSG(owns(p), "hak_owns(malloc(%zu)) == 0: the libc name is not hakmem's", sizes[i]);
    free(p);
  }
  int local = 0;
  CHECK(!owns(&local));
  CHECK(!owns(NULL));
  void* m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(!owns(m));
  munmap(m, 4096);
}

/* HAKMEM_TINY_USE_SUPERSLAB (default 1) is what the environment says. */
static void test_superslab_option(void) {
  optval_fn val = (optval_fn)dlsym(RTLD_DEFAULT, "hak_option_value");
  if (!val) {
    CHECK(!require_hakmem());
    return;
  }
  const char* e = getenv("HAKMEM_TINY_USE_SUPERSLAB");
  long long want = (e && strcmp(e, "0") == 0) ? 0 : 1;
  CHECK_EQ(val("HAKMEM_TINY_USE_SUPERSLAB"), want);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_hakmem_is_active);
  HT_RUN(test_superslab_option);
  API_RUN_SHARED_CASES();
  return ht_report();
}
