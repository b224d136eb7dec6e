/* knobs.c — publishing knob snapshots: validate a candidate, write it into a free slot
 * of a small static pool, make it current (alloc/knobs.c), and hak_knobs_get.
 *
 * The pointer to the current slot is swapped with urcu-bp's rcu_xchg_pointer; the old
 * slot goes back to the pool only after synchronize_rcu, so no reader ever copies a
 * slot while it is rewritten. Never call_rcu/defer_rcu: they start threads and call
 * malloc. One publisher at a time (the ACE thread; tests). */
#include "runtime/runtime.h"
#include "alloc/alloc.h"
#include "alloc/knobs.h"
#include "base/versioned.h"

#include <errno.h>
#include <string.h>
#include <urcu-bp.h>

/* Two slots are enough: after a grace period the snapshot that was current before
 * the last publish has no reader left (the start-up slot is never reused). */
static hak_knob_slot knob_pool[2];
static hak_knob_slot* knob_free = &knob_pool[0];

int hak_knobs_publish(const hak_knobs* candidate) {
  hak_ensure_init();
  if (!candidate || hak_knobs_validate(candidate) != 0) { errno = EINVAL; return -1; }
  static hak_lock publish_lock = HAK_LOCK_INIT;   /* one publisher at a time */
  hak_lock_take(&publish_lock);
  hak_knobs k = *candidate;
  k.generation = hak_load_relaxed(&hak_knobs_generation) + 1;
  hak_knob_slot* slot = knob_free;
  hak_knobs_fill(slot, &k);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"     /* urcu's macro casts the pointer */
  hak_knob_slot* old = rcu_xchg_pointer(&hak_knobs_current, slot);
#pragma GCC diagnostic pop
  hak_store_release(&hak_knobs_generation, k.generation);
  urcu_bp_synchronize_rcu();                       /* no reader of `old` is left */
  knob_free = old == &knob_pool[0] || old == &knob_pool[1] ? old : &knob_pool[slot == &knob_pool[0]];
  hak_lock_release(&publish_lock);
  return 0;
}

HAK_EXPORT int hak_knobs_get(hak_knobs* out) {
  if (!hak_versioned_ok(out)) return -1;
  hak_ensure_init();
  hak_knobs k;
  hak_knobs_copy(&k);
  hak_versioned_copy(out, &k, sizeof k);
  return 0;
}
