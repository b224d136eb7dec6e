/* hakmem_stats.h — public statistics of the hakmem allocator.
 *
 * hak_stats_get() fills a versioned struct: set `size` to sizeof(hak_stats) before the
 * call; the library fills at most that many bytes and writes back the size and version
 * it filled, so a program built against an older header keeps working with a newer
 * library. Counters are cumulative since start-up; "in use" and "held" are current.
 * Per-thread counters are plain per-thread stores summed at read time, so a reading
 * taken while other threads run is a consistent-enough snapshot, not an atomic one.
 */
#ifndef HAKMEM_STATS_H
#define HAKMEM_STATS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_STATS_VERSION 5
#define HAKMEM_STATS_CLASSES 112   /* size classes of the tiny, mid and pool tiers */
#define HAKMEM_STATS_DEBUG_MAX 48  /* room for the debug counters (HAK_DEBUG_COUNTERS builds) */

/* Process-wide counters: X(name, help). */
#define HAKMEM_STATS_FIELDS(X)                                                            \
  X(allocs,            "blocks allocated, all tiers")                                      \
  X(frees,             "blocks freed, all tiers")                                          \
  X(refills,           "TLS list refills from slabs (slow path)")                          \
  X(flushes,           "TLS list flushes back to slabs (slow path)")                       \
  X(remote_frees,      "frees of blocks owned by another thread")                          \
  X(remote_drained,    "remote frees taken back by the owning thread")                     \
  X(remote_backlog,    "remote frees not yet taken back")                                  \
  X(bytes_in_use,      "bytes in live blocks (block sizes, large blocks by usable size)")  \
  X(bytes_held,        "bytes mapped by hakmem (segments, large blocks, caches)")          \
  X(bytes_cached,      "bytes of empty segments and freed large mappings kept for reuse")  \
  X(bytes_decommitted, "bytes given back to the OS with madvise, cumulative")              \
  X(rss_bytes,         "resident set size of the process (/proc/self/statm)")              \
  X(segments_mapped,   "segments mapped from the OS")                                      \
  X(segments_unmapped, "segments returned to the OS")                                      \
  X(segments_adopted,  "abandoned segments taken over by another thread")                  \
  X(slabs_assigned,    "slabs given a size class")                                         \
  X(large_allocs,      "blocks served by the large tier")                                  \
  X(large_frees,       "large blocks freed")                                               \
  X(lock_waits,        "times an allocator lock was found taken")                          \
  X(threads_started,   "thread heaps created")                                             \
  X(threads_ended,     "thread heaps torn down at thread exit")                            \
  X(bytes_unused_resident, "resident bytes holding no block: unused slabs, cached segments and mappings") \
  X(bytes_released_inside_blocks, "pages inside free blocks given back to the OS, cumulative") \
  X(bytes_refaulted,   "given-back bytes handed out again (faulted back in), cumulative")  \
  X(os_failures,       "munmap/madvise calls the kernel refused")                          \
  X(decommit_calls,    "madvise calls that gave pages back")                               \
  X(segment_cache_hits, "segments reused from the empty-segment cache")                    \
  X(large_cache_hits,  "large blocks served from the cache of freed mappings")             \
  X(large_grown_in_place, "large reallocs that grew the mapping in place")                 \
  X(large_moved,       "large reallocs that moved the pages (mremap) instead of copying")

/* Version 4: what each realloc did, one counter per outcome (cumulative): X(name, help).
 * A realloc(NULL, n) is a malloc and a realloc(p, 0) a free: neither is counted here.
 * hak_expand counts in the two in-place counters when it succeeds. */
#define HAKMEM_STATS_REALLOC_FIELDS(X)                                                    \
  X(realloc_in_place,   "reallocs (and hak_expands) that fit the block's usable size: kept as it was") \
  X(realloc_shrunk,     "reallocs that shrank a large block in place (its tail given back)")          \
  X(realloc_grown,      "reallocs (and hak_expands) that grew a large block in place (mremap)")      \
  X(realloc_mremap,     "reallocs that moved a large block's pages (mremap), no copy")               \
  X(realloc_memcpy,     "reallocs that moved the block with memcpy")                                 \
  X(realloc_nt_copy,    "reallocs that moved the block with non-temporal stores (realloc_nt_threshold)") \
  X(realloc_failed,     "reallocs that returned NULL (the block unchanged)")                         \
  X(expand_failed,      "hak_expand calls that could not grow the block in place")

