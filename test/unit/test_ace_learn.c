/* test_ace_learn.c — ACE's learning and its policies on scripted inputs: the discounted
 * UCB1 bandit (finds the best arm, drops a costly one, follows a change), the reward,
 * phase signatures, the ucb1 learner driven by a simulated program whose speed depends
 * on the knobs in force (it finds each phase's best arm, remembers it when the phase
 * comes back, never leaves the candidate set), keep-or-return, the idle hold, the static,
 * decay and resize policies, and the policy's configuration (HAKMEM_ACE_POLICY, the API).
 *
 *   unit_ace_learn [test names] */
#include "hak_test.h"
#include "hakmem.h"
#include "hakmem_ace.h"
#include "ace/ace.h"
#include "alloc/knobs.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static hak_knobs defaults(void) {
  hak_knobs k;
  hak_knobs_defaults(&k);
  return k;
}

/* Deterministic noise in [-a, a]. */
static uint64_t rng = 88172645463325252ull;
static double noise(double a) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return ((double)(rng % 2001) / 1000.0 - 1.0) * a;
}

/* ---- the bandit --------------------------------------------------------------------- */

static void test_bandit_finds_the_best_arm_and_drops_a_costly_one(void) {
  const double mean[4] = {1.00, 1.05, 0.85, 1.02};
  ace_bandit b;
  ace_bandit_init(&b, 4, ACE_UCB_GAMMA, ACE_UCB_C, ACE_UCB_DROP_MARGIN);
  for (int i = 0; i < 4; i++) {            /* every arm once, in order, first */
    unsigned a = ace_bandit_select(&b);
    CHECK_EQ(a, (unsigned)i);
    ace_bandit_update(&b, a, mean[a] + noise(0.01));
  }
  unsigned pulls[4] = {1, 1, 1, 1};
  for (int i = 0; i < 200; i++) {
    unsigned a = ace_bandit_select(&b);
    CHECK(a < 4);
    pulls[a]++;
    ace_bandit_update(&b, a, mean[a] + noise(0.01));
  }
  CHECK_EQ(ace_bandit_best(&b), 1u);
  /* Arm 2 (15 % worse) is dropped after ACE_BANDIT_DROP_PULLS pulls and readmitted
   * for another ACE_BANDIT_DROP_PULLS every ACE_BANDIT_READMIT pulls: a bounded cost. */
  unsigned bound = ACE_BANDIT_DROP_PULLS * (2 + 204 / ACE_BANDIT_READMIT);
  CHECK_MSG(pulls[2] <= bound, "arm 2 pulled %u times (bound %u)", pulls[2], bound);
  CHECK_MSG(b.dropped[2] || b.pulls[2] < ACE_BANDIT_DROP_PULLS, "arm 2 dropped or just readmitted");
  CHECK_MSG(pulls[1] > 120, "the best arm gets most pulls: %u of 204", pulls[1]);
}

static void test_bandit_follows_a_change(void) {
  double mean[3] = {1.00, 1.03, 0.99};
  ace_bandit b;
  ace_bandit_init(&b, 3, ACE_UCB_GAMMA, ACE_UCB_C, ACE_UCB_DROP_MARGIN);
  for (int i = 0; i < 100; i++) {
    unsigned a = ace_bandit_select(&b);
    ace_bandit_update(&b, a, mean[a] + noise(0.005));
  }
  CHECK_EQ(ace_bandit_best(&b), 1u);
  mean[1] = 0.98;                          /* the program changed: arm 2 is now best ... */
  mean[2] = 1.02;
  ace_bandit_reset(&b);                    /* ... the learner resets on a phase change */
  for (int i = 0; i < 100; i++) {
    unsigned a = ace_bandit_select(&b);
    ace_bandit_update(&b, a, mean[a] + noise(0.005));
  }
  CHECK_EQ(ace_bandit_best(&b), 2u);
  /* Without a reset, discounting and readmission do it: arm 0, dropped or merely
   * out of favour, becomes the best and the bandit moves to it. */
  mean[0] = 1.10;
  unsigned late0 = 0;
  for (int i = 0; i < 300; i++) {
    unsigned a = ace_bandit_select(&b);
    ace_bandit_update(&b, a, mean[a] + noise(0.005));
    if (i >= 200) late0 += a == 0;
  }
  CHECK_EQ(ace_bandit_best(&b), 0u);
  CHECK_MSG(late0 > 80, "arm 0 pulled %u of the last 100 times", late0);
}

/* One lucky window does not move the setting the learner sits on: a non-default arm
 * needs ACE_BANDIT_TRUST_PULLS pulls, or one pull more than ACE_BANDIT_BIG_WIN better. */
static void test_bandit_one_lucky_window_is_not_trusted(void) {
  ace_bandit b;
  ace_bandit_init(&b, 3, ACE_UCB_GAMMA, ACE_UCB_C, ACE_UCB_DROP_MARGIN);
  ace_bandit_update(&b, 0, 1.00);
  ace_bandit_update(&b, 1, 1.10);           /* 10 % better once: noise as far as we know */
  CHECK_EQ(ace_bandit_best(&b), 0u);
  ace_bandit_update(&b, 1, 1.06);           /* twice: trusted */
  CHECK_EQ(ace_bandit_best(&b), 1u);
  ace_bandit_update(&b, 2, 1.40);           /* 40 % better once: a big win counts at once */
  CHECK_EQ(ace_bandit_best(&b), 2u);
  /* Without a measured default, the best mean wins as before. */
  ace_bandit_init(&b, 3, ACE_UCB_GAMMA, ACE_UCB_C, ACE_UCB_DROP_MARGIN);
  ace_bandit_update(&b, 1, 1.00);
  ace_bandit_update(&b, 2, 1.05);
  CHECK_EQ(ace_bandit_best(&b), 2u);
}

static void test_bandit_never_leaves_its_arms(void) {
  ace_bandit b;
  ace_bandit_init(&b, 3, 0.9, 0.5, 0.01);
  for (int i = 0; i < 1000; i++) {
    unsigned a = ace_bandit_select(&b);
    CHECK(a < 3);
    if (a >= 3) return;
    ace_bandit_update(&b, a, noise(1.0));
  }
  unsigned live = 0;
  for (unsigned a = 0; a < 3; a++) live += !b.dropped[a];
  CHECK(live >= 1);                        /* the best arm is never dropped */
  ace_bandit_update(&b, 7, 1.0);           /* out of range: ignored */
  CHECK_EQ(b.narms, 3u);
}

/* ---- reward and signatures ------------------------------------------------------------ */

