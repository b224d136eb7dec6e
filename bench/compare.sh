#!/usr/bin/env bash
# compare.sh — run hakmem's benchmarks against glibc, mimalloc, jemalloc and tcmalloc
# (and any extra columns), report medians with their min-max spread, peak RSS, ratios vs
# mimalloc and sampled latencies as Markdown, CSV and PNG charts. See docs/BENCHMARKS.md.
#
# stdout carries only the tables (and the notes and the results path after them);
# progress, warnings and build output go to stderr or to log files.
set -u -o pipefail
HB_PROG=compare.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_bench.sh"

usage() {
  cat <<EOF
usage: compare.sh [--smoke | --quick | --full] [options]

Runs each selected benchmark with each allocator column, round-robin inside each
repetition, and reports median ops/s and peak RSS with their min-max over the runs,
ratios vs mimalloc, and the p50/p99 latencies of the programs that sample them.
The tables go to stdout; progress ([k/N] and the time left) to stderr.

profiles:
  --smoke              very short runs, all benchmarks, 1 run (~1 min with 5 columns):
                       checks that every program runs with every allocator
  --quick              short runs, all benchmarks, 3 runs (default; ~8 min on 2 cores)
  --full               longer runs, extra Larson profiles, 5 runs
  --mode NAME          the same as --NAME (smoke, quick or full)

options:
  --runs N             repetitions (default 3 quick, 5 full)
  --allocators LIST    comma-separated columns among: glibc,mimalloc,jemalloc,tcmalloc,hakmem
                       (default: all; hakmem is skipped with a note if not built)
  --hakmem PATH        hakmem shared library (default build/libhakmem.so under the repo)
  --extra SPEC         extra column, repeatable: NAME[@BASE]:VAR=VAL[,VAR=VAL...]
                       BASE defaults to hakmem; e.g. --extra 'hakmem-ace-off:HAKMEM_ACE_ENABLED=0'
                       BASE may be a library path (with a '/'): another hakmem build, e.g.
                       --extra 'hakmem-old@/tmp/old/libhakmem.so:HAKMEM_VERBOSE=0'
                       (NAME=VAR=VAL also accepted)
  --bench LIST         comma-separated benchmarks (default: all of the profile):
                       $(echo "$ALL_BENCHES_FULL" | tr ' ' ',')
  --threads N          threads for the multi-thread benchmarks (default 2)
  --seconds S          override the per-run duration of the timed benchmarks
  --out DIR            results folder (default results/<timestamp>/ under the repo)
  --bindir DIR         use benchmark binaries from DIR (default: build/bench, else a
                       standalone build in build-bench/)
  --timeout S          kill a run after S seconds (default 30 smoke, 120 quick, 600 full)
  --no-charts          skip the gnuplot PNGs
  --no-latest          do not refresh results/latest/
  -h, --help           show this text
EOF
}
hb_usage_error() { printf 'compare.sh: %s\n' "$*" >&2; usage >&2; exit 2; }

ALL_BENCHES_QUICK="micro-tight micro-batch micro-xthread larson fragment huge_ws realloc mid_mt large_replace
  batches batches-bg batches-mt alloc_test mstress minimize bigfactor rebuild"
ALL_BENCHES_FULL="$ALL_BENCHES_QUICK larson-churn larson-tiny larson-mid larson-mixed phases"
ALL_BENCHES_QUICK=$(echo $ALL_BENCHES_QUICK) ALL_BENCHES_FULL=$(echo $ALL_BENCHES_FULL)

profile=quick runs="" allocs="" allocs_explicit=0 hakmem="$HB_ROOT/build/libhakmem.so"
hakmem_explicit=0 extras=() benches="" threads=2 seconds="" out="" bindir="" tmo=""
charts=1 latest=1

