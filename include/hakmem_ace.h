/* hakmem_ace.h — the knob snapshot: every value the allocator's slow paths steer by.
 *
 * A snapshot is built from the HAKMEM_* options at start-up; the ACE controller (and
 * only it) publishes newer ones. A snapshot is immutable once published, and
 * `generation` grows with each one, so a thread notices a new snapshot with one load
 * and takes its values on its next refill or flush. The struct is versioned like
 * hak_stats: set `size` before hak_knobs_get().
 */
#ifndef HAKMEM_ACE_H
#define HAKMEM_ACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_KNOBS_VERSION 5
#define HAKMEM_KNOB_CLASSES 112

typedef struct hak_knobs {
  uint32_t size;             /* in: sizeof(hak_knobs) of the caller; out: bytes filled */
  uint32_t version;          /* out: HAKMEM_KNOBS_VERSION */
  uint64_t generation;       /* 1 for the start-up snapshot, +1 per published snapshot */

  /* Per size class (index = class, see hak_stats_class.block_size). */
  uint32_t tls_cap[HAKMEM_KNOB_CLASSES];       /* free blocks a thread caches at first (>= 1);
                                                  the cache of a class that keeps overflowing
                                                  grows from here (tls_cap_max) */
  uint32_t refill_batch[HAKMEM_KNOB_CLASSES];  /* most blocks moved from slabs per refill: the
                                                  "bundle width" (1..tls_cap; the first refill of
                                                  a class moves about one page, then doubles) */
  uint32_t remote_drain_interval[HAKMEM_KNOB_CLASSES]; /* refills of the class between drains of
                                                  the remote frees waiting on its full slabs */

  /* Per thread heap. */
  uint32_t sweep_interval;        /* refills + flushes between heap sweeps (drain every remote
                                     list, give back empty slabs, purge unused pages) */
  uint32_t diet_pct;              /* percent of tls_cap, tls_cap_max and tls_grow_budget_bytes
                                     in force, 1..100 (100: no diet) */
  uint32_t purge_delay_ms;        /* unused slabs and cached segments and mappings stay
                                     resident this long before their pages go back */
  uint32_t partial_release_pages; /* smallest run of whole free pages a release inside a
                                     partly used slab gives back */

  /* Process-wide caches. */
  uint64_t segment_cache_bytes;        /* address space of empty segments kept for reuse */
  uint64_t segment_cache_dirty_bytes;  /* of which resident before the purge delay */
  uint64_t large_cache_bytes;          /* address space of freed large mappings kept for reuse */
  uint32_t large_cache_entries;        /* freed large mappings kept for reuse */

  /* realloc. */
  uint32_t realloc_shrink_keep_pct;    /* a block shrunk to at least this percent of its
                                          usable size stays where it is */
  uint32_t realloc_grow_headroom_pct;  /* a block (<= 1 MiB) that grows by less than this
                                          percent and must move gets this much room */

  /* Version 3: the large cache's decay and reuse (version 2 had `reserved` here). */
  uint32_t large_cache_unmap_delay_ms; /* a cached large mapping, decommitted after the purge
                                          delay, is unmapped once unused this much longer */
  uint64_t large_cache_dirty_bytes;    /* most bytes of cached large mappings kept resident;
                                          the budget in force is at most the bytes of large
                                          blocks freed over the last one to two purge delays */
  uint32_t large_reuse_slack_pct;      /* a cached mapping serves a smaller request whole while
                                          its surplus is at most this percent of the request
                                          plus 2 MiB; beyond that its tail is unmapped */
  uint32_t reserved;

  /* Version 4: thread caches that grow. A class whose cache gives blocks back and soon
   * needs them again (a flush, then a refill within twice its capacity of operations)
   * doubles its capacity, up to tls_cap_max, while the thread's capacity beyond tls_cap
   * over all classes stays within tls_grow_budget_bytes; a grown class that serves fewer
   * operations than its capacity over a purge delay halves back toward tls_cap. */
  uint64_t tls_grow_budget_bytes;              /* per thread, the bytes of capacity all
                                                  classes together may grow by (0: none) */
  uint32_t tls_cap_max[HAKMEM_KNOB_CLASSES];   /* most free blocks a class's cache grows to,
                                                  1..65535 (below tls_cap: no growth) */
  /* Version 4 too: how realloc copies a block it must move. */
  uint64_t realloc_nt_threshold;       /* copies of at least this many bytes use non-temporal
                                          stores (they bypass the cache); smaller ones memcpy */
  uint32_t realloc_inplace;            /* 1: realloc keeps, shrinks and grows blocks in place
                                          where it can; 0: every realloc moves (a baseline) */
  /* Version 5 (version 4 had `reserved4`, 0, here): transparent huge pages. */
  uint32_t huge_pages;                 /* 1: large blocks mapped from now on (and cached ones
                                          whose pages were given back, when reused) are
                                          madvised MADV_HUGEPAGE: one fault per 2 MiB instead
                                          of 512, where the kernel has THP in "madvise" mode;
                                          2: segments mapped from now on too (below 2, the
                                          release walk takes the advice off them again);
                                          0: none. HAKMEM_HUGE_PAGES=auto lets ACE decide */
} hak_knobs;

/* Copy the current snapshot into *out (out->size must be set). Returns 0, or -1 with
 * errno EINVAL when out is NULL or out->size is smaller than size and version. */
int hak_knobs_get(hak_knobs* out);

/* ---- ACE: the controller's configuration and state ---------------------------------
 * The controller is one background thread ("hakmem-ace") that starts lazily, once the
 * process has lived start_delay_ms, or is 100 ms old and holds start_bytes; see
 * docs/ACE.md. Its settings
 * come from the HAKMEM_ACE_* variables and can be changed with hakmem_ace_config(). */
