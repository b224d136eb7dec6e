/* heap.c — thread heaps: creation on a thread's first allocation, teardown at thread
 * exit (TLS lists flushed, segments abandoned), adoption of abandoned segments by
 * threads that need memory, and the shared heap that serves threads whose own heap is
 * already gone (allocations from thread-specific-data destructors and glibc's
 * thread-exit frees).
 *
 * A thread's TLS pointer starts at hak_heap_empty: every list is empty and every cap
 * is 0, so the fast paths fall through to the slow path, which creates the heap.
 *
 * Teardown is a pthread key destructor. glibc calls key destructors in rounds, keys in
 * index order, at most PTHREAD_DESTRUCTOR_ITERATIONS (4) rounds: a thread whose first
 * allocation comes from a destructor of a later key in the last round gets a heap whose
 * destructor never runs (nothing public tells a thread that it is in that round). Such
 * a heap is reaped: each heap records its process and thread id, and a thread creating
 * its heap, or the release walk, checks a few heaps round-robin; one whose thread has
 * exited (tgkill says ESRCH) is torn down on its behalf as its destructor would have.
 * The thread is gone, so its TLS lists are no one else's; in a forked child the heaps
 * of the parent's other threads lose their ids and are left alone.
 *
 * A thread that exits normally parks its heap (slab lists, segments, caps; its TLS
 * lists go back to their slabs as in a teardown) when it holds between PARK_MIN_BYTES
 * and PARK_BYTES of slabs in use and fewer than HAKMEM_HEAP_PARK heaps are parked; the
 * next thread that starts takes the newest parked heap and goes on with it. A teardown
 * abandons the segments instead: a successor adopts them one at a time, only after it
 * has taken fresh slabs and segments for what it needs first, and the segment cache
 * decommits what churns through it (bench/mstress: 240 adoptions, 70-170 decommits in
 * 60 thread exits). The TLS lists are not kept: a successor that allocates other sizes
 * would find them pinning slabs (realloc_bench's cases: +14 MiB of peak RSS).
 * A parked heap is nobody's: its owner_tid is 0 (never reaped), frees into it are
 * remote frees, and the oldest is torn down when the park is full, by the release walk
 * once it stayed parked for HAK_PARK_IDLE_DELAYS purge delays (meanwhile the walk
 * purges its unused slabs as it does an idle thread's), and by malloc_trim. */
#include "alloc/slab.h"
#include "base/options.h"
#include "prim/prim.h"

#include <pthread.h>
#include <string.h>

HAK_TLS hak_heap* hak_tls_heap = &hak_heap_empty;
/* The stand-ins are zero (.bss) until hak_heap_stand_ins_init; a zero free map is empty
 * for every user-space address (alloc.h: hak_fc_tag), so the empty heap may be read
 * before (free(NULL) may come first). A 37 KiB heap in .data made every process map
 * that much more of the library's file pages. */
hak_heap hak_heap_empty;
hak_heap hak_heap_dead;
hak_heap hak_heap_global;
hak_lock hak_global_lock = HAK_LOCK_INIT;

static pthread_key_t heap_key;
static hak_lock heap_pool_lock = HAK_LOCK_INIT;
static hak_heap* heap_free_list;      /* recycled heap structs (linked by all_next) */
static uint8_t* heap_bump;            /* carving area for new heap structs */
static uint8_t* heap_bump_end;
static hak_heap* heap_all;            /* live heaps */
static hak_heap heap_retired;         /* counters of heaps torn down (stats only) */
static uint64_t heaps_started, heaps_ended;
static hak_heap* reap_cursor;         /* hak_heap_reap_orphans resumes here (NULL: head) */

static hak_lock abandoned_lock = HAK_LOCK_INIT;
static void abandoned_unlink(hak_segment* seg);
static hak_segment* abandoned[HAK_SEG_KINDS];
static _Atomic size_t abandoned_count;   /* written under the lock, read without */

#define REAP_CHECKS 4     /* heaps a new thread looks at (one tgkill each) */
/* A heap parks only while its slabs in use (pool slabs: their blocks out) come to at
 * most this: a thread that leaves more behind (blocks other threads will free, then
 * idle) gets them back through abandonment, which releases each segment as its last
 * block comes home. A heap of bench/mstress holds a few MiB. */
