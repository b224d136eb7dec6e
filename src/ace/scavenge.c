/* scavenge.c — the background return of memory: each fast tick, the release walk over
 * the list of all segments (alloc/release.c) for at most the time budget, resuming
 * where the last tick stopped. It respects the purge delay (hysteresis: memory unused
 * for less than the delay stays), and it works while every program thread is idle:
 * remote frees queued for idle owners are taken back and what they free returned. */
#include "ace/ace.h"
#include "alloc/release.h"

static hak_release_walk_t walk;
static bool walk_open;

size_t ace_scavenge(uint64_t now, uint64_t budget_ns, const ace_scavenge_plan* plan) {
  if (!walk_open) {
    hak_seglist_cursor_open(&walk.cursor);
    walk_open = true;
  }
  uint64_t before = walk.released;
  walk.max_segments = 0;                  /* one round of the list at most ... */
  walk.deadline_ns = now + budget_ns;     /* ... within the budget */
  walk.max_bytes = plan->max_bytes == UINT64_MAX ? 0 : plan->max_bytes;
  walk.cache_delay = plan->cache_delay_ns;
  if (plan->max_bytes == 0) return 0;     /* the policy returns nothing this tick */
  hak_release_walk(&walk, now, plan->delay_ns);
  return (size_t)(walk.released - before);
}

uint64_t ace_scavenge_budget(uint64_t budget_ns, const ace_metrics* m, uint64_t interval_ns,
                             uint32_t max_cpu_percent) {
  double program = m->cpu_fraction - m->ace_cpu_fraction;
  bool idle = m->dt_ns != 0 && program < 0.01 && m->ops_per_s < 1000.0;
  uint64_t b = idle ? budget_ns * ACE_IDLE_BUDGET_FACTOR : budget_ns;
  uint64_t cap = (uint64_t)((double)interval_ns * max_cpu_percent / 100.0 * ACE_SCAVENGE_CPU_SHARE);
  return b < cap ? b : cap;
}

void ace_scavenge_reset(void) {
  if (walk_open) hak_seglist_cursor_close(&walk.cursor);
  walk = (hak_release_walk_t){0};
  walk_open = false;
}
