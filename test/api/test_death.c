/* test_death.c — invalid frees must abort with a clear message.
 *
 * Each case forks a child whose stderr goes to a pipe; the child runs one bad
 * operation.  The parent asserts the child was killed by SIGABRT and that its
 * stderr holds the expected message.  A control case checks that a valid free
 * does not abort, so the harness cannot pass by accident.
 *
 * Built twice: test_death (libc names, libhakmem.so) and, with
 * HAK_TEST_HAK_API defined, test_hak_death (hak_* API, libhakmem-api.a).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hak_test.h"
#include "hakmem.h"       /* hak_thread_flush, in both builds */

#ifdef HAK_TEST_HAK_API
#include "hakmem.h"
#define T_MALLOC   hak_malloc
#define T_FREE     hak_free
#define T_REALLOC  hak_realloc
#define T_FREE_SIZED hak_free_sized
#else
#define T_MALLOC   malloc
#define T_FREE     free
#define T_REALLOC  realloc
#endif

/* Keep the compiler from seeing (and warning about) the bad pointers. */
static void* launder(void* p) {
  void* volatile v = p;
  return v;
}

enum { EXPECT_ABORT, EXPECT_EXIT0, EXPECT_SEGV };

/* A page shared with the children: a case that knows which pointer must be reported
 * stores it here (expect_ptr) before the bad call, and the parent then requires the exact
 * line "hakmem: free(): double free 0x<that pointer>". */
static volatile uintptr_t* shared_ptr;
static void expect_ptr(const void* p) { if (shared_ptr) *shared_ptr = (uintptr_t)p; }
/* The same page from byte 256: text the child's stderr must contain, written by the
 * child (it knows the addresses) before the bad call. */
