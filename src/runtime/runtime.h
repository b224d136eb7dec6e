/* runtime.h — the runtime layer: process start-up and fork (init.c), statistics
 * (stats.c), knob publishing (knobs.c) and the public option accessors (options_api.c).
 * It stands on alloc and reads it only through the knob snapshot and the stats
 * collection. */
#ifndef HAK_RUNTIME_H
#define HAK_RUNTIME_H

#include "base/base.h"
#include "hakmem_ace.h"

/* ---- init.c --------------------------------------------------------------------- */
/* Idempotent: initialise the allocator, register the fork handlers and the exit report.
 * Called from the shim's load-time constructors. */
HAK_HIDDEN void hak_runtime_init(void);

/* ---- stats.c -------------------------------------------------------------------- */
HAK_HIDDEN void hak_stats_init(void);
/* The ACE layer says whether its thread runs and which PMU mode it uses (stats modes). */
HAK_HIDDEN void hak_stats_set_ace(uint32_t running, uint32_t pmu_mode);
/* Fold a collection's bytes in use into the peak (peak_bytes_in_use): every reader of
 * the counters above this layer (ACE's tick, mallinfo2) calls it. */
HAK_HIDDEN void hak_stats_note_in_use(uint64_t bytes_in_use);

/* ---- trim.c --------------------------------------------------------------------- */
/* malloc_trim: flush the calling thread's caches, then give back every unused page of
 * every thread's memory and of the caches, with no purge delay. Bytes given back. */
HAK_HIDDEN size_t hak_trim(void);

/* ---- knobs.c -------------------------------------------------------------------- */
/* Validate `candidate` and make it the current snapshot (its generation is assigned
 * here). Returns 0, or -1 with errno EINVAL when a value is out of range (nothing
 * changes then). Not for concurrent use: one publisher at a time (ACE's thread). */
HAK_HIDDEN int hak_knobs_publish(const hak_knobs* candidate);

#endif
