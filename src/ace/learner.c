/* learner.c — policy "ucb1": the controller learns the knob settings that serve the
 * program best, phase by phase, and how much freed memory to keep. Pure: the caller
 * passes the window's metrics and the knobs; the learner's memory is the struct.
 *
 *  Phases.    Each active window (at least ACE_ACTIVE_OPS operations per second) gets a
 *             signature: the share of operations per tier, the share of frees that are
 *             remote, log2 of the bytes in use (at least 16 MiB) and of the operation
 *             rate. Windows whose
 *             signatures lie within ACE_PHASE_DISTANCE of a known context belong to it;
 *             a window far from all of them is a change of phase and opens a new
 *             context (the oldest one is reused when all ACE_CONTEXTS are taken). A
 *             program that comes back to a phase finds its learned settings there.
 *  Arms.      Each context has one discounted UCB1 bandit (bandit.c) per knob group:
 *             thread-cache capacity (its x0.5 arm is the diet), refill bundle width,
 *             remote drain interval, sweep interval. Arms are multiples of the default
 *             (arm 0 is the default), so every candidate stays inside the validated
 *             range. Knobs that only move memory, not speed, are not arms: the reward
 *             cannot see them (without an RSS target), so they belong to keep-or-return.
 *  Schedule.  Every ACE_EXPLORE_EVERY-th window explores one group (round robin); the
 *             others sit on their best arm. The window's reward (reward.c) is credited
 *             to the explored arm. The windows between run every group on its best arm
 *             and credit all of them.
 *             The window in which the phase changed is not credited to anything; the
 *             one after it runs every group on its best arm (a new context: the
 *             defaults) and is credited to each of them, so a new phase does not spend
 *             one window per group re-measuring the defaults before it tries anything.
 *  Keep or return.  A refault of released memory, or a page-fault storm, in an active
 *             window in which faults take at least ACE_KEEP_FAULT_SHARE of the
 *             process's CPU time (ace_fault_share) raises the keep level (purge delay
 *             and cache budgets x4 per level, partial_release_pages x2). A few MiB/s of
 *             refaults in a busy program cost less than the memory kept against them:
 *             mid_mt's (under 1 % of its CPU) once made the learner double its RSS
 *             without making it faster;
 *             ACE_KEEP_DECAY_TICKS quiet active windows lower it one level; an idle
 *             window or RSS above the target puts it back to 0 at once, so the scavenger
 *             returns freed memory while the program idles. Huge pages follow the
 *             rules' ace_rule_huge (rules.c). */
#include "ace/ace.h"

#include "base/fmath.h"
#include <stdio.h>
#include <string.h>

typedef struct group_def {
  const char* name;
  uint32_t    pin;                 /* HAKMEM_ACE_PIN_* that freezes it */
  unsigned    narms;
  double      scale[ACE_BANDIT_MAX_ARMS];
} group_def;

static const group_def groups[ACE_GROUPS] = {
  [ACE_GROUP_TLS]     = {"tls_cap", HAKMEM_ACE_PIN_TLS_CAP, 4, {1, 4, 2, 0.5}},
  [ACE_GROUP_BATCH]   = {"refill_batch", HAKMEM_ACE_PIN_REFILL_BATCH, 4, {1, 2, 4, 0.5}},
  [ACE_GROUP_DRAIN]   = {"remote_drain_interval", HAKMEM_ACE_PIN_DRAIN, 3, {1, 0.25, 4}},
  [ACE_GROUP_SWEEP]   = {"sweep_interval", HAKMEM_ACE_PIN_DRAIN, 3, {1, 0.25, 4}},
};

const char* ace_group_name(unsigned g) { return g < ACE_GROUPS ? groups[g].name : "?"; }
double ace_group_scale(unsigned g, unsigned arm) {
  return g < ACE_GROUPS && arm < groups[g].narms ? groups[g].scale[arm] : 1.0;
}

static uint32_t scaled(uint32_t def, double s, uint32_t lo, uint32_t hi) {
  double v = hak_floor((double)def * s + 0.5);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return (uint32_t)v;
}

