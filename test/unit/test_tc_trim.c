/* test_tc_trim.c — an idle thread's TLS lists cut short by another thread
 * (src/alloc/tc_trim.c): the owner sleeps on a condition variable with long lists, a
 * second thread cuts them to two blocks, the blocks go back to their slabs and the
 * owner's next mallocs are right; the release walk (malloc_trim's, the scavenger's)
 * does it once a heap has been quiet for the delay; and a cutter running against an
 * owner that pops and pushes hard never gets a block handed out twice.
 *
 *   unit_tc_trim [--rounds=N] [test names]   (the stress test's owner operations in
 *                                             thousands, default 1000)
 * The test links the static library and calls the alloc layer directly. */
#define _GNU_SOURCE
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_stats.h"
#include "alloc/alloc.h"
#include "alloc/os_counters.h"
#include "alloc/release.h"
#include "prim/prim.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long rounds_k = 1000;

/* ---- an owner thread that runs jobs and sleeps between them ------------------------ */
typedef struct owner {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void (*job)(struct owner*, void*);
  void* arg;
  bool busy, quit;
  hak_heap* heap;        /* its hak_tls_heap, once it has one */
} owner_t;

static void* owner_main(void* a) {
  owner_t* o = a;
  hak_free(hak_malloc(16));
  pthread_mutex_lock(&o->mu);
  o->heap = hak_tls_heap;
  pthread_cond_broadcast(&o->cv);
  for (;;) {
    while (!o->busy && !o->quit) pthread_cond_wait(&o->cv, &o->mu);   /* idle here */
    if (o->quit) break;
    pthread_mutex_unlock(&o->mu);
    o->job(o, o->arg);
    pthread_mutex_lock(&o->mu);
    o->busy = false;
    pthread_cond_broadcast(&o->cv);
  }
  pthread_mutex_unlock(&o->mu);
  return NULL;
}

static void owner_start(owner_t* o) {
  memset(o, 0, sizeof *o);
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->cv, NULL);
  pthread_create(&o->thread, NULL, owner_main, o);
  pthread_mutex_lock(&o->mu);
  while (!o->heap) pthread_cond_wait(&o->cv, &o->mu);
  pthread_mutex_unlock(&o->mu);
}

/* Hand job to the owner's thread; wait for it to finish (the owner then sleeps again);
 * both. */
static void owner_post(owner_t* o, void (*job)(owner_t*, void*), void* arg) {
  pthread_mutex_lock(&o->mu);
  o->job = job;
  o->arg = arg;
  o->busy = true;
  pthread_cond_broadcast(&o->cv);
  pthread_mutex_unlock(&o->mu);
}
static void owner_wait(owner_t* o) {
  pthread_mutex_lock(&o->mu);
  while (o->busy) pthread_cond_wait(&o->cv, &o->mu);
  pthread_mutex_unlock(&o->mu);
}
static void owner_run(owner_t* o, void (*job)(owner_t*, void*), void* arg) {
  owner_post(o, job, arg);
  owner_wait(o);
}

/* A trim of h's lists as the release walk makes it: under h's lock. */
static size_t trim_locked(hak_heap* h) {
  hak_heap_lock(h);
  size_t bytes = hak_tcache_trim(h, HAK_TC_TRIM_KEEP);
  hak_heap_unlock(h);
  return bytes;
}

static void owner_stop(owner_t* o) {
  pthread_mutex_lock(&o->mu);
  o->quit = true;
  pthread_cond_broadcast(&o->cv);
  pthread_mutex_unlock(&o->mu);
  pthread_join(o->thread, NULL);
}

/* ---- what a list holds ------------------------------------------------------------- */
/* Blocks on h's list of cls, walked (its owner asleep), and the length its counters say. */
static long list_walk(const hak_heap* h, unsigned cls) {
  long n = 0;
  for (hak_block* b = h->tc[cls].head; b && n < 100000; b = HAK_DEC(b, b->next)) n++;
  return n;
}
static long list_counted(const hak_heap* h, unsigned cls) {
  return (long)h->tc[cls].cap - h->tc[cls].room - (long)h->tc_cut[cls];
}

