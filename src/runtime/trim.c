/* trim.c — malloc_trim's work: give back every unused page hakmem holds, now.
 *
 * The calling thread's caches go back to their slabs first (other threads' lists are
 * cut to two blocks per class, alloc/tc_trim.c, as the walk meets them), then one whole round
 * of the release walk (alloc/release.c) with no purge delay: every segment of every
 * thread, abandoned ones included, and the segment and large caches. It is the same walk
 * ACE's scavenger runs in budgeted steps, so the two share the code and its lock. */
#include "runtime/runtime.h"
#include "alloc/alloc.h"
#include "alloc/release.h"

size_t hak_trim(void) {
  hak_ensure_init();
  hak_alloc_thread_flush();
  return hak_release_all(0);
}
