/* copy.c — ACE's choice of realloc_nt_threshold from timed realloc copies (pure).
 *
 * The allocator times every realloc copy of 1 MiB or more and does one in
 * HAK_COPY_EXPLORE with the method the threshold did not pick (alloc/free.c), so each
 * size bucket (a power of two) collects ns per byte for memcpy and for non-temporal
 * stores. The threshold moves only where both methods have samples: a bucket without
 * them says nothing, and the threshold in force stands there. Streaming wins big
 * copies or none (it skips the cache, which pays only once the data would not fit), so
 * the answer is the start of the top run of buckets that streaming wins. */
#include "ace/ace.h"

static bool evidence(const hak_copy_samples* s, unsigned b) {
  return s->n[0][b] >= ACE_COPY_MIN_SAMPLES && s->n[1][b] >= ACE_COPY_MIN_SAMPLES && s->bytes[0][b] &&
         s->bytes[1][b];
}

static bool streaming_wins(const hak_copy_samples* s, unsigned b) {
  double mem = (double)s->ns[0][b] / (double)s->bytes[0][b];
  double nt = (double)s->ns[1][b] / (double)s->bytes[1][b];
  return nt <= mem * (1.0 - ACE_COPY_MARGIN);
}

static uint64_t bucket_start(unsigned b) { return (uint64_t)1 << (HAK_COPY_SAMPLE_MIN_SHIFT + b); }

uint64_t ace_copy_threshold(const hak_copy_samples* s, uint64_t current) {
  int top = -1;                         /* the highest evidence bucket */
  for (unsigned b = 0; b < HAK_COPY_BUCKETS; b++) if (evidence(s, b)) top = (int)b;
  if (top < 0) return current;
  uint64_t lo, hi;
  if (!streaming_wins(s, (unsigned)top)) {            /* memcpy won the biggest copies seen */
    lo = bucket_start((unsigned)top + 1);
    hi = UINT64_MAX;
  } else {
    int start = top, below = -1;        /* lowest bucket of the top run streaming wins */
    for (int b = top - 1; b >= 0; b--) {
      if (!evidence(s, (unsigned)b)) continue;
      if (!streaming_wins(s, (unsigned)b)) { below = b; break; }
      start = b;
    }
    lo = below >= 0 ? bucket_start((unsigned)below + 1) : 0;
    hi = bucket_start((unsigned)start);
  }
  uint64_t t = current < lo ? lo : current > hi ? hi : current;
  return t > (1ull << 40) ? 1ull << 40 : t;           /* the knob's range */
}

void ace_copy_accumulate(hak_copy_samples* acc, const hak_copy_samples* prev, const hak_copy_samples* cur) {
  for (unsigned m = 0; m < 2; m++) {
    for (unsigned b = 0; b < HAK_COPY_BUCKETS; b++) {
      acc->n[m][b] += cur->n[m][b] - prev->n[m][b];
      acc->bytes[m][b] += cur->bytes[m][b] - prev->bytes[m][b];
      acc->ns[m][b] += cur->ns[m][b] - prev->ns[m][b];
    }
  }
}

void ace_copy_decay(hak_copy_samples* acc) {
  for (unsigned m = 0; m < 2; m++) {
    for (unsigned b = 0; b < HAK_COPY_BUCKETS; b++) {
      acc->n[m][b] /= 2;
      acc->bytes[m][b] /= 2;
      acc->ns[m][b] /= 2;
    }
  }
}
