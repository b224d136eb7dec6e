/* hakmem.h — public API of the hakmem allocator.
 *
 * The hak_* functions are always available, whether hakmem is linked with
 * -lhakmem, preloaded (LD_PRELOAD=libhakmem.so) or linked statically without
 * replacing the libc names (libhakmem-api.a, used by sanitizer builds).
 * Their behaviour matches the libc function of the same name (glibc's where
 * glibc documents it): sizes above PTRDIFF_MAX and multiplication overflow
 * give NULL with errno = ENOMEM; bad alignments give EINVAL; hak_free keeps
 * errno; invalid or double frees print "hakmem: <fn>(): ..." and abort.
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; hak_version() gives the library's, which may be newer. */
#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 2
#define HAKMEM_VERSION_PATCH 0
#define HAKMEM_VERSION_STRING "0.2.0"

/* The library's version, "MAJOR.MINOR.PATCH" (a static string). */
const char* hak_version(void);

void*  hak_malloc(size_t size);
void   hak_free(void* p);
void*  hak_calloc(size_t n, size_t size);
void*  hak_realloc(void* p, size_t size);
void*  hak_reallocarray(void* p, size_t n, size_t size);
void*  hak_aligned_alloc(size_t alignment, size_t size);
int    hak_posix_memalign(void** out, size_t alignment, size_t size);
void*  hak_memalign(size_t alignment, size_t size);
void*  hak_valloc(size_t size);
void*  hak_pvalloc(size_t size);
size_t hak_malloc_usable_size(const void* p);
/* Grow block p in place or not at all: returns p when, without moving, the block now
 * has at least `size` usable bytes (it already had them, or a large block's mapping
 * grew into the free address space after it), else NULL with errno = ENOMEM and the
 * block unchanged. Never shrinks, never copies. NULL p gives NULL with EINVAL; an
 * invalid or freed p aborts like realloc. With HAKMEM_REALLOC_INPLACE=0 only a size that
 * already fits succeeds. */
void*  hak_expand(void* p, size_t size);
void   hak_free_sized(void* p, size_t size);
void   hak_free_aligned_sized(void* p, size_t alignment, size_t size);

/* Nonzero when p is a live-or-free block address inside memory hakmem manages
 * (a quick registry lookup; does not prove p is a block start). */
int    hak_owns(const void* p);

/* Return cached thread memory to the shared pools now (also done at thread exit). */
void   hak_thread_flush(void);

/* Options (HAKMEM_* environment variables, read once at start-up). */
typedef struct hak_option_info {
  const char* name;     /* environment variable name, e.g. "HAKMEM_VERBOSE" */
  long long   value;    /* effective value */
  long long   def;      /* default */
  long long   min, max; /* accepted range (inclusive) */
  const char* unit;     /* "bool", "bytes", "ms", "count", ... */
  const char* help;     /* one line */
  int         from_env; /* 1 when the environment set it */
} hak_option_info;

/* Number of options; hak_option_get(i) describes option i (NULL when out of range). */
int                     hak_option_count(void);
const hak_option_info*  hak_option_get(int i);
/* Effective value of the option named `name` (with or without the HAKMEM_ prefix);
 * returns -1 and sets errno = ENOENT when there is no such option. */
long long               hak_option_value(const char* name);

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_H */
