/* options.h — HAKMEM_* environment options: one enum entry plus one table row in
 * options.c per option. Values are read once, at process init, before any tier runs. */
#ifndef HAK_OPTIONS_H
#define HAK_OPTIONS_H

#include "base/base.h"

typedef enum hak_opt {
  HAK_OPT_VERBOSE,
  HAK_OPT_TINY_USE_SUPERSLAB,
  HAK_OPT_STATS,
  HAK_OPT_STATS_FILE,
  HAK_OPT_TLS_CACHE_BYTES,
  HAK_OPT_TLS_CAP_MAX,
  HAK_OPT_TLS_GROW_BYTES,
  HAK_OPT_TLS_GROW_MAX,
  HAK_OPT_TLS_GROW_BUDGET,
  HAK_OPT_REFILL_BATCH,
  HAK_OPT_SWEEP_INTERVAL,
  HAK_OPT_REMOTE_DRAIN_INTERVAL,
  HAK_OPT_PARTIAL_RELEASE_PAGES,
  HAK_OPT_PURGE_DELAY,
  HAK_OPT_HEAP_PARK,
  HAK_OPT_SEGMENT_CACHE,
  HAK_OPT_SEGMENT_CACHE_DIRTY,
  HAK_OPT_LARGE_CACHE,
  HAK_OPT_LARGE_CACHE_ENTRIES,
  HAK_OPT_LARGE_CACHE_DIRTY,
  HAK_OPT_LARGE_CACHE_UNMAP_DELAY,
  HAK_OPT_LARGE_REUSE_SLACK,
  HAK_OPT_REALLOC_INPLACE,
  HAK_OPT_REALLOC_NT_THRESHOLD,
  HAK_OPT_HUGE_PAGES,
  HAK_OPT_ACE_ENABLED,
  HAK_OPT_ACE_FAST_INTERVAL_MS,
  HAK_OPT_ACE_SLOW_INTERVAL_S,
  HAK_OPT_ACE_SCAVENGE_BUDGET_US,
  HAK_OPT_ACE_START_DELAY_MS,
  HAK_OPT_ACE_START_BYTES,
  HAK_OPT_ACE_MAX_P99_LAT_NS,
  HAK_OPT_ACE_MAX_RSS_MB,
  HAK_OPT_ACE_MAX_CPU_PERCENT,
  HAK_OPT_ACE_LOG_LEVEL,
  HAK_OPT_ACE_PMU,
  HAK_OPT_ACE_PIN,
  HAK_OPT_ACE_POLICY,
  HAK_OPT_ACE_TRACE,
  HAK_OPT_COUNT
} hak_opt;

/* HAKMEM_HUGE_PAGES: never, always for large blocks, for large blocks and segments, or
 * as ACE decides (the knob huge_pages takes the first three as they are). */
enum { HAK_HUGE_PAGES_OFF = 0, HAK_HUGE_PAGES_LARGE = 1, HAK_HUGE_PAGES_ALL = 2, HAK_HUGE_PAGES_AUTO = 3 };

/* Effective values, indexed by hak_opt; written once by hak_options_init. */
HAK_HIDDEN extern long long hak_opt_values[HAK_OPT_COUNT];
#define hak_opt(o) (hak_opt_values[(o)])

/* Parse the environment (warnings for bad values); print the table when VERBOSE. */
HAK_HIDDEN void hak_options_init(void);

/* The text of a "path" option (HAKMEM_ACE_TRACE), or NULL when unset. */
HAK_HIDDEN const char* hak_opt_text(hak_opt o);

/* Description and effective value of option i (NULL when out of range). */
HAK_HIDDEN const struct hak_option_info* hak_options_info(int i);
/* Effective value of the option named `name` (with or without the HAKMEM_ prefix);
 * *found tells whether there is such an option. */
HAK_HIDDEN long long hak_options_lookup(const char* name, bool* found);

#endif
