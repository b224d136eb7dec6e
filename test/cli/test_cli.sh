#!/usr/bin/env bash
# test_cli.sh LIBHAKMEM — the command-line faces of hakmem: HAKMEM_STATS at exit (text
# and JSON that parses), HAKMEM_VERBOSE, and the benchmark runners' option checking.
set -u
lib=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pass=0 fail=0
check() {   # check NAME CONDITION-EXIT-CODE [detail]
  if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1 ${3:-}" >&2; fi
}

# HAKMEM_STATS=json: the last stderr line is one JSON object with the documented keys.
out=$(HAKMEM_STATS=json LD_PRELOAD=$lib sh -c 'for i in 1 2 3; do echo $i; done | sort -r' 2>&1 >/dev/null)
echo "$out" | tail -n 1 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["version"] == 1, d["version"]
assert set(d["modes"]) >= {"superslab", "ace", "pmu", "debug_counters"}
for k in ("allocs", "frees", "refills", "remote_frees", "remote_backlog", "bytes_in_use",
          "bytes_held", "rss_bytes", "lock_waits", "threads_started"):
    assert isinstance(d[k], int), k
assert d["allocs"] > 0 and d["frees"] > 0
assert all(c["allocs"] >= c["frees"] and c["in_use"] == c["allocs"] - c["frees"] for c in d["classes"]), d["classes"]
assert d["allocs"] == sum(c["allocs"] for c in d["classes"]) + d["large_allocs"], d
assert d["frees"] == sum(c["frees"] for c in d["classes"]) + d["large_frees"], d
assert all(c["size"] % 16 == 0 for c in d["classes"])
'
check "stats json parses" $? "$out"

# HAKMEM_STATS=1: a text summary naming the active modes.
out=$(HAKMEM_STATS=1 LD_PRELOAD=$lib /bin/true 2>&1)
echo "$out" | grep -q '^hakmem: stats: modes: superslab on, ACE off' ; check "stats text modes" $? "$out"
echo "$out" | grep -Eq '^hakmem: stats: allocs +[0-9]+ ' ; check "stats text allocs" $? "$out"
out=$(HAKMEM_STATS=1 HAKMEM_TINY_USE_SUPERSLAB=0 LD_PRELOAD=$lib /bin/true 2>&1)
echo "$out" | grep -q '^hakmem: stats: modes: superslab off' ; check "stats text superslab off" $? "$out"

# Without HAKMEM_STATS nothing is printed.
out=$(LD_PRELOAD=$lib /bin/true 2>&1)
[ -z "$out" ]; check "silent by default" $? "$out"

# HAKMEM_STATS with a bad value: one warning line, default (off) kept.
out=$(HAKMEM_STATS=loud LD_PRELOAD=$lib /bin/true 2>&1)
[ "$(echo "$out" | grep -c 'hakmem: warning: HAKMEM_STATS=loud')" = 1 ] && ! echo "$out" | grep -q 'stats: modes'
check "stats bad value" $? "$out"

# Benchmark runners reject bad options with a usage message and exit 2.
out=$("$root/bench/larson.sh" --bogus 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q '^usage: larson.sh'; check "larson.sh bad option" $? "rc=$rc $out"
out=$("$root/bench/larson.sh" --profile nosuch 2>&1); rc=$?
[ $rc -eq 2 ]; check "larson.sh bad profile" $? "rc=$rc"
out=$("$root/bench/compare.sh" --bogus 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q '^usage: compare.sh'; check "compare.sh bad option" $? "rc=$rc $out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
