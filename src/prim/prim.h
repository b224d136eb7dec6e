/* prim.h — the OS contract: memory mappings, the clock, randomness and RSS. Every
 * memory system call hakmem makes goes through here, and only prim_linux.c includes
 * the Linux headers for them. None of these functions allocates, and every one leaves
 * errno as it found it.
 *
 * The memory and clock calls go through a table of hooks (hak_prim_ops) so that tests
 * can fail the Nth mmap/munmap/madvise/mremap or run on a fake clock. The table is
 * read with a relaxed load on each call; these calls are all off the fast paths. */
#ifndef HAK_PRIM_H
#define HAK_PRIM_H

#include "base/base.h"

#define HAK_PAGE_SIZE ((size_t)4096)

typedef struct hak_prim_ops {
  /* `size` zeroed read-write bytes at a multiple of `align` (a power of two >= a page);
   * NULL on failure. */
  void*    (*map_aligned)(size_t size, size_t align);
  /* Unmap [p, p+size); false when the kernel refused (ENOMEM at vm.max_map_count). */
  bool     (*unmap)(void* p, size_t size);
  /* Give the pages of [p, p+size) back; the range stays mapped and reads as zero.
   * False when the kernel refused. */
  bool     (*decommit)(void* p, size_t size);
  /* Grow the mapping [p, p+old) to [p, p+new) without moving it; true on success. */
  bool     (*grow_in_place)(void* p, size_t old_size, size_t new_size);
  /* Move the pages of [p, p+old_size) to `to` (a mapping of new_size >= old_size bytes
   * from map_aligned, which this replaces) without copying; true on success. */
  bool     (*move)(void* p, size_t old_size, void* to, size_t new_size);
  /* Monotonic clock in nanoseconds. */
  uint64_t (*now_ns)(void);
  /* Ask for transparent huge pages in [p, p+size) (on), or no more of them (off):
   * madvise MADV_HUGEPAGE / MADV_NOHUGEPAGE. False when the kernel refused (no THP). */
  bool     (*huge)(void* p, size_t size, bool on);
  /* Make [p, p+size) (advised huge, 2 MiB aligned) huge pages now, the pages present in
   * it copied: madvise MADV_COLLAPSE (Linux 6.1). False when the kernel refused. */
  bool     (*collapse)(void* p, size_t size);
} hak_prim_ops;

/* The operations in force (the Linux ones unless a test swapped them). */
HAK_HIDDEN extern _Atomic(const hak_prim_ops*) hak_prim_current;
/* The Linux implementation, for hooks that wrap it. */
HAK_HIDDEN extern const hak_prim_ops hak_prim_linux;
/* Swap the operations (tests only); NULL restores the Linux ones. Returns the old table. */
HAK_HIDDEN const hak_prim_ops* hak_prim_set_ops(const hak_prim_ops* ops);

#define HAK_PRIM_OPS() hak_load_relaxed(&hak_prim_current)
HAK_INLINE void* hak_prim_map_aligned(size_t size, size_t align) { return HAK_PRIM_OPS()->map_aligned(size, align); }
HAK_INLINE bool  hak_prim_unmap(void* p, size_t size) { return HAK_PRIM_OPS()->unmap(p, size); }
HAK_INLINE bool  hak_prim_decommit(void* p, size_t size) { return HAK_PRIM_OPS()->decommit(p, size); }
HAK_INLINE bool  hak_prim_grow_in_place(void* p, size_t old_size, size_t new_size) {
  return HAK_PRIM_OPS()->grow_in_place(p, old_size, new_size);
}
HAK_INLINE bool  hak_prim_move(void* p, size_t old_size, void* to, size_t new_size) {
  return HAK_PRIM_OPS()->move(p, old_size, to, new_size);
}
HAK_INLINE uint64_t hak_prim_now_ns(void) { return HAK_PRIM_OPS()->now_ns(); }
HAK_INLINE bool  hak_prim_huge(void* p, size_t size, bool on) {
  const hak_prim_ops* o = HAK_PRIM_OPS();
  return o->huge ? o->huge(p, size, on) : false;   /* a test's table without the hook: none */
}
HAK_INLINE bool  hak_prim_collapse(void* p, size_t size) {
  const hak_prim_ops* o = HAK_PRIM_OPS();
  return o->collapse ? o->collapse(p, size) : false;
}