#define PARK_BYTES ((size_t)32 << 20)
/* ... and at least this: a heap with fewer slabs in use costs a successor little to
 * adopt, while parked it keeps its slabs' pages to itself (stress --phase=churn, 20,000
 * threads of a dozen blocks each, 2-8 alive: RSS grew by 3-6 MiB where it stays flat). */
#define PARK_MIN_BYTES ((size_t)1 << 20)

static hak_heap* parked;              /* newest first, linked by park_next (pool lock) */
static _Atomic unsigned parked_n;     /* written under the pool lock, read without */

void hak_heap_stand_ins_init(void) {
  hak_heap_empty.fc_unit[0] = HAK_FC_EMPTY(0);
  hak_heap_dead.fc_unit[0] = HAK_FC_EMPTY(0);
  hak_heap_global.fc_unit[0] = HAK_FC_EMPTY(0);
  hak_heap_global.is_global = true;
}

void hak_heap_key_create(void) { pthread_key_create(&heap_key, hak_heap_thread_exit); }

/* ---- heap structs ------------------------------------------------------------------ */
static hak_heap* heap_struct_new(int pid, int tid) {
  hak_lock_take(&heap_pool_lock);
  hak_heap* h = heap_free_list;
  bool recycled = h != NULL;
  if (h) heap_free_list = h->all_next;
  else {
    size_t sz = HAK_ALIGN_UP(sizeof(hak_heap), HAK_CACHELINE);
    if (heap_bump == NULL || heap_bump + sz > heap_bump_end) {
      size_t region = (HAK_CHUNK_SIZE / sz) * sz;   /* as many as fit 2 MiB (about 60) */
      heap_bump = hak_prim_map(region);
      heap_bump_end = heap_bump ? heap_bump + region : NULL;
    }
    if (heap_bump) { h = (hak_heap*)heap_bump; heap_bump += sz; }   /* fresh: zero */
  }
  if (h) {
    h->fc_unit[0] = HAK_FC_EMPTY(0);    /* see HAK_FC_EMPTY; recycled below: set again */
    heaps_started++;
    if (recycled) {
      /* A scavenger may still try this heap's lock (it read an old segment owner):
       * clear the heap under the lock, which itself stays as it is. */
      hak_heap_lock(h);
      memset((uint8_t*)h + sizeof h->lock, 0, sizeof *h - sizeof h->lock);
      h->fc_unit[0] = HAK_FC_EMPTY(0);
      hak_heap_unlock(h);
    }
    h->owner_pid = pid;               /* under the lock: reapers read them under it */
    h->owner_tid = tid;
    h->all_next = heap_all;
    if (heap_all) heap_all->all_prev = h;
    heap_all = h;
  }
  hak_lock_release(&heap_pool_lock);
  return h;
}

/* Fold a dying heap's counters into heap_retired (under heap_pool_lock). */
static void heap_retire_counters(const hak_heap* h) {
  for (unsigned c = 0; c < HAK_NCLS; c++) {
    /* h's lists are flushed (empty): its allocations are refilled + nfree - flushed,
     * and so stay the retired sums' (heap_retired's lists are always empty). */
    heap_retired.tc[c].nfree += h->tc[c].nfree;
    heap_retired.cc[c].refilled += h->cc[c].refilled;
    heap_retired.cc[c].flushed += h->cc[c].flushed;
    heap_retired.cc[c].refills += h->cc[c].refills;
    heap_retired.cc[c].flushes += h->cc[c].flushes;
    heap_retired.cc[c].remote_out += h->cc[c].remote_out;
  }
  heap_retired.ctr.slabs_new += h->ctr.slabs_new;
  for (unsigned b = 0; b < HAK_LAT_BUCKETS; b++) heap_retired.lat_hist[b] += h->lat_hist[b];
  heap_retired.ctr.segs_new += h->ctr.segs_new;
  heap_retired.ctr.segs_adopted += h->ctr.segs_adopted;
  for (unsigned i = 0; i < HAK_RE_COUNT; i++) heap_retired.realloc_ctr[i] += h->realloc_ctr[i];
  for (unsigned m = 0; m < 2; m++) {
    for (unsigned b = 0; b < HAK_COPY_BUCKETS; b++) {
      heap_retired.copy.n[m][b] += h->copy.n[m][b];
      heap_retired.copy.bytes[m][b] += h->copy.bytes[m][b];
      heap_retired.copy.ns[m][b] += h->copy.ns[m][b];
    }
  }
#if HAK_DEBUG_COUNTERS
  for (unsigned i = 0; i < HAK_DBG_COUNT; i++) heap_retired.dbg[i] += h->dbg[i];
#endif
}

