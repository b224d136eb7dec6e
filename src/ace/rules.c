/* rules.c — the first, plain rules of the controller (the learning comes later and
 * replaces or joins them). Pure: metrics and knobs in, knobs and reasons out.
 *
 *   remote backlog of a class high    -> drain its remote frees more often
 *   LLC miss rate high, or RSS high   -> diet: shrink the thread caches, hot classes last,
 *                                        and the budget they may grow by
 *   allocator lock waits high         -> wider refill bundles (fewer trips to the slabs)
 *   a pressure gone                   -> that knob group back toward its default, 10 %
 *                                        per tick
 *   RSS high                          -> large reuse slack 0 and the large cache's resident
 *                                        bytes capped until RSS is well under the target
 *                                        (ace_rule_large_keep)
 *   new memory written whole, its     -> transparent huge pages for large blocks; for
 *   faults a cost to the CPU             segments too when the heap is nearly all
 *                                        resident; segments' back at idle, all of it
 *                                        above the RSS target (ace_rule_huge)
 * Pinned knob groups are never touched. */
#include "ace/ace.h"

#include <stdio.h>
#include <string.h>


/* One step of v toward target by `step` of the distance (at least 1). */
static uint32_t toward(uint32_t v, uint32_t target, double step) {
  if (v == target) return v;
  uint32_t dist = v < target ? target - v : v - target;
  uint32_t d = (uint32_t)(dist * step);
  if (d < 1) d = 1;
  return v < target ? v + d : v - d;
}

/* The ACE_HOT_CLASSES classes with the most allocations in the window. */
static void hot_classes(const ace_metrics* m, bool hot[HAK_NCLS]) {
  memset(hot, 0, HAK_NCLS * sizeof hot[0]);
  for (int n = 0; n < ACE_HOT_CLASSES; n++) {
    int best = -1;
    for (unsigned c = 0; c < HAK_NCLS; c++) {
      if (!hot[c] && m->allocs[c] && (best < 0 || m->allocs[c] > m->allocs[best])) best = (int)c;
    }
    if (best < 0) break;
    hot[best] = true;
  }
}

static int rule_backlog(const ace_rule_input* in, hak_knobs* k, ace_reasons* r) {
  const ace_metrics* m = in->m;
  int changed = 0;
  unsigned worst = 0, lowered = 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    uint32_t def = in->defaults->remote_drain_interval[c];
    uint32_t v = k->remote_drain_interval[c];
    if (m->backlog[c] > ACE_BACKLOG_HIGH) {
      uint32_t nv = v / 2 > ACE_MIN_DRAIN_INTERVAL ? v / 2 : ACE_MIN_DRAIN_INTERVAL;
      if (nv < v) { k->remote_drain_interval[c] = nv; lowered++; if (m->backlog[c] > m->backlog[worst]) worst = c; }
    } else if (v != def) {
      k->remote_drain_interval[c] = toward(v, def, ACE_RESTORE_STEP);
      changed = 1;
    }
  }
  if (lowered) {
    ace_say(r, "remote backlog %llu blocks in class %u (> %d): drain interval of %u class(es) halved, class %u now %u",
        (unsigned long long)m->backlog[worst], worst, ACE_BACKLOG_HIGH, lowered, worst, k->remote_drain_interval[worst]);
    return 1;
  }
  if (changed) ace_say(r, "remote backlog low: drain intervals back toward the default");
  return changed;
}

static int rule_diet(const ace_rule_input* in, hak_knobs* k, ace_reasons* r) {
  const ace_metrics* m = in->m;
  bool llc = m->llc_miss_rate > ACE_LLC_MISS_HIGH;
  bool rss = in->rss_target && m->rss_bytes > in->rss_target;
  int changed = 0;
  if (llc || rss) {
    bool hot[HAK_NCLS];
    hot_classes(m, hot);
    for (unsigned c = 0; c < HAK_NCLS; c++) {
      uint32_t v = k->tls_cap[c];
      uint32_t floor = in->defaults->tls_cap[c] < 4 ? in->defaults->tls_cap[c] : 4;
      uint32_t nv = (uint32_t)(v * (hot[c] ? ACE_DIET_FACTOR_HOT : ACE_DIET_FACTOR));
      if (nv < floor) nv = floor;
      if (nv < v) { k->tls_cap[c] = nv; changed = 1; }
    }
    uint64_t budget = (uint64_t)((double)k->tls_grow_budget_bytes * ACE_DIET_FACTOR);  /* and their growth */
    if (budget < k->tls_grow_budget_bytes) { k->tls_grow_budget_bytes = budget; changed = 1; }
    if (changed) {
      if (llc) ace_say(r, "LLC miss rate %.3f > %.2f: diet, thread caches x%.3f (hot classes x%.3f)", m->llc_miss_rate,
                   ACE_LLC_MISS_HIGH, ACE_DIET_FACTOR, ACE_DIET_FACTOR_HOT);
      else ace_say(r, "RSS %llu MiB > target %llu MiB: diet, thread caches x%.3f (hot classes x%.3f)",
               (unsigned long long)(m->rss_bytes >> 20), (unsigned long long)(in->rss_target >> 20),
               ACE_DIET_FACTOR, ACE_DIET_FACTOR_HOT);
    }
    return changed;
  }
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (k->tls_cap[c] != in->defaults->tls_cap[c]) {
      k->tls_cap[c] = toward(k->tls_cap[c], in->defaults->tls_cap[c], ACE_RESTORE_STEP);
      changed = 1;
    }
  }
  uint64_t bdef = in->defaults->tls_grow_budget_bytes, b = k->tls_grow_budget_bytes;
  if (b != bdef) {
    uint64_t step = (uint64_t)((double)(b > bdef ? b - bdef : bdef - b) * ACE_RESTORE_STEP);
    if (step < 4096) step = 4096;
    k->tls_grow_budget_bytes = b > bdef ? (b - bdef > step ? b - step : bdef) : (bdef - b > step ? b + step : bdef);
    changed = 1;
  }
  if (changed) ace_say(r, "cache pressure gone: thread caches back toward the default");
  return changed;
}

