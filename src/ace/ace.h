/* ace.h — ACE, the Adaptive Control Engine: one background thread that reads the
 * allocator's counters (alloc/collect.h) and PMU events, steers the knob snapshot
 * (runtime's hak_knobs_publish) with plain rules, returns unused memory to the OS on a
 * time budget, and stops itself when a guard trips. See docs/ACE.md.
 *
 *   metrics.c     two collections + PMU readings -> one ace_metrics (pure)
 *   rules.c       policy "rules": ace_metrics + knobs -> new knobs and the reasons (pure)
 *   bandit.c      discounted UCB1 over a few discrete arms (pure)
 *   reward.c      one number per window: throughput per CPU second minus penalties (pure)
 *   learner.c     policy "ucb1": per-phase bandits over knob groups, keep-or-return (pure)
 *   policy.c      the policies side by side: static, rules, decay, resize, ucb1 (pure)
 *   guards.c      ace_metrics + config -> stop or carry on (pure)
 *   copy.c        timed realloc copies -> realloc_nt_threshold (pure)
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

/* ---- copy.c: the realloc copy threshold ----------------------------------------------- */
#define ACE_COPY_MIN_SAMPLES 8     /* per method in a bucket before it counts as evidence */
#define ACE_COPY_MARGIN      0.05  /* streaming must be this much faster per byte to win */
/* The realloc_nt_threshold the samples (hak_copy_samples: copies of 2^(20+b) bytes and
 * more, by method and bucket) argue for, given the one in force. A bucket is evidence
 * when both methods have ACE_COPY_MIN_SAMPLES copies in it; it is won by streaming when
 * its ns per byte is ACE_COPY_MARGIN below memcpy's. The threshold goes to the start of
 * the lowest evidence bucket from which streaming wins every evidence bucket above,
 * and where no evidence says anything it stays: it is clamped between the end of the
 * highest bucket memcpy won below that point and the start of that bucket (past the
 * end of every bucket when memcpy won the highest). No evidence: `current`. Pure. */
HAK_HIDDEN uint64_t ace_copy_threshold(const hak_copy_samples* s, uint64_t current);
/* Add a window's samples, `cur` minus `prev` (cumulative collections), into `acc`. Pure. */
HAK_HIDDEN void ace_copy_accumulate(hak_copy_samples* acc, const hak_copy_samples* prev,
                                    const hak_copy_samples* cur);
/* Halve every sample sum of `acc`: older windows weigh less (the slow tick). Pure. */
HAK_HIDDEN void ace_copy_decay(hak_copy_samples* acc);

/* ---- metrics.c ---------------------------------------------------------------------- */
typedef struct ace_pmu_reading {
  int      mode;                 /* 0 none, 1 software, 2 hardware */
  uint64_t llc_loads, llc_misses;/* hardware mode */
  uint64_t page_faults;          /* software mode (and hardware mode when it could) */
  uint64_t cpu_ns;               /* process CPU time */
  uint64_t sys_ns;               /* of it, in the kernel (getrusage; faults, madvise, ...) */
  uint64_t compact_stalls;       /* the machine's direct compactions in page faults (software
                                    and hardware modes; /proc/vmstat) */
} ace_pmu_reading;

