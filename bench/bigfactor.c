/* bigfactor.c — factoring composite numbers with a small bignum library whose every
 * value is a malloc'd digit array (the allocation pattern of cfrac-style programs).
 *
 * The numbers: --numbers composites, each the product of 2-4 random primes of 10 to
 * --bits bits (at most 120 bits in all), from a fixed seed. Each is factored
 * completely: trial division by the primes below 1000, then Pollard's rho with Brent's
 * cycle finding and batched gcds, recursively on what is left, with a Miller-Rabin test
 * (in bignum arithmetic) to tell primes from composites.
 *
 * The bignum layer is deliberately allocation-heavy, as such libraries are: values are
 * immutable; add, sub, mul, divmod and friends return a freshly malloc'd result (16-bit
 * digits, so 2-10 digits: blocks of 8-40 bytes), and every temporary, including the
 * normalised copies inside long division, is malloc'd and freed. A rho step costs about
 * a dozen such allocations, almost all freed within microseconds.
 *
 * Checks: the factors found must multiply back to the number and match, as a multiset,
 * the primes it was built from (a bignum library on a broken allocator gets wrong
 * digits, not a crash); with --verify every mulmod is also compared with 128-bit
 * integer arithmetic.
 *
 * Whole-process benchmark: the work is fixed (--numbers); compare.sh reports
 * ops / the process's wall time. ops = malloc calls + free calls.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>

typedef unsigned __int128 u128;

static uint64_t opt_numbers = 60;
static uint64_t opt_bits = 30;
static uint64_t opt_seed = 1729;
static int opt_verify = 0;

static uint64_t g_allocs, g_frees;

/* ---- the bignum layer: immutable values, little-endian 16-bit digits --------------- */

typedef struct {
  uint32_t n;     /* digits in use; 0 for zero; d[n-1] != 0 */
  uint16_t d[];   /* the digits, least significant first */
} bn;

static bn *bn_alloc(uint32_t n) {
  size_t sz = sizeof(bn) + (n ? n : 1) * sizeof(uint16_t);
  bn *r = bc_got(malloc(sz), sz, "bigfactor bn");
  r->n = n;
  g_allocs++;
  return r;
}

static void bn_free(bn *a) {
  if (!a) return;
  g_frees++;
  free(a);
}

static bn *bn_trim(bn *a) {
  while (a->n && a->d[a->n - 1] == 0) a->n--;
  return a;
}

static bn *bn_from_u128(u128 v) {
  uint32_t n = 0;
  for (u128 t = v; t; t >>= 16) n++;
  bn *r = bn_alloc(n);
  for (uint32_t i = 0; i < n; i++, v >>= 16) r->d[i] = (uint16_t)v;
  return r;
}

static u128 bn_to_u128(const bn *a) {
  if (a->n > 8) bc_fail("bigfactor: %u digits do not fit 128 bits", a->n);
  u128 v = 0;
  for (uint32_t i = a->n; i-- > 0;) v = v << 16 | a->d[i];
  return v;
}

static bn *bn_copy(const bn *a) {
  bn *r = bn_alloc(a->n);
  memcpy(r->d, a->d, a->n * sizeof(uint16_t));
  return r;
}

static int bn_cmp(const bn *a, const bn *b) {
  if (a->n != b->n) return a->n < b->n ? -1 : 1;
  for (uint32_t i = a->n; i-- > 0;)
    if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
  return 0;
}

static int bn_is_zero(const bn *a) { return a->n == 0; }
static int bn_is_one(const bn *a) { return a->n == 1 && a->d[0] == 1; }

static bn *bn_add(const bn *a, const bn *b) {
  if (a->n < b->n) { const bn *t = a; a = b; b = t; }
  bn *r = bn_alloc(a->n + 1);
  uint32_t c = 0;
  for (uint32_t i = 0; i < a->n; i++) {
    c += a->d[i] + (i < b->n ? b->d[i] : 0);
    r->d[i] = (uint16_t)c;
    c >>= 16;
  }
  r->d[a->n] = (uint16_t)c;
  return bn_trim(r);
}

