/* pmu.c — PMU events for the controller, through libpfm4 and perf_event_open.
 *
 * hardware  LLC loads and LLC misses (libpfm's generic perf::LLC-LOADS and
 *           perf::LLC-LOAD-MISSES), user-only (exclude_kernel, exclude_hv), CLOEXEC;
 * software  page faults (perf::PAGE-FAULTS), where the machine exposes no PMU (these
 *           VMs: perf_event_open fails with ENOENT for hardware events);
 * none      hakmem's own counters only.
 * Counters are per thread: each read scans /proc/self/task, opens the events for new
 * threads (at most ACE_PMU_THREADS) and closes those of threads that are gone, and the
 * totals accumulate the per-thread deltas. read(2) is used: rdpmc only works for a
 * thread's own counters, and these are other threads'. Only the ACE thread calls this
 * file (libpfm and opendir allocate). Process CPU time comes from
 * CLOCK_PROCESS_CPUTIME_ID in every mode.
 *
 * libpfm is loaded with dlopen, and only where the kernel counts hardware events (a
 * probe by number first): linked, its event tables cost every process that loads
 * hakmem 2.3 MiB of RSS and 0.3 ms of relocations at start-up (measured: a
 * /bin/true-sized program, 1.6 -> 3.9 MiB). Software events are opened by number. */
#include "ace/ace.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ACE_PMU_THREADS 256
#define ACE_PMU_EVENTS  2

typedef struct pmu_thread {
  pid_t    tid;
  int      fd[ACE_PMU_EVENTS];
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

static int perf_open(struct perf_event_attr* attr, pid_t tid) {
  return (int)syscall(SYS_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
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

/* Does the kernel count LLC read accesses for this thread, user-only? (by number) */
static bool hardware_present(void) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = PERF_TYPE_HW_CACHE;
  a.config = PERF_COUNT_HW_CACHE_LL | (PERF_COUNT_HW_CACHE_OP_READ << 8) | (PERF_COUNT_HW_CACHE_RESULT_ACCESS << 16);
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  int fd = perf_open(&a, (pid_t)syscall(SYS_gettid));
  if (fd < 0) return false;
  close(fd);
  return true;
}

/* Can this thread count these events? (opens and closes them for itself) */
static bool probe(int n) {
  pid_t self = (pid_t)syscall(SYS_gettid);
  for (int e = 0; e < n; e++) {
    int fd = perf_open(&pmu_attr[e], self);
    if (fd < 0) return false;
    close(fd);
  }
  return true;
}

int ace_pmu_open(int want) {
  ace_pmu_close();
  pmu_mode = 0;
  if (want <= 0) return 0;
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
  if (!encode("perf::PAGE-FAULTS", &pmu_attr[0])) {
    memset(&pmu_attr[0], 0, sizeof pmu_attr[0]);        /* by number, without libpfm */
    pmu_attr[0].size = sizeof pmu_attr[0];
    pmu_attr[0].type = PERF_TYPE_SOFTWARE;
    pmu_attr[0].config = PERF_COUNT_SW_PAGE_FAULTS;
    pmu_attr[0].exclude_kernel = 1;
    pmu_attr[0].exclude_hv = 1;
  }
  if (probe(1)) {
    pmu_nevents = 1;
    pmu_mode = 1;
  }
  return pmu_mode;
}

static void thread_close(pmu_thread* t) {
  for (int e = 0; e < pmu_nevents; e++) if (t->fd[e] >= 0) close(t->fd[e]);
}

/* Track the threads of /proc/self/task: new ones get counters, gone ones lose them. */
static void scan_threads(void) {
  for (int i = 0; i < pmu_nthreads; i++) pmu_threads[i].seen = false;
  DIR* d = opendir("/proc/self/task");
  if (!d) return;
  struct dirent* de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
    pid_t tid = (pid_t)atoi(de->d_name);
    int i = 0;
    while (i < pmu_nthreads && pmu_threads[i].tid != tid) i++;
    if (i < pmu_nthreads) { pmu_threads[i].seen = true; continue; }
    if (pmu_nthreads == ACE_PMU_THREADS) continue;
    pmu_thread* t = &pmu_threads[pmu_nthreads];
    t->tid = tid;
    bool ok = true;
    for (int e = 0; e < pmu_nevents; e++) {
      t->fd[e] = ok ? perf_open(&pmu_attr[e], tid) : -1;
      t->last[e] = 0;
      if (t->fd[e] < 0) ok = false;
    }
    if (!ok) { thread_close(t); continue; }       /* e.g. the thread just exited */
    t->seen = true;
    pmu_nthreads++;
  }
  closedir(d);
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
  if (pmu_mode == 0) return;
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
  if (pmu_mode == 2) {
    out->llc_loads = pmu_total[0];
    out->llc_misses = pmu_total[1];
  } else {
    out->page_faults = pmu_total[0];
  }
}

void ace_pmu_close(void) {
  for (int i = 0; i < pmu_nthreads; i++) thread_close(&pmu_threads[i]);
  pmu_nthreads = 0;
  memset(pmu_total, 0, sizeof pmu_total);
}
