/* bandit.c — discounted UCB1 over a handful of discrete arms (candidate values of one
 * knob group). Pure: the learner owns the struct and feeds it rewards.
 *
 * UCB1 picks the arm with the highest mean reward plus an exploration bonus
 * c * sqrt(2 ln N / n_i). Two changes make it fit a program that changes:
 *   discount   every update multiplies all pull counts and reward sums by gamma < 1,
 *              so evidence older than about 1/(1-gamma) pulls fades and an arm that
 *              became good again is tried again (discounted UCB);
 *   drop       an arm whose mean, after ACE_BANDIT_DROP_PULLS pulls, is more than
 *              drop_margin below the best arm's mean is not pulled again for
 *              ACE_BANDIT_READMIT pulls (or until a reset at a phase change); then it
 *              gets one more chance with a clean record: exploration costs a few
 *              pulls of a bad arm now and then, and a program that changed slowly
 *              is still followed.
 *   trust      the arm the learner sits on (ace_bandit_best) is the default (arm 0)
 *              unless another arm beat it over ACE_BANDIT_TRUST_PULLS pulls, or by
 *              more than ACE_BANDIT_BIG_WIN in one: on a busy machine one window's
 *              throughput per CPU second moves by tens of percent, and a setting
 *              picked on one lucky window is what a phase gets every time it comes
 *              back until the arm is pulled again.
 * Never-pulled arms go first, in their order (arm 0 is the default setting). */
#include "ace/ace.h"

#include "base/fmath.h"
#include <string.h>

void ace_bandit_init(ace_bandit* b, unsigned narms, double gamma, double c, double drop_margin) {
  memset(b, 0, sizeof *b);
  b->narms = narms > ACE_BANDIT_MAX_ARMS ? ACE_BANDIT_MAX_ARMS : narms;
  b->gamma = gamma;
  b->c = c;
  b->drop_margin = drop_margin;
}

void ace_bandit_reset(ace_bandit* b) {
  ace_bandit_init(b, b->narms, b->gamma, b->c, b->drop_margin);
}

double ace_bandit_mean(const ace_bandit* b, unsigned arm) {
  return b->n[arm] > 0 ? b->sum[arm] / b->n[arm] : 0.0;
}

unsigned ace_bandit_best(const ace_bandit* b) {
  int best = -1;
  bool def_ok = b->narms > 0 && b->pulls[0] > 0 && !b->dropped[0];
  double def_mean = def_ok ? ace_bandit_mean(b, 0) : 0;
  for (unsigned a = 0; a < b->narms; a++) {
    if (b->pulls[a] == 0 || b->dropped[a]) continue;
    if (a != 0 && def_ok && b->pulls[a] < ACE_BANDIT_TRUST_PULLS &&
        ace_bandit_mean(b, a) <= def_mean + ACE_BANDIT_BIG_WIN * hak_fabs(def_mean)) continue;
    if (best < 0 || ace_bandit_mean(b, a) > ace_bandit_mean(b, (unsigned)best)) best = (int)a;
  }
  return best < 0 ? 0 : (unsigned)best;
}

unsigned ace_bandit_select(const ace_bandit* b) {
  double total = 0;
  for (unsigned a = 0; a < b->narms; a++) {
    if (b->dropped[a]) continue;
    if (b->pulls[a] == 0) return a;
    total += b->n[a];
  }
  unsigned best = ace_bandit_best(b);
  double best_ucb = -__builtin_inf();
  double ln = hak_ln(total > 1 ? total : 1);
  for (unsigned a = 0; a < b->narms; a++) {
    if (b->dropped[a] || b->n[a] <= 0) continue;
    double ucb = ace_bandit_mean(b, a) + b->c * hak_sqrt(2.0 * ln / b->n[a]);
    if (ucb > best_ucb) { best_ucb = ucb; best = a; }
  }
  return best;
}

void ace_bandit_update(ace_bandit* b, unsigned arm, double reward) {
  if (arm >= b->narms) return;
  for (unsigned a = 0; a < b->narms; a++) {
    if (b->dropped[a] && b->total_pulls - b->dropped_at[a] >= ACE_BANDIT_READMIT) {
      b->dropped[a] = false;
      b->n[a] = b->sum[a] = 0;
      b->pulls[a] = 0;
    }
  }
  for (unsigned a = 0; a < b->narms; a++) { b->n[a] *= b->gamma; b->sum[a] *= b->gamma; }
  b->n[arm] += 1.0;
  b->sum[arm] += reward;
  b->pulls[arm]++;
  b->total_pulls++;
  unsigned best = ace_bandit_best(b);
  double bm = ace_bandit_mean(b, best);
  for (unsigned a = 0; a < b->narms; a++) {
    if (a == best || b->dropped[a] || b->pulls[a] < ACE_BANDIT_DROP_PULLS) continue;
    if (ace_bandit_mean(b, a) < bm - b->drop_margin * hak_fabs(bm)) {
      b->dropped[a] = true;
      b->dropped_at[a] = b->total_pulls;
    }
  }
}