typedef struct ace_metrics {
  uint64_t dt_ns;                       /* window length */
  double   ops_per_s;                   /* allocs + frees per second */
  double   ops_per_cpu_s;               /* per process CPU second (0 when no CPU was used) */
  double   cpu_fraction;                /* process CPU time per wall time (cores) */
  double   sys_share;                   /* of the process's CPU time, the kernel's (0..1) */
  uint64_t lat_p50_ns, lat_p90_ns, lat_p99_ns;  /* sampled refills in the window; 0: none */
  uint64_t lat_samples;
  uint64_t remote_backlog;              /* blocks freed remotely, not yet taken back (now) */
  uint64_t backlog[HAK_NCLS];
  uint64_t allocs[HAK_NCLS];            /* in the window */
  double   hit_rate[HAK_NCLS];          /* 1 - refills/allocs in the window (1 without allocs) */
  uint64_t frees[HAK_NCLS];             /* in the window */
  double   slow_rate[HAK_NCLS];         /* (refills + flushes) / (allocs + frees) in the window */
  uint64_t tier_ops[4];                 /* allocs + frees in the window: tiny, mid, pool, large */
  double   remote_fraction;             /* remote frees / frees in the window */
  double   lock_waits_per_s;
  double   llc_miss_rate;               /* misses / loads; < 0 when not measured */
  double   page_faults_per_s;           /* < 0 when not measured */
  double   compact_stalls_per_s;        /* the machine's page faults that waited for a direct
                                           compaction (huge pages in "madvise" defrag mode) */
  double   refault_bytes_per_s;         /* released memory handed out again */
  double   large_fresh_bytes_per_s;     /* large blocks handed out with pages to fault in */
  double   seg_fresh_bytes_per_s;       /* segments likewise */
  uint64_t seg_bytes_live;              /* segments mapped, the cache's left out */
  uint64_t seg_sample_bytes;            /* the newest live segments, up to ACE_HUGE_SAMPLE (controller, */
  uint64_t seg_sample_resident;         /* only while ace_rule_huge may raise the level), of them resident */
  uint64_t idle_cache_trimmed_bytes;    /* cut off idle threads' caches in the window */
  uint64_t bytes_in_use, bytes_held, unused_resident;
  uint64_t large_cache_resident;        /* of unused_resident: freed large spans kept resident */
  double   fragmentation;               /* bytes in use / bytes held (1 when nothing held) */
  uint64_t rss_bytes;                   /* 0 unless read this tick */
  double   ace_cpu_fraction;            /* the ACE thread's CPU time per wall time (controller) */
  uint64_t ace_cpu_ns;                  /* the ACE thread's CPU time so far (controller) */
  uint64_t scavenge_cpu_ns;             /* CPU time the scavenger took this tick (controller) */
  uint64_t scavenge_delay_ms;           /* it gave back what was unused this long (controller) */
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
  bool               huge_auto;         /* HAKMEM_HUGE_PAGES=auto: ace_rule_huge may steer */
  uint64_t           scavenged_last;    /* bytes the scavenger gave back after the window before */
} ace_rule_input;

/* Apply the rules to *k. Writes the reasons for every change ("; "-separated) into
 * reason[0..n) and returns the number of knob groups changed (0: k unchanged). */
HAK_HIDDEN int ace_rules_apply(const ace_rule_input* in, hak_knobs* k, char* reason, size_t n);
struct ace_reasons;
/* Keep or return for large blocks, shared by the rules and the learner. With an RSS
 * target the large cache's resident bytes are capped at the room the target leaves (at
 * least ACE_LARGE_DIRTY_FLOOR), and RSS above the target sets the large reuse slack to
 * 0 (a reused span's surplus is decommitted); below ACE_SLACK_RESTORE of the target the
 * cap climbs back (doubling, never above the room) to `dirty_want` - the defaults'
 * value for the rules, the keep level's for the learner - then the slack (from
 * ACE_SLACK_FIRST %). 1 when k changed. */
#define ACE_SLACK_RESTORE 0.9
#define ACE_SLACK_FIRST   25
#define ACE_LARGE_DIRTY_FLOOR (32ull << 20)
HAK_HIDDEN int ace_rule_large_keep(const ace_rule_input* in, hak_knobs* k, struct ace_reasons* r,
                                   uint64_t dirty_want);
/* Transparent huge pages (knob huge_pages; only with in->huge_auto), shared by the
 * rules and the learner. A 2 MiB page takes one fault instead of 512 (on these VMs 64
 * MiB first touched in 4 ms instead of 243 ms), but costs 2 MiB of RSS wherever a
 * program touches a few pages of the range. In a window in which faults take at least
 * ACE_KEEP_FAULT_SHARE of the CPU:
 *   level 1 (large blocks): at least ACE_HUGE_MIN_BYTES per second of large blocks
 *     were handed out with pages to fault in, and the page faults cover at least
 *     ACE_HUGE_WRITTEN of those bytes (the blocks are written whole);
 *   level 2 (segments too): the same for new segments (with the large blocks'
 *     bytes), the segments at least ACE_HUGE_MIN_HEAP, and of the newest ones (up to
 *     ACE_HUGE_SAMPLE) ACE_HUGE_DENSE resident (mincore): huge pages then add at most
 *     the rest. Not RSS: a large block mostly untouched, rebuild's 384 MiB index, made
 *     a dense heap of small blocks look 15 % resident. Not the slabs in use either:
 *     8 KiB blocks of which a program writes the first page fill their slabs and
 *     leave half of them untouched (test_aligned: 760 MiB with huge pages, 280 without).
 * An idle window (under ACE_ACTIVE_OPS) takes level 2 back to 1 (the release walk takes
 * the advice off the segments: their purged pages must stay out), and RSS above the
 * target takes it to 0, and so do ACE_HUGE_MAX_STALLS page faults per second that waited
 * for the kernel to compact memory (THP's "madvise" defrag: a fault in advised memory
 * compacts synchronously when no 2 MiB page is free; milliseconds each on a fragmented
 * machine); while they last it stays at 0. No level comes off because faults drop:
 * they drop because of it. 1 when k changed. Pure. */
