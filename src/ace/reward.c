/* reward.c — what the learner maximises, one number per window (docs/ACE.md):
 *
 *   reward = ops per CPU second / ref
 *          - 0.3 * LLC miss rate                         (hardware PMU only)
 *          - 0.2 * min(1, lock waits per s / 10,000)
 *          - 0.2 * min(1, remote backlog / 65,536 blocks)
 *          - 1.0 * max(0, RSS / RSS target - 1)          (with a target)
 *
 * Throughput per CPU second, not per wall second: a program that waits on I/O does
 * not look worse, and page faults, lock spinning and cache misses the knobs cause all
 * cost CPU time. `ref` is the running mean of the same phase, so an ordinary window
 * scores about 1 and the penalties weigh as fractions of the throughput. Pure. */
#include "ace/ace.h"

double ace_reward(const ace_metrics* m, double ref, uint64_t rss_target) {
  double r = ref > 0 ? m->ops_per_cpu_s / ref : 0.0;
  if (m->llc_miss_rate > 0) r -= ACE_REWARD_W_LLC * m->llc_miss_rate;
  double lock = m->lock_waits_per_s / ACE_REWARD_LOCK_SCALE;
  r -= ACE_REWARD_W_LOCK * (lock < 1 ? lock : 1);
  double backlog = (double)m->remote_backlog / ACE_REWARD_BACKLOG_SCALE;
  r -= ACE_REWARD_W_BACKLOG * (backlog < 1 ? backlog : 1);
  if (rss_target && m->rss_bytes > rss_target) {
    r -= ACE_REWARD_W_RSS * ((double)m->rss_bytes / (double)rss_target - 1.0);
  }
  return r;
}
