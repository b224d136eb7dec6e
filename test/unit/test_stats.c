/* test_stats.c — the statistics count the right events: known allocation patterns in
 * their own threads, asserted against hak_stats_get() deltas; the versioned struct;
 * the text and JSON renderings. Linked to libhakmem-api (hak_* only), so the only
 * allocations hakmem sees are the test's own and the stats snapshots (class 8 KiB). */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_stats.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <unistd.h>

#define SMALL_SIZE 520     /* class 576: used by nothing else here */
#define MID_SIZE 3000      /* class 3072 */
#define N_LOCAL 1000
#define N_REMOTE 500

static unsigned cls_of_size(const hak_stats* st, size_t size) {
  for (unsigned c = 0; c < st->nclasses; c++) if (st->cls[c].block_size >= size) return c;
  return 0;
}

static hak_stats* snap(void) {
  static hak_stats slots[8];
  static int next;
  hak_stats* st = &slots[next++ % 8];
  st->size = sizeof *st;
  CHECK_EQ(hak_stats_get(st), 0);
  return st;
}

static int dbg_index(const char* name) {
  for (unsigned i = 0; hak_stats_debug_name(i); i++) {
    if (strcmp(hak_stats_debug_name(i), name) == 0) return (int)i;
  }
  return -1;
}

/* ---- local pattern: one thread allocates and frees N blocks ----------------------- */
static void* local_worker(void* arg) {
  (void)arg;
  void* p[N_LOCAL];
  for (int i = 0; i < N_LOCAL; i++) { p[i] = hak_malloc(SMALL_SIZE); memset(p[i], i, SMALL_SIZE); }
  for (int i = 0; i < N_LOCAL; i++) hak_free(p[i]);
  return NULL;
}

static void test_local_pattern_counts(void) {
  hak_stats* a = snap();
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, local_worker, NULL), 0);
  pthread_join(t, NULL);
  hak_stats* b = snap();
  unsigned c = cls_of_size(a, SMALL_SIZE);
  CHECK_EQ(a->cls[c].block_size, 576);
  CHECK_EQ(b->cls[c].allocs - a->cls[c].allocs, N_LOCAL);
  CHECK_EQ(b->cls[c].frees - a->cls[c].frees, N_LOCAL);
  CHECK_EQ(b->cls[c].in_use, a->cls[c].in_use);
  CHECK(b->cls[c].refills > a->cls[c].refills);            /* 1000 blocks need refills */
  CHECK(b->cls[c].flushes > a->cls[c].flushes);            /* and the TLS list overflowed */
  CHECK_EQ(b->cls[c].remote_frees, a->cls[c].remote_frees);
  CHECK(b->allocs - a->allocs >= N_LOCAL);
  CHECK(b->threads_started - a->threads_started >= 1);
  CHECK(b->threads_ended - a->threads_ended >= 1);
  if (b->debug_counters) {   /* HAK_DEBUG_COUNTERS build: where the frees went */
    int sll = dbg_index("tls_sll"), ss = dbg_index("ss_local"), mid = dbg_index("mid_local");
    CHECK(sll >= 0 && ss >= 0 && mid >= 0);
    uint64_t frees = (b->debug[sll] + b->debug[ss] + b->debug[mid]) -
                     (a->debug[sll] + a->debug[ss] + a->debug[mid]);
    CHECK_MSG(frees >= N_LOCAL && frees <= N_LOCAL + 8, "frees counted by the pipeline: %llu",
              (unsigned long long)frees);
    int hit = dbg_index("malloc_tls_hit"), fl = dbg_index("refill_slab_freelist"),
        bump = dbg_index("refill_bump");
    CHECK(b->debug[hit] - a->debug[hit] > 0);
    CHECK(b->debug[fl] + b->debug[bump] - a->debug[fl] - a->debug[bump] >= 1);
  } else {
    CHECK(hak_stats_debug_name(0) != NULL);   /* names exist even when not compiled in */
  }
}

/* ---- remote pattern: a live owner, another thread frees its blocks ---------------- */
static void* remote_blocks[N_REMOTE];
static pthread_barrier_t bar;

static void* owner_worker(void* arg) {
  (void)arg;
  for (int i = 0; i < N_REMOTE; i++) remote_blocks[i] = hak_malloc(MID_SIZE);
  pthread_barrier_wait(&bar);   /* 1: blocks published */
  pthread_barrier_wait(&bar);   /* 2: main freed them; exit drains the remote lists */
  return NULL;
}

static void test_remote_frees_and_backlog(void) {
  pthread_barrier_init(&bar, NULL, 2);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, owner_worker, NULL), 0);
  pthread_barrier_wait(&bar);
  hak_stats* a = snap();
  unsigned c = cls_of_size(a, MID_SIZE);
  CHECK_EQ(a->cls[c].block_size, 3072);
  CHECK_EQ(a->cls[c].in_use, N_REMOTE);
  for (int i = 0; i < N_REMOTE; i++) hak_free(remote_blocks[i]);
  hak_stats* b = snap();
  CHECK_EQ(b->cls[c].remote_frees - a->cls[c].remote_frees, N_REMOTE);
  CHECK_EQ(b->cls[c].remote_backlog, N_REMOTE);      /* the owner has not looked yet */
  CHECK_EQ(b->cls[c].frees - a->cls[c].frees, N_REMOTE);
  CHECK_EQ(b->cls[c].in_use, 0);
  CHECK(b->remote_backlog >= N_REMOTE);
  pthread_barrier_wait(&bar);
  pthread_join(t, NULL);
  hak_stats* d = snap();
  CHECK_EQ(d->cls[c].remote_backlog, 0);             /* drained when the owner left */
  CHECK(d->remote_drained - b->remote_drained >= N_REMOTE);
  pthread_barrier_destroy(&bar);
}