/* Put arm `arm` of group g into k (relative to the defaults d). */
static void apply_arm(unsigned g, unsigned arm, const hak_knobs* d, hak_knobs* k) {
  double s = ace_group_scale(g, arm);
  switch (g) {
    case ACE_GROUP_TLS:
      for (unsigned c = 0; c < HAK_NCLS; c++) k->tls_cap[c] = scaled(d->tls_cap[c], s, 1, ACE_MAX_TLS_CAP);
      {   /* and how far they may grow, within the validated range */
        double b = hak_floor((double)d->tls_grow_budget_bytes * s + 0.5);
        k->tls_grow_budget_bytes = b > (double)(1ull << 40) ? 1ull << 40 : (uint64_t)b;
      }
      break;
    case ACE_GROUP_BATCH:
      for (unsigned c = 0; c < HAK_NCLS; c++) k->refill_batch[c] = scaled(d->refill_batch[c], s, 1, ACE_MAX_REFILL_BATCH);
      break;
    case ACE_GROUP_DRAIN:
      for (unsigned c = 0; c < HAK_NCLS; c++)
        k->remote_drain_interval[c] = scaled(d->remote_drain_interval[c], s, ACE_MIN_DRAIN_INTERVAL, 1u << 20);
      break;
    case ACE_GROUP_SWEEP:
      k->sweep_interval = scaled(d->sweep_interval, s, 1, 1u << 20);
      break;
  }
}


void ace_signature_of(const ace_metrics* m, ace_signature* s) {
  uint64_t total = 0;
  for (unsigned t = 0; t < 4; t++) total += m->tier_ops[t];
  for (unsigned t = 0; t < 4; t++) s->tier[t] = total ? (double)m->tier_ops[t] / (double)total : 0;
  s->remote = m->remote_fraction;
  /* Below ACE_PHASE_MIN_WS every working set is "small": a loop that allocates and
   * frees a batch holds anything from 0 to its batch when the window is sampled. */
  double ws = (double)m->bytes_in_use;
  s->ws_log2 = hak_log2(ws > ACE_PHASE_MIN_WS ? ws : ACE_PHASE_MIN_WS);
  s->ops_log2 = hak_log2(m->ops_per_s + 1.0);
}

double ace_signature_distance(const ace_signature* a, const ace_signature* b) {
  double d = 0;
  for (unsigned t = 0; t < 4; t++) d += hak_fabs(a->tier[t] - b->tier[t]);
  d += hak_fabs(a->remote - b->remote);
  d += hak_fabs(a->ws_log2 - b->ws_log2) / 4.0;      /* 16x the bytes in use: 1 */
  d += hak_fabs(a->ops_log2 - b->ops_log2) / 8.0;    /* 256x the operation rate: 1 */
  return d;
}

static void context_open(ace_context* c, const ace_signature* s, uint64_t tick, double ops_per_cpu_s) {
  memset(c, 0, sizeof *c);
  c->used = true;
  c->sig = *s;
  c->ref = ops_per_cpu_s;
  c->last_tick = tick;
  for (unsigned g = 0; g < ACE_GROUPS; g++)
    ace_bandit_init(&c->bandit[g], groups[g].narms, ACE_UCB_GAMMA, ACE_UCB_C, ACE_UCB_DROP_MARGIN);
}

void ace_learner_init(ace_learner* L) {
  memset(L, 0, sizeof *L);
  L->cur = -1;
  L->pending_group = -1;
}

/* The context of signature s: the nearest known one within ACE_PHASE_DISTANCE, else a
 * new one (or the least recently seen, reused). *fresh tells which. */
static int context_find(ace_learner* L, const ace_signature* s, const ace_metrics* m, bool* fresh) {
  int best = -1, oldest = 0;
  double bd = 0;
  for (int i = 0; i < ACE_CONTEXTS; i++) {
    ace_context* c = &L->ctx[i];
    if (!c->used) { oldest = i; continue; }
    double d = ace_signature_distance(s, &c->sig);
    if (best < 0 || d < bd) { best = i; bd = d; }
    if (L->ctx[oldest].used && c->last_tick < L->ctx[oldest].last_tick) oldest = i;
  }
  /* Stay with the current context unless the signature moved well away from it. */
  if (L->cur >= 0 && ace_signature_distance(s, &L->ctx[L->cur].sig) < ACE_PHASE_DISTANCE) {
    *fresh = false;
    return L->cur;
  }
  if (best >= 0 && bd < ACE_PHASE_DISTANCE) { *fresh = false; return best; }
  context_open(&L->ctx[oldest], s, L->ticks, m->ops_per_cpu_s);
  *fresh = true;
  return oldest;
}

/* def x mult, at least def (a user's setting is never lowered) and at most max. */
static uint64_t keep_scaled(uint64_t def, uint64_t mult, uint64_t max) {
  uint64_t v = def * mult;
  if (v > max) v = max;
  return v > def ? v : def;
}

/* The large cache's resident bytes at keep level `lv`: also what ace_rule_large_keep
 * climbs back to once an RSS target leaves room again. */
