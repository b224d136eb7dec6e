/* churn.h — bytes moved per purge-delay window, remembered over HAK_CHURN_WINDOWS
 * windows: how much a cache should keep resident follows how much the program has
 * recently pushed through it, and falls linearly to nothing once that stops
 * (large.c: bytes freed into the large cache; segment.c: bytes reused from the segment
 * cache). The caller serialises access (its cache's lock). */
#ifndef HAK_CHURN_H
#define HAK_CHURN_H

#include "base/base.h"

#include <string.h>

#define HAK_CHURN_WINDOWS 10

typedef struct hak_churn {
  uint64_t start;                          /* when window 0 began */
  size_t   win[HAK_CHURN_WINDOWS + 1];     /* win[0]: the current window, then older */
} hak_churn;

/* Move the history to the window that holds `now` (windows of `len` ns; 0: forget all). */
HAK_INLINE void hak_churn_advance(hak_churn* c, uint64_t now, uint64_t len) {
  if (len == 0) memset(c->win, 0, sizeof c->win);
  if (len == 0 || now < c->start) { c->start = now; return; }
  uint64_t k = (now - c->start) / len;
  if (k == 0) return;
  unsigned shift = k <= HAK_CHURN_WINDOWS ? (unsigned)k : HAK_CHURN_WINDOWS + 1;
  for (unsigned i = HAK_CHURN_WINDOWS + 1; i-- > 0;) c->win[i] = i >= shift ? c->win[i - shift] : 0;
  c->start += k * len;
}

/* Record `bytes` at `now`. */
HAK_INLINE void hak_churn_add(hak_churn* c, uint64_t now, uint64_t len, size_t bytes) {
  hak_churn_advance(c, now, len);
  c->win[0] += bytes;
}

/* The bytes of the current and the previous window in full, those of the windows
 * before weighted from 9/10 down to 1/10, at most `cap`. */
HAK_INLINE size_t hak_churn_budget(const hak_churn* c, size_t cap) {
  unsigned __int128 sum = (unsigned __int128)c->win[0] * HAK_CHURN_WINDOWS;
  for (unsigned i = 1; i <= HAK_CHURN_WINDOWS; i++) sum += (unsigned __int128)c->win[i] * (HAK_CHURN_WINDOWS + 1 - i);
  sum /= HAK_CHURN_WINDOWS;
  return sum < cap ? (size_t)sum : cap;
}

#endif