/* Version 5: what was taken from the thread caches of idle threads (cumulative). */
#define HAKMEM_STATS_IDLE_FIELDS(X)                                                       \
  X(idle_cache_trimmed_bytes, "bytes of free blocks cut off idle threads' caches, back to their slabs") \
  X(idle_cache_trims,   "thread-cache lists cut short while their thread was idle")

typedef struct hak_stats_class {
  uint64_t block_size;     /* bytes per block of this class */
  uint64_t allocs;         /* blocks allocated */
  uint64_t frees;          /* blocks freed */
  uint64_t in_use;         /* allocs - frees */
  uint64_t refills;        /* TLS refills */
  uint64_t flushes;        /* TLS flushes */
  uint64_t remote_frees;   /* cross-thread frees */
  uint64_t remote_backlog; /* cross-thread frees not yet drained */
} hak_stats_class;

typedef struct hak_stats {
  uint32_t size;           /* in: sizeof(hak_stats) of the caller; out: bytes filled */
  uint32_t version;        /* out: HAKMEM_STATS_VERSION of the library */
#define HAKMEM_STATS_DECLARE(name, help) uint64_t name;
  HAKMEM_STATS_FIELDS(HAKMEM_STATS_DECLARE)
#undef HAKMEM_STATS_DECLARE
  uint32_t superslab;      /* 1 when tiny sizes use SuperSlabs (HAKMEM_TINY_USE_SUPERSLAB) */
  uint32_t ace;            /* 1 while the ACE controller thread runs */
  uint32_t pmu_mode;       /* 0 none, 1 software events only, 2 hardware events */
  uint32_t debug_counters; /* number of debug counters filled below (0 unless HAK_DEBUG_COUNTERS) */
  uint32_t nclasses;       /* HAKMEM_STATS_CLASSES */
  uint32_t reserved;
  hak_stats_class cls[HAKMEM_STATS_CLASSES];
  uint64_t debug[HAKMEM_STATS_DEBUG_MAX];
  /* version 3: which process, and its peaks (after the version-2 fields, so a program
   * built against version 2 gets what it knows) */
  uint64_t pid;               /* getpid() when the numbers were taken */
  uint64_t run_time_ns;       /* since hakmem started in this process (library load) */
  uint64_t peak_rss_bytes;    /* VmHWM of /proc/self/status: the largest RSS so far */
  uint64_t peak_bytes_in_use; /* the largest bytes_in_use any collection saw (see README) */
  char     hakmem_version[16];/* hak_version() of the library, "0.2.0" */
  char     program[64];       /* program_invocation_short_name, cut to 63 bytes */
  /* version 4: realloc outcomes (HAKMEM_STATS_REALLOC_FIELDS) */
#define HAKMEM_STATS_DECLARE(name, help) uint64_t name;
  HAKMEM_STATS_REALLOC_FIELDS(HAKMEM_STATS_DECLARE)
  /* version 5: idle threads' caches (HAKMEM_STATS_IDLE_FIELDS) */
  HAKMEM_STATS_IDLE_FIELDS(HAKMEM_STATS_DECLARE)
#undef HAKMEM_STATS_DECLARE
} hak_stats;

/* Fill *out (out->size must be set). Returns 0, or -1 with errno EINVAL when out is NULL
 * or out->size is smaller than the fixed header (size and version). */
int  hak_stats_get(hak_stats* out);
/* Name of debug counter i ("refill_slab_freelist", ...), or NULL when out of range. */
const char* hak_stats_debug_name(unsigned i);
/* Write a human-readable summary to stderr. */
void hak_stats_print(void);
/* Write the statistics as one JSON object into buf (at most size bytes, NUL-terminated
 * when size > 0). Returns the length the whole object needs, like snprintf. */
size_t hak_stats_json(char* buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_STATS_H */
