/* bench_common.h — helpers shared by hakmem's benchmark programs.
 *
 * The benchmarks call only the plain libc names (malloc, free, realloc), so each
 * binary runs unchanged against any allocator through LD_PRELOAD. Nothing here
 * links to hakmem.
 *
 * Invariants every benchmark keeps:
 *  - every block it allocates is tagged (bc_fill) right after allocation and checked
 *    (bc_check) right before it is freed; a mismatch aborts with a message, so an
 *    allocator that hands out overlapping or clobbered memory cannot look fast;
 *  - a NULL from malloc/realloc aborts (bc_fail) — the sizes used are all small
 *    enough that a real out-of-memory is a failure of the run;
 *  - helpers on the measured path never allocate: error text goes through write(2)
 *    from a stack buffer, RSS is read with open/read into a stack buffer.
 *
 * The last line a benchmark prints is machine readable:
 *     RESULT bench=<name> ops_per_sec=<n> peak_rss_kb=<n> [k=v ...]
 * (bench_micro and realloc_bench print one such line per case they ran.)
 */
#ifndef HAK_BENCH_COMMON_H
#define HAK_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define BC_LIKELY(x) __builtin_expect(!!(x), 1)
#define BC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BC_NORETURN __attribute__((noreturn))
#define BC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BC_LIKELY(x) (x)
#define BC_UNLIKELY(x) (x)
#define BC_NORETURN
#define BC_PRINTF(a, b)
#endif

/* ---- failure -------------------------------------------------------------------- */

/* Print "bench: FAILED: <msg>" on stderr and abort(). Does not allocate. */
BC_NORETURN void bc_fail(const char *fmt, ...) BC_PRINTF(1, 2);

/* ---- random numbers: splitmix64, one state per thread ---------------------------- */

typedef struct {
  uint64_t s; /* advances by the golden-ratio increment on each draw */
} bc_rng;

/* Seed a generator; `stream` separates threads that share one --seed. */
void bc_rng_seed(bc_rng *r, uint64_t seed, uint64_t stream);

static inline uint64_t bc_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline uint64_t bc_rng_next(bc_rng *r) {
  r->s += 0x9e3779b97f4a7c15ULL;
  return bc_mix64(r->s);
}

/* Uniform in [0, n); n > 0. Multiply-shift keeps it branch-free (bias < 2^-40). */
static inline uint64_t bc_rng_below(bc_rng *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)bc_rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline size_t bc_rng_range(bc_rng *r, size_t lo, size_t hi) {
  return lo + (size_t)bc_rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* Log-uniform in [lo, hi]: a power-of-two bucket is picked uniformly, then a size
 * uniformly inside it, so every doubling gets the same share of the draws. */
size_t bc_rng_logrange(bc_rng *r, size_t lo, size_t hi);

/* ---- block tags ------------------------------------------------------------------- */

/* The tag of a block depends on its size and a per-allocation key (callers keep
 * keys unique among live blocks), not on its address, so a block that moves in
 * realloc keeps its head tag. */
static inline uint64_t bc_tag(size_t size, uint64_t key) {
  return bc_mix64(key ^ ((uint64_t)size * 0x9e3779b97f4a7c15ULL) ^ 0x6861606d656d21ULL);
}

/* Write the head tag (first 8 bytes) and, for blocks of 16 bytes or more, the
 * inverted tag in the last 8 bytes. Blocks under 8 bytes get a prefix of the tag. */
static inline void bc_fill(void *p, size_t size, uint64_t key) {
  uint64_t t = bc_tag(size, key);
  if (BC_UNLIKELY(size < 8)) {
    memcpy(p, &t, size);
    return;
  }
  memcpy(p, &t, 8);
  if (size >= 16) {
    uint64_t e = ~t;
    memcpy((char *)p + size - 8, &e, 8);
  }
}

BC_NORETURN void bc_check_failed(const void *p, size_t size, uint64_t key, const char *where);

/* Verify both tags written by bc_fill; abort with `where` in the message if not. */
static inline void bc_check(const void *p, size_t size, uint64_t key, const char *where) {
  uint64_t t = bc_tag(size, key), h = 0, e = 0;
  if (BC_UNLIKELY(size < 8)) {
    memcpy(&h, p, size);
    if (memcmp(&h, &t, size) != 0) bc_check_failed(p, size, key, where);
    return;
  }
  memcpy(&h, p, 8);
  if (size >= 16) memcpy(&e, (const char *)p + size - 8, 8);
  else e = ~t;
  if (BC_UNLIKELY(h != t || e != ~t)) bc_check_failed(p, size, key, where);
}

/* Check what malloc returned: not NULL, at least 8-byte aligned. Keeps the compiler
 * from eliding a malloc/free pair whose memory it could prove unused. */
static inline void *bc_got(void *p, size_t size, const char *where) {
  if (BC_UNLIKELY(p == NULL)) bc_fail("%s: allocation of %zu bytes returned NULL", where, size);
  if (BC_UNLIKELY(((uintptr_t)p & 7) != 0))
    bc_fail("%s: %p (size %zu) is not 8-byte aligned", where, p, size);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

/* ---- time and memory ---------------------------------------------------------------- */

double bc_now(void);      /* CLOCK_MONOTONIC, seconds */
uint64_t bc_now_ns(void); /* CLOCK_MONOTONIC, nanoseconds */
void bc_sleep(double seconds);

/* A field of /proc/self/status in KiB ("VmHWM", "VmRSS"); -1 if unreadable. */
long bc_status_kb(const char *field);

/* ---- command line ------------------------------------------------------------------- */

typedef enum {
  BC_OPT_U64,  /* uint64_t, decimal or 0x hex */
  BC_OPT_SIZE, /* size_t, with an optional K/M/G suffix (powers of 1024) */
  BC_OPT_DBL,  /* double */
  BC_OPT_STR,  /* const char * (points into argv) */
  BC_OPT_FLAG, /* int set to 1, takes no value */
} bc_opt_type;

typedef struct {
  const char *name;  /* without the leading "--" */
  bc_opt_type type;
  void *ptr;         /* where the value goes; its current value is the default */
  double min, max;   /* accepted range for numeric types (inclusive) */
  const char *help;
} bc_opt;

/* Parse --name value / --name=value. --help prints usage to stdout and exits 0; an
 * unknown option, a missing or malformed value, a value out of range or a positional
 * argument prints the problem and usage to stderr and exits 2. */
void bc_parse_args(int argc, char **argv, const char *prog, const char *summary,
                   const bc_opt *opts, int nopts);

/* After bc_parse_args: report a semantic problem (e.g. --min > --max) with usage
 * on stderr and exit 2. */
BC_NORETURN void bc_usage_error(const char *fmt, ...) BC_PRINTF(1, 2);

#endif /* HAK_BENCH_COMMON_H */
