/* hak_base.h — compiler helpers, atomics and assertion levels used by every layer.
 * Nothing here allocates or calls into libc. */
#ifndef HAK_BASE_H
#define HAK_BASE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define HAK_LIKELY(x)   __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_INLINE      static inline __attribute__((always_inline))
#define HAK_NOINLINE    __attribute__((noinline))
#define HAK_COLD        __attribute__((cold, noinline))
#define HAK_NORETURN    __attribute__((noreturn))
#define HAK_EXPORT      __attribute__((visibility("default")))
#define HAK_HIDDEN      __attribute__((visibility("hidden")))
#define HAK_TLS         __thread __attribute__((tls_model("initial-exec")))
#define HAK_CACHELINE   64
#define HAK_ALIGNED(n)  __attribute__((aligned(n)))

#define HAK_ALIGN_UP(x, a)   (((x) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define HAK_ALIGN_DOWN(x, a) ((x) & ~((uintptr_t)(a) - 1))
#define HAK_IS_POW2(x)       ((x) != 0 && (((x) & ((x) - 1)) == 0))
#define HAK_ARRAY_LEN(a)     (sizeof(a) / sizeof((a)[0]))

#define hak_load_relaxed(p)     atomic_load_explicit((p), memory_order_relaxed)
#define hak_load_acquire(p)     atomic_load_explicit((p), memory_order_acquire)
#define hak_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define hak_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)

/* Internal invariants: checked in debug builds, free in release builds. */
#ifndef NDEBUG
#define HAK_ASSERT(c) do { if (HAK_UNLIKELY(!(c))) hak_assert_fail(#c, __FILE__, __LINE__); } while (0)
#else
#define HAK_ASSERT(c) ((void)0)
#endif
HAK_HIDDEN HAK_NORETURN HAK_COLD void hak_assert_fail(const char* expr, const char* file, int line);

/* Heap corruption or a bad pointer from the program: one line on stderr, then abort. */
HAK_HIDDEN HAK_NORETURN HAK_COLD void hak_fatal(const char* fn, const char* what, const void* p);
/* Heap corruption found at a free block: "hakmem: FN(): WHAT: free block B of size N
 * LINK_LABEL L" (the last part only when link_label is not NULL), then abort. */
HAK_HIDDEN HAK_NORETURN HAK_COLD void hak_fatal_block(const char* fn, const char* what, const void* block,
                                                      size_t size, const char* link_label, uintptr_t link);

#endif /* HAK_BASE_H */