static void test_reward_normalised_with_penalties(void) {
  ace_metrics m;
  memset(&m, 0, sizeof m);
  m.ops_per_cpu_s = 2e7;
  m.llc_miss_rate = -1;
  CHECK(fabs(ace_reward(&m, 2e7, 0) - 1.0) < 1e-9);
  CHECK(fabs(ace_reward(&m, 1e7, 0) - 2.0) < 1e-9);
  m.lock_waits_per_s = 5000;               /* half the scale: -0.1 */
  CHECK(fabs(ace_reward(&m, 2e7, 0) - 0.9) < 1e-9);
  m.lock_waits_per_s = 1e9;                /* capped at the weight */
  CHECK(fabs(ace_reward(&m, 2e7, 0) - (1.0 - ACE_REWARD_W_LOCK)) < 1e-9);
  m.lock_waits_per_s = 0;
  m.remote_backlog = 65536;
  CHECK(fabs(ace_reward(&m, 2e7, 0) - (1.0 - ACE_REWARD_W_BACKLOG)) < 1e-9);
  m.remote_backlog = 0;
  m.llc_miss_rate = 0.5;
  CHECK(fabs(ace_reward(&m, 2e7, 0) - (1.0 - 0.5 * ACE_REWARD_W_LLC)) < 1e-9);
  m.llc_miss_rate = -1;
  m.rss_bytes = 150u << 20;                /* 50 % above the target */
  CHECK(fabs(ace_reward(&m, 2e7, 100u << 20) - (1.0 - 0.5 * ACE_REWARD_W_RSS)) < 1e-9);
  CHECK(fabs(ace_reward(&m, 2e7, 200u << 20) - 1.0) < 1e-9);   /* below: no penalty */
  CHECK_EQ(ace_reward(&m, 0, 0), 0.0);
}

/* Two scripted phases: A = tiny single-thread churn, B = mid-size cross-thread. */
static void phase_metrics(ace_metrics* m, char phase, double ops_per_cpu_s) {
  memset(m, 0, sizeof *m);
  m->dt_ns = 500000000;
  m->llc_miss_rate = -1;
  m->page_faults_per_s = -1;
  m->ops_per_cpu_s = ops_per_cpu_s;
  if (phase == 'A') {
    m->ops_per_s = 4e7;
    m->tier_ops[HAK_SEG_TINY] = 20000000;
    m->bytes_in_use = 8u << 20;
  } else {
    m->ops_per_s = 5e6;
    m->tier_ops[HAK_SEG_MID] = 2500000;
    m->remote_fraction = 0.9;
    m->bytes_in_use = 400u << 20;
  }
}

static void test_signatures_tell_phases_apart(void) {
  ace_metrics a, a2, b;
  phase_metrics(&a, 'A', 1e7);
  phase_metrics(&a2, 'A', 1e7);
  a2.ops_per_s *= 1.5;                     /* the same phase, a little faster */
  a2.bytes_in_use += 1u << 20;
  phase_metrics(&b, 'B', 1e7);
  ace_signature sa, sa2, sb;
  ace_signature_of(&a, &sa);
  ace_signature_of(&a2, &sa2);
  ace_signature_of(&b, &sb);
  CHECK(ace_signature_distance(&sa, &sa2) < ACE_PHASE_DISTANCE);
  CHECK(ace_signature_distance(&sa, &sb) > ACE_PHASE_DISTANCE);
  CHECK_EQ(ace_signature_distance(&sb, &sb), 0.0);
  /* A batch loop sampled between batches (nothing in use) and within one: one phase. */
  a2 = a;
  a.bytes_in_use = 0;
  a2.bytes_in_use = 12u << 20;
  ace_signature_of(&a, &sa);
  ace_signature_of(&a2, &sa2);
  CHECK(ace_signature_distance(&sa, &sa2) < 0.01);
}

/* ---- the learner, driving a simulated program -------------------------------------- */

/* The simulated program's speed under knobs k: phase A likes big thread caches (x4 is
 * 12 % faster than the default), phase B likes frequent remote drains (x0.25, +8 %)
 * and dislikes big caches (x4: -10 %). Other knobs do not matter. */
static double sim_speed(char phase, const hak_knobs* k, const hak_knobs* d) {
  double tls = (double)k->tls_cap[0] / d->tls_cap[0];
  double drain = (double)k->remote_drain_interval[40] / d->remote_drain_interval[40];
  double s = 1e7;
  if (phase == 'A') s *= tls >= 3.9 ? 1.12 : tls >= 1.9 ? 1.06 : tls <= 0.6 ? 0.9 : 1.0;
  else s *= (drain <= 0.3 ? 1.08 : drain >= 3.9 ? 0.97 : 1.0) * (tls >= 3.9 ? 0.9 : 1.0);
  return s * (1.0 + noise(0.01));
}

/* Every per-class value is the default times one of the group's scales. */
static bool knobs_in_candidate_set(const hak_knobs* k, const hak_knobs* d) {
  if (hak_knobs_validate(k) != 0) return false;
  static const unsigned group_of[3] = {ACE_GROUP_TLS, ACE_GROUP_BATCH, ACE_GROUP_DRAIN};
  for (unsigned c = 0; c < HAK_NCLS; c += 7) {
    const uint32_t v[3] = {k->tls_cap[c], k->refill_batch[c], k->remote_drain_interval[c]};
    const uint32_t dv[3] = {d->tls_cap[c], d->refill_batch[c], d->remote_drain_interval[c]};
    for (unsigned i = 0; i < 3; i++) {
      bool ok = false;
      for (unsigned a = 0; a < ACE_BANDIT_MAX_ARMS; a++) {
        double want = floor(dv[i] * ace_group_scale(group_of[i], a) + 0.5);
        if (fabs(want - v[i]) < 1.0 || v[i] == 1 || v[i] == ACE_MAX_TLS_CAP || v[i] == ACE_MAX_REFILL_BATCH ||
            v[i] == ACE_MIN_DRAIN_INTERVAL) ok = true;
      }
      if (!ok) return false;
    }
  }
  /* The growth budget moves with the caps: the same arm of the tls group. */
  for (unsigned a = 0; a < ACE_BANDIT_MAX_ARMS; a++) {
    double sc = ace_group_scale(ACE_GROUP_TLS, a);
    if (k->tls_cap[0] == (uint32_t)floor(d->tls_cap[0] * sc + 0.5) &&
        k->tls_grow_budget_bytes == (uint64_t)floor((double)d->tls_grow_budget_bytes * sc + 0.5)) return true;
  }
  return false;
}

static void test_learner_finds_each_phases_best_arm_and_remembers_it(void) {
  hak_knobs d = defaults(), k = d;
  ace_learner L;
  ace_learner_init(&L);
  ace_metrics m;
  char why[640];
  bool in_set = true;
  int switches = 0;
  for (int t = 0; t < 480; t++) {
    char phase = (t / 60) % 2 ? 'B' : 'A';            /* 30 s per phase at 500 ms */
    phase_metrics(&m, phase, sim_speed(phase, &k, &d));
    ace_rule_input in = {.m = &m, .defaults = &d};
    ace_learner_step(&L, &in, &k, why, sizeof why);
    in_set = in_set && knobs_in_candidate_set(&k, &d);
    if (t % 60 == 0 && t > 0) {
      switches++;
      CHECK_MSG(strstr(why, "phase change") != NULL, "tick %d: %s", t, why);
      if (t >= 240) {
        /* A known phase: its best arms come back at once. */
        CHECK_MSG(strstr(why, "known") != NULL, "tick %d: %s", t, why);
        if (phase == 'A') CHECK_MSG(k.tls_cap[0] == d.tls_cap[0] * 4, "A: tls_cap %u", k.tls_cap[0]);
        else CHECK_MSG(k.remote_drain_interval[40] == d.remote_drain_interval[40] / 4 && k.tls_cap[0] != d.tls_cap[0] * 4,
                       "B: drain %u tls %u", k.remote_drain_interval[40], k.tls_cap[0]);
      }
    }
  }
  CHECK_MSG(in_set, "every snapshot lies in the candidate set and validates");
  CHECK_EQ(L.phase_changes, (uint64_t)switches);
  int used = 0;
  for (int i = 0; i < ACE_CONTEXTS; i++) used += L.ctx[i].used;
  CHECK_EQ(used, 2);                                   /* two phases, two contexts */
}

