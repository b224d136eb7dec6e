/* pmu.c — PMU events for the controller, through libpfm4 and perf_event_open.
 *
 * hardware  LLC loads and LLC misses (libpfm's generic perf::LLC-LOADS and
 *           perf::LLC-LOAD-MISSES), user-only (exclude_kernel, exclude_hv), CLOEXEC;
 * software  page faults, where the machine exposes no PMU (these VMs: perf_event_open
 *           fails with ENOENT for hardware events): the process's minor + major faults
 *           from getrusage, all threads, dead ones included. (They were perf's
 *           PAGE-FAULTS software events, one descriptor per thread: the same counts,
 *           and descriptors in the program's way; prim.h, "kept fds".)
 * none      hakmem's own counters only.
 * Hardware counters are per thread: each read scans /proc/self/task (a kept descriptor,
 * getdents64), opens the events for new threads (at most ACE_PMU_THREADS) and closes
 * those of threads that are gone, and the totals accumulate the per-thread deltas.
 * Their descriptors are moved above the program's low numbers, and one is closed only
 * while it is still the event it was (PERF_EVENT_IOC_ID). read(2) is used: rdpmc only
 * works for a thread's own counters, and these are other threads'. Only the ACE
 * thread calls this file (libpfm allocates). Process CPU time comes from
 * CLOCK_PROCESS_CPUTIME_ID in every mode.
 *
 * libpfm is loaded with dlopen, and only where the kernel counts hardware events (a
 * probe by number first): linked, its event tables cost every process that loads
 * hakmem 2.3 MiB of RSS and 0.3 ms of relocations at start-up (measured: a
 * /bin/true-sized program, 1.6 -> 3.9 MiB). Software mode needs neither libpfm nor perf. */
#include "ace/ace.h"

#include "prim/prim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ACE_PMU_THREADS 256
#define ACE_PMU_EVENTS  2

typedef struct pmu_thread {
  pid_t    tid;
  int      fd[ACE_PMU_EVENTS];
  uint64_t id[ACE_PMU_EVENTS];    /* the kernel's event id: fd is still ours when it matches */
  uint64_t last[ACE_PMU_EVENTS];
  bool     seen;
} pmu_thread;

static int pmu_mode;                                   /* 0 none, 1 software, 2 hardware */
static struct perf_event_attr pmu_attr[ACE_PMU_EVENTS];
static int pmu_nevents;
static pmu_thread pmu_threads[ACE_PMU_THREADS];
static int pmu_nthreads;
static uint64_t pmu_total[ACE_PMU_EVENTS];

typedef int (*pfm_initialize_fn)(void);
typedef int (*pfm_encoding_fn)(const char* str, int dfl_plm, pfm_os_t os, void* args);
static pfm_initialize_fn pfm_init_fn;
static pfm_encoding_fn pfm_encode_fn;

/* libpfm's two entry points, from Debian's libpfm.so.4; false when it is not there. */
static bool pfm_load(void) {
  static void* lib;
  if (!lib) {
    lib = dlopen("libpfm.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return false;
    pfm_init_fn = (pfm_initialize_fn)dlsym(lib, "pfm_initialize");
    pfm_encode_fn = (pfm_encoding_fn)dlsym(lib, "pfm_get_os_event_encoding");
  }
  return pfm_init_fn && pfm_encode_fn;
}

static hak_kept_fd task_dir = HAK_KEPT_FD_NONE;     /* /proc/self/task */
static hak_kept_fd vmstat = HAK_KEPT_FD_NONE;       /* /proc/vmstat: compaction stalls */
static uint64_t faults_base;                          /* software mode: getrusage at open */

/* An event's descriptor, moved above the program's low numbers; -1 on failure. *id gets
 * the kernel's id of the event. */
static int perf_open(struct perf_event_attr* attr, pid_t tid, uint64_t* id) {
  int fd = (int)syscall(SYS_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0 || (fd = hak_prim_fd_high(fd)) < 0) return -1;
  if (ioctl(fd, PERF_EVENT_IOC_ID, id) != 0) *id = 0;
  return fd;
}

/* Close fd only if it is still the event `id` (a program may have closed it and reused
 * the number). */
static void perf_close(int fd, uint64_t id) {
  uint64_t now;
  if (fd >= 0 && ioctl(fd, PERF_EVENT_IOC_ID, &now) == 0 && now == id) close(fd);
}

/* Encode `name` with libpfm into attr (user-level counting only). */
static bool encode(const char* name, struct perf_event_attr* attr) {
  memset(attr, 0, sizeof *attr);
  pfm_perf_encode_arg_t arg;
  memset(&arg, 0, sizeof arg);
  arg.attr = attr;
  arg.size = sizeof arg;
  if (!pfm_encode_fn || pfm_encode_fn(name, PFM_PLM3, PFM_OS_PERF_EVENT, &arg) != PFM_SUCCESS) return false;
  attr->size = sizeof *attr;
  attr->exclude_kernel = 1;
  attr->exclude_hv = 1;
  attr->disabled = 0;
  return true;
}

/* Can this thread count `a`? (opens and closes it for itself) */
static bool can_count(struct perf_event_attr* a) {
  uint64_t id;
  int fd = perf_open(a, (pid_t)syscall(SYS_gettid), &id);
  if (fd < 0) return false;
  perf_close(fd, id);
  return true;
}

/* Does the kernel count LLC read accesses for this thread, user-only? (by number) */
static bool hardware_present(void) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = PERF_TYPE_HW_CACHE;
  a.config = PERF_COUNT_HW_CACHE_LL | (PERF_COUNT_HW_CACHE_OP_READ << 8) | (PERF_COUNT_HW_CACHE_RESULT_ACCESS << 16);
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  return can_count(&a);
}