need() { [ $# -ge 2 ] && [ -n "$2" ] || hb_usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) profile=smoke ;;
    --quick) profile=quick ;;
    --full) profile=full ;;
    --mode) need "$@"; profile=$2; shift ;;
    --mode=*) profile=${1#*=} ;;
    --runs) need "$@"; runs=$2; shift ;;
    --runs=*) runs=${1#*=} ;;
    --allocators) need "$@"; allocs=$2; allocs_explicit=1; shift ;;
    --allocators=*) allocs=${1#*=}; allocs_explicit=1 ;;
    --hakmem) need "$@"; hakmem=$2; hakmem_explicit=1; shift ;;
    --hakmem=*) hakmem=${1#*=}; hakmem_explicit=1 ;;
    --extra) need "$@"; extras+=("$2"); shift ;;
    --extra=*) extras+=("${1#*=}") ;;
    --bench | --benchmarks) need "$@"; benches=$2; shift ;;
    --bench=* | --benchmarks=*) benches=${1#*=} ;;
    --threads) need "$@"; threads=$2; shift ;;
    --threads=*) threads=${1#*=} ;;
    --seconds) need "$@"; seconds=$2; shift ;;
    --seconds=*) seconds=${1#*=} ;;
    --out) need "$@"; out=$2; shift ;;
    --out=*) out=${1#*=} ;;
    --bindir) need "$@"; bindir=$2; shift ;;
    --bindir=*) bindir=${1#*=} ;;
    --timeout) need "$@"; tmo=$2; shift ;;
    --timeout=*) tmo=${1#*=} ;;
    --no-charts) charts=0 ;;
    --no-latest) latest=0 ;;
    -h | --help) usage; exit 0 ;;
    *) hb_usage_error "unknown option '$1'" ;;
  esac
  shift
done

case $profile in smoke | quick | full) ;; *) hb_usage_error "unknown mode '$profile' (known: smoke quick full)" ;; esac
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v x="$1" 'BEGIN{exit !(x > 0)}'; }
case $profile in
  smoke) : "${runs:=1}" "${tmo:=30}" ;;
  quick) : "${runs:=3}" "${tmo:=120}" ;;
  full) : "${runs:=5}" "${tmo:=600}" ;;
esac
is_uint "$runs" || hb_usage_error "--runs must be a positive integer, not '$runs'"
is_uint "$threads" || hb_usage_error "--threads must be a positive integer, not '$threads'"
is_uint "$tmo" || hb_usage_error "--timeout must be a positive integer, not '$tmo'"
[ -z "$seconds" ] || is_num "$seconds" || hb_usage_error "--seconds must be a positive number, not '$seconds'"
[ -n "$allocs" ] || [ $allocs_explicit = 0 ] || hb_usage_error "--allocators needs a value"

case $profile in
  smoke) all_benches=$ALL_BENCHES_QUICK; dur=${seconds:-0.1} ;;
  quick) all_benches=$ALL_BENCHES_QUICK; dur=${seconds:-1} ;;
  full) all_benches=$ALL_BENCHES_FULL; dur=${seconds:-3} ;;
esac
if [ -z "$benches" ]; then
  benches=$all_benches
else
  benches=$(echo "$benches" | tr ',' ' ')
  for b in $benches; do
    [[ " $ALL_BENCHES_FULL " == *" $b "* ]] || hb_usage_error "unknown benchmark '$b' (known: $ALL_BENCHES_FULL)"
  done
fi

# bench_cmd NAME: fills CMD with the program and arguments of one run (lib_bench.sh).
bench_cmd() { hb_bench_cmd "$1" "$profile" "$dur" "$threads"; }

hb_busy_warning
hb_setup_columns "$allocs" "$allocs_explicit" "$hakmem" "$hakmem_explicit" "${extras[@]+"${extras[@]}"}"
hb_ensure_tools
hb_ensure_bins "$bindir"