/* a - b for a >= b */
static bn *bn_sub(const bn *a, const bn *b) {
  bn *r = bn_alloc(a->n);
  int32_t br = 0;
  for (uint32_t i = 0; i < a->n; i++) {
    int32_t v = (int32_t)a->d[i] - (i < b->n ? b->d[i] : 0) - br;
    br = v < 0;
    r->d[i] = (uint16_t)(v + (br << 16));
  }
  if (br) bc_fail("bigfactor: bn_sub underflow");
  return bn_trim(r);
}

static bn *bn_absdiff(const bn *a, const bn *b) { return bn_cmp(a, b) >= 0 ? bn_sub(a, b) : bn_sub(b, a); }

static bn *bn_mul(const bn *a, const bn *b) {
  if (!a->n || !b->n) return bn_alloc(0);
  bn *r = bn_alloc(a->n + b->n);
  memset(r->d, 0, r->n * sizeof(uint16_t));
  for (uint32_t i = 0; i < a->n; i++) {
    uint32_t c = 0;
    for (uint32_t j = 0; j < b->n; j++) {
      c += (uint32_t)a->d[i] * b->d[j] + r->d[i + j];
      r->d[i + j] = (uint16_t)c;
      c >>= 16;
    }
    r->d[i + b->n] = (uint16_t)c;
  }
  return bn_trim(r);
}

static bn *bn_shl(const bn *a, unsigned s, uint32_t extra) { /* s < 16; extra digits on top */
  bn *r = bn_alloc(a->n + extra);
  uint32_t c = 0;
  for (uint32_t i = 0; i < a->n; i++) {
    uint32_t v = (uint32_t)a->d[i] << s | c;
    r->d[i] = (uint16_t)v;
    c = v >> 16;
  }
  for (uint32_t i = a->n; i < a->n + extra; i++, c = 0) r->d[i] = (uint16_t)c;
  return r; /* not trimmed: the division below wants the fixed length */
}

/* Long division (Knuth, TAOCP 4.3.1, algorithm D): *q = a / b, *r = a % b; either may
 * be NULL. b != 0. */
static void bn_divmod(const bn *a, const bn *b, bn **q, bn **r) {
  if (!b->n) bc_fail("bigfactor: division by zero");
  if (bn_cmp(a, b) < 0) {
    if (q) *q = bn_alloc(0);
    if (r) *r = bn_copy(a);
    return;
  }
  if (b->n == 1) { /* short division */
    bn *qq = bn_alloc(a->n);
    uint32_t rem = 0, v = b->d[0];
    for (uint32_t i = a->n; i-- > 0;) {
      uint32_t cur = rem << 16 | a->d[i];
      qq->d[i] = (uint16_t)(cur / v);
      rem = cur % v;
    }
    if (q) *q = bn_trim(qq);
    else bn_free(qq);
    if (r) *r = bn_from_u128(rem);
    return;
  }
  const uint32_t n = b->n, m = a->n - b->n;
  unsigned s = (unsigned)__builtin_clz((unsigned)b->d[n - 1]) - 16;
  bn *vn = bn_shl(b, s, 0);
  bn *un = bn_shl(a, s, 1);
  bn *qq = bn_alloc(m + 1);
  const uint32_t B = 1u << 16;
  for (uint32_t j = m + 1; j-- > 0;) {
    uint64_t num = (uint64_t)un->d[j + n] << 16 | un->d[j + n - 1];
    uint64_t qhat = num / vn->d[n - 1], rhat = num % vn->d[n - 1];
    while (qhat >= B || qhat * vn->d[n - 2] > (rhat << 16 | un->d[j + n - 2])) {
      qhat--;
      rhat += vn->d[n - 1];
      if (rhat >= B) break;
    }
    int64_t borrow = 0, t;
    for (uint32_t i = 0; i < n; i++) {
      uint64_t p = qhat * vn->d[i];
      t = (int64_t)un->d[i + j] - borrow - (int64_t)(p & 0xffff);
      un->d[i + j] = (uint16_t)t;
      borrow = (int64_t)(p >> 16) - (t >> 16);
    }
    t = (int64_t)un->d[j + n] - borrow;
    un->d[j + n] = (uint16_t)t;
    if (t < 0) { /* qhat was one too large: add back */
      qhat--;
      uint32_t c = 0;
      for (uint32_t i = 0; i < n; i++) {
        c += (uint32_t)un->d[i + j] + vn->d[i];
        un->d[i + j] = (uint16_t)c;
        c >>= 16;
      }
      un->d[j + n] = (uint16_t)(un->d[j + n] + c);
    }
    qq->d[j] = (uint16_t)qhat;
  }
  if (q) *q = bn_trim(qq);
  else bn_free(qq);
  if (r) {
    bn *rr = bn_alloc(n);
    for (uint32_t i = 0; i < n; i++)
      rr->d[i] = (uint16_t)((un->d[i] >> s) | (s ? (uint32_t)un->d[i + 1] << (16 - s) : 0));
    *r = bn_trim(rr);
  }
  bn_free(un);
  bn_free(vn);
}