static volatile char* shared_text;
#define SHARED_TEXT_MAX 256
static void expect_text(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* Nonzero when `line` (without its newline) is a whole line of buf. */
static int has_line(const char* buf, const char* line) {
  size_t n = strlen(line);
  for (const char* s = buf; (s = strstr(s, line)) != NULL; s++) {
    if ((s == buf || s[-1] == '\n') && (s[n] == '\n' || s[n] == 0)) return 1;
  }
  return 0;
}

/* Runs fn in a child; checks how it ended and that stderr contains `msg1` and,
 * when given, `msg2`. */
static void death_case_exact(const char* name, void (*fn)(void), int expect, const char* msg1,
                             const char* msg2, const char* exact_what);

static void death_case(const char* name, void (*fn)(void), int expect, const char* msg1,
                       const char* msg2) {
  death_case_exact(name, fn, expect, msg1, msg2, NULL);
}

/* exact_what: when set, stderr must hold the line "hakmem: free(): <exact_what> 0x<p>" for
 * the pointer p the child passed to expect_ptr. */
static void death_case_exact(const char* name, void (*fn)(void), int expect, const char* msg1,
                             const char* msg2, const char* exact_what) {
  if (shared_ptr) *shared_ptr = 0;
  if (shared_text) shared_text[0] = 0;
  int pfd[2];
  if (pipe(pfd) != 0) { CHECK_MSG(0, "%s: pipe failed", name); return; }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) { CHECK_MSG(0, "%s: fork failed", name); return; }
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    close(pfd[0]);
    dup2(pfd[1], 2);
    close(pfd[1]);
    alarm(20);  /* a hang is a failure, not a stuck ctest */
    fn();
    _exit(0);
  }
  close(pfd[1]);
  char buf[8192];
  size_t len = 0;
  for (;;) {
    ssize_t r = read(pfd[0], buf + len, sizeof buf - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
    if (len == sizeof buf - 1) break;
  }
  buf[len] = 0;
  close(pfd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  int ok_end;
  char how[64];
  if (WIFSIGNALED(st)) snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  else snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
  if (expect == EXPECT_ABORT) ok_end = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
  else if (expect == EXPECT_SEGV) ok_end = WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
  else ok_end = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  int ok_msg = (!msg1 || strstr(buf, msg1)) && (!msg2 || strstr(buf, msg2));
  if (expect == EXPECT_EXIT0) ok_msg = (len == 0);
  CHECK_MSG(ok_end, "%s: child %s, expected %s; its stderr:\n%s", name, how,
            expect == EXPECT_ABORT ? "SIGABRT" : expect == EXPECT_SEGV ? "SIGSEGV" : "exit 0", len ? buf : "(empty)");
  CHECK_MSG(ok_msg, "%s: child stderr lacks \"%s%s%s\"; it was:\n%s", name, msg1 ? msg1 : "",
            msg2 ? "\" and \"" : "", msg2 ? msg2 : "", len ? buf : "(empty)");
  if (exact_what) {
    char line[128];
    uintptr_t p = shared_ptr ? *shared_ptr : 0;
    snprintf(line, sizeof line, "hakmem: free(): %s %#" PRIxPTR, exact_what, p);
    CHECK_MSG(p != 0, "%s: the child did not record the pointer it passed", name);
    CHECK_MSG(p != 0 && has_line(buf, line), "%s: child stderr lacks the line \"%s\"; it was:\n%s", name, line,
              len ? buf : "(empty)");
  }
  if (shared_text && shared_text[0]) {
    char want[SHARED_TEXT_MAX];
    for (size_t i = 0; i < sizeof want; i++) want[i] = shared_text[i];
    want[sizeof want - 1] = 0;
    CHECK_MSG(strstr(buf, want) != NULL, "%s: child stderr lacks \"%s\"; it was:\n%s", name, want,
              len ? buf : "(empty)");
  }
  printf("  %-36s %s\n", name, how);
}

static void expect_text(const char* fmt, ...) {
  if (!shared_text) return;
  char tmp[SHARED_TEXT_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  for (size_t i = 0; i < sizeof tmp; i++) shared_text[i] = tmp[i];
}

/* ---- the bad operations (each runs in a child) ---- */

static void warm_up(void) {
  /* the allocator is initialised and has blocks of every tier around */
  void* v[8];
  size_t s[8] = {16, 64, 900, 5000, 40000, 100000, 2 << 20, 24};
  for (int i = 0; i < 8; i++) { v[i] = T_MALLOC(s[i]); memset(v[i], 1, s[i]); }
  for (int i = 0; i < 8; i += 2) T_FREE(v[i]);
}

static int static_var[16];

static void free_stack(void) { int local[4] = {0}; warm_up(); T_FREE(launder(local)); }
static void free_static(void) { warm_up(); T_FREE(launder(static_var)); }
static void free_mmap(void) {
  warm_up();
  char* m = (char*)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  T_FREE(launder(m + 64));
}
/* a foreign pointer on a 2 MiB boundary, where a SuperSlab header would be */
static void free_mmap_2m(void) {
  warm_up();
  size_t len = 6u << 20;
  char* m = (char*)mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uintptr_t a = ((uintptr_t)m + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
  memset((void*)a, 0x41, 4096);
  T_FREE(launder((void*)(a + 256)));
}
#ifdef HAK_TEST_HAK_API
static void free_libc_block(void) {
  /* in the hak_* build: a block of the system allocator given to hak_free */
  warm_up();
  void* p = malloc(64);
  T_FREE(launder(p));
}
#endif
static void free_interior_64(void) {
  warm_up();
  char* p = (char*)T_MALLOC(64);
  T_FREE(launder(p + 8));
}
static void free_interior_100000(void) {
  warm_up();
  char* p = (char*)T_MALLOC(100000);
  T_FREE(launder(p + 16));
}
static void free_interior_5000(void) {
  warm_up();
  char* p = (char*)T_MALLOC(5000);
  T_FREE(launder(p + 16));
}
static void free_segment_header(void) {
  /* an address in the header page of the segment (2 MiB aligned) that holds a block:
   * it maps to slab 0 and lies below that slab's first block */
  warm_up();
  char* p = (char*)T_MALLOC(64);
  char* base = (char*)((uintptr_t)p & ~(((uintptr_t)2 << 20) - 1));
  T_FREE(launder(base + 256));
}
static void free_interior_large(void) {
  warm_up();
  char* p = (char*)T_MALLOC(3u << 20);
  T_FREE(launder(p + 4096));
}
static void free_before_large(void) {
  warm_up();
  char* p = (char*)T_MALLOC(3u << 20);
  T_FREE(launder(p - 16));  /* inside the mapping, in front of the block */
}
/* the 2 MiB-aligned start of the SuperSlab holding a tiny block: its header, never a
 * block (DESIGN: ptr & ~(2 MiB-1) finds the header).  Not so for other tiers, nor with
 * HAKMEM_TINY_USE_SUPERSLAB=0: there a block of some class may start at that address. */
static void free_region_base_small(void) {
  warm_up();
  char* p = (char*)T_MALLOC(64);
  T_FREE(launder((void*)((uintptr_t)p & ~(uintptr_t)((2u << 20) - 1))));
}
static void realloc_freed(void) {
  warm_up();
  void* p = T_MALLOC(64);
  T_FREE(p);
  void* r = T_REALLOC(launder(p), 100);
  (void)r;
}
/* the new size fits the old block: an in-place "success" would hand out a free block */
static void realloc_freed_inplace(void) {
  warm_up();
  void* p = T_MALLOC(64);
  T_FREE(p);
  void* r = T_REALLOC(launder(p), 60);
  void* q = T_MALLOC(64);
  (void)r; (void)q;
}
static void double_free_small(void) {
  warm_up();
  void* p = T_MALLOC(64);
  T_FREE(p);
  T_FREE(launder(p));
}
static void double_free_small_gap(void) {
  warm_up();
  void* p = T_MALLOC(32);
  void* q = T_MALLOC(32);
  T_FREE(p);
  T_FREE(q);
  T_FREE(launder(p));  /* not the most recently freed block */
}
/* double frees of one size, tier by tier; the pointer is recorded for the exact message */
static void double_free_sized(size_t n) {
  warm_up();
  void* p = T_MALLOC(n);
  memset(p, 1, n);
  T_FREE(p);
  expect_ptr(p);
  T_FREE(launder(p));
}
static void double_free_tiny(void) { double_free_sized(64); }
static void double_free_mid(void) { double_free_sized(5000); }
static void double_free_mid_8k(void) { double_free_sized(8192); }
static void double_free_pool(void) { double_free_sized(100000); }
static void double_free_large(void) { double_free_sized(3u << 20); }  /* the mapping sits in the large cache */
static void double_free_large_2m(void) { double_free_sized(2u << 20); }

/* cross-thread double frees: the block belongs to another thread's heap */
static void* dt_alloc_worker(void* arg) {
  size_t n = (size_t)(uintptr_t)arg;
  void* p = T_MALLOC(n);
  memset(p, 2, n);
  return p;
}
static void* dt_free_worker(void* arg) {
  T_FREE(launder(arg));
  return NULL;
}
static void* dt_alloc_free_worker(void* arg) {
  size_t n = (size_t)(uintptr_t)arg;
  void* p = T_MALLOC(n);
  memset(p, 3, n);
  T_FREE(p);
  return p;
}
static void* other_thread(void* (*fn)(void*), void* arg) {
  pthread_t t;
  void* r = NULL;
  if (pthread_create(&t, NULL, fn, arg) != 0) _exit(9);
  pthread_join(t, &r);
  return r;
}
/* a thread allocated it (and exited); this thread frees it twice: remote frees */
static void cross_thread_twice(size_t n) {
  warm_up();
  void* p = other_thread(dt_alloc_worker, (void*)(uintptr_t)n);
  T_FREE(p);
  expect_ptr(p);
  T_FREE(launder(p));
}
static void double_free_cross_tiny(void) { cross_thread_twice(64); }
static void double_free_cross_mid(void) { cross_thread_twice(8192); }
static void double_free_cross_pool(void) { cross_thread_twice(100000); }
static void double_free_cross_large(void) { cross_thread_twice(2u << 20); }
/* a thread allocated and freed it (into its own cache) and exited; this thread frees it
 * again. Known bug (see main): reported as "invalid pointer". */
static void double_free_after_owner_freed(void) {
  warm_up();
  void* p = other_thread(dt_alloc_free_worker, (void*)(uintptr_t)8192);
  expect_ptr(p);
  T_FREE(launder(p));
}
/* this thread allocated and freed it; another thread frees it again (the abort happens there) */
static void double_free_in_other_thread(void) {
  warm_up();
  void* p = T_MALLOC(64);
  memset(p, 4, 64);
  T_FREE(p);
  expect_ptr(p);
  other_thread(dt_free_worker, p);
}
static void realloc_stack(void) {
  int local[4] = {0};
  warm_up();
  void* r = T_REALLOC(launder(local), 100);
  (void)r;
}
static void realloc_interior(void) {
  warm_up();
  char* p = (char*)T_MALLOC(64);
  void* r = T_REALLOC(launder(p + 8), 100);
  (void)r;
}
/* ---- writes over free blocks (docs/RELIABILITY.md): the free-list checks ---- */

/* Freed block p of 64 bytes, in this thread's cache (the next malloc(64) pops it):
 * its link is overwritten with `link`. The pop stops with a message naming p. */
static void uaf_link_write(uintptr_t link) {
  warm_up();
  char* q = (char*)T_MALLOC(64);
  char* p = (char*)T_MALLOC(64);
  T_FREE(q);
  T_FREE(p);
  expect_text("malloc(): free list corrupted (a write after free, or past the end of a block?): free block %p of size 64 links to 0x",
              (void*)p);
  *(volatile uintptr_t*)launder(p) = link;
  for (int i = 0; i < 4; i++) launder(T_MALLOC(64));
}
static void uaf_zero_link(void) { uaf_link_write(0); }
static void uaf_pointer_link(void) {
  /* a pointer to a live block of the same class: the classic way to steer malloc */
  uaf_link_write((uintptr_t)T_MALLOC(64));
}
/* bad_inputs.sh's use_after_free_write: the whole freed block overwritten */
static void uaf_memset(void) {
  warm_up();
  char* p = (char*)T_MALLOC(64);
  char* q = (char*)T_MALLOC(64);
  T_FREE(q);
  T_FREE(p);
  /* the link fails its check; a hardened build finds the mark gone first */
  expect_text("(a write after free, or past the end of a block?): free block %p of size 64", (void*)p);
  memset(launder(p), 0x41, 64);
  for (int i = 0; i < 4; i++) launder(T_MALLOC(64));
}
/* An off-by-one NUL: a 24-byte request's block (32 usable bytes) written one byte past
 * its usable size, onto the freed block right after it. */
static void nul_byte_overflow(void) {
  warm_up();
  char* v[64];
  for (int i = 0; i < 64; i++) v[i] = (char*)T_MALLOC(24);
  size_t usable = 32;
  for (int i = 0; i < 63; i++) {
    if (v[i + 1] != v[i] + usable) continue;
    T_FREE(v[i + 1]);
    if (((volatile unsigned char*)v[i + 1])[0] == 0) { T_MALLOC(24); continue; }   /* the byte is 0 already */
    expect_text("free block %p of size 32 links to", (void*)v[i + 1]);
    ((volatile char*)launder(v[i]))[usable] = 0;
    for (int k = 0; k < 4; k++) launder(T_MALLOC(24));
    return;
  }
  fprintf(stderr, "no two adjacent blocks\n");
}
/* Blocks given back to their slab (hak_thread_flush): a refill checks every link it
 * takes, and the mark of every block. */
static void slab_list_write(int word) {
  warm_up();
  char* v[64];
  for (int i = 0; i < 64; i++) v[i] = (char*)T_MALLOC(48);
  for (int i = 0; i < 64; i++) T_FREE(v[i]);
  hak_thread_flush();
  if (word == 0) expect_text("malloc(): free list corrupted (a write after free, or past the end of a block?): free block %p of size 48 links to 0x", (void*)v[20]);
  else expect_text("malloc(): free block overwritten (a write after free, or past the end of a block?): free block %p of size 48", (void*)v[20]);
  ((volatile uintptr_t*)launder(v[20]))[word] = 0;
  for (int i = 0; i < 200; i++) launder(T_MALLOC(48));
}
static void slab_list_link(void) { slab_list_write(0); }
static void slab_list_mark(void) { slab_list_write(1); }
/* A block another thread freed waits on its slab's remote stack: the owner's drain
 * checks it. */
static void* remote_free_worker(void* arg) {
  char** v = arg;
  for (int i = 0; i < 64; i++) T_FREE(v[i]);
  return NULL;
}
static void remote_stack_link(void) {
  warm_up();
  char* v[64];
  for (int i = 0; i < 64; i++) v[i] = (char*)T_MALLOC(80);
  other_thread(remote_free_worker, v);       /* its exit pushes its remote buffer */
  expect_text("free list corrupted (a write after free, or past the end of a block?): free block %p of size 80 links to 0x", (void*)v[40]);
  *(volatile uintptr_t*)launder(v[40]) = (uintptr_t)v[3];
  for (int i = 0; i < 4000; i++) launder(T_MALLOC(80));
}
/* A block handed out carries neither key: its first two words read 0 (malloc, not
 * calloc: nothing else clears them), whether it came from the TLS list or a refill. */
static void no_key_in_fresh_blocks(void) {
  static const size_t sizes[] = {16, 64, 1000, 5000, 40000, 300000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    char* v[300];
    for (int i = 0; i < 300; i++) { v[i] = (char*)T_MALLOC(sizes[k]); memset(v[i], 0x5a, sizes[k] < 64 ? sizes[k] : 64); }
    for (int i = 0; i < 300; i++) T_FREE(v[i]);
    if (k & 1) hak_thread_flush();           /* the next mallocs refill from the slabs */
    for (int i = 0; i < 300; i++) {
      volatile uintptr_t* w = (volatile uintptr_t*)T_MALLOC(sizes[k]);
      if (w[0] != 0 || w[1] != 0) {
        fprintf(stderr, "size %zu: fresh block %p holds %#lx %#lx\n", sizes[k], (void*)w, (unsigned long)w[0],
                (unsigned long)w[1]);
        _exit(1);
      }
      v[i] = (char*)w;
    }
    for (int i = 0; i < 300; i++) T_FREE(v[i]);
  }
}

#ifdef HAK_TEST_HARDENED
/* True when the page at a is an inaccessible mapping of its own ("---p" in maps). */
static int is_guard_page(uintptr_t a) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) found = !strcmp(perms, "---p");
  }
  fclose(f);
  return found;
}
/* A hardened build ends every segment with a guard page: a write one byte past the
 * last block of a segment faults (SIGSEGV) instead of reaching the next segment. */