#define HAKMEM_ACE_CONFIG_VERSION 1
#define HAKMEM_ACE_STATE_VERSION 2

/* Knob groups that ACE leaves as they are (hakmem_ace_config_t.pinned, HAKMEM_ACE_PIN). */
#define HAKMEM_ACE_PIN_TLS_CAP      0x01u  /* thread-cache sizes: tls_cap[], tls_cap_max[],
                                              tls_grow_budget_bytes (the diet) */
#define HAKMEM_ACE_PIN_REFILL_BATCH 0x02u  /* refill_batch[] (bundle width) */
#define HAKMEM_ACE_PIN_DRAIN        0x04u  /* remote_drain_interval[] */
#define HAKMEM_ACE_PIN_SCAVENGE     0x08u  /* no background return of memory */
#define HAKMEM_ACE_PIN_ALL          0x0fu

/* How the controller steers (hakmem_ace_config_t.policy, HAKMEM_ACE_POLICY); docs/ACE.md
 * compares them. */
#define HAKMEM_ACE_POLICY_DEFAULT 0u  /* the one the evaluation found best (docs/ACE.md) */
#define HAKMEM_ACE_POLICY_STATIC  1u  /* defaults never changed; memory still returned */
#define HAKMEM_ACE_POLICY_RULES   2u  /* plain rules on backlog, misses, RSS, lock waits */
#define HAKMEM_ACE_POLICY_DECAY   3u  /* unused memory returned on a smooth time curve */
#define HAKMEM_ACE_POLICY_RESIZE  4u  /* caches of missing classes grow, idle ones shrink */
#define HAKMEM_ACE_POLICY_UCB1    5u  /* learned: per-phase UCB1 bandits, keep-or-return */

typedef struct hakmem_ace_config {
  uint32_t size;               /* in: sizeof(hakmem_ace_config_t) of the caller */
  uint32_t version;            /* HAKMEM_ACE_CONFIG_VERSION */
  uint32_t enabled;            /* 0: no thread (a running one stops, defaults come back) */
  uint32_t fast_interval_ms;   /* fast loop period, 10..60000 (default 500) */
  uint32_t slow_interval_s;    /* slow loop period, 1..3600 (default 30) */
  uint32_t scavenge_budget_us; /* time the scavenger may spend per fast tick, 100..1000000 */
  uint32_t start_delay_ms;     /* the thread starts once the process lived this long ... */
  uint32_t max_cpu_percent;    /* guard: ACE's own CPU time per wall time, 1..100 */
  uint64_t start_bytes;        /* ... or, 100 ms old, holds this many bytes (0: the delay only) */
  uint64_t max_p99_lat_ns;     /* guard: sampled slow-path p99 latency (0: no guard) */
  uint64_t max_rss_bytes;      /* guard: resident set size (0: no guard) */
  uint32_t log_level;          /* 0 off, 1 decisions, 2 every tick (stderr) */
  uint32_t pmu;                /* 0 hakmem's counters only, 1 software events, 2 hardware
                                  events where the kernel allows them, else software */
  uint32_t pinned;             /* HAKMEM_ACE_PIN_* */
  uint32_t policy;             /* HAKMEM_ACE_POLICY_* (0: the default) */
} hakmem_ace_config_t;

enum {
  HAKMEM_ACE_MODE_OFF = 0,       /* disabled */
  HAKMEM_ACE_MODE_WAITING = 1,   /* enabled, the thread has not started (yet) */
  HAKMEM_ACE_MODE_STEERING = 2,  /* the thread runs and steers */
  HAKMEM_ACE_MODE_STOPPED = 3,   /* a guard stopped the steering (defaults in force) */
  HAKMEM_ACE_MODE_FAILED = 4     /* the thread could not be started: defaults in force */
};

typedef struct hakmem_ace_state {
  uint32_t size;               /* in: sizeof(hakmem_ace_state_t) of the caller */
  uint32_t version;            /* HAKMEM_ACE_STATE_VERSION */
  uint32_t mode;               /* HAKMEM_ACE_MODE_* */
  uint32_t pmu_mode;           /* 0 none (hakmem's counters), 1 software events, 2 hardware */
  uint64_t fast_ticks, slow_ticks;
  uint64_t publishes;          /* knob snapshots published */
  uint64_t scavenged_bytes;    /* returned to the OS by the scavenger */
  uint64_t cpu_ns;             /* CPU time of the ACE thread */
  uint64_t last_p99_ns;        /* last fast tick: sampled slow-path p99 latency */
  uint64_t last_rss_bytes;     /* last RSS reading */
  char     last_reason[160];   /* the last decision or guard, or "" */
  /* version 2 */
  uint32_t policy;             /* HAKMEM_ACE_POLICY_* in force (never DEFAULT) */
  uint32_t keep_level;         /* ucb1: how much freed memory it keeps (0: the defaults) */
  uint64_t phase_changes;      /* ucb1: changes of phase it detected */
} hakmem_ace_state_t;

/* Apply a configuration: every field is validated first; out of range (or a NULL cfg,
 * a wrong size or version) gives -1 with errno EINVAL and changes nothing. */
int hakmem_ace_config(const hakmem_ace_config_t* cfg);
/* The configuration in force (out->size must be set). 0, or -1 with EINVAL. */
int hakmem_ace_config_get(hakmem_ace_config_t* out);
/* The controller's state (out->size must be set). 0, or -1 with EINVAL. */
int hakmem_ace_state_get(hakmem_ace_state_t* out);

#ifdef __cplusplus
}
#endif
#endif