static bn *bn_mod(const bn *a, const bn *m) {
  bn *r;
  bn_divmod(a, m, NULL, &r);
  return r;
}

static bn *bn_mulmod(const bn *a, const bn *b, const bn *m) {
  bn *p = bn_mul(a, b);
  bn *r = bn_mod(p, m);
  bn_free(p);
  if (opt_verify) {
    u128 x = bn_to_u128(a), y = bn_to_u128(b), mm = bn_to_u128(m), want;
    /* (x * y) mod mm without overflow: x, y < mm < 2^120, so do it by doubling */
    want = 0;
    for (int i = 127; i >= 0; i--) {
      want = (want << 1) % mm;
      if ((y >> i) & 1) want = (want + x) % mm;
    }
    if (bn_to_u128(r) != want) bc_fail("bigfactor: mulmod disagrees with 128-bit arithmetic");
  }
  return r;
}

static bn *bn_gcd(const bn *a, const bn *b) {
  bn *x = bn_copy(a), *y = bn_copy(b);
  while (!bn_is_zero(y)) {
    bn *t = bn_mod(x, y);
    bn_free(x);
    x = y;
    y = t;
  }
  bn_free(y);
  return x;
}

static bn *bn_powmod(const bn *base, const bn *e, const bn *m) {
  bn *r = bn_from_u128(1), *b = bn_mod(base, m);
  for (uint32_t i = 0; i < e->n * 16; i++) {
    if ((e->d[i / 16] >> (i % 16)) & 1) {
      bn *t = bn_mulmod(r, b, m);
      bn_free(r);
      r = t;
    }
    if (i + 1 < e->n * 16) {
      bn *t = bn_mulmod(b, b, m);
      bn_free(b);
      b = t;
    }
  }
  bn_free(b);
  return r;
}

/* ---- number theory ------------------------------------------------------------------ */

/* Miller-Rabin with the first 12 prime bases (deterministic below 3.3e24; a good test
 * above). */
static int bn_is_prime(const bn *n) {
  static const unsigned bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  if (n->n <= 1 && (n->n == 0 || n->d[0] < 2)) return 0;
  bn *one = bn_from_u128(1), *nm1 = bn_sub(n, one), *d = bn_copy(nm1), *two = bn_from_u128(2);
  unsigned s = 0;
  while (!bn_is_zero(d) && (d->d[0] & 1) == 0) {
    bn *t;
    bn_divmod(d, two, &t, NULL);
    bn_free(d);
    d = t;
    s++;
  }
  int prime = 1;
  for (size_t k = 0; k < sizeof bases / sizeof bases[0] && prime; k++) {
    bn *a = bn_from_u128(bases[k]);
    if (bn_cmp(a, n) >= 0) { bn_free(a); break; }
    bn *x = bn_powmod(a, d, n);
    bn_free(a);
    if (!bn_is_one(x) && bn_cmp(x, nm1) != 0) {
      unsigned i;
      for (i = 1; i < s; i++) {
        bn *t = bn_mulmod(x, x, n);
        bn_free(x);
        x = t;
        if (bn_cmp(x, nm1) == 0) break;
      }
      if (i == s) prime = 0;
    }
    bn_free(x);
  }
  bn_free(one);
  bn_free(nm1);
  bn_free(d);
  bn_free(two);
  return prime;
}