/* Map anonymous memory anywhere, for metadata (heap structs, registry leaves); NULL on
 * failure. Not hooked: metadata must not fail in the middle of an operation. */
HAK_HIDDEN void* hak_prim_map(size_t size);
/* Make [p, p+size) inaccessible (PROT_NONE: a guard page); false when refused. Not
 * hooked: a refused guard leaves the page unused but accessible. */
HAK_HIDDEN bool hak_prim_guard(void* p, size_t size);
/* Bytes of [p, p+size) (page aligned) resident now (mincore); 0 when it cannot tell. */
HAK_HIDDEN size_t hak_prim_resident_bytes(void* p, size_t size);
/* 64 random bits (getrandom, else AT_RANDOM/clock mixing); never fails, never zero. */
HAK_HIDDEN uint64_t hak_prim_random64(void);
/* Ids of the calling process and thread (getpid, gettid). */
HAK_HIDDEN int hak_prim_process_id(void);
HAK_HIDDEN int hak_prim_thread_id(void);
/* True when thread `tid` of process `pid` has exited (tgkill with signal 0 says ESRCH).
 * A thread id the kernel gave to a new thread since reads as alive. */
HAK_HIDDEN bool hak_prim_thread_gone(int pid, int tid);
/* A full memory barrier on every running thread of this process
 * (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), registered once per process, again in a
 * fork child): when it returns true, every store another thread made before it is
 * visible to the caller. False when the kernel has no such command (before 4.14, a
 * seccomp filter, valgrind): the caller must not rely on it then. */
HAK_HIDDEN bool hak_prim_process_barrier(void);
/* Whether hak_prim_process_barrier can work in this process (registers it; no barrier). */
HAK_HIDDEN bool hak_prim_process_barrier_ready(void);
/* Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown. */
HAK_HIDDEN size_t hak_prim_rss_bytes(void);

/* Descriptors of a background thread (the ACE thread's /proc files and perf events).
 * A program's descriptors are its own business, and some programs close a number twice
 * (bash closes a pipe's end twice after each fork): a single-threaded program gets EBADF
 * the second time, but a thread of ours that opened a file in between loses it, and
 * its own close() later takes the program's next descriptor of that number (bash's
 * next pipe, and the pipeline broke). So such a descriptor is opened once and kept,
 * moved above the low numbers programs use (fcntl F_DUPFD_CLOEXEC), and closed only
 * while fstat still finds the same file there (`dev`, `ino`) in the process that
 * opened it. */
typedef struct hak_kept_fd {
  int      fd;          /* -1: none */
  int      pid;         /* the process that opened it (a fork child must not use it) */
  uint64_t dev, ino;
} hak_kept_fd;
#define HAK_KEPT_FD_NONE {-1, 0, 0, 0}
/* Move fd (just returned by the kernel) above the low numbers; returns the new one (the
 * old closed), or fd itself when no higher number is free. */
HAK_HIDDEN int  hak_prim_fd_high(int fd);
/* Open `path` read-only into k (closing what k held); false when it cannot be opened. */
HAK_HIDDEN bool hak_prim_kept_open(hak_kept_fd* k, const char* path, int flags);
/* Keep `fd` (already moved high) in k, recording what it is. */
HAK_HIDDEN void hak_prim_kept_adopt(hak_kept_fd* k, int fd);
/* Whether k's descriptor is still the file it was opened as, in this process. */
HAK_HIDDEN bool hak_prim_kept_valid(const hak_kept_fd* k);
/* Close k's descriptor if it is still k's file; forget it either way. */
HAK_HIDDEN void hak_prim_kept_close(hak_kept_fd* k);
/* RSS through a kept descriptor of /proc/self/statm, opened (again) as needed: for a
 * thread that reads it every tick. 0 if unknown. */
HAK_HIDDEN size_t hak_prim_rss_bytes_kept(hak_kept_fd* k);
/* The system's count of direct compactions that page faults waited for (/proc/vmstat
 * compact_stall; the machine's, not the process's) through the kept descriptor k
 * (opened on first use; 0 when it cannot be read). */
HAK_HIDDEN uint64_t hak_prim_compact_stalls_kept(hak_kept_fd* k);
/* Peak resident set size in bytes (VmHWM of /proc/self/status), 0 if unknown. */
HAK_HIDDEN size_t hak_prim_peak_rss_bytes(void);

#endif