/* `ended`: its thread gave it up just now (not when parked: that counted then). */
static void heap_struct_free(hak_heap* h, bool ended) {
  hak_lock_take(&heap_pool_lock);
  heap_retire_counters(h);
  if (ended) heaps_ended++;
  if (reap_cursor == h) reap_cursor = h->all_next;
  if (h->all_prev) h->all_prev->all_next = h->all_next; else heap_all = h->all_next;
  if (h->all_next) h->all_next->all_prev = h->all_prev;
  h->all_prev = NULL;
  h->all_next = heap_free_list;
  heap_free_list = h;
  hak_lock_release(&heap_pool_lock);
}

static size_t heap_collect(hak_heap* h);

/* The newest parked heap, now owned by the calling thread (pid, tid), or NULL. */
static hak_heap* park_take(int pid, int tid) {
  if (hak_load_relaxed(&parked_n) == 0) return NULL;
  hak_lock_take(&heap_pool_lock);
  hak_heap* h = parked;
  if (h) {
    parked = h->park_next;
    parked_n--;
    h->park_next = NULL;
    h->owner_pid = pid;               /* under the lock: reapers read them under it */
    h->owner_tid = tid;
    heaps_started++;
  }
  hak_lock_release(&heap_pool_lock);
  return h;
}

hak_heap* hak_heap_thread_init(void) {
  hak_heap* h = hak_tls_heap;
  if (h != &hak_heap_empty) return h;   /* a real heap, or the dead marker */
  int pid = hak_prim_process_id(), tid = hak_prim_thread_id();
  h = park_take(pid, tid);
  if (h) {
    /* Its caps, lists and segments go on as they were. The reaping below is left to
     * the threads that make new heaps: an orphan only ever leaves one behind. */
    hak_tls_heap = h;
    pthread_setspecific(heap_key, h);
    heap_collect(h);
    return h;
  }
  h = heap_struct_new(pid, tid);
  if (!h) return NULL;
  hak_heap_set_caps(h);
  /* Set the TLS pointer first: pthread_setspecific may itself call malloc. */
  hak_tls_heap = h;
  pthread_setspecific(heap_key, h);
  /* A new thread often runs on the stack of one that exited: look for heaps of threads
   * that left without teardown (with this heap in place, a nested malloc is served). */
  hak_heap_reap_orphans(1, REAP_CHECKS);
  return h;
}

static void segment_collect(hak_heap* h, hak_segment* seg);

/* Take back the remote frees waiting on h's slabs, give its empty slabs back to their
 * segments and its empty segments to the cache, as a teardown does: when h parks and
 * when a thread takes it (the frees that came while it was parked: a thread that only
 * allocates a little would otherwise leave them waiting, and the slabs they empty
 * in use, heap after heap). Returns the bytes of its slabs still in use; a pool slab
 * counts the blocks it has out (its segment is mostly address space). */
static size_t heap_collect(hak_heap* h) {
  size_t bytes = 0;
  hak_heap_lock(h);
  for (unsigned kind = 0; kind < HAK_SEG_KINDS; kind++) {
    hak_segment* seg = h->segs[kind];
    while (seg) {
      hak_segment* next = seg->next;
      segment_collect(h, seg);
      if (seg->used_slabs == 0) {
        hak_heap_unlink_segment(h, seg);
        hak_segment_release(seg);
        seg = next;
        continue;
      }
      if (kind == HAK_SEG_POOL) {
        bytes += (size_t)seg->slabs[0].used * seg->slabs[0].bsize;
      } else {
        bytes += (size_t)seg->used_slabs << seg->slab_shift;
      }
      seg = next;
    }
  }
  hak_heap_unlock(h);
  return bytes;
}

/* Tear down a heap that no thread owns any more (parked or orphaned). */
static void heap_teardown(hak_heap* h, bool ended) {
  hak_heap_abandon(h);
  heap_struct_free(h, ended);
}