static int rule_bundles(const ace_rule_input* in, hak_knobs* k, ace_reasons* r) {
  const ace_metrics* m = in->m;
  int changed = 0;
  if (m->lock_waits_per_s > ACE_LOCK_WAITS_HIGH) {
    for (unsigned c = 0; c < HAK_NCLS; c++) {
      if (!m->allocs[c]) continue;
      uint32_t v = k->refill_batch[c];
      uint32_t nv = v * 2 < ACE_MAX_REFILL_BATCH ? v * 2 : ACE_MAX_REFILL_BATCH;
      if (nv > v) { k->refill_batch[c] = nv; changed = 1; }
    }
    if (changed) ace_say(r, "lock waits %.0f/s > %.0f: refill bundles of the busy classes doubled", m->lock_waits_per_s,
                     ACE_LOCK_WAITS_HIGH);
    return changed;
  }
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (k->refill_batch[c] != in->defaults->refill_batch[c]) {
      k->refill_batch[c] = toward(k->refill_batch[c], in->defaults->refill_batch[c], ACE_RESTORE_STEP);
      changed = 1;
    }
  }
  if (changed) ace_say(r, "lock waits low: refill bundles back toward the default");
  return changed;
}

/* A cached large span serves a smaller request whole while its surplus is at most
 * large_reuse_slack_pct of the request (beyond that it is split, and the rest stays
 * cached, resident): what lets a program that replaces large blocks of varying sizes
 * reuse freed pages instead of faulting new ones in, at the price of resident memory
 * that holds no block. With an RSS target:
 *   - the large cache keeps resident at most the room the target leaves (the target
 *     less everything else resident, at least ACE_LARGE_DIRTY_FLOOR), the oldest spans
 *     beyond it decommitted at the next large free. The allocator enforces the cap
 *     itself, so it holds between two ticks too, and it is set before RSS reaches the
 *     target: one 500 ms tick of the default cache took large_replace from 385 to
 *     452 MiB, past a 440 MiB limit. Without the floor every freed block was
 *     decommitted and faulted in again, slower and no leaner;
 *   - above the target the slack goes to 0: a reused span's surplus is decommitted.
 * Once RSS is well under the target (ACE_SLACK_RESTORE of it) the cap climbs back to
 * the value the caller wants (the default; the learner's keep level), doubling per
 * tick from the floor but never above the room, and then the slack, from
 * ACE_SLACK_FIRST: put back at once, they took RSS past the guard's limit within a
 * tick. */
/* One step back toward `def`: from `first` when below it, else doubling; never past def. */
static uint64_t climb(uint64_t v, uint64_t first, uint64_t def) {
  uint64_t n = v < first ? first : v > def / 2 ? def : v * 2;
  return n > def ? def : n;
}

