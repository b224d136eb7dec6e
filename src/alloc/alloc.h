/* alloc.h — the alloc layer's internal types and prototypes (grouped by the .c file
 * that defines them).
 *
 * Glossary
 *   chunk     a 2 MiB-aligned 2 MiB piece of address space; the registry maps each
 *             chunk hakmem uses to the segment that covers it.
 *   segment   one mapping made by hakmem, chunk-aligned, with a header at its start:
 *             a tiny SuperSlab (2 MiB, 32 slabs of 64 KiB), a mid segment (4 MiB, 8 slabs
 *             of 512 KiB), a pool segment (one slab, sized for its class) or a large block.
 *   slab      a piece of a segment cut into blocks of one size class.
 *   block     what malloc returns. A free block holds `next` and `key` in its first
 *             16 bytes; key == hak_free_mark(block) marks it free (double-free detection).
 *   heap      a thread's allocator state: its TLS lists (one per class), its slabs and
 *             segments. A segment belongs to exactly one heap (or is abandoned); only the
 *             owner touches a slab's local state; other threads push to the slab's
 *             remote list.
 *
 * Invariants
 *   - slab->used counts blocks outside the slab: with the program or in a TLS list.
 *   - a slab with used == 0 and no remote blocks may be given back to its segment.
 *   - a segment's owner field changes only on its owner's thread (abandon) or under the
 *     abandoned-list lock (adopt, reclaim), so "seg->heap == my heap" is a safe local test.
 */
#ifndef HAK_ALLOC_H
#define HAK_ALLOC_H

#include "base/base.h"
#include "base/lock.h"
#include "alloc/sizeclass.h"
#include "alloc/debug_counters.h"

#define HAK_CHUNK_SHIFT 21
#define HAK_CHUNK_SIZE  ((size_t)1 << HAK_CHUNK_SHIFT)        /* 2 MiB */
#define HAK_SEG_MAGIC   0x68616b6du                           /* "hakm" */
#define HAK_SEG_HDR     ((size_t)4096)     /* header page of a segment: struct + slab table */

typedef struct hak_block {
  struct hak_block* next;
  uintptr_t         key;      /* hak_free_mark(block) while free, 0 once handed out */
} hak_block;

/* Free-list links are encoded (safe-linking, integrity.c): a free block's `next` holds
 * the pointer XOR hak_link_key, a per-process random value (and in a hardened build XOR
 * the block's address >> 12 as well). The key's low 4 bits and its top 17 bits are
 * never all zero, so a link overwritten with zeros, with a user pointer or with most
 * other values decodes to an address with one of those bits set, which no block has:
 * the pop that meets it stops the program with a message (hak_link_plausible). */
#if HAK_HARDENED
#define HAK_ENC(where, ptr) ((hak_block*)(((uintptr_t)(ptr)) ^ (((uintptr_t)(where)) >> 12) ^ hak_link_key))
#else
#define HAK_ENC(where, ptr) ((hak_block*)(((uintptr_t)(ptr)) ^ hak_link_key))
#endif
#define HAK_DEC(where, ptr) HAK_ENC(where, ptr)
/* Bits no block address has: below 16-byte alignment, above the 47-bit user space. */
#define HAK_LINK_BAD_BITS ((uintptr_t)0xffff80000000000full)

enum hak_seg_kind { HAK_SEG_TINY, HAK_SEG_MID, HAK_SEG_POOL, HAK_SEG_LARGE, HAK_SEG_KINDS };
enum hak_seg_state { HAK_SEGST_OWNED = 1, HAK_SEGST_ABANDONED, HAK_SEGST_CACHED, HAK_SEGST_LARGE_LIVE,
                     HAK_SEGST_LARGE_FREE };
enum hak_slab_state { HAK_SLAB_UNUSED = 0, HAK_SLAB_PARTIAL, HAK_SLAB_FULL };

struct hak_heap;

typedef struct hak_slab {
  /* read by every free */
  uint8_t*            start;    /* block 0 */
  _Atomic(uint8_t*)   bump;     /* first never-handed-out block (grows only) */
  uint64_t            divmagic; /* floor(2^64 / bsize) + 1 (slab.h: hak_slab_divmagic) */
  uintptr_t           handed;   /* (bump - start) * divmagic: off * divmagic < handed iff
                                   off is a block that was handed out (slab.h), for the
                                   owner's free fast path: written with bump under the
                                   heap's lock; read by the owner only (no other thread
                                   frees into a slab whose blocks are all home, the only
                                   time a scavenger writes it) */
  struct hak_tcache*  tc;       /* the owner's TLS list of cls: set by the owner when it
                                   gives the slab a class and when it enters the slab in its
                                   free map (a new owner after adoption) */
  uint32_t            bsize;    /* block size */
  uint16_t            cls;      /* size class */
  uint8_t             state;    /* hak_slab_state */
  uint8_t             idx;      /* index in the segment */
  bool                pages_clean; /* every free block's inner pages are given back; cleared
                                      when a block comes home (under the heap's lock) */
  uint16_t            parked_pages; /* blocks under two pages, 64 KiB slabs: pages given
                                       back while every block on them was free (bit i: the
                                       i-th page from the one holding `start`); the blocks
                                       touching them are parked, off `free` (slab.c) */
  /* under the owning heap's lock (or the lock of the list the segment is on) */
  hak_block*          free;     /* local free list */
  uint8_t*            end;      /* start + capacity * bsize */
  uint32_t            used;     /* blocks outside the slab */
  uint32_t            nfree;    /* length of `free` */
  uint64_t            freed_at; /* unused slabs: when given back (ns), for the purge delay */

  struct hak_slab*    next;     /* in the owner's partial/full list of this class */
  struct hak_slab*    prev;
  /* written by other threads */
  _Atomic(hak_block*) remote;   /* MPSC stack of cross-thread frees */
} hak_slab;

