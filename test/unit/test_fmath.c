/* test_fmath.c — hakmem's own ln, log2, exp and sqrt (base/fmath.h), which replace libm
 * so that the preloaded library does not map it: each is compared with glibc's libm
 * (linked into this test only) over the ranges ACE uses and well beyond, and at the
 * edges (0, subnormals, powers of two, infinities, NaN, overflow and underflow).
 *
 *   unit_fmath [test names] */
#include "hak_test.h"
#include "base/fmath.h"

#include <math.h>

static uint64_t rng_state = 0x243f6a8885a308d3u;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
/* A double spread evenly in log scale over [2^lo, 2^hi). */
static double log_uniform(int lo, int hi) {
  double u = (double)(rng() >> 11) * 0x1p-53;
  return ldexp(1.0 + u, lo + (int)(rng() % (uint64_t)(hi - lo)));
}

static double rel_err(double got, double want) {
  if (got == want) return 0;
  return fabs(got - want) / (fabs(want) > 0x1p-1022 ? fabs(want) : 0x1p-1022);
}

static long worse;   /* how many results were off by more than the bound */
static double worst;
static void expect_close(double got, double want, double bound, const char* fn, double x) {
  double e = rel_err(got, want);
  if (e > worst) worst = e;
  if (!(e <= bound)) {
    if (worse++ < 5) fprintf(stderr, "    %s(%.17g) = %.17g, libm %.17g (rel. error %.3g)\n", fn, x, got, want, e);
  }
}

static void test_ln_and_log2_match_libm(void) {
  worse = 0; worst = 0;
  for (int i = 0; i < 200000; i++) {
    double x = log_uniform(-1060, 1020);
    expect_close(hak_ln(x), log(x), 4e-16, "ln", x);
    expect_close(hak_log2(x), log2(x), 6e-16, "log2", x);
  }
  /* near 1, where ln is close to 0 and relative error is hardest */
  for (int i = 0; i < 100000; i++) {
    double x = 1.0 + ((double)(rng() >> 11) * 0x1p-53 - 0.5) * 0.6;
    expect_close(hak_ln(x), log(x), 2e-15, "ln", x);
  }
  for (int e = -1074; e <= 1023; e++) {
    CHECK_MSG(hak_log2(ldexp(1.0, e)) == (double)e, "log2(2^%d) = %.17g", e, hak_log2(ldexp(1.0, e)));
  }
  CHECK_MSG(worse == 0, "%ld results off (worst relative error %.3g)", worse, worst);
  CHECK(hak_ln(1.0) == 0.0);
  CHECK(isinf(hak_ln(0.0)) && hak_ln(0.0) < 0);
  CHECK(isnan(hak_ln(-1.0)));
  CHECK(isnan(hak_ln(NAN)));
  CHECK(isinf(hak_ln(INFINITY)) && hak_ln(INFINITY) > 0);
}

static void test_exp_matches_libm(void) {
  worse = 0; worst = 0;
  for (int i = 0; i < 200000; i++) {
    double x = ((double)(rng() >> 11) * 0x1p-53 - 0.5) * 1400;   /* [-700, 700) */
    expect_close(hak_exp(x), exp(x), 8e-16, "exp", x);
  }
  for (int i = 0; i < 100000; i++) {
    double x = ((double)(rng() >> 11) * 0x1p-53 - 0.5) * 4;      /* the decay policy's -dt/T */
    expect_close(hak_exp(x), exp(x), 4e-16, "exp", x);
  }
  /* results below 2^-1022 (subnormal): absolute error of a few subnormal steps */
  for (double x = -745.0; x < -708.0; x += 0.37) {
    CHECK_MSG(fabs(hak_exp(x) - exp(x)) <= 4 * 0x1p-1074 + 1e-15 * exp(x), "exp(%g) = %.17g, libm %.17g", x,
              hak_exp(x), exp(x));
  }
  CHECK_MSG(worse == 0, "%ld results off (worst relative error %.3g)", worse, worst);
  CHECK(hak_exp(0.0) == 1.0);
  CHECK(hak_exp(-800.0) == 0.0);
  CHECK(isinf(hak_exp(710.0)));
  CHECK(isnan(hak_exp(NAN)));
  CHECK(hak_exp(709.7) > 1e308);
}

static void test_sqrt_is_exact(void) {
  long wrong = 0;
  for (int i = 0; i < 200000; i++) {
    double x = log_uniform(-1070, 1020);
    if (hak_sqrt(x) != sqrt(x)) wrong++;
  }
  CHECK_MSG(wrong == 0, "%ld square roots differ from libm's", wrong);
  CHECK(hak_sqrt(0.0) == 0.0);
  CHECK(hak_sqrt(4.0) == 2.0);
  CHECK(isnan(hak_sqrt(-1.0)));
  CHECK(isinf(hak_sqrt(INFINITY)));
  CHECK(hak_fabs(-2.5) == 2.5 && hak_fabs(2.5) == 2.5);
}

static void test_floor_matches_libm(void) {
  static const double edge[] = {0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.5, -2.5, 0x1p52, -0x1p52, 0x1p52 + 1,
                                0x1p53 + 2, 1e300, -1e300, 0x1p52 - 0.5, -(0x1p52 - 0.5), 4503599627370495.5};
  for (unsigned i = 0; i < sizeof edge / sizeof edge[0]; i++)
    CHECK_MSG(hak_floor(edge[i]) == floor(edge[i]), "floor(%.17g) = %.17g", edge[i], hak_floor(edge[i]));
  long wrong = 0;
  for (int i = 0; i < 200000; i++) {
    double x = log_uniform(-20, 60) * ((rng() & 1) ? 1 : -1);
    if (hak_floor(x) != floor(x)) wrong++;
  }
  CHECK_MSG(wrong == 0, "%ld floors differ from libm's", wrong);
  CHECK(isinf(hak_floor(INFINITY)) && isnan(hak_floor(NAN)));
}

int main(int argc, char** argv) {
  ht_init(argc, argv);
  HT_RUN(test_ln_and_log2_match_libm);
  HT_RUN(test_exp_matches_libm);
  HT_RUN(test_sqrt_is_exact);
  HT_RUN(test_floor_matches_libm);
  return ht_report();
}