#define ACE_HUGE_MIN_BYTES (16.0 * 1048576)
#define ACE_HUGE_WRITTEN   0.5
#define ACE_HUGE_DENSE     0.9
#define ACE_HUGE_MIN_HEAP  (32ull << 20)
#define ACE_HUGE_SAMPLE    256         /* segments read with mincore: at most ~0.5 ms */
#define ACE_HUGE_MAX_STALLS 5.0        /* compaction stalls per second that take it to 0 */
HAK_HIDDEN int ace_rule_huge(const ace_rule_input* in, hak_knobs* k, struct ace_reasons* r);

/* ---- bandit.c ----------------------------------------------------------------------- */
#define ACE_BANDIT_MAX_ARMS   6
#define ACE_BANDIT_DROP_PULLS 3        /* pulls before an arm can be dropped */
#define ACE_BANDIT_READMIT    60       /* pulls a dropped arm sits out */
#define ACE_BANDIT_TRUST_PULLS 2       /* pulls before an arm may replace the default ... */
#define ACE_BANDIT_BIG_WIN    0.15     /* ... unless one pull beat it by this much */
typedef struct ace_bandit {
  unsigned narms;
  double   gamma, c, drop_margin;     /* discount per update, exploration, drop threshold */
  double   n[ACE_BANDIT_MAX_ARMS];    /* discounted pulls */
  double   sum[ACE_BANDIT_MAX_ARMS];  /* discounted reward sums */
  uint32_t pulls[ACE_BANDIT_MAX_ARMS];/* pulls since the reset */
  bool     dropped[ACE_BANDIT_MAX_ARMS];
  uint32_t dropped_at[ACE_BANDIT_MAX_ARMS];  /* total_pulls when it was dropped */
  uint32_t total_pulls;
} ace_bandit;
HAK_HIDDEN void     ace_bandit_init(ace_bandit* b, unsigned narms, double gamma, double c, double drop_margin);
HAK_HIDDEN void     ace_bandit_reset(ace_bandit* b);
/* The arm to pull next: a never-pulled arm first (lowest index), else the highest UCB. */
HAK_HIDDEN unsigned ace_bandit_select(const ace_bandit* b);
HAK_HIDDEN void     ace_bandit_update(ace_bandit* b, unsigned arm, double reward);
/* The pulled, not dropped arm with the highest mean (0 when none was pulled); an arm
 * other than the default (0) counts only after ACE_BANDIT_TRUST_PULLS pulls or with a
 * mean more than ACE_BANDIT_BIG_WIN above the default's. */
HAK_HIDDEN unsigned ace_bandit_best(const ace_bandit* b);
HAK_HIDDEN double   ace_bandit_mean(const ace_bandit* b, unsigned arm);

/* ---- reward.c ----------------------------------------------------------------------- */
/* Penalty weights and scales of the reward (docs/ACE.md, "The reward"). */
#define ACE_REWARD_W_LLC      0.3      /* x LLC miss rate (hardware PMU only) */
#define ACE_REWARD_W_LOCK     0.2      /* x lock waits per second / ACE_REWARD_LOCK_SCALE, <= 1 */
#define ACE_REWARD_LOCK_SCALE 10000.0
#define ACE_REWARD_W_BACKLOG  0.2      /* x remote backlog / ACE_REWARD_BACKLOG_SCALE, <= 1 */
#define ACE_REWARD_BACKLOG_SCALE 65536.0
#define ACE_REWARD_W_RSS      1.0      /* x (RSS / target - 1) above the target */
/* Throughput per CPU second relative to `ref` (the same phase's running mean) minus the
 * penalties; about 1 for an ordinary window. Pure. */
HAK_HIDDEN double ace_reward(const ace_metrics* m, double ref, uint64_t rss_target);

