/* policy.c — the policies side by side (HAKMEM_ACE_POLICY, hakmem_ace_config().policy).
 * Each one is a pure step over the window's metrics and the knobs; the controller
 * publishes what it returns and runs the scavenger as its plan says.
 *
 *   static  the defaults, never changed; the scavenger returns memory unused for the
 *           purge delay (the baseline every other policy is measured against)
 *   rules   rules.c: backlog -> drain more often, LLC misses or RSS -> diet, lock waits
 *           -> wider bundles, each back toward its default when the pressure is gone
 *   decay   jemalloc's idea: unused memory goes back on a smooth time curve. Each tick
 *           returns the fraction 1 - exp(-dt / ACE_DECAY_MS) of the resident bytes that
 *           hold no block (RSS - bytes in use, at least the unused slabs and caches),
 *           whatever their age; caches keep what was used in the last half of
 *           the decay time. Knobs otherwise static.
 *   resize  tcmalloc's idea: a class whose thread cache sends more than 1 % of its
 *           operations to the slow path grows its cache by 1.5x (at most 256 KiB of
 *           blocks); a class without operations shrinks by 0.75x toward a quarter of
 *           its default. Fixed ratios, nothing else steered.
 *   ucb1    learner.c: per-phase bandits over the knob groups, keep-or-return.
 * rules, resize and ucb1 also learn the scavenger's idle hold (idle_hold.c). */
#include "ace/ace.h"

#include "base/fmath.h"
#include <stdio.h>
#include <string.h>

const char* ace_policy_name(uint32_t p) {
  switch (p) {
    case HAKMEM_ACE_POLICY_STATIC: return "static";
    case HAKMEM_ACE_POLICY_RULES: return "rules";
    case HAKMEM_ACE_POLICY_DECAY: return "decay";
    case HAKMEM_ACE_POLICY_RESIZE: return "resize";
    case HAKMEM_ACE_POLICY_UCB1: return "ucb1";
    default: return "default";
  }
}

void ace_policy_init(ace_policy_state* ps, uint32_t policy) {
  memset(ps, 0, sizeof *ps);
  ps->policy = policy == HAKMEM_ACE_POLICY_DEFAULT ? ACE_POLICY_DEFAULT : policy;
  ace_learner_init(&ps->learner);
  ace_idle_hold_init(&ps->hold);
}

static int resize_step(const ace_rule_input* in, hak_knobs* k, char* reason, size_t n) {
  if (in->pinned & HAKMEM_ACE_PIN_TLS_CAP) return 0;
  const ace_metrics* m = in->m;
  unsigned grown = 0, shrunk = 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    uint32_t v = k->tls_cap[c], def = in->defaults->tls_cap[c];
    uint64_t ops = m->allocs[c] + m->frees[c];
    if (ops >= ACE_RESIZE_MIN_OPS && m->slow_rate[c] > ACE_RESIZE_SLOW_RATE) {
      uint64_t max = ACE_RESIZE_MAX_BYTES / hak_cls_size[c];
      if (max < def) max = def;
      if (max > ACE_MAX_TLS_CAP) max = ACE_MAX_TLS_CAP;
      uint32_t nv = (uint32_t)((double)v * ACE_RESIZE_GROW + 0.5);
      if (nv > max) nv = (uint32_t)max;
      if (nv > v) { k->tls_cap[c] = nv; grown++; }
    } else if (ops == 0 && v > def / 4 && v > 1) {
      uint32_t floor_ = def / 4 ? def / 4 : 1;
      uint32_t nv = (uint32_t)((double)v * ACE_RESIZE_SHRINK);
      if (nv < floor_) nv = floor_;
      if (nv < v) { k->tls_cap[c] = nv; shrunk++; }
    }
  }
  if (grown + shrunk && n) {
    snprintf(reason, n, "resize: %u class cache(s) grown x%.1f (slow paths > %.0f %%), %u idle one(s) shrunk x%.2f",
             grown, ACE_RESIZE_GROW, ACE_RESIZE_SLOW_RATE * 100, shrunk, ACE_RESIZE_SHRINK);
  }
  return (grown + shrunk) != 0;
}

/* rules, resize and ucb1: the scavenger waits the idle hold (idle_hold.c), when longer
 * than the purge delay. */
static int with_idle_hold(ace_policy_state* ps, const ace_rule_input* in, uint64_t base_ms, char* reason,
                          size_t n, ace_scavenge_plan* plan, int changed) {
  if (in->pinned & HAKMEM_ACE_PIN_SCAVENGE) return changed;
  ace_reasons r = {reason, n, n ? strlen(reason) : 0};
  uint64_t hold_ns = ace_idle_hold_step(&ps->hold, in, base_ms, &r) * 1000000u;
  if (plan->delay_ns < hold_ns) plan->delay_ns = hold_ns;
  if (plan->cache_delay_ns < hold_ns) plan->cache_delay_ns = hold_ns;
  return changed;
}

int ace_policy_step(ace_policy_state* ps, const ace_rule_input* in, hak_knobs* k, char* reason, size_t n,
                    ace_scavenge_plan* plan) {
  if (n) reason[0] = 0;
  uint64_t base_ms = k->purge_delay_ms;
  plan->delay_ns = plan->cache_delay_ns = base_ms * 1000000u;
  plan->max_bytes = UINT64_MAX;
  switch (ps->policy) {
    case HAKMEM_ACE_POLICY_STATIC:
      return 0;
    case HAKMEM_ACE_POLICY_RULES:
      return with_idle_hold(ps, in, base_ms, reason, n, plan, ace_rules_apply(in, k, reason, n) > 0);
    case HAKMEM_ACE_POLICY_RESIZE:
      return with_idle_hold(ps, in, base_ms, reason, n, plan, resize_step(in, k, reason, n));
    case HAKMEM_ACE_POLICY_UCB1:
      return with_idle_hold(ps, in, base_ms, reason, n, plan, ace_learner_step(&ps->learner, in, k, reason, n));
    case HAKMEM_ACE_POLICY_DECAY: {
      if (in->pinned & HAKMEM_ACE_PIN_SCAVENGE) return 0;
      double dt = (double)in->m->dt_ns / 1e6;
      double frac = 1.0 - hak_exp(-dt / (double)ACE_DECAY_MS);
      plan->delay_ns = 0;
      plan->cache_delay_ns = (uint64_t)ACE_DECAY_MS * 1000000u / 2;
      /* What could go back: unused slabs and caches, and the free space inside slabs
       * in use (resident memory not holding blocks; RSS counts the program's own pages
       * too, so this errs on the generous side). */
      const ace_metrics* m = in->m;
      uint64_t spare = m->rss_bytes > m->bytes_in_use ? m->rss_bytes - m->bytes_in_use : 0;
      if (spare < m->unused_resident) spare = m->unused_resident;
      plan->max_bytes = (uint64_t)((double)spare * frac);
      if (!ps->decay_set) {        /* the owners' sweeps leave the returning to the curve */
        ps->decay_set = true;
        if (k->purge_delay_ms != ACE_DECAY_MS) {
          k->purge_delay_ms = ACE_DECAY_MS;
          if (n) snprintf(reason, n, "decay: unused memory goes back over %u ms (purge delay %u ms)", ACE_DECAY_MS,
                          ACE_DECAY_MS);
          return 1;
        }
      }
      return 0;
    }
    default:
      return 0;
  }
}
