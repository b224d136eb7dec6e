/* hak_knobs.h — the alloc <-> ACE seam: the current knob snapshot and its generation.
 * The fast paths never read knobs. A thread's slow path compares its cached generation
 * with hak_knobs_generation (one acquire load) and re-reads the snapshot when it moved. */
#ifndef HAK_KNOBS_H
#define HAK_KNOBS_H

#include "hak_base.h"
#include "hakmem_ace.h"

HAK_HIDDEN extern _Atomic(const hak_knobs*) hak_knobs_current;
HAK_HIDDEN extern _Atomic uint64_t hak_knobs_generation;

/* Build the start-up snapshot from the options (called once by init). */
HAK_HIDDEN void hak_knobs_init(void);

HAK_INLINE const hak_knobs* hak_knobs_read(void) { return hak_load_acquire(&hak_knobs_current); }

#endif