typedef struct hak_segment {
  uint32_t               magic;      /* HAK_SEG_MAGIC */
  uint8_t                kind;       /* hak_seg_kind */
  uint8_t                slab_shift; /* log2 of the slab size (40 for single-slab segments) */
  uint8_t                nslabs;
  _Atomic uint8_t        state;      /* hak_seg_state */
  _Atomic(struct hak_heap*) heap;    /* owner; NULL when abandoned, cached or large */
  size_t                 size;       /* bytes mapped, a multiple of HAK_CHUNK_SIZE */
  uint32_t               free_slabs; /* bitmap of unused slabs */
  uint32_t               used_slabs;
  uint32_t               dirty_free; /* unused slabs whose pages are still resident */
  uint16_t               pool_cls;   /* pool segments: their class */
  struct hak_segment*    next;       /* in the owner's list, the abandoned list or the cache */
  struct hak_segment*    prev;
  struct hak_heap*       linked;     /* the heap whose segment list holds it (checks only) */
  /* the list of all segments (seglist.c), under its lock */
  struct hak_segment*    all_next;
  struct hak_segment*    all_prev;
  _Atomic uint32_t       pins;       /* walkers visiting it: it is not unmapped meanwhile */
  _Atomic uint32_t       abandoned_live; /* abandoned: blocks still out, counted down by the
                                        frees that find it abandoned (a hint: heap.c) */
  /* large blocks only */
  uint8_t*               user;       /* the pointer malloc returned */
  size_t                 usable;     /* bytes usable at `user` */
  size_t                 align;      /* alignment the mapping was made for */
  bool                   fresh;      /* never handed out before / decommitted: reads as zero */
  bool                   huge;       /* madvised MADV_HUGEPAGE (all or part of it) */
  /* cached large spans (large.c): [dirty_lo, dirty_hi) is where old data may lie past
   * the header page (which holds the header and zeros); empty (0, 0) exactly when
   * fresh. origin: the start of the mapping the span is a piece of (joins stay within
   * one, so mremap never meets a span of two kernel mappings). */
  size_t                 dirty_lo, dirty_hi;
  uintptr_t              origin;
  uint64_t               cached_at;  /* when it entered a cache (ns), for the purge delay */
  uint32_t               purged;     /* slabs decommitted by a purge, not yet reused
                                        (their reuse counts as a refault) */
  hak_slab               slabs[];
} hak_segment;

/* Sampled slow-path latency: one refill in HAK_LAT_SAMPLE is timed, into buckets of
 * log2(ns) (bucket b holds [2^(b-1), 2^b) ns). */
#define HAK_LAT_SAMPLE  64
#define HAK_LAT_BUCKETS 40

/* What an upper layer wants run now and then from a slow path with no allocator lock
 * held (the ACE thread's lazy start). Set once at start-up; NULL: nothing. */
HAK_HIDDEN extern _Atomic(void (*)(void)) hak_slow_hook;
/* Called by a thread whose heap went away at its exit (its key destructor), no lock
 * held: the ACE thread must not outlive the program's last thread (thread.c). */
HAK_HIDDEN extern _Atomic(void (*)(void)) hak_thread_exit_hook;
#define HAK_SLOW_HOOK_PERIOD 16       /* slow paths of a thread between calls: python3
                                        running 3 s makes about 400 in all, so with 256 the
                                        hook came once, before the 1 s start delay, and
                                        ACE never started in it */

/* A thread's cache of free blocks for one class: a singly linked list. The free fast
 * path tests and counts down `room` in one instruction; the length is cap - room. */
typedef struct hak_tcache {
  hak_block* head;
  int32_t    room;     /* blocks the list may still take (cap - length); < 0 only while
                          a full list is being flushed */
  uint32_t   cap;      /* flush when the length would exceed cap */
  uint64_t   nfree;    /* blocks this thread freed into the list (stats) */
} hak_tcache;

/* How the cap of one class moves (tls_cache.c; slow paths only): from `base`, the
 * snapshot's tls_cap after the diet, up to `ceil`, its tls_cap_max after the diet (at
 * least base), doubling when a refill comes soon after a flush, halving back when the
 * class serves fewer operations than its cap over a purge delay. */
typedef struct hak_tc_grow {
  uint32_t base, ceil;
  uint32_t batch_knob;  /* refill_batch of the snapshot: batch_max is the lesser of it and cap/2 */
  uint64_t flush_ops;   /* hak_class_ops + 1 at the class's last flush of a full list
                           (0: none since its last refill) */
  uint64_t seen_ops;    /* grown classes: hak_class_ops at the start of the sweep's */
  uint64_t seen_at;     /* window of one purge delay, and when it started (ns; 0: none) */
  uint32_t borrows;     /* refills in a row served by a larger class (tls_cache.c) */
  uint16_t pingpong;    /* ... whose lent block came straight back, in a row */
  uint16_t lender;      /* class of the last lent block */
  void*    last_borrowed; /* the block the last of them got, and its lender's */
  uint64_t lender_nfree;  /* count of frees into its TLS list then */
  uint64_t cut_flushes; /* the class's flush count when it last cut never-used blocks
                           (borrowing, tls_cache.c) */
  bool     came_back;   /* a refill found blocks back on the slabs since that cut */
} hak_tc_grow;

