// test_cxx.cpp — C++ operator new/delete as hakmem exports them (linked to libhakmem.so).
//
// Plain, array, nothrow, sized and aligned forms; failure (std::bad_alloc,
// nullptr for nothrow, the new_handler protocol); containers and threads on top.
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "hak_test.h"

namespace {

typedef int (*owns_fn)(const void*);

bool require_hakmem() {
  const char* e = getenv("HAK_TEST_REQUIRE_HAKMEM");
  return e && *e && strcmp(e, "0") != 0;
}

size_t opaque(size_t x) {
  volatile size_t v = x;
  return v;
}

template <class T>
T* launder_ptr(T* p) {
  T* volatile v = p;
  return v;
}

owns_fn owns = nullptr;

void test_hakmem_is_active() {
  owns = (owns_fn)dlsym(RTLD_DEFAULT, "hak_owns");
  if (!owns) {
    CHECK_MSG(!require_hakmem(), "hak_owns not found: hakmem is not loaded");
    printf("  (hakmem not loaded: testing the system allocator)\n");
    return;
  }
  int* p = new int(5);
  CHECK_MSG(owns(p), "new int is not from hakmem");
  delete p;
  char* a = new char[100000];
  CHECK_MSG(owns(a), "new char[100000] is not from hakmem");
  delete[] a;
}

struct Counted {
  static std::atomic<int> live;
  uint64_t v[3];
  Counted() : v{1, 2, 3} { live++; }
  ~Counted() { live--; }
};
std::atomic<int> Counted::live{0};

void test_plain_and_array() {
  int* p = new int(42);
  CHECK(p && *p == 42);
  delete p;
  Counted* c = new Counted;
  CHECK_EQ(Counted::live.load(), 1);
  delete c;
  CHECK_EQ(Counted::live.load(), 0);
  Counted* arr = new Counted[1000];
  CHECK_EQ(Counted::live.load(), 1000);
  CHECK(arr[999].v[2] == 3);
  delete[] arr;
  CHECK_EQ(Counted::live.load(), 0);
  for (size_t n : {0ul, 1ul, 100ul, 1025ul, 40000ul, 2000000ul}) {
    unsigned char* b = new unsigned char[n];
    CHECK(b != nullptr);
    memset(b, 0xab, n);
    delete[] b;
  }
  // operator new(0) gives distinct non-null pointers
  void* z1 = ::operator new(opaque(0));
  void* z2 = ::operator new(opaque(0));
  CHECK(z1 && z2 && z1 != z2);
  ::operator delete(z1);
  ::operator delete(z2);
  void* a1 = ::operator new[](opaque(0));
  CHECK(a1 != nullptr);
  ::operator delete[](a1);
  // default alignment of operator new is __STDCPP_DEFAULT_NEW_ALIGNMENT__
  for (size_t n = 1; n < 5000; n += 37) {
    void* q = ::operator new(n);
    CHECK_ALIGNED(q, __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    ::operator delete(q);
  }
}

void test_nothrow() {
  int* p = new (std::nothrow) int(7);
  CHECK(p && *p == 7);
  delete p;
  Counted* arr = new (std::nothrow) Counted[10];
  CHECK(arr != nullptr);
  delete[] arr;
  void* q = ::operator new(100, std::nothrow);
  CHECK(q != nullptr);
  ::operator delete(q, std::nothrow);
  q = ::operator new[](100, std::nothrow);
  CHECK(q != nullptr);
  ::operator delete[](q, std::nothrow);
}

void test_sized_delete() {
  static const size_t sizes[] = {1, 8, 24, 100, 1024, 1025, 5000, 32768, 32769, 300000, 1048577, 3u << 20};
  for (int round = 0; round < 3; round++) {
    for (size_t n : sizes) {
      void* p = ::operator new(n);
      memset(p, 1, n);
      errno = 1234;
      ::operator delete(p, n);
      CHECK_EQ(errno, 1234);
      p = ::operator new[](n);
      memset(p, 2, n);
      ::operator delete[](p, n);
    }
  }
  // the compiler's sized delete for a class with a non-trivial destructor
  struct S { char c[77]; ~S() { c[0] = 0; } };
  S* s = new S;
  delete s;
  S* sa = new S[33];
  delete[] sa;
  CHECK(1);
}

struct alignas(64) Line {
  char c[64];
};
struct alignas(4096) Page {
  char c[100];
};
struct alignas(256) Big {
  char c[3000];
  Big() { memset(c, 5, sizeof c); }
};

void test_aligned() {
  for (int i = 0; i < 200; i++) {
    Line* l = new Line;
    CHECK_ALIGNED(l, 64);
    memset(l, 1, sizeof *l);
    Page* p = new Page;
    CHECK_ALIGNED(p, 4096);
    memset(p, 2, sizeof *p);
    Big* b = new Big;
    CHECK_ALIGNED(b, 256);
    delete l;
    delete p;
    delete b;
  }
  Line* la = new Line[100];
  CHECK_ALIGNED(la, 64);
  memset(la, 3, sizeof(Line) * 100);
  delete[] la;
  Page* pa = new Page[5];
  CHECK_ALIGNED(pa, 4096);
  delete[] pa;
  Page* pn = new (std::nothrow) Page;
  CHECK(pn != nullptr);
  CHECK_ALIGNED(pn, 4096);
  delete pn;
  Page* pan = new (std::nothrow) Page[3];
  CHECK(pan != nullptr);
  CHECK_ALIGNED(pan, 4096);
  delete[] pan;
  auto up = std::make_unique<Big[]>(7);
  CHECK_ALIGNED(up.get(), 256);

  // explicit operator new(size, align_val_t) for every power of two up to 4 MiB
  static const size_t sizes[] = {1, 16, 100, 4097, 40000, (1u << 20) + 1};
  for (size_t al = 1; al <= (4u << 20); al <<= 1) {
    for (size_t n : sizes) {
      std::align_val_t a = static_cast<std::align_val_t>(al);
      void* p = ::operator new(n, a);
      CHECK_MSG(((uintptr_t)p & (al - 1)) == 0, "operator new(%zu, align %zu) = %p", n, al, p);
      memset(p, 7, n);
      if (n & 1) ::operator delete(p, n, a);
      else ::operator delete(p, a);
      p = ::operator new[](n, a);
      CHECK_ALIGNED(p, al);
      memset(p, 8, n);
      if (n & 1) ::operator delete[](p, n, a);
      else ::operator delete[](p, a);
      p = ::operator new(n, a, std::nothrow);
      CHECK(p != nullptr);
      CHECK_ALIGNED(p, al);
      ::operator delete(p, a, std::nothrow);
      p = ::operator new[](n, a, std::nothrow);
      CHECK(p != nullptr);
      CHECK_ALIGNED(p, al);
      ::operator delete[](p, a, std::nothrow);
    }
  }
}

void test_failure() {
  static const size_t huge[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 4095};
  for (size_t n0 : huge) {
    size_t n = opaque(n0);
    bool threw = false;
    try {
      void* p = ::operator new(n);
      ::operator delete(p);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    CHECK_MSG(threw, "operator new(%#zx) did not throw std::bad_alloc", n);
    threw = false;
    try {
      void* p = ::operator new[](n);
      ::operator delete[](p);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    CHECK_MSG(threw, "operator new[](%#zx) did not throw std::bad_alloc", n);
    threw = false;
    try {
      void* p = ::operator new(n, std::align_val_t(64));
      ::operator delete(p, std::align_val_t(64));
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    CHECK_MSG(threw, "operator new(%#zx, align 64) did not throw std::bad_alloc", n);
    threw = false;
    try {
      void* p = ::operator new[](n, std::align_val_t(4096));
      ::operator delete[](p, std::align_val_t(4096));
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    CHECK_MSG(threw, "operator new[](%#zx, align 4096) did not throw std::bad_alloc", n);

    void* p = ::operator new(n, std::nothrow);
    CHECK_MSG(p == nullptr, "operator new(%#zx, nothrow) = %p", n, p);
    p = ::operator new[](n, std::nothrow);
    CHECK_MSG(p == nullptr, "operator new[](%#zx, nothrow) = %p", n, p);
    p = ::operator new(n, std::align_val_t(128), std::nothrow);
    CHECK_MSG(p == nullptr, "operator new(%#zx, align 128, nothrow) = %p", n, p);
    p = ::operator new[](n, std::align_val_t(128), std::nothrow);
    CHECK_MSG(p == nullptr, "operator new[](%#zx, align 128, nothrow) = %p", n, p);
  }
  // new T[n] whose byte count overflows
  bool threw = false;
  try {
    size_t n = opaque(SIZE_MAX / 8);
    Counted* c = new Counted[n];
    delete[] c;
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK(threw);
  CHECK_EQ(Counted::live.load(), 0);
}

std::atomic<int> handler_calls{0};
void one_shot_handler() {
  handler_calls++;
  std::set_new_handler(nullptr);  // the next failure throws
}

void test_new_handler() {
  handler_calls = 0;
  std::set_new_handler(one_shot_handler);
  bool threw = false;
  try {
    void* p = ::operator new(opaque(SIZE_MAX - 100));
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK(threw);
  CHECK_MSG(handler_calls.load() == 1, "new_handler called %d times, expected 1", handler_calls.load());
  handler_calls = 0;
  std::set_new_handler(one_shot_handler);
  void* p = ::operator new(opaque(SIZE_MAX - 100), std::nothrow);
  CHECK(p == nullptr);
  CHECK_MSG(handler_calls.load() == 1, "nothrow new: new_handler called %d times, expected 1", handler_calls.load());
  std::set_new_handler(nullptr);
}

void test_containers_and_threads() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 20000; i++) {
    std::string k = "key-" + std::to_string(i * 7919 % 10007) + std::string((size_t)(i % 50), 'x');
    m[k].push_back(i);
  }
  size_t total = 0;
  for (auto& kv : m) total += kv.second.size();
  CHECK_EQ(total, 20000);
  m.clear();
  // objects made on one thread, destroyed on another
  std::vector<std::unique_ptr<std::string>> made(8 * 2000);
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; t++)
    ts.emplace_back([&made, t] {
      for (int i = 0; i < 2000; i++)
        made[(size_t)t * 2000 + (size_t)i] = std::make_unique<std::string>((size_t)(i % 300 + 1), (char)('a' + t));
    });
  for (auto& th : ts) th.join();
  ts.clear();
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; t++)
    ts.emplace_back([&made, &bad, t] {
      int src = (t + 3) % 8;
      for (int i = 0; i < 2000; i++) {
        auto& s = made[(size_t)src * 2000 + (size_t)i];
        if (s->size() != (size_t)(i % 300 + 1) || (*s)[0] != (char)('a' + src)) bad++;
        s.reset();
      }
    });
  for (auto& th : ts) th.join();
  CHECK_EQ(bad.load(), 0);
}

}  // namespace

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_hakmem_is_active);
  HT_RUN(test_plain_and_array);
  HT_RUN(test_nothrow);
  HT_RUN(test_sized_delete);
  HT_RUN(test_aligned);
  HT_RUN(test_failure);
  HT_RUN(test_new_handler);
  HT_RUN(test_containers_and_threads);
  return ht_report();
}