static hak_stats stats(void) {
  hak_stats st;
  st.size = sizeof st;
  hak_stats_get(&st);
  return st;
}

/* n blocks of `size` allocated, written and freed: the list fills to about its cap. */
typedef struct { size_t size; unsigned n; } fill_arg;
static void job_fill(owner_t* o, void* a) {
  fill_arg* f = a;
  void* p[1024];
  for (unsigned i = 0; i < f->n; i++) { p[i] = hak_malloc(f->size); memset(p[i], 0x5a, f->size); }
  for (unsigned i = f->n; i-- > 0;) hak_free(p[i]);
}

/* n blocks of `size`, all distinct and writable; freed again after the checks. */
typedef struct { size_t size; unsigned n; bool ok; uint64_t in_use; } take_arg;
static int cmp_ptr(const void* a, const void* b) {
  uintptr_t x = *(const uintptr_t*)a, y = *(const uintptr_t*)b;
  return x < y ? -1 : x > y;
}
static void job_take(owner_t* o, void* a) {
  take_arg* t = a;
  void* p[1024];
  for (unsigned i = 0; i < t->n; i++) {
    p[i] = hak_malloc(t->size);
    memset(p[i], (int)(i & 0xff), t->size);
  }
  t->ok = true;
  for (unsigned i = 0; i < t->n; i++) {
    const unsigned char* c = p[i];
    if (c[0] != (unsigned char)i || c[t->size - 1] != (unsigned char)i) t->ok = false;
  }
  t->in_use = stats().cls[hak_size_to_cls(t->size)].in_use;
  qsort(p, t->n, sizeof p[0], cmp_ptr);
  for (unsigned i = 1; i < t->n; i++) if ((uintptr_t)p[i] < (uintptr_t)p[i - 1] + t->size) t->ok = false;
  for (unsigned i = 0; i < t->n; i++) hak_free(p[i]);
}

static const size_t sizes[] = {64, 1024, 4096};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* ---- the tests ----------------------------------------------------------------------- */

/* The owner sleeps with long lists of three classes; a trim leaves two blocks on each,
 * the rest back in their slabs (bytes as counted), the stats unchanged (no block is in
 * use), and the owner's next 300 mallocs of each class are distinct, intact blocks. */
static void test_sleeping_owner_lists_cut_to_two(void) {
  owner_t o;
  owner_start(&o);
  hak_heap* h = o.heap;
  long before[NSIZES];
  size_t expect = 0;
  for (unsigned i = 0; i < NSIZES; i++) {
    fill_arg f = {sizes[i], 200};
    owner_run(&o, job_fill, &f);
    unsigned c = hak_size_to_cls(sizes[i]);
    before[i] = list_walk(h, c);
    CHECK_MSG(before[i] > 2, "size %zu: %ld blocks on the list", sizes[i], before[i]);
    CHECK_EQ(list_counted(h, c), before[i]);
  }
  for (unsigned c = 0; c < HAK_NCLS; c++) {       /* the owner's start-up class too */
    long n = list_walk(h, c);
    if (n > 2) expect += (size_t)(n - 2) * hak_cls_size[c];
  }
  hak_stats s0 = stats();
  size_t bytes = trim_locked(h);
  if (!hak_tcache_trim_supported()) {
    CHECK_EQ(bytes, 0);                  /* ThreadSanitizer: left alone */
    for (unsigned i = 0; i < NSIZES; i++) CHECK_EQ(list_walk(h, hak_size_to_cls(sizes[i])), before[i]);
    owner_stop(&o);
    return;
  }
  CHECK_MSG(bytes == expect, "trim gave back %zu bytes, the lists held %zu beyond two each", bytes, expect);
  hak_stats s1 = stats();
  CHECK_EQ(s1.idle_cache_trimmed_bytes - s0.idle_cache_trimmed_bytes, bytes);
  CHECK_EQ(s1.idle_cache_trims - s0.idle_cache_trims, NSIZES + 1);   /* + the start-up class */
  for (unsigned i = 0; i < NSIZES; i++) {
    unsigned c = hak_size_to_cls(sizes[i]);
    CHECK_EQ(list_walk(h, c), 2);
    CHECK_EQ(list_counted(h, c), 2);
    CHECK_EQ(s1.cls[c].in_use, s0.cls[c].in_use);
    CHECK_EQ(s1.cls[c].in_use, 0);
  }
  /* A second trim finds nothing beyond two blocks. */
  CHECK_EQ(trim_locked(h), 0);
  for (unsigned i = 0; i < NSIZES; i++) {
    take_arg t = {sizes[i], 300, false, 0};
    owner_run(&o, job_take, &t);
    CHECK_MSG(t.ok, "size %zu: blocks after the cut overlap or lost their contents", sizes[i]);
    CHECK_EQ(t.in_use, 300);
    unsigned c = hak_size_to_cls(sizes[i]);
    CHECK_EQ(list_counted(h, c), list_walk(h, c));    /* the cut counted out of room */
    CHECK_EQ(stats().cls[c].in_use, 0);
  }
  owner_stop(&o);
}