/* A phase in which big thread caches win by far (a producer/consumer pair: x4 is 1.6x the
 * default's throughput, x2 1.25x, x0.5 0.8x; the other knobs do not matter). */
static double sim_big_win(const hak_knobs* k, const hak_knobs* d) {
  double tls = (double)k->tls_cap[0] / d->tls_cap[0];
  double s = 1e7 * (tls >= 3.9 ? 1.6 : tls >= 1.9 ? 1.25 : tls <= 0.6 ? 0.8 : 1.0);
  return s * (1.0 + noise(0.02));
}

/* The learner's own gain must not look like a drifting program: once x4 is found, the
 * arms tried before it (credited when the phase ran slower) must not look better than
 * it, so the learner stays on x4 except for the windows that explore the group. */
static void test_learner_keeps_a_big_win(void) {
  hak_knobs d = defaults(), k = d;
  ace_learner L;
  ace_learner_init(&L);
  ace_metrics m;
  char why[640];
  int on_x4 = 0, n = 0;
  for (int t = 0; t < 120; t++) {
    phase_metrics(&m, 'A', sim_big_win(&k, &d));
    ace_rule_input in = {.m = &m, .defaults = &d};
    ace_learner_step(&L, &in, &k, why, sizeof why);
    if (t >= 20) { n++; on_x4 += k.tls_cap[0] == d.tls_cap[0] * 4; }
  }
  CHECK_EQ(ace_group_scale(ACE_GROUP_TLS, ace_bandit_best(&L.ctx[L.cur].bandit[ACE_GROUP_TLS])), 4.0);
  CHECK_MSG(on_x4 * 100 >= n * 85, "x4 in force in %d of %d windows", on_x4, n);
}

/* Phases of a few windows each (bench/phases: 3 s at 500 ms, one of them the window of
 * the change): the big win is found within the first visit of its phase and is in force
 * from the first window of every later visit. */
static void test_learner_finds_a_big_win_within_a_short_phase(void) {
  hak_knobs d = defaults(), k = d;
  ace_learner L;
  ace_learner_init(&L);
  ace_metrics m;
  char why[640];
  int first_x4 = -1;
  for (int t = 0; t < 48; t++) {
    int ph = (t / 6) % 4;                    /* A, B, idle, idle */
    if (ph == 0) phase_metrics(&m, 'A', sim_big_win(&k, &d));
    else if (ph == 1) phase_metrics(&m, 'B', sim_speed('B', &k, &d));
    else { memset(&m, 0, sizeof m); m.dt_ns = 500000000; }
    ace_rule_input in = {.m = &m, .defaults = &d};
    ace_learner_step(&L, &in, &k, why, sizeof why);
    if (ph == 0 && first_x4 < 0 && k.tls_cap[0] == d.tls_cap[0] * 4) first_x4 = t;
    if (t == 24 || t == 25) CHECK_MSG(k.tls_cap[0] == d.tls_cap[0] * 4, "window %d of A's second visit: tls %u (%s)",
                                      t - 24, k.tls_cap[0], why);
  }
  CHECK_MSG(first_x4 == 1, "x4 first tried in window %d (the one after the credited defaults)", first_x4);
}

/* A program of short phases (six windows, as bench/phases at 3 s) with noisy windows:
 * in A the big thread caches win (x4 1.3x, x2 1.1x), in B the defaults are best and
 * every other arm costs 1-8 %. Averaged over 50 programs, the learner must gain most of
 * A's win and lose little in B to its exploration. */
static double sim_short(char ph, const hak_knobs* k, const hak_knobs* d, double* clean) {
  double tls = (double)k->tls_cap[0] / d->tls_cap[0];
  double rb = (double)k->refill_batch[0] / d->refill_batch[0];
  double dr = (double)k->remote_drain_interval[40] / d->remote_drain_interval[40];
  double sw = (double)k->sweep_interval / d->sweep_interval;
  double s = ph == 'A' ? (tls >= 3.9 ? 1.3 : tls >= 1.9 ? 1.1 : tls <= 0.6 ? 0.85 : 1.0)
                       : (tls >= 3.9 ? 0.92 : tls <= 0.6 ? 0.95 : 1.0);
  s *= rb >= 3.9 ? 0.97 : rb <= 0.6 ? 0.95 : rb >= 1.9 ? 0.99 : 1.0;
  s *= dr <= 0.3 ? 0.97 : dr >= 3.9 ? 0.98 : 1.0;
  s *= sw <= 0.3 ? 0.98 : sw >= 3.9 ? 0.99 : 1.0;
  *clean = s;
  return 1e7 * s * (1.0 + noise(0.1));
}

static void test_learner_pays_for_its_exploration_in_short_phases(void) {
  double tot[2] = {0, 0};
  int cnt[2] = {0, 0};
  for (int rep = 0; rep < 50; rep++) {
    hak_knobs d = defaults(), k = d;
    ace_learner L;
    ace_learner_init(&L);
    ace_metrics m;
    char why[640];
    for (int t = 0; t < 48; t++) {
      int ph = (t / 6) % 4;                  /* A, B, idle, idle: two rounds */
      double clean = 1;
      if (ph == 0) phase_metrics(&m, 'A', sim_short('A', &k, &d, &clean));
      else if (ph == 1) phase_metrics(&m, 'B', sim_short('B', &k, &d, &clean));
      else { memset(&m, 0, sizeof m); m.dt_ns = 500000000; }
      if (ph < 2) { tot[ph] += clean; cnt[ph]++; }
      ace_rule_input in = {.m = &m, .defaults = &d};
      ace_learner_step(&L, &in, &k, why, sizeof why);
    }
  }
  double a = tot[0] / cnt[0], b = tot[1] / cnt[1];
  CHECK_MSG(a >= 1.15, "A: %.3f of the defaults' speed (x4 is 1.3)", a);
  CHECK_MSG(b >= 0.965, "B: %.3f of the defaults' speed (the best)", b);
}

/* The tls arms scale the growth budget with the caps, clamped to its valid range: a
 * budget of 512 GiB times 4 is published as 1 TiB, not refused. */
