/* knobs.c — publishing knob snapshots: validate a candidate, write it into a free slot
 * of a small static pool, make it current (alloc/knobs.c), and hak_knobs_get.
 *
 * Slots are recycled round-robin; a reader still copying a recycled slot notices the
 * slot's sequence number change and copies the current one again, so a retired
 * snapshot is never used. One publisher at a time (the ACE thread; tests). */
#include "runtime/runtime.h"
#include "alloc/alloc.h"
#include "alloc/knobs.h"

#include <errno.h>
#include <string.h>

#define KNOB_POOL 4
static hak_knob_slot knob_pool[KNOB_POOL];
static unsigned knob_next;

int hak_knobs_publish(const hak_knobs* candidate) {
  hak_ensure_init();
  if (!candidate || hak_knobs_validate(candidate) != 0) { errno = EINVAL; return -1; }
  hak_knobs k = *candidate;
  k.generation = hak_load_relaxed(&hak_knobs_generation) + 1;
  hak_knob_slot* slot = &knob_pool[knob_next];
  if (slot == hak_load_relaxed(&hak_knobs_current)) slot = &knob_pool[knob_next = (knob_next + 1) % KNOB_POOL];
  knob_next = (knob_next + 1) % KNOB_POOL;
  hak_knobs_install(slot, &k);
  return 0;
}

HAK_EXPORT int hak_knobs_get(hak_knobs* out) {
  if (!out || out->size < 2 * sizeof(uint32_t)) { errno = EINVAL; return -1; }
  hak_ensure_init();
  hak_knobs k;
  hak_knobs_copy(&k);
  size_t n = out->size < sizeof k ? out->size : sizeof k;
  memcpy(out, &k, n);
  out->size = (uint32_t)n;
  return 0;
}
