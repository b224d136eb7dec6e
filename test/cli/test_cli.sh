#!/usr/bin/env bash
# test_cli.sh LIBHAKMEM [WRAPPER] — the command-line faces of hakmem: HAKMEM_STATS at
# exit (text and JSON that parses), HAKMEM_VERBOSE, the hakmem wrapper (options, exit
# status and messages), the benchmark runners' option checking, and a smoke run of
# bench/compare.sh.
#
# WRAPPER is an installed bin/hakmem; without it, the wrapper is made from
# scripts/hakmem.sh.in the way `cmake --install` makes it (the three @VAR@ filled in),
# preloading LIBHAKMEM. The smoke run uses the benchmark programs in the bench/ folder
# next to LIBHAKMEM (the build tree's) and is skipped when they were not built
# (HAK_BUILD_BENCH=OFF); it runs glibc, hakmem and, when it is installed, mimalloc.
set -u
lib=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 skip=0
check() {   # check NAME CONDITION-EXIT-CODE [detail]
  if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1 ${3:-}" >&2; fi
}

# HAKMEM_STATS=json: the last stderr line is one JSON object with the documented keys.
out=$(HAKMEM_STATS=json LD_PRELOAD=$lib sh -c 'for i in 1 2 3; do echo $i; done | sort -r' 2>&1 >/dev/null)
echo "$out" | tail -n 1 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["version"] == 5, d["version"]
for k in ("realloc_in_place", "realloc_shrunk", "realloc_grown", "realloc_mremap", "realloc_memcpy",
          "realloc_nt_copy", "realloc_failed", "expand_failed"):
    assert isinstance(d[k], int), k
assert d["program"] == "sort" or d["program"] == "sh", d["program"]
assert d["hakmem_version"] == "0.2.0", d["hakmem_version"]
for k in ("pid", "run_time_ns", "peak_rss_bytes", "peak_bytes_in_use"):
    assert isinstance(d[k], int) and d[k] > 0, (k, d[k])
assert d["peak_rss_bytes"] >= d["rss_bytes"], d
assert d["peak_bytes_in_use"] >= d["bytes_in_use"], d
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

# The process line and byte counts in human units.
out=$(HAKMEM_STATS=1 LD_PRELOAD=$lib /bin/true 2>&1)
echo "$out" | grep -Eq '^hakmem: stats: process: pid [0-9]+ \(true\), hakmem 0\.2\.0, run time [0-9.]+ s, peak RSS [0-9.]+ (B|KiB|MiB|GiB), sampled peak in use [0-9.]+ (B|KiB|MiB|GiB)$'
check "stats text process line" $? "$out"
echo "$out" | grep -Eq '^hakmem: stats: bytes_held +[0-9]+\.[0-9] (KiB|MiB|GiB)  bytes mapped' ; check "stats text human units" $? "$out"

