/* minimize.c — two-level logic minimisation of random Boolean functions (the
 * allocation pattern of espresso-like programs: many small, short-lived objects).
 *
 * For each of --functions functions of --min-vars to --max-vars inputs (random truth
 * tables: 35 % of the minterms on, 10 % don't-care, from a fixed seed):
 *   1. prime implicants by Quine-McCluskey: every on or don't-care minterm is a cube;
 *      cubes of the same care mask whose values differ in one bit merge into a cube
 *      with that bit freed (partners found through a hash map of the level; duplicates
 *      dropped through another); the cubes that merged with nothing are primes. Each cube is its own malloc'd object, each level
 *      a malloc'd, realloc-grown list, and a level's cubes are freed when the next one
 *      is built: thousands of 16-byte objects per function, most of them dead within
 *      one level.
 *   2. a cover: for every on minterm, a malloc'd, realloc-grown list of the primes that
 *      cover it; essential primes first, then the prime that covers the most uncovered
 *      minterms (fewest literals on a tie) until every on minterm is covered.
 *   3. checks: the cover covers every on minterm and no off minterm, and every cube of
 *      it is prime (freeing any of its literals would cover an off minterm). A wrong
 *      answer (from memory an allocator clobbered) stops the run.
 *
 * Whole-process benchmark: the work is fixed; compare.sh reports ops / the process's
 * wall time. ops = malloc + realloc + free calls.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t opt_functions = 40;
static uint64_t opt_min_vars = 8;
static uint64_t opt_max_vars = 11;
static uint64_t opt_seed = 1984;

static uint64_t g_ops;

static void *xmalloc(size_t n) {
  g_ops++;
  return bc_got(malloc(n), n, "minimize malloc");
}

static void *xrealloc(void *p, size_t n) {
  g_ops++;
  return bc_got(realloc(p, n), n, "minimize realloc");
}

static void xfree(void *p) {
  g_ops++;
  free(p);
}

enum { T_OFF = 0, T_ON = 1, T_DC = 2 };

typedef struct {
  uint32_t care; /* bits the cube fixes */
  uint32_t val;  /* their values (0 outside care) */
  uint16_t used; /* merged into a larger cube at this level */
  uint16_t lits; /* literals: popcount(care) */
  uint32_t id;   /* index among the primes, once it is one */
} cube_t;

typedef struct {
  cube_t **v;
  size_t n, cap;
} list_t;

static void list_push(list_t *l, cube_t *c) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->v = xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = c;
}

static cube_t *cube_new(uint32_t care, uint32_t val) {
  cube_t *c = xmalloc(sizeof *c);
  c->care = care;
  c->val = val;
  c->used = 0;
  c->lits = (uint16_t)__builtin_popcount(care);
  c->id = 0;
  return c;
}

/* Open-addressing map from (care, val) to an index, for one level: finds a cube's
 * merge partner, and drops a merge found twice. Grows to stay at most half full. */
typedef struct {
  uint64_t *k; /* (care << 32 | val) + 1; 0 = empty */
  uint32_t *v; /* the value of each key */
  size_t mask, n;
} map_t;

static uint64_t map_key(uint32_t care, uint32_t val) { return ((uint64_t)care << 32 | val) + 1; }

static void map_init(map_t *s, size_t want) {
  size_t cap = 64;
  while (cap < want * 2) cap *= 2;
  s->k = xmalloc(cap * sizeof *s->k);
  s->v = xmalloc(cap * sizeof *s->v);
  memset(s->k, 0, cap * sizeof *s->k);
  s->mask = cap - 1;
  s->n = 0;
}

static void map_free(map_t *s) {
  xfree(s->k);
  xfree(s->v);
}

/* Adds key -> v unless the key is there; returns 1 if it was added. */
static int map_put(map_t *s, uint64_t key, uint32_t v) {
  if (2 * (s->n + 1) > s->mask + 1) {
    map_t t;
    map_init(&t, s->mask + 1);
    for (size_t i = 0; i <= s->mask; i++)
      if (s->k[i]) map_put(&t, s->k[i], s->v[i]);
    map_free(s);
    *s = t;
  }
  for (size_t i = bc_mix64(key) & s->mask;; i = (i + 1) & s->mask) {
    if (s->k[i] == key) return 0;
    if (s->k[i] == 0) {
      s->k[i] = key;
      s->v[i] = v;
      s->n++;
      return 1;
    }
  }
}

/* The value of key, or -1. */
static int64_t map_get(const map_t *s, uint64_t key) {
  for (size_t i = bc_mix64(key) & s->mask;; i = (i + 1) & s->mask) {
    if (s->k[i] == key) return s->v[i];
    if (s->k[i] == 0) return -1;
  }
}

/* Quine-McCluskey: the primes of the function whose on and dc minterms are given.
 * Each cube looks up its partner (one fixed 0 turned into a 1) in the level's map, so
 * a level costs cubes x variables probes rather than pairs of cubes. */