int ace_rule_large_keep(const ace_rule_input* in, hak_knobs* k, ace_reasons* r, uint64_t dirty_want) {
  if (!in->rss_target || (in->pinned & HAKMEM_ACE_PIN_SCAVENGE)) return 0;
  const ace_metrics* m = in->m;
  uint64_t rss = m->rss_bytes, target = in->rss_target;
  uint32_t def = in->defaults->large_reuse_slack_pct, v = k->large_reuse_slack_pct;
  uint64_t dv = k->large_cache_dirty_bytes;
  int changed = 0;
  uint64_t others = rss > m->large_cache_resident ? rss - m->large_cache_resident : 0;
  uint64_t room = target > others ? target - others : 0;   /* for the large cache */
  if (room < ACE_LARGE_DIRTY_FLOOR) room = ACE_LARGE_DIRTY_FLOOR;
  if (room < dv) {
    k->large_cache_dirty_bytes = room;
    ace_say(r, "RSS %llu MiB, target %llu MiB: large cache resident cap %llu -> %llu MiB (the room the target leaves)",
            (unsigned long long)(rss >> 20), (unsigned long long)(target >> 20), (unsigned long long)(dv >> 20),
            (unsigned long long)(room >> 20));
    changed = 1;
  }
  if (rss > target) {
    if (v != 0) {
      k->large_reuse_slack_pct = 0;
      ace_say(r, "RSS %llu MiB > target %llu MiB: reused large spans give their surplus back (reuse slack %u %% -> 0)",
              (unsigned long long)(rss >> 20), (unsigned long long)(target >> 20), v);
      changed = 1;
    }
    return changed;
  }
  if (changed || (double)rss >= (double)target * ACE_SLACK_RESTORE) return changed;
  if (dv < dirty_want) {
    uint64_t nd = climb(dv, ACE_LARGE_DIRTY_FLOOR, dirty_want);
    if (nd > room) nd = room > dv ? room : dv;       /* never above the room */
    if (nd != dv) {
      k->large_cache_dirty_bytes = nd;
      ace_say(r, "RSS %llu MiB under target: large cache resident cap %llu -> %llu MiB (up to %llu MiB)",
              (unsigned long long)(rss >> 20), (unsigned long long)(dv >> 20), (unsigned long long)(nd >> 20),
              (unsigned long long)(dirty_want >> 20));
      return 1;
    }
  }
  if (v < def) {          /* the cap is as high as it goes: the surplus may stay again */
    uint32_t nv = (uint32_t)climb(v, ACE_SLACK_FIRST, def);
    k->large_reuse_slack_pct = nv;
    ace_say(r, "RSS %llu MiB under target: large reuse slack %u %% -> %u %% (default %u %%)",
            (unsigned long long)(rss >> 20), v, nv, def);
    return 1;
  }
  return 0;
}

int ace_rules_apply(const ace_rule_input* in, hak_knobs* k, char* reason, size_t n) {
  ace_reasons r = {reason, n, 0};
  if (n) reason[0] = 0;
  int changed = 0;
  if (!(in->pinned & HAKMEM_ACE_PIN_DRAIN)) changed += rule_backlog(in, k, &r);
  if (!(in->pinned & HAKMEM_ACE_PIN_TLS_CAP)) changed += rule_diet(in, k, &r);
  if (!(in->pinned & HAKMEM_ACE_PIN_REFILL_BATCH)) changed += rule_bundles(in, k, &r);
  changed += ace_rule_large_keep(in, k, &r, in->defaults->large_cache_dirty_bytes);
  changed += ace_rule_huge(in, k, &r);
  return changed;
}

int ace_rule_huge(const ace_rule_input* in, hak_knobs* k, ace_reasons* r) {
  if (!in->huge_auto) return 0;
  const ace_metrics* m = in->m;
  unsigned was = k->huge_pages, want = was;
  if (in->rss_target && m->rss_bytes > in->rss_target) {
    want = 0;
    if (was) ace_say(r, "huge pages: RSS above target: new blocks get 4 KiB pages again");
  } else if (m->compact_stalls_per_s >= ACE_HUGE_MAX_STALLS) {
    want = 0;
    if (was) ace_say(r, "huge pages: %.0f page faults/s waited for the kernel to compact memory: new blocks get "
                     "4 KiB pages again", m->compact_stalls_per_s);
  } else if (was == 2 && !ace_window_active(m)) {
    want = 1;
    ace_say(r, "huge pages: idle: segments give their huge-page advice back (large blocks keep it)");
  } else {
    double faulted = m->page_faults_per_s > 0 ? m->page_faults_per_s * 4096.0 : 0;
    double lf = m->large_fresh_bytes_per_s, sf = m->seg_fresh_bytes_per_s;
    double share = ace_fault_share(m);
    if (share < ACE_KEEP_FAULT_SHARE) return 0;
    if (was < 1 && lf >= ACE_HUGE_MIN_BYTES && faulted >= ACE_HUGE_WRITTEN * lf) {
      want = 1;
      ace_say(r, "huge pages: %.0f MiB/s of new large blocks written whole, page faults about %.0f %% of the CPU: "
              "large blocks get 2 MiB pages", lf / 1048576.0, share * 100.0);
    }
    double sample = (double)m->seg_sample_bytes, resident = (double)m->seg_sample_resident;
    bool dense = m->seg_bytes_live >= ACE_HUGE_MIN_HEAP && sample > 0 && resident >= ACE_HUGE_DENSE * sample;
    if (was < 2 && dense && sf >= ACE_HUGE_MIN_BYTES && faulted >= ACE_HUGE_WRITTEN * (sf + lf)) {
      want = 2;
      ace_say(r, "huge pages: %.0f MiB/s of new segments written whole, %.0f %% of them resident, page faults "
              "about %.0f %% of the CPU: segments get 2 MiB pages too", sf / 1048576.0, 100.0 * resident / sample,
              share * 100.0);
    }
  }
  if (want == was) return 0;
  k->huge_pages = want;
  return 1;
}
