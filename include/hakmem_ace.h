/* hakmem_ace.h — the knob snapshot: the values the allocator's slow paths steer by.
 *
 * Today the snapshot is built once from the HAKMEM_* options at start-up. It is the
 * seam through which the ACE learning layer (not built yet) will publish new values:
 * a snapshot is immutable once published, and `generation` grows with each one, so a
 * thread notices a new snapshot with one load and re-reads it on its next refill or
 * flush. The struct is versioned like hak_stats: set `size` before hak_knobs_get().
 */
#ifndef HAKMEM_ACE_H
#define HAKMEM_ACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_KNOBS_VERSION 1
#define HAKMEM_KNOB_CLASSES 112

typedef struct hak_knobs {
  uint32_t size;             /* in: sizeof(hak_knobs) of the caller; out: bytes filled */
  uint32_t version;          /* out: HAKMEM_KNOBS_VERSION */
  uint64_t generation;       /* 1 for the start-up snapshot, +1 per published snapshot */
  uint32_t tls_cap[HAKMEM_KNOB_CLASSES];  /* blocks a thread caches per size class */
  uint32_t bundle_width;     /* most blocks moved per refill */
  uint32_t drain_threshold;  /* slow-path events between sweeps of remote-free lists */
  uint32_t purge_delay_ms;   /* unused slabs stay resident this long */
  uint32_t reserved;
} hak_knobs;

/* Copy the current snapshot into *out (out->size must be set). Returns 0, or -1 with
 * errno EINVAL when out is NULL or out->size is smaller than size and version. */
int hak_knobs_get(hak_knobs* out);

#ifdef __cplusplus
}
#endif
#endif