/* Park h (its thread is exiting, its TLS pointer no longer names it) unless the park is
 * off or h holds too much; a full park gives up its oldest heap. False: tear h down. */
static bool park(hak_heap* h) {
  long long max = hak_opt(HAK_OPT_HEAP_PARK);
  if (max <= 0 || h->is_global) return false;
  hak_tcache_flush_all(h);              /* TLS lists back to the slabs, remote frees out */
  size_t bytes = heap_collect(h);
  if (bytes > PARK_BYTES || bytes < PARK_MIN_BYTES) return false;
  hak_tls_heap = &hak_heap_dead;        /* before h is parked: another thread may take it */
  hak_heap* evict = NULL;
  hak_lock_take(&heap_pool_lock);
  if (parked_n >= (unsigned long long)max) {   /* parked is not empty: max >= 1 */
    hak_heap** pp = &parked;            /* the oldest is the last */
    while ((*pp)->park_next) pp = &(*pp)->park_next;
    evict = *pp;
    *pp = NULL;
    parked_n--;
  }
  h->owner_tid = 0;                     /* nobody's: never reaped */
  h->parked_at = hak_prim_now_ns();
  h->park_next = parked;
  parked = h;
  parked_n++;
  heaps_ended++;
  hak_lock_release(&heap_pool_lock);
  if (evict) heap_teardown(evict, false);
  return true;
}

void hak_heap_thread_exit(void* arg) {
  hak_heap* h = arg;
  if (!h || h == &hak_heap_empty || h == &hak_heap_dead) return;
  if (!park(h)) {
    hak_heap_abandon(h);
    hak_tls_heap = &hak_heap_dead;
    heap_struct_free(h, true);
  }
  void (*hook)(void) = hak_load_acquire(&hak_thread_exit_hook);
  if (hook) hook();
}

unsigned hak_heap_unpark(uint64_t before) {
  unsigned n = 0;
  for (;;) {
    hak_heap* h = NULL;
    hak_lock_take(&heap_pool_lock);
    hak_heap** pp = &parked;            /* oldest first: the tail */
    hak_heap** found = NULL;
    for (; *pp; pp = &(*pp)->park_next) if ((*pp)->parked_at < before) found = pp;
    if (found) {
      h = *found;
      *found = h->park_next;
      h->park_next = NULL;
      parked_n--;
    }
    hak_lock_release(&heap_pool_lock);
    if (!h) return n;
    heap_teardown(h, false);
    n++;
  }
}

/* The next heap of the round-robin whose thread has exited, marked as being reaped;
 * NULL when `checks` heaps were looked at without one. Under heap_pool_lock. */
static hak_heap* orphan_next(int pid, unsigned checks) {
  hak_heap* first = NULL;
  for (unsigned n = 0; n < checks; n++) {
    hak_heap* h = reap_cursor ? reap_cursor : heap_all;
    if (!h || h == first) return NULL;             /* all looked at */
    if (!first) first = h;
    reap_cursor = h->all_next;
    if (h->reaping || h->owner_pid != pid || h->owner_tid == 0) continue;
    if (hak_prim_thread_gone(pid, h->owner_tid)) {
      h->reaping = true;
      return h;
    }
  }
  return NULL;
}

unsigned hak_heap_reap_orphans(unsigned max, unsigned checks) {
  int pid = hak_prim_process_id();
  unsigned reaped = 0;
  while (reaped < max) {
    hak_lock_take(&heap_pool_lock);
    hak_heap* h = orphan_next(pid, checks);
    hak_lock_release(&heap_pool_lock);
    if (!h) break;
    heap_teardown(h, true);         /* what its key destructor would have done */
    reaped++;
  }
  return reaped;
}

/* ---- segments of a heap ------------------------------------------------------------ */
void hak_heap_link_segment(hak_heap* h, hak_segment* seg) {
  HAK_ASSERT(seg->next == NULL && seg->prev == NULL && seg->linked == NULL);
  seg->linked = h;
  hak_segment** head = &h->segs[seg->kind];
  seg->prev = NULL;
  seg->next = *head;
  if (*head) (*head)->prev = seg;
  *head = seg;
}

