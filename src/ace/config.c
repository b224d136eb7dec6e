/* config.c — the controller's configuration (HAKMEM_ACE_* at start-up, then
 * hakmem_ace_config()), its state for the getters, and its log. */
#include "ace/ace.h"
#include "base/io.h"
#include "base/lock.h"
#include "base/options.h"
#include "base/versioned.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static hakmem_ace_config_t config;
static hak_lock config_lock = HAK_LOCK_INIT;   /* config and last_reason */
static char last_reason[160];
ace_shared ace_state;

void ace_config_load(void) {
  hakmem_ace_config_t c = {0};
  c.size = sizeof c;
  c.version = HAKMEM_ACE_CONFIG_VERSION;
  c.enabled = (uint32_t)hak_opt(HAK_OPT_ACE_ENABLED);
  c.fast_interval_ms = (uint32_t)hak_opt(HAK_OPT_ACE_FAST_INTERVAL_MS);
  c.slow_interval_s = (uint32_t)hak_opt(HAK_OPT_ACE_SLOW_INTERVAL_S);
  c.scavenge_budget_us = (uint32_t)hak_opt(HAK_OPT_ACE_SCAVENGE_BUDGET_US);
  c.start_delay_ms = (uint32_t)hak_opt(HAK_OPT_ACE_START_DELAY_MS);
  c.start_bytes = (uint64_t)hak_opt(HAK_OPT_ACE_START_BYTES);
  c.max_p99_lat_ns = (uint64_t)hak_opt(HAK_OPT_ACE_MAX_P99_LAT_NS);
  c.max_rss_bytes = (uint64_t)hak_opt(HAK_OPT_ACE_MAX_RSS_MB) << 20;
  c.max_cpu_percent = (uint32_t)hak_opt(HAK_OPT_ACE_MAX_CPU_PERCENT);
  c.log_level = (uint32_t)hak_opt(HAK_OPT_ACE_LOG_LEVEL);
  c.pmu = (uint32_t)hak_opt(HAK_OPT_ACE_PMU);
  c.pinned = (uint32_t)hak_opt(HAK_OPT_ACE_PIN);
  c.policy = (uint32_t)hak_opt(HAK_OPT_ACE_POLICY);
  hak_lock_take(&config_lock);
  config = c;
  hak_lock_release(&config_lock);
  hak_store_relaxed(&ace_state.mode, c.enabled ? HAKMEM_ACE_MODE_WAITING : HAKMEM_ACE_MODE_OFF);
}

void ace_config_copy(hakmem_ace_config_t* out) {
  hak_lock_take(&config_lock);
  *out = config;
  hak_lock_release(&config_lock);
}

static bool in(uint64_t v, uint64_t lo, uint64_t hi) { return v >= lo && v <= hi; }

/* The same ranges as the HAKMEM_ACE_* options. */
int ace_config_validate(const hakmem_ace_config_t* c) {
  if (!c || c->size != sizeof *c || c->version != HAKMEM_ACE_CONFIG_VERSION) return -1;
  if (!in(c->enabled, 0, 1) || !in(c->fast_interval_ms, 10, 60000) || !in(c->slow_interval_s, 1, 3600) ||
      !in(c->scavenge_budget_us, 100, 1000000) || !in(c->start_delay_ms, 0, 3600000) ||
      !in(c->start_bytes, 0, 1ull << 40) || !in(c->max_p99_lat_ns, 0, 1000000000000ull) ||
      !in(c->max_rss_bytes, 0, 1ull << 44) || !in(c->max_cpu_percent, 1, 100) || !in(c->log_level, 0, 2) ||
      !in(c->pmu, 0, 2) || (c->pinned & ~HAKMEM_ACE_PIN_ALL) != 0 || c->policy > HAKMEM_ACE_POLICY_UCB1) {
    return -1;
  }
  return 0;
}

HAK_EXPORT int hakmem_ace_config(const hakmem_ace_config_t* cfg) {
  hak_ensure_init();
  if (ace_config_validate(cfg) != 0) { errno = EINVAL; return -1; }
  hak_lock_take(&config_lock);
  config = *cfg;
  hak_lock_release(&config_lock);
  ace_thread_apply_config();
  return 0;
}

HAK_EXPORT int hakmem_ace_config_get(hakmem_ace_config_t* out) {
  if (!hak_versioned_ok(out)) return -1;
  hak_ensure_init();
  hakmem_ace_config_t c;
  ace_config_copy(&c);
  hak_versioned_copy(out, &c, sizeof c);
  return 0;
}

HAK_EXPORT int hakmem_ace_state_get(hakmem_ace_state_t* out) {
  if (!hak_versioned_ok(out)) return -1;
  hak_ensure_init();
  hakmem_ace_state_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  s.version = HAKMEM_ACE_STATE_VERSION;
  s.mode = hak_load_relaxed(&ace_state.mode);
  s.pmu_mode = hak_load_relaxed(&ace_state.pmu_mode);
  s.fast_ticks = hak_load_relaxed(&ace_state.fast_ticks);
  s.slow_ticks = hak_load_relaxed(&ace_state.slow_ticks);
  s.publishes = hak_load_relaxed(&ace_state.publishes);
  s.scavenged_bytes = hak_load_relaxed(&ace_state.scavenged_bytes);
  s.cpu_ns = hak_load_relaxed(&ace_state.cpu_ns);
  s.last_p99_ns = hak_load_relaxed(&ace_state.last_p99_ns);
  s.last_rss_bytes = hak_load_relaxed(&ace_state.last_rss_bytes);
  s.policy = hak_load_relaxed(&ace_state.policy);
  s.keep_level = hak_load_relaxed(&ace_state.keep_level);
  s.phase_changes = hak_load_relaxed(&ace_state.phase_changes);
  hak_lock_take(&config_lock);
  memcpy(s.last_reason, last_reason, sizeof s.last_reason);
  hak_lock_release(&config_lock);
  hak_versioned_copy(out, &s, sizeof s);
  return 0;
}

/* fork: the lock is held across it, so that no other thread holds it then. A child
 * that inherited it held waited for ever in its first slow path that reads the
 * configuration (ace_hook; a TSan run of stress forkhard hung in 1 child in 5). */
void ace_config_fork_lock(void) { hak_lock_take(&config_lock); }
void ace_config_fork_unlock(void) { hak_lock_release(&config_lock); }

void ace_set_reason(const char* reason) {
  hak_lock_take(&config_lock);
  snprintf(last_reason, sizeof last_reason, "%s", reason);
  hak_lock_release(&config_lock);
}

void ace_say(ace_reasons* r, const char* fmt, ...) {
  if (r->n == 0 || r->len + 3 >= r->n) return;
  if (r->len) { r->buf[r->len++] = ';'; r->buf[r->len++] = ' '; r->buf[r->len] = 0; }
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(r->buf + r->len, r->n - r->len, fmt, ap);
  va_end(ap);
  if (w > 0) r->len = r->len + (size_t)w < r->n ? r->len + (size_t)w : r->n - 1;
}

void ace_log(int level, const char* fmt, ...) {
  hak_lock_take(&config_lock);
  uint32_t lv = config.log_level;
  hak_lock_release(&config_lock);
  if ((uint32_t)level > lv) return;
  char buf[512];
  int n = snprintf(buf, sizeof buf, "hakmem: ace: ");
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (w > 0 ? (size_t)w : 0);
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  hak_write_err(buf, len);
}
