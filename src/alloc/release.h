/* release.h — returning unused memory from any thread (release.c). */
#ifndef HAK_ALLOC_RELEASE_H
#define HAK_ALLOC_RELEASE_H

#include "alloc/alloc.h"
#include "alloc/os_counters.h"
#include "prim/prim.h"

/* A resumable walk over the list of all segments. Open the cursor with
 * hak_seglist_cursor_open before the first call and close it after the last. */
typedef struct hak_release_walk_t {
  hak_seg_cursor cursor;
  size_t   max_segments;   /* in: most segments per call (0: one round of the list) */
  uint64_t deadline_ns;    /* in: stop at this hak_prim_now_ns() (0: no time limit) */
  uint64_t max_bytes;      /* in: stop once a call gave back this much (0: no limit) */
  uint64_t cache_delay;    /* in: the caches' purge delay, ns (0: the walk's delay) */
  uint64_t visited;        /* out, cumulative: segments visited */
  uint64_t busy;           /* out, cumulative: segments skipped, their lock was taken */
  uint64_t released;       /* out, cumulative: bytes given back */
  bool     out_of_time;    /* out: the last call stopped at the deadline */
  /* Pages of small blocks cost a walk of every free block of their slabs: a budgeted
   * walk (deadline_ns set) gives them back only in rounds that follow a round with
   * nothing else to give back, every other round (a walk without deadline: always). */
  bool     small_round;    /* state: this round also gives back pages of small blocks */
  uint64_t round_seen;     /* state: segments visited in this round */
  uint64_t round_start;    /* state: `released` when this round began */
  uint64_t calls;          /* out: calls so far */
} hak_release_walk_t;

/* Visit segments from w's cursor on, giving back what has been unused for `delay` ns
 * at time `now`; then purge the segment and large caches likewise. */
HAK_HIDDEN void hak_release_walk(hak_release_walk_t* w, uint64_t now, uint64_t delay);
/* One pinned segment, stopping inside it at `deadline` (0: none); pages of small blocks
 * too when `small`; *busy set when its lock was taken. Bytes given back. */
HAK_HIDDEN size_t hak_release_segment(hak_segment* seg, uint64_t now, uint64_t delay,
                                      unsigned min_pages, bool small, uint64_t deadline, bool* busy);
/* One whole round over all memory (malloc_trim, tests); bytes given back. */
HAK_HIDDEN size_t hak_release_all(uint64_t delay);

HAK_HIDDEN void hak_release_fork_lock(void);
HAK_HIDDEN void hak_release_fork_unlock(bool child);

#endif
