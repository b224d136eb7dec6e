/* test_options.c — the HAKMEM_* option table and how the environment sets it.
 *
 * In-process: the table is consistent (names, ranges, defaults, lookups).
 * Child processes (this binary re-executed with `--child` and a chosen
 * environment, stdout and stderr captured):
 *   - HAKMEM_VERBOSE=1 prints one "hakmem: option ..." line per option;
 *   - an invalid value prints one "hakmem: warning: NAME" line and the default
 *     is used, and the program works;
 *   - HAKMEM_TINY_USE_SUPERSLAB=0 takes effect; by default nothing is printed.
 *
 * Built twice: against libhakmem-api.a (test_options; the child uses hak_*)
 * and against libhakmem.so (test_options_so; the child uses malloc & co).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hak_test.h"
#include "hakmem.h"

#ifdef HAK_TEST_LIBC_NAMES
#define T_MALLOC  malloc
#define T_FREE    free
#define T_REALLOC realloc
#define T_CALLOC  calloc
#else
#define T_MALLOC  hak_malloc
#define T_FREE    hak_free
#define T_REALLOC hak_realloc
#define T_CALLOC  hak_calloc
#endif

#define SUPERSLAB "HAKMEM_TINY_USE_SUPERSLAB"

extern char** environ;

/* ---- the child ----------------------------------------------------------------- */

static int child_main(void) {
  /* a little of every tier, so start-up and the option readers have run */
  static const size_t sizes[] = {1, 24, 512, 1024, 1025, 9000, 40000, 300000, 2 << 20};
  void* v[9];
  int bad = 0;
  for (int i = 0; i < 9; i++) {
    v[i] = T_MALLOC(sizes[i]);
    if (!v[i]) bad = 1;
    else memset(v[i], i, sizes[i]);
  }
  for (int i = 0; i < 9; i += 2) {
    v[i] = T_REALLOC(v[i], sizes[i] * 2);
    if (!v[i]) bad = 1;
  }
  for (int i = 0; i < 9; i++) T_FREE(v[i]);
  unsigned char* z = (unsigned char*)T_CALLOC(100, 10);
  if (!z || z[999]) bad = 1;
  T_FREE(z);
  printf("value=%lld\n", hak_option_value(SUPERSLAB));
  for (int i = 0; i < hak_option_count(); i++) {
    const hak_option_info* o = hak_option_get(i);
    if (o && o->name) printf("option %s=%lld\n", o->name, o->value);
  }
  printf("alloc=%s\n", bad ? "broken" : "ok");
  printf("secure=%d\n", getauxval(AT_SECURE) != 0);
  fflush(stdout);
  return bad ? 3 : 0;
}

/* ---- running a child with an environment ---------------------------------------- */

typedef struct {
  int status;
  char out[16384];
  char err[65536];
} child_result;

/* env_add: NULL-terminated "NAME=value" list; every HAKMEM_* from our own
 * environment is dropped first so the child sees exactly what the case sets. */
static int run_child_exe(const char* exe, const char* const* env_add, child_result* r) {
  memset(r, 0, sizeof *r);
  size_t n = 0;
  while (environ[n]) n++;
  size_t na = 0;
  while (env_add && env_add[na]) na++;
  char** env = (char**)calloc(n + na + 1, sizeof(char*));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(environ[i], "HAKMEM_", 7) == 0) continue;
    bool overridden = false;              /* a variable the case sets itself */
    const char* eq = strchr(environ[i], '=');
    size_t len = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
    for (size_t j = 0; j < na; j++) if (strncmp(environ[i], env_add[j], len) == 0) overridden = true;
    if (!overridden) env[k++] = environ[i];
  }
  for (size_t i = 0; i < na; i++) env[k++] = (char*)env_add[i];
  env[k] = NULL;

  int po[2], pe[2];
  if (pipe(po) || pipe(pe)) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
    alarm(30);
    char* argv[] = {(char*)"test_options", (char*)"--child", NULL};
    execve(exe, argv, env);
    _exit(127);
  }
  free(env);
  close(po[1]);
  close(pe[1]);
  size_t lo = 0, le = 0;
  int open_o = 1, open_e = 1;
  while (open_o || open_e) {
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) { if (errno == EINTR) continue; break; }
    if (open_o && fds[0].revents) {
      ssize_t m = read(po[0], r->out + lo, sizeof r->out - 1 - lo);
      if (m <= 0) open_o = 0; else lo += (size_t)m;
      if (lo == sizeof r->out - 1) open_o = 0;
    }
    if (open_e && fds[1].revents) {
      ssize_t m = read(pe[0], r->err + le, sizeof r->err - 1 - le);
      if (m <= 0) open_e = 0; else le += (size_t)m;
      if (le == sizeof r->err - 1) open_e = 0;
    }
  }
  close(po[0]);
  close(pe[0]);
  while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {}
  return 0;
}

