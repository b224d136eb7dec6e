/* controller.c — one tick of the controller, called by the ACE thread (or a test, with
 * its own `now`):
 *
 *   fast tick  collect the counters, read the PMU and RSS, compute the window's metrics;
 *              check the guards (tripped: defaults back, steering stops); apply the
 *              rules and publish a new knob snapshot when they changed something; run
 *              the scavenger within its budget; write a trace line.
 *   slow tick  RSS, fragmentation and unused resident memory by tier, to the trace.
 * State lives here, in statics: there is one controller per process. */
#include "ace/ace.h"
#include "alloc/knobs.h"
#include "base/options.h"
#include "prim/prim.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static hak_collect col_prev, col_cur;          /* ~10 KiB each: static, not on the stack */
static hak_copy_samples copy_acc;                /* timed big realloc copies, decayed (copy.c) */
static ace_pmu_reading pmu_prev, pmu_cur;
static uint64_t t_prev, thread_cpu_prev;
/* The trace's time base: ACE's first start in this process (or fork child), so that a
 * restart appends lines whose time goes on. */
static uint64_t t_origin;
static double cpu_avg;                 /* the ACE thread's CPU share, averaged (guards.c) */
static hak_kept_fd rss_fd = HAK_KEPT_FD_NONE;   /* /proc/self/statm, read every tick */
static hak_knobs knobs_default, knobs_now;
static bool steering, scavenging, started;
static ace_metrics last_metrics;
static ace_policy_state policy;         /* the learner's memory: ~20 KiB, static */
static unsigned latency_strikes;        /* windows in a row over the latency ceiling */
static size_t scavenged_prev;           /* what the scavenger gave back in the last tick */

