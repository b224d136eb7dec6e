/* copy.c — the copy of a block that realloc must move: non-temporal stores for big ones.
 *
 * memcpy writes through the cache: each destination line is read for ownership first
 * and the copy evicts the program's working set, both of which cost more the larger
 * the copy is. Non-temporal (streaming) stores write whole lines around the cache, so
 * above a size (the knob realloc_nt_threshold, measured in docs/BENCHMARKS.md) they
 * are faster, at the price of a destination that is not in the cache afterwards.
 *
 * hak_copy_nt: SSE2 only (every x86-64 has it), 64 bytes per loop turn. The head up to
 * the destination's next 16-byte boundary and the tail below 16 bytes go by memcpy;
 * the source may have any alignment (unaligned loads). An sfence at the end orders the
 * streaming stores before whatever the caller writes next (the free of the old block,
 * the return to the program), as ordinary stores would be. Other architectures memcpy. */
#include "alloc/alloc.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void hak_copy_nt(void* dst, const void* src, size_t n) {
#if defined(__SSE2__)
  uint8_t* d = dst;
  const uint8_t* s = src;
  if (n < 128) { memcpy(d, s, n); return; }
  size_t head = (16 - ((uintptr_t)d & 15)) & 15;
  memcpy(d, s, head);
  d += head; s += head; n -= head;
  for (; n >= 64; d += 64, s += 64, n -= 64) {
    __m128i a = _mm_loadu_si128((const __m128i*)s);
    __m128i b = _mm_loadu_si128((const __m128i*)(s + 16));
    __m128i c = _mm_loadu_si128((const __m128i*)(s + 32));
    __m128i e = _mm_loadu_si128((const __m128i*)(s + 48));
    _mm_stream_si128((__m128i*)d, a);
    _mm_stream_si128((__m128i*)(d + 16), b);
    _mm_stream_si128((__m128i*)(d + 32), c);
    _mm_stream_si128((__m128i*)(d + 48), e);
  }
  for (; n >= 16; d += 16, s += 16, n -= 16) _mm_stream_si128((__m128i*)d, _mm_loadu_si128((const __m128i*)s));
  _mm_sfence();
  memcpy(d, s, n);
#else
  memcpy(dst, src, n);
#endif
}
