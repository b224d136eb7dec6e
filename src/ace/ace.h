/* ace.h — ACE, the Adaptive Control Engine: one background thread that reads the
 * allocator's counters (alloc/collect.h) and PMU events, steers the knob snapshot
 * (runtime's hak_knobs_publish) with plain rules, returns unused memory to the OS on a
 * time budget, and stops itself when a guard trips. See docs/ACE.md.
 *
 *   metrics.c     two collections + PMU readings -> one ace_metrics (pure)
 *   rules.c       ace_metrics + knobs -> new knobs and the reasons (pure)
 *   guards.c      ace_metrics + config -> stop or carry on (pure)
 *   pmu.c         libpfm4 + perf_event_open: LLC loads/misses, else software events
 *   scavenge.c    the budgeted release walk
 *   trace.c       one JSON line per tick (HAKMEM_ACE_TRACE)
 *   controller.c  one fast tick / slow tick: sample, guard, decide, publish, scavenge
 *   config.c      HAKMEM_ACE_* and hakmem_ace_config(), the state getter
 *   thread.c      the thread: lazy start, loop, stop, fork
 * The policy functions take everything as arguments (no clock, no globals), so tests
 * drive them with scripted metrics; the controller takes `now` from its caller. */
#ifndef HAK_ACE_H
#define HAK_ACE_H

#include "alloc/collect.h"
#include "hakmem_ace.h"

/* ---- metrics.c ---------------------------------------------------------------------- */
typedef struct ace_pmu_reading {
  int      mode;                 /* 0 none, 1 software, 2 hardware */
  uint64_t llc_loads, llc_misses;/* hardware mode */
  uint64_t page_faults;          /* software mode (and hardware mode when it could) */
  uint64_t cpu_ns;               /* process CPU time */
} ace_pmu_reading;

typedef struct ace_metrics {
  uint64_t dt_ns;                       /* window length */
  double   ops_per_s;                   /* allocs + frees per second */
  double   ops_per_cpu_s;               /* per process CPU second (0 when no CPU was used) */
  double   cpu_fraction;                /* process CPU time per wall time (cores) */
  uint64_t lat_p50_ns, lat_p90_ns, lat_p99_ns;  /* sampled refills in the window; 0: none */
  uint64_t lat_samples;
  uint64_t remote_backlog;              /* blocks freed remotely, not yet taken back (now) */
  uint64_t backlog[HAK_NCLS];
  uint64_t allocs[HAK_NCLS];            /* in the window */
  double   hit_rate[HAK_NCLS];          /* 1 - refills/allocs in the window (1 without allocs) */
  double   lock_waits_per_s;
  double   llc_miss_rate;               /* misses / loads; < 0 when not measured */
  double   page_faults_per_s;           /* < 0 when not measured */
  double   refault_bytes_per_s;         /* released memory handed out again */
  uint64_t bytes_in_use, bytes_held, unused_resident;
  double   fragmentation;               /* bytes in use / bytes held (1 when nothing held) */
  uint64_t rss_bytes;                   /* 0 unless read this tick */
  double   ace_cpu_fraction;            /* the ACE thread's CPU time per wall time (controller) */
  uint64_t ace_cpu_ns;                  /* the ACE thread's CPU time so far (controller) */
  uint64_t scavenge_cpu_ns;             /* CPU time the scavenger took this tick (controller) */
} ace_metrics;

/* Compute the window's metrics from two collections and two PMU readings. Pure. */
HAK_HIDDEN void ace_metrics_compute(const hak_collect* prev, const hak_collect* cur,
                                    const ace_pmu_reading* pprev, const ace_pmu_reading* pcur,
                                    uint64_t dt_ns, ace_metrics* out);
/* p-th percentile (0..100) of a log2(ns) histogram (upper bucket bound), 0 when empty. */
HAK_HIDDEN uint64_t ace_hist_percentile(const uint64_t* hist, unsigned buckets, double p);

/* ---- rules.c ------------------------------------------------------------------------ */
#define ACE_BACKLOG_HIGH       256     /* blocks waiting on one class's remote lists */
#define ACE_LLC_MISS_HIGH      0.15    /* LLC misses per LLC load */
#define ACE_LOCK_WAITS_HIGH    1000.0  /* allocator lock waits per second */
#define ACE_DIET_FACTOR        0.75    /* cold classes' caps shrink by this per tick ... */
#define ACE_DIET_FACTOR_HOT    0.875   /* ... hot classes' (top ACE_HOT_CLASSES) by this */
#define ACE_HOT_CLASSES        8
#define ACE_RESTORE_STEP       0.10    /* without pressure, back toward the defaults by 10 % */
#define ACE_MIN_DRAIN_INTERVAL 4
#define ACE_MAX_REFILL_BATCH   256

