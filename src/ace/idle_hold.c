/* idle_hold.c — how long the program must have left memory unused before the scavenger
 * gives it back, learned from what happens after it idles.
 *
 * The scavenger returns what has been unused for the purge delay (100 ms), also while
 * the program idles: that is how an idle program gets its memory back. A program that
 * pauses between bursts (a periodic job, a server between requests: rpmalloc's rptest
 * sleeps 1 s between bursts of 10-300 ms) then pays for it in every burst: the memory
 * given back during the pause is faulted in again at once (rptest, one thread: 437
 * page faults against 298 with ACE off, about two thirds of its speed).
 *
 * So each idle spell in which the scavenger gave back at least ACE_IDLE_HOLD_MIN_BYTES
 * (pages, and blocks cut off sleeping threads' caches) is judged by the activity that
 * ends it. When page faults worth at least a quarter of those bytes come within
 * ACE_IDLE_HOLD_JUDGE_TICKS active windows, the hold grows 4x, or to twice that
 * spell's length if more (up to ACE_IDLE_HOLD_MAX_MS); when less, it halves back toward
 * the purge delay. Pauses shorter than the hold then give nothing back, and a program
 * that stays idle longer still gets its memory back after the hold. RSS above its
 * target drops the hold at once. Pure: the state, the window's metrics and what the
 * scavenger gave back after the window before. */
#include "ace/ace.h"

#include <string.h>

void ace_idle_hold_init(ace_idle_hold* h) { memset(h, 0, sizeof *h); }

/* At least a quarter of what the spell gave back has been faulted in again. */
static bool came_back(const ace_idle_hold* h) { return h->refaulted * 4 >= h->spell_returned; }

/* The spell being judged ends: grow or shrink the hold by what came back. */
static void judge(ace_idle_hold* h, uint64_t base_ms, ace_reasons* r) {
  uint64_t old = h->hold_ms;
  h->judging = false;
  if (came_back(h)) {
    /* 4x, or at once twice the spell that gave back too early */
    uint64_t v = old * 4 > h->spell_ms * 2 ? old * 4 : h->spell_ms * 2;
    if (v > ACE_IDLE_HOLD_MAX_MS) v = ACE_IDLE_HOLD_MAX_MS;
    h->hold_ms = v > base_ms ? v : base_ms;
    if (h->hold_ms != old)
      ace_say(r, "idle hold: %.1f MiB given back while idle, %.1f MiB of it faulted back in: "
                 "idle memory kept %llu ms before it goes back (was %llu)",
              (double)h->spell_returned / 1048576.0, (double)h->refaulted / 1048576.0,
              (unsigned long long)h->hold_ms, (unsigned long long)old);
  } else if (old > base_ms) {
    h->hold_ms = old / 2 > base_ms ? old / 2 : base_ms;
    ace_say(r, "idle hold: %.1f MiB given back while idle stayed away: idle memory kept %llu ms (was %llu)",
            (double)h->spell_returned / 1048576.0, (unsigned long long)h->hold_ms, (unsigned long long)old);
  }
}

uint64_t ace_idle_hold_step(ace_idle_hold* h, const ace_rule_input* in, uint64_t base_ms, ace_reasons* r) {
  const ace_metrics* m = in->m;
  if (h->hold_ms < base_ms) h->hold_ms = base_ms;
  /* Given back while idle: pages, and blocks cut off the sleeping threads' caches (they
   * cost refills, and their pages go back with them). */
  if (h->prev_idle) h->returned += in->scavenged_last + m->idle_cache_trimmed_bytes;
  if (in->rss_target && m->rss_bytes > in->rss_target) {
    if (h->hold_ms > base_ms)
      ace_say(r, "idle hold: RSS above target: idle memory goes back after %llu ms again",
              (unsigned long long)base_ms);
    h->hold_ms = base_ms;
    h->judging = false;
    h->returned = 0;
  }
  if (!ace_window_active(m)) {
    if (h->judging) judge(h, base_ms, r);       /* the burst ended before enough came back */
    h->prev_idle = true;
    h->idle_ms += m->dt_ns / 1000000u;
    return h->hold_ms;
  }
  if (h->prev_idle && h->returned >= ACE_IDLE_HOLD_MIN_BYTES) {   /* a spell that gave back ends */
    h->judging = true;
    h->spell_ms = h->idle_ms;
    h->spell_returned = h->returned;
    h->refaulted = 0;
    h->judged_ticks = 0;
  }
  h->prev_idle = false;
  h->returned = 0;
  h->idle_ms = 0;
  if (h->judging) {
    /* What came back: the refaults, or the page faults where they are more (memory given
     * back inside blocks, and slabs the trim emptied, fault in without being counted). */
    h->refaulted += (uint64_t)(ace_faulted_bytes_per_s(m) * (double)m->dt_ns / 1e9);
    if (came_back(h) || ++h->judged_ticks >= ACE_IDLE_HOLD_JUDGE_TICKS) judge(h, base_ms, r);
  }
  return h->hold_ms;
}