/* Slow-path counters of one class in one heap (plain stores, summed by collect.c).
 * The malloc fast path counts nothing: every block it hands out came into the TLS list
 * by a refill or a free and has not left by a flush, so the blocks allocated are
 * refilled + tc.nfree - flushed - the list's length (hak_heap_allocs). */
typedef struct hak_cls_counters {
  uint64_t refills, flushes, remote_out;
  uint64_t refilled;   /* blocks refills took from slabs (the one a refill returns too) */
  uint64_t flushed;    /* blocks flushes gave back to slabs */
} hak_cls_counters;

typedef struct hak_heap_counters {
  uint64_t slabs_new, segs_new, segs_adopted;
  uint64_t seg_taken_at;   /* when this heap last set up or adopted a segment (hak_prim_now_ns) */
} hak_heap_counters;

/* What a realloc (or hak_expand) did: one per-thread counter each, in this order the
 * realloc_* and expand_failed fields of hak_stats (HAKMEM_STATS_REALLOC_FIELDS). */
enum {
  HAK_RE_IN_PLACE,       /* the size fits the block's usable size: kept as it is */
  HAK_RE_SHRUNK,         /* a large block gave its tail back, in place */
  HAK_RE_GROWN,          /* a large block grew in place (mremap without moving) */
  HAK_RE_MREMAP,         /* a large block's pages moved (mremap), nothing copied */
  HAK_RE_MEMCPY,         /* moved to a new block with memcpy */
  HAK_RE_NT,             /* moved to a new block with non-temporal stores */
  HAK_RE_FAILED,         /* realloc returned NULL, the block unchanged */
  HAK_RE_EXPAND_FAILED,  /* hak_expand could not grow the block in place */
  HAK_RE_COUNT
};

/* Timed realloc copies, for ACE's choice of realloc_nt_threshold: copies of
 * 2^HAK_COPY_SAMPLE_MIN_SHIFT bytes or more (each timed: a clock read is nothing next to
 * a copy of 1 MiB), by method (0 memcpy, 1 non-temporal) and size bucket
 * (floor(log2(bytes)) - HAK_COPY_SAMPLE_MIN_SHIFT). Every HAK_COPY_EXPLORE-th of them
 * uses the method the threshold did not pick, so that both have samples. */
#define HAK_COPY_SAMPLE_MIN_SHIFT 20
#define HAK_COPY_BUCKETS          20      /* 1 MiB .. 1 TiB */
#define HAK_COPY_EXPLORE          16
typedef struct hak_copy_samples {
  uint64_t n[2][HAK_COPY_BUCKETS];        /* copies timed */
  uint64_t bytes[2][HAK_COPY_BUCKETS];    /* bytes they copied */
  uint64_t ns[2][HAK_COPY_BUCKETS];       /* time they took */
} hak_copy_samples;

/* The free fast path's map from 64 KiB units of address space to this heap's slabs:
 * direct-mapped by the unit's tag, its number + 1 (entry i holds tags t with
 * t % HAK_FC_SIZE == i). An entry names a slab of a segment h owns; the entries of a
 * segment go when it leaves h (hak_heap_unlink_segment), and only the owner's thread
 * fills them (free.c). An empty entry i holds HAK_FC_EMPTY(i), a tag it can never hold.
 * The + 1 (an lea where a mov was) makes a zeroed map empty for every user-space
 * address, NULL included: no user address has tag 0, so the empty heap every thread
 * starts with can be zero (.bss) and is readable by free(NULL) before initialization
 * (37 KiB of initialized data made every process map that much more of the library's
 * file). Heaps still set entry 0 to HAK_FC_EMPTY(0), for wild pointers in the top
 * 64 KiB of the address space. */
#define HAK_FC_SHIFT 16
#define HAK_FC_SIZE  1024     /* 64 MiB of slabs; 16 KiB of the heap */
#define HAK_FC_EMPTY(i) ((uintptr_t)(i) + 1)
HAK_INLINE uintptr_t hak_fc_tag(uintptr_t a) { return (a + ((uintptr_t)1 << HAK_FC_SHIFT)) >> HAK_FC_SHIFT; }

/* Cross-thread frees waiting to be pushed together: per slot, a chain of blocks of one
 * slab of another heap (they still count in that slab's `used`, so the slab stays).
 * Class cls uses slot cls % HAK_RB_SLOTS: each tiny class has its own, so a consumer of
 * mixed sizes from one producer extends a chain with nearly every free (one slot for
 * all took a compare-and-swap per block there). A slot is pushed with one
 * compare-and-swap when it is full or a free of its class goes to another slab; all
 * slots on this thread's refills and flushes, hak_thread_flush, stats collection and
 * thread exit; counted as this heap's frees when pushed (remote.c).
 * A slot is full at hak_rb_limit(block size) blocks: 32, or as many as fit in 4 KiB
 * (at least 2). Blocks waiting here are memory their owner cannot reuse, so it cuts
 * new ones meanwhile: 31 blocks of each of 32 classes were half a MiB held by
 * micro-xthread's consumer of 16-1024 B blocks (mimalloc pushes every block). */
