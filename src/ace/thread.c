/* thread.c — the ACE thread: one pthread named "hakmem-ace".
 *
 * Start: lazily, from an allocator slow path with no allocator lock held (the alloc
 * layer's hak_slow_hook, every 16 slow paths of a thread), once the process has shown
 * it is worth steering: it has lived start_delay_ms (1 s), or it is 100 ms old and
 * holds start_bytes (64 MiB) outside the caches of freed memory: a program that builds a
 * large heap quickly and then only idles must still get its memory back.
 * A short command never gets the thread: a helper thread makes a process
 * multi-threaded, and that changes what the program may do (unshare(CLONE_NEWUSER)
 * fails with EINVAL, newer Pythons warn on fork). All signals are blocked in the thread
 * (it must not take the program's SIGTERM). A failed pthread_create leaves the
 * allocator on its defaults; three failures and ACE stops trying.
 * Loop: fast tick every fast_interval_ms, slow tick every slow_interval_s; it waits on a
 * condition variable so that a stop is immediate. The first window is at most
 * ACE_FIRST_WINDOW_MS: a process that started the thread by holding 64 MiB at 100 ms is
 * usually still building that heap, and a decision one full interval later (huge pages
 * for large blocks written whole) came after the build was over. It takes no lock that
 * malloc needs, except for the heap locks it only ever trylocks (alloc/release.c).
 * fork: the child has no ACE thread; it gets one lazily after start_delay_ms of its own
 * life, so a fork+exec child never does.
 * The end: a process lives as long as one of its threads does, and this one blocks
 * every signal. Once the program's own threads have all exited (main called
 * pthread_exit), this thread must end too, or the process would never terminate, nor
 * could any signal but SIGKILL reach it. Once the first thread has exited, every
 * exiting thread's heap teardown wakes this one (hak_thread_exit_hook), which then, and
 * at every fast tick, counts the threads that still own a heap
 * (hak_heap_live_threads). None left: it stops and returns, and when it was the last
 * thread glibc ends the process with exit(0), as for the program's own last thread.
 * (Not /proc/self/stat's thread count: threads that are not the program's count there
 * too, a sanitizer's or io_uring's workers.) A thread of the program that never
 * allocated may still run: then this one has only stopped early, detached, and a
 * later slow path starts another. */
#include "ace/ace.h"
#include "alloc/os_counters.h"
#include "base/lock.h"
#include "prim/prim.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

void ace_ctl_mark_child(void);

/* TH_STARTING: a slow path won the start (ace_hook); TH_STOPPING: a configuration
 * change won the stop and joins the thread. Each is one caller's alone: two stops
 * once joined the same thread twice (undefined behaviour; it hung). */
enum { TH_NONE, TH_STARTING, TH_RUNNING, TH_STOPPING };
/* Even a process that holds start_bytes gets the thread only after this much life:
 * short commands never get one. */
#define ACE_START_MIN_AGE_NS (100 * 1000000ull)
static _Atomic int th_state;
static pthread_t th_id;
static pthread_mutex_t th_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t th_cv;
/* The start waits until the new thread has opened its descriptors (controller start):
 * opened later, from the thread alone, a descriptor briefly takes the lowest free
 * number before it moves to 512 and up, and a single-threaded program that counts on
 * which numbers are free (a shell's dup2(1, 3) got EBUSY in git's tests) can lose. */
static pthread_cond_t th_ready_cv;
static bool th_ready;                    /* under th_mu */
#define ACE_READY_WAIT_NS (2000 * 1000000ull)
#define ACE_FIRST_WINDOW_MS 100u
static bool th_stop;
static _Atomic uint64_t proc_start_ns;   /* process (or fork child) start, prim clock */
static _Atomic int start_failures;
/* A failed start is tried again by a later slow path, but not before this long: the
 * slow paths of large blocks call the hook every 16 allocations, and a thread limit
 * (EAGAIN) is not lifted in microseconds. */
#define ACE_START_RETRY_NS (500 * 1000000ull)
static _Atomic uint64_t last_failure_ns;
static _Atomic bool fail_next_start;
static _Atomic uint32_t ace_enabled;     /* mirror of config.enabled for the hook */
static _Atomic bool first_gone;          /* the process's first thread has exited */
static bool exit_wake;                   /* under th_mu: a thread exited since then */

void ace_thread_fail_next_start(void) { hak_store_relaxed(&fail_next_start, true); }