/* Can this thread count these events? (opens and closes them for itself) */
static bool probe(int n) {
  for (int e = 0; e < n; e++) if (!can_count(&pmu_attr[e])) return false;
  return true;
}

/* The process's page faults in a getrusage reading. */
static uint64_t faults_of(const struct rusage* ru) { return (uint64_t)ru->ru_minflt + (uint64_t)ru->ru_majflt; }

static uint64_t rusage_faults(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? faults_of(&ru) : 0;
}

int ace_pmu_open(int want) {
  ace_pmu_close();
  pmu_mode = 0;
  if (want <= 0) return 0;
  hak_prim_compact_stalls_kept(&vmstat);   /* opened now, while the start waits (thread.c) */
  /* libpfm (2.3 MiB of tables) is loaded only where hardware events can be counted:
   * probe for them by number first. Software events need no encoding. */
  bool pfm = want >= 2 && hardware_present() && pfm_load() && pfm_init_fn() == PFM_SUCCESS;
  if (!pfm) pfm_encode_fn = NULL;
  if (want >= 2 && pfm && encode("perf::LLC-LOADS", &pmu_attr[0]) && encode("perf::LLC-LOAD-MISSES", &pmu_attr[1]) &&
      probe(2)) {
    pmu_nevents = 2;
    pmu_mode = 2;
    return pmu_mode;
  }
  pmu_nevents = 0;
  faults_base = rusage_faults();
  pmu_mode = 1;
  return pmu_mode;
}

static void thread_close(pmu_thread* t) {
  for (int e = 0; e < pmu_nevents; e++) perf_close(t->fd[e], t->id[e]);
}

/* A thread id seen in /proc/self/task: counted from now on if new. */
static void thread_seen(pid_t tid) {
  int i = 0;
  while (i < pmu_nthreads && pmu_threads[i].tid != tid) i++;
  if (i < pmu_nthreads) { pmu_threads[i].seen = true; return; }
  if (pmu_nthreads == ACE_PMU_THREADS) return;
  pmu_thread* t = &pmu_threads[pmu_nthreads];
  t->tid = tid;
  bool ok = true;
  for (int e = 0; e < pmu_nevents; e++) {
    t->fd[e] = ok ? perf_open(&pmu_attr[e], tid, &t->id[e]) : -1;
    t->last[e] = 0;
    if (t->fd[e] < 0) ok = false;
  }
  if (!ok) { thread_close(t); return; }       /* e.g. the thread just exited */
  t->seen = true;
  pmu_nthreads++;
}

/* Track the threads of /proc/self/task: new ones get counters, gone ones lose them.
 * The directory stays open (a kept descriptor) and is read again from its start. */
static void scan_threads(void) {
  if (!hak_prim_kept_valid(&task_dir) && !hak_prim_kept_open(&task_dir, "/proc/self/task", O_DIRECTORY)) return;
  if (lseek(task_dir.fd, 0, SEEK_SET) != 0) return;
  for (int i = 0; i < pmu_nthreads; i++) pmu_threads[i].seen = false;
  char buf[4096] __attribute__((aligned(8)));
  for (;;) {
    long n = syscall(SYS_getdents64, task_dir.fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; }* de =
          (void*)(buf + off);
      off += de->reclen;
      if (de->name[0] < '0' || de->name[0] > '9') continue;
      thread_seen((pid_t)atoi(de->name));
    }
  }
  for (int i = 0; i < pmu_nthreads;) {
    if (pmu_threads[i].seen) { i++; continue; }
    thread_close(&pmu_threads[i]);
    pmu_threads[i] = pmu_threads[--pmu_nthreads];
  }
}

void ace_pmu_read(ace_pmu_reading* out) {
  memset(out, 0, sizeof *out);
  out->mode = pmu_mode;
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  out->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  /* The kernel's part of it: what keeping freed memory could save is at most this. */
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    out->sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000u + (uint64_t)ru.ru_stime.tv_usec * 1000u;
    if (pmu_mode == 1) {
      uint64_t f = faults_of(&ru);
      out->page_faults = f > faults_base ? f - faults_base : 0;
    }
  }
  if (pmu_mode >= 1) out->compact_stalls = hak_prim_compact_stalls_kept(&vmstat);
  if (pmu_mode <= 1) return;
  scan_threads();
  for (int i = 0; i < pmu_nthreads; i++) {
    pmu_thread* t = &pmu_threads[i];
    for (int e = 0; e < pmu_nevents; e++) {
      uint64_t v;
      if (read(t->fd[e], &v, sizeof v) != (ssize_t)sizeof v) continue;
      if (v > t->last[e]) pmu_total[e] += v - t->last[e];
      t->last[e] = v;
    }
  }
  out->llc_loads = pmu_total[0];
  out->llc_misses = pmu_total[1];
}

void ace_pmu_close(void) {
  for (int i = 0; i < pmu_nthreads; i++) thread_close(&pmu_threads[i]);
  pmu_nthreads = 0;
  memset(pmu_total, 0, sizeof pmu_total);
  hak_prim_kept_close(&task_dir);
  hak_prim_kept_close(&vmstat);
}