/* The cut in progress, held still: the owner's pop that meets HAK_TC_CUT waits for the
 * lock and then reads the link the cutter settled on (here the end of the list). */
typedef struct { void* got[3]; atomic_int done; } pop3_arg;
static void job_pop3(owner_t* o, void* a) {
  pop3_arg* p = a;
  for (int i = 0; i < 3; i++) p->got[i] = hak_malloc(64);
  atomic_store(&p->done, 1);
}
static void job_free3(owner_t* o, void* a) {
  pop3_arg* p = a;
  for (int i = 0; i < 3; i++) hak_free(p->got[i]);
}
static void test_pop_waits_for_a_cut_in_progress(void) {
  if (!hak_tcache_trim_supported()) return;    /* TSan: the cut by hand is a race to it */
  owner_t o;
  owner_start(&o);
  hak_heap* h = o.heap;
  unsigned c = hak_size_to_cls(64);
  fill_arg f = {64, 100};
  owner_run(&o, job_fill, &f);
  long len = list_walk(h, c);
  CHECK(len > 3);
  hak_heap_lock(h);
  hak_block* head = h->tc[c].head;
  hak_block* x = HAK_DEC(head, head->next);
  hak_block* y = HAK_DEC(x, x->next);
  x->next = HAK_ENC(x, HAK_TC_CUT);             /* step 1 of a cut, by hand */
  pop3_arg p = {{NULL}, 0};
  owner_post(&o, job_pop3, &p);                 /* the owner pops without us waiting */
  usleep(100 * 1000);
  CHECK_MSG(atomic_load(&p.done) == 0, "the owner popped past a cut in progress");
  x->next = HAK_ENC(x, NULL);                   /* settled: the list ends at x */
  uint64_t k = hak_tcache_return_chain(h, c, y, hak_tc_block_slab_slow(h, c, y), false);
  h->tc_cut[c] += (uint32_t)k;
  h->cc[c].flushed += k;
  hak_heap_unlock(h);
  CHECK_EQ(k, len - 2);
  owner_wait(&o);
  CHECK(p.got[0] == head);
  CHECK(p.got[1] == x);
  CHECK(p.got[2] != NULL && p.got[2] != head && p.got[2] != x);   /* a refill's */
  CHECK_EQ(list_counted(h, c), list_walk(h, c));
  owner_run(&o, job_free3, &p);
  CHECK_EQ(stats().cls[c].in_use, 0);
  owner_stop(&o);
}

/* The owner moves between the cutter's steps 1 and 2 (the trim's test hook runs a job
 * in the owner's thread there): a pop, or a pop and a push (room as it was, nfree not).
 * The cut is undone, the list stays the owner's whole, and its next mallocs are right. */