static void cond_init(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&th_cv, &a);
  pthread_cond_init(&th_ready_cv, &a);
  pthread_condattr_destroy(&a);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* A deadline of the monotonic clock (the condition variables' clock) as a timespec. */
static struct timespec mono_deadline(uint64_t ns) {
  return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

static void* ace_main(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "hakmem-ace");
  uint64_t now = hak_prim_now_ns();
  ace_ctl_start(now);
  pthread_mutex_lock(&th_mu);
  th_ready = true;
  pthread_cond_broadcast(&th_ready_cv);
  pthread_mutex_unlock(&th_mu);
  uint64_t next_fast = mono_ns(), next_slow = next_fast;
  hakmem_ace_config_t cfg;
  ace_config_copy(&cfg);
  next_fast += (uint64_t)(cfg.fast_interval_ms < ACE_FIRST_WINDOW_MS ? cfg.fast_interval_ms : ACE_FIRST_WINDOW_MS) *
               1000000u;
  next_slow += (uint64_t)cfg.slow_interval_s * 1000000000u;
  int self = hak_prim_thread_id();
  bool alone = false;
  pthread_mutex_lock(&th_mu);
  while (!th_stop) {
    struct timespec ts = mono_deadline(next_fast < next_slow ? next_fast : next_slow);
    int rc = 0;
    while (!th_stop && !exit_wake && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&th_cv, &th_mu, &ts);
    if (th_stop) break;
    bool exited = exit_wake;
    exit_wake = false;
    pthread_mutex_unlock(&th_mu);
    ace_config_copy(&cfg);
    uint64_t t = mono_ns();
    if ((exited || (t >= next_fast && hak_load_relaxed(&first_gone))) && hak_heap_live_threads(self) == 0) {
      alone = true;
      pthread_mutex_lock(&th_mu);
      break;
    }
    if (t >= next_fast) {
      ace_ctl_fast_tick(hak_prim_now_ns());
      next_fast = t + (uint64_t)cfg.fast_interval_ms * 1000000u;
    }
    if (t >= next_slow) {
      ace_ctl_slow_tick(hak_prim_now_ns());
      next_slow = t + (uint64_t)cfg.slow_interval_s * 1000000000u;
    }
    pthread_mutex_lock(&th_mu);
  }
  pthread_mutex_unlock(&th_mu);
  ace_ctl_stop();
  if (alone) {
    hak_store_relaxed(&ace_state.mode, HAKMEM_ACE_MODE_WAITING);
    ace_set_reason("the program's threads have all exited: the ACE thread ended");
    /* Nobody joins this thread unless a stop is already under way; a later slow path
     * (a thread that never allocated) may start another. */
    int st = TH_RUNNING;
    if (atomic_compare_exchange_strong(&th_state, &st, TH_STOPPING)) {
      pthread_detach(pthread_self());
      hak_store_release(&th_state, TH_NONE);
    }
  }
  return NULL;                           /* the last thread: glibc calls exit(0) */
}

/* hak_thread_exit_hook: a thread's heap went away at its exit. After the first
 * thread's own exit, wake the ACE thread to look whether the program has ended. */
static void ace_thread_exited(void) {
  if (!hak_load_relaxed(&first_gone)) {
    if (hak_prim_thread_id() != hak_prim_process_id()) return;   /* not the first thread */
    hak_store_relaxed(&first_gone, true);
  }
  if (hak_load_acquire(&th_state) != TH_RUNNING) return;
  pthread_mutex_lock(&th_mu);
  exit_wake = true;
  pthread_cond_signal(&th_cv);
  pthread_mutex_unlock(&th_mu);
}

static void start_thread(void) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);        /* the new thread inherits the mask */
  int rc;
  pthread_mutex_lock(&th_mu);
  th_ready = false;
  pthread_mutex_unlock(&th_mu);
  if (atomic_exchange(&fail_next_start, false)) rc = EAGAIN;
  else rc = pthread_create(&th_id, NULL, ace_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    atomic_fetch_add(&start_failures, 1);
    hak_store_relaxed(&last_failure_ns, hak_prim_now_ns());
    hak_store_relaxed(&ace_state.mode, HAKMEM_ACE_MODE_FAILED);
    ace_set_reason("the ACE thread could not be started: the allocator runs on its defaults");
    ace_log(1, "the controller thread could not be started (error %d); defaults stay in force", rc);
    hak_store_release(&th_state, TH_NONE);
    return;
  }
  struct timespec ts = mono_deadline(mono_ns() + ACE_READY_WAIT_NS);
  pthread_mutex_lock(&th_mu);
  int w = 0;
  while (!th_ready && w != ETIMEDOUT) w = pthread_cond_timedwait(&th_ready_cv, &th_mu, &ts);
  pthread_mutex_unlock(&th_mu);
  hak_store_release(&th_state, TH_RUNNING);
}