/* ---- learner.c (policy ucb1) ------------------------------------------------------- */
enum { ACE_GROUP_TLS, ACE_GROUP_BATCH, ACE_GROUP_DRAIN, ACE_GROUP_SWEEP, ACE_GROUPS };
#define ACE_CONTEXTS          6        /* phases remembered */
#define ACE_PHASE_DISTANCE    0.5      /* signature distance that makes a new phase */
#define ACE_PHASE_MIN_WS      (16.0 * 1048576)  /* working sets below this look alike */
#define ACE_ACTIVE_OPS        20000.0  /* allocs + frees per second below which a window is idle */
/* A window with at least ACE_ACTIVE_OPS operations per second: the learner, the idle hold
 * and the huge-page rule tell active from idle by this. */
static inline bool ace_window_active(const ace_metrics* m) { return m->ops_per_s >= ACE_ACTIVE_OPS; }
#define ACE_UCB_GAMMA         0.95     /* discount per pull: evidence fades over ~20 pulls */
#define ACE_UCB_C             0.05     /* exploration; rewards are about 1, arms differ by % */
#define ACE_UCB_DROP_MARGIN   0.05     /* an arm 5 % below the best is dropped */
#define ACE_EXPLORE_EVERY     2        /* windows per exploring window (the others exploit) */
#define ACE_REF_ALPHA         0.2      /* weight of a window in the phase's reference */
#define ACE_MAX_TLS_CAP       4096     /* thread-cache capacity bound, blocks */
#define ACE_KEEP_LEVELS       4        /* keep level: purge delay and cache budgets x4^level */
#define ACE_KEEP_MAX_DELAY_MS 30000u
#define ACE_KEEP_MAX_BYTES    (4ull << 30)
#define ACE_KEEP_REFAULT_BYTES (1.0 * 1048576)   /* refaults per second that raise the level */
#define ACE_KEEP_FAULT_BYTES  (64.0 * 1048576)   /* page faults (bytes) per second, likewise */
#define ACE_KEEP_FAULT_SHARE  0.05     /* ... but only while faults take this share of the CPU */
#define ACE_FAULT_COST_NS     2000.0   /* one page fault with its zeroing, an estimate (bare
                                          metal 1-2 us; these VMs 10 us: the kernel's share caps it) */
#define ACE_KEEP_DECAY_TICKS  20       /* quiet active windows per level down */

#define ACE_PENDING_ALL       ACE_GROUPS  /* pending_group: the window credits every group */
typedef struct ace_signature { double tier[4], remote, ws_log2, ops_log2; } ace_signature;
typedef struct ace_context {
  bool          used;
  ace_signature sig;                  /* running mean of the phase's windows */
  double        ref;                  /* running mean of its ops per CPU second */
  uint64_t      last_tick;
  ace_bandit    bandit[ACE_GROUPS];
} ace_context;
typedef struct ace_learner {
  ace_context ctx[ACE_CONTEXTS];
  int         cur;                    /* context of the last active window, -1: none */
  int         pending_group;          /* group whose arm the current window tries, -1: none,
                                         ACE_PENDING_ALL: every group sits on its best arm */
  unsigned    pending_arm, next_group;
  uint64_t    ticks, phase_changes;
  unsigned    keep_level, quiet_ticks;
  unsigned    since_explore;          /* windows since the last exploring one */
  double      last_reward;
} ace_learner;
HAK_HIDDEN void   ace_learner_init(ace_learner* L);
/* One window: credit the last window's arm, pick the next, write knobs and reasons.
 * Returns nonzero when *k changed. */
HAK_HIDDEN int    ace_learner_step(ace_learner* L, const ace_rule_input* in, hak_knobs* k, char* reason, size_t n);
/* Bytes per second faulted in: the page faults (4 KiB each), or the refaults where they
 * are more or no PMU counts faults. Pure. */
HAK_HIDDEN double ace_faulted_bytes_per_s(const ace_metrics* m);
/* The share of the process's CPU time its page faults take, estimated: faults (or
 * refaults) x ACE_FAULT_COST_NS, at most the kernel's share. Pure. */
HAK_HIDDEN double ace_fault_share(const ace_metrics* m);
HAK_HIDDEN void   ace_signature_of(const ace_metrics* m, ace_signature* s);
HAK_HIDDEN double ace_signature_distance(const ace_signature* a, const ace_signature* b);
HAK_HIDDEN const char* ace_group_name(unsigned g);
HAK_HIDDEN double ace_group_scale(unsigned g, unsigned arm);

