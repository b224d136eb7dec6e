/* bench_common.c — failure reporting, RNG seeding, clocks, /proc readers and the
 * option parser shared by the benchmarks. See bench_common.h for the invariants. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- failure -------------------------------------------------------------------- */

static void bc_write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

void bc_fail(const char *fmt, ...) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "bench: FAILED: ");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  bc_write_all(2, buf, (size_t)n);
  abort();
}

void bc_check_failed(const void *p, size_t size, uint64_t key, const char *where) {
  unsigned char head[8] = {0}, tail[8] = {0};
  memcpy(head, p, size < 8 ? size : 8);
  if (size >= 16) memcpy(tail, (const char *)p + size - 8, 8);
  uint64_t t = bc_tag(size, key);
  bc_fail("%s: block %p (size %zu, key %llu) was corrupted: head %02x%02x%02x%02x%02x%02x%02x%02x "
          "tail %02x%02x%02x%02x%02x%02x%02x%02x, expected head tag %016llx",
          where, p, size, (unsigned long long)key, head[0], head[1], head[2], head[3], head[4],
          head[5], head[6], head[7], tail[0], tail[1], tail[2], tail[3], tail[4], tail[5],
          tail[6], tail[7], (unsigned long long)t);
}

/* ---- random numbers ---------------------------------------------------------------- */

void bc_rng_seed(bc_rng *r, uint64_t seed, uint64_t stream) {
  r->s = bc_mix64(seed ^ bc_mix64(stream + 0x632be59bd9b4e019ULL));
}

size_t bc_rng_logrange(bc_rng *r, size_t lo, size_t hi) {
  if (lo >= hi) return lo;
  unsigned blo = 63u - (unsigned)__builtin_clzll((unsigned long long)lo);
  unsigned bhi = 63u - (unsigned)__builtin_clzll((unsigned long long)hi);
  unsigned b = blo + (unsigned)bc_rng_below(r, bhi - blo + 1);
  size_t a = (size_t)1 << b, z = (a << 1) - 1;
  if (a < lo) a = lo;
  if (z > hi) z = hi;
  return bc_rng_range(r, a, z);
}

/* ---- time and memory ---------------------------------------------------------------- */

double bc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bc_sleep(double seconds) {
  if (seconds <= 0) return;
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

long bc_status_kb(const char *field) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    if (len == sizeof buf - 1) break;
  }
  close(fd);
  buf[len] = '\0';
  size_t flen = strlen(field);
  for (char *line = buf; line && *line;) {
    if (strncmp(line, field, flen) == 0 && line[flen] == ':') return strtol(line + flen + 1, NULL, 10);
    line = strchr(line, '\n');
    if (line) line++;
  }
  return -1;
}

/* ---- command line ------------------------------------------------------------------- */

static const char *g_prog = "bench";
static const char *g_summary = "";
static const bc_opt *g_opts;
static int g_nopts;

static void bc_print_default(FILE *f, const bc_opt *o) {
  switch (o->type) {
  case BC_OPT_U64: fprintf(f, "%llu", (unsigned long long)*(uint64_t *)o->ptr); break;
  case BC_OPT_SIZE: fprintf(f, "%zu", *(size_t *)o->ptr); break;
  case BC_OPT_DBL: fprintf(f, "%g", *(double *)o->ptr); break;
  case BC_OPT_STR: fprintf(f, "%s", *(const char **)o->ptr ? *(const char **)o->ptr : ""); break;
  case BC_OPT_FLAG: fprintf(f, "off"); break;
  }
}

static void bc_usage(FILE *f) {
  fprintf(f, "usage: %s [options]\n%s\n\noptions:\n", g_prog, g_summary);
  for (int i = 0; i < g_nopts; i++) {
    const bc_opt *o = &g_opts[i];
    const char *arg = o->type == BC_OPT_FLAG ? "" : o->type == BC_OPT_STR ? " STR"
                      : o->type == BC_OPT_SIZE ? " BYTES" : o->type == BC_OPT_DBL ? " X" : " N";
    char left[64];
    snprintf(left, sizeof left, "--%s%s", o->name, arg);
    fprintf(f, "  %-24s %s (default ", left, o->help);
    bc_print_default(f, o);
    fprintf(f, ")\n");
  }
  fprintf(f, "  %-24s %s\n", "--help", "show this text");
}

void bc_usage_error(const char *fmt, ...) {
  fprintf(stderr, "%s: ", g_prog);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  bc_usage(stderr);
  exit(2);
}

static int bc_parse_size(const char *s, double *out) {
  char *end;
  errno = 0;
  if (*s == '-' || *s == '\0') return -1;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s) return -1;
  unsigned long long mul = 1;
  if (*end) {
    switch (*end) {
    case 'k': case 'K': mul = 1ull << 10; break;
    case 'm': case 'M': mul = 1ull << 20; break;
    case 'g': case 'G': mul = 1ull << 30; break;
    default: return -1;
    }
    end++;
    if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b')) end += 2;
    else if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
  }
  *out = (double)v * (double)mul;
  return 0;
}

static void bc_set_value(const bc_opt *o, const char *val) {
  double d;
  char *end;
  switch (o->type) {
  case BC_OPT_STR:
    if (*val == '\0') bc_usage_error("--%s needs a non-empty value", o->name);
    *(const char **)o->ptr = val;
    return;
  case BC_OPT_FLAG:
    *(int *)o->ptr = 1;
    return;
  case BC_OPT_DBL:
    errno = 0;
    d = strtod(val, &end);
    if (errno || end == val || *end || d != d) bc_usage_error("--%s: '%s' is not a number", o->name, val);
    break;
  case BC_OPT_U64:
    errno = 0;
    if (*val == '-' || *val == '\0') bc_usage_error("--%s: '%s' is not a non-negative integer", o->name, val);
    d = (double)strtoull(val, &end, 0);
    if (errno || end == val || *end) bc_usage_error("--%s: '%s' is not a non-negative integer", o->name, val);
    break;
  case BC_OPT_SIZE:
    if (bc_parse_size(val, &d) != 0) bc_usage_error("--%s: '%s' is not a size (e.g. 4096, 64K, 2M)", o->name, val);
    break;
  default:
    return;
  }
  if (d < o->min || d > o->max)
    bc_usage_error("--%s: %s is out of range [%g, %g]", o->name, val, o->min, o->max);
  if (o->type == BC_OPT_DBL) *(double *)o->ptr = d;
  else if (o->type == BC_OPT_U64) *(uint64_t *)o->ptr = strtoull(val, NULL, 0);
  else *(size_t *)o->ptr = (size_t)d;
}

void bc_parse_args(int argc, char **argv, const char *prog, const char *summary,
                   const bc_opt *opts, int nopts) {
  g_prog = prog;
  g_summary = summary;
  g_opts = opts;
  g_nopts = nopts;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      bc_usage(stdout);
      exit(0);
    }
    if (strncmp(a, "--", 2) != 0) bc_usage_error("unexpected argument '%s'", a);
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const bc_opt *o = NULL;
    for (int k = 0; k < nopts; k++)
      if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0) o = &opts[k];
    if (!o) bc_usage_error("unknown option '%s'", a);
    if (o->type == BC_OPT_FLAG) {
      if (eq) bc_usage_error("--%s takes no value", o->name);
      bc_set_value(o, "");
      continue;
    }
    const char *val;
    if (eq) val = eq + 1;
    else if (i + 1 < argc) val = argv[++i];
    else bc_usage_error("--%s needs a value", o->name);
    bc_set_value(o, val);
  }
}