static void test_learner_budget_arm_stays_valid(void) {
  hak_knobs d = defaults(), k;
  d.tls_grow_budget_bytes = 1ull << 39;
  k = d;
  ace_learner L;
  ace_learner_init(&L);
  ace_metrics m;
  char why[640];
  bool valid = true, saw_x4 = false;
  for (int t = 0; t < 120; t++) {
    phase_metrics(&m, 'A', sim_speed('A', &k, &d));
    ace_rule_input in = {.m = &m, .defaults = &d};
    ace_learner_step(&L, &in, &k, why, sizeof why);
    valid = valid && hak_knobs_validate(&k) == 0;
    if (k.tls_cap[0] == d.tls_cap[0] * 4) {
      saw_x4 = true;
      CHECK_EQ(k.tls_grow_budget_bytes, 1ull << 40);
    }
  }
  CHECK(valid);
  CHECK(saw_x4);
}

static void test_learner_idle_window_teaches_nothing(void) {
  hak_knobs d = defaults(), k = d;
  ace_learner L;
  ace_learner_init(&L);
  ace_metrics m;
  char why[640];
  phase_metrics(&m, 'A', 1e7);
  ace_rule_input in = {.m = &m, .defaults = &d};
  ace_learner_step(&L, &in, &k, why, sizeof why);
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK(L.pending_group >= 0);
  uint32_t pulls = 0;
  for (int g = 0; g < ACE_GROUPS; g++) pulls += L.ctx[L.cur].bandit[g].total_pulls;
  memset(&m, 0, sizeof m);                             /* idle: no operations */
  m.dt_ns = 500000000;
  hak_knobs before = k;
  CHECK_EQ(ace_learner_step(&L, &in, &k, why, sizeof why), 0);
  CHECK_EQ(memcmp(&before, &k, sizeof k), 0);
  CHECK_EQ(L.pending_group, -1);
  uint32_t after = 0;
  for (int g = 0; g < ACE_GROUPS; g++) after += L.ctx[L.cur].bandit[g].total_pulls;
  CHECK_EQ(after, pulls);
}

static void test_learner_leaves_pinned_groups_alone(void) {
  hak_knobs d = defaults(), k = d;
  ace_learner L;
  ace_learner_init(&L);
  ace_metrics m;
  char why[640];
  for (int t = 0; t < 100; t++) {
    phase_metrics(&m, 'A', sim_speed('A', &k, &d));
    ace_rule_input in = {.m = &m, .defaults = &d, .pinned = HAKMEM_ACE_PIN_TLS_CAP | HAKMEM_ACE_PIN_DRAIN};
    ace_learner_step(&L, &in, &k, why, sizeof why);
    CHECK_EQ(memcmp(k.tls_cap, d.tls_cap, sizeof k.tls_cap), 0);
    CHECK_EQ(memcmp(k.remote_drain_interval, d.remote_drain_interval, sizeof k.remote_drain_interval), 0);
    CHECK_EQ(k.sweep_interval, d.sweep_interval);
  }
  CHECK(memcmp(k.refill_batch, d.refill_batch, sizeof k.refill_batch) != 0 ||
        L.ctx[L.cur].bandit[ACE_GROUP_BATCH].total_pulls > 0);
}

/* A window of the large-block replacement pattern: 200 MiB/s of new large blocks
 * written whole (51,200 faults/s: 10 % of the CPU at 2 us). */
static void large_window(ace_metrics* m) {
  phase_metrics(m, 'B', 1e7);
  m->tier_ops[HAK_SEG_LARGE] = 1000;
  m->cpu_fraction = 1.0;
  m->large_fresh_bytes_per_s = 200.0 * 1048576;
  m->page_faults_per_s = 51200;
  m->sys_share = 0.4;
}

/* ace_rule_huge, through both policies that use it: huge pages for large blocks come
 * on only when new large blocks are written whole and their faults cost the program
 * time, for segments only when new segments are too and the heap is large and nearly
 * all resident; never without HAKMEM_HUGE_PAGES=auto; segments give theirs back when
 * the program idles, and everything goes off when RSS passes the target. */
static void test_huge_pages_for_large_blocks_written_whole(void) {
  hak_knobs d = defaults();
  ace_metrics m;
  char why[640];
  for (int policy = 0; policy < 2; policy++) {
    hak_knobs k = d;
    ace_learner L;
    ace_learner_init(&L);
    ace_rule_input in = {.m = &m, .defaults = &d, .huge_auto = true};
#define STEP() (policy ? ace_learner_step(&L, &in, &k, why, sizeof why) : ace_rules_apply(&in, &k, why, sizeof why))
    /* a few pages written of each block: 2 MiB pages would cost RSS, not save faults */
    large_window(&m);
    m.page_faults_per_s = 2000;            /* 8 MiB/s of 200 MiB/s */
    m.sys_share = 0.3;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    /* written whole, but the faults cost little (1 % of the CPU) */
    large_window(&m);
    m.sys_share = 0.01;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    /* too little new large memory to matter */
    large_window(&m);
    m.large_fresh_bytes_per_s = 8.0 * 1048576;
    m.page_faults_per_s = 2048;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    /* no page-fault count (no PMU): no evidence */
    large_window(&m);
    m.page_faults_per_s = -1;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    /* HAKMEM_HUGE_PAGES=off or on: not ACE's to change */
    large_window(&m);
    in.huge_auto = false;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    in.huge_auto = true;
    /* the pattern: on, and the reason says why */
    large_window(&m);
    CHECK(STEP() > 0);
    CHECK_EQ(k.huge_pages, 1u);
    CHECK_MSG(strstr(why, "huge pages: 200 MiB/s of new large blocks written whole, page faults about 10 %") != NULL,
              "reason: %s", why);
    CHECK_EQ(hak_knobs_validate(&k), 0);
    /* it stays on once the faults are gone (they are gone because of it) and while idle */
    large_window(&m);
    m.page_faults_per_s = 100;
    STEP();
    CHECK_EQ(k.huge_pages, 1u);
    memset(&m, 0, sizeof m);
    m.dt_ns = 500000000;
    STEP();
    CHECK_EQ(k.huge_pages, 1u);
    /* RSS above the target: off */
    large_window(&m);
    in.rss_target = 1u << 30;
    m.rss_bytes = 2u << 30;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    CHECK_MSG(strstr(why, "huge pages: RSS above target") != NULL, "reason: %s", why);
    STEP();                                /* and not on again while it stays there */
    CHECK_EQ(k.huge_pages, 0u);
    in.rss_target = 0;
    m.rss_bytes = 0;

    /* Segments (level 2): new segments written whole, the heap nearly all resident. */
    large_window(&m);
    m.large_fresh_bytes_per_s = 0;
    m.seg_fresh_bytes_per_s = 200.0 * 1048576;
    m.seg_bytes_live = 1ull << 30;
    m.seg_sample_bytes = 512u << 20;
    m.seg_sample_resident = (512u << 20) / 10 * 8;   /* 80 % resident: huge pages could add 25 % */
    m.rss_bytes = 2ull << 30;              /* not RSS: a big untouched block would hide a dense heap */
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    m.seg_bytes_live = 24u << 20;          /* dense but small: 2 MiB pages matter little */
    m.seg_sample_bytes = 24u << 20;
    m.seg_sample_resident = 24u << 20;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    m.seg_bytes_live = 1ull << 30;
    m.seg_sample_bytes = 512u << 20;
    m.seg_sample_resident = (512u << 20) / 100 * 95;
    m.rss_bytes = 1u << 20;
    m.page_faults_per_s = 10000;           /* 39 MiB/s of 200: the segments are not written whole */
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    m.page_faults_per_s = 51200;
    in.huge_auto = false;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    in.huge_auto = true;
    CHECK(STEP() > 0);
    CHECK_EQ(k.huge_pages, 2u);
    CHECK_MSG(strstr(why, "huge pages: 200 MiB/s of new segments written whole, 95 % of them resident") != NULL,
              "reason: %s", why);
    CHECK_EQ(hak_knobs_validate(&k), 0);
    /* an active window without faults keeps it; an idle one takes segments back to 1 */
    large_window(&m);
    m.page_faults_per_s = 10;
    STEP();
    CHECK_EQ(k.huge_pages, 2u);
    memset(&m, 0, sizeof m);
    m.dt_ns = 500000000;
    STEP();
    CHECK_EQ(k.huge_pages, 1u);
    CHECK_MSG(strstr(why, "huge pages: idle: segments give") != NULL, "reason: %s", why);
    STEP();                                /* idle again: large blocks keep theirs */
    CHECK_EQ(k.huge_pages, 1u);
    /* page faults waiting for the kernel to compact memory: off, and not on again
     * while they last, whatever the faults cost */
    large_window(&m);
    m.compact_stalls_per_s = 12;
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    CHECK_MSG(strstr(why, "huge pages: 12 page faults/s waited for the kernel to compact memory") != NULL,
              "reason: %s", why);
    STEP();
    CHECK_EQ(k.huge_pages, 0u);
    m.compact_stalls_per_s = 1;            /* a few: the pattern turns them on again */
    STEP();
    CHECK_EQ(k.huge_pages, 1u);
#undef STEP
  }
}