stamp=$(date +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$HB_ROOT/results/$stamp
mkdir -p "$out/logs" || hb_die "cannot create $out"
out=$(cd "$out" && pwd)
hb_snapshot_libs "$out/lib"
caller_env=$(hb_alloc_env)
[ -z "$caller_env" ] || { printf '%s\n' "$caller_env" >"$out/caller_env.txt"; HB_NOTES+=("the caller's allocator variables, inherited by every run of every column: $(echo $caller_env)"); }
base=mimalloc
hb_has_col mimalloc || base=${HB_COLS[0]}

ncols=${#HB_COLS[@]}
nb=$(echo $benches | wc -w)
hb_log "compare.sh: profile=$profile runs=$runs threads=$threads columns: ${HB_COLS[*]}"
hb_log "benchmarks: $benches"
hb_log "binaries: $HB_BINDIR   results: $out"
for n in "${HB_NOTES[@]+"${HB_NOTES[@]}"}"; do hb_log "note: $n"; done

raw=$out/raw.csv
echo "benchmark,allocator,run,status,ops_per_sec,peak_rss_kb,wall_s,cpu_pct,load1,result" >"$raw"
: >"$out/failures.log"
declare -A OPS RSS FAILS NOK LAT50 LAT99 LATMAX LATN
LATROWS=""   # rows of the latency table, in order of first appearance: bench or bench/case
LOADS=""
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s.%N)
nruns=$((runs * nb * ncols))
k_run=0

# lat_collect BENCH COL STDOUT_FILE: the p50_ns/p99_ns (and max_ns) of every RESULT line of a run
# (programs that time sampled operations print them; bench_micro and realloc_bench
# print one line per case, so a row is BENCH/CASE when the line names a case).
lat_collect() {
  local b=$1 col=$2 row p50 p99 pmax cas line
  while IFS= read -r line; do
    p50=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^p50_ns=//p' | head -n 1)
    p99=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^p99_ns=//p' | head -n 1)
    pmax=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^max_ns=//p' | head -n 1)
    [ -n "$p50" ] && [ -n "$p99" ] || continue
    cas=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^case=//p' | head -n 1)
    row=$b${cas:+/$cas}
    [[ " $LATROWS " == *" $row "* ]] || LATROWS="$LATROWS $row"
    LAT50[$row|$col]="${LAT50[$row|$col]:-} $p50"
    LAT99[$row|$col]="${LAT99[$row|$col]:-} $p99"
    [ -z "$pmax" ] || LATMAX[$row|$col]="${LATMAX[$row|$col]:-} $pmax"
    LATN[$row|$col]=$((${LATN[$row|$col]:-0} + 1))
  done < <(grep '^RESULT .*p50_ns=' "$3" 2>/dev/null)
}

for ((r = 1; r <= runs; r++)); do
  for b in $benches; do
    for ((k = 0; k < ncols; k++)); do
      ci=$(((k + r - 1) % ncols)) # rotate the starting column each repetition
      col=${HB_COLS[$ci]}
      bench_cmd "$b"
      logp=$out/logs/$b.$col.r$r
      HB_WHOLE=$CMD_WHOLE hb_run "$ci" "$tmo" "$logp" "${CMD[@]}"
      key="$b|$col"
      if [ "$RUN_STATUS" = ok ]; then
        OPS[$key]="${OPS[$key]:-} $RUN_OPS"
        RSS[$key]="${RSS[$key]:-} $RUN_RSS_KB"
        NOK[$key]=$((${NOK[$key]:-0} + 1))
        lat_collect "$b" "$col" "$logp.out"
        rm -f "$logp.err"
        [ -s "$logp.out" ] || rm -f "$logp.out"
      else
        FAILS[$key]="${FAILS[$key]:-}${FAILS[$key]:+ }$RUN_STATUS"
        {
          echo "== $b / $col / run $r: $RUN_STATUS"
          echo "command: $(hb_cmdline "$ci" "${CMD[@]}")"
          echo "--- stderr (last 20 lines):"
          tail -n 20 "$logp.err" 2>/dev/null
          echo
        } >>"$out/failures.log"
      fi
      printf '%s,%s,%d,%s,%s,%s,%s,%s,%s,"%s"\n' "$b" "$col" "$r" "$RUN_STATUS" "$RUN_OPS" "$RUN_RSS_KB" \
        "$RUN_SECS" "$RUN_CPU" "$RUN_LOAD" "$(printf '%s' "$RUN_LINE" | sed 's/"/""/g')" >>"$raw"
      LOADS="$LOADS $RUN_LOAD"
      k_run=$((k_run + 1))
      printf '[%*d/%d] run %d/%d %-14s %-16s %10s ops/s %9s KiB  %-12s %6ss  cpu %4s%%  load %-5s %s\n' \
        ${#nruns} "$k_run" "$nruns" "$r" "$runs" "$b" "$col" \
        "$(hb_human "$RUN_OPS")" "${RUN_RSS_KB:--}" "$RUN_STATUS" "$RUN_SECS" "${RUN_CPU:--}" "$RUN_LOAD" \
        "$(hb_eta "$k_run" "$nruns" "$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')")" >&2
    done
  done
done
t_total=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

# ---- summary -------------------------------------------------------------------------
declare -A MOPS MRSS LOOPS HIOPS LORSS HIRSS
summary=$out/summary.csv
echo "benchmark,allocator,runs_ok,runs,median_ops_per_sec,min_ops_per_sec,max_ops_per_sec,median_peak_rss_kb,min_peak_rss_kb,max_peak_rss_kb,ops_ratio_vs_$base,rss_ratio_vs_$base,failures" >"$summary"
for b in $benches; do
  for col in "${HB_COLS[@]}"; do
    key="$b|$col"
    MOPS[$key]=$(hb_median ${OPS[$key]:-})
    LOOPS[$key]=$(hb_min ${OPS[$key]:-})
    HIOPS[$key]=$(hb_max ${OPS[$key]:-})
    MRSS[$key]=$(hb_median ${RSS[$key]:-})
    LORSS[$key]=$(hb_min ${RSS[$key]:-})
    HIRSS[$key]=$(hb_max ${RSS[$key]:-})
  done
  for col in "${HB_COLS[@]}"; do
    key="$b|$col"
    echo "$b,$col,${NOK[$key]:-0},$runs,${MOPS[$key]},${LOOPS[$key]},${HIOPS[$key]},${MRSS[$key]},${LORSS[$key]},${HIRSS[$key]},$(hb_ratio "${MOPS[$key]}" "${MOPS[$b|$base]}"),$(hb_ratio "${MRSS[$key]}" "${MRSS[$b|$base]}"),${FAILS[$key]:-}" >>"$summary"
  done
done

# Latency: median over the runs of each run's p50, p99 and max (and their min-max).
declare -A M50 M99 MMAX
latcsv=$out/latency.csv
if [ -n "$LATROWS" ]; then
  echo "operation,allocator,runs_ok,median_p50_ns,min_p50_ns,max_p50_ns,median_p99_ns,min_p99_ns,max_p99_ns,median_max_ns,min_max_ns,max_max_ns" >"$latcsv"
  for row in $LATROWS; do
    for col in "${HB_COLS[@]}"; do
      key="$row|$col"
      M50[$key]=$(hb_median ${LAT50[$key]:-})
      M99[$key]=$(hb_median ${LAT99[$key]:-})
      MMAX[$key]=$(hb_median ${LATMAX[$key]:-})
      echo "$row,$col,${LATN[$key]:-0},${M50[$key]},$(hb_min ${LAT50[$key]:-}),$(hb_max ${LAT50[$key]:-}),${M99[$key]},$(hb_min ${LAT99[$key]:-}),$(hb_max ${LAT99[$key]:-}),${MMAX[$key]},$(hb_min ${LATMAX[$key]:-}),$(hb_max ${LATMAX[$key]:-})" >>"$latcsv"
    done
  done
fi

# cell TYPE BENCH COL -> Markdown cell
cell() {
  local kind=$1 b=$2 col=$3 key="$2|$3" v bv txt ok=${NOK["$2|$3"]:-0}
  if [ "$kind" = ops ]; then v=${MOPS[$key]}; bv=${MOPS[$b|$base]}; else v=${MRSS[$key]}; bv=${MRSS[$b|$base]}; fi
  if [ -z "$v" ]; then
    txt="FAIL (${FAILS[$key]%% *})"
  else
    if [ "$kind" = ops ]; then txt=$(hb_human "$v"); else txt="$(awk -v x="$v" 'BEGIN{printf "%.1f MiB", x/1024}')"; fi
    local rt
    rt=$(hb_ratio "$v" "$bv")
    [ -n "$rt" ] && txt="$txt (${rt}x)"
    [ "$ok" -lt "$runs" ] && txt="$txt [$ok/$runs ok]"
  fi
  printf '%s' "$txt"
}

# spread TYPE BENCH COL -> the min-max of the passing runs ("-" with fewer than two)
spread() {
  local key="$2|$3"
  if [ "${NOK[$key]:-0}" -lt 2 ]; then printf -- '-'; return; fi
  if [ "$1" = ops ]; then
    hb_human_range "${LOOPS[$key]}" "${HIOPS[$key]}"
  else
    awk -v a="${LORSS[$key]}" -v b="${HIRSS[$key]}" 'BEGIN { printf "%.1f-%.1f MiB", a / 1024, b / 1024 }'
  fi
}

# geomean of ratios vs base over the benchmarks where both have a value
geomean() {
  local kind=$1 col=$2 b v bv acc=""
  for b in $benches; do
    if [ "$kind" = ops ]; then v=${MOPS[$b|$col]}; bv=${MOPS[$b|$base]}; else v=${MRSS[$b|$col]}; bv=${MRSS[$b|$base]}; fi
    [ -n "$v" ] && [ -n "$bv" ] && acc="$acc $v/$bv"
  done
  echo "$acc" | awk '{ s = 0; n = 0; for (i = 1; i <= NF; i++) { split($i, p, "/"); if (p[1] > 0 && p[2] > 0) { s += log(p[1] / p[2]); n++ } }
    if (n) printf "%.2fx\n", exp(s / n); else print "-" }'
}

# table TYPE: one row per benchmark; per column the median (ratio) and the min-max.
table() {
  local kind=$1 col b
  printf '| benchmark |'
  for col in "${HB_COLS[@]}"; do printf ' %s | min-max |' "$col"; done
  printf '\n|---|'
  for col in "${HB_COLS[@]}"; do printf -- '---:|---:|'; done
  printf '\n'
  for b in $benches; do
    printf '| %s |' "$b"
    for col in "${HB_COLS[@]}"; do printf ' %s | %s |' "$(cell "$kind" "$b" "$col")" "$(spread "$kind" "$b" "$col")"; done
    printf '\n'
  done
  printf '| *geomean vs %s* |' "$base"
  for col in "${HB_COLS[@]}"; do printf ' %s | |' "$(geomean "$kind" "$col")"; done
  printf '\n'
}

# lat_table: per operation and column, median p50 / p99 (/ max, where reported) in ns.
lat_table() {
  local row col key
  printf '| operation |'
  for col in "${HB_COLS[@]}"; do printf ' %s |' "$col"; done
  printf '\n|---|'
  for col in "${HB_COLS[@]}"; do printf -- '---:|'; done
  printf '\n'
  for row in $LATROWS; do
    printf '| %s |' "$row"
    for col in "${HB_COLS[@]}"; do
      key="$row|$col"
      if [ -n "${M50[$key]}" ]; then printf ' %s / %s%s |' "${M50[$key]}" "${M99[$key]}" "${MMAX[$key]:+ / ${MMAX[$key]}}"; else printf ' - |'; fi
    done
    printf '\n'
  done
}

libinfo() {
  local i
  for i in "${!HB_COLS[@]}"; do
    local lib=${HB_COL_LIB[$i]} env=${HB_COL_ENV[$i]} ver=""
    if [ -n "$lib" ]; then
      ver=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)
      [ -n "$ver" ] && ver="$ver $(dpkg-query -W -f='${Version}' "$ver" 2>/dev/null)"
      [ -n "$ver" ] || ver="built $(date -r "$lib" '+%Y-%m-%d %H:%M' 2>/dev/null)"
    else
      ver="glibc $(ldd --version 2>/dev/null | head -n 1 | awk '{print $NF}')"
    fi
    [ -n "$lib" ] && [ -n "${HB_LIB_BUILD[$lib]:-}" ] && ver="$ver, ${HB_LIB_BUILD[$lib]}"
    printf -- '- **%s**: %s%s (%s)\n' "${HB_COLS[$i]}" "${lib:-no preload}" "${env:+, env: $(echo $env)}" "$ver"
  done
}