static owner_t* hook_owner;
static void (*hook_job)(owner_t*, void*);
static void hook_run_owner_job(hak_heap* h, unsigned cls, int stage) {
  if (stage == 1) owner_run(hook_owner, hook_job, NULL);
}
static void* kept_block;
static void job_pop1(owner_t* o, void* a) { kept_block = hak_malloc(64); }
static void job_pop1_push1(owner_t* o, void* a) { void* p = hak_malloc(64); hak_free(kept_block); kept_block = p; }
static void job_free_kept(owner_t* o, void* a) { hak_free(kept_block); }
static void test_cut_undone_when_the_owner_moves(void) {
  if (!hak_tcache_trim_supported()) return;
  owner_t o;
  owner_start(&o);
  hak_heap* h = o.heap;
  unsigned c = hak_size_to_cls(64);
  trim_locked(h);  /* the start-up class's list out of the way */
  fill_arg f = {64, 100};
  owner_run(&o, job_fill, &f);
  void (*jobs[2])(owner_t*, void*) = {job_pop1, job_pop1_push1};
  for (int k = 0; k < 2; k++) {
    long len = list_walk(h, c);
    CHECK(len > 3);
    hak_block* head = h->tc[c].head;
    uint64_t undone0 = atomic_load(&hak_os_ctr.tc_cuts_undone);
    hook_owner = &o;
    hook_job = jobs[k];
    hak_tcache_trim_hook = hook_run_owner_job;
    size_t got = trim_locked(h);
    hak_tcache_trim_hook = NULL;
    CHECK_EQ(got, 0);
    CHECK_EQ(atomic_load(&hak_os_ctr.tc_cuts_undone) - undone0, 1);
    CHECK(kept_block == head);                   /* the owner popped the head */
    long now = list_walk(h, c);
    CHECK_MSG(now == (k == 0 ? len - 1 : len), "case %d: %ld blocks after, %ld before", k, now, len);
    CHECK_EQ(list_counted(h, c), now);
  }
  owner_run(&o, job_free_kept, NULL);
  take_arg t = {64, 300, false, 0};
  owner_run(&o, job_take, &t);
  CHECK(t.ok);
  CHECK_EQ(t.in_use, 300);
  CHECK_EQ(stats().cls[c].in_use, 0);
  owner_stop(&o);
}

/* The pop as compiled counts in `room` before it stores the head: an owner stopped
 * between the two while the cutter reads (room counted, head still H0), which then
 * pops the next block X, loading X's link before the swap, must make the cutter undo
 * (its check of the head sees it; room and nfree alone did not: the review of the
 * first version found it). The owner here is this thread, its pops done by hand in the
 * compiled order at the trim's hook before the swap. */
static hak_block* half_h0;
static hak_block* half_y;
static void hook_pop_half_done(hak_heap* h, unsigned cls, int stage) {
  if (stage != 0 || cls != hak_size_to_cls(64)) return;
  hak_tcache* tc = &h->tc[cls];
  hak_block* x = HAK_DEC(half_h0, half_h0->next);   /* H0's pop, second half */
  tc->head = x;
  half_h0->next = NULL;
  half_h0->key = 0;
  half_y = HAK_DEC(x, x->next);                      /* X's pop, first half: its link */
}
static void test_cut_undone_for_a_pop_half_done(void) {
  if (!hak_tcache_trim_supported()) return;
  unsigned c = hak_size_to_cls(64);
  void* p[100];
  for (int i = 0; i < 100; i++) p[i] = hak_malloc(64);
  for (int i = 100; i-- > 0;) hak_free(p[i]);
  hak_heap* h = hak_tls_heap;                        /* this thread's, now it has one */
  trim_locked(h);  /* other classes out of the way */
  for (int i = 0; i < 100; i++) p[i] = hak_malloc(64);
  for (int i = 100; i-- > 0;) hak_free(p[i]);
  long len = list_walk(h, c);
  CHECK(len > 4);
  hak_tcache* tc = &h->tc[c];
  half_h0 = tc->head;
  hak_block* x = HAK_DEC(half_h0, half_h0->next);
  tc->room++;                                        /* H0's pop, first half */
  hak_tcache_trim_hook = hook_pop_half_done;
  size_t got = trim_locked(h);
  hak_tcache_trim_hook = NULL;
  CHECK_EQ(got, 0);
  CHECK_EQ(h->tc_cut[c], 0);
  tc->room++;                                        /* X's pop, second half */
  tc->head = half_y;
  x->next = NULL;
  x->key = 0;
  CHECK_EQ(list_walk(h, c), len - 2);               /* Y's chain is the list's, whole */
  CHECK_EQ(list_counted(h, c), len - 2);
  hak_free(half_h0);
  hak_free(x);
  for (int i = 0; i < 200; i++) p[i % 100] = hak_malloc(64), memset(p[i % 100], 1, 64), hak_free(p[i % 100]);
  CHECK_EQ(stats().cls[c].in_use, 0);
  CHECK_EQ(list_counted(h, c), list_walk(h, c));
}

