#!/usr/bin/env bash
# test_ace_sweep.sh LIBHAKMEM — the phases benchmark and a small bench/ace_sweep.sh run.
#
#  1. phases --phase-seconds 0.2 --rounds 1 under LD_PRELOAD: the four phases are
#     reported, the RESULT line is there and --rss-csv has a header and samples;
#  2. ace_sweep.sh --smoke --bench micro-tight,phases --policies static,ucb1 (about 20 s):
#     exit 0, a row per benchmark and column, the geomean rows, progress on stderr.
# The benchmark programs are taken from the bench/ folder next to LIBHAKMEM.
set -u
lib=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bindir=$(cd "$(dirname "$lib")" && pwd)/bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check NAME STATUS [DETAIL]
  if [ "$2" = 0 ]; then echo "ok: $1"; else echo "FAILED: $1"; [ -n "${3:-}" ] && printf '%s\n' "$3"; fails=$((fails + 1)); fi
}

[ -x "$bindir/phases" ] && [ -x "$bindir/proc_sample" ] || { echo "skipped: no phases/proc_sample in $bindir"; exit 77; }

# ---- 1. phases ------------------------------------------------------------------------------
out=$(LD_PRELOAD=$lib "$bindir/phases" --phase-seconds 0.2 --rounds 1 --ws 16M --rss-csv "$tmp/rss.csv" 2>"$tmp/phases.err")
rc=$?
check "phases exits 0" $rc "$(cat "$tmp/phases.err")"
for k in prodcons hugews churn idle; do
  echo "$out" | grep -qE "^phase round=1 kind=$k seconds=[0-9.]+ ops=[0-9]+ ops_per_sec=[0-9]+" &&
    echo "$out" | grep -qE "^kind kind=$k rounds=1 median_ops_per_sec=[0-9]+ total_ops_per_sec=[0-9]+"
  check "phases reports the $k phase and its kind line" $? "$out"
done
echo "$out" | tail -n 1 | grep -qE '^RESULT bench=phases ops_per_sec=[1-9][0-9]* peak_rss_kb=[0-9]+ .*rss_area_mib_s=[0-9.]+'
check "phases ends with its RESULT line" $? "$(echo "$out" | tail -n 1)"
head -n 1 "$tmp/rss.csv" | grep -qx 't_seconds,rss_bytes,phase'
check "phases --rss-csv header" $? "$(head -n 1 "$tmp/rss.csv")"
rows=$(grep -cE '^[0-9]+\.[0-9]{3},[1-9][0-9]*,(start|prodcons|hugews|churn|idle)$' "$tmp/rss.csv")
[ "$rows" -ge 5 ]
check "phases --rss-csv has RSS samples ($rows rows)" $? "$(head -n 5 "$tmp/rss.csv")"
"$bindir/phases" --rounds 0 >/dev/null 2>&1
[ $? -eq 2 ]
check "phases rejects --rounds 0 with status 2" $?

# ---- 2. ace_sweep.sh -------------------------------------------------------------------------
t0=$(date +%s)
HB_LOAD_CHECKED=1 bash "$root/bench/ace_sweep.sh" --smoke --bench micro-tight,phases --policies static,ucb1 \
  --hakmem "$lib" --bindir "$bindir" --out "$tmp/sweep" >"$tmp/sweep.out" 2>"$tmp/sweep.err"
rc=$?
echo "ace_sweep.sh --smoke --bench micro-tight,phases --policies static,ucb1: exit $rc in $(($(date +%s) - t0))s"
check "ace_sweep.sh --smoke exits 0" $rc "$(tail -n 20 "$tmp/sweep.err")"
for b in micro-tight phases; do
  for c in static ucb1; do
    grep -qE "^\| $b \| $c \| [0-9.]+[kMG]? \| [0-9.]+x \| [0-9.]+ MiB \| [0-9.]+x \| [0-9.]+ \| [0-9.]+x \| [0-9.]+ ms \|$" "$tmp/sweep.out"
    check "ace_sweep.sh row $b / $c" $? "$(cat "$tmp/sweep.out")"
  done
  grep -qE "^\| $b \| best static: [a-z0-9]+ \| " "$tmp/sweep.out"
  check "ace_sweep.sh best static row for $b" $?
done
[ "$(grep -c '^| \*geomean\* | ' "$tmp/sweep.out")" -ge 2 ]
check "ace_sweep.sh geomean rows" $? "$(cat "$tmp/sweep.out")"
grep -qE '^\[ *[0-9]+/[0-9]+\] .*(time left ~[0-9]+ min|done in)' "$tmp/sweep.err"
check "ace_sweep.sh progress [k/N] with the time left on stderr" $? "$(head -n 5 "$tmp/sweep.err")"
[ "$(awk -F, 'NR > 1' "$tmp/sweep/summary.csv" | wc -l)" -eq 12 ]
check "ace_sweep.sh summary.csv has 2 benchmarks x (4 settings + 2 policies) rows" $? "$(cat "$tmp/sweep/summary.csv")"
bash "$root/bench/ace_sweep.sh" --grid huge >/dev/null 2>&1
[ $? -eq 2 ]
check "ace_sweep.sh rejects a bad --grid with status 2" $?

echo "$fails failed"
[ $fails = 0 ]