#define ACE_POLICY_DEFAULT HAKMEM_ACE_POLICY_RULES   /* what HAKMEM_ACE_POLICY_DEFAULT means */
/* ---- policy.c ----------------------------------------------------------------------- */
#define ACE_DECAY_MS          10000u   /* decay: time over which unused memory goes back */
#define ACE_RESIZE_SLOW_RATE  0.01     /* resize: slow paths per operation that grow a cache */
#define ACE_RESIZE_MIN_OPS    4096     /* resize: operations in the window before it judges */
#define ACE_RESIZE_GROW       1.5
#define ACE_RESIZE_SHRINK     0.75
#define ACE_RESIZE_MAX_BYTES  (256u << 10)  /* resize: a class's cache at most this many bytes */
typedef struct ace_scavenge_plan {
  uint64_t delay_ns;                  /* release what has been unused this long */
  uint64_t cache_delay_ns;            /* the segment and large caches: likewise */
  uint64_t max_bytes;                 /* at most this much this tick (UINT64_MAX: no limit) */
} ace_scavenge_plan;
/* ---- idle_hold.c -------------------------------------------------------------------- */
#define ACE_IDLE_HOLD_MAX_MS      8000u              /* the longest the hold grows to */
#define ACE_IDLE_HOLD_MIN_BYTES   (64ull << 10)      /* an idle spell that gave back less: not judged */
#define ACE_IDLE_HOLD_JUDGE_TICKS 2                  /* active windows that may fault it back in */
typedef struct ace_idle_hold {
  uint64_t hold_ms;                   /* the scavenger's delay, at least the purge delay */
  uint64_t returned, idle_ms;         /* the idle spell going on: given back, its length */
  uint64_t spell_returned, refaulted; /* the spell being judged: given back, faulted back in, */
  uint64_t spell_ms;                  /* its length */
  unsigned judged_ticks;              /* active windows of it so far */
  bool     judging, prev_idle;
} ace_idle_hold;
HAK_HIDDEN void ace_idle_hold_init(ace_idle_hold* h);
/* One window: the hold in ms (at least base_ms, the purge delay), its changes said in r. */
HAK_HIDDEN uint64_t ace_idle_hold_step(ace_idle_hold* h, const ace_rule_input* in, uint64_t base_ms,
                                       struct ace_reasons* r);

typedef struct ace_policy_state {
  uint32_t      policy;               /* HAKMEM_ACE_POLICY_* in force (never DEFAULT) */
  bool          decay_set;            /* decay: its purge delay is published */
  ace_learner   learner;
  ace_idle_hold hold;                 /* rules, resize, ucb1: the scavenger's idle hold */
} ace_policy_state;
HAK_HIDDEN void        ace_policy_init(ace_policy_state* ps, uint32_t policy);
HAK_HIDDEN const char* ace_policy_name(uint32_t policy);
/* One fast tick of the policy in force: new knobs in *k (returns nonzero when changed),
 * the reasons, and how the scavenger runs this tick. */
HAK_HIDDEN int ace_policy_step(ace_policy_state* ps, const ace_rule_input* in, hak_knobs* k, char* reason, size_t n,
                               ace_scavenge_plan* plan);

/* ---- guards.c ----------------------------------------------------------------------- */
typedef enum ace_guard {
  ACE_GUARD_OK = 0,
  ACE_GUARD_LATENCY,                    /* stop steering */
  ACE_GUARD_RSS,                        /* stop steering */
  ACE_GUARD_CPU,                        /* stop steering and scavenging */
} ace_guard;
#define ACE_GUARD_MIN_SAMPLES 16        /* a p99 from fewer samples is not trusted */
#define ACE_GUARD_LATENCY_TICKS 3       /* windows in a row over the latency ceiling */

/* Which guard (if any) the metrics cross; the reason goes to reason[0..n). Pure.
 * ace_cpu_fraction is the ACE thread's CPU share averaged by ace_cpu_average. */
HAK_HIDDEN ace_guard ace_guards_check(const ace_metrics* m, const hakmem_ace_config_t* cfg,
                                      double ace_cpu_fraction, char* reason, size_t n);