#define HAK_RB_MAX 32
#define HAK_RB_MIN 2
#define HAK_RB_BYTES 4096u
#define HAK_RB_SLOTS 32
HAK_INLINE uint32_t hak_rb_limit(uint32_t bsize) {
  uint32_t n = HAK_RB_BYTES / bsize;
  return n < HAK_RB_MIN ? HAK_RB_MIN : n > HAK_RB_MAX ? HAK_RB_MAX : n;
}

typedef struct hak_rbuf {
  struct hak_slab*  slab;       /* NULL: empty */
  hak_block*        head;       /* chain (newest first) */
  hak_block*        tail;
  uint32_t          left;       /* room: hak_rb_limit - length */
} hak_rbuf;

typedef struct hak_heap {
  hak_spin          lock;                    /* slab and segment state of this heap (not tc) */
  hak_tcache        tc[HAK_NCLS];            /* hot: the fast path touches only this, */
  uintptr_t         fc_unit[HAK_FC_SIZE];    /* ... these two arrays */
  hak_slab*         fc_slab[HAK_FC_SIZE];
  uint32_t          rb_mask;                 /* remote buffer slots that hold a chain */
  hak_rbuf          rb[HAK_RB_SLOTS];        /* remote buffer, by class % HAK_RB_SLOTS */
  hak_slab*         partial[HAK_NCLS];       /* slabs with free blocks */
  hak_slab*         full[HAK_NCLS];          /* slabs without local free blocks */
  uint64_t          cls_ready[(HAK_NCLS + 63) / 64]; /* classes set up (hak_class_ready) */
  uint16_t          batch[HAK_NCLS];         /* blocks per refill (grows to batch_max) */
  uint16_t          batch_max[HAK_NCLS];
  uint16_t          refills_since_drain[HAK_NCLS];
  uint32_t          drain_interval[HAK_NCLS]; /* knob remote_drain_interval */
  hak_tc_grow       grow[HAK_NCLS];          /* the caps' growth (tls_cache.c) */
  _Atomic uint8_t   full_remote[HAK_NCLS];   /* set by other threads (remote.c) when
                                                they push on the empty remote stack of a
                                                full slab of the class: a refill about to
                                                cut new blocks revives full slabs first
                                                (tls_cache.c). A hint: may be stale. */
  uint64_t          grow_budget;             /* bytes of capacity beyond the base caps allowed */
  uint64_t          grown_bytes;             /* ... and taken: sum of (cap - base) x block size */
  hak_segment*      segs[HAK_SEG_KINDS];     /* owned segments per kind */
  uint32_t          slow_events;             /* refills + flushes since the last sweep */
  _Atomic uint64_t  activity;                /* refills + flushes ever (idle detection) */
  uint32_t          abandoned_frees;         /* frees into abandoned segments (reclaim pacing) */
  uint32_t          sweep_interval;          /* from the knob snapshot of knob_gen */
  uint32_t          sweep_kind;              /* heap_sweep's cursor: kind and next segment */
  hak_segment*      sweep_next;
  uint64_t          purge_delay_ns;          /* from the knob snapshot of knob_gen */
  uint64_t          knob_gen;                /* generation of the knobs copied in */
  bool              is_global;               /* the shared heap of exiting threads */
  bool              reaping;                 /* torn down by another thread (under the pool lock) */
  int32_t           owner_pid;               /* process and thread that own it: a heap whose */
  int32_t           owner_tid;               /* thread is gone untorn-down is reaped (heap.c) */
  struct hak_heap*  park_next;               /* parked (its thread exited, heap kept whole):
                                                the next older parked heap (heap pool lock) */
  uint64_t          parked_at;               /* when it was parked (hak_prim_now_ns) */
  bool              hold_segments;           /* set by a scavenger holding the lock: empty
                                                segments stay (it has one pinned) */
  uint32_t          hook_countdown;          /* slow paths until the next hak_slow_hook call */
  uint32_t          lat_count;               /* refills; every HAK_LAT_SAMPLE-th is timed */
  uint64_t          lat_hist[HAK_LAT_BUCKETS]; /* timed refills by log2(ns) (stats, ACE) */
  bool              in_set_caps;             /* re-entry guard (urcu registration may malloc) */
  uint64_t          scav_activity;           /* scavengers only (under the lock): activity */
  uint64_t          scav_idle_since;         /* seen last, and since when it has not moved */
  uint64_t          scav_tc_ops;             /* ... the TLS lists' operations (tc_trim.c), */
  uint64_t          scav_tc_since;           /* since when they have not moved, and */
  bool              scav_tc_trimmed;         /* whether the lists were cut since then */
  uint32_t          tc_cut[HAK_NCLS];        /* blocks cut off the TLS lists by another
                                                thread (tc_trim.c), under the lock; the
                                                owner's next refill or flush counts them
                                                out of the list's length (room) */
  struct hak_heap*  all_next;                /* live heaps */
  struct hak_heap*  all_prev;
  hak_heap_counters ctr;
  hak_cls_counters  cc[HAK_NCLS];
  uint64_t          realloc_ctr[HAK_RE_COUNT]; /* realloc outcomes (free.c) */
  uint32_t          copy_count;              /* big realloc copies (exploration pacing) */
  hak_copy_samples  copy;                    /* timed big realloc copies (free.c, ACE) */
#if HAK_DEBUG_COUNTERS
  uint64_t          dbg[HAK_DBG_COUNT];
#endif
} hak_heap;

/* Blocks of class c that h's thread has allocated (see hak_cls_counters); read by other
 * threads racily, so never below 0. */
