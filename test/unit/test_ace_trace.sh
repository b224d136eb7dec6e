#!/usr/bin/env bash
# test_ace_trace.sh UNIT_ACE REPO — HAKMEM_ACE_TRACE writes one JSON object per line and
# tick with the documented keys; tools/ace-plot turns the trace into a PNG.
set -u
bin="$1" repo="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1"; [ -n "${3:-}" ] && echo "$3" | head -20; fi; }

HAKMEM_ACE_TRACE="$tmp/ace-%p.jsonl" HAKMEM_ACE_START_DELAY_MS=0 HAKMEM_ACE_FAST_INTERVAL_MS=50 \
HAKMEM_ACE_SLOW_INTERVAL_S=1 HAKMEM_ACE_MAX_CPU_PERCENT=100 "$bin" --trace-run
check "the traced program ran and ACE ticked" $?
trace=$(ls "$tmp"/ace-*.jsonl 2>/dev/null | head -n 1)
[ -n "$trace" ] && [ -s "$trace" ]; check "the trace file exists (%p became the pid): $trace" $?

out=$(python3 - "$trace" <<'PY' 2>&1
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 5, f"only {len(lines)} lines"
last_t = -1
ticks = {"fast": 0, "slow": 0}
for n, line in enumerate(lines, 1):
    d = json.loads(line)
    for k in ("t", "tick", "mode", "pmu", "metrics", "knobs", "reason", "scavenged"):
        assert k in d, f"line {n}: no {k}"
    assert d["t"] >= last_t, f"line {n}: time went back"
    last_t = d["t"]
    ticks[d["tick"]] += 1
    assert d["mode"] in ("steering", "stopped"), d["mode"]
    assert d["pmu"] in ("none", "software", "hardware"), d["pmu"]
    m, k = d["metrics"], d["knobs"]
    for key in ("ops_per_s", "lat_p99_ns", "remote_backlog", "rss_bytes", "bytes_in_use", "bytes_held",
                "fragmentation", "llc_miss_rate", "page_faults_per_s", "idle_cache_trimmed_bytes"):
        assert key in m, f"line {n}: metrics.{key} missing"
    for key in ("generation", "tls_cap_sum", "refill_batch_sum", "remote_drain_interval_sum", "purge_delay_ms",
                "tls_grow_budget_bytes"):
        assert isinstance(k[key], int), f"line {n}: knobs.{key}"
    assert isinstance(d["scavenged"], int) and d["scavenged"] >= 0
assert ticks["fast"] >= 5, ticks
assert ticks["slow"] >= 1, ticks
fast = [json.loads(l) for l in lines if '"tick":"fast"' in l]
assert any(f["metrics"]["ops_per_s"] > 0 for f in fast), "no throughput seen"
assert any(f["metrics"]["rss_bytes"] > 0 for f in fast), "no RSS seen"
assert all(isinstance(f["metrics"]["scavenge_delay_ms"], int) for f in fast), "metrics.scavenge_delay_ms"
assert any(f["metrics"]["scavenge_delay_ms"] >= 1 for f in fast), "the scavenger's delay never seen"
print(f"{len(lines)} lines, {ticks}")
PY
)
check "every trace line parses with the documented keys" $? "$out"
echo "$out" | tail -n 1

if command -v gnuplot >/dev/null 2>&1; then
  png=$(python3 "$repo/tools/ace-plot" "$trace" -o "$tmp/ace.png" 2>&1)
  [ -s "$tmp/ace.png" ] && [ "$(head -c 4 "$tmp/ace.png" | tail -c 3)" = "PNG" ]
  check "tools/ace-plot draws a PNG" $? "$png"
else
  echo "skipped: tools/ace-plot (no gnuplot)"
fi
# ACE switched off and on again in one process: the second run appends to the file
# (it was truncated, losing the first run), and the time goes on from the first start.
HAKMEM_ACE_TRACE="$tmp/restart.jsonl" HAKMEM_ACE_MAX_CPU_PERCENT=100 "$bin" --trace-restart
check "the restarted program ran and ACE ticked in both runs" $?
out=$(python3 - "$tmp/restart.jsonl" <<'PY' 2>&1
import json, sys
t = [json.loads(l)["t"] for l in open(sys.argv[1]).read().splitlines() if '"tick":"fast"' in l]
assert len(t) >= 10, f"{len(t)} fast ticks: one run's only?"
assert all(b >= a for a, b in zip(t, t[1:])), "time went back"
gaps = [b - a for a, b in zip(t, t[1:])]
assert max(gaps) >= 0.3, f"no pause between the runs (largest gap {max(gaps):.3f} s)"
print(f"{len(t)} fast ticks over {t[-1]:.2f} s")
PY
)
check "a restart appends to the trace, its time going on" $? "$out"

python3 "$repo/tools/ace-plot" "$tmp/none.jsonl" >/dev/null 2>&1
[ $? -ne 0 ]; check "tools/ace-plot fails on a missing trace" $?
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