/* Pollard's rho with Brent's cycle finding, x -> x^2 + c, gcds batched over 64 steps.
 * Returns a nontrivial factor of the odd composite n. */
static bn *bn_rho(const bn *n, uint64_t c0) {
  for (uint64_t c = c0;; c++) {
    bn *cc = bn_from_u128(c), *y = bn_from_u128(2), *q = bn_from_u128(1), *x = NULL, *ys = NULL, *g = NULL;
    for (uint64_t r = 1;; r *= 2) {
      bn_free(x);
      x = bn_copy(y);
      for (uint64_t i = 0; i < r; i++) {
        bn *t = bn_mulmod(y, y, n), *u = bn_add(t, cc);
        bn_free(t);
        bn_free(y);
        y = bn_mod(u, n);
        bn_free(u);
      }
      for (uint64_t k = 0; k < r; k += 64) {
        bn_free(ys);
        ys = bn_copy(y);
        uint64_t lim = r - k < 64 ? r - k : 64;
        for (uint64_t i = 0; i < lim; i++) {
          bn *t = bn_mulmod(y, y, n), *u = bn_add(t, cc);
          bn_free(t);
          bn_free(y);
          y = bn_mod(u, n);
          bn_free(u);
          bn *dxy = bn_absdiff(x, y);
          t = bn_mulmod(q, dxy, n);
          bn_free(dxy);
          bn_free(q);
          q = t;
        }
        g = bn_gcd(q, n);
        if (!bn_is_one(g)) break;
        bn_free(g);
        g = NULL;
      }
      if (g) break;
    }
    if (bn_cmp(g, n) == 0) { /* the batch overshot: redo it one step at a time */
      bn_free(g);
      g = NULL;
      for (;;) {
        bn *t = bn_mulmod(ys, ys, n), *u = bn_add(t, cc);
        bn_free(t);
        bn_free(ys);
        ys = bn_mod(u, n);
        bn_free(u);
        bn *dxy = bn_absdiff(x, ys);
        g = bn_gcd(dxy, n);
        bn_free(dxy);
        if (!bn_is_one(g)) break;
        bn_free(g);
      }
    }
    bn_free(cc);
    bn_free(y);
    bn_free(q);
    bn_free(x);
    bn_free(ys);
    if (bn_cmp(g, n) != 0) return g;
    bn_free(g); /* the cycle closed without splitting n: another c */
  }
}

/* Appends the prime factors of n (> 1) to out[*k] as 128-bit integers. */
static void factor(const bn *n, u128 *out, size_t *k, size_t cap, uint64_t c) {
  if (bn_is_one(n)) return;
  if (*k >= cap) bc_fail("bigfactor: too many factors");
  if (bn_is_prime(n)) {
    out[(*k)++] = bn_to_u128(n);
    return;
  }
  bn *d = bn_rho(n, c), *rest, *rem;
  bn_divmod(n, d, &rest, &rem);
  if (!bn_is_zero(rem) || bn_is_one(d) || bn_cmp(d, n) >= 0)
    bc_fail("bigfactor: rho returned a wrong factor");
  factor(d, out, k, cap, c + 1);
  factor(rest, out, k, cap, c + 1);
  bn_free(d);
  bn_free(rest);
  bn_free(rem);
}

/* ---- the numbers ---------------------------------------------------------------------- */

static uint64_t mulmod64(uint64_t a, uint64_t b, uint64_t m) { return (uint64_t)((u128)a * b % m); }

static int is_prime64(uint64_t n) {
  static const uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  if (n < 2) return 0;
  for (size_t i = 0; i < 12; i++)
    if (n % bases[i] == 0) return n == bases[i];
  uint64_t d = n - 1;
  unsigned s = 0;
  while ((d & 1) == 0) d >>= 1, s++;
  for (size_t i = 0; i < 12; i++) {
    uint64_t x = 1, b = bases[i], e = d;
    for (; e; e >>= 1, b = mulmod64(b, b, n))
      if (e & 1) x = mulmod64(x, b, n);
    if (x == 1 || x == n - 1) continue;
    unsigned j;
    for (j = 1; j < s; j++) {
      x = mulmod64(x, x, n);
      if (x == n - 1) break;
    }
    if (j == s) return 0;
  }
  return 1;
}