static void guard_page_overflow(void) {
  warm_up();
  for (int i = 0; i < 20000; i++) {
    char* p = (char*)T_MALLOC(1024);
    uintptr_t end = (uintptr_t)p + 1024;
    if (end % 4096 == 0 && is_guard_page(end)) {
      fprintf(stderr, "block %p ends at a guard page\n", (void*)p);
      ((volatile char*)launder(p))[1024] = 0;
      fprintf(stderr, "the write past the block went through\n");
      _exit(0);
    }
  }
  fprintf(stderr, "no block of 1024 bytes ends at a guard page\n");
  _exit(0);
}
#endif

#ifdef HAK_TEST_HAK_API
/* hak_expand validates like realloc: a freed block, a stack address, an interior pointer */
static void expand_freed(void) {
  warm_up();
  void* p = T_MALLOC(64);
  T_FREE(p);
  void* r = hak_expand(launder(p), 32);   /* fits the old size: must not "succeed" */
  (void)r;
}
static void expand_stack(void) {
  int local[4] = {0};
  warm_up();
  void* r = hak_expand(launder(local), 8);
  (void)r;
}
static void expand_interior_large(void) {
  warm_up();
  char* p = (char*)T_MALLOC(3u << 20);
  void* r = hak_expand(launder(p + 4096), 8);
  (void)r;
}
#endif
static void valid_frees(void) {
  warm_up();
  void* p = T_MALLOC(64);
  T_FREE(p);
  p = T_MALLOC(100000);
  p = T_REALLOC(p, 5);
  T_FREE(p);
  T_FREE(NULL);
}