void hak_heap_unlink_segment(hak_heap* h, hak_segment* seg) {
  HAK_ASSERT(seg->linked == h);
  seg->linked = NULL;
  /* Its units leave the free map: the fast path trusts an entry to name an own slab. */
  uintptr_t first = hak_fc_tag((uintptr_t)seg), end = hak_fc_tag((uintptr_t)seg + seg->size);
  for (uintptr_t t = first; t < end; t++) {
    unsigned i = (unsigned)t & (HAK_FC_SIZE - 1);
    if (h->fc_unit[i] == t) { h->fc_unit[i] = HAK_FC_EMPTY(i); h->fc_slab[i] = NULL; }
  }
  if (h->sweep_next == seg) h->sweep_next = seg->next;   /* keep heap_sweep's cursor valid */
  if (seg->prev) seg->prev->next = seg->next; else h->segs[seg->kind] = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
}

/* Drain every in-use slab of an unowned (or being-abandoned) segment and give empty
 * slabs back. When `h` is non-NULL the slabs are also taken off h's lists. */
static void segment_collect(hak_heap* h, hak_segment* seg) {
  for (unsigned i = 0; i < seg->nslabs; i++) {
    hak_slab* s = &seg->slabs[i];
    if (s->state == HAK_SLAB_UNUSED) continue;
    hak_remote_drain(s);
    if (s->used == 0) {
      if (h) hak_slab_list_remove(h, s);
      hak_segment_give_slab(seg, s);
    }
  }
}

void hak_heap_abandon(hak_heap* h) {
  hak_tcache_flush_all(h);
  hak_heap_lock(h);
  for (unsigned kind = 0; kind < HAK_SEG_KINDS; kind++) {
    hak_segment* seg = h->segs[kind];
    while (seg) {
      hak_segment* next = seg->next;
      segment_collect(h, seg);
      for (unsigned i = 0; i < seg->nslabs; i++) {
        hak_slab* s = &seg->slabs[i];
        if (s->state != HAK_SLAB_UNUSED) hak_slab_list_remove(h, s);
      }
      hak_heap_unlink_segment(h, seg);
      if (seg->used_slabs == 0) {
        hak_segment_release(seg);
      } else {
        /* The blocks still out: the frees that find the segment abandoned count them
         * down, and the one that takes the last releases it (hak_abandoned_collect), so
         * a thread that frees another thread's blocks after it exited gets the memory
         * back without a scavenger. Frees that raced with this see it owned and do not
         * count: then the segment waits for the periodic reclaim or a scavenger. */
        uint32_t live = 0;
        for (unsigned i = 0; i < seg->nslabs; i++) {
          if (seg->slabs[i].state != HAK_SLAB_UNUSED) live += seg->slabs[i].used;
        }
        hak_store_relaxed(&seg->abandoned_live, live);
        hak_store_release(&seg->heap, NULL);
        hak_lock_take(&abandoned_lock);
        hak_store_release(&seg->state, HAK_SEGST_ABANDONED);   /* under the lock, with the list */
        seg->next = abandoned[kind];
        seg->prev = NULL;
        if (abandoned[kind]) abandoned[kind]->prev = seg;
        abandoned[kind] = seg;
        hak_store_relaxed(&abandoned_count, hak_load_relaxed(&abandoned_count) + 1);
        hak_lock_release(&abandoned_lock);
      }
      seg = next;
    }
  }
  hak_heap_unlock(h);
}

/* Take seg off the abandoned list and make h its owner; under abandoned_lock, so that
 * two threads can never both claim it. */
static void abandoned_claim(hak_heap* h, hak_segment* seg) {
  hak_store_release(&seg->heap, h);
  hak_store_release(&seg->state, HAK_SEGST_OWNED);
  abandoned_unlink(seg);
}

static void abandoned_unlink(hak_segment* seg) {
  if (seg->prev) seg->prev->next = seg->next; else abandoned[seg->kind] = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  hak_store_relaxed(&abandoned_count, hak_load_relaxed(&abandoned_count) - 1);
}