# HAKMEM_STATS_FILE: the report goes to the file (%p = pid, appended, 0644), not stderr;
# alone it means the text report; with HAKMEM_STATS=json it is JSON; every process of
# a family writes its own; a relative path is taken from where the program started.
rm -f "$tmp"/st.*
out=$(HAKMEM_STATS_FILE="$tmp/st.%p" LD_PRELOAD=$lib sh -c 'echo b | sort; echo a | sort' 2>&1 >/dev/null)
[ -z "$out" ]; check "stats file: nothing on stderr" $? "$out"
n=0 good=0
for f in "$tmp"/st.*; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  grep -q "^hakmem: stats: process: pid ${f##*.} (sort)" "$f" && good=$((good + 1))
done
[ $n = 2 ] && [ $good = 2 ]; check "stats file: one st.<pid> per process, with its own pid" $? "$(ls "$tmp"; head -3 "$tmp"/st.*)"
f=$(ls "$tmp"/st.* | head -n 1)
[ "$(stat -c %a "$f")" = 644 ]; check "stats file: mode 0644" $? "$(stat -c %a "$f")"
HAKMEM_STATS_FILE="$tmp/st.app" LD_PRELOAD=$lib /bin/true 2>/dev/null
HAKMEM_STATS_FILE="$tmp/st.app" LD_PRELOAD=$lib /bin/true 2>/dev/null
[ "$(grep -c '^hakmem: stats: modes:' "$tmp/st.app")" = 2 ]; check "stats file: appended" $? "$(cat "$tmp/st.app")"
HAKMEM_STATS=json HAKMEM_STATS_FILE="$tmp/st.json" LD_PRELOAD=$lib /bin/true 2>/dev/null
python3 -c 'import json, sys; d = json.loads(open(sys.argv[1]).read()); assert d["version"] == 5 and d["program"] == "true"' "$tmp/st.json"
check "stats file: JSON" $? "$(cat "$tmp/st.json")"
mkdir -p "$tmp/wd"
(cd "$tmp/wd" && HAKMEM_STATS_FILE=rel.%p LD_PRELOAD=$lib /usr/bin/python3 -c 'import os; os.chdir("/")' 2>/dev/null)
grep -qs '(python3)' "$tmp"/wd/rel.*; check "stats file: relative to where the program started (it chdir'ed)" $? "$(ls "$tmp/wd")"
out=$(HAKMEM_STATS_FILE="$tmp/nodir/st" LD_PRELOAD=$lib /bin/true 2>&1)
echo "$out" | grep -q "^hakmem: warning: HAKMEM_STATS_FILE: cannot open $tmp/nodir/st: No such file or directory; report on stderr" &&
  echo "$out" | grep -q '^hakmem: stats: modes:'
check "stats file: unwritable path warns, report on stderr" $? "$out"

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

# ---- the hakmem wrapper ----------------------------------------------------------------
W=${2:-}
if [ -z "$W" ]; then
  W=$tmp/bin/hakmem
  mkdir -p "$tmp/bin"
  sed -e "s|@HAKMEM_WRAPPER_LIBDIR@|$(cd "$(dirname "$lib")" && pwd)|" \
      -e "s|@HAKMEM_WRAPPER_LIBNAME@|$(basename "$lib")|" \
      -e "s|@HAK_VERSION@|test|" "$root/scripts/hakmem.sh.in" >"$W" && chmod +x "$W"
  ! grep -q '@[A-Z_]*@' "$W"; check "wrapper: every @VAR@ of hakmem.sh.in filled in" $?
fi
# wrap NAME WANT_RC WANT_STDERR CMD...: CMD exits WANT_RC and its stderr is exactly
# WANT_STDERR (one line; "" for none); stdout must be empty unless WANT_STDERR is "*".
wrap() {
  local name=$1 want_rc=$2 want_err=$3 rc out err
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
  [ "$rc" -eq "$want_rc" ] && { [ "$want_err" = "*" ] || [ "$err" = "$want_err" ]; } &&
    { [ "$want_err" = "*" ] || [ -z "$out" ]; }
  check "wrapper: $name" $? "(exit $rc, want $want_rc; stderr '$err', want '$want_err'; stdout '$out')"
}
mkdir -p "$tmp/path" "$tmp/dir"
printf '#!/bin/sh\necho never\n' >"$tmp/path/hak-not-executable"
chmod 644 "$tmp/path/hak-not-executable"
cp "$tmp/path/hak-not-executable" "$tmp/not-executable"
wrap "command not in PATH: 127, one line as env(1)" 127 \
  "hakmem: 'hak-no-such-command': No such file or directory" "$W" hak-no-such-command arg
wrap "missing file with a path: 127" 127 \
  "hakmem: '$tmp/missing': No such file or directory" "$W" "$tmp/missing"
wrap "empty command name: 127" 127 "hakmem: '': No such file or directory" "$W" ""
wrap "file not executable: 126" 126 \
  "hakmem: '$tmp/not-executable': Permission denied" "$W" "$tmp/not-executable"
wrap "directory: 126" 126 "hakmem: '$tmp/dir': Permission denied" "$W" "$tmp/dir"
wrap "only a non-executable file in PATH: 126" 126 \
  "hakmem: 'hak-not-executable': Permission denied" \
  env PATH="$tmp/path:$PATH" "$W" hak-not-executable
wrap "-- then a missing command starting with '-': 127" 127 \
  "hakmem: '-x': No such file or directory" "$W" -- -x
