/* hak_lock.h — the one lock type hakmem uses off the fast path: a pthread mutex,
 * taken with a trylock first so that contended waits can be counted for ACE.
 * Lock order (fork handlers take them in this order, see runtime/init.c):
 *   scavenge → heap pool → global heap → a heap's lock → abandoned segments
 *   → segment cache → large cache → segment list */
#ifndef HAK_LOCK_H
#define HAK_LOCK_H

#include "base/base.h"
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
/* After fork, in the child: the lock was taken by this very thread in the prepare
 * handler (pthread_atfork's idiom); release it. (Re-initialising a locked mutex left
 * ThreadSanitizer believing it still held, and every later take reported a double
 * lock.) */
HAK_INLINE void hak_lock_reset(hak_lock* l) { pthread_mutex_unlock(&l->m); }

/* A spin lock for state that is almost always taken by one thread (a heap's slab state:
 * its owner, and now and then a scavenger with hak_spin_try). Waiting yields the CPU. */
typedef struct hak_spin {
  _Atomic uint32_t taken;
} hak_spin;

HAK_INLINE bool hak_spin_try(hak_spin* l) {
  return hak_load_relaxed(&l->taken) == 0 &&
         atomic_exchange_explicit(&l->taken, 1, memory_order_acquire) == 0;
}
HAK_HIDDEN void hak_spin_wait(hak_spin* l);
HAK_INLINE void hak_spin_take(hak_spin* l) {
  if (HAK_UNLIKELY(atomic_exchange_explicit(&l->taken, 1, memory_order_acquire) != 0)) hak_spin_wait(l);
}
HAK_INLINE void hak_spin_release(hak_spin* l) { hak_store_release(&l->taken, 0); }

#endif
