/* prim_linux.c — the only file that makes Linux system calls for memory, time and
 * randomness. Every function restores errno before returning, so
 * that free() and friends keep the program's errno. */
#include "prim/prim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void* hak_prim_map(size_t size) {
  int e = errno;
  void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  errno = e;
  return p == MAP_FAILED ? NULL : p;
}

static void* linux_map_aligned(size_t size, size_t align) {
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
  /* Trimming splits one mapping into at most three; it can fail only at the
   * mapping-count limit, and then the whole over-mapping is given up. */
  if (head && munmap(raw, head) != 0) {
    munmap(raw, over);            /* unsplit: one whole mapping goes away */
    errno = e;
    return NULL;
  }
  if (tail && munmap(p + size, tail) != 0) {
    munmap(p, size + tail);
    errno = e;
    return NULL;
  }
  errno = e;
  return p;
}

static bool linux_unmap(void* p, size_t size) {
  int e = errno;
  int r = munmap(p, size);
  errno = e;
  return r == 0;
}

static bool linux_decommit(void* p, size_t size) {
  int e = errno;
  int r = madvise(p, size, MADV_DONTNEED);
  errno = e;
  return r == 0;
}

static bool linux_huge(void* p, size_t size, bool on) {
  int e = errno;
  int r = madvise(p, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  errno = e;
  return r == 0;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
static bool linux_collapse(void* p, size_t size) {
  int e = errno;
  int r = madvise(p, size, MADV_COLLAPSE);
  errno = e;
  return r == 0;
}

static bool linux_grow_in_place(void* p, size_t old_size, size_t new_size) {
  int e = errno;
  void* q = mremap(p, old_size, new_size, 0);
  errno = e;
  return q == p;
}

static bool linux_move(void* p, size_t old_size, void* to, size_t new_size) {
  int e = errno;
  void* q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  errno = e;
  return q == to;
}

static uint64_t linux_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t hak_prim_resident_bytes(void* p, size_t size) {
  int e = errno;
  unsigned char vec[512];                 /* 2 MiB of pages per call */
  size_t resident = 0;
  for (size_t off = 0; off < size; off += sizeof vec * HAK_PAGE_SIZE) {
    size_t len = size - off < sizeof vec * HAK_PAGE_SIZE ? size - off : sizeof vec * HAK_PAGE_SIZE;
    if (mincore((uint8_t*)p + off, len, vec) != 0) { errno = e; return 0; }
    size_t pages = (len + HAK_PAGE_SIZE - 1) / HAK_PAGE_SIZE;
    for (size_t i = 0; i < pages; i++) resident += vec[i] & 1;
  }
  errno = e;
  return resident * HAK_PAGE_SIZE;
}

bool hak_prim_guard(void* p, size_t size) {
  int e = errno;
  bool ok = mprotect(p, size, PROT_NONE) == 0;
  errno = e;
  return ok;
}

uint64_t hak_prim_random64(void) {
  int e = errno;
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
    const uint8_t* at = (const uint8_t*)getauxval(AT_RANDOM);
    if (at) memcpy(&r, at, sizeof r);
    r ^= linux_now_ns() * 0x9E3779B97F4A7C15ull;
  }
  errno = e;
  return r | 1; /* never zero: zero means "no key" in block headers */
}

const hak_prim_ops hak_prim_linux = {
  .map_aligned = linux_map_aligned,
  .unmap = linux_unmap,
  .decommit = linux_decommit,
  .grow_in_place = linux_grow_in_place,
  .move = linux_move,
  .now_ns = linux_now_ns,
  .huge = linux_huge,
  .collapse = linux_collapse,
};
_Atomic(const hak_prim_ops*) hak_prim_current = &hak_prim_linux;

const hak_prim_ops* hak_prim_set_ops(const hak_prim_ops* ops) {
  return atomic_exchange(&hak_prim_current, ops ? ops : &hak_prim_linux);
}

int hak_prim_process_id(void) { return (int)getpid(); }

int hak_prim_thread_id(void) { return (int)syscall(SYS_gettid); }

bool hak_prim_thread_gone(int pid, int tid) {
  int e = errno;
  bool gone = syscall(SYS_tgkill, pid, tid, 0) != 0 && errno == ESRCH;
  errno = e;
  return gone;
}

/* The registration belongs to the process (its mm): a fork child registers again, and
 * is refused the barrier until it has. */
enum { MB_QUERY = 0, MB_PRIVATE_EXPEDITED = 1 << 3, MB_REGISTER_PRIVATE_EXPEDITED = 1 << 4 };

bool hak_prim_process_barrier_ready(void) {
  static _Atomic int registered_pid;        /* 0: not yet; -1: the kernel refused */
  int pid = hak_prim_process_id();
  int reg = hak_load_acquire(&registered_pid);
  if (reg != pid && reg != -1) {
    int e = errno;
    long cmds = syscall(SYS_membarrier, MB_QUERY, 0, 0);
    reg = cmds >= 0 && (cmds & MB_PRIVATE_EXPEDITED) &&
          syscall(SYS_membarrier, MB_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? pid : -1;
    hak_store_release(&registered_pid, reg);
    errno = e;
  }
  return reg == pid;
}

bool hak_prim_process_barrier(void) {
  if (!hak_prim_process_barrier_ready()) return false;
  int e = errno;
  bool ok = syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED, 0, 0) == 0;
  errno = e;
  return ok;
}

/* The resident pages of a statm text ("size resident shared ..."), in bytes. */
static size_t statm_rss(const char* buf) {
  const char* s = buf;
  while (*s && *s != ' ') s++;   /* skip total size */
  while (*s == ' ') s++;
  size_t pages = 0;
  while (*s >= '0' && *s <= '9') pages = pages * 10 + (size_t)(*s++ - '0');
  return pages * HAK_PAGE_SIZE;
}

/* The calling thread's view of the process's memory: /proc/self names the first
 * thread, which has no memory to show once it has exited (main called pthread_exit) while
 * other threads go on: its statm reads 0 and its status has no Vm lines. */
static int open_mem_file(const char* thread_path, const char* process_path) {
  int fd = open(thread_path, O_RDONLY | O_CLOEXEC);
  return fd >= 0 ? fd : open(process_path, O_RDONLY | O_CLOEXEC);   /* before Linux 3.17 */
}

size_t hak_prim_rss_bytes(void) {
  int e = errno;
  size_t rss = 0;
  int fd = open_mem_file("/proc/thread-self/statm", "/proc/self/statm");
  if (fd >= 0) {
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      rss = statm_rss(buf);
    }
  }
  errno = e;
  return rss;
}