/* hak_slow_hook: a slow path of some thread, no allocator lock held. */
static void ace_hook(void) {
  if (HAK_LIKELY(hak_load_relaxed(&th_state) != TH_NONE) || !hak_load_relaxed(&ace_enabled)) return;
  int failures = hak_load_relaxed(&start_failures);
  if (failures >= 3) return;
  uint64_t now = hak_prim_now_ns();
  if (failures > 0 && now - hak_load_relaxed(&last_failure_ns) < ACE_START_RETRY_NS) return;
  hakmem_ace_config_t cfg;
  ace_config_copy(&cfg);
  uint64_t age = now - hak_load_relaxed(&proc_start_ns);
  /* Memory the program holds: the caches of freed segments and mappings do not count
   * (a fork child inherits them from its parent), except the segments the cache keeps
   * resident after a program freed much at once: without this thread's scavenger
   * nothing gives them back while the program idles. */
  int64_t held = hak_load_relaxed(&hak_os_ctr.bytes_mapped) - hak_load_relaxed(&hak_os_ctr.bytes_cached) +
                 (int64_t)hak_segment_cache_dirty_bytes();
  bool worth = age >= (uint64_t)cfg.start_delay_ms * 1000000u ||
               (cfg.start_bytes && held > 0 && (uint64_t)held >= cfg.start_bytes &&
                age >= ACE_START_MIN_AGE_NS);
  if (!worth) return;
  int expected = TH_NONE;
  if (!atomic_compare_exchange_strong(&th_state, &expected, TH_STARTING)) return;
  /* Switched off since the check above: no thread. (Sequentially consistent with the
   * store in ace_thread_apply_config: either it sees TH_STARTING and waits for the
   * start to finish, or this sees ace_enabled 0.) */
  if (!atomic_load(&ace_enabled)) {
    hak_store_release(&th_state, TH_NONE);
    return;
  }
  start_thread();
}

static void stop_thread(void) {
  for (;;) {                 /* one stopper joins; the others wait until it is gone */
    int st = atomic_load(&th_state);
    if (st == TH_NONE) return;
    if (st == TH_RUNNING && atomic_compare_exchange_strong(&th_state, &st, TH_STOPPING)) break;
    sched_yield();           /* being started or stopped by another thread */
  }
  pthread_mutex_lock(&th_mu);
  th_stop = true;
  pthread_cond_signal(&th_cv);
  pthread_mutex_unlock(&th_mu);
  pthread_join(th_id, NULL);
  pthread_mutex_lock(&th_mu);
  th_stop = false;
  pthread_mutex_unlock(&th_mu);
  hak_store_release(&th_state, TH_NONE);
}

void ace_thread_apply_config(void) {
  hakmem_ace_config_t cfg;
  ace_config_copy(&cfg);
  atomic_store(&ace_enabled, cfg.enabled);   /* sequentially consistent: see ace_hook */
  if (!cfg.enabled) {
    stop_thread();
    hak_store_relaxed(&ace_state.mode, HAKMEM_ACE_MODE_OFF);
    return;
  }
  atomic_store(&start_failures, 0);
  uint32_t mode = hak_load_relaxed(&ace_state.mode);
  if (hak_load_acquire(&th_state) == TH_NONE && mode != HAKMEM_ACE_MODE_FAILED) {
    hak_store_relaxed(&ace_state.mode, HAKMEM_ACE_MODE_WAITING);
  }
  pthread_mutex_lock(&th_mu);
  pthread_cond_signal(&th_cv);      /* new intervals take effect at once */
  pthread_mutex_unlock(&th_mu);
}

/* fork: no tick runs across it (the thread waits on th_mu between ticks, and a tick in
 * flight holds locks the runtime's prepare handler waits for). */
static void fork_prepare(void) {
  pthread_mutex_lock(&th_mu);
  ace_config_fork_lock();        /* a leaf: taken under no other lock, none under it */
}
static void fork_parent(void) {
  ace_config_fork_unlock();
  pthread_mutex_unlock(&th_mu);
}
static void fork_child(void) {
  /* This thread took th_mu and the configuration's lock in fork_prepare: release them
   * (re-initialising a locked mutex left ThreadSanitizer believing it still held). */
  ace_config_fork_unlock();
  pthread_mutex_unlock(&th_mu);
  cond_init();
  th_stop = false;
  exit_wake = false;
  hak_store_relaxed(&first_gone, false);   /* this thread is the child's first */
  hak_store_relaxed(&th_state, TH_NONE);
  hak_store_relaxed(&proc_start_ns, hak_prim_now_ns());
  hak_store_relaxed(&start_failures, 0);
  ace_scavenge_reset();
  ace_pmu_close();
  ace_trace_close();
  ace_ctl_mark_child();
  hak_store_relaxed(&ace_state.mode, hak_load_relaxed(&ace_enabled) ? HAKMEM_ACE_MODE_WAITING : HAKMEM_ACE_MODE_OFF);
}

void hak_ace_init(void) {
  static _Atomic int done;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&done, &expected, 1)) return;
  hak_store_relaxed(&proc_start_ns, hak_prim_now_ns());
  cond_init();
  ace_config_load();
  hakmem_ace_config_t cfg;
  ace_config_copy(&cfg);
  hak_store_relaxed(&ace_enabled, cfg.enabled);
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  hak_store_release(&hak_slow_hook, ace_hook);
  hak_store_release(&hak_thread_exit_hook, ace_thread_exited);
}