HAK_INLINE uint64_t hak_heap_allocs(const hak_heap* h, unsigned c) {
  const volatile hak_tcache* tc = &h->tc[c];
  const volatile hak_cls_counters* cc = &h->cc[c];
  int64_t len = (int64_t)tc->cap - (int64_t)tc->room - (int64_t)((const volatile uint32_t*)h->tc_cut)[c];
  int64_t n = (int64_t)(cc->refilled + tc->nfree - cc->flushed) - (len > 0 ? len : 0);
  return n > 0 ? (uint64_t)n : 0;
}

/* Blocks of class c that h's thread allocated or freed into its TLS list (owner only). */
HAK_INLINE uint64_t hak_class_ops(const hak_heap* h, unsigned c) { return hak_heap_allocs(h, c) + h->tc[c].nfree; }

/* ---- init.c ------------------------------------------------------------------- */
HAK_HIDDEN extern _Atomic int hak_init_state;        /* 0 none, 1 running, 2 ready */
HAK_HIDDEN extern uintptr_t hak_free_key;
/* The mark a free block carries in its second word: the random key tied to the block's
 * address. Bytes copied out of a free block into another block never read as that
 * block's mark, so a program that copies indeterminate bytes (a struct's padding, a
 * buffer's unused tail) is never stopped with a false "double free". */
HAK_INLINE uintptr_t hak_free_mark(const void* b) { return hak_free_key ^ (uintptr_t)b; }
/* The free-list link key (integrity.c), drawn with hak_free_key; no block the program
 * holds carries it: a block handed out has both words cleared. */
HAK_HIDDEN extern uintptr_t hak_link_key;
/* A decoded link that can be followed: NULL or 16-aligned inside the user space. */
HAK_INLINE bool hak_link_plausible(const void* n) { return ((uintptr_t)n & HAK_LINK_BAD_BITS) == 0; }
HAK_HIDDEN extern uint8_t hak_cls_kind[HAK_NCLS];     /* segment kind that serves a class */
HAK_HIDDEN void hak_ensure_init(void);
HAK_HIDDEN void hak_init_slow(void);

/* ---- registry.c: chunk -> segment --------------------------------------------- */
#define HAK_REG_LEAF_BITS 16
#define HAK_REG_TOP_BITS  (47 - HAK_CHUNK_SHIFT - HAK_REG_LEAF_BITS)
typedef _Atomic(hak_segment*) hak_reg_leaf[1u << HAK_REG_LEAF_BITS];
HAK_HIDDEN extern _Atomic(hak_reg_leaf*) hak_reg_top[1u << HAK_REG_TOP_BITS];

/* The segment covering address a, or NULL when hakmem does not manage it. */
HAK_INLINE hak_segment* hak_registry_lookup(uintptr_t a) {
  uintptr_t c = a >> HAK_CHUNK_SHIFT;
  if (HAK_UNLIKELY(c >> (HAK_REG_TOP_BITS + HAK_REG_LEAF_BITS))) return NULL;
  hak_reg_leaf* leaf = hak_load_acquire(&hak_reg_top[c >> HAK_REG_LEAF_BITS]);
  if (HAK_UNLIKELY(leaf == NULL)) return NULL;
  return hak_load_acquire(&(*leaf)[c & ((1u << HAK_REG_LEAF_BITS) - 1)]);
}
/* Map every chunk of [base, base+size) to seg (or to NULL). False if out of memory. */
HAK_HIDDEN bool hak_registry_set(void* base, size_t size, hak_segment* seg);

/* ---- segment.c: segments, slabs inside them, the empty-segment cache ----------- */
HAK_HIDDEN hak_segment* hak_segment_new(hak_heap* heap, unsigned kind, unsigned pool_cls);
/* An empty segment goes to the cache (or is unmapped): released by its owner, or once
 * abandoned and emptied by other threads' frees (see segment.c). */
HAK_HIDDEN void hak_segment_release(hak_segment* seg);
/* Off the list of all segments and the registry, then unmapped (a segment or a large
 * block's mapping that is on no other list); a refused munmap is counted. */
HAK_HIDDEN void hak_segment_unmap(hak_segment* seg);
HAK_HIDDEN void hak_segment_release_abandoned(hak_segment* seg);
HAK_HIDDEN hak_slab* hak_segment_take_slab(hak_segment* seg, unsigned cls);
HAK_HIDDEN void hak_segment_give_slab(hak_segment* seg, hak_slab* s);
/* Decommit unused slabs that have stayed unused for `delay_ns`; returns bytes released. */
HAK_HIDDEN size_t hak_segment_purge(hak_segment* seg, uint64_t now, uint64_t delay_ns);
/* Decommit cached empty segments unused for `delay_ns`; returns bytes released. */
HAK_HIDDEN size_t hak_segment_cache_purge(uint64_t now, uint64_t delay_ns);
/* `mapped` bytes were just mapped from the OS (a segment none in the cache fitted, a
 * large block): the cache's resident segments did not serve them, so as many of their
 * bytes go back, oldest first, down to segment_cache_dirty_bytes. Keeping what was freed
 * pays only when it is reused: without this, realloc_bench's cases (pool classes, then
 * large blocks) kept the last case's segments beside the new memory (peak RSS 33-37 ->
 * 43-45 MiB). */
HAK_HIDDEN void   hak_segment_cache_exchange(size_t mapped);
HAK_HIDDEN size_t hak_segment_cache_dirty_bytes(void);
HAK_HIDDEN void hak_segment_fork_lock(void);
HAK_HIDDEN void hak_segment_fork_unlock(bool child);