/* ---- large blocks and byte counts ------------------------------------------------- */
static void test_large_and_bytes(void) {
  hak_stats* a = snap();
  void* p[3];
  for (int i = 0; i < 3; i++) { p[i] = hak_malloc(5u << 20); memset(p[i], 1, 4096); }
  hak_stats* b = snap();
  CHECK_EQ(b->large_allocs - a->large_allocs, 3);
  CHECK(b->bytes_in_use - a->bytes_in_use >= (uint64_t)15 << 20);
  CHECK(b->bytes_held >= b->bytes_in_use);
  CHECK(b->rss_bytes > 0);
  for (int i = 0; i < 3; i++) hak_free(p[i]);
  hak_stats* d = snap();
  CHECK_EQ(d->large_frees - b->large_frees, 3);
  CHECK(b->bytes_in_use - d->bytes_in_use >= (uint64_t)15 << 20);
}

/* ---- the struct's versioning and the modes ------------------------------------------ */
static void test_versioned_struct(void) {
  errno = 0;
  CHECK_EQ(hak_stats_get(NULL), -1);
  CHECK_EQ(errno, EINVAL);
  hak_stats tiny;
  tiny.size = 4;
  errno = 0;
  CHECK_EQ(hak_stats_get(&tiny), -1);
  CHECK_EQ(errno, EINVAL);

  /* An older, shorter struct: only its prefix is written. */
  void* keep = hak_malloc(100);                         /* at least one allocation to count */
  union { hak_stats st; unsigned char raw[sizeof(hak_stats)]; } u;
  memset(&u, 0xAB, sizeof u);
  size_t prefix = offsetof(hak_stats, frees) + sizeof(uint64_t);
  u.st.size = (uint32_t)prefix;
  CHECK_EQ(hak_stats_get(&u.st), 0);
  CHECK_EQ(u.st.size, prefix);
  CHECK_EQ(u.st.version, HAKMEM_STATS_VERSION);
  CHECK(u.st.allocs > 0);
  CHECK_EQ(u.raw[prefix], 0xAB);                       /* nothing written past it */
  hak_free(keep);

  hak_stats* full = snap();
  CHECK_EQ(full->size, sizeof(hak_stats));
  CHECK_EQ(full->nclasses, HAKMEM_STATS_CLASSES);
  CHECK_EQ(full->superslab, hak_option_value("HAKMEM_TINY_USE_SUPERSLAB"));
  CHECK_EQ(full->ace, 0);
  CHECK(full->pmu_mode <= 2);
  for (unsigned c = 1; c < full->nclasses; c++) CHECK(full->cls[c].block_size > full->cls[c - 1].block_size);
}

/* ---- renderings --------------------------------------------------------------------- */
static void test_json_rendering(void) {
  size_t n = hak_stats_json(NULL, 0);
  CHECK(n > 100);
  char* buf = malloc(n + 64);
  size_t m = hak_stats_json(buf, n + 64);
  CHECK(m > 100);
  CHECK_EQ(strlen(buf), m);
  CHECK(buf[0] == '{' && buf[m - 1] == '}');
  CHECK(strstr(buf, "\"modes\":{\"superslab\":") != NULL);
  CHECK(strstr(buf, "\"allocs\":") != NULL);
  CHECK(strstr(buf, "\"classes\":[") != NULL);
  int depth = 0, bad = 0;
  for (size_t i = 0; i < m; i++) {
    if (buf[i] == '{' || buf[i] == '[') depth++;
    if (buf[i] == '}' || buf[i] == ']') { if (--depth < 0) bad = 1; }
  }
  CHECK(!bad && depth == 0);
  /* a short buffer is cut and terminated, and the full length is still reported */
  char small[16];
  CHECK(hak_stats_json(small, sizeof small) > sizeof small);
  CHECK_EQ(strlen(small), sizeof small - 1);
  free(buf);
}

static void test_text_rendering(void) {
  char path[] = "/tmp/hak_stats_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  hak_stats_print();
  dup2(saved, 2);
  close(saved);
  char text[16384] = {0};
  ssize_t got = pread(fd, text, sizeof text - 1, 0);
  close(fd);
  unlink(path);
  CHECK(got > 0);
  CHECK(strstr(text, "hakmem: stats: modes: superslab ") != NULL);
  CHECK(strstr(text, "hakmem: stats: allocs ") != NULL);
  CHECK(strstr(text, "hakmem: stats: remote_backlog ") != NULL);
  CHECK(strstr(text, "hakmem: stats: class ") != NULL);
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_versioned_struct);
  HT_RUN(test_local_pattern_counts);
  HT_RUN(test_remote_frees_and_backlog);
  HT_RUN(test_large_and_bytes);
  HT_RUN(test_json_rendering);
  HT_RUN(test_text_rendering);
  return ht_report();
}
