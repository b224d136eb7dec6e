/* lock.c — the slow halves of the locks in lock.h, and the lock-wait counter. */
#include "base/lock.h"

#include <sched.h>

_Atomic uint64_t hak_lock_waits;

void hak_spin_wait(hak_spin* l) {
  atomic_fetch_add_explicit(&hak_lock_waits, 1, memory_order_relaxed);
  for (;;) {
    for (int i = 0; i < 64 && hak_load_relaxed(&l->taken); i++) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    if (hak_spin_try(l)) return;
    sched_yield();
  }
}