static int run_child(const char* const* env_add, child_result* r) {
  return run_child_exe("/proc/self/exe", env_add, r);
}

static int exited_ok(const child_result* r) {
  return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

static long long child_value(const child_result* r) {
  const char* v = strstr(r->out, "value=");
  return v ? strtoll(v + 6, NULL, 10) : -999;
}

/* The child's effective value of option `name` (its "option NAME=value" line), or -999. */
static long long child_option(const child_result* r, const char* name) {
  char key[128];
  snprintf(key, sizeof key, "option %s=", name);
  for (const char* v = r->out; (v = strstr(v, key)) != NULL; v++)
    if (v == r->out || v[-1] == '\n') return strtoll(v + strlen(key), NULL, 10);
  return -999;
}

/* number of lines of `text` that start with `prefix` and contain `needle` (NULL: any) */
static int count_lines(const char* text, const char* prefix, const char* needle) {
  int c = 0;
  const char* s = text;
  while (*s) {
    const char* e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    char line[1024];
    size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, s, l);
    line[l] = 0;
    if ((!prefix || strncmp(line, prefix, strlen(prefix)) == 0) && (!needle || strstr(line, needle))) c++;
    s += len + (e ? 1 : 0);
  }
  return c;
}

/* the "hakmem: option" line for `name` (whole-word match), copied to buf */
static int option_line(const char* text, const char* name, char* buf, size_t cap) {
  const char* s = text;
  size_t nl = strlen(name);
  while (*s) {
    const char* e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (strncmp(s, "hakmem: option ", 15) == 0) {
      const char* hit = s;
      while ((hit = strstr(hit, name)) && hit < s + len) {
        char after = hit[nl];
        if (!(after == '_' || (after >= 'A' && after <= 'Z') || (after >= '0' && after <= '9'))) {
          size_t l = len < cap - 1 ? len : cap - 1;
          memcpy(buf, s, l);
          buf[l] = 0;
          return 1;
        }
        hit += nl;
      }
    }
    s += len + (e ? 1 : 0);
  }
  return 0;
}

/* The fields of a VERBOSE line, "hakmem: option NAME = VALUE UNIT (SOURCE) — help":
 * parses VALUE exactly (digits up to the space) and copies UNIT and SOURCE.
 * Returns 0 when the line does not have that shape. */
typedef struct {
  long long value;
  char unit[32];
  char source[96];
} option_fields;

static int parse_option_line(const char* line, const char* name, option_fields* f) {
  char head[160];
  snprintf(head, sizeof head, "hakmem: option %s = ", name);
  if (strncmp(line, head, strlen(head)) != 0) return 0;
  const char* v = line + strlen(head);
  const char* d = v;
  if (*d == '-') d++;
  if (*d < '0' || *d > '9') return 0;
  while (*d >= '0' && *d <= '9') d++;
  if (*d != ' ') return 0;
  errno = 0;
  f->value = strtoll(v, NULL, 10);
  if (errno) return 0;
  const char* u = d + 1;
  const char* ue = strchr(u, ' ');
  if (!ue || (size_t)(ue - u) >= sizeof f->unit) return 0;
  memcpy(f->unit, u, (size_t)(ue - u));
  f->unit[ue - u] = 0;
  if (ue[1] != '(') return 0;
  const char* se = strchr(ue + 2, ')');
  if (!se || (size_t)(se - ue - 2) >= sizeof f->source) return 0;
  memcpy(f->source, ue + 2, (size_t)(se - ue - 2));
  f->source[se - ue - 2] = 0;
  return 1;
}

