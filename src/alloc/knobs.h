/* knobs.h — the alloc <-> ACE seam: the current knob snapshot (include/hakmem_ace.h).
 *
 * The fast paths never read knobs. A thread's slow path compares its cached generation
 * with hak_knobs_generation (one acquire load) and, when it moved, copies the values it
 * uses into its heap (hak_heap_set_caps). Process-wide values (cache sizes, the purge
 * delay) are mirrored in hak_knobs_proc, relaxed atomics read where they are needed.
 *
 * Snapshots live in slots that the publisher (runtime/knobs.c) recycles only after an
 * RCU grace period. A slot also carries a sequence number that is odd while it is
 * written, and readers copy it word by word with relaxed atomic loads and check the
 * number: a second line of defence, and what makes the copy visible as race-free to
 * ThreadSanitizer, which does not see urcu's barriers. */
#ifndef HAK_ALLOC_KNOBS_H
#define HAK_ALLOC_KNOBS_H

#include "base/base.h"
#include "hakmem_ace.h"

typedef struct hak_knob_slot {
  _Atomic uint64_t seq;      /* even: stable; odd: being written */
  hak_knobs        k;        /* written and read word by word with relaxed atomics */
} hak_knob_slot;

/* The current snapshot. An RCU-protected pointer (urcu-bp): readers load it with
 * rcu_dereference inside a read-side section; the publisher swaps it with
 * rcu_xchg_pointer and waits for a grace period before it reuses the old slot. */
HAK_HIDDEN extern hak_knob_slot* hak_knobs_current;
HAK_HIDDEN extern _Atomic uint64_t hak_knobs_generation;

/* Process-wide knob values, for code that has no heap to cache them in. */
typedef struct hak_knobs_process {
  _Atomic uint64_t purge_delay_ns;
  _Atomic uint64_t segment_cache_bytes, segment_cache_dirty_bytes;
  _Atomic uint64_t large_cache_bytes, large_cache_dirty_bytes;
  _Atomic uint64_t large_cache_unmap_delay_ns;
  _Atomic uint32_t large_cache_entries;
  _Atomic uint32_t large_reuse_slack_pct;
  _Atomic uint32_t partial_release_pages;
  _Atomic uint32_t realloc_shrink_keep_pct, realloc_grow_headroom_pct;
  _Atomic uint64_t realloc_nt_threshold;
  _Atomic uint32_t realloc_inplace;
  _Atomic uint32_t huge_pages;
} hak_knobs_process;
HAK_HIDDEN extern hak_knobs_process hak_knobs_proc;
#define HAK_KNOB(field) hak_load_relaxed(&hak_knobs_proc.field)

/* Fill *k with the values the HAKMEM_* options give (generation 0). */
HAK_HIDDEN void hak_knobs_defaults(hak_knobs* k);
/* 0 when every value of k is in range, else -1 (errno untouched). */
HAK_HIDDEN int  hak_knobs_validate(const hak_knobs* k);
/* A consistent copy of the current snapshot. */
HAK_HIDDEN void hak_knobs_copy(hak_knobs* out);
/* What one class takes from the snapshot (tls_cache.c: class_set_caps). */
typedef struct hak_knobs_cls {
  uint32_t cls;
  uint32_t tls_cap, tls_cap_max, refill_batch, remote_drain_interval, diet_pct;
} hak_knobs_cls;
HAK_HIDDEN void hak_knobs_class(unsigned c, hak_knobs_cls* out);
/* The same values out of k, a snapshot (or a copy of one). */
HAK_HIDDEN void hak_knobs_class_of(const hak_knobs* k, unsigned c, hak_knobs_cls* out);
/* Write k (valid, generation set) into slot (not the current one) and mirror its
 * process-wide values; the caller then makes the slot current. One writer at a time. */
HAK_HIDDEN void hak_knobs_fill(hak_knob_slot* slot, const hak_knobs* k);
/* Build the start-up snapshot from the options (alloc init). */
HAK_HIDDEN void hak_knobs_init(void);

#endif