/* Above this, or half the descriptor limit when that is lower. */
#define HAK_FD_HIGH 512

int hak_prim_fd_high(int fd) {
  if (fd < 0) return fd;
  int e = errno;
  struct rlimit rl;
  long base = HAK_FD_HIGH;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur / 2 < base)
    base = (long)rl.rlim_cur / 2;
  if (fd >= base) { errno = e; return fd; }
  int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)base);
  int lost = high < 0 && errno == EBADF;   /* the program closed it already: not ours now */
  if (high >= 0) close(fd);
  errno = e;
  return high >= 0 ? high : lost ? -1 : fd;
}

void hak_prim_kept_adopt(hak_kept_fd* k, int fd) {
  struct stat st;
  k->fd = fd;
  k->pid = (int)getpid();
  k->dev = k->ino = 0;
  if (fd >= 0 && fstat(fd, &st) == 0) {
    k->dev = (uint64_t)st.st_dev;
    k->ino = (uint64_t)st.st_ino;
  }
}

bool hak_prim_kept_open(hak_kept_fd* k, const char* path, int flags) {
  hak_prim_kept_close(k);
  int e = errno;
  int fd = hak_prim_fd_high(open(path, flags | O_RDONLY | O_CLOEXEC));
  errno = e;
  if (fd < 0) return false;
  hak_prim_kept_adopt(k, fd);
  return true;
}

/* Same file, ignoring the process: a fork child still closes what it inherited. */
static bool kept_same_file(const hak_kept_fd* k) {
  struct stat st;
  return k->fd >= 0 && fstat(k->fd, &st) == 0 && (uint64_t)st.st_dev == k->dev && (uint64_t)st.st_ino == k->ino;
}

bool hak_prim_kept_valid(const hak_kept_fd* k) {
  int e = errno;
  bool ok = k->fd >= 0 && k->pid == (int)getpid() && kept_same_file(k);
  errno = e;
  return ok;
}

void hak_prim_kept_close(hak_kept_fd* k) {
  int e = errno;
  if (kept_same_file(k)) close(k->fd);
  k->fd = -1;
  errno = e;
}

size_t hak_prim_rss_bytes_kept(hak_kept_fd* k) {
  /* the thread that keeps it reads it: its own view (open_mem_file) */
  if (!hak_prim_kept_valid(k) && !hak_prim_kept_open(k, "/proc/thread-self/statm", 0) &&
      !hak_prim_kept_open(k, "/proc/self/statm", 0)) return 0;
  int e = errno;
  char buf[128];
  ssize_t n = pread(k->fd, buf, sizeof buf - 1, 0);
  errno = e;
  if (n <= 0) return 0;
  buf[n] = 0;
  return statm_rss(buf);
}

uint64_t hak_prim_compact_stalls_kept(hak_kept_fd* k) {
  if (!hak_prim_kept_valid(k) && !hak_prim_kept_open(k, "/proc/vmstat", 0)) return 0;
  int e = errno;
  char buf[8192];                 /* /proc/vmstat is 4-7 KiB; compact_stall is in its middle */
  ssize_t n = pread(k->fd, buf, sizeof buf - 1, 0);
  errno = e;
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* s = strstr(buf, "\ncompact_stall ");
  if (!s) return 0;
  uint64_t v = 0;
  for (s += 15; *s >= '0' && *s <= '9'; s++) v = v * 10 + (uint64_t)(*s - '0');
  return v;
}

size_t hak_prim_peak_rss_bytes(void) {
  int e = errno;
  size_t peak = 0;
  int fd = open_mem_file("/proc/thread-self/status", "/proc/self/status");
  if (fd >= 0) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      const char* s = strstr(buf, "\nVmHWM:");
      if (s) {
        s += 8;
        while (*s == ' ' || *s == '\t') s++;
        size_t kib = 0;
        while (*s >= '0' && *s <= '9') kib = kib * 10 + (size_t)(*s++ - '0');
        peak = kib << 10;
      }
    }
  }
  errno = e;
  return peak;
}
