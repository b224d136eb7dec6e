/* proc_sample.c — run a command and watch its memory and its ACE thread from outside.
 *
 *   proc_sample [--csv PATH] [--interval-ms N] -- PROGRAM ARGS...
 *
 * Forks PROGRAM (the environment, LD_PRELOAD included, passes through unchanged) and,
 * until it exits, reads every --interval-ms (100):
 *   - /proc/PID/statm: resident bytes;
 *   - the thread of PID named "hakmem-ace" (comm in /proc/PID/task/TID/stat): its CPU
 *     time, from /proc/PID/task/TID/schedstat (ns) when the kernel fills it, else
 *     utime+stime of .../stat (clock ticks, 10 ms each here).
 * The thread's CPU is the value of the last sample before the program exits (after
 * exit the kernel has already reaped the thread), so up to one interval of it can be
 * missed; ACE uses well under 1 % of a core, i.e. under 1 ms per 100 ms interval.
 *
 * After the program exits it prints one line on stdout (after the program's output):
 *   SAMPLE peak_rss_kb=<sampled max> rss_area_mib_s=<area under the RSS curve, each
 *          sample held until the next> ace_cpu_ms=<N> ace_thread=<0|1> samples=<N> wall_s=<s>
 *          minflt=<N> majflt=<N> cpu_ms=<N> ace_minflt=<N>
 * (minflt, majflt, cpu_ms: the program's page faults and user+system CPU time, all its
 * threads, from wait4's rusage; this sampler's own are not in them; ace_minflt: the
 * hakmem-ace thread's share of minflt, at the last sample like its CPU)
 * and exits with the program's status (or kills itself with the program's signal), so
 * a runner sees a crash as a crash. --csv writes t_seconds,rss_bytes,ace_cpu_ns rows.
 *
 * When this runs under LD_PRELOAD=libhakmem.so, hakmem is loaded here as well; the
 * sampling loop never calls malloc (raw syscalls into stack buffers, samples go to a
 * buffer made before the fork), so no ACE thread of its own ever starts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
  fprintf(f, "usage: proc_sample [--csv PATH] [--interval-ms N] -- PROGRAM ARGS...\n"
             "Runs PROGRAM, samples its RSS and its hakmem-ace thread's CPU, prints a SAMPLE line.\n");
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Read a small /proc file into buf (NUL-terminated); bytes read, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do n = read(fd, buf, cap - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  return n;
}

static uint64_t parse_u64(const char **s) {
  uint64_t v = 0;
  while (**s == ' ') (*s)++;
  while (**s >= '0' && **s <= '9') v = v * 10 + (uint64_t)(*(*s)++ - '0');
  return v;
}

static long g_page, g_tick_ns;

static int rss_bytes(pid_t pid, uint64_t *out) {
  char path[64], buf[160];
  snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
  if (read_small(path, buf, sizeof buf) <= 0) return -1;
  const char *s = buf;
  (void)parse_u64(&s);
  *out = parse_u64(&s) * (uint64_t)g_page;
  return 0;
}

/* The minor faults of the hakmem-ace thread at the last ace_cpu_of call. */
static uint64_t g_ace_minflt;

/* CPU ns of thread TID of PID if its comm is "hakmem-ace"; -1 if not (or gone). Sets
 * g_ace_minflt to the thread's minor faults. */
static int64_t ace_cpu_of(pid_t pid, long tid) {
  char path[96], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/task/%ld/stat", (int)pid, tid);
  if (read_small(path, buf, sizeof buf) <= 0) return -1;
  char *l = strchr(buf, '('), *r = strrchr(buf, ')');
  if (!l || !r || r - l - 1 != 10 || memcmp(l + 1, "hakmem-ace", 10) != 0) return -1;
  /* fields after ")": 3 state, 4 ppid, ... 10 minflt, ... 14 utime, 15 stime */
  const char *s = r + 2;
  int field = 3;
  while (*s && field < 10) {
    if (*s++ == ' ') field++;
  }
  g_ace_minflt = parse_u64(&s);
  while (*s && field < 14) {
    if (*s++ == ' ') field++;
  }
  uint64_t ut = parse_u64(&s), st = parse_u64(&s);
  char sbuf[128];
  snprintf(path, sizeof path, "/proc/%d/task/%ld/schedstat", (int)pid, tid);
  if (read_small(path, sbuf, sizeof sbuf) > 0) {
    const char *q = sbuf;
    uint64_t ns = parse_u64(&q);
    if (ns > 0) return (int64_t)ns;
  }
  return (int64_t)((ut + st) * (uint64_t)g_tick_ns);
}

/* Find the hakmem-ace thread of PID (raw getdents64: no malloc); its tid or -1. */
static long find_ace(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  long found = -1;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n && found < 0;) {
      struct {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (void *)(buf + off);
      if (d->name[0] >= '0' && d->name[0] <= '9') {
        long tid = strtol(d->name, NULL, 10);
        if (ace_cpu_of(pid, tid) >= 0) found = tid;
      }
      off += d->reclen;
    }
    if (found >= 0) break;
  }
  close(fd);
  return found;
}

