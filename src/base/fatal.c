/* fatal.c — the two ways hakmem stops a program: heap corruption or a bad pointer from
 * the program (hak_fatal), and a broken internal invariant (hak_assert_fail). Both
 * write one line to stderr without malloc or stdio, then abort(). */
#include "base/base.h"
#include "base/io.h"

#include <stdlib.h>

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

static size_t fmt_dec(char* out, uint64_t v) {
  char tmp[20]; size_t n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  size_t k = 0;
  while (n) out[k++] = tmp[--n];
  return k;
}

/* "hakmem: FN(): WHAT" into buf, at most cap bytes; returns the length. */
static size_t fatal_prefix(char* buf, size_t cap, const char* fn, const char* what) {
  size_t n = append(buf, 0, cap, "hakmem: ");
  n = append(buf, n, cap, fn);
  n = append(buf, n, cap, "(): ");
  return append(buf, n, cap, what);
}

void hak_fatal(const char* fn, const char* what, const void* p) {
  char buf[256];
  size_t n = fatal_prefix(buf, sizeof buf - 24, fn, what);
  buf[n++] = ' ';
  n += fmt_hex(buf + n, (uintptr_t)p);
  buf[n++] = '\n';
  hak_write_err(buf, n);
  abort();
}

void hak_fatal_block(const char* fn, const char* what, const void* block, size_t size, const char* link_label,
                     uintptr_t link) {
  char buf[384];
  const size_t cap = sizeof buf - 64;   /* room for the numbers after the last label */
  size_t n = fatal_prefix(buf, cap, fn, what);
  n = append(buf, n, cap, ": free block ");
  n += fmt_hex(buf + n, (uintptr_t)block);
  n = append(buf, n, cap, " of size ");
  n += fmt_dec(buf + n, size);
  if (link_label) {
    buf[n++] = ' ';
    n = append(buf, n, cap, link_label);
    buf[n++] = ' ';
    n += fmt_hex(buf + n, link);
  }
  buf[n++] = '\n';
  hak_write_err(buf, n);
  abort();
}

void hak_assert_fail(const char* expr, const char* file, int line) {
  char buf[512];
  size_t n = append(buf, 0, sizeof buf - 40, "hakmem: internal error: ");
  n = append(buf, n, sizeof buf - 40, expr);
  n = append(buf, n, sizeof buf - 40, " at ");
  n = append(buf, n, sizeof buf - 40, file);
  n = append(buf, n, sizeof buf - 40, ":");
  n += fmt_dec(buf + n, (unsigned)line);
  buf[n++] = '\n';
  hak_write_err(buf, n);
  abort();
}