/* The release walk (malloc_trim's, with no delay) cuts another thread's lists; with a
 * delay, only once they have not moved for it (the clock is given), and once per
 * quiet spell. */
static void test_release_walk_cuts_quiet_lists(void) {
  if (!hak_tcache_trim_supported()) return;
  owner_t o;
  owner_start(&o);
  hak_heap* h = o.heap;
  unsigned c = hak_size_to_cls(1024);
  fill_arg f = {1024, 60};
  owner_run(&o, job_fill, &f);
  CHECK(list_walk(h, c) > 2);
  hak_release_all(0);
  CHECK_EQ(list_walk(h, c), 2);
  CHECK_EQ(list_counted(h, c), 2);

  owner_run(&o, job_fill, &f);
  long len = list_walk(h, c);
  CHECK(len > 2);
  const uint64_t delay = 1000000000ull, t0 = 5ull * delay;
  hak_heap_lock(h);
  CHECK_EQ(hak_tcache_trim_idle(h, t0, delay), 0);                 /* first seen now */
  CHECK_EQ(hak_tcache_trim_idle(h, t0 + delay - 1, delay), 0);     /* not quiet long enough */
  CHECK_EQ(list_walk(h, c), len);
  size_t got = hak_tcache_trim_idle(h, t0 + delay, delay);
  CHECK_EQ(got, (size_t)(len - 2) * 1024);
  CHECK_EQ(hak_tcache_trim_idle(h, t0 + 3 * delay, delay), 0);     /* once per spell */
  hak_heap_unlock(h);
  CHECK_EQ(list_walk(h, c), 2);

  owner_run(&o, job_fill, &f);                                      /* it moved: again */
  len = list_walk(h, c);
  hak_heap_lock(h);
  CHECK_EQ(hak_tcache_trim_idle(h, t0 + 4 * delay, delay), 0);
  CHECK_EQ(hak_tcache_trim_idle(h, t0 + 5 * delay, delay), (size_t)(len - 2) * 1024);
  hak_heap_unlock(h);
  owner_stop(&o);
}

/* A cutter in a loop against an owner that allocates and frees two classes hard, with
 * short pauses (where cuts get through): no block is ever handed out while it is
 * still live, no live block's contents change, and the counts add up at the end. */
