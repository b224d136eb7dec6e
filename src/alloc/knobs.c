/* knobs.c — the knob snapshot's alloc side: defaults from the options, validation,
 * consistent copies and installing a snapshot (see knobs.h for the slot protocol). */
#include "alloc/knobs.h"
#include "alloc/sizeclass.h"
#include "base/options.h"

#include <urcu-bp.h>

_Static_assert(HAKMEM_KNOB_CLASSES == HAK_NCLS, "knob classes match the size-class table");
_Static_assert(sizeof(hak_knobs) % sizeof(uint32_t) == 0, "snapshots are copied word by word");

static hak_knob_slot knobs_startup;
hak_knob_slot* hak_knobs_current = &knobs_startup;
_Atomic uint64_t hak_knobs_generation;
hak_knobs_process hak_knobs_proc;

#define KNOB_WORDS (sizeof(hak_knobs) / sizeof(uint32_t))
typedef uint32_t __attribute__((may_alias)) knob_word;   /* snapshots are copied by words */

void hak_knobs_defaults(hak_knobs* k) {
  *k = (hak_knobs){0};
  k->size = sizeof *k;
  k->version = HAKMEM_KNOBS_VERSION;
  long long bytes = hak_opt(HAK_OPT_TLS_CACHE_BYTES), capmax = hak_opt(HAK_OPT_TLS_CAP_MAX);
  long long grow_bytes = hak_opt(HAK_OPT_TLS_GROW_BYTES), grow_max = hak_opt(HAK_OPT_TLS_GROW_MAX);
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    long long cap = bytes / hak_cls_size[c];
    if (cap < 1) cap = 1;
    if (cap > capmax) cap = capmax;
    k->tls_cap[c] = (uint32_t)cap;
    long long ceil = grow_bytes / hak_cls_size[c];
    if (ceil < 1) ceil = 1;
    if (ceil > grow_max) ceil = grow_max;
    k->tls_cap_max[c] = (uint32_t)ceil;
    k->refill_batch[c] = (uint32_t)hak_opt(HAK_OPT_REFILL_BATCH);
    k->remote_drain_interval[c] = (uint32_t)hak_opt(HAK_OPT_REMOTE_DRAIN_INTERVAL);
  }
  k->tls_grow_budget_bytes = (uint64_t)hak_opt(HAK_OPT_TLS_GROW_BUDGET);
  k->sweep_interval = (uint32_t)hak_opt(HAK_OPT_SWEEP_INTERVAL);
  k->diet_pct = 100;
  k->purge_delay_ms = (uint32_t)hak_opt(HAK_OPT_PURGE_DELAY);
  k->partial_release_pages = (uint32_t)hak_opt(HAK_OPT_PARTIAL_RELEASE_PAGES);
  k->segment_cache_bytes = (uint64_t)hak_opt(HAK_OPT_SEGMENT_CACHE);
  k->segment_cache_dirty_bytes = (uint64_t)hak_opt(HAK_OPT_SEGMENT_CACHE_DIRTY);
  k->large_cache_bytes = (uint64_t)hak_opt(HAK_OPT_LARGE_CACHE);
  k->large_cache_entries = (uint32_t)hak_opt(HAK_OPT_LARGE_CACHE_ENTRIES);
  k->large_cache_dirty_bytes = (uint64_t)hak_opt(HAK_OPT_LARGE_CACHE_DIRTY);
  k->large_cache_unmap_delay_ms = (uint32_t)hak_opt(HAK_OPT_LARGE_CACHE_UNMAP_DELAY);
  k->large_reuse_slack_pct = (uint32_t)hak_opt(HAK_OPT_LARGE_REUSE_SLACK);
  k->realloc_shrink_keep_pct = 50;
  k->realloc_grow_headroom_pct = 25;
  k->realloc_nt_threshold = (uint64_t)hak_opt(HAK_OPT_REALLOC_NT_THRESHOLD);
  k->realloc_inplace = (uint32_t)hak_opt(HAK_OPT_REALLOC_INPLACE);
  long long hp = hak_opt(HAK_OPT_HUGE_PAGES);
  k->huge_pages = hp == HAK_HUGE_PAGES_AUTO ? 0 : (uint32_t)hp;        /* auto starts without */
}

static bool in(uint64_t v, uint64_t lo, uint64_t hi) { return v >= lo && v <= hi; }

int hak_knobs_validate(const hak_knobs* k) {
  if (k->version != HAKMEM_KNOBS_VERSION || k->size != sizeof *k) return -1;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    if (!in(k->tls_cap[c], 1, 65535) || !in(k->refill_batch[c], 1, 65535) ||
        !in(k->remote_drain_interval[c], 1, 1u << 20) || !in(k->tls_cap_max[c], 1, 65535)) return -1;
  }
  if (!in(k->sweep_interval, 1, 1u << 20) || !in(k->diet_pct, 1, 100) ||
      !in(k->purge_delay_ms, 0, 1000000) || !in(k->partial_release_pages, 1, 512) ||
      !in(k->segment_cache_bytes, 0, 1ull << 40) || !in(k->segment_cache_dirty_bytes, 0, 1ull << 40) ||
      !in(k->large_cache_bytes, 0, 1ull << 40) || !in(k->large_cache_entries, 0, 64) ||
      !in(k->realloc_shrink_keep_pct, 0, 100) || !in(k->realloc_grow_headroom_pct, 0, 100) ||
      !in(k->large_cache_dirty_bytes, 0, 1ull << 40) || !in(k->large_cache_unmap_delay_ms, 0, 1000000) ||
      !in(k->large_reuse_slack_pct, 0, 10000) || k->reserved != 0 ||
      !in(k->tls_grow_budget_bytes, 0, 1ull << 40) ||
      !in(k->realloc_nt_threshold, 0, 1ull << 40) || !in(k->realloc_inplace, 0, 1) ||
      !in(k->huge_pages, 0, 2)) return -1;
  return 0;
}

