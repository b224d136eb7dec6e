/* test_free_mark.c — the free mark a free block carries is tied to its address: a
 * program that copies indeterminate bytes (here, the mark word of blocks that are free
 * right now) into its own blocks and frees them, from its own thread or another, is
 * never stopped with a false "double free"; a real double free still is.
 *
 *   unit_free_mark [test names] */
#include "hak_test.h"
#include "hakmem.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { N = 2000 };

/* The second word of each block, read while the blocks are free (what a program reading
 * a buffer's indeterminate tail would see), and the blocks' addresses. */
static void harvest_marks(size_t size, uintptr_t* marks, uintptr_t* addrs) {
  void* p[N];
  for (int i = 0; i < N; i++) p[i] = hak_malloc(size);
  for (int i = 0; i < N; i++) hak_free(p[i]);
  for (int i = 0; i < N; i++) {
    memcpy(&marks[i], (char*)p[i] + 8, sizeof marks[i]);
    addrs[i] = (uintptr_t)p[i];
  }
}

static void* free_all(void* arg) {
  void** q = arg;
  for (int i = 0; i < N; i++) hak_free(q[i]);
  return NULL;
}

static void copied_marks_are_not_double_frees(size_t size, bool other_thread) {
  static uintptr_t marks[N], addrs[N];
  harvest_marks(size, marks, addrs);
  /* Each block's mark differs from the others' (it is tied to the block's address). */
  int nonzero = 0, same = 0;
  uintptr_t first = 0;
  for (int i = 0; i < N; i++) {
    if (!marks[i]) continue;              /* a block given back to the OS reads 0 */
    if (!nonzero++) first = marks[i]; else same += marks[i] == first;
  }
  CHECK_MSG(nonzero > 0, "%d of %d free blocks carry a mark", nonzero, N);
  CHECK_MSG(same == 0, "%d marks equal the first", same);
  static void* q[N];
  for (int i = 0; i < N; i++) {
    q[i] = hak_malloc(size);
    CHECK(q[i] != NULL);
    uintptr_t* w = q[i];
    /* Every word gets some other block's mark (a block that reuses an address gets the
     * mark of another: a program cannot have read its own block's mark, which is
     * cleared when the block is handed out). */
    for (size_t k = 0; k < size / sizeof *w && k < 8; k++) {
      int j = (int)((i + 1 + k) % N);
      if (addrs[j] == (uintptr_t)q[i]) j = (j + 1) % N;
      w[k] = marks[j];
    }
  }
  if (other_thread) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, free_all, q), 0);
    pthread_join(t, NULL);
  } else {
    free_all(q);
  }
  hak_thread_flush();
}

static void test_copied_marks_own_thread(void) {
  copied_marks_are_not_double_frees(16, false);
  copied_marks_are_not_double_frees(64, false);
  copied_marks_are_not_double_frees(4096, false);
  copied_marks_are_not_double_frees(100000, false);
}

static void test_copied_marks_other_thread(void) {
  copied_marks_are_not_double_frees(16, true);
  copied_marks_are_not_double_frees(64, true);
  copied_marks_are_not_double_frees(4096, true);
  copied_marks_are_not_double_frees(100000, true);
}

/* A real double free is still caught, with the message, own thread and other. */
static void test_double_free_still_caught(void) {
#if defined(__SANITIZE_THREAD__)
  const int others = 1;     /* TSan does not start threads after a multi-threaded fork */
#else
  const int others = 2;
#endif
  for (int other = 0; other < others; other++) {
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 2);
      static void* one[N];
      one[0] = hak_malloc(48);
      hak_free(one[0]);
      if (other) {
        for (int i = 1; i < N; i++) one[i] = one[0];
        pthread_t t;
        pthread_create(&t, NULL, free_all, one);   /* the first of these frees aborts */
        pthread_join(t, NULL);
      } else {
        hak_free(one[0]);
      }
      _exit(0);
    }
    close(fds[1]);
    char out[512] = {0};
    ssize_t n = read(fds[0], out, sizeof out - 1);
    (void)n;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "other=%d: status %#x", other, st);
    CHECK_MSG(strstr(out, "double free") != NULL, "other=%d: message: %s", other, out);
  }
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_double_free_still_caught);          /* forks: before this test's threads */
  HT_RUN(test_copied_marks_own_thread);
  HT_RUN(test_copied_marks_other_thread);
  return ht_report();
}