static void test_keep_or_return_follows_refaults_and_idleness(void) {
  hak_knobs d = defaults(), k = d;
  ace_learner L;
  ace_learner_init(&L);
  ace_metrics m;
  char why[640];
  ace_rule_input in = {.m = &m, .defaults = &d, .pinned = HAKMEM_ACE_PIN_TLS_CAP | HAKMEM_ACE_PIN_REFILL_BATCH |
                                                          HAKMEM_ACE_PIN_DRAIN};
  /* Faults that cost the program little keep nothing more: the memory would cost more
   * than the faults. Many faults while the kernel takes 4 % of the CPU (mid_mt); the
   * kernel busy (sched_yield) while a few refaults cost 0.12 %. */
  for (int i = 0; i < 6; i++) {
    phase_metrics(&m, 'B', 1e7);
    m.cpu_fraction = 1.0;
    m.refault_bytes_per_s = 50.0 * 1048576;
    m.page_faults_per_s = 100000;                       /* 20 % of the CPU at 2 us */
    m.sys_share = 0.04;
    CHECK(fabs(ace_fault_share(&m) - 0.04) < 1e-9);
    if (i % 2) {
      m.refault_bytes_per_s = 2.0 * 1048576;            /* 512 pages of 600 faults: 0.12 % */
      m.page_faults_per_s = 600;
      m.sys_share = 0.5;
      CHECK(fabs(ace_fault_share(&m) - 0.0012) < 1e-9);
    }
    ace_learner_step(&L, &in, &k, why, sizeof why);
    CHECK_EQ(L.keep_level, 0u);
    CHECK_MSG(strstr(why, "keep") == NULL, "reason: %s", why);
  }
  CHECK_EQ(k.purge_delay_ms, d.purge_delay_ms);
  for (unsigned lv = 1; lv <= ACE_KEEP_LEVELS + 2; lv++) {
    phase_metrics(&m, 'B', 1e7);
    m.refault_bytes_per_s = 50.0 * 1048576;            /* released memory faulted back, */
    m.cpu_fraction = 0.256;                            /* 12,800 pages: 10 % of the CPU */
    m.sys_share = 0.3;
    ace_learner_step(&L, &in, &k, why, sizeof why);
    if (lv == 1) CHECK_MSG(strstr(why, "refaults 50 MiB/s, about 10 % of the CPU") != NULL, "reason: %s", why);
    unsigned want = lv < ACE_KEEP_LEVELS ? lv : ACE_KEEP_LEVELS;
    CHECK_EQ(L.keep_level, want);
  }
  CHECK(strstr(why, "keep") == NULL || strstr(why, "keep more") != NULL);
  CHECK_EQ(k.purge_delay_ms, d.purge_delay_ms * 256 < ACE_KEEP_MAX_DELAY_MS ? d.purge_delay_ms * 256
                                                                            : ACE_KEEP_MAX_DELAY_MS);
  CHECK(k.large_cache_bytes > d.large_cache_bytes);
  CHECK(k.large_cache_dirty_bytes > d.large_cache_dirty_bytes);
  CHECK(k.segment_cache_dirty_bytes > d.segment_cache_dirty_bytes);
  CHECK_EQ(k.partial_release_pages, d.partial_release_pages << ACE_KEEP_LEVELS);
  CHECK_EQ(hak_knobs_validate(&k), 0);
  /* The program idles: everything back to the defaults in one window. */
  memset(&m, 0, sizeof m);
  m.dt_ns = 500000000;
  CHECK_EQ(ace_learner_step(&L, &in, &k, why, sizeof why), 1);
  CHECK_MSG(strstr(why, "idle") != NULL, "reason: %s", why);
  CHECK_EQ(L.keep_level, 0u);
  CHECK_EQ(k.purge_delay_ms, d.purge_delay_ms);
  CHECK_EQ(k.large_cache_bytes, d.large_cache_bytes);
  CHECK_EQ(k.large_cache_dirty_bytes, d.large_cache_dirty_bytes);
  CHECK_EQ(k.segment_cache_dirty_bytes, d.segment_cache_dirty_bytes);
  CHECK_EQ(k.segment_cache_bytes, d.segment_cache_bytes);
  CHECK_EQ(k.partial_release_pages, d.partial_release_pages);
  /* Quiet active windows lower the level one step per ACE_KEEP_DECAY_TICKS. */
  phase_metrics(&m, 'B', 1e7);
  m.refault_bytes_per_s = 50.0 * 1048576;
  m.cpu_fraction = 0.256;
  m.sys_share = 0.3;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 1u);
  m.refault_bytes_per_s = 0;
  for (int i = 0; i < ACE_KEEP_DECAY_TICKS - 1; i++) ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 1u);
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 0u);
  /* RSS above the target: back at once, even with refaults. */
  m.refault_bytes_per_s = 50.0 * 1048576;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 1u);
  m.rss_bytes = 2u << 30;
  in.rss_target = 1u << 30;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 0u);
  CHECK_MSG(strstr(why, "RSS above target") != NULL, "reason: %s", why);
  /* ... and reused large spans give their surplus back (ace_rule_large_keep). */
  CHECK_EQ(k.large_reuse_slack_pct, 0u);
  CHECK_MSG(strstr(why, "reuse slack 50 % -> 0") != NULL, "reason: %s", why);
  CHECK_EQ(k.large_cache_dirty_bytes, ACE_LARGE_DIRTY_FLOOR);      /* no room: the floor */
  m.rss_bytes = 1u << 29;                              /* well under: they climb back */
  m.refault_bytes_per_s = 0;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(k.large_cache_dirty_bytes, 2 * ACE_LARGE_DIRTY_FLOOR);   /* the cap first */
  CHECK_EQ(k.large_reuse_slack_pct, 0u);
  for (int i = 0; i < 8 && k.large_reuse_slack_pct == 0; i++) ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(k.large_reuse_slack_pct, ACE_SLACK_FIRST);
  CHECK_EQ(k.large_cache_dirty_bytes, 512ull << 20);
  /* A keep level above 0 under an RSS target: refaults give the large cache 4x the
   * default; RSS near the target caps it at the room; once RSS falls the cap climbs
   * back to the keep level's 2 GiB, not to the default's 512 MiB. */
  in.rss_target = 4ull << 30;
  m.rss_bytes = 256ull << 20;
  m.refault_bytes_per_s = 50.0 * 1048576;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 1u);
  CHECK_EQ(k.large_cache_dirty_bytes, 2048ull << 20);
  m.refault_bytes_per_s = 0;
  m.rss_bytes = (4ull << 30) - (100ull << 20);          /* nothing of it in the large cache */
  m.large_cache_resident = 0;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 1u);
  CHECK_EQ(k.large_cache_dirty_bytes, 100ull << 20);    /* the room the target leaves */
  m.rss_bytes = 256ull << 20;
  uint64_t seen = 0;
  for (int i = 0; i < 8; i++) {
    ace_learner_step(&L, &in, &k, why, sizeof why);
    CHECK(k.large_cache_dirty_bytes >= seen);           /* it only climbs */
    seen = k.large_cache_dirty_bytes;
  }
  CHECK_EQ(L.keep_level, 1u);
  CHECK_EQ(k.large_cache_dirty_bytes, 2048ull << 20);
  memset(&m, 0, sizeof m);                             /* idle: back to the defaults */
  m.dt_ns = 500000000;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 0u);
  CHECK_EQ(k.large_cache_dirty_bytes, d.large_cache_dirty_bytes);
  /* Pinned scavenging: the keep level is not the learner's to change. */
  in.pinned |= HAKMEM_ACE_PIN_SCAVENGE;
  in.rss_target = 0;
  k = d;
  ace_learner_step(&L, &in, &k, why, sizeof why);
  CHECK_EQ(L.keep_level, 0u);
  CHECK_EQ(k.purge_delay_ms, d.purge_delay_ms);
}