wrap "a shell builtin without a file ('cd'): 127" 127 \
  "hakmem: 'cd': No such file or directory" "$W" cd /
wrap "command's own exit status passes through" 7 "" "$W" sh -c 'exit 7'
wrap "no command: 2" 2 "*" "$W"
wrap "unknown option: 2" 2 "hakmem: unknown option '--bogus' (try 'hakmem --help')" "$W" --bogus true
wrap "--stats=bogus: 2" 2 "hakmem: --stats takes 'text' or 'json', not 'bogus' (try 'hakmem --help')" \
  "$W" --stats=bogus true

out=$("$W" --stats sh -c 'echo "$HAKMEM_STATS"' 2>/dev/null)
[ "$out" = 1 ]; check "wrapper: --stats sets HAKMEM_STATS=1" $? "got '$out'"
out=$("$W" --stats=text sh -c 'echo "$HAKMEM_STATS"' 2>/dev/null)
[ "$out" = 1 ]; check "wrapper: --stats=text sets HAKMEM_STATS=1" $? "got '$out'"
out=$("$W" --stats=json sh -c 'echo "$HAKMEM_STATS"' 2>/dev/null)
[ "$out" = json ]; check "wrapper: --stats=json sets HAKMEM_STATS=json" $? "got '$out'"
# and the program really reports JSON at exit: the last stderr line is one object
out=$("$W" --stats=json /bin/true 2>&1)
echo "$out" | tail -n 1 | python3 -c 'import json, sys; assert json.loads(sys.stdin.read())["version"] == 5'
check "wrapper: --stats=json /bin/true prints the JSON stats" $? "$out"
out=$("$W" --stats /bin/true 2>&1)
echo "$out" | grep -q '^hakmem: stats: modes:'; check "wrapper: --stats /bin/true prints the text stats" $? "$out"
out=$("$W" --help 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q -- '--stats=json' && echo "$out" | grep -q '127'
check "wrapper: --help lists --stats=json and the exit statuses" $? "rc=$rc"

# ---- bench/compare.sh --smoke ---------------------------------------------------------
bindir=$(cd "$(dirname "$lib")" && pwd)/bench
if [ ! -x "$bindir/bench_micro" ]; then
  echo "skipped: compare.sh --smoke ($bindir has no benchmark programs)"
  skip=$((skip + 1))
else
  # glibc, hakmem and mimalloc (the base of the ratios) when it is installed; not
  # named when it is not, since compare.sh would then try to apt-get it.
  allocs=glibc,hakmem
  if (. "$root/bench/lib_bench.sh" && hb_peer_lib mimalloc >/dev/null); then allocs=$allocs,mimalloc
  else echo "note: compare.sh --smoke without mimalloc (not installed; bash scripts/deps.sh installs it)"; fi
  t0=$(date +%s)
  HB_LOAD_CHECKED=1 "$root/bench/compare.sh" --smoke --allocators "$allocs" --hakmem "$lib" \
    --bindir "$bindir" --out "$tmp/bench" --no-latest >"$tmp/bench.out" 2>"$tmp/bench.err"
  rc=$?
  secs=$(($(date +%s) - t0))
  echo "compare.sh --smoke --allocators $allocs: exit $rc in ${secs}s"
  out=$(cat "$tmp/bench.out")
  # the smoke (and quick) rows: the first nine, then the patterns added for issue 12
  names='micro-tight|micro-batch|micro-xthread|larson|fragment|huge_ws|realloc|mid_mt|large_replace'
  names="$names|batches|batches-bg|batches-mt|alloc_test|mstress|minimize|bigfactor|rebuild"
  nbench=$(echo "$names" | tr '|' '\n' | wc -l)
  rows=$(grep -cE "^\| ($names) \|" "$tmp/bench.out")
  [ $rc -eq 0 ] && [ "$rows" -eq $((2 * nbench)) ] && ! echo "$out" | grep -q FAIL
  check "compare.sh --smoke exits 0 with a throughput and an RSS row per benchmark" $? \
    "(exit $rc, $rows rows)
$out
$(tail -n 20 "$tmp/bench.err")
$(head -n 60 "$tmp/bench/failures.log" 2>/dev/null)"
  head -n 1 "$tmp/bench.out" | grep -q '^## Throughput' && ! grep -qiE 'cmake|make\[|Building|Linking' "$tmp/bench.out"
  check "compare.sh --smoke: stdout starts with the table and holds no build output" $? "$(head -n 3 "$tmp/bench.out")"
  grep -q '^| \*geomean vs ' "$tmp/bench.out" && grep -q '^| realloc/all |' "$tmp/bench.out"
  check "compare.sh --smoke: geomean row and realloc latency row" $?
  head -n 1 "$tmp/bench/latency.csv" | grep -q ',median_max_ns,min_max_ns,max_max_ns$' &&
    grep -qE '^\| realloc/all \|( [0-9]+ / [0-9]+ / [0-9]+ \|)+' "$tmp/bench.out" &&
    awk -F, '$1 == "realloc/all" && $10 == "" { bad = 1 } END { exit bad }' "$tmp/bench/latency.csv"
  check "compare.sh --smoke: realloc's worst case (max) in the latency table and latency.csv" $? \
    "$(head -n 1 "$tmp/bench/latency.csv"; grep '^| realloc/all' "$tmp/bench.out")"
  grep -qE '^\[ *[0-9]+/[0-9]+\] .*(eta [0-9]|done in)' "$tmp/bench.err"
  check "compare.sh --smoke: progress [k/N] with the time left on stderr" $? "$(head -n 8 "$tmp/bench.err")"
  n=$(awk -F, 'NR > 1' "$tmp/bench/summary.csv" | wc -l)
  head -n 1 "$tmp/bench/summary.csv" | grep -q 'median_ops_per_sec,min_ops_per_sec,max_ops_per_sec,median_peak_rss_kb,min_peak_rss_kb,max_peak_rss_kb'
  check "compare.sh --smoke: summary.csv has min and max beside the medians" $? "$(head -n 1 "$tmp/bench/summary.csv")"
  [ "$n" -eq $((nbench * $(echo "$allocs" | tr ',' '\n' | wc -l))) ]
  check "compare.sh --smoke: summary.csv has a row per benchmark and allocator" $? "$n rows"
  grep -qE '^- hakmem library: build commit ([0-9a-f]{12}|unknown)' "$tmp/bench/summary.md" &&
    grep -q '^- whole-process rows .*: large_replace mstress minimize bigfactor rebuild$' "$tmp/bench/summary.md" &&
    grep -q '^- allocator variables set by the caller' "$tmp/bench/summary.md"
  check "compare.sh --smoke: summary.md names hakmem's build commit, the whole-process rows and the caller's allocator variables" $? \
    "$(sed -n 1,12p "$tmp/bench/summary.md")"
fi

# The load warning: compare.sh warns when the 1-minute load is above cores - 0.5
# (HB_LOADAVG stands in for /proc/loadavg, so the machine's real load does not matter).
if [ -x "$bindir/bench_micro" ]; then
  for load in busy idle; do
    if [ $load = busy ]; then echo "$(($(nproc) + 5)).00 0.00 0.00 1/1 1" >"$tmp/loadavg"
    else echo "0.00 0.00 0.00 1/1 1" >"$tmp/loadavg"; fi
    HB_LOADAVG=$tmp/loadavg "$root/bench/compare.sh" --smoke --bench micro-tight --allocators glibc \
      --bindir "$bindir" --out "$tmp/bench-$load" --no-latest --no-charts >/dev/null 2>"$tmp/load.err"
    rc=$?
    n=$(grep -c '^compare.sh: warning: machine is busy: results will be noisy' "$tmp/load.err")
    if [ $load = busy ]; then [ $rc -eq 0 ] && [ "$n" -eq 1 ]; else [ $rc -eq 0 ] && [ "$n" -eq 0 ]; fi
    check "compare.sh: load warning on stderr only when the machine is busy ($load)" $? \
      "(exit $rc, $n warnings) $(head -n 3 "$tmp/load.err")"
  done
fi

line="$pass passed, $fail failed"
[ $skip -gt 0 ] && line="$line, $skip skipped"
echo "$line"
[ "$fail" -eq 0 ]