static void primes_of(const uint8_t *tt, unsigned nv, list_t *primes) {
  const uint32_t full = (1u << nv) - 1;
  list_t cur = {0};
  for (uint32_t m = 0; m <= full; m++)
    if (tt[m] != T_OFF) list_push(&cur, cube_new(full, m));
  while (cur.n) {
    list_t next = {0};
    map_t here, seen;
    map_init(&here, cur.n);
    map_init(&seen, cur.n);
    for (size_t i = 0; i < cur.n; i++) map_put(&here, map_key(cur.v[i]->care, cur.v[i]->val), (uint32_t)i);
    for (size_t i = 0; i < cur.n; i++) {
      cube_t *x = cur.v[i];
      for (uint32_t bits = x->care & ~x->val; bits; bits &= bits - 1) {
        uint32_t d = bits & -bits;
        int64_t j = map_get(&here, map_key(x->care, x->val | d));
        if (j < 0) continue;
        x->used = cur.v[j]->used = 1;
        /* built first, dropped if it is a duplicate (a cube with k free bits is found
         * k times), as a program that works on cube objects would */
        cube_t *z = cube_new(x->care & ~d, x->val);
        if (map_put(&seen, map_key(z->care, z->val), 0)) list_push(&next, z);
        else xfree(z);
      }
    }
    for (size_t i = 0; i < cur.n; i++) {
      if (cur.v[i]->used) xfree(cur.v[i]);
      else list_push(primes, cur.v[i]);
    }
    map_free(&here);
    map_free(&seen);
    xfree(cur.v);
    cur = next;
  }
  xfree(cur.v);
}

/* Calls f(m) for each minterm of cube c (nv variables). */
#define FOR_MINTERMS(c, full, m)                                                           \
  for (uint32_t free_ = (full) & ~(c)->care, sub_ = 0, done_ = 0; !done_;                  \
       done_ = (sub_ == free_), sub_ = (sub_ - free_) & free_)                             \
    for (uint32_t m = (c)->val | sub_, once_ = 1; once_; once_ = 0)

static void heap_push(uint64_t *h, size_t *n, uint64_t key) {
  size_t i = (*n)++;
  for (; i && h[(i - 1) / 2] < key; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = key;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
  uint64_t top = h[0], last = h[--*n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] > h[c]) c++;
    if (h[c] <= last) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = last;
  return top;
}

typedef struct {
  uint32_t *v; /* ids of the primes covering this minterm */
  uint32_t n, cap;
} ids_t;

/* The cover (essentials, then greedy). Returns the number of cubes in it; chosen[i] is
 * set for the primes it takes. */
static size_t cover_of(const uint8_t *tt, unsigned nv, list_t *primes, uint8_t *chosen) {
  const uint32_t full = (1u << nv) - 1;
  ids_t *by_m = xmalloc(((size_t)full + 1) * sizeof *by_m);
  memset(by_m, 0, ((size_t)full + 1) * sizeof *by_m);
  for (size_t i = 0; i < primes->n; i++) {
    cube_t *c = primes->v[i];
    c->id = (uint32_t)i;
    FOR_MINTERMS(c, full, m) {
      if (tt[m] != T_ON) continue;
      ids_t *l = &by_m[m];
      if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 2;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
      }
      l->v[l->n++] = (uint32_t)i;
    }
  }
  uint8_t *covered = xmalloc((size_t)full + 1);
  memset(covered, 0, (size_t)full + 1);
  size_t ncov = 0;
  /* essentials: the only prime of some on minterm */
  for (uint32_t m = 0; m <= full; m++) {
    if (tt[m] != T_ON) continue;
    if (by_m[m].n == 0) bc_fail("minimize: on minterm %u is in no prime", m);
    if (by_m[m].n == 1 && !chosen[by_m[m].v[0]]) {
      chosen[by_m[m].v[0]] = 1;
      ncov++;
    }
  }
  for (size_t i = 0; i < primes->n; i++)
    if (chosen[i]) FOR_MINTERMS(primes->v[i], full, m) covered[m] = 1;
  /* greedy: the prime covering most uncovered on minterms; fewest literals on a tie.
   * gain[i] = uncovered on minterms of prime i, kept up to date as minterms get covered. */
  uint32_t *gain = xmalloc(primes->n * sizeof *gain + 1);
  memset(gain, 0, primes->n * sizeof *gain);
  size_t left = 0;
  for (uint32_t m = 0; m <= full; m++)
    if (tt[m] == T_ON && !covered[m]) {
      left++;
      for (uint32_t k = 0; k < by_m[m].n; k++) gain[by_m[m].v[k]]++;
    }
  /* a max-heap of (gain, fewer literals, lower index) keys; gains only fall, so an
   * entry whose gain is stale goes back in with its current gain (lazy deletion) */
  uint64_t *heap = xmalloc((primes->n + 1) * sizeof *heap);
  size_t hn = 0;