enum { LIVE = 256 };
typedef struct {
  atomic_int stop;
  atomic_long ops;
  long twice, damaged;
} stress_arg;
static void job_stress(owner_t* o, void* a) {
  stress_arg* s = a;
  unsigned char* live[LIVE] = {NULL};
  unsigned char tag[LIVE];
  uint64_t x = 88172645463325252ull;
  long ops = 0;
  while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    unsigned j = (unsigned)(x % LIVE);
    size_t size = (j & 1) ? 1024 : 64;
    if (live[j]) {
      if (live[j][0] != tag[j] || live[j][size - 1] != tag[j] || live[j][size / 2] != tag[j]) s->damaged++;
      hak_free(live[j]);
      live[j] = NULL;
    } else {
      unsigned char* p = hak_malloc(size);
      for (unsigned k = 0; k < LIVE; k++) if (live[k] == p) s->twice++;
      tag[j] = (unsigned char)(x >> 32);
      memset(p, tag[j], size);
      live[j] = p;
    }
    if ((++ops & 1023) == 0) {
      atomic_store_explicit(&s->ops, ops, memory_order_relaxed);
      if ((ops & 4095) == 0) usleep(50);      /* a pause: the lists hold still */
    }
  }
  for (unsigned j = 0; j < LIVE; j++) if (live[j]) hak_free(live[j]);
}
typedef struct { owner_t* o; stress_arg* s; } runner_arg;
static void* stress_runner(void* a) {
  runner_arg* r = a;
  owner_run(r->o, job_stress, r->s);
  return NULL;
}
static void test_cutter_against_a_busy_owner(void) {
  const bool can = hak_tcache_trim_supported();   /* TSan: every trim must find nothing */
  owner_t o;
  owner_start(&o);
  hak_heap* h = o.heap;
  stress_arg s = {0};
  runner_arg r = {&o, &s};
  pthread_t t;
  pthread_create(&t, NULL, stress_runner, &r);
  long cuts = 0, tries = 0;
  size_t bytes = 0;
  uint64_t undone0 = atomic_load(&hak_os_ctr.tc_cuts_undone);
  /* Until the owner has done its operations and at least 20 cuts got through (a
   * machine where none does stops the test at 50 times the operations). How many were
   * undone (the owner moved during them) depends on how the two threads meet: on an
   * idle machine most are; test_cut_undone_when_the_owner_moves makes sure of one. */
  for (;;) {
    long ops = atomic_load(&s.ops);
    if (ops >= rounds_k * 1000 && (cuts >= 20 || !can)) break;
    if (ops >= rounds_k * 1000 * 50) break;
    size_t b = trim_locked(h);
    tries++;
    if (b) { cuts++; bytes += b; }
    sched_yield();
  }
  atomic_store(&s.stop, 1);
  pthread_join(t, NULL);
  CHECK_EQ(s.twice, 0);
  CHECK_EQ(s.damaged, 0);
  CHECK_MSG(can ? cuts >= 20 : cuts == 0, "%ld of %ld trims cut something (%zu bytes) in %ld owner operations",
            cuts, tries, bytes, atomic_load(&s.ops));
  uint64_t undone = atomic_load(&hak_os_ctr.tc_cuts_undone) - undone0;
  hak_stats st = stats();
  CHECK_EQ(st.cls[hak_size_to_cls(64)].in_use, 0);
  CHECK_EQ(st.cls[hak_size_to_cls(1024)].in_use, 0);
  CHECK_EQ(list_counted(h, hak_size_to_cls(64)), list_walk(h, hak_size_to_cls(64)));
  owner_stop(&o);
  printf("cutter: %ld of %ld trims cut, %llu cuts undone, %zu bytes, %ld owner operations\n", cuts,
         tries, (unsigned long long)undone, bytes, atomic_load(&s.ops));
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--rounds=", 9) == 0) rounds_k = atol(argv[i] + 9);
  }
  ht_init(argc, argv);
  /* Everything but the TSan build must be able to cut (membarrier: Linux 4.14). */
  if (hak_tcache_trim_supported()) CHECK_MSG(hak_prim_process_barrier(), "membarrier refused");
  HT_RUN(test_sleeping_owner_lists_cut_to_two);
  HT_RUN(test_pop_waits_for_a_cut_in_progress);
  HT_RUN(test_cut_undone_when_the_owner_moves);
  HT_RUN(test_cut_undone_for_a_pop_half_done);
  HT_RUN(test_release_walk_cuts_quiet_lists);
  HT_RUN(test_cutter_against_a_busy_owner);
  return ht_report();
}