static uint64_t random_prime(bc_rng *r, unsigned bits) {
  for (;;) {
    uint64_t p = bc_rng_next(r) >> (64 - bits) | (uint64_t)1 << (bits - 1) | 1;
    if (is_prime64(p)) return p;
  }
}

static int cmp_u128(const void *a, const void *b) {
  u128 x = *(const u128 *)a, y = *(const u128 *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const bc_opt opts[] = {
      {"numbers", BC_OPT_U64, &opt_numbers, 1, 1e9, "composites to factor (the fixed work)"},
      {"bits", BC_OPT_U64, &opt_bits, 10, 40, "largest prime factor in bits (rho takes about 2^(bits/2) steps)"},
      {"seed", BC_OPT_U64, &opt_seed, 0, 1.8e19, "random seed"},
      {"verify", BC_OPT_FLAG, &opt_verify, 0, 0, "also check every mulmod against 128-bit arithmetic (slow)"},
  };
  bc_parse_args(argc, argv, "bigfactor",
                "Factors random composites with trial division and Pollard rho on a bignum "
                "library that mallocs every value (cfrac-like allocation pattern).",
                opts, (int)(sizeof opts / sizeof opts[0]));
  static unsigned small_primes[200];
  size_t nsp = 0;
  for (unsigned p = 3; p < 1000 && nsp < 200; p += 2)
    if (is_prime64(p)) small_primes[nsp++] = p;
  bc_rng rng;
  bc_rng_seed(&rng, opt_seed, 0);
  uint64_t factors_found = 0, rho_numbers = 0;
  double t0 = bc_now();
  for (uint64_t k = 0; k < opt_numbers; k++) {
    u128 primes[8], n = 1;
    size_t np = 0;
    unsigned total = 0, want = 2 + (unsigned)bc_rng_below(&rng, 3);
    while (np < want) {
      unsigned b = 10 + (unsigned)bc_rng_below(&rng, opt_bits - 9);
      if (total + b > 120) break;
      primes[np] = random_prime(&rng, b);
      n *= primes[np++];
      total += b;
    }
    /* trial division, then rho on what is left */
    u128 found[64];
    size_t nf = 0;
    bn *m = bn_from_u128(n);
    for (size_t i = 0; i < nsp; i++) {
      bn *p = bn_from_u128(small_primes[i]);
      for (;;) {
        bn *q, *r;
        bn_divmod(m, p, &q, &r);
        int divides = bn_is_zero(r);
        bn_free(r);
        if (!divides) { bn_free(q); break; }
        found[nf++] = small_primes[i];
        bn_free(m);
        m = q;
      }
      bn_free(p);
    }
    if (!bn_is_one(m)) rho_numbers++;
    factor(m, found, &nf, 64, 1);
    bn_free(m);
    /* the check: the factors found are the primes the number was made of */
    qsort(primes, np, sizeof primes[0], cmp_u128);
    qsort(found, nf, sizeof found[0], cmp_u128);
    u128 prod = 1;
    for (size_t i = 0; i < nf; i++) prod *= found[i];
    if (nf != np || prod != n || memcmp(primes, found, np * sizeof primes[0]) != 0)
      bc_fail("bigfactor: number %llu: found %zu factors, expected %zu (or they differ)",
              (unsigned long long)k, nf, np);
    factors_found += nf;
  }
  double secs = bc_now() - t0;
  if (g_allocs != g_frees)
    bc_fail("bigfactor: %llu values allocated but %llu freed", (unsigned long long)g_allocs, (unsigned long long)g_frees);
  uint64_t ops = g_allocs + g_frees;
  printf("RESULT bench=bigfactor ops_per_sec=%.0f peak_rss_kb=%ld seconds=%.3f ops=%llu numbers=%llu "
         "bits=%llu factors=%llu rho_numbers=%llu verify=%d\n",
         (double)ops / secs, bc_status_kb("VmHWM"), secs, (unsigned long long)ops,
         (unsigned long long)opt_numbers, (unsigned long long)opt_bits, (unsigned long long)factors_found,
         (unsigned long long)rho_numbers, opt_verify);
  return 0;
}