/* ---- seglist.c: the list of all segments, walkable by any thread ---------------- */
typedef struct hak_seg_cursor {
  hak_segment*           next;         /* where the walk resumes (NULL: at the end) */
  struct hak_seg_cursor* next_cursor;  /* open cursors (seglist.c) */
} hak_seg_cursor;
HAK_HIDDEN void hak_seglist_add(hak_segment* seg);
/* Unlink seg and wait until no walker visits it; then it may be unmapped. */
HAK_HIDDEN void hak_seglist_remove(hak_segment* seg);
HAK_HIDDEN void hak_seglist_cursor_open(hak_seg_cursor* c);
HAK_HIDDEN void hak_seglist_cursor_close(hak_seg_cursor* c);
/* The next segment of the walk, pinned (hak_seglist_unpin when done with it), or NULL at
 * the end of the list (with `wrap`, start again at the head; NULL only when empty). */
HAK_HIDDEN hak_segment* hak_seglist_next(hak_seg_cursor* c, bool wrap);
HAK_HIDDEN void hak_seglist_unpin(hak_segment* seg);
HAK_HIDDEN size_t hak_seglist_count(void);
/* Of the first `max` segments on the list (the newest), the owned ones (not large
 * blocks, not cached), their first 2 MiB: the bytes sampled and the bytes resident
 * (mincore), how much of the small-block heap 2 MiB pages would bring in that 4 KiB
 * pages did not. */
HAK_HIDDEN void hak_seglist_residency(size_t max, uint64_t* mapped, uint64_t* resident);
HAK_HIDDEN void hak_seglist_fork_lock(void);
HAK_HIDDEN void hak_seglist_fork_unlock(bool child);

/* ---- heap.c: thread heaps, abandonment and adoption --------------------------- */
HAK_HIDDEN extern HAK_TLS hak_heap* hak_tls_heap;
HAK_HIDDEN extern hak_heap hak_heap_empty;   /* threads that have not allocated yet */
HAK_HIDDEN extern hak_heap hak_heap_dead;    /* threads whose heap was torn down */
HAK_HIDDEN extern hak_heap hak_heap_global;  /* serves exiting threads, under hak_global_lock */
HAK_HIDDEN extern hak_lock hak_global_lock;
/* True for a thread's own heap (not the empty, dead or global stand-ins). */
/* Lock h for slab/segment work: the owner blocks (a scavenger holds it briefly). */
HAK_INLINE void hak_heap_lock(hak_heap* h) { hak_spin_take(&h->lock); }
HAK_INLINE void hak_heap_unlock(hak_heap* h) { hak_spin_release(&h->lock); }
HAK_INLINE bool hak_heap_is_thread_heap(const hak_heap* h) {
  return h != &hak_heap_empty && h != &hak_heap_dead && !h->is_global;
}
HAK_HIDDEN hak_heap* hak_heap_thread_init(void);
HAK_HIDDEN void hak_heap_thread_exit(void* heap);
HAK_HIDDEN void hak_heap_abandon(hak_heap* h);
HAK_HIDDEN hak_segment* hak_heap_adopt(hak_heap* h, unsigned kind, unsigned cls);
HAK_HIDDEN void hak_heap_link_segment(hak_heap* h, hak_segment* seg);
HAK_HIDDEN void hak_heap_unlink_segment(hak_heap* h, hak_segment* seg);
HAK_HIDDEN void hak_abandoned_reclaim(void);
/* A free took the last block of abandoned segment seg (of `kind`) out of its count and
 * has pushed it: release seg if it is still abandoned and now empty. seg is compared,
 * never read, until found on the abandoned list (it may be gone already). */
HAK_HIDDEN void hak_abandoned_collect(const hak_segment* seg, unsigned kind);
HAK_HIDDEN void hak_heap_fork_lock(void);
HAK_HIDDEN void hak_heap_fork_unlock(bool child);
HAK_HIDDEN void hak_heap_key_create(void);
/* Sets up hak_heap_dead and hak_heap_global (zero until then) before either is used. */
HAK_HIDDEN void hak_heap_stand_ins_init(void);
/* Tear down up to `max` heaps whose threads exited without their key destructor (see
 * heap.c), looking at up to `checks` heaps for each; the caller holds no allocator lock
 * and no segment pin. Returns how many. */
HAK_HIDDEN unsigned hak_heap_reap_orphans(unsigned max, unsigned checks);
/* Tear down the heaps parked (by exited threads) before `before` (hak_prim clock;
 * UINT64_MAX: all of them), as their threads' exit would have; returns how many. The
 * release walk tears down those parked for HAK_PARK_IDLE_DELAYS purge delays. */
#define HAK_PARK_IDLE_DELAYS 10
HAK_HIDDEN unsigned hak_heap_unpark(uint64_t before);
/* Periodic upkeep: drain remote frees, give back empty slabs, purge unused pages. */
HAK_HIDDEN void hak_heap_sweep(hak_heap* h);
/* One segment of h's sweep: drain, give back slabs empty for `delay`, purge. Returns
 * the bytes purged; *gone when the segment itself was released (never while
 * h->hold_segments). */
HAK_HIDDEN size_t hak_heap_sweep_segment(hak_heap* h, hak_segment* seg, uint64_t now, uint64_t delay,
                                         bool* gone);
