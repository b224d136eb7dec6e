/* prim.h — the OS contract. Every syscall hakmem makes goes through here, and only
 * prim_linux.c includes Linux headers for them. None of these functions allocates.
 * errno: every function here leaves errno as it found it. */
#ifndef HAK_PRIM_H
#define HAK_PRIM_H

#include "hak_base.h"

/* Map `size` bytes (a multiple of the page size) of zeroed, read-write memory whose
 * address is a multiple of `align` (a power of two ≥ page size). NULL on failure. */
HAK_HIDDEN void* hak_prim_map_aligned(size_t size, size_t align);
/* Unmap [p, p+size). */
HAK_HIDDEN void  hak_prim_unmap(void* p, size_t size);
/* Give the physical pages of [p, p+size) back; the range stays mapped and reads as zero. */
HAK_HIDDEN void  hak_prim_decommit(void* p, size_t size);
/* Try to grow the mapping [p, p+old) to [p, p+new) without moving it; true on success. */
HAK_HIDDEN bool  hak_prim_grow_in_place(void* p, size_t old_size, size_t new_size);
/* Move the pages of [p, p+old_size) to `to` (a mapping of new_size ≥ old_size bytes made
 * by hak_prim_map_aligned, which this replaces) without copying; true on success. */
HAK_HIDDEN bool  hak_prim_move(void* p, size_t old_size, void* to, size_t new_size);
/* Map anonymous memory anywhere (metadata); NULL on failure. */
HAK_HIDDEN void* hak_prim_map(size_t size);
/* Monotonic clock in nanoseconds. */
HAK_HIDDEN uint64_t hak_prim_now_ns(void);
/* 64 random bits (getrandom, else AT_RANDOM/clock mixing); never fails. */
HAK_HIDDEN uint64_t hak_prim_random64(void);
/* Write a whole buffer to stderr (fd 2) with write(2); no stdio, no malloc. */
HAK_HIDDEN void  hak_prim_write_err(const char* s, size_t n);
/* Write a whole buffer to file descriptor fd. */
HAK_HIDDEN void  hak_prim_write_fd(int fd, const char* s, size_t n);
/* A close-on-exec duplicate of fd 2 (≥ 100 where possible), or -1. */
HAK_HIDDEN int   hak_prim_dup_err(void);
/* The value of environment variable `name`, or NULL; safe before libc constructors ran. */
HAK_HIDDEN const char* hak_prim_getenv(const char* name);
/* Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown. */
HAK_HIDDEN size_t hak_prim_rss_bytes(void);

#define HAK_PAGE_SIZE ((size_t)4096)

#endif
