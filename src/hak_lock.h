/* hak_lock.h — the one lock type hakmem uses off the fast path: a pthread mutex,
 * taken with a trylock first so that contended waits can be counted for ACE.
 * Lock order (fork handlers take them in this order, see init.c):
 *   heap pool → global heap → abandoned segments → segment cache → large cache */
#ifndef HAK_LOCK_H
#define HAK_LOCK_H

#include "hak_base.h"
#include <pthread.h>

typedef struct hak_lock {
  pthread_mutex_t m;
} hak_lock;

#define HAK_LOCK_INIT {PTHREAD_MUTEX_INITIALIZER}

/* Times any allocator lock was found taken (stats and ACE's lock-wait signal). */
HAK_HIDDEN extern _Atomic uint64_t hak_lock_waits;

HAK_INLINE void hak_lock_take(hak_lock* l) {
  if (HAK_UNLIKELY(pthread_mutex_trylock(&l->m) != 0)) {
    atomic_fetch_add_explicit(&hak_lock_waits, 1, memory_order_relaxed);
    pthread_mutex_lock(&l->m);
  }
}
HAK_INLINE void hak_lock_release(hak_lock* l) { pthread_mutex_unlock(&l->m); }
/* After fork, in the child: the only thread left owns nothing; make the lock usable. */
HAK_INLINE void hak_lock_reset(hak_lock* l) { pthread_mutex_init(&l->m, NULL); }

#endif
