/* options_api.c — the public hak_option_* accessors over base/options.c's table. */
#include "base/options.h"
#include "alloc/alloc.h"
#include "hakmem.h"

#include <errno.h>

HAK_EXPORT int hak_option_count(void) { return HAK_OPT_COUNT; }

HAK_EXPORT const hak_option_info* hak_option_get(int i) {
  hak_ensure_init();
  return hak_options_info(i);
}

HAK_EXPORT long long hak_option_value(const char* name) {
  hak_ensure_init();
  bool found;
  long long v = hak_options_lookup(name, &found);
  if (!found) errno = ENOENT;
  return v;
}
