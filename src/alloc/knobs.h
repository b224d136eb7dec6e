/* knobs.h — the alloc <-> ACE seam: the current knob snapshot (include/hakmem_ace.h).
 *
 * The fast paths never read knobs. A thread's slow path compares its cached generation
 * with hak_knobs_generation (one acquire load) and, when it moved, copies the values it
 * uses into its heap (hak_heap_set_caps). Process-wide values (cache sizes, the purge
 * delay) are mirrored in hak_knobs_proc, relaxed atomics read where they are needed.
 *
 * Snapshots live in slots that a publisher recycles; a slot carries a sequence number
 * that is odd while it is written, so a reader copying a slot that was recycled under
 * it sees the number change and copies again (hak_knobs_copy). The publisher is
 * runtime/knobs.c. */
#ifndef HAK_ALLOC_KNOBS_H
#define HAK_ALLOC_KNOBS_H

#include "base/base.h"
#include "hakmem_ace.h"

typedef struct hak_knob_slot {
  _Atomic uint64_t seq;      /* even: stable; odd: being written */
  hak_knobs        k;        /* written and read word by word with relaxed atomics */
} hak_knob_slot;

HAK_HIDDEN extern _Atomic(hak_knob_slot*) hak_knobs_current;
HAK_HIDDEN extern _Atomic uint64_t hak_knobs_generation;

/* Process-wide knob values, for code that has no heap to cache them in. */
typedef struct hak_knobs_process {
  _Atomic uint64_t purge_delay_ns;
  _Atomic uint64_t segment_cache_bytes, segment_cache_dirty_bytes;
  _Atomic uint64_t large_cache_bytes;
  _Atomic uint32_t large_cache_entries;
  _Atomic uint32_t partial_release_pages;
  _Atomic uint32_t realloc_shrink_keep_pct, realloc_grow_headroom_pct;
} hak_knobs_process;
HAK_HIDDEN extern hak_knobs_process hak_knobs_proc;
#define HAK_KNOB(field) hak_load_relaxed(&hak_knobs_proc.field)

/* Fill *k with the values the HAKMEM_* options give (generation 0). */
HAK_HIDDEN void hak_knobs_defaults(hak_knobs* k);
/* 0 when every value of k is in range, else -1 (errno untouched). */
HAK_HIDDEN int  hak_knobs_validate(const hak_knobs* k);
/* A consistent copy of the current snapshot. */
HAK_HIDDEN void hak_knobs_copy(hak_knobs* out);
/* Write k (valid, generation set) into slot and make it current; one writer at a time. */
HAK_HIDDEN void hak_knobs_install(hak_knob_slot* slot, const hak_knobs* k);
/* Build the start-up snapshot from the options (alloc init). */
HAK_HIDDEN void hak_knobs_init(void);

#endif
