/* knobs.c — the knob snapshot: built from the HAKMEM_* options at start-up, read by the
 * alloc layer's slow paths, and (with ACE) replaced by newer immutable snapshots. */
#include "hak_knobs.h"
#include "alloc/sizeclass.h"
#include "options.h"

#include <errno.h>
#include <string.h>

_Static_assert(HAKMEM_KNOB_CLASSES == HAK_NCLS, "knob classes match the size-class table");

static hak_knobs knobs_startup;
_Atomic(const hak_knobs*) hak_knobs_current = &knobs_startup;
_Atomic uint64_t hak_knobs_generation;

void hak_knobs_init(void) {
  hak_knobs* k = &knobs_startup;
  k->size = sizeof *k;
  k->version = HAKMEM_KNOBS_VERSION;
  k->generation = 1;
  long long bytes = hak_opt(HAK_OPT_TLS_CACHE_BYTES), capmax = hak_opt(HAK_OPT_TLS_CAP_MAX);
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    long long cap = bytes / hak_cls_size[c];
    if (cap < 1) cap = 1;
    if (cap > capmax) cap = capmax;
    k->tls_cap[c] = (uint32_t)cap;
  }
  k->bundle_width = (uint32_t)hak_opt(HAK_OPT_REFILL_BATCH);
  k->drain_threshold = (uint32_t)hak_opt(HAK_OPT_DRAIN_THRESHOLD);
  k->purge_delay_ms = (uint32_t)hak_opt(HAK_OPT_PURGE_DELAY);
  hak_store_release(&hak_knobs_current, k);
  hak_store_release(&hak_knobs_generation, 1);
}

HAK_HIDDEN void hak_ensure_init(void);

HAK_EXPORT int hak_knobs_get(hak_knobs* out) {
  if (!out || out->size < 2 * sizeof(uint32_t)) { errno = EINVAL; return -1; }
  hak_ensure_init();
  const hak_knobs* k = hak_knobs_read();
  size_t n = out->size < sizeof *k ? out->size : sizeof *k;
  memcpy(out, k, n);
  out->size = (uint32_t)n;
  return 0;
}
