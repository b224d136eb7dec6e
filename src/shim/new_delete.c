/* new_delete.c — C++ operator new/delete (plain, array, nothrow, sized, aligned), in C
 * under their mangled names so that libhakmem does not pull libstdc++ into programs
 * written in C.
 *
 * Out of memory in a throwing form: call std::get_new_handler()'s handler and retry;
 * with no handler, throw std::bad_alloc through libstdc++'s std::__throw_bad_alloc
 * (a weak reference: present whenever the program is C++). This file is compiled with
 * -fexceptions so the exception can unwind through it. The nothrow forms call the
 * handler too and return NULL when there is none; a handler that throws from inside a
 * nothrow new ends the program (catching would need libstdc++). */
#include "hakmem.h"
#include "base/base.h"
#include "base/io.h"

#include <stdbool.h>
#include <stdlib.h>

typedef void (*hak_new_handler)(void);
extern hak_new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));   /* std::get_new_handler() */
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));  /* std::__throw_bad_alloc() */

static HAK_NOINLINE void* new_retry(size_t n, size_t align, bool nothrow) {
  for (;;) {
    hak_new_handler h = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (!h) {
      if (nothrow) return NULL;
      if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
      static const char msg[] = "hakmem: operator new: out of memory\n";
      hak_write_err(msg, sizeof msg - 1);
      abort();
    }
    h();
    void* p = align ? hak_aligned_alloc(align, n) : hak_malloc(n);
    if (p) return p;
  }
}

static inline void* new_plain(size_t n) {
  void* p = hak_malloc(n);
  return HAK_LIKELY(p != NULL) ? p : new_retry(n, 0, false);
}
static inline void* new_nothrow(size_t n) {
  void* p = hak_malloc(n);
  return HAK_LIKELY(p != NULL) ? p : new_retry(n, 0, true);
}
static inline void* new_aligned(size_t n, size_t a) {
  void* p = hak_aligned_alloc(a, n);
  return HAK_LIKELY(p != NULL) ? p : new_retry(n, a, false);
}
static inline void* new_aligned_nothrow(size_t n, size_t a) {
  void* p = hak_aligned_alloc(a, n);
  return HAK_LIKELY(p != NULL) ? p : new_retry(n, a, true);
}

#define CXX HAK_EXPORT
typedef struct nothrow_t nothrow_t;   /* only passed by reference */

CXX void* _Znwm(size_t n) { return new_plain(n); }                                        /* new(size_t) */
CXX void* _Znam(size_t n) { return new_plain(n); }                                        /* new[](size_t) */
CXX void* _ZnwmRKSt9nothrow_t(size_t n, const nothrow_t* t) { (void)t; return new_nothrow(n); }
CXX void* _ZnamRKSt9nothrow_t(size_t n, const nothrow_t* t) { (void)t; return new_nothrow(n); }
CXX void* _ZnwmSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a); }
CXX void* _ZnamSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a); }
CXX void* _ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const nothrow_t* t) { (void)t; return new_aligned_nothrow(n, a); }
CXX void* _ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const nothrow_t* t) { (void)t; return new_aligned_nothrow(n, a); }

CXX void _ZdlPv(void* p) { hak_free(p); }                                                 /* delete(void*) */
CXX void _ZdaPv(void* p) { hak_free(p); }
CXX void _ZdlPvRKSt9nothrow_t(void* p, const nothrow_t* t) { (void)t; hak_free(p); }
CXX void _ZdaPvRKSt9nothrow_t(void* p, const nothrow_t* t) { (void)t; hak_free(p); }
CXX void _ZdlPvm(void* p, size_t n) { (void)n; hak_free(p); }                              /* sized */
CXX void _ZdaPvm(void* p, size_t n) { (void)n; hak_free(p); }
CXX void _ZdlPvSt11align_val_t(void* p, size_t a) { (void)a; hak_free(p); }                /* aligned */
CXX void _ZdaPvSt11align_val_t(void* p, size_t a) { (void)a; hak_free(p); }
CXX void _ZdlPvmSt11align_val_t(void* p, size_t n, size_t a) { (void)n; (void)a; hak_free(p); }
CXX void _ZdaPvmSt11align_val_t(void* p, size_t n, size_t a) { (void)n; (void)a; hak_free(p); }
CXX void _ZdlPvSt11align_val_tRKSt9nothrow_t(void* p, size_t a, const nothrow_t* t) { (void)a; (void)t; hak_free(p); }
CXX void _ZdaPvSt11align_val_tRKSt9nothrow_t(void* p, size_t a, const nothrow_t* t) { (void)a; (void)t; hak_free(p); }
