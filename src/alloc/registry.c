/* registry.c — which 2 MiB chunks of the address space belong to hakmem.
 *
 * A two-level radix table: a static top array of leaf pointers (8 KiB of .bss) and
 * leaves of 65,536 segment pointers (512 KiB each, mapped on demand, so only the
 * pages for regions hakmem actually uses become resident). Leaves are installed with
 * a compare-and-swap and never freed, so lookups need no lock. Covers the 47-bit
 * user address space; anything above is reported as foreign. */
#include "alloc/alloc.h"
#include "prim/prim.h"

_Atomic(hak_reg_leaf*) hak_reg_top[1u << HAK_REG_TOP_BITS];

static hak_reg_leaf* registry_leaf(uintptr_t chunk) {
  _Atomic(hak_reg_leaf*)* slot = &hak_reg_top[chunk >> HAK_REG_LEAF_BITS];
  hak_reg_leaf* leaf = hak_load_acquire(slot);
  if (leaf) return leaf;
  hak_reg_leaf* fresh = hak_prim_map(sizeof(hak_reg_leaf));
  if (!fresh) return NULL;
  hak_reg_leaf* expected = NULL;
  if (atomic_compare_exchange_strong_explicit(slot, &expected, fresh, memory_order_acq_rel,
                                              memory_order_acquire)) {
    return fresh;
  }
  hak_prim_unmap(fresh, sizeof(hak_reg_leaf));
  return expected;
}

bool hak_registry_set(void* base, size_t size, hak_segment* seg) {
  uintptr_t first = (uintptr_t)base >> HAK_CHUNK_SHIFT;
  uintptr_t last = ((uintptr_t)base + size - 1) >> HAK_CHUNK_SHIFT;
  if (last >> (HAK_REG_TOP_BITS + HAK_REG_LEAF_BITS)) return false;
  for (uintptr_t c = first; c <= last; c++) {
    hak_reg_leaf* leaf = registry_leaf(c);
    if (!leaf) {
      if (seg) hak_registry_set(base, (c - first) << HAK_CHUNK_SHIFT, NULL);  /* undo */
      return false;
    }
    hak_store_release(&(*leaf)[c & ((1u << HAK_REG_LEAF_BITS) - 1)], seg);
  }
  return true;
}