/* Make h the owner of seg (already taken off the abandoned list). */
static void adopt_segment(hak_heap* h, hak_segment* seg) {
  hak_heap_link_segment(h, seg);
  segment_collect(NULL, seg);
  for (unsigned i = 0; i < seg->nslabs; i++) {
    hak_slab* s = &seg->slabs[i];
    if (s->state == HAK_SLAB_UNUSED) continue;
    bool has_local = s->free != NULL || hak_load_relaxed(&s->bump) < s->end;
    hak_slab_list_push(h, s, has_local ? HAK_SLAB_PARTIAL : HAK_SLAB_FULL);
  }
  h->ctr.segs_adopted++;
  h->ctr.seg_taken_at = hak_prim_now_ns();
}

hak_segment* hak_heap_adopt(hak_heap* h, unsigned kind, unsigned cls) {
  if (hak_load_relaxed(&abandoned_count) == 0) return NULL;
  hak_lock_take(&abandoned_lock);
  hak_segment* seg = abandoned[kind];
  if (kind == HAK_SEG_POOL) {
    while (seg && seg->pool_cls != cls) seg = seg->next;
  }
  if (seg) abandoned_claim(h, seg);
  hak_lock_release(&abandoned_lock);
  if (!seg) return NULL;
  adopt_segment(h, seg);
  return seg;
}

/* Reclaim abandoned segments whose blocks have all come back through remote frees. */
void hak_abandoned_reclaim(void) {
  if (hak_load_relaxed(&abandoned_count) == 0) return;
  if (pthread_mutex_trylock(&abandoned_lock.m) != 0) {   /* someone else is collecting */
    HAK_DBG(hak_tls_heap, EARLY_ADOPT_BUSY);
    return;
  }
  for (unsigned kind = 0; kind < HAK_SEG_KINDS; kind++) {
    hak_segment* seg = abandoned[kind];
    while (seg) {
      hak_segment* next = seg->next;
      segment_collect(NULL, seg);
      if (seg->used_slabs == 0) {
        abandoned_unlink(seg);
        hak_segment_release_abandoned(seg);
      }
      seg = next;
    }
  }
  hak_lock_release(&abandoned_lock);
}

void hak_abandoned_collect(const hak_segment* seg, unsigned kind) {
  hak_lock_take(&abandoned_lock);
  for (hak_segment* s = abandoned[kind]; s; s = s->next) {
    if (s != seg) continue;
    segment_collect(NULL, s);
    if (s->used_slabs == 0) {
      abandoned_unlink(s);
      hak_segment_release_abandoned(s);
    }
    break;
  }
  hak_lock_release(&abandoned_lock);
}

/* Scavenger's visit of an abandoned segment (pinned by the caller): take the remote
 * frees back, return emptied slabs to the segment, decommit unused slabs after the
 * delay and the pages inside free blocks. The segment itself stays on the abandoned
 * list (hak_abandoned_reclaim releases it once empty): the caller's pin forbids an
 * unmap here. Returns bytes given back, 0 when the list is busy. */
size_t hak_abandoned_release(hak_segment* seg, uint64_t now, uint64_t delay, unsigned min_pages,
                             bool small, uint64_t deadline) {
  if (pthread_mutex_trylock(&abandoned_lock.m) != 0) return 0;
  size_t bytes = 0;
  if (hak_load_relaxed(&seg->state) == HAK_SEGST_ABANDONED) {
    segment_collect(NULL, seg);
    bytes += hak_segment_purge(seg, now, delay);
    bytes += hak_segment_release_free_pages(seg, min_pages, small, deadline);
  }
  hak_lock_release(&abandoned_lock);
  return bytes;
}

/* ---- upkeep ---------------------------------------------------------------------------- */
/* Periodic upkeep of a heap (every sweep_interval slow-path events): drain
 * slabs with pending remote frees, give back slabs that became empty (and the class's
 * last slab once it stayed empty for the purge delay), and decommit unused slabs after
 * HAKMEM_PURGE_DELAY ms. It visits at most SWEEP_SEGMENTS segments per call, resuming
 * where the last call stopped, so its cost stays bounded however much the heap holds. */
#define SWEEP_SEGMENTS 64

