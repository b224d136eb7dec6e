/* debug_counters.h — diagnostic counters, compiled in only with the CMake option
 * HAK_DEBUG_COUNTERS (-DHAK_DEBUG_COUNTERS=1). When it is off, HAK_DBG() expands to
 * nothing, so release fast paths are instruction-for-instruction what they would be
 * without this file. Counters live in the thread heap (plain stores) and are summed by
 * hak_stats_get(). X(ENUM, "json_name", "help"). */
#ifndef HAK_DEBUG_COUNTERS_H
#define HAK_DEBUG_COUNTERS_H

#define HAK_DBG_LIST(X)                                                                       \
  /* refill stages: where the blocks of a TLS refill came from */                             \
  X(REFILL_SLAB_FREELIST,  "refill_slab_freelist",  "blocks from a slab's local free list")     \
  X(REFILL_BUMP,           "refill_bump",           "blocks carved from never-used slab space") \
  X(REFILL_REMOTE_DRAIN,   "refill_remote_drain",   "refills that drained a slab's remote list") \
  X(REFILL_FULL_SLAB,      "refill_full_slab",      "full slabs revived by their remote frees")  \
  X(REFILL_BORROW,         "refill_borrow",         "mallocs served by a free block of a larger class") \
  X(REFILL_NEW_SLAB,       "refill_new_slab",       "slabs cut from a segment the heap owns")    \
  X(REFILL_ADOPTED,        "refill_adopted",        "abandoned segments adopted for a refill")   \
  X(REFILL_NEW_SEG_CACHE,  "refill_new_seg_cache",  "new segments (SuperSlabs) from the cache")  \
  X(REFILL_NEW_SEG_OS,     "refill_new_seg_os",     "new segments (SuperSlabs) mapped from the OS") \
  X(MALLOC_TLS_HIT,        "malloc_tls_hit",        "mallocs served by the TLS list (fast path)") \
  /* free pipeline: where a free went */                                                       \
  X(FREE_TLS_SLL,          "tls_sll",               "frees pushed on the TLS list (fast path)")  \
  X(FREE_SS_LOCAL,         "ss_local",              "tiny frees into an own slab (slow path)")   \
  X(FREE_SS_REMOTE,        "ss_remote",             "tiny frees into another thread's slab")     \
  X(FREE_MID_LOCAL,        "mid_local",             "mid frees into an own slab (slow path)")    \
  X(FREE_MID_REMOTE,       "mid_remote",            "mid frees into another thread's slab")      \
  X(FREE_POOL_LOCAL,       "pool_local",            "pool frees into an own slab (slow path)")   \
  X(FREE_POOL_REMOTE,      "pool_remote",           "pool frees into another thread's slab")     \
  X(FREE_LARGE,            "large",                 "frees of large blocks")                      \
  X(FREE_ADOPT,            "abandoned_reclaim",     "reclaims of emptied abandoned segments started by frees")  \
  X(FLUSH_TO_SLAB,         "flush_to_slab",         "blocks returned from TLS lists to slabs")    \
  /* early returns: each place a path stops early, and why */                                  \
  X(EARLY_FREE_NULL,       "early_free_null",       "free(NULL)")                                 \
  X(EARLY_REALLOC_INPLACE, "early_realloc_inplace", "realloc kept the block")                     \
  X(EARLY_REALLOC_LARGE,   "early_realloc_large",   "realloc grew or shrank a large block in place") \
  X(EARLY_KEEP_LAST_SLAB,  "early_keep_last_slab",  "empty slab kept: the class's only partial slab") \
  X(EARLY_KEEP_LAST_SEG,   "early_keep_last_seg",   "empty segment kept: the heap's last of its kind") \
  X(EARLY_REFILL_OOM,      "early_refill_oom",      "refill found no memory")                     \
  X(EARLY_ADOPT_BUSY,      "early_reclaim_busy",    "abandoned-segment reclaim skipped: list busy")  \
  X(EARLY_SWEEP,           "early_sweep",           "heap sweeps (remote drain + purge)")

enum hak_dbg_id {
#define HAK_DBG_ENUM(e, name, help) HAK_DBG_##e,
  HAK_DBG_LIST(HAK_DBG_ENUM)
#undef HAK_DBG_ENUM
  HAK_DBG_COUNT
};

#if HAK_DEBUG_COUNTERS
#define HAK_DBG(h, id)      ((h)->dbg[HAK_DBG_##id]++)
#define HAK_DBG_ADD(h, id, n) ((h)->dbg[HAK_DBG_##id] += (n))
#else
#define HAK_DBG(h, id)      ((void)0)
#define HAK_DBG_ADD(h, id, n) ((void)0)
#endif

#endif