/* The VERBOSE line of option o says exactly `value`, o's unit and where the value came
 * from ("default", or "from the environment; default D"). */
static void check_option_line(const char* err, const hak_option_info* o, long long value, int from_env) {
  char line[1024];
  option_fields f;
  if (!option_line(err, o->name, line, sizeof line)) {
    CHECK_MSG(0, "no \"hakmem: option\" line for %s", o->name);
    return;
  }
  if (!parse_option_line(line, o->name, &f)) {
    CHECK_MSG(0, "%s: line not of the form \"hakmem: option NAME = VALUE UNIT (SOURCE) ...\": %s", o->name, line);
    return;
  }
  CHECK_MSG(f.value == value, "%s: the line shows %lld, expected %lld: %s", o->name, f.value, value, line);
  CHECK_MSG(strcmp(f.unit, o->unit) == 0, "%s: unit \"%s\", the table says \"%s\"", o->name, f.unit, o->unit);
  char want[96];
  if (from_env) snprintf(want, sizeof want, "from the environment; default %lld", o->def);
  else snprintf(want, sizeof want, "default");
  CHECK_MSG(strcmp(f.source, want) == 0, "%s: source \"%s\", expected \"%s\"", o->name, f.source, want);
}

static int is_numeric_option(const hak_option_info* o) {
  const char* u = o->unit ? o->unit : "";
  return !(strcmp(u, "path") == 0 || strcmp(u, "string") == 0 || strcmp(u, "str") == 0 ||
           strcmp(u, "file") == 0);
}

/* ---- in-process: the table ------------------------------------------------------- */

static void test_table(void) {
  int n = hak_option_count();
  CHECK(n > 0);
  CHECK(hak_option_get(-1) == NULL);
  CHECK(hak_option_get(n) == NULL);
  int have_superslab = 0, have_verbose = 0;
  for (int i = 0; i < n; i++) {
    const hak_option_info* o = hak_option_get(i);
    CHECK_MSG(o != NULL, "hak_option_get(%d) == NULL", i);
    if (!o) continue;
    CHECK_MSG(o->name && strncmp(o->name, "HAKMEM_", 7) == 0, "option %d name %s", i, o->name ? o->name : "(null)");
    if (!o->name) continue;
    for (int j = 0; j < i; j++) {
      const hak_option_info* p = hak_option_get(j);
      CHECK_MSG(!p || !p->name || strcmp(p->name, o->name) != 0, "option %s listed twice", o->name);
    }
    CHECK_MSG(o->min <= o->def && o->def <= o->max, "%s: default %lld outside [%lld, %lld]", o->name, o->def, o->min, o->max);
    CHECK_MSG(o->min <= o->value && o->value <= o->max, "%s: value %lld outside [%lld, %lld]", o->name, o->value, o->min, o->max);
    CHECK_MSG(o->unit && *o->unit, "%s: no unit", o->name);
    CHECK_MSG(o->help && *o->help, "%s: no help", o->name);
    if (!getenv(o->name)) {
      CHECK_MSG(o->from_env == 0, "%s: from_env set but the variable is not", o->name);
      CHECK_MSG(o->value == o->def, "%s: value %lld != default %lld without the variable", o->name, o->value, o->def);
    } else {
      CHECK_MSG(o->from_env == 1 || o->value == o->def, "%s: set in the environment but from_env == 0", o->name);
    }
    CHECK_MSG(hak_option_value(o->name) == o->value, "hak_option_value(%s) = %lld, table says %lld",
              o->name, hak_option_value(o->name), o->value);
    CHECK_MSG(hak_option_value(o->name + 7) == o->value, "hak_option_value(%s) without the prefix = %lld",
              o->name + 7, hak_option_value(o->name + 7));
    if (strcmp(o->name, SUPERSLAB) == 0) {
      have_superslab = 1;
      CHECK_EQ(o->def, 1);
      CHECK_EQ(o->min, 0);
      CHECK_MSG(o->max >= 1, "%s max %lld", o->name, o->max);
    }
    if (strcmp(o->name, "HAKMEM_VERBOSE") == 0) have_verbose = 1;
  }
  CHECK_MSG(have_superslab, "no option " SUPERSLAB);
  CHECK_MSG(have_verbose, "no option HAKMEM_VERBOSE");
  errno = 0;
  CHECK_EQ(hak_option_value("HAKMEM_NO_SUCH_OPTION"), -1);
  CHECK_EQ(errno, ENOENT);
  errno = 0;
  CHECK_EQ(hak_option_value("NO_SUCH_OPTION"), -1);
  CHECK_EQ(errno, ENOENT);
  errno = 0;
  CHECK_EQ(hak_option_value(""), -1);
  CHECK_EQ(errno, ENOENT);
  const char* e = getenv(SUPERSLAB);
  if (!e) {
    CHECK_EQ(hak_option_value(SUPERSLAB), 1);
    CHECK_EQ(hak_option_value("TINY_USE_SUPERSLAB"), 1);
  }
}

