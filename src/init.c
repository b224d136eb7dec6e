/* init.c — process start-up and fork handling.
 *
 * Programs call malloc before any constructor runs, so init is lazy: the first slow
 * path calls hak_init_slow, which parses options, checks the size-class table, draws the
 * free-block key and creates the thread-exit key — none of which allocates — then marks
 * hakmem ready and only then registers fork handlers (pthread_atfork may call malloc,
 * which is served normally by then). Nothing is torn down at exit: other threads may
 * still allocate after destructors ran.
 *
 * fork: prepare takes every allocator lock in the fixed order of hak_lock.h; the
 * parent releases them; the child re-initialises them. Other threads' heaps are left
 * as they were in the child (their memory is unreachable there, not corrupted). */
#include "alloc/alloc.h"
#include "options.h"
#include "hak_knobs.h"
#include "prim/prim.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

HAK_HIDDEN void hak_stats_init(void);

_Atomic int hak_init_state;
uintptr_t hak_free_key;
uint8_t hak_cls_kind[HAK_NCLS];

static void fork_prepare(void) {
  hak_heap_fork_lock();        /* heap pool → global heap → abandoned */
  hak_segment_fork_lock();     /* segment cache */
  hak_large_fork_lock();       /* large cache */
}
static void fork_parent(void) {
  hak_large_fork_unlock(false);
  hak_segment_fork_unlock(false);
  hak_heap_fork_unlock(false);
}
static void fork_child(void) {
  hak_large_fork_unlock(true);
  hak_segment_fork_unlock(true);
  hak_heap_fork_unlock(true);
}

HAK_COLD void hak_init_slow(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&hak_init_state, &expected, 1)) {
    while (hak_load_acquire(&hak_init_state) != 2) sched_yield();   /* another thread inits */
    return;
  }
  hak_options_init();
  hak_sizeclass_check();
  hak_free_key = (uintptr_t)hak_prim_random64();
  bool superslab = hak_opt(HAK_OPT_TINY_USE_SUPERSLAB) != 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    hak_cls_kind[c] = c <= HAK_CLS_TINY_LAST ? (superslab ? HAK_SEG_TINY : HAK_SEG_MID)
                    : c <= HAK_CLS_MID_LAST ? HAK_SEG_MID : HAK_SEG_POOL;
  }
  hak_knobs_init();
  hak_heap_set_caps(&hak_heap_global);
  hak_heap_key_create();
  hak_store_release(&hak_init_state, 2);
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  hak_stats_init();
}

void hak_ensure_init(void) {
  if (HAK_LIKELY(hak_load_acquire(&hak_init_state) == 2)) return;
  hak_init_slow();
}

/* ---- fatal errors ------------------------------------------------------------------ */
static size_t fmt_hex(char* out, uintptr_t v) {
  char tmp[16]; size_t n = 0;
  do { tmp[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
  size_t k = 0;
  out[k++] = '0'; out[k++] = 'x';
  while (n) out[k++] = tmp[--n];
  return k;
}

static size_t append(char* buf, size_t n, size_t cap, const char* s) {
  while (*s && n < cap) buf[n++] = *s++;
  return n;
}

void hak_fatal(const char* fn, const char* what, const void* p) {
  char buf[256];
  size_t n = append(buf, 0, sizeof buf - 24, "hakmem: ");
  n = append(buf, n, sizeof buf - 24, fn);
  n = append(buf, n, sizeof buf - 24, "(): ");
  n = append(buf, n, sizeof buf - 24, what);
  buf[n++] = ' ';
  n += fmt_hex(buf + n, (uintptr_t)p);
  buf[n++] = '\n';
  hak_prim_write_err(buf, n);
  abort();
}

void hak_assert_fail(const char* expr, const char* file, int line) {
  char buf[512];
  size_t n = append(buf, 0, sizeof buf - 40, "hakmem: internal error: ");
  n = append(buf, n, sizeof buf - 40, expr);
  n = append(buf, n, sizeof buf - 40, " at ");
  n = append(buf, n, sizeof buf - 40, file);
  n = append(buf, n, sizeof buf - 40, ":");
  char num[16]; size_t k = 0; unsigned v = (unsigned)line;
  do { num[k++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (k) buf[n++] = num[--k];
  buf[n++] = '\n';
  hak_prim_write_err(buf, n);
  abort();
}

/* Programs that never allocate still get their HAKMEM_VERBOSE / HAKMEM_STATS output. */
__attribute__((constructor)) static void hak_init_at_load(void) { hak_ensure_init(); }