size_t hak_heap_sweep_segment(hak_heap* h, hak_segment* seg, uint64_t now, uint64_t delay, bool* gone) {
  bool released = false;
  for (unsigned i = 0; !released && i < seg->nslabs; i++) {   /* released: seg is gone */
    hak_slab* s = &seg->slabs[i];
    if (s->state == HAK_SLAB_UNUSED) continue;
    if (s->used == 0 && s->freed_at + delay <= now) {
      /* The class's last slab, kept empty for reuse and not reused within the
       * delay: give it back and let the purge below return its pages. */
      uint64_t empty_since = s->freed_at;
      released = hak_slab_release(h, s);
      if (!released) s->freed_at = empty_since;
      continue;
    }
    if (hak_load_relaxed(&s->remote) == NULL) continue;
    hak_remote_drain(s);
    if (s->state == HAK_SLAB_FULL && hak_slab_has_local(s)) {
      hak_slab_list_remove(h, s);
      hak_slab_list_push(h, s, HAK_SLAB_PARTIAL);
    }
    if (s->used == 0) released = hak_slab_maybe_release(h, s);
  }
  *gone = released;
  return released ? 0 : hak_segment_purge(seg, now, delay);
}

void hak_heap_sweep(hak_heap* h) {
  HAK_DBG(h, EARLY_SWEEP);
  uint64_t now = hak_prim_now_ns();
  uint64_t delay = h->purge_delay_ns;
  unsigned budget = SWEEP_SEGMENTS, kinds_started = 0;
  while (budget > 0) {
    hak_segment* seg = h->sweep_next;
    if (seg == NULL) {                       /* end of a kind's list: start the next kind */
      if (kinds_started == HAK_SEG_LARGE) break;
      h->sweep_kind = (h->sweep_kind + 1) % HAK_SEG_LARGE;
      h->sweep_next = h->segs[h->sweep_kind];
      kinds_started++;
      continue;
    }
    h->sweep_next = seg->next;               /* advance first: seg may be released */
    budget--;
    HAK_ASSERT(seg->linked == h && hak_load_relaxed(&seg->heap) == h);
    bool gone;
    hak_heap_sweep_segment(h, seg, now, delay, &gone);
  }
  hak_segment_cache_purge(now, delay);
  hak_large_cache_purge(now, delay);
}

unsigned hak_heap_live_threads(int except_tid) {
  int pid = hak_prim_process_id();
  unsigned n = 0;
  hak_lock_take(&heap_pool_lock);
  /* parked heaps have no owner (owner_tid 0); a fork child's copies of its parent's
   * heaps name the parent; a heap whose thread died without its destructor is gone */
  for (hak_heap* h = heap_all; h; h = h->all_next) {
    if (h->owner_pid == pid && h->owner_tid != 0 && h->owner_tid != except_tid &&
        !hak_prim_thread_gone(pid, h->owner_tid)) n++;
  }
  hak_lock_release(&heap_pool_lock);
  return n;
}

/* ---- stats ---------------------------------------------------------------------------- */
void hak_heap_foreach(void (*fn)(const hak_heap* h, void* arg), void* arg, uint64_t* started,
                      uint64_t* ended) {
  hak_lock_take(&heap_pool_lock);
  for (hak_heap* h = heap_all; h; h = h->all_next) fn(h, arg);
  fn(&heap_retired, arg);
  fn(&hak_heap_global, arg);
  *started = heaps_started;
  *ended = heaps_ended;
  hak_lock_release(&heap_pool_lock);
}

/* ---- fork ---------------------------------------------------------------------------- */
void hak_heap_fork_lock(void) {
  hak_lock_take(&heap_pool_lock);
  hak_lock_take(&hak_global_lock);
  hak_lock_take(&abandoned_lock);
}

void hak_heap_fork_unlock(bool child) {
  if (child) {
    /* The forking thread has other ids in the child; its heap goes on with it. The
     * parent's other threads' heaps may be in any state (their owners were running):
     * they lose their ids and are never reaped here. */
    hak_heap* self = hak_tls_heap;
    for (hak_heap* h = heap_all; h; h = h->all_next) {
      if (h == self) {
        h->owner_pid = hak_prim_process_id();
        h->owner_tid = hak_prim_thread_id();
      } else {
        h->owner_tid = 0;
      }
    }
    reap_cursor = NULL;
    hak_lock_reset(&abandoned_lock);
    hak_lock_reset(&hak_global_lock);
    hak_lock_reset(&heap_pool_lock);
  } else {
    hak_lock_release(&abandoned_lock);
    hak_lock_release(&hak_global_lock);
    hak_lock_release(&heap_pool_lock);
  }
}