md=$out/summary.md
{
  echo "# Allocator comparison ($profile, $stamp)"
  echo
  echo "- host: $(hb_environment)"
  echo "- repo commit: $(git -C "$HB_ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$([ -n "$(git -C "$HB_ROOT" status --porcelain 2>/dev/null)" ] && echo ' (with uncommitted changes)')"
  for i in "${!HB_COLS[@]}"; do
    lib=${HB_COL_LIB[$i]}
    [ -n "$lib" ] && [ -n "${HB_LIB_BUILD[$lib]:-}" ] && echo "- ${HB_COLS[$i]} library: ${HB_LIB_BUILD[$lib]}"
  done | sort -u -t: -k2
  if [ -n "$caller_env" ]; then
    echo "- allocator variables set by the caller (every run, every column, inherits them): $(echo $caller_env)"
  else
    echo "- allocator variables set by the caller: none (no HAKMEM_*, MIMALLOC_*, MALLOC_*, JE_MALLOC_CONF, TCMALLOC_*, GLIBC_TUNABLES)"
  fi
  whole=""
  for b in $benches; do bench_cmd "$b"; [ "$CMD_WHOLE" = 1 ] && whole="$whole $b"; done
  [ -z "$whole" ] || echo "- whole-process rows (fixed work; ops/s = the program's ops / wall time of the process, start-up, set-up, faults and exit included):$whole"
  echo "- runs per cell: $runs (allocators round-robin inside each run, start rotated), median reported; min-max: the lowest and highest of the passing runs (- with fewer than 2)"
  echo "- threads for multi-thread benchmarks: $threads; timed runs: ${dur}s"
  echo "- load average at start: $load_start; 1-min load before each run: $(echo $LOADS | tr ' ' '\n' | sort -n | sed -n '1p;$p' | paste -sd- -) (min-max); wall time: ${t_total}s"
  echo "  (raw.csv has cpu_pct per run: user+sys time as % of wall; far below the thread count x 100 means the run was starved by other work on the machine)"
  echo "- peak RSS: $([ -n "$HB_TIME" ] && echo 'max RSS of the process from /usr/bin/time -f %M' || echo "the program's own VmHWM")"
  echo
  echo "## Throughput (median ops/s; ratio vs $base, higher is better)"
  echo
  table ops
  echo
  echo "## Peak RSS (median; ratio vs $base, lower is better)"
  echo
  table rss
  if [ -n "$LATROWS" ]; then
    echo
    echo "## Latency (sampled operations; median over the runs of p50 / p99 / max in ns, lower is better)"
    echo
    lat_table
    echo
    echo "Only the programs that time operations report these: realloc_bench times one realloc in 8"
    echo "(\`--sample-every\`) with clock_gettime around the call, the clock read (~20-40 ns) included."
    echo "latency.csv has the min-max over the runs."
  fi
  echo
  echo "## Columns"
  echo
  libinfo
  echo
  echo "## Commands"
  echo
  for b in $benches; do bench_cmd "$b"; echo "- $b: \`${CMD[*]#$HB_BINDIR/}\`$([ "$CMD_WHOLE" = 1 ] && echo ' (whole process)')"; done | sed "s|$HB_BINDIR/||g"
  if [ ${#HB_NOTES[@]} -gt 0 ]; then
    echo
    echo "## Notes"
    echo
    for n in "${HB_NOTES[@]}"; do echo "- $n"; done
  fi
  if [ -s "$out/failures.log" ]; then
    echo
    echo "## Failures"
    echo
    echo "See failures.log for the exact commands and stderr."
    echo
    grep -E '^(==|command:)' "$out/failures.log" | sed 's/^/    /'
  fi
} >"$md"

# ---- charts --------------------------------------------------------------------------
# dat_header: the first line of a chart's data file (the column names)
dat_header() {
  local col
  printf 'row'
  for col in "${HB_COLS[@]}"; do printf ' "%s"' "$col"; done
  printf '\n'
}

# plot TYPE FILE TITLE YLABEL: ratios vs the base column, one group per benchmark.
plot() {
  local kind=$1 file=$2 title=$3 ylabel=$4 dat=$out/${2%.png}.dat col b v bv
  {
    dat_header
    for b in $benches; do
      printf '"%s"' "$b"
      for col in "${HB_COLS[@]}"; do
        if [ "$kind" = ops ]; then v=${MOPS[$b|$col]}; bv=${MOPS[$b|$base]}; else v=${MRSS[$b|$col]}; bv=${MRSS[$b|$base]}; fi
        v=$(hb_ratio "$v" "$bv")
        printf ' %s' "${v:-NaN}"
      done
      printf '\n'
    done
  } >"$dat"
  {
    echo "set terminal pngcairo size $((nb > 12 ? 1400 + 80 * (nb - 12) : 1400)),640 font \"DejaVu Sans,11\" noenhanced"
    echo "set output '$out/$file'"
    hb_gp_bars "$dat" "$title" "$ylabel" "%.1f" "1 with lines dt 2 lw 1.5 lc rgb \"black\" title \"$base = 1.0\""
  } | gnuplot 2>>"$out/gnuplot.log"
}

# plot_latency FILE: p50 (top) and p99 (bottom) in ns, one group per operation.
plot_latency() {
  local file=$1 pct row col v
  for pct in 50 99; do
    {
      dat_header
      for row in $LATROWS; do
        printf '"%s"' "$row"
        for col in "${HB_COLS[@]}"; do
          if [ $pct = 50 ]; then v=${M50[$row|$col]}; else v=${M99[$row|$col]}; fi
          printf ' %s' "${v:-NaN}"
        done
        printf '\n'
      done
    } >"$out/latency_p$pct.dat"
  done
  {
    echo "set terminal pngcairo size 1400,900 font \"DejaVu Sans,11\" noenhanced"
    echo "set output '$out/$file'"
    echo "set multiplot layout 2,1"
    hb_gp_bars "$out/latency_p50.dat" "Sampled latency p50 (ns, median of runs; lower is better) - $profile, $stamp" "p50 ns" "%.0f"
    hb_gp_bars "$out/latency_p99.dat" "Sampled latency p99 (ns, median of runs; lower is better)" "p99 ns" "%.0f"
    echo "unset multiplot"
  } | gnuplot 2>>"$out/gnuplot.log"
}

if [ $charts = 1 ]; then
  if ! command -v gnuplot >/dev/null 2>&1; then hb_apt_install gnuplot-nox || true; fi
  if command -v gnuplot >/dev/null 2>&1; then
    plot ops throughput.png "Throughput vs $base (median ops/s ratio, higher is better) - $profile, $stamp" "ops/s relative to $base"
    plot rss peak_rss.png "Peak RSS vs $base (median ratio, lower is better) - $profile, $stamp" "peak RSS relative to $base"
    printf '\n![throughput](throughput.png)\n\n![peak RSS](peak_rss.png)\n' >>"$md"
    if [ -n "$LATROWS" ]; then
      plot_latency latency.png
      printf '\n![latency](latency.png)\n' >>"$md"
    fi
    [ -s "$out/gnuplot.log" ] || rm -f "$out/gnuplot.log"
  else
    hb_log "note: gnuplot not available (package gnuplot-nox); no charts"
  fi
fi

if [ $latest = 1 ] && [ "$out" != "$HB_ROOT/results/latest" ]; then
  mkdir -p "$HB_ROOT/results"
  rm -rf "$HB_ROOT/results/latest.tmp"
  cp -r "$out" "$HB_ROOT/results/latest.tmp" && rm -rf "$HB_ROOT/results/latest" &&
    mv "$HB_ROOT/results/latest.tmp" "$HB_ROOT/results/latest"
fi

# ---- stdout: the tables --------------------------------------------------------------
echo "## Throughput (median ops/s of $runs run(s); ratio vs $base, higher is better)"
echo
table ops
echo
echo "## Peak RSS (median of $runs run(s); ratio vs $base, lower is better)"
echo
table rss
if [ -n "$LATROWS" ]; then
  echo
  echo "## Latency (sampled operations; median of $runs run(s) of p50 / p99 / max in ns, lower is better)"
  echo
  lat_table
fi
for n in "${HB_NOTES[@]+"${HB_NOTES[@]}"}"; do echo; echo "note: $n"; done
if [ -s "$out/failures.log" ]; then
  echo
  echo "FAILURES (exact commands in $out/failures.log):"
  grep -E '^(==|command:)' "$out/failures.log"
fi
echo
echo "results: $out"
nfail=$(grep -c '^==' "$out/failures.log" 2>/dev/null || true)
[ "${nfail:-0}" = 0 ] || exit 3
exit 0