static uint64_t keep_large_dirty(unsigned lv, const hak_knobs* d) {
  return keep_scaled(d->large_cache_dirty_bytes, (uint64_t)1 << (2 * lv), ACE_KEEP_MAX_BYTES);
}

/* Keep or return: the cache budgets and the purge delay at keep level `lv` (level 0:
 * the defaults). */
static void apply_keep(unsigned lv, const hak_knobs* d, hak_knobs* k) {
  uint64_t f = (uint64_t)1 << (2 * lv);                     /* 4^level */
  k->purge_delay_ms = (uint32_t)keep_scaled(d->purge_delay_ms, f, ACE_KEEP_MAX_DELAY_MS);
  k->segment_cache_dirty_bytes = keep_scaled(d->segment_cache_dirty_bytes, f, ACE_KEEP_MAX_BYTES);
  k->segment_cache_bytes = d->segment_cache_bytes > k->segment_cache_dirty_bytes ? d->segment_cache_bytes
                                                                                 : k->segment_cache_dirty_bytes;
  k->large_cache_bytes = keep_scaled(d->large_cache_bytes, f, ACE_KEEP_MAX_BYTES);
  k->large_cache_dirty_bytes = keep_large_dirty(lv, d);
  k->partial_release_pages = (uint32_t)keep_scaled(d->partial_release_pages, 1u << lv, 512);
  k->large_cache_entries = (uint32_t)keep_scaled(d->large_cache_entries, 1u << lv, 64);
}

double ace_faulted_bytes_per_s(const ace_metrics* m) {
  double pf = m->page_faults_per_s * 4096.0;           /* < 0 when not measured */
  return pf > m->refault_bytes_per_s ? pf : m->refault_bytes_per_s;
}

double ace_fault_share(const ace_metrics* m) {
  double faults = ace_faulted_bytes_per_s(m) / 4096.0;
  double cpu_ns = m->cpu_fraction * 1e9;               /* CPU time per second */
  if (cpu_ns <= 0) return 0;
  double share = faults * ACE_FAULT_COST_NS / cpu_ns;
  return share < m->sys_share ? share : m->sys_share;
}

static int keep_or_return(ace_learner* L, const ace_rule_input* in, hak_knobs* k, ace_reasons* r) {
  if (in->pinned & HAKMEM_ACE_PIN_SCAVENGE) return 0;
  const ace_metrics* m = in->m;
  unsigned lv = L->keep_level;
  double fault_bytes = m->page_faults_per_s > 0 ? m->page_faults_per_s * 4096.0 : 0;
  double share = ace_fault_share(m);
  bool over_rss = in->rss_target && m->rss_bytes > in->rss_target;
  if (over_rss || !ace_window_active(m)) {
    if (lv) {
      L->keep_level = 0;
      ace_say(r, "keep: %s: freed memory goes back (keep level %u -> 0)", over_rss ? "RSS above target" : "idle", lv);
    }
    L->quiet_ticks = 0;
  } else if ((m->refault_bytes_per_s >= ACE_KEEP_REFAULT_BYTES || fault_bytes >= ACE_KEEP_FAULT_BYTES) &&
             share >= ACE_KEEP_FAULT_SHARE) {
    L->quiet_ticks = 0;
    if (lv < ACE_KEEP_LEVELS) {
      L->keep_level = lv + 1;
      ace_say(r, "keep: %s %.0f MiB/s, about %.0f %% of the CPU: keep more freed memory (keep level %u -> %u)",
          m->refault_bytes_per_s >= ACE_KEEP_REFAULT_BYTES ? "refaults" : "page faults",
          (m->refault_bytes_per_s >= ACE_KEEP_REFAULT_BYTES ? m->refault_bytes_per_s : fault_bytes) / 1048576.0,
          share * 100.0, lv, lv + 1);
    }
  } else if (lv && ++L->quiet_ticks >= ACE_KEEP_DECAY_TICKS) {
    L->quiet_ticks = 0;
    L->keep_level = lv - 1;
    ace_say(r, "keep: no refaults for %d windows (keep level %u -> %u)", ACE_KEEP_DECAY_TICKS, lv, lv - 1);
  }
  int changed = 0;
  if (L->keep_level != lv) {
    apply_keep(L->keep_level, in->defaults, k);
    changed = 1;
  }
  return changed + ace_rule_large_keep(in, k, r, keep_large_dirty(L->keep_level, in->defaults));
}