/* A scavenger's visit of an abandoned segment it has pinned; bytes given back. */
HAK_HIDDEN size_t hak_abandoned_release(hak_segment* seg, uint64_t now, uint64_t delay, unsigned min_pages,
                                        bool small, uint64_t deadline);
/* Threads of this process, other than `except_tid`, that own a heap and are still
 * there (tgkill): the program's threads that have allocated. Walks every heap. */
HAK_HIDDEN unsigned hak_heap_live_threads(int except_tid);
/* Call fn on every live heap, the retired-heaps accumulator and the global heap, under
 * the heap pool lock (stats). Counters of other threads are read without ordering. */
HAK_HIDDEN void hak_heap_foreach(void (*fn)(const hak_heap* h, void* arg), void* arg,
                                 uint64_t* started, uint64_t* ended);

/* ---- integrity.c: free-list link checks and what they say -------------------- */
HAK_HIDDEN void hak_link_key_init(uint64_t random);
/* A link of free block `block` (class cls) decoded to `link`, which is no block. */
HAK_HIDDEN HAK_NORETURN HAK_COLD void hak_list_corrupt(const char* fn, const void* block, unsigned cls,
                                                       const void* link);
/* Free block `block` (class cls) lost its free mark: something wrote over it. */
HAK_HIDDEN HAK_NORETURN HAK_COLD void hak_mark_corrupt(const char* fn, const void* block, unsigned cls);
/* The slab of b when b is a free block that may sit in h's TLS list of class cls: a
 * block start of a slab of that class in a segment h owns, carrying its free mark; else
 * NULL (h's owner or lock holder only). hak_tc_block_slab (slab.h) tries the heap's
 * free map inline and calls this for the rest (the registry). */
HAK_HIDDEN hak_slab* hak_tc_block_slab_slow(const hak_heap* h, unsigned cls, const hak_block* b);

/* ---- tc_trim.c: an idle thread's TLS lists cut short by another thread ---------- */
/* The link a cut in progress leaves in the last block kept (decoded): not plausible, so
 * a pop that meets it fails over to its slow path, which waits for the cut (integrity
 * checks know it too). */
#define HAK_TC_CUT ((hak_block*)(uintptr_t)1)
/* The owner met HAK_TC_CUT: wait until the cutting thread has settled the link. */
HAK_HIDDEN HAK_COLD void hak_tcache_cut_wait(hak_heap* h);
/* With h's lock held, from any thread: cut each TLS list of h after its first `keep`
 * blocks (keep ≥ 2) and give the rest back to their slabs, without stopping h's owner.
 * Bytes of blocks given back (0 where the owner moved meanwhile, or no barrier). */
HAK_HIDDEN size_t hak_tcache_trim(hak_heap* h, unsigned keep);
/* Tests only: called by hak_tcache_trim in step 1 before each class's swap (stage 0)
 * and between its steps 1 and 2 (stage 1, cls 0); NULL: nothing. */
HAK_HIDDEN extern void (*hak_tcache_trim_hook)(hak_heap* h, unsigned cls, int stage);
/* Whether hak_tcache_trim can work in this build (not under ThreadSanitizer). */
HAK_HIDDEN bool hak_tcache_trim_supported(void);
/* The scavenger's use of it (h's lock held): once h's TLS lists and slow paths have not
 * moved for `delay` ns, cut them to HAK_TC_TRIM_KEEP blocks, once per such quiet spell.
 * Bytes of blocks given back to their slabs. */
#define HAK_TC_TRIM_KEEP 2
HAK_HIDDEN size_t hak_tcache_trim_idle(hak_heap* h, uint64_t now, uint64_t delay);

/* ---- tls_cache.c: refill and flush between TLS lists and slabs ---------------- */
/* Give a chain of h's free blocks of cls back to their slabs, b first (of slab s), each
 * checked as it is passed; h's lock held. `owner`: the caller is h's thread, which may
 * read its free map (others ask the registry). The number of blocks. */
HAK_HIDDEN uint64_t hak_tcache_return_chain(hak_heap* h, unsigned cls, hak_block* b, hak_slab* s, bool owner);
/* A block of cls for the caller, the TLS list refilled; with `borrow`, it may be a free
 * block of a slightly larger class when cls has none left (tls_cache.c). */
HAK_HIDDEN void* hak_tcache_refill(hak_heap* h, unsigned cls, bool borrow);
HAK_HIDDEN void  hak_tcache_flush(hak_heap* h, unsigned cls, uint32_t keep);
/* Every block h's thread holds back: its remote buffer pushed, every TLS list flushed
 * into its slabs (hak_thread_flush, a heap that parks or is torn down). */
HAK_HIDDEN void  hak_tcache_flush_all(hak_heap* h);
HAK_HIDDEN void  hak_heap_set_caps(hak_heap* h);
HAK_HIDDEN void  hak_class_setup(hak_heap* h, unsigned cls);
/* A class's caps, batch bounds and drain interval are set at its first refill, flush or
 * local free in h (tls_cache.c), before any of them is read; with no lock held, as they
 * come from the knob snapshot. */
HAK_INLINE bool hak_class_is_ready(const hak_heap* h, unsigned cls) { return (h->cls_ready[cls >> 6] >> (cls & 63)) & 1; }
HAK_INLINE void hak_class_ready(hak_heap* h, unsigned cls) {
  if (HAK_UNLIKELY(!hak_class_is_ready(h, cls))) hak_class_setup(h, cls);
}