/* ---- the idle hold (idle_hold.c) ---------------------------------------------------- */

/* One window of the scripted bursty program: idle (nothing runs; the scavenger gave
 * back `back` bytes after the window before) or a burst with `faults` page faults. */
static uint64_t hold_window(ace_policy_state* ps, const hak_knobs* d, hak_knobs* k, bool burst, uint64_t back,
                            double faults, uint64_t rss_target, uint64_t rss, char* why, size_t n) {
  ace_metrics m;
  memset(&m, 0, sizeof m);
  m.dt_ns = 500000000;
  m.llc_miss_rate = -1;
  m.page_faults_per_s = faults * 2;                    /* per second of a 500 ms window */
  m.rss_bytes = rss;
  if (burst) {
    m.ops_per_s = 2e6;
    m.ops_per_cpu_s = 2e7;
    m.cpu_fraction = 0.1;
  }
  ace_rule_input in = {.m = &m, .defaults = d, .scavenged_last = back, .rss_target = rss_target,
                       .pinned = HAKMEM_ACE_PIN_TLS_CAP | HAKMEM_ACE_PIN_REFILL_BATCH | HAKMEM_ACE_PIN_DRAIN};
  ace_scavenge_plan plan;
  ace_policy_step(ps, &in, k, why, n, &plan);
  if (ps->policy != HAKMEM_ACE_POLICY_DECAY) CHECK_EQ(plan.cache_delay_ns, plan.delay_ns);
  return plan.delay_ns / 1000000u;
}

