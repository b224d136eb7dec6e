/* integrity.c — free-list integrity: what turns a write over a free block (use after
 * free, an overflow from the block before it) into a message naming the block instead
 * of a wild pointer that malloc would hand out or follow.
 *
 * Every free block holds two words: `next`, encoded with hak_link_key (alloc.h), and
 * `key`, its free mark (hak_free_mark: hak_free_key tied to its address). The checks:
 *   - the malloc fast path decodes the link of the block it pops and stops when it is
 *     not plausible (hak_link_plausible: 16-aligned, inside the user space): two
 *     instructions. The key's low and top bits make zeros, user pointers and repeated
 *     bytes written over a link fail it (below);
 *   - every slow path that walks a list checks each link fully: refills from a slab's
 *     free list and remote drains (the block lies in that slab, on a block boundary,
 *     and carries its mark), flushes (the block lies in a slab of this heap and class),
 *     page release walks;
 *   - a hardened build (HAK_HARDENED) makes the fast pop's check the full one too, and
 *     ties links to their block's address.
 * Both words are cleared when a block is handed out, so no key reaches the program
 * through a block it holds. */
#include "alloc/slab.h"
#include "alloc/sizeclass.h"

uintptr_t hak_link_key;

void hak_link_key_init(uint64_t random) {
  uintptr_t k = (uintptr_t)random;
  /* Low 4 bits not all zero: a link overwritten with zeros, or with any 16-aligned
   * pointer, decodes unaligned. Top 17 bits not all zero: a link overwritten with a
   * user-space value decodes outside the user space. Bytes repeated over a link
   * (memset) pass only when they match the key's own low nibble and top 17 bits. */
  k = (k & ~(uintptr_t)15) | (1u + (unsigned)((k >> 4) % 15));   /* random64 sets bit 0 */
  if ((k >> 47) == 0) k |= (uintptr_t)1 << (47 + (unsigned)((k >> 8) % 17));
  hak_link_key = k;
}

void hak_list_corrupt(const char* fn, const void* block, unsigned cls, const void* link) {
  hak_fatal_block(fn, "free list corrupted (a write after free, or past the end of a block?)", block,
                  hak_cls_size[cls], "links to", (uintptr_t)link);
}

void hak_mark_corrupt(const char* fn, const void* block, unsigned cls) {
  hak_fatal_block(fn, "free block overwritten (a write after free, or past the end of a block?)", block,
                  hak_cls_size[cls], NULL, 0);
}

hak_slab* hak_tc_block_slab_slow(const hak_heap* h, unsigned cls, const hak_block* b) {
  uintptr_t a = (uintptr_t)b;
  if (!hak_link_plausible(b) || b == NULL) return NULL;
  hak_segment* seg = hak_registry_lookup(a);
  if (seg == NULL || seg->kind == HAK_SEG_LARGE) return NULL;   /* the header page: below slab 0's start */
  if (hak_load_relaxed(&seg->heap) != h) return NULL;
  hak_slab* s = hak_slab_of(seg, a);
  return s->cls == cls && hak_slab_is_block(s, a) && b->key == hak_free_mark(b) ? s : NULL;
}