/* The CPU guard looks at the ACE thread's share of a core averaged over about
 * ACE_GUARD_CPU_WINDOW_NS (an exponential average, each tick weighted by its length):
 * a controller that costs too much keeps costing and trips it within a few seconds,
 * while one tick of bounded, budgeted work does not. (Tick by tick, the scavenger's
 * first walk after a program freed 256 MiB, decommitting the large cache in one go,
 * read 5.2 % of the 500 ms tick and stopped the controller for good, scavenging
 * included.) Returns the new average. Pure. */
#define ACE_GUARD_CPU_WINDOW_NS 5000000000ull
HAK_HIDDEN double ace_cpu_average(double avg, double fraction, uint64_t dt_ns);

/* ---- pmu.c -------------------------------------------------------------------------- */
/* Open the events for `want` (0 none, 1 software, 2 hardware if possible); returns the
 * mode in force. Only the ACE thread calls these (libpfm allocates). */
HAK_HIDDEN int  ace_pmu_open(int want);
/* Read the process's totals (all threads; new threads are picked up on each read). */
HAK_HIDDEN void ace_pmu_read(ace_pmu_reading* out);
HAK_HIDDEN void ace_pmu_close(void);

/* ---- scavenge.c --------------------------------------------------------------------- */
/* Return unused memory for at most budget_ns as the policy's plan says, resuming where
 * the last call stopped. Returns bytes given back. */
struct ace_scavenge_plan;
HAK_HIDDEN size_t ace_scavenge(uint64_t now, uint64_t budget_ns, const struct ace_scavenge_plan* plan);
HAK_HIDDEN void   ace_scavenge_reset(void);
/* The time budget of the next walk: the configured one, or ACE_IDLE_BUDGET_FACTOR times it
 * while the program idles (its own threads, ACE's left out, used under 1 % of a core
 * and it made under 1,000 allocator calls per second over the last tick): then ACE's
 * CPU costs the program nothing, and the memory goes back sooner (4 ms every 500 ms
 * returned about 2-4 MiB/s of scattered small blocks on this VM). Pure. */
#define ACE_IDLE_BUDGET_FACTOR 4
/* Either way the budget is at most ACE_SCAVENGE_CPU_SHARE of the CPU guard's allowance
 * over a tick (interval_ns x max_cpu_percent): the scavenger alone never trips the
 * guard, whatever the interval (at 10 ms ticks the default 4 ms budget was 40 % of a
 * core). */
#define ACE_SCAVENGE_CPU_SHARE 0.75
struct ace_metrics;
HAK_HIDDEN uint64_t ace_scavenge_budget(uint64_t budget_ns, const struct ace_metrics* m, uint64_t interval_ns,
                                        uint32_t max_cpu_percent);

/* ---- trace.c ------------------------------------------------------------------------ */
HAK_HIDDEN void ace_trace_open(const char* path);
HAK_HIDDEN bool ace_trace_active(void);
HAK_HIDDEN void ace_trace_tick(double t_s, const char* tick, const ace_metrics* m, const hak_knobs* k,
                               const char* mode, const char* policy, const char* pmu, const char* reason,
                               uint64_t scavenged);
HAK_HIDDEN void ace_trace_close(void);

/* ---- config.c ----------------------------------------------------------------------- */
HAK_HIDDEN void ace_config_load(void);                /* from the HAKMEM_ACE_* options */
HAK_HIDDEN void ace_config_copy(hakmem_ace_config_t* out);
/* Held by the fork handlers (thread.c) across a fork: it is the thread's own in the child. */
HAK_HIDDEN void ace_config_fork_lock(void);
HAK_HIDDEN void ace_config_fork_unlock(void);
HAK_HIDDEN int  ace_config_validate(const hakmem_ace_config_t* cfg);
/* State shared by the thread and the getters (atomics; the reason under a lock). */
typedef struct ace_shared {
  _Atomic uint32_t mode, pmu_mode, policy, keep_level;
  _Atomic uint64_t phase_changes;
  _Atomic uint64_t fast_ticks, slow_ticks, publishes, scavenged_bytes, cpu_ns;
  _Atomic uint64_t last_p99_ns, last_rss_bytes;
} ace_shared;
HAK_HIDDEN extern ace_shared ace_state;
HAK_HIDDEN void ace_set_reason(const char* reason);
HAK_HIDDEN void ace_log(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* A decision's reasons: "; "-separated parts appended to buf[0..n) (cut when full). */
typedef struct ace_reasons { char* buf; size_t n, len; } ace_reasons;
HAK_HIDDEN void ace_say(ace_reasons* r, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

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
