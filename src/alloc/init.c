/* init.c — the allocator's own start-up, run lazily by the first slow path.
 *
 * Programs call malloc before any constructor runs, so this is lock-free and
 * allocation-free: parse the options, check the size-class table, draw the free-block
 * and free-list keys, choose the tier of each class, build the start-up knob snapshot and create the
 * thread-exit key. Nothing is torn down at exit: other threads may still allocate after
 * destructors ran. What the layers above need at start-up (fork handlers, the exit
 * report) is the runtime layer's business (runtime/init.c). */
#include "alloc/alloc.h"
#include "alloc/knobs.h"
#include "base/options.h"
#include "prim/prim.h"

#include <sched.h>

_Atomic int hak_init_state;
uintptr_t hak_free_key;
uint8_t hak_cls_kind[HAK_NCLS];

HAK_COLD void hak_init_slow(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&hak_init_state, &expected, 1)) {
    while (hak_load_acquire(&hak_init_state) != 2) sched_yield();   /* another thread inits */
    return;
  }
  hak_options_init();
  hak_sizeclass_check();
  hak_free_key = (uintptr_t)hak_prim_random64();
  hak_link_key_init(hak_prim_random64());
  bool superslab = hak_opt(HAK_OPT_TINY_USE_SUPERSLAB) != 0;
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    hak_cls_kind[c] = c <= HAK_CLS_SS_LAST ? (superslab ? HAK_SEG_TINY : HAK_SEG_MID)
                    : c <= HAK_CLS_MID_LAST ? HAK_SEG_MID : HAK_SEG_POOL;
  }
  hak_knobs_init();
  hak_heap_stand_ins_init();
  hak_heap_set_caps(&hak_heap_global);
  hak_heap_key_create();
  hak_store_release(&hak_init_state, 2);
}

void hak_ensure_init(void) {
  if (HAK_LIKELY(hak_load_acquire(&hak_init_state) == 2)) return;
  hak_init_slow();
}