/* ---- child processes ----------------------------------------------------------------- */

static child_result res;

static void test_default_is_quiet(void) {
  CHECK(run_child(NULL, &res) == 0);
  CHECK_MSG(exited_ok(&res), "child status %#x; stderr:\n%s", res.status, res.err);
  CHECK_MSG(strstr(res.out, "alloc=ok") != NULL, "stdout: %s", res.out);
  CHECK_EQ(child_value(&res), 1);
  CHECK_MSG(res.err[0] == 0, "stderr without any HAKMEM_ variable is not empty:\n%s", res.err);
}

static void test_verbose_lists_options(void) {
  const char* env[] = {"HAKMEM_VERBOSE=1", NULL};
  CHECK(run_child(env, &res) == 0);
  CHECK_MSG(exited_ok(&res), "child status %#x; stderr:\n%s", res.status, res.err);
  CHECK_EQ(child_value(&res), 1);
  int n = hak_option_count();
  int lines = count_lines(res.err, "hakmem: option ", NULL);
  CHECK_MSG(lines == n, "%d \"hakmem: option\" lines for %d options; stderr:\n%s", lines, n, res.err);
  /* every line shows the exact effective value: 1 for VERBOSE (set), the default otherwise */
  for (int i = 0; i < n; i++) {
    const hak_option_info* o = hak_option_get(i);
    if (!o || !o->name) continue;
    int verbose = strcmp(o->name, "HAKMEM_VERBOSE") == 0;
    check_option_line(res.err, o, verbose ? 1 : o->def, verbose);
  }
  /* verbose output is about options and start-up, not warnings */
  CHECK_EQ(count_lines(res.err, "hakmem: warning", NULL), 0);
}

static void test_verbose_shows_env_value(void) {
  const char* env[] = {"HAKMEM_VERBOSE=1", SUPERSLAB "=0", NULL};
  CHECK(run_child(env, &res) == 0);
  CHECK_MSG(exited_ok(&res), "child status %#x; stderr:\n%s", res.status, res.err);
  CHECK_EQ(child_value(&res), 0);
  int n = hak_option_count();
  for (int i = 0; i < n; i++) {
    const hak_option_info* o = hak_option_get(i);
    if (!o || !o->name) continue;
    if (strcmp(o->name, SUPERSLAB) == 0) check_option_line(res.err, o, 0, 1);
    else if (strcmp(o->name, "HAKMEM_VERBOSE") == 0) check_option_line(res.err, o, 1, 1);
    else check_option_line(res.err, o, o->def, 0);
  }
}

static void test_superslab_off(void) {
  const char* env[] = {SUPERSLAB "=0", NULL};
  CHECK(run_child(env, &res) == 0);
  CHECK_MSG(exited_ok(&res), "child status %#x; stderr:\n%s", res.status, res.err);
  CHECK_MSG(strstr(res.out, "alloc=ok") != NULL, "stdout: %s", res.out);
  CHECK_EQ(child_value(&res), 0);
  CHECK_MSG(res.err[0] == 0, "stderr with a valid setting is not empty:\n%s", res.err);
}

