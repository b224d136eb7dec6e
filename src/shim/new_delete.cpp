// new_delete.cpp — C++ operator new/delete (plain, array, nothrow, sized, aligned) on
// hakmem. Throwing forms call the installed new_handler and retry, and throw
// std::bad_alloc when there is none, as the standard requires.
#include <cstddef>
#include <new>

#include "hakmem.h"

namespace {

void* new_retry(std::size_t n, std::size_t align, bool nothrow) {
  for (;;) {
    void* p = align ? hak_aligned_alloc(align, n) : hak_malloc(n);
    if (p) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    h();
  }
}

inline void* new_impl(std::size_t n) {
  void* p = hak_malloc(n);
  return __builtin_expect(p != nullptr, 1) ? p : new_retry(n, 0, false);
}
inline void* new_aligned(std::size_t n, std::align_val_t a) {
  std::size_t al = static_cast<std::size_t>(a);
  void* p = hak_aligned_alloc(al, n);
  return __builtin_expect(p != nullptr, 1) ? p : new_retry(n, al, false);
}
inline void* new_nothrow(std::size_t n, std::size_t al) noexcept {
  try {
    void* p = al ? hak_aligned_alloc(al, n) : hak_malloc(n);
    return p ? p : new_retry(n, al, true);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

#define HAK_CXX __attribute__((visibility("default")))

HAK_CXX void* operator new(std::size_t n) { return new_impl(n); }
HAK_CXX void* operator new[](std::size_t n) { return new_impl(n); }
HAK_CXX void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
HAK_CXX void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
HAK_CXX void* operator new(std::size_t n, std::align_val_t a) { return new_aligned(n, a); }
HAK_CXX void* operator new[](std::size_t n, std::align_val_t a) { return new_aligned(n, a); }
HAK_CXX void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<std::size_t>(a));
}
HAK_CXX void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<std::size_t>(a));
}

HAK_CXX void operator delete(void* p) noexcept { hak_free(p); }
HAK_CXX void operator delete[](void* p) noexcept { hak_free(p); }
HAK_CXX void operator delete(void* p, const std::nothrow_t&) noexcept { hak_free(p); }
HAK_CXX void operator delete[](void* p, const std::nothrow_t&) noexcept { hak_free(p); }
HAK_CXX void operator delete(void* p, std::size_t) noexcept { hak_free(p); }
HAK_CXX void operator delete[](void* p, std::size_t) noexcept { hak_free(p); }
HAK_CXX void operator delete(void* p, std::align_val_t) noexcept { hak_free(p); }
HAK_CXX void operator delete[](void* p, std::align_val_t) noexcept { hak_free(p); }
HAK_CXX void operator delete(void* p, std::size_t, std::align_val_t) noexcept { hak_free(p); }
HAK_CXX void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { hak_free(p); }
HAK_CXX void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { hak_free(p); }
HAK_CXX void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { hak_free(p); }