#define HKEY(i) ((uint64_t)gain[i] << 40 | (uint64_t)(0xffff - primes->v[i]->lits) << 24 | (0xffffff - (uint64_t)(i)))
  for (size_t i = 0; i < primes->n; i++)
    if (gain[i]) heap_push(heap, &hn, HKEY(i));
  while (left) {
    if (hn == 0) bc_fail("minimize: no prime covers the remaining minterms");
    uint64_t top = heap_pop(heap, &hn);
    size_t best = 0xffffff - (size_t)(top & 0xffffff);
    if (top != HKEY(best)) {
      if (gain[best]) heap_push(heap, &hn, HKEY(best));
      continue;
    }
    chosen[best] = 1;
    ncov++;
    FOR_MINTERMS(primes->v[best], full, m) {
      if (tt[m] != T_ON || covered[m]) continue;
      covered[m] = 1;
      left--;
      for (uint32_t k = 0; k < by_m[m].n; k++) gain[by_m[m].v[k]]--;
    }
  }
#undef HKEY
  xfree(heap);
  xfree(gain);
  xfree(covered);
  for (uint32_t m = 0; m <= full; m++)
    if (by_m[m].v) xfree(by_m[m].v);
  xfree(by_m);
  return ncov;
}

/* The checks of the result (see the file comment). */
static void verify(const uint8_t *tt, unsigned nv, const list_t *primes, const uint8_t *chosen) {
  const uint32_t full = (1u << nv) - 1;
  uint8_t *hit = xmalloc((size_t)full + 1);
  memset(hit, 0, (size_t)full + 1);
  for (size_t i = 0; i < primes->n; i++) {
    if (!chosen[i]) continue;
    const cube_t *c = primes->v[i];
    if (c->val & ~c->care) bc_fail("minimize: cube %zu has values outside its care mask", i);
    FOR_MINTERMS(c, full, m) {
      if (tt[m] == T_OFF) bc_fail("minimize: cube %zu covers off minterm %u", i, m);
      hit[m] = 1;
    }
    for (uint32_t bits = c->care; bits; bits &= bits - 1) { /* prime: no literal can go */
      uint32_t b = bits & -bits;
      cube_t bigger = {c->care & ~b, c->val & ~b, 0, 0, 0};
      int off = 0;
      FOR_MINTERMS(&bigger, full, m) if (tt[m] == T_OFF) off = 1;
      if (!off) bc_fail("minimize: cube %zu is not prime", i);
    }
  }
  for (uint32_t m = 0; m <= full; m++)
    if (tt[m] == T_ON && !hit[m]) bc_fail("minimize: on minterm %u is not covered", m);
  xfree(hit);
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"functions", BC_OPT_U64, &opt_functions, 1, 1e9, "functions to minimise (the fixed work)"},
      {"min-vars", BC_OPT_U64, &opt_min_vars, 2, 20, "fewest inputs"},
      {"max-vars", BC_OPT_U64, &opt_max_vars, 2, 20, "most inputs"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
  };
  bc_parse_args(argc, argv, "minimize",
                "Quine-McCluskey primes and a greedy cover of random Boolean functions, "
                "every cube a small malloc'd object (espresso-like allocation pattern).",
                opts, (int)(sizeof opts / sizeof opts[0]));
  if (opt_min_vars > opt_max_vars)
    bc_usage_error("--min-vars (%llu) is larger than --max-vars (%llu)", (unsigned long long)opt_min_vars,
                   (unsigned long long)opt_max_vars);
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, 0);
  uint64_t total_primes = 0, total_cover = 0, sum = 0;
  double t0 = bc_now();
  for (uint64_t f = 0; f < opt_functions; f++) {
    unsigned nv = (unsigned)bc_rng_range(&rng, opt_min_vars, opt_max_vars);
    size_t nm = (size_t)1 << nv;
    uint8_t *tt = xmalloc(nm);
    for (size_t m = 0; m < nm; m++) {
      uint64_t u = bc_rng_below(&rng, 100);
      tt[m] = u < 35 ? T_ON : u < 45 ? T_DC : T_OFF;
    }
    list_t primes = {0};
    primes_of(tt, nv, &primes);
    uint8_t *chosen = xmalloc(primes.n + 1);
    memset(chosen, 0, primes.n + 1);
    size_t nc = cover_of(tt, nv, &primes, chosen);
    verify(tt, nv, &primes, chosen);
    for (size_t i = 0; i < primes.n; i++) {
      if (chosen[i]) sum = bc_mix64(sum ^ ((uint64_t)primes.v[i]->care << 32 | primes.v[i]->val));
      xfree(primes.v[i]);
    }
    total_primes += primes.n;
    total_cover += nc;
    xfree(primes.v);
    xfree(chosen);
    xfree(tt);
  }
  double secs = bc_now() - t0;
  printf("RESULT bench=minimize ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%llu functions=%llu "
         "vars=%llu-%llu primes=%llu cover_cubes=%llu checksum=%016llx\n",
         (double)g_ops / secs, bc_status_kb("VmHWM"), secs, (unsigned long long)g_ops,
         (unsigned long long)opt_functions, (unsigned long long)opt_min_vars, (unsigned long long)opt_max_vars,
         (unsigned long long)total_primes, (unsigned long long)total_cover, (unsigned long long)sum);
  return 0;
}
