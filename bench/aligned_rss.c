/* aligned_rss.c — memory of many small blocks aligned beyond a page.
 *
 *   aligned_rss [N] [ALIGN] [SIZE]     defaults: 70000 8192 100
 *
 * Allocates N blocks of SIZE bytes aligned to ALIGN with posix_memalign, writes every
 * byte, checks them, reports the mappings (/proc/self/maps lines) and RSS while they
 * are all live, then frees them. Run it under /usr/bin/time -v with each allocator
 * LD_PRELOADed to compare their peak RSS (Maximum resident set size). Plain libc calls,
 * not linked to hakmem (see CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long map_lines(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

static long rss_kib(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) { if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0; fclose(f); }
  return (long)res * 4;
}

int main(int argc, char** argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 70000;
  size_t align = argc > 2 ? strtoul(argv[2], NULL, 0) : 8192;
  size_t size = argc > 3 ? strtoul(argv[3], NULL, 0) : 100;
  unsigned char** p = calloc(n, sizeof *p);
  if (!p) return 1;
  size_t failed = 0, bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (posix_memalign((void**)&p[i], align, size) != 0) { p[i] = NULL; failed++; continue; }
    if ((size_t)p[i] % align) bad++;
    memset(p[i], (int)(i & 0xff), size);
  }
  for (size_t i = 0; i < n; i++) {
    if (p[i] && (p[i][0] != (unsigned char)(i & 0xff) || p[i][size - 1] != (unsigned char)(i & 0xff))) bad++;
  }
  printf("aligned_rss: %zu blocks of %zu B aligned %zu: %zu failed, %zu bad, %ld mappings, RSS %ld KiB\n", n, size,
         align, failed, bad, map_lines(), rss_kib());
  for (size_t i = 0; i < n; i++) free(p[i]);
  free(p);
  return failed || bad ? 1 : 0;
}