int main(int argc, char **argv) {
  const char *csv_path = NULL;
  long interval_ms = 100;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) { i++; break; }
    if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) csv_path = argv[++i];
    else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) interval_ms = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(stdout); return 0; }
    else { fprintf(stderr, "proc_sample: unexpected argument '%s'\n", argv[i]); usage(stderr); return 2; }
  }
  if (i >= argc || interval_ms < 1 || interval_ms > 60000) { usage(stderr); return 2; }
  g_page = sysconf(_SC_PAGESIZE);
  long hz = sysconf(_SC_CLK_TCK);
  g_tick_ns = 1000000000L / (hz > 0 ? hz : 100);

  FILE *csv = NULL;
  if (csv_path && !(csv = fopen(csv_path, "w"))) {
    fprintf(stderr, "proc_sample: cannot open %s: %s\n", csv_path, strerror(errno));
    return 2;
  }
  /* the samples of up to one day at the interval, sized before the fork */
  size_t cap = (size_t)(86400000 / interval_ms) + 16, n = 0;
  struct sample { double t; uint64_t rss; int64_t ace; } *sm = calloc(cap, sizeof *sm);
  if (!sm) { fprintf(stderr, "proc_sample: out of memory\n"); return 2; }

  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  fflush(stdout);
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) { perror("proc_sample: fork"); return 2; }
  if (pid == 0) {
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    execvp(argv[i], argv + i);
    fprintf(stderr, "proc_sample: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  /* a TERM for us (timeout signals the whole group) reaches the child too; just wait */
  long ace_tid = -1;
  int64_t ace_ns = -1, ace_prev_threads = 0; /* CPU of ACE threads that ended before */
  uint64_t ace_flt = 0, ace_prev_flt = 0;      /* their minor faults, the same way */
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    pid_t w = wait4(pid, &status, WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) { status = 0; break; }
    uint64_t rss = 0;
    if (rss_bytes(pid, &rss) == 0) {
      int64_t c = ace_tid >= 0 ? ace_cpu_of(pid, ace_tid) : -1;
      if (c < 0) {
        if (ace_tid >= 0 && ace_ns > 0) ace_prev_threads += ace_ns; /* it ended; a new one may come */
        if (ace_tid >= 0) ace_prev_flt += ace_flt, ace_flt = 0;
        if (ace_tid >= 0) ace_ns = -1;
        ace_tid = find_ace(pid);
        c = ace_tid >= 0 ? ace_cpu_of(pid, ace_tid) : -1;
      }
      if (c >= 0) ace_ns = c, ace_flt = g_ace_minflt;
      if (n < cap) sm[n++] = (struct sample){now_s() - t0, rss, (ace_ns > 0 ? ace_ns : 0) + ace_prev_threads};
    }
    /* sleep until the next tick, or until the child exits (SIGCHLD is blocked and
       waited for, so the end of the run is seen at once, not up to an interval late) */
    next.tv_nsec += interval_ms * 1000000L;
    while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
    struct timespec cur, left;
    clock_gettime(CLOCK_MONOTONIC, &cur);
    left.tv_sec = next.tv_sec - cur.tv_sec;
    left.tv_nsec = next.tv_nsec - cur.tv_nsec;
    if (left.tv_nsec < 0) { left.tv_nsec += 1000000000L; left.tv_sec--; }
    if (left.tv_sec >= 0) (void)sigtimedwait(&chld, NULL, &left);
  }
  double wall = now_s() - t0;
  uint64_t peak = 0;
  double area = 0;
  for (size_t k = 0; k < n; k++) {
    if (sm[k].rss > peak) peak = sm[k].rss;
    double t1 = k + 1 < n ? sm[k + 1].t : wall;
    area += (double)sm[k].rss / 1048576.0 * (t1 - sm[k].t);
  }
  int64_t ace_total = n ? sm[n - 1].ace : 0;
  if (csv) {
    fprintf(csv, "t_seconds,rss_bytes,ace_cpu_ns\n");
    for (size_t k = 0; k < n; k++)
      fprintf(csv, "%.3f,%llu,%lld\n", sm[k].t, (unsigned long long)sm[k].rss, (long long)sm[k].ace);
    fclose(csv);
  }
  double cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  printf("SAMPLE peak_rss_kb=%llu rss_area_mib_s=%.2f ace_cpu_ms=%.1f ace_thread=%d samples=%zu wall_s=%.2f"
         " minflt=%ld majflt=%ld cpu_ms=%.1f ace_minflt=%llu\n",
         (unsigned long long)(peak / 1024), area, (double)ace_total / 1e6, ace_tid >= 0 || ace_prev_threads > 0,
         n, wall, ru.ru_minflt, ru.ru_majflt, cpu_ms, (unsigned long long)(ace_flt + ace_prev_flt));
  fflush(stdout);
  free(sm);
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    kill(getpid(), sig);
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