typedef struct ace_rule_input {
  const ace_metrics* m;
  const hak_knobs*   defaults;          /* what the options say: where "restore" goes */
  uint64_t           rss_target;        /* diet above this RSS (0: no RSS pressure) */
  uint32_t           pinned;            /* HAKMEM_ACE_PIN_* */
} ace_rule_input;

/* Apply the rules to *k. Writes the reasons for every change ("; "-separated) into
 * reason[0..n) and returns the number of knob groups changed (0: k unchanged). */
HAK_HIDDEN int ace_rules_apply(const ace_rule_input* in, hak_knobs* k, char* reason, size_t n);

/* ---- guards.c ----------------------------------------------------------------------- */
typedef enum ace_guard {
  ACE_GUARD_OK = 0,
  ACE_GUARD_LATENCY,                    /* stop steering */
  ACE_GUARD_RSS,                        /* stop steering */
  ACE_GUARD_CPU,                        /* stop steering and scavenging */
} ace_guard;
#define ACE_GUARD_MIN_SAMPLES 16        /* a p99 from fewer samples is not trusted */

/* Which guard (if any) the metrics cross; the reason goes to reason[0..n). Pure. */
HAK_HIDDEN ace_guard ace_guards_check(const ace_metrics* m, const hakmem_ace_config_t* cfg,
                                      double ace_cpu_fraction, char* reason, size_t n);

/* ---- pmu.c -------------------------------------------------------------------------- */
/* Open the events for `want` (0 none, 1 software, 2 hardware if possible); returns the
 * mode in force. Only the ACE thread calls these (libpfm allocates). */
HAK_HIDDEN int  ace_pmu_open(int want);
/* Read the process's totals (all threads; new threads are picked up on each read). */
HAK_HIDDEN void ace_pmu_read(ace_pmu_reading* out);
HAK_HIDDEN void ace_pmu_close(void);

/* ---- scavenge.c --------------------------------------------------------------------- */
/* Return unused memory for at most budget_ns, resuming where the last call stopped.
 * Returns bytes given back. */
HAK_HIDDEN size_t ace_scavenge(uint64_t now, uint64_t budget_ns, uint64_t delay_ns);
HAK_HIDDEN void   ace_scavenge_reset(void);

/* ---- trace.c ------------------------------------------------------------------------ */
HAK_HIDDEN void ace_trace_open(const char* path);
HAK_HIDDEN bool ace_trace_active(void);
HAK_HIDDEN void ace_trace_tick(double t_s, const char* tick, const ace_metrics* m, const hak_knobs* k,
                               const char* mode, const char* pmu, const char* reason, uint64_t scavenged);
HAK_HIDDEN void ace_trace_close(void);

/* ---- config.c ----------------------------------------------------------------------- */
HAK_HIDDEN void ace_config_load(void);                /* from the HAKMEM_ACE_* options */
HAK_HIDDEN void ace_config_copy(hakmem_ace_config_t* out);
HAK_HIDDEN int  ace_config_validate(const hakmem_ace_config_t* cfg);
/* State shared by the thread and the getters (atomics; the reason under a lock). */
typedef struct ace_shared {
  _Atomic uint32_t mode, pmu_mode;
  _Atomic uint64_t fast_ticks, slow_ticks, publishes, scavenged_bytes, cpu_ns;
  _Atomic uint64_t last_p99_ns, last_rss_bytes;
} ace_shared;
HAK_HIDDEN extern ace_shared ace_state;
HAK_HIDDEN void ace_set_reason(const char* reason);
HAK_HIDDEN void ace_log(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- controller.c ------------------------------------------------------------------- */
/* The controller proper. ace_ctl_start: once, on the ACE thread (opens PMU, trace). */
HAK_HIDDEN void ace_ctl_start(uint64_t now);
HAK_HIDDEN void ace_ctl_fast_tick(uint64_t now);
HAK_HIDDEN void ace_ctl_slow_tick(uint64_t now);
/* Back to the defaults (config change, stop); `why` goes to the state and the trace. */
HAK_HIDDEN void ace_ctl_restore_defaults(const char* why);
HAK_HIDDEN void ace_ctl_stop(void);

/* ---- thread.c ----------------------------------------------------------------------- */
/* Load the configuration, register the lazy-start hook and the fork handlers (from the
 * shim's load-time constructor). */
HAK_HIDDEN void hak_ace_init(void);
/* Start (enabled) or stop the thread to match the configuration in force. */
HAK_HIDDEN void ace_thread_apply_config(void);
/* Tests: make the next thread start fail (simulates pthread_create failing). */
HAK_HIDDEN void ace_thread_fail_next_start(void);

#endif