static void test_idle_hold_learns_from_faults_after_idle(void) {
  hak_knobs d = defaults();
  const uint64_t base = d.purge_delay_ms;
  const uint32_t policies[] = {HAKMEM_ACE_POLICY_RULES, HAKMEM_ACE_POLICY_UCB1, HAKMEM_ACE_POLICY_RESIZE};
  char why[640];
  for (unsigned p = 0; p < 3; p++) {
    hak_knobs k = d;
    ace_policy_state ps;
    ace_policy_init(&ps, policies[p]);
    /* Bursts with idle spells of 1 s that give nothing back: the hold stays. */
    for (int i = 0; i < 6; i++) {
      CHECK_EQ(hold_window(&ps, &d, &k, i % 3 == 0, 0, 500, 0, 0, why, sizeof why), base);
    }
    /* A 1 s spell gives back 2 MiB, the burst after it faults 1 MiB in: the hold grows
     * to twice the spell (more than 4x the purge delay), said in the reason. (What the
     * scavenger gave back after a burst's window counts from the next idle window on.) */
    CHECK_EQ(hold_window(&ps, &d, &k, true, 0, 0, 0, 0, why, sizeof why), base);
    CHECK_EQ(hold_window(&ps, &d, &k, false, 0, 0, 0, 0, why, sizeof why), base);
    CHECK_EQ(hold_window(&ps, &d, &k, false, 2u << 20, 0, 0, 0, why, sizeof why), base);
    CHECK_EQ(hold_window(&ps, &d, &k, true, 0, 256, 0, 0, why, sizeof why), 2000u);
    CHECK_MSG(strstr(why, "idle hold: 2.0 MiB given back while idle, 1.0 MiB of it faulted back in") != NULL,
              "reason: %s", why);
    /* The next spells give back again, each burst faults it back: 4x, up to the cap. */
    uint64_t want = 2000;
    for (int round = 0; round < 3; round++) {
      hold_window(&ps, &d, &k, false, 0, 0, 0, 0, why, sizeof why);
      hold_window(&ps, &d, &k, false, 1u << 20, 0, 0, 0, why, sizeof why);
      want = want * 4 < ACE_IDLE_HOLD_MAX_MS ? want * 4 : ACE_IDLE_HOLD_MAX_MS;
      CHECK_EQ(hold_window(&ps, &d, &k, true, 0, 100, 0, 0, why, sizeof why), want);
    }
    CHECK_EQ(want, (uint64_t)ACE_IDLE_HOLD_MAX_MS);
    /* Too little given back to judge (under ACE_IDLE_HOLD_MIN_BYTES): no change. */
    hold_window(&ps, &d, &k, false, ACE_IDLE_HOLD_MIN_BYTES / 2, 0, 0, 0, why, sizeof why);
    CHECK_EQ(hold_window(&ps, &d, &k, true, 0, 0, 0, 0, why, sizeof why), (uint64_t)ACE_IDLE_HOLD_MAX_MS);
    CHECK(strstr(why, "idle hold") == NULL);
    /* A spell whose memory stays away (a quarter or less comes back within the judging
     * windows, also when the activity lasts): the hold halves, back down to the purge delay. */
    uint64_t h = ACE_IDLE_HOLD_MAX_MS;
    while (h > base) {
      hold_window(&ps, &d, &k, false, 0, 0, 0, 0, why, sizeof why);
      hold_window(&ps, &d, &k, false, 4u << 20, 0, 0, 0, why, sizeof why);
      hold_window(&ps, &d, &k, true, 0, 100, 0, 0, why, sizeof why);          /* 400 KiB of 4 MiB */
      uint64_t got = hold_window(&ps, &d, &k, true, 0, 100, 0, 0, why, sizeof why);
      h = h / 2 > base ? h / 2 : base;
      CHECK_EQ(got, h);
      CHECK_MSG(strstr(why, "stayed away") != NULL, "reason: %s", why);
    }
    /* Refaults count too where no PMU reads the faults (page_faults_per_s < 0). */
    ace_metrics m;
    hold_window(&ps, &d, &k, false, 0, 0, 0, 0, why, sizeof why);
    hold_window(&ps, &d, &k, false, 1u << 20, 0, 0, 0, why, sizeof why);
    memset(&m, 0, sizeof m);
    m.dt_ns = 500000000;
    m.page_faults_per_s = -1;
    m.llc_miss_rate = -1;
    m.ops_per_s = 2e6;
    m.refault_bytes_per_s = 1048576.0;                  /* 512 KiB of 1 MiB in the window */
    ace_rule_input in = {.m = &m, .defaults = &d, .pinned = HAKMEM_ACE_PIN_TLS_CAP | HAKMEM_ACE_PIN_REFILL_BATCH |
                                                             HAKMEM_ACE_PIN_DRAIN};
    ace_scavenge_plan plan;
    ace_policy_step(&ps, &in, &k, why, sizeof why, &plan);
    CHECK_EQ(plan.delay_ns, 2000u * 1000000u);           /* twice the 1 s spell */
    /* RSS above its target: the hold goes at once. */
    CHECK_EQ(hold_window(&ps, &d, &k, false, 0, 0, 100u << 20, 200u << 20, why, sizeof why), base);
    CHECK_MSG(strstr(why, "idle hold: RSS above target") != NULL, "reason: %s", why);
    /* Scavenging pinned: no hold at all. */
    hold_window(&ps, &d, &k, false, 2u << 20, 0, 0, 0, why, sizeof why);
    m.page_faults_per_s = 1e6;
    in.pinned |= HAKMEM_ACE_PIN_SCAVENGE;
    ace_policy_step(&ps, &in, &k, why, sizeof why, &plan);
    CHECK_EQ(plan.delay_ns, (uint64_t)k.purge_delay_ms * 1000000u);
  }
  /* static and decay have no hold. */
  const uint32_t others[] = {HAKMEM_ACE_POLICY_STATIC, HAKMEM_ACE_POLICY_DECAY};
  for (unsigned p = 0; p < 2; p++) {
    hak_knobs k = d;
    ace_policy_state ps;
    ace_policy_init(&ps, others[p]);
    for (int i = 0; i < 8; i++) {
      uint64_t ms = hold_window(&ps, &d, &k, i % 2, i % 2 ? 0 : 4u << 20, 2000, 0, 0, why, sizeof why);
      CHECK(ms <= (others[p] == HAKMEM_ACE_POLICY_STATIC ? base : ACE_DECAY_MS / 2));
    }
  }
}

/* ---- the other policies ------------------------------------------------------------- */

static void test_policy_static_changes_nothing(void) {
  hak_knobs d = defaults(), k = d;
  ace_policy_state ps;
  ace_policy_init(&ps, HAKMEM_ACE_POLICY_STATIC);
  CHECK_EQ(ps.policy, HAKMEM_ACE_POLICY_STATIC);
  CHECK(strcmp(ace_policy_name(ps.policy), "static") == 0);
  ace_metrics m;
  char why[640];
  ace_scavenge_plan plan;
  for (int t = 0; t < 50; t++) {
    phase_metrics(&m, t % 2 ? 'A' : 'B', 1e7);
    m.backlog[40] = 100000;              /* pressures the rules would act on */
    m.lock_waits_per_s = 1e6;
    ace_rule_input in = {.m = &m, .defaults = &d};
    CHECK_EQ(ace_policy_step(&ps, &in, &k, why, sizeof why, &plan), 0);
  }
  CHECK_EQ(memcmp(&k, &d, sizeof k), 0);
  CHECK_EQ(plan.delay_ns, (uint64_t)d.purge_delay_ms * 1000000u);
  CHECK_EQ(plan.max_bytes, UINT64_MAX);
  /* DEFAULT resolves to a real policy. */
  ace_policy_init(&ps, HAKMEM_ACE_POLICY_DEFAULT);
  CHECK_EQ(ps.policy, (uint32_t)ACE_POLICY_DEFAULT);
  CHECK(strcmp(ace_policy_name(HAKMEM_ACE_POLICY_UCB1), "ucb1") == 0);
}

static void test_policy_decay_returns_a_smooth_fraction(void) {
  hak_knobs d = defaults(), k = d;
  ace_policy_state ps;
  ace_policy_init(&ps, HAKMEM_ACE_POLICY_DECAY);
  ace_metrics m;
  memset(&m, 0, sizeof m);
  m.dt_ns = 500000000;
  m.unused_resident = 100u << 20;
  char why[640];
  ace_scavenge_plan plan;
  ace_rule_input in = {.m = &m, .defaults = &d};
  CHECK_EQ(ace_policy_step(&ps, &in, &k, why, sizeof why, &plan), 1);      /* purge delay once */
  CHECK_EQ(k.purge_delay_ms, ACE_DECAY_MS);
  CHECK_MSG(strstr(why, "decay") != NULL, "reason: %s", why);
  double want = (100u << 20) * (1.0 - exp(-500.0 / ACE_DECAY_MS));
  CHECK_MSG(fabs((double)plan.max_bytes - want) < 2, "max %llu want %.0f", (unsigned long long)plan.max_bytes, want);
  CHECK_EQ(plan.delay_ns, 0u);
  CHECK_EQ(plan.cache_delay_ns, (uint64_t)ACE_DECAY_MS * 1000000u / 2);
  CHECK_EQ(ace_policy_step(&ps, &in, &k, why, sizeof why, &plan), 0);      /* then the curve only */
  m.dt_ns = 5000000000ull;                                                 /* a longer window: more */
  ace_policy_step(&ps, &in, &k, why, sizeof why, &plan);
  CHECK(plan.max_bytes > (uint64_t)want * 5);
  CHECK(plan.max_bytes < (100u << 20));
  /* Free space inside slabs in use counts too: RSS 300 MiB, 100 MiB in blocks. */
  m.dt_ns = 500000000;
  m.rss_bytes = 300u << 20;
  m.bytes_in_use = 100u << 20;
  ace_policy_step(&ps, &in, &k, why, sizeof why, &plan);
  CHECK_MSG(fabs((double)plan.max_bytes - 2 * want) < 4, "max %llu want %.0f", (unsigned long long)plan.max_bytes,
            2 * want);
  m.rss_bytes = m.bytes_in_use = 0;
  m.unused_resident = 0;
  ace_policy_step(&ps, &in, &k, why, sizeof why, &plan);
  CHECK_EQ(plan.max_bytes, 0u);                                            /* nothing to return */
}