#ifdef HAK_TEST_HAK_API
#define FREE_INVALID      "free(): invalid pointer"
#define FREE_INVALID_0X   "free(): invalid pointer 0x"
#define FREE_DOUBLE       "free(): double free"
#define FREE_ANY          "free(): "
#define REALLOC_INVALID   "realloc(): invalid pointer"
#define REALLOC_ANY       "realloc(): "
#define PREFIX            "hakmem: "
#else
#define FREE_INVALID      "hakmem: free(): invalid pointer"
#define FREE_INVALID_0X   "hakmem: free(): invalid pointer 0x"
#define FREE_DOUBLE       "hakmem: free(): double free"
#define FREE_ANY          "hakmem: free(): "
#define REALLOC_INVALID   "hakmem: realloc(): invalid pointer"
#define REALLOC_ANY       "hakmem: realloc(): "
#define PREFIX            NULL
#endif

#define DEATH(fn, msg) static void test_death_##fn(void) { death_case(#fn, fn, EXPECT_ABORT, msg, PREFIX); }
DEATH(free_stack, FREE_INVALID_0X)
DEATH(free_static, FREE_INVALID_0X)
DEATH(free_mmap, FREE_INVALID_0X)
DEATH(free_mmap_2m, FREE_INVALID_0X)
DEATH(free_interior_64, FREE_INVALID)
DEATH(free_interior_100000, FREE_INVALID)
DEATH(free_interior_5000, FREE_INVALID)
DEATH(free_interior_large, FREE_INVALID)
DEATH(free_segment_header, FREE_INVALID)
DEATH(free_before_large, FREE_INVALID)
static void test_death_free_region_base_small(void) {
  const char* e = getenv("HAKMEM_TINY_USE_SUPERSLAB");
  if (e && strcmp(e, "1") != 0) {
    printf("  (HAKMEM_TINY_USE_SUPERSLAB=%s: no SuperSlab header to free; skipped)\n", e);
    return;
  }
  death_case("free_region_base_small", free_region_base_small, EXPECT_ABORT, FREE_INVALID, PREFIX);
}
DEATH(realloc_freed, REALLOC_ANY)
DEATH(realloc_freed_inplace, REALLOC_ANY)
DEATH(double_free_small, FREE_DOUBLE)
DEATH(double_free_small_gap, FREE_DOUBLE)
/* README: "freeing a block twice prints `hakmem: free(): double free 0x…` and aborts" */
#define DEATH_DOUBLE(fn) static void test_death_##fn(void) { \
  death_case_exact(#fn, fn, EXPECT_ABORT, FREE_DOUBLE, PREFIX, "double free"); }
DEATH_DOUBLE(double_free_tiny)
DEATH_DOUBLE(double_free_mid)
DEATH_DOUBLE(double_free_mid_8k)
DEATH_DOUBLE(double_free_pool)
DEATH_DOUBLE(double_free_large)
DEATH_DOUBLE(double_free_large_2m)
DEATH_DOUBLE(double_free_cross_tiny)
DEATH_DOUBLE(double_free_cross_mid)
DEATH_DOUBLE(double_free_cross_pool)
DEATH_DOUBLE(double_free_cross_large)
DEATH_DOUBLE(double_free_after_owner_freed)
DEATH_DOUBLE(double_free_in_other_thread)
DEATH(realloc_stack, REALLOC_INVALID)
DEATH(realloc_interior, REALLOC_INVALID)
#ifdef HAK_TEST_HAK_API
DEATH(free_libc_block, FREE_INVALID_0X)
DEATH(expand_freed, "hakmem: hak_expand(): invalid pointer")
DEATH(expand_stack, "hakmem: hak_expand(): invalid pointer 0x")
DEATH(expand_interior_large, "hakmem: hak_expand(): invalid pointer 0x")
#endif

#ifdef HAK_TEST_HAK_API
#define LIST_CORRUPT "malloc(): free list corrupted"
#define ANY_CORRUPT  "(a write after free, or past the end of a block?)"
#else
#define LIST_CORRUPT "hakmem: malloc(): free list corrupted"
#define ANY_CORRUPT  "(a write after free, or past the end of a block?)"
#endif
DEATH(uaf_zero_link, LIST_CORRUPT)
DEATH(uaf_pointer_link, LIST_CORRUPT)
DEATH(uaf_memset, ANY_CORRUPT)
DEATH(nul_byte_overflow, LIST_CORRUPT)
DEATH(slab_list_link, LIST_CORRUPT)
DEATH(slab_list_mark, ANY_CORRUPT)
DEATH(remote_stack_link, ANY_CORRUPT)
#ifdef HAK_TEST_HARDENED
static void test_death_guard_page_overflow(void) {
  death_case("guard_page_overflow", guard_page_overflow, EXPECT_SEGV, "ends at a guard page", NULL);
}
#endif
static void test_no_key_in_fresh_blocks(void) {
  death_case("no_key_in_fresh_blocks", no_key_in_fresh_blocks, EXPECT_EXIT0, NULL, NULL);
}

static void test_control_valid_frees(void) {
  death_case("valid_frees (control)", valid_frees, EXPECT_EXIT0, NULL, NULL);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  void* page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page != MAP_FAILED) {
    shared_ptr = (volatile uintptr_t*)page;
    shared_text = (volatile char*)page + 256;
  }
  HT_RUN(test_control_valid_frees);
  HT_RUN(test_death_free_stack);
  HT_RUN(test_death_free_static);
  HT_RUN(test_death_free_mmap);
  HT_RUN(test_death_free_mmap_2m);
  HT_RUN(test_death_free_interior_64);
  HT_RUN(test_death_free_interior_100000);
  HT_RUN(test_death_free_interior_5000);
  HT_RUN(test_death_free_interior_large);
  HT_RUN(test_death_free_segment_header);
  HT_RUN(test_death_free_before_large);
  HT_RUN(test_death_free_region_base_small);
  HT_RUN(test_death_realloc_freed);
  HT_RUN(test_death_realloc_freed_inplace);
  HT_RUN(test_death_double_free_small);
  HT_RUN(test_death_double_free_small_gap);
  HT_RUN(test_death_double_free_tiny);
  HT_RUN(test_death_double_free_mid);
  HT_RUN(test_death_double_free_mid_8k);
  HT_RUN(test_death_double_free_pool);
  HT_RUN(test_death_double_free_large);
  HT_RUN(test_death_double_free_large_2m);
  HT_RUN(test_death_double_free_cross_tiny);
  HT_RUN(test_death_double_free_cross_mid);
  HT_RUN(test_death_double_free_cross_pool);
  HT_RUN(test_death_double_free_cross_large);
  /* a double free of a block whose owner thread freed it and exited (the segment went
   * back to the segment cache) */
  HT_RUN(test_death_double_free_after_owner_freed);
  HT_RUN(test_death_double_free_in_other_thread);
  HT_RUN(test_death_realloc_stack);
  HT_RUN(test_death_realloc_interior);
#ifdef HAK_TEST_HAK_API
  HT_RUN(test_death_free_libc_block);
  HT_RUN(test_death_expand_freed);
  HT_RUN(test_death_expand_stack);
  HT_RUN(test_death_expand_interior_large);
#endif
  HT_RUN(test_death_uaf_zero_link);
  HT_RUN(test_death_uaf_pointer_link);
  HT_RUN(test_death_uaf_memset);
  HT_RUN(test_death_nul_byte_overflow);
  HT_RUN(test_death_slab_list_link);
  HT_RUN(test_death_slab_list_mark);
  HT_RUN(test_death_remote_stack_link);
  HT_RUN(test_no_key_in_fresh_blocks);
#ifdef HAK_TEST_HARDENED
  HT_RUN(test_death_guard_page_overflow);
#endif
  return ht_report();
}