static void test_invalid_value_warns(void) {
  static const char* bad[] = {SUPERSLAB "=banana", SUPERSLAB "=", SUPERSLAB "=1x", SUPERSLAB "=7",
                              SUPERSLAB "=-1", SUPERSLAB "=99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char* env[] = {bad[i], NULL};
    CHECK(run_child(env, &res) == 0);
    CHECK_MSG(exited_ok(&res), "%s: child status %#x; stderr:\n%s", bad[i], res.status, res.err);
    CHECK_MSG(strstr(res.out, "alloc=ok") != NULL, "%s: stdout: %s", bad[i], res.out);
    CHECK_MSG(child_value(&res) == 1, "%s: value %lld, expected the default 1", bad[i], child_value(&res));
    int w = count_lines(res.err, NULL, "hakmem: warning: " SUPERSLAB);
    CHECK_MSG(w == 1, "%s: %d warning lines naming the option, expected 1; stderr:\n%s", bad[i], w, res.err);
  }
}

/* every numeric option set to garbage at once: one warning each, still works */
static void test_every_option_invalid(void) {
  int n = hak_option_count();
  if (n <= 0) { CHECK(n > 0); return; }
  char** env = (char**)calloc((size_t)n + 1, sizeof(char*));
  int k = 0;
  for (int i = 0; i < n; i++) {
    const hak_option_info* o = hak_option_get(i);
    if (!o || !o->name || !is_numeric_option(o)) continue;
    size_t len = strlen(o->name) + 16;
    env[k] = (char*)malloc(len);
    snprintf(env[k], len, "%s=banana", o->name);
    k++;
  }
  CHECK(run_child((const char* const*)env, &res) == 0);
  CHECK_MSG(exited_ok(&res), "child status %#x; stderr:\n%s", res.status, res.err);
  CHECK_MSG(strstr(res.out, "alloc=ok") != NULL, "stdout: %s", res.out);
  CHECK_EQ(child_value(&res), 1);
  for (int i = 0; i < n; i++) {
    const hak_option_info* o = hak_option_get(i);
    if (!o || !o->name || !is_numeric_option(o)) continue;
    char needle[256];
    snprintf(needle, sizeof needle, "hakmem: warning: %s", o->name);
    int w = 0;
    /* whole-word: the next character is not part of a longer name */
    const char* s = res.err;
    while ((s = strstr(s, needle))) {
      char after = s[strlen(needle)];
      if (!(after == '_' || (after >= 'A' && after <= 'Z') || (after >= '0' && after <= '9'))) w++;
      s += strlen(needle);
    }
    CHECK_MSG(w == 1, "%s=banana: %d warnings naming it, expected 1", o->name, w);
  }
  for (int i = 0; i < k; i++) free(env[i]);
  free(env);
}

/* Bug: option suffix overflow (issue 10, item 6). A byte value whose suffix shift
 * overflows 64 bits wraps around instead of being rejected: 17179869184G is 2^34 << 30 =
 * 2^64, which the parser takes as 0 (in range, no warning); 17179869185G becomes 1 GiB.
 * The README says a value that does not parse or is out of range keeps the default with
 * a warning. Run only when named; ctest options_known_bug_suffix_overflow has WILL_FAIL
 * until the parser is fixed. */
