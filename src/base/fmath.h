/* fmath.h — the few double functions the controller needs (ln, log2, exp, sqrt, floor),
 * written here so that libhakmem does not load libm: a preloaded libm maps about 280 KiB
 * of resident pages into every process, more than the rest of hakmem's fixed cost.
 * Accurate to a few units in the last place over the ranges ACE uses; not meant as a
 * general libm (no errno, no rounding modes). */
#ifndef HAK_FMATH_H
#define HAK_FMATH_H

#include <stdint.h>
#include <string.h>

static inline uint64_t hak_f64_bits(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
static inline double hak_f64_from(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

/* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); returns ln m by 2 atanh(s),
 * s = (m - 1) / (m + 1), |s| < 0.1716, whose odd series is summed to s^21 (the next term
 * is below 2^-60 of the sum). For finite x > 0 only. */
static inline double hak_ln_split(double x, int* exp2) {
  uint64_t u = hak_f64_bits(x);
  int e = (int)((u >> 52) & 0x7ff);
  if (e == 0) { u = hak_f64_bits(x * 0x1p54); e = (int)((u >> 52) & 0x7ff) - 54; }   /* subnormal */
  e -= 1023;
  double m = hak_f64_from((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  if (m > 1.4142135623730951) { m *= 0.5; e++; }
  double s = (m - 1.0) / (m + 1.0), s2 = s * s, p = 1.0 / 21;
  for (int k = 19; k >= 1; k -= 2) p = p * s2 + 1.0 / k;
  *exp2 = e;
  return 2.0 * s * p;
}

/* Natural logarithm; ln(0) = -inf, ln(x < 0) = NaN. */
static inline double hak_ln(double x) {
  if (!(x > 0)) return x == 0 ? -__builtin_inf() : __builtin_nan("");
  if (x == __builtin_inf()) return x;
  int e;
  double lm = hak_ln_split(x, &e);
  /* e * ln 2 in two parts so that the sum keeps the series' precision */
  return (double)e * 6.93147180369123816490e-01 + (lm + (double)e * 1.90821492927058770002e-10);
}

/* Base-2 logarithm, exact at powers of two. */
static inline double hak_log2(double x) {
  if (!(x > 0)) return x == 0 ? -__builtin_inf() : __builtin_nan("");
  if (x == __builtin_inf()) return x;
  int e;
  double lm = hak_ln_split(x, &e);
  return (double)e + lm * 1.4426950408889634074;
}

static inline double hak_fabs(double x) { return __builtin_fabs(x); }   /* andpd, no call */

/* Largest integer not above x (values of 2^52 and more are integers already). */
static inline double hak_floor(double x) {
  if (!(hak_fabs(x) < 0x1p52)) return x;
  double t = (double)(int64_t)x;
  return t > x ? t - 1.0 : t;
}

/* e^x: x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor series to r^14, times 2^k
 * built from the exponent bits (in two steps where 2^k alone is not a normal double). */
static inline double hak_exp(double x) {
  if (x != x) return x;
  if (x > 709.782712893384) return __builtin_inf();
  if (x < -745.1332191019412) return 0.0;
  int k = (int)(x * 1.4426950408889634074 + (x < 0 ? -0.5 : 0.5));   /* nearest */
  double kd = (double)k;
  double r = (x - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
  double p = 1.0;
  for (int n = 14; n >= 1; n--) p = 1.0 + p * r / n;
  if (k > 1023) { p *= 2.0; k--; }                      /* only at the top of the range */
  if (k < -1022) { p *= 0x1p-600; k += 600; }           /* results below 2^-1022 */
  return p * hak_f64_from((uint64_t)(k + 1023) << 52);
}

/* Square root (x >= 0; NaN below). */
static inline double hak_sqrt(double x) {
  if (!(x >= 0)) return __builtin_nan("");
#if defined(__x86_64__)
  double r;
  __asm__("sqrtsd %1, %0" : "=x"(r) : "x"(x));
  return r;
#elif defined(__aarch64__)
  double r;
  __asm__("fsqrt %d0, %d1" : "=w"(r) : "w"(x));
  return r;
#else
  if (x == 0 || x == __builtin_inf()) return x;
  double r = hak_exp(0.5 * hak_ln(x));                  /* then two Newton steps */
  r = 0.5 * (r + x / r);
  return 0.5 * (r + x / r);
#endif
}

#endif