static void test_policy_resize_grows_missing_classes_and_shrinks_idle_ones(void) {
  hak_knobs d = defaults(), k = d;
  ace_policy_state ps;
  ace_policy_init(&ps, HAKMEM_ACE_POLICY_RESIZE);
  ace_metrics m;
  memset(&m, 0, sizeof m);
  m.dt_ns = 500000000;
  const unsigned hot = 2, idle = 5, busy_ok = 3;       /* 48 B; 96 B; 64 B */
  char why[640];
  ace_scavenge_plan plan;
  ace_rule_input in = {.m = &m, .defaults = &d};
  for (int t = 0; t < 40; t++) {
    for (unsigned c = 0; c < HAK_NCLS; c++) { m.allocs[c] = m.frees[c] = 0; m.slow_rate[c] = 0; }
    m.allocs[hot] = m.frees[hot] = 100000;
    m.slow_rate[hot] = 0.03;                           /* overflows its cache */
    m.allocs[busy_ok] = m.frees[busy_ok] = 100000;
    m.slow_rate[busy_ok] = 0.001;                      /* fine as it is */
    ace_policy_step(&ps, &in, &k, why, sizeof why, &plan);
    if (t == 0) CHECK_MSG(strstr(why, "resize") != NULL, "reason: %s", why);
  }
  uint32_t max = ACE_RESIZE_MAX_BYTES / hak_cls_size[hot];
  if (max > ACE_MAX_TLS_CAP) max = ACE_MAX_TLS_CAP;
  CHECK_EQ(k.tls_cap[hot], max < d.tls_cap[hot] ? d.tls_cap[hot] : max);   /* grown to its bound */
  CHECK_EQ(k.tls_cap[busy_ok], d.tls_cap[busy_ok]);
  CHECK_EQ(k.tls_cap[idle], d.tls_cap[idle] / 4 ? d.tls_cap[idle] / 4 : 1); /* shrunk to its floor */
  CHECK_EQ(hak_knobs_validate(&k), 0);
  CHECK_EQ(memcmp(k.refill_batch, d.refill_batch, sizeof k.refill_batch), 0);
}

/* ---- configuration ------------------------------------------------------------------ */

static void test_policy_configuration(void) {
  hakmem_ace_config_t c;
  c.size = sizeof c;
  CHECK_EQ(hakmem_ace_config_get(&c), 0);
  hakmem_ace_config_t bad = c;
  bad.policy = HAKMEM_ACE_POLICY_UCB1 + 1;
  errno = 0;
  CHECK_EQ(hakmem_ace_config(&bad), -1);
  CHECK_EQ(errno, EINVAL);
  hakmem_ace_config_t now;
  now.size = sizeof now;
  CHECK_EQ(hakmem_ace_config_get(&now), 0);
  CHECK_EQ(now.policy, c.policy);                      /* nothing changed */
  hakmem_ace_config_t good = c;
  good.policy = HAKMEM_ACE_POLICY_DECAY;
  CHECK_EQ(hakmem_ace_config(&good), 0);
  CHECK_EQ(hakmem_ace_config_get(&now), 0);
  CHECK_EQ(now.policy, HAKMEM_ACE_POLICY_DECAY);
  CHECK_EQ(hakmem_ace_config(&c), 0);
  /* The state struct of version 1 (without the policy) is still filled. */
  hakmem_ace_state_t s;
  memset(&s, 0xff, sizeof s);
  s.size = (uint32_t)offsetof(hakmem_ace_state_t, policy);
  CHECK_EQ(hakmem_ace_state_get(&s), 0);
  CHECK_EQ(s.size, (uint32_t)offsetof(hakmem_ace_state_t, policy));
  CHECK_EQ(s.policy, 0xffffffffu);                     /* beyond the caller's size: untouched */
  CHECK_EQ(s.version, (uint32_t)HAKMEM_ACE_STATE_VERSION);
}

/* HAKMEM_ACE_POLICY by name, by number, and a bad value (message, default kept). */
static void test_policy_from_the_environment(void) {
  const char* cases[][2] = {{"ucb1", "5"}, {"decay", "3"}, {"2", "2"}, {"bogus", "0"}, {"9", "0"}};
  for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int fds[2];
    if (pipe(fds) != 0) { CHECK(0); return; }
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 2);
      setenv("HAKMEM_ACE_POLICY", cases[i][0], 1);
      setenv("HAKMEM_ACE_ENABLED", "0", 1);
      execl("/proc/self/exe", "unit_ace_learn", "--print-policy", (char*)NULL);
      _exit(99);
    }
    close(fds[1]);
    char out[4096] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char want[32];
    snprintf(want, sizeof want, "policy=%s\n", cases[i][1]);
    CHECK_MSG(strstr(out, want) != NULL, "HAKMEM_ACE_POLICY=%s: %s", cases[i][0], out);
    bool bad = strcmp(cases[i][1], "0") == 0;
    CHECK_MSG(!bad || strstr(out, "HAKMEM_ACE_POLICY") != NULL, "a bad value is reported: %s", out);
  }
}


int main(int argc, char** argv) {
  hak_free(hak_malloc(16));   /* links the API's object, whose constructor starts the runtime */
  if (argc > 1 && strcmp(argv[1], "--print-policy") == 0) {
    hakmem_ace_config_t c;
    c.size = sizeof c;
    if (hakmem_ace_config_get(&c) != 0) return 1;
    fprintf(stderr, "policy=%u\n", c.policy);
    return 0;
  }
  ht_init(argc, argv);
  HT_RUN(test_bandit_finds_the_best_arm_and_drops_a_costly_one);
  HT_RUN(test_bandit_follows_a_change);
  HT_RUN(test_bandit_never_leaves_its_arms);
  HT_RUN(test_bandit_one_lucky_window_is_not_trusted);
  HT_RUN(test_reward_normalised_with_penalties);
  HT_RUN(test_signatures_tell_phases_apart);
  HT_RUN(test_learner_finds_each_phases_best_arm_and_remembers_it);
  HT_RUN(test_learner_idle_window_teaches_nothing);
  HT_RUN(test_learner_leaves_pinned_groups_alone);
  HT_RUN(test_keep_or_return_follows_refaults_and_idleness);
  HT_RUN(test_idle_hold_learns_from_faults_after_idle);
  HT_RUN(test_policy_static_changes_nothing);
  HT_RUN(test_policy_decay_returns_a_smooth_fraction);
  HT_RUN(test_policy_resize_grows_missing_classes_and_shrinks_idle_ones);
  HT_RUN(test_learner_budget_arm_stays_valid);
  HT_RUN(test_learner_keeps_a_big_win);
  HT_RUN(test_learner_finds_a_big_win_within_a_short_phase);
  HT_RUN(test_learner_pays_for_its_exploration_in_short_phases);
  HT_RUN(test_huge_pages_for_large_blocks_written_whole);
  HT_RUN(test_policy_configuration);
  HT_RUN(test_policy_from_the_environment);
  return ht_report();
}