/* The knobs of context c: every group on its best arm, group `g` (if any) on `arm`. */
static void apply_context(const ace_context* c, int g, unsigned arm, const ace_rule_input* in, hak_knobs* k) {
  for (unsigned i = 0; i < ACE_GROUPS; i++) {
    if (in->pinned & groups[i].pin) continue;
    apply_arm(i, (int)i == g ? arm : ace_bandit_best(&c->bandit[i]), in->defaults, k);
  }
}

int ace_learner_step(ace_learner* L, const ace_rule_input* in, hak_knobs* k, char* reason, size_t n) {
  ace_reasons r = {reason, n, 0};
  if (n) reason[0] = 0;
  const ace_metrics* m = in->m;
  hak_knobs before = *k;
  L->ticks++;
  keep_or_return(L, in, k, &r);
  ace_rule_huge(in, k, &r);               /* as the rules do (HAKMEM_ACE_PIN does not cover it) */
  if (!ace_window_active(m) || m->ops_per_cpu_s <= 0) {
    L->pending_group = -1;                /* an idle window says nothing about the arms */
    return memcmp(&before, k, sizeof before) != 0;
  }
  ace_signature s;
  ace_signature_of(m, &s);
  bool fresh;
  int ci = context_find(L, &s, m, &fresh);
  ace_context* c = &L->ctx[ci];
  c->last_tick = L->ticks;
  if (ci != L->cur) {
    L->phase_changes += L->cur >= 0;
    ace_say(&r, "ucb1: phase %s: context %d (%s)", L->cur < 0 ? "first seen" : "change", ci,
        fresh ? "new, exploring" : "known, its best arms");
    L->cur = ci;
    L->pending_group = ACE_PENDING_ALL;
    L->since_explore = ACE_EXPLORE_EVERY - 1;   /* the window after this one explores */
    apply_context(c, -1, 0, in, k);
    return memcmp(&before, k, sizeof before) != 0;
  }
  for (unsigned t = 0; t < 4; t++) c->sig.tier[t] = 0.8 * c->sig.tier[t] + 0.2 * s.tier[t];
  c->sig.remote = 0.8 * c->sig.remote + 0.2 * s.remote;
  c->sig.ws_log2 = 0.8 * c->sig.ws_log2 + 0.2 * s.ws_log2;
  c->sig.ops_log2 = 0.8 * c->sig.ops_log2 + 0.2 * s.ops_log2;
  if (L->pending_group >= 0) {
    double rw = ace_reward(m, c->ref, in->rss_target);
    if (L->pending_group == ACE_PENDING_ALL) {
      /* Every group sat on its best arm (nothing was credited since it was applied). */
      for (unsigned i = 0; i < ACE_GROUPS; i++) {
        if (!(in->pinned & groups[i].pin)) ace_bandit_update(&c->bandit[i], ace_bandit_best(&c->bandit[i]), rw);
      }
    } else {
      ace_bandit_update(&c->bandit[L->pending_group], L->pending_arm, rw);
    }
    L->last_reward = rw;
  }
  c->ref = c->ref > 0 ? (1 - ACE_REF_ALPHA) * c->ref + ACE_REF_ALPHA * m->ops_per_cpu_s : m->ops_per_cpu_s;
  /* Every other window sits on the best arms and credits them all: exploration takes
   * at most half of a phase, and the arms in force gather evidence. */
  if (++L->since_explore < ACE_EXPLORE_EVERY) {
    L->pending_group = ACE_PENDING_ALL;
    apply_context(c, -1, 0, in, k);
    return memcmp(&before, k, sizeof before) != 0;
  }
  L->since_explore = 0;
  /* The next group to explore: round robin over the groups not pinned. */
  int g = -1;
  for (unsigned i = 0; i < ACE_GROUPS; i++) {
    unsigned cand = (L->next_group + i) % ACE_GROUPS;
    if (!(in->pinned & groups[cand].pin)) { g = (int)cand; break; }
  }
  if (g < 0) { L->pending_group = -1; return memcmp(&before, k, sizeof before) != 0; }
  L->next_group = ((unsigned)g + 1) % ACE_GROUPS;
  unsigned arm = ace_bandit_select(&c->bandit[g]);
  L->pending_group = g;
  L->pending_arm = arm;
  apply_context(c, g, arm, in, k);
  int changed = memcmp(&before, k, sizeof before) != 0;
  if (changed) {
    ace_say(&r, "ucb1: context %d: %s x%g (UCB arm %u; best %s x%g)", ci, groups[g].name, groups[g].scale[arm], arm,
        groups[g].name, groups[g].scale[ace_bandit_best(&c->bandit[g])]);
  }
  return changed;
}
