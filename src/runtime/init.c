/* init.c — the runtime's start-up and fork handling.
 *
 * The allocator initialises itself lazily on its first slow path (alloc/init.c). What
 * the runtime adds needs a working malloc and so runs later, from the shim's load-time
 * constructor: fork handlers (pthread_atfork may call malloc) and the exit report.
 *
 * fork: prepare takes every allocator lock in the fixed order of base/lock.h; the
 * parent releases them; the child re-initialises them. Other threads' heaps are left
 * as they were in the child (their memory is unreachable there, not corrupted). */
#include "runtime/runtime.h"
#include "alloc/alloc.h"
#include "alloc/release.h"

#include <pthread.h>
#include <urcu-bp.h>

static void fork_prepare(void) {
  hak_release_fork_lock();     /* no walker holds a heap's lock across the fork */
  hak_heap_fork_lock();        /* heap pool → global heap → abandoned */
  hak_segment_fork_lock();     /* segment cache */
  hak_large_fork_lock();       /* large cache */
  hak_seglist_fork_lock();     /* list of all segments */
  urcu_bp_before_fork();       /* urcu-bp's registry and grace-period locks */
}
static void fork_parent(void) {
  urcu_bp_after_fork_parent();
  hak_seglist_fork_unlock(false);
  hak_large_fork_unlock(false);
  hak_segment_fork_unlock(false);
  hak_heap_fork_unlock(false);
  hak_release_fork_unlock(false);
}
static void fork_child(void) {
  urcu_bp_after_fork_child();
  hak_seglist_fork_unlock(true);
  hak_large_fork_unlock(true);
  hak_segment_fork_unlock(true);
  hak_heap_fork_unlock(true);
  hak_release_fork_unlock(true);
}

void hak_runtime_init(void) {
  static _Atomic int done;
  hak_ensure_init();
  int expected = 0;
  if (!atomic_compare_exchange_strong(&done, &expected, 1)) return;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  hak_stats_init();
}