static void test_suffix_overflow_warns(void) {
  static const struct { const char* name; const char* value; } cases[] = {
    {"HAKMEM_SEGMENT_CACHE", "17179869184G"},          /* 2^64 -> 0 */
    {"HAKMEM_LARGE_CACHE", "17179869185G"},            /* 2^64 + 2^30 -> 1 GiB */
    {"HAKMEM_SEGMENT_CACHE_DIRTY", "17592186044416M"}, /* 2^44 << 20 = 2^64 -> 0 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const hak_option_info* o = NULL;
    for (int k = 0; k < hak_option_count(); k++)
      if (hak_option_get(k) && strcmp(hak_option_get(k)->name, cases[i].name) == 0) o = hak_option_get(k);
    if (!o) { CHECK_MSG(0, "no option %s", cases[i].name); continue; }
    char setting[128];
    snprintf(setting, sizeof setting, "%s=%s", cases[i].name, cases[i].value);
    const char* env[] = {setting, NULL};
    CHECK(run_child(env, &res) == 0);
    CHECK_MSG(exited_ok(&res), "%s: child status %#x; stderr:\n%s", setting, res.status, res.err);
    long long v = child_option(&res, cases[i].name);
    CHECK_MSG(v == o->def, "%s: effective value %lld, expected the default %lld", setting, v, o->def);
    char needle[160];
    snprintf(needle, sizeof needle, "hakmem: warning: %s", setting);
    int w = count_lines(res.err, NULL, needle);
    CHECK_MSG(w == 1, "%s: %d warning lines, expected 1; stderr:\n%s", setting, w, res.err);
  }
}

/* A HAKMEM_* name that is no option gets one warning naming the closest option, and
 * changes nothing. */
static void test_unknown_name_warns(void) {
  static const struct { const char* setting; const char* line; } cases[] = {
    {"HAKMEM_TLS_CACHE_BYTE=5",
     "hakmem: warning: unknown variable HAKMEM_TLS_CACHE_BYTE (did you mean HAKMEM_TLS_CACHE_BYTES?)"},
    {"HAKMEM_VERBSOE=1", "hakmem: warning: unknown variable HAKMEM_VERBSOE (did you mean HAKMEM_VERBOSE?)"},
    {"HAKMEM_ace_enabled=0",
     "hakmem: warning: unknown variable HAKMEM_ace_enabled (did you mean HAKMEM_ACE_ENABLED?)"},
    {"HAKMEM_PURGE_DELAY_MS=5", "hakmem: warning: unknown variable HAKMEM_PURGE_DELAY_MS (did you mean HAKMEM_PURGE_DELAY?)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char* env[] = {cases[i].setting, NULL};
    CHECK(run_child(env, &res) == 0);
    CHECK_MSG(exited_ok(&res), "%s: child status %#x; stderr:\n%s", cases[i].setting, res.status, res.err);
    CHECK_MSG(strstr(res.out, "alloc=ok") != NULL, "%s: stdout: %s", cases[i].setting, res.out);
    int w = count_lines(res.err, cases[i].line, NULL);
    CHECK_MSG(w == 1, "%s: %d lines \"%s\"; stderr:\n%s", cases[i].setting, w, cases[i].line, res.err);
    CHECK_MSG(count_lines(res.err, "hakmem:", NULL) == 1, "%s: other messages too:\n%s", cases[i].setting, res.err);
  }
  CHECK_EQ(child_option(&res, "HAKMEM_PURGE_DELAY"), 100);   /* the misspelt one changed nothing */
  CHECK(run_child((const char* const[]){"HAKMEM_TLS_CACHE_BYTE=5", NULL}, &res) == 0);
  CHECK_EQ(child_option(&res, "HAKMEM_TLS_CACHE_BYTES"), 64 << 10);
  /* two unknown names, two warnings; the known one beside them takes effect quietly */
  const char* env2[] = {"HAKMEM_ACE=0", "HAKMEM_STAT=1", SUPERSLAB "=0", NULL};
  CHECK(run_child(env2, &res) == 0);
  CHECK_MSG(exited_ok(&res), "child status %#x; stderr:\n%s", res.status, res.err);
  CHECK_EQ(count_lines(res.err, "hakmem: warning: unknown variable HAKMEM_ACE (did you mean HAKMEM_ACE_", NULL), 1);
  CHECK_EQ(count_lines(res.err, "hakmem: warning: unknown variable HAKMEM_STAT (did you mean HAKMEM_STATS?)", NULL), 1);
  CHECK_MSG(count_lines(res.err, "hakmem:", NULL) == 2, "stderr:\n%s", res.err);
  CHECK_EQ(child_value(&res), 0);
}

/* One grammar for every byte option: K M G T and KiB MiB GiB TiB, in any case (binary
 * multiples); anything else, or a value that overflows or is out of range, keeps the
 * default with a warning. */
static void test_byte_suffixes(void) {
  static const struct { const char* name; const char* value; long long want; } ok[] = {
    {"HAKMEM_TLS_CACHE_BYTES", "8K", 8 << 10},        {"HAKMEM_TLS_CACHE_BYTES", "8k", 8 << 10},
    {"HAKMEM_TLS_CACHE_BYTES", "8KiB", 8 << 10},      {"HAKMEM_TLS_CACHE_BYTES", "8kib", 8 << 10},
    {"HAKMEM_TLS_CACHE_BYTES", "8KIB", 8 << 10},      {"HAKMEM_TLS_CACHE_BYTES", "2MiB", 2 << 20},
    {"HAKMEM_TLS_CACHE_BYTES", "2m", 2 << 20},        {"HAKMEM_TLS_CACHE_BYTES", "4096", 4096},
    {"HAKMEM_LARGE_CACHE", "1G", 1LL << 30},          {"HAKMEM_LARGE_CACHE", "1gib", 1LL << 30},
    {"HAKMEM_SEGMENT_CACHE", "1T", 1LL << 40},        {"HAKMEM_SEGMENT_CACHE", "1TiB", 1LL << 40},
    {"HAKMEM_SEGMENT_CACHE", "1t", 1LL << 40},        {"HAKMEM_ACE_START_BYTES", "32MiB", 32LL << 20},
    {"HAKMEM_SEGMENT_CACHE_DIRTY", "0K", 0},
    {"HAKMEM_TLS_GROW_BYTES", "1K", 1 << 10},         {"HAKMEM_TLS_GROW_BUDGET", "0", 0},
    {"HAKMEM_TLS_GROW_BUDGET", "1T", 1LL << 40},      {"HAKMEM_TLS_GROW_MAX", "65535", 65535},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char setting[128];
    snprintf(setting, sizeof setting, "%s=%s", ok[i].name, ok[i].value);
    const char* env[] = {setting, NULL};
    CHECK(run_child(env, &res) == 0);
    CHECK_MSG(exited_ok(&res), "%s: child status %#x; stderr:\n%s", setting, res.status, res.err);
    long long v = child_option(&res, ok[i].name);
    CHECK_MSG(v == ok[i].want, "%s: effective value %lld, expected %lld", setting, v, ok[i].want);
    CHECK_MSG(res.err[0] == 0, "%s: stderr not empty:\n%s", setting, res.err);
  }
  static const struct { const char* name; const char* value; } bad[] = {
    {"HAKMEM_TLS_CACHE_BYTES", "8KB"},  {"HAKMEM_TLS_CACHE_BYTES", "8Ki"},   {"HAKMEM_TLS_CACHE_BYTES", "8KiBB"},
    {"HAKMEM_TLS_CACHE_BYTES", "8 K"},  {"HAKMEM_TLS_CACHE_BYTES", "8P"},    {"HAKMEM_TLS_CACHE_BYTES", "K"},
    {"HAKMEM_TLS_CACHE_BYTES", "1T"},   /* above its maximum of 64 MiB */
    {"HAKMEM_SEGMENT_CACHE", "2T"},     /* above its maximum of 1 TiB */
    {"HAKMEM_SEGMENT_CACHE", "8388608T"},      /* 2^23 << 40 = 2^63: overflows */
    {"HAKMEM_LARGE_CACHE", "16777216TiB"},     /* 2^64 */
    {"HAKMEM_TLS_CAP_MAX", "1K"},       /* a count, not bytes: no suffix */
    {"HAKMEM_TLS_GROW_BYTES", "512"},   /* below its minimum of 1 KiB */
    {"HAKMEM_TLS_GROW_BUDGET", "2T"},   /* above its maximum of 1 TiB */
    {"HAKMEM_TLS_GROW_MAX", "0"},       /* 1..65535 */
    {"HAKMEM_TLS_GROW_MAX", "65536"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char setting[128];
    snprintf(setting, sizeof setting, "%s=%s", bad[i].name, bad[i].value);
    const char* env[] = {setting, NULL};
    CHECK(run_child(env, &res) == 0);
    CHECK_MSG(exited_ok(&res), "%s: child status %#x; stderr:\n%s", setting, res.status, res.err);
    const hak_option_info* o = NULL;
    for (int k = 0; k < hak_option_count(); k++)
      if (strcmp(hak_option_get(k)->name, bad[i].name) == 0) o = hak_option_get(k);
    if (!o) { CHECK_MSG(0, "no option %s", bad[i].name); continue; }
    long long v = child_option(&res, bad[i].name);
    CHECK_MSG(v == o->def, "%s: effective value %lld, expected the default %lld", setting, v, o->def);
    char needle[160];
    snprintf(needle, sizeof needle, "hakmem: warning: %s is invalid", setting);
    CHECK_MSG(count_lines(res.err, needle, NULL) == 1, "%s: no line \"%s\"; stderr:\n%s", setting, needle, res.err);
  }
}

/* In a setuid program (AT_SECURE) every HAKMEM_* variable is ignored: a copy of this
 * binary owned by `nobody` with the set-user-ID bit, run by root with HAKMEM_VERBOSE=1,
 * an unknown name and SuperSlabs off, prints nothing and keeps the defaults. Skipped
 * when not root or when the copy's file system ignores set-user-ID (the child says
 * secure=0). */
static void test_setuid_ignores_env(void) {
#if defined(__SANITIZE_ADDRESS__)
  /* LeakSanitizer refuses to run in a set-user-ID process (a fatal error at exit). */
  printf("test_setuid_ignores_env: skipped (AddressSanitizer build)\n");
  CHECK(1);
  return;
#endif
  if (geteuid() != 0) { printf("test_setuid_ignores_env: skipped (not root)\n"); CHECK(1); return; }
  char dir[] = "/var/tmp/hak_suid.XXXXXX";
  if (!mkdtemp(dir)) { CHECK_MSG(0, "mkdtemp: %s", strerror(errno)); return; }
  char path[256];
  snprintf(path, sizeof path, "%s/test_options_suid", dir);
  char cmd[768];
  snprintf(cmd, sizeof cmd, "cp /proc/%d/exe %s && chmod 755 %s && chown nobody %s && chmod 4755 %s", (int)getpid(),
           path, dir, path, path);
  CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
  const char* env[] = {"HAKMEM_VERBOSE=1", SUPERSLAB "=0", "HAKMEM_NO_SUCH_THING=1", NULL};
  CHECK(run_child_exe(path, env, &res) == 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (strstr(res.out, "secure=0")) { printf("test_setuid_ignores_env: skipped (set-user-ID ignored here)\n"); CHECK(1); return; }
  CHECK_MSG(exited_ok(&res), "child status %#x; stdout:\n%s\nstderr:\n%s", res.status, res.out, res.err);
  CHECK_MSG(strstr(res.out, "secure=1") != NULL, "stdout: %s", res.out);
  CHECK_EQ(child_value(&res), 1);
  CHECK_EQ(child_option(&res, "HAKMEM_VERBOSE"), 0);
  CHECK_MSG(res.err[0] == 0, "a setuid child printed:\n%s", res.err);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--child") == 0) return child_main();
  ht_init(argc, argv);
  HT_RUN(test_table);
  HT_RUN(test_default_is_quiet);
  HT_RUN(test_verbose_lists_options);
  HT_RUN(test_verbose_shows_env_value);
  HT_RUN(test_superslab_off);
  HT_RUN(test_invalid_value_warns);
  HT_RUN(test_every_option_invalid);
  HT_RUN(test_unknown_name_warns);
  HT_RUN(test_byte_suffixes);
  HT_RUN(test_setuid_ignores_env);
  HT_RUN_EXPLICIT(test_suffix_overflow_warns);   /* known bug: see the function */
  return ht_report();
}