/* ---- remote.c: cross-thread frees --------------------------------------------- */
HAK_HIDDEN void     hak_remote_push(hak_slab* s, hak_block* b);
/* Thread heap h frees b of another heap's slab s: into h's remote buffer. */
HAK_HIDDEN void     hak_remote_buffer(hak_heap* h, hak_slab* s, hak_block* b);
/* Push every chain of h's remote buffer to its slab (nothing when it is empty). */
HAK_HIDDEN void     hak_remote_flush(hak_heap* h);
/* Push remote buffer slot i's chain (not empty) to its slab's remote stack. */
HAK_HIDDEN void     hak_remote_flush_slot(hak_heap* h, unsigned i);
HAK_HIDDEN uint32_t hak_remote_drain(hak_slab* s);
/* A refill's drain: up to `want` of s's remote frees are appended to the chain
 * *first..*last (linked with HAK_ENC, *last's link left to the caller), the rest go to
 * s's free list; returns how many the chain got (owner, under the heap's lock). */
HAK_HIDDEN uint32_t hak_remote_drain_into(hak_slab* s, uint32_t want, hak_block** first, hak_block** last);

/* ---- large.c: direct mappings with a cache sized by bytes and time ------------------ */
HAK_HIDDEN void*  hak_large_alloc(size_t size, size_t align, bool zero);
HAK_HIDDEN void   hak_large_free(hak_segment* seg, void* p, const char* fn);
/* realloc of large block p (live, validated) to `size` > 1 MiB: shrunk in place, grown
 * in place or its pages moved. Returns p or the new place with *outcome set (HAK_RE_*),
 * or NULL with the block unchanged (the caller then copies). */
HAK_HIDDEN void*  hak_large_realloc(hak_segment* seg, void* p, size_t size, unsigned* outcome);
/* Grow large block seg in place (mremap without moving) to at least `size` usable
 * bytes; false, with the block unchanged, when the address space after it is taken. */
HAK_HIDDEN bool   hak_large_grow_in_place(hak_segment* seg, size_t size);
/* Decay the cache: decommit mappings unused for `delay_ns` beyond the dirty budget
 * (all of them when delay_ns is 0), unmap long-decommitted ones; returns bytes
 * decommitted. Skips when another thread holds the cache's lock. */
HAK_HIDDEN size_t hak_large_cache_purge(uint64_t now, uint64_t delay_ns);
HAK_HIDDEN size_t hak_large_cache_dirty_bytes(void);
/* The large cache now: bytes mapped, of which resident, and mappings (tests, stats). */
HAK_HIDDEN void   hak_large_cache_usage(size_t* bytes, size_t* dirty, unsigned* entries);
HAK_HIDDEN void   hak_large_fork_lock(void);
HAK_HIDDEN void   hak_large_fork_unlock(bool child);

/* ---- alloc.c / free.c ------------------------------------------------------------ */
HAK_HIDDEN void*  hak_malloc_slow(size_t size);
/* A block of class cls, or with `borrow` possibly of a slightly larger class. */
HAK_HIDDEN void*  hak_alloc_cls_slow(unsigned cls, bool borrow);
HAK_HIDDEN void   hak_free_slow(void* p);
HAK_HIDDEN void*  hak_alloc_aligned(size_t align, size_t size);
/* Usable size of p, validating it; `fn` names the caller in the abort message. */
HAK_HIDDEN size_t hak_usable_checked(const void* p, const char* fn);
/* The libc operations with glibc's behaviour (errno, NULL, EINVAL), exported by the
 * shim under the hak_* and libc names. */
HAK_HIDDEN void*  hak_alloc_calloc(size_t n, size_t size);
HAK_HIDDEN void*  hak_alloc_aligned_alloc(size_t align, size_t size);
HAK_HIDDEN int    hak_alloc_posix_memalign(void** out, size_t align, size_t size);
HAK_HIDDEN void*  hak_alloc_memalign(size_t align, size_t size);
HAK_HIDDEN void*  hak_alloc_valloc(size_t size);
HAK_HIDDEN void*  hak_alloc_pvalloc(size_t size);
HAK_HIDDEN void*  hak_alloc_realloc(void* p, size_t size);
HAK_HIDDEN void*  hak_alloc_reallocarray(void* p, size_t n, size_t size);
/* hak_expand (include/hakmem.h): p when it has `size` usable bytes without moving. */
HAK_HIDDEN void*  hak_alloc_expand(void* p, size_t size);

/* ---- copy.c ---------------------------------------------------------------------- */
/* memcpy with non-temporal stores (SSE2; memcpy elsewhere): any sizes and alignments. */
HAK_HIDDEN void   hak_copy_nt(void* dst, const void* src, size_t n);
HAK_HIDDEN size_t hak_alloc_usable_size(const void* p);
HAK_HIDDEN int    hak_alloc_owns(const void* p);
HAK_HIDDEN void   hak_alloc_thread_flush(void);
/* Count down this thread's slow paths; every HAK_SLOW_HOOK_PERIOD-th calls hak_slow_hook
 * (the caller holds no allocator lock). */
HAK_HIDDEN void   hak_slow_hook_tick(hak_heap* h);
HAK_HIDDEN void   hak_slow_hook_tick_large(bool fresh);   /* large.c: no heap, no locks held */
/* Take transparent huge pages off a segment (segment.c), under the lock that holds it:
 * its owner's (the release walk) or the cache's. */
HAK_HIDDEN void   hak_segment_drop_huge(hak_segment* seg);

#endif /* HAK_ALLOC_H */