static const char* mode_name(uint32_t m) {
  switch (m) {
    case HAKMEM_ACE_MODE_OFF: return "off";
    case HAKMEM_ACE_MODE_WAITING: return "waiting";
    case HAKMEM_ACE_MODE_STEERING: return "steering";
    case HAKMEM_ACE_MODE_STOPPED: return "stopped";
    default: return "failed";
  }
}
static const char* pmu_name(int m) { return m == 2 ? "hardware" : m == 1 ? "software" : "none"; }

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The trace file: HAKMEM_ACE_TRACE with "%p" replaced by the pid. A child of fork
 * traces only when the name has %p (it would overwrite its parent's file otherwise). */
static void open_trace(bool in_child) {
  const char* path = hak_opt_text(HAK_OPT_ACE_TRACE);
  if (!path) return;
  char name[512];
  size_t n = 0;
  bool has_pid = false;
  for (const char* s = path; *s && n + 24 < sizeof name; s++) {
    if (s[0] == '%' && s[1] == 'p') {
      n += (size_t)snprintf(name + n, sizeof name - n, "%d", (int)getpid());
      s++;
      has_pid = true;
    } else {
      name[n++] = *s;
    }
  }
  name[n] = 0;
  if (in_child && !has_pid) return;
  ace_trace_open(name);
}

static bool in_child_after_fork;
void ace_ctl_mark_child(void) {
  in_child_after_fork = true;
  t_origin = 0;
  hak_prim_kept_close(&rss_fd);        /* the parent's statm: the child opens its own */
  started = false;
  hak_stats_set_ace(0, 0);
}

void ace_ctl_start(uint64_t now) {
  hakmem_ace_config_t cfg;
  ace_config_copy(&cfg);
  int mode = ace_pmu_open((int)cfg.pmu);
  hak_store_relaxed(&ace_state.pmu_mode, (uint32_t)mode);
  hak_knobs_defaults(&knobs_default);
  knobs_now.size = sizeof knobs_now;
  hak_knobs_copy(&knobs_now);
  hak_collect_all(&col_prev);
  memset(&copy_acc, 0, sizeof copy_acc);       /* a restart (fork child, new policy) learns anew */
  ace_pmu_read(&pmu_prev);
  t_prev = now;
  if (!t_origin) t_origin = now;
  thread_cpu_prev = thread_cpu_ns();
  cpu_avg = 0;
  steering = scavenging = true;
  started = true;
  ace_policy_init(&policy, cfg.policy);
  latency_strikes = 0;
  scavenged_prev = 0;
  hak_store_relaxed(&ace_state.policy, policy.policy);
  hak_store_relaxed(&ace_state.mode, HAKMEM_ACE_MODE_STEERING);
  hak_stats_set_ace(1, (uint32_t)mode);
  open_trace(in_child_after_fork);
  hak_prim_rss_bytes_kept(&rss_fd);    /* opened now, while the start waits (thread.c) */
  ace_log(1, "controller started: policy %s, fast loop %u ms, slow loop %u s, PMU %s",
          ace_policy_name(policy.policy), cfg.fast_interval_ms, cfg.slow_interval_s, pmu_name(mode));
}

static void publish(const hak_knobs* k) {
  hak_knobs c = *k;
  if (hak_knobs_publish(&c) == 0) {
    hak_knobs_copy(&knobs_now);
    atomic_fetch_add_explicit(&ace_state.publishes, 1, memory_order_relaxed);
  }
}

/* Whether a and b agree on every knob a policy steers (rules, resize, the learner's
 * arms, keep-or-return, the large reuse slack). */
static bool steered_knobs_equal(const hak_knobs* a, const hak_knobs* b) {
  return memcmp(a->tls_cap, b->tls_cap, sizeof a->tls_cap) == 0 &&
         memcmp(a->tls_cap_max, b->tls_cap_max, sizeof a->tls_cap_max) == 0 &&
         a->tls_grow_budget_bytes == b->tls_grow_budget_bytes &&
         memcmp(a->refill_batch, b->refill_batch, sizeof a->refill_batch) == 0 &&
         memcmp(a->remote_drain_interval, b->remote_drain_interval, sizeof a->remote_drain_interval) == 0 &&
         a->sweep_interval == b->sweep_interval && a->purge_delay_ms == b->purge_delay_ms &&
         a->partial_release_pages == b->partial_release_pages &&
         a->segment_cache_bytes == b->segment_cache_bytes &&
         a->segment_cache_dirty_bytes == b->segment_cache_dirty_bytes &&
         a->large_cache_bytes == b->large_cache_bytes && a->large_cache_entries == b->large_cache_entries &&
         a->large_cache_dirty_bytes == b->large_cache_dirty_bytes &&
         a->large_reuse_slack_pct == b->large_reuse_slack_pct;
}

void ace_ctl_restore_defaults(const char* why) {
  if (!started || !steered_knobs_equal(&knobs_now, &knobs_default)) publish(&knobs_default);
  if (why && *why) {
    ace_set_reason(why);
    ace_log(1, "%s", why);
  }
}

void ace_ctl_fast_tick(uint64_t now) {
  hakmem_ace_config_t cfg;
  ace_config_copy(&cfg);
  hak_knobs_copy(&knobs_now);        /* another publisher (mallopt, a test) may have changed it */
  hak_collect_all(&col_cur);
  hak_stats_note_in_use(col_cur.bytes_in_use);
  ace_pmu_read(&pmu_cur);
  ace_metrics m;
  ace_metrics_compute(&col_prev, &col_cur, &pmu_prev, &pmu_cur, now > t_prev ? now - t_prev : 1, &m);
  m.rss_bytes = hak_prim_rss_bytes_kept(&rss_fd);
  uint64_t cpu = thread_cpu_ns();
  double ace_cpu = now > t_prev ? (double)(cpu - thread_cpu_prev) / (double)(now - t_prev) : 0;
  m.ace_cpu_fraction = ace_cpu;
  m.ace_cpu_ns = cpu;
  char reason[640];
  reason[0] = 0;
  if (steering || scavenging) {
    cpu_avg = ace_cpu_average(cpu_avg, ace_cpu, now > t_prev ? now - t_prev : 0);
    ace_guard g = ace_guards_check(&m, &cfg, cpu_avg, reason, sizeof reason);
    /* One slow window of page faults on a busy machine is not the controller's doing:
     * the latency guard trips on ACE_GUARD_LATENCY_TICKS windows in a row. */
    latency_strikes = g == ACE_GUARD_LATENCY ? latency_strikes + 1 : 0;
    if (g == ACE_GUARD_LATENCY && latency_strikes < ACE_GUARD_LATENCY_TICKS) {
      g = ACE_GUARD_OK;
      reason[0] = 0;
    }
    if (g != ACE_GUARD_OK) {
      steering = false;
      if (g == ACE_GUARD_CPU) scavenging = false;
      ace_ctl_restore_defaults(reason);
      hak_store_relaxed(&ace_state.mode, HAKMEM_ACE_MODE_STOPPED);
    }
  }
  uint32_t want = cfg.policy == HAKMEM_ACE_POLICY_DEFAULT ? ACE_POLICY_DEFAULT : cfg.policy;
  if (want != policy.policy) {                 /* hakmem_ace_config() chose another policy */
    ace_policy_init(&policy, want);
    hak_store_relaxed(&ace_state.policy, want);
    if (steering) ace_ctl_restore_defaults("policy changed: defaults first");
    reason[0] = 0;
  }
  ace_copy_accumulate(&copy_acc, &col_prev.copy, &col_cur.copy);
  ace_scavenge_plan plan = {(uint64_t)knobs_now.purge_delay_ms * 1000000u,
                            (uint64_t)knobs_now.purge_delay_ms * 1000000u, UINT64_MAX};
  if (steering) {
    hak_knobs k = knobs_now;
    bool huge_auto = hak_opt(HAK_OPT_HUGE_PAGES) == HAK_HUGE_PAGES_AUTO;
    /* What ace_rule_huge needs to raise huge pages to segments: how much of the newest
     * segments is resident. Read (mincore) only while new segments are being made. */
    if (huge_auto && k.huge_pages < 2 && m.seg_fresh_bytes_per_s >= ACE_HUGE_MIN_BYTES)
      hak_seglist_residency(ACE_HUGE_SAMPLE, &m.seg_sample_bytes, &m.seg_sample_resident);
    ace_rule_input in = {.m = &m, .defaults = &knobs_default, .pinned = cfg.pinned,
                         .rss_target = cfg.max_rss_bytes / 10 * 9,
                         .huge_auto = huge_auto, .scavenged_last = scavenged_prev};
    if (ace_policy_step(&policy, &in, &k, reason, sizeof reason, &plan) > 0) publish(&k);
    if (reason[0]) {                /* a change of knobs, or of the scavenger's plan alone */
      ace_set_reason(reason);
      ace_log(1, "%s", reason);
    }
    if (policy.policy != HAKMEM_ACE_POLICY_STATIC) {
      uint64_t old_nt = knobs_now.realloc_nt_threshold;
      uint64_t nt = ace_copy_threshold(&copy_acc, old_nt);
      if (nt != old_nt) {
        hak_knobs kc = knobs_now;
        kc.realloc_nt_threshold = nt;
        publish(&kc);
        ace_log(1, "realloc_nt_threshold %llu -> %llu (timed realloc copies)", (unsigned long long)old_nt,
                (unsigned long long)nt);
      }
    }
    hak_store_relaxed(&ace_state.keep_level, policy.learner.keep_level);
    hak_store_relaxed(&ace_state.phase_changes, policy.learner.phase_changes);
  }
  size_t scavenged = 0;
  if (scavenging && !(cfg.pinned & HAKMEM_ACE_PIN_SCAVENGE)) {
    uint64_t budget = ace_scavenge_budget((uint64_t)cfg.scavenge_budget_us * 1000, &m,
                                          (uint64_t)cfg.fast_interval_ms * 1000000u, cfg.max_cpu_percent);
    uint64_t c0 = thread_cpu_ns();
    scavenged = ace_scavenge(now, budget, &plan);
    m.scavenge_cpu_ns = thread_cpu_ns() - c0;
    m.scavenge_delay_ms = plan.delay_ns / 1000000u;
    atomic_fetch_add_explicit(&ace_state.scavenged_bytes, scavenged, memory_order_relaxed);
  }
  uint32_t mode = hak_load_relaxed(&ace_state.mode);
  ace_trace_tick((double)(now - t_origin) / 1e9, "fast", &m, &knobs_now, mode_name(mode), ace_policy_name(policy.policy), pmu_name(pmu_cur.mode),
                 reason, scavenged);
  ace_log(2, "tick: %.0f ops/s, p99 %llu ns, backlog %llu, RSS %llu MiB, scavenged %zu", m.ops_per_s,
          (unsigned long long)m.lat_p99_ns, (unsigned long long)m.remote_backlog,
          (unsigned long long)(m.rss_bytes >> 20), scavenged);
  atomic_fetch_add_explicit(&ace_state.fast_ticks, 1, memory_order_relaxed);
  hak_store_relaxed(&ace_state.last_p99_ns, m.lat_p99_ns);
  hak_store_relaxed(&ace_state.last_rss_bytes, m.rss_bytes);
  hak_store_relaxed(&ace_state.cpu_ns, cpu);
  last_metrics = m;
  scavenged_prev = scavenged;
  memcpy(&col_prev, &col_cur, sizeof col_prev);
  pmu_prev = pmu_cur;
  t_prev = now;
  thread_cpu_prev = cpu;
}

void ace_ctl_slow_tick(uint64_t now) {
  ace_metrics m = last_metrics;
  ace_copy_decay(&copy_acc);
  m.rss_bytes = hak_prim_rss_bytes_kept(&rss_fd);
  char reason[256];
  snprintf(reason, sizeof reason, "slow: fragmentation %.2f, unused resident %llu MiB (tiny %llu, mid %llu, pool %llu, "
           "segment cache %llu, large cache %llu MiB)", m.fragmentation, (unsigned long long)(m.unused_resident >> 20),
           (unsigned long long)(col_prev.unused_dirty_bytes[HAK_SEG_TINY] >> 20),
           (unsigned long long)(col_prev.unused_dirty_bytes[HAK_SEG_MID] >> 20),
           (unsigned long long)(col_prev.unused_dirty_bytes[HAK_SEG_POOL] >> 20),
           (unsigned long long)(col_prev.segment_cache_dirty_bytes >> 20),
           (unsigned long long)(col_prev.large_cache_dirty_bytes >> 20));
  hak_store_relaxed(&ace_state.last_rss_bytes, m.rss_bytes);
  atomic_fetch_add_explicit(&ace_state.slow_ticks, 1, memory_order_relaxed);
  ace_trace_tick((double)(now - t_origin) / 1e9, "slow", &m, &knobs_now,
                 mode_name(hak_load_relaxed(&ace_state.mode)), ace_policy_name(policy.policy), pmu_name(pmu_cur.mode), reason, 0);
  ace_log(2, "%s", reason);
}

void ace_ctl_stop(void) {
  ace_ctl_restore_defaults(NULL);
  hak_stats_set_ace(0, 0);
  ace_scavenge_reset();
  ace_pmu_close();
  ace_trace_close();
  hak_prim_kept_close(&rss_fd);
  started = false;
}
