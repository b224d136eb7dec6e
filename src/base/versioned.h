/* versioned.h — the public structs' contract (hak_stats, hak_knobs, hakmem_ace_config_t,
 * hakmem_ace_state_t): the caller sets the first field, `size`, to the struct size it
 * was built with; the library fills at most that many bytes and writes back the size
 * it filled, so a program built against an older header keeps working. */
#ifndef HAK_BASE_VERSIONED_H
#define HAK_BASE_VERSIONED_H

#include "base/base.h"

#include <errno.h>
#include <string.h>

/* out holds at least `size` and `version`; otherwise errno = EINVAL and false. */
HAK_INLINE bool hak_versioned_ok(const void* out) {
  uint32_t size;
  if (out) memcpy(&size, out, sizeof size);
  if (!out || size < 2 * sizeof(uint32_t)) { errno = EINVAL; return false; }
  return true;
}

/* Copy the library's full struct into out, at most out's size, and record what was
 * filled in out's size field. */
HAK_INLINE void hak_versioned_copy(void* out, const void* full, size_t full_size) {
  uint32_t size;
  memcpy(&size, out, sizeof size);
  uint32_t n = size < full_size ? size : (uint32_t)full_size;
  memcpy(out, full, n);
  memcpy(out, &n, sizeof n);
}

#endif