/* Read the current snapshot with `read` (into `out`) inside a read-side section, again
 * until no refill of the slot overlapped the read (its sequence was even and unchanged). */
static void snapshot_read(void (*read)(const hak_knobs* k, void* out), void* out) {
  for (;;) {
    urcu_bp_read_lock();
    hak_knob_slot* slot = rcu_dereference(hak_knobs_current);
    uint64_t s1 = hak_load_acquire(&slot->seq);
    read(&slot->k, out);
    atomic_thread_fence(memory_order_acquire);
    bool stable = !(s1 & 1) && hak_load_relaxed(&slot->seq) == s1;
    urcu_bp_read_unlock();
    if (stable) return;
  }
}

static void read_all(const hak_knobs* k, void* out) {
  knob_word* dst = (knob_word*)out;
  const knob_word* src = (const knob_word*)k;
  for (size_t i = 0; i < KNOB_WORDS; i++) dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void hak_knobs_copy(hak_knobs* out) { snapshot_read(read_all, out); }

void hak_knobs_class_of(const hak_knobs* k, unsigned c, hak_knobs_cls* out) {
  out->cls = c;
  out->tls_cap = __atomic_load_n(&k->tls_cap[c], __ATOMIC_RELAXED);
  out->tls_cap_max = __atomic_load_n(&k->tls_cap_max[c], __ATOMIC_RELAXED);
  out->refill_batch = __atomic_load_n(&k->refill_batch[c], __ATOMIC_RELAXED);
  out->remote_drain_interval = __atomic_load_n(&k->remote_drain_interval[c], __ATOMIC_RELAXED);
  out->diet_pct = __atomic_load_n(&k->diet_pct, __ATOMIC_RELAXED);
}

/* The few values one class needs (hak_class_setup): a copy of the whole snapshot cost
 * about 1,000 instructions per class a thread starts to use. */
static void read_class(const hak_knobs* k, void* out) {
  hak_knobs_cls* o = out;
  hak_knobs_class_of(k, o->cls, o);
}

void hak_knobs_class(unsigned c, hak_knobs_cls* out) {
  out->cls = c;
  snapshot_read(read_class, out);
}

void hak_knobs_fill(hak_knob_slot* slot, const hak_knobs* k) {
  uint64_t seq = hak_load_relaxed(&slot->seq);
  hak_store_relaxed(&slot->seq, seq + 1);       /* odd: readers of this slot retry */
  atomic_thread_fence(memory_order_release);
  knob_word* dst = (knob_word*)&slot->k;
  const knob_word* src = (const knob_word*)k;
  for (size_t i = 0; i < KNOB_WORDS; i++) __atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
  hak_store_release(&slot->seq, seq + 2);
  hak_knobs_process* p = &hak_knobs_proc;
  hak_store_relaxed(&p->purge_delay_ns, (uint64_t)k->purge_delay_ms * 1000000u);
  hak_store_relaxed(&p->segment_cache_bytes, k->segment_cache_bytes);
  hak_store_relaxed(&p->segment_cache_dirty_bytes, k->segment_cache_dirty_bytes);
  hak_store_relaxed(&p->large_cache_bytes, k->large_cache_bytes);
  hak_store_relaxed(&p->large_cache_entries, k->large_cache_entries);
  hak_store_relaxed(&p->large_cache_dirty_bytes, k->large_cache_dirty_bytes);
  hak_store_relaxed(&p->large_cache_unmap_delay_ns, (uint64_t)k->large_cache_unmap_delay_ms * 1000000u);
  hak_store_relaxed(&p->large_reuse_slack_pct, k->large_reuse_slack_pct);
  hak_store_relaxed(&p->partial_release_pages, k->partial_release_pages);
  hak_store_relaxed(&p->realloc_shrink_keep_pct, k->realloc_shrink_keep_pct);
  hak_store_relaxed(&p->realloc_grow_headroom_pct, k->realloc_grow_headroom_pct);
  hak_store_relaxed(&p->realloc_nt_threshold, k->realloc_nt_threshold);
  hak_store_relaxed(&p->realloc_inplace, k->realloc_inplace);
  hak_store_relaxed(&p->huge_pages, k->huge_pages);
}

void hak_knobs_init(void) {
  hak_knobs k;
  hak_knobs_defaults(&k);
  k.generation = 1;
  hak_knobs_fill(&knobs_startup, &k);          /* already current; no reader yet */
  hak_store_release(&hak_knobs_generation, 1);
}
