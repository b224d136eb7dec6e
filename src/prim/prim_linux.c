/* prim_linux.c — the only file that makes Linux system calls for memory, time,
 * randomness and error output. Every function restores errno before returning, so
 * that free() and friends keep the program's errno. */
#include "prim/prim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

void* hak_prim_map(size_t size) {
  int e = errno;
  void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  errno = e;
  return p == MAP_FAILED ? NULL : p;
}

void* hak_prim_map_aligned(size_t size, size_t align) {
  if (align <= HAK_PAGE_SIZE) return hak_prim_map(size);
  if (size + align < size) return NULL;
  int e = errno;
  /* Over-map by `align`, then trim the unaligned head and the tail. */
  size_t over = size + align;
  uint8_t* raw = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) { errno = e; return NULL; }
  uint8_t* p = (uint8_t*)HAK_ALIGN_UP((uintptr_t)raw, align);
  size_t head = (size_t)(p - raw);
  size_t tail = over - head - size;
  if (head) munmap(raw, head);
  if (tail) munmap(p + size, tail);
  errno = e;
  return p;
}

void hak_prim_unmap(void* p, size_t size) {
  int e = errno;
  munmap(p, size);
  errno = e;
}

void hak_prim_decommit(void* p, size_t size) {
  int e = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = e;
}

bool hak_prim_grow_in_place(void* p, size_t old_size, size_t new_size) {
  int e = errno;
  void* q = mremap(p, old_size, new_size, 0);
  errno = e;
  return q == p;
}

bool hak_prim_move(void* p, size_t old_size, void* to, size_t new_size) {
  int e = errno;
  void* q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  errno = e;
  return q == to;
}

uint64_t hak_prim_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t hak_prim_random64(void) {
  int e = errno;
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
    const uint8_t* at = (const uint8_t*)getauxval(AT_RANDOM);
    if (at) memcpy(&r, at, sizeof r);
    r ^= hak_prim_now_ns() * 0x9E3779B97F4A7C15ull;
  }
  errno = e;
  return r | 1; /* never zero: zero means "no key" in block headers */
}

void hak_prim_write_fd(int fd, const char* s, size_t n) {
  int e = errno;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) { if (errno == EINTR) continue; break; }
    s += w; n -= (size_t)w;
  }
  errno = e;
}

void hak_prim_write_err(const char* s, size_t n) { hak_prim_write_fd(2, s, n); }

int hak_prim_dup_err(void) {
  int e = errno;
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
  if (fd < 0) fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  errno = e;
  return fd;
}

const char* hak_prim_getenv(const char* name) {
  char** env = environ;
  if (!env || !name) return NULL;
  size_t n = strlen(name);
  for (; *env; env++) {
    if (strncmp(*env, name, n) == 0 && (*env)[n] == '=') return *env + n + 1;
  }
  return NULL;
}

size_t hak_prim_rss_bytes(void) {
  int e = errno;
  size_t rss = 0;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      const char* s = buf;
      while (*s && *s != ' ') s++;   /* skip total size */
      while (*s == ' ') s++;
      size_t pages = 0;
      while (*s >= '0' && *s <= '9') pages = pages * 10 + (size_t)(*s++ - '0');
      rss = pages * HAK_PAGE_SIZE;
    }
  }
  errno = e;
  return rss;
}
