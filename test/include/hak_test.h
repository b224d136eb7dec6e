/* hak_test.h — a tiny check/report harness for hakmem's tests (C and C++).
 *
 * A test binary is a list of `static void test_xxx(void)` functions run with
 * HT_RUN(test_xxx) from main(), which ends with `return ht_report();`.
 *
 *   CHECK(expr)            counts one check; on failure prints
 *                          "file:line: CHECK failed: expr" to stderr.
 *   CHECK_MSG(expr, fmt,…) the same plus a printf-style detail line.
 *   CHECK_EQ(a, b)         integer compare; prints both values on failure.
 *   CHECK_ALIGNED(p, a)    ((uintptr_t)p % a) == 0, prints p and a.
 *
 * Counting is per executed check.  ht_report() prints exactly one final line
 * "N passed, M failed" on stdout and returns the exit status (0 only when M is 0
 * and at least one check ran).  After HT_MAX_MESSAGES failure messages further
 * ones are counted but not printed, so a bad loop cannot flood the log.
 *
 * `prog NAME...` runs only the tests whose name contains one of the NAMEs.
 * HT_RUN_EXPLICIT(fn) runs fn only when a NAME selects it: for tests of known bugs,
 * registered on their own in ctest with WILL_FAIL until the bug is fixed.
 *
 * Header-only on purpose: every test is one translation unit, and this file
 * must work in binaries linked to libhakmem, libhakmem-api or nothing at all.
 */
#ifndef HAK_TEST_H
#define HAK_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HT_MAX_MESSAGES
#define HT_MAX_MESSAGES 60
#endif

#if defined(__GNUC__)
#define HT_UNUSED __attribute__((unused))
#else
#define HT_UNUSED
#endif

static long ht_passed HT_UNUSED;
static long ht_failed HT_UNUSED;
static int  ht_argc HT_UNUSED;
static char** ht_argv HT_UNUSED;
static const char* ht_current HT_UNUSED = "";

static HT_UNUSED int ht_fail_note(const char* file, int line, const char* what) {
  ht_failed++;
  if (ht_failed <= HT_MAX_MESSAGES) {
    fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", file, line, ht_current, what);
  } else if (ht_failed == HT_MAX_MESSAGES + 1) {
    fprintf(stderr, "(further failure messages suppressed)\n");
  }
  fflush(stderr);
  return ht_failed <= HT_MAX_MESSAGES;
}

#define CHECK(expr)                                                        \
  do {                                                                     \
    if (expr) ht_passed++;                                                 \
    else ht_fail_note(__FILE__, __LINE__, #expr);                          \
  } while (0)

#define CHECK_MSG(expr, ...)                                               \
  do {                                                                     \
    if (expr) ht_passed++;                                                 \
    else if (ht_fail_note(__FILE__, __LINE__, #expr)) {                    \
      fprintf(stderr, "    ");                                             \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
    }                                                                      \
  } while (0)

#define CHECK_EQ(a, b)                                                     \
  do {                                                                     \
    long long ht_a_ = (long long)(a), ht_b_ = (long long)(b);              \
    if (ht_a_ == ht_b_) ht_passed++;                                       \
    else if (ht_fail_note(__FILE__, __LINE__, #a " == " #b))               \
      fprintf(stderr, "    left = %lld, right = %lld\n", ht_a_, ht_b_);    \
  } while (0)

#define CHECK_ALIGNED(p, align)                                            \
  do {                                                                     \
    uintptr_t ht_p_ = (uintptr_t)(p); size_t ht_al_ = (size_t)(align);     \
    if (ht_al_ == 0 || ht_p_ % ht_al_ == 0) ht_passed++;                   \
    else if (ht_fail_note(__FILE__, __LINE__, #p " aligned to " #align))   \
      fprintf(stderr, "    p = %#" PRIxPTR ", alignment = %zu\n",          \
              ht_p_, ht_al_);                                              \
  } while (0)

static HT_UNUSED void ht_init(int argc, char** argv) {
  ht_argc = argc;
  ht_argv = argv;
  setvbuf(stdout, NULL, _IOLBF, 0);
}

static HT_UNUSED int ht_selected(const char* name) {
  int any = 0;
  for (int i = 1; i < ht_argc; i++) {
    if (ht_argv[i][0] == '-') continue;  /* options belong to the test itself */
    any = 1;
    if (strstr(name, ht_argv[i])) return 1;
  }
  return !any;
}

/* Run one test function when selected; prints its name and its failure count. */
#define HT_RUN(fn)                                                         \
  do {                                                                     \
    if (ht_selected(#fn)) {                                                \
      long ht_before_ = ht_failed;                                         \
      ht_current = #fn;                                                    \
      fn();                                                                \
      printf("%-44s %s\n", #fn, ht_failed == ht_before_ ? "ok" : "FAILED");\
      ht_current = "";                                                     \
    }                                                                      \
  } while (0)

/* Nonzero when a non-option argument was given and selects `name`. */
static HT_UNUSED int ht_selected_explicitly(const char* name) {
  for (int i = 1; i < ht_argc; i++)
    if (ht_argv[i][0] != '-' && strstr(name, ht_argv[i])) return 1;
  return 0;
}

/* Like HT_RUN, but only when named on the command line (not in a plain run). */
#define HT_RUN_EXPLICIT(fn)                                                \
  do {                                                                     \
    if (ht_selected_explicitly(#fn)) HT_RUN(fn);                           \
  } while (0)

static HT_UNUSED int ht_report(void) {
  fflush(stderr);
  printf("%ld passed, %ld failed\n", ht_passed, ht_failed);
  fflush(stdout);
  return (ht_failed == 0 && ht_passed > 0) ? 0 : 1;
}

/* ---- the process seen from /proc (Linux) ---- */

/* A field of /proc/self/status in KiB (VmSize, VmRSS); -1 when unreadable. */
static HT_UNUSED long ht_status_kib(const char* field) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, n) == 0 && line[n] == ':') { v = atol(line + n + 1); break; }
  }
  fclose(f);
  return v;
}

/* Lines of /proc/self/maps: the process's mappings; -1 when unreadable. */
static HT_UNUSED long ht_map_count(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

/* A field of /proc/self/smaps ("THPeligible:", "AnonHugePages:") for the mapping that
 * holds address a: its number (kB for sizes), -1 when not found. */
static HT_UNUSED long ht_smaps_field(uintptr_t a, const char* key) {
  FILE* f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int inside = 0;
  long v = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    int header = (line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f');
    if (header && sscanf(line, "%lx-%lx", &lo, &hi) == 2) { inside = a >= lo && a < hi; continue; }
    if (inside && strncmp(line, key, kl) == 0) { v = strtol(line + kl, NULL, 10); break; }
  }
  fclose(f);
  return v;
}

/* Whether the kernel's transparent huge pages are in "madvise" mode (then memory gets
 * huge pages exactly where it is advised MADV_HUGEPAGE, and smaps says so). */
static HT_UNUSED int ht_thp_madvise_mode(void) {
  FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return 0;
  char buf[128] = {0};
  int ok = fgets(buf, sizeof buf, f) != NULL && strstr(buf, "[madvise]") != NULL;
  fclose(f);
  return ok;
}

#endif /* HAK_TEST_H */
