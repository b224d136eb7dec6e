#!/usr/bin/env bash
# ace_sweep.sh — hakmem's ACE policies against the best static knob settings.
#
# Stage 1 (grid): each benchmark runs under a grid of static knob settings (the HAKMEM_*
# variables below, with HAKMEM_ACE_POLICY=static). The best setting of each benchmark
# is the one with the highest median ops/s; the best single setting is the one with the
# highest geomean over the benchmarks of (its ops/s / that benchmark's best).
# Stage 2 (policies): each benchmark runs with HAKMEM_ACE_POLICY=<policy> for each
# policy (default static, rules, decay, resize, ucb1) and with HAKMEM_ACE_ENABLED=0
# (column "ace-off"); everything is compared with the best static setting of the
# benchmark. See docs/BENCHMARKS.md ("ACE policy sweep").
#
# Every run goes through proc_sample (bench/proc_sample.c), which samples the program's
# RSS every 100 ms (-> RSS area under the curve, MiB*s) and the CPU time of its
# "hakmem-ace" thread (from /proc/PID/task/TID/schedstat, else stat utime+stime; the
# last sample before exit, so up to 100 ms of it may be missed). Peak RSS is time(1)'s
# max RSS as in compare.sh. The policy variable is only passed through the environment:
# a hakmem that does not know HAKMEM_ACE_POLICY warns on stderr and runs its defaults.
#
# Grids (every setting adds HAKMEM_ACE_POLICY=static; values accept K/M suffixes):
#   default    nothing changed (TLS_CACHE_BYTES 64K, TLS_CAP_MAX 256, REFILL_BATCH 32,
#              REMOTE_DRAIN_INTERVAL 64, SWEEP_INTERVAL 64, PURGE_DELAY 100 ms)
#   cache16k   TLS_CACHE_BYTES=16K                       small thread caches
#   cache256k  TLS_CACHE_BYTES=256K TLS_CAP_MAX=1024     big thread caches
#   batch16    REFILL_BATCH=16                           narrow refills
#   batch128   REFILL_BATCH=128                          wide refills
#   drain16    REMOTE_DRAIN_INTERVAL=16                  take remote frees back often
#   drain256   REMOTE_DRAIN_INTERVAL=256                 ... rarely
#   lean       TLS_CACHE_BYTES=16K REFILL_BATCH=16 SWEEP_INTERVAL=16 PURGE_DELAY=10
#              (hold little memory, give it back soon)
#   fat        TLS_CACHE_BYTES=256K TLS_CAP_MAX=1024 REFILL_BATCH=128
#              REMOTE_DRAIN_INTERVAL=256 SWEEP_INTERVAL=256 PURGE_DELAY=1000
#              (hold a lot, work in big batches)
# --grid full (default) runs all nine; --grid small runs default, cache256k, batch128, lean.
set -u -o pipefail
HB_PROG=ace_sweep.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_bench.sh"

usage() {
  cat <<EOF
usage: ace_sweep.sh [options]

Runs the benchmarks over a grid of static knob settings, picks the best static setting
per benchmark (median ops/s) and the best single setting (geomean of ratios), then runs
each ACE policy and ACE off, and prints a Markdown table of median ops/s, peak RSS, RSS
area under the curve (MiB*s) and ACE thread CPU, with ratios to the best static setting.
Progress ([k/N] ... time left ~M min) goes to stderr.

options:
  --runs N             repetitions per cell (default 3; smoke 1)
  --seconds S          duration of the timed benchmarks and of each phase of phases
                       (default 2: ACE starts 1 s into a run; smoke 0.2)
  --bench LIST         comma-separated benchmarks (default:
                       $(echo "$DEFAULT_BENCHES" | tr ' ' ','))
  --policies LIST      comma-separated policy columns (default: $(echo "$DEFAULT_POLICIES" | tr ' ' ','));
                       ace-off = HAKMEM_ACE_ENABLED=0, any other name = HAKMEM_ACE_POLICY=<name>
  --grid small|full    static settings to try (default full: 9 settings; small: 4)
  --smoke              1 run, tiny durations, small grid: checks that everything runs
  --threads N          threads for the multi-thread benchmarks (default 2)
  --out DIR            results folder (default results/sweep-<timestamp>/ under the repo)
  --hakmem PATH        hakmem shared library (default build/libhakmem.so under the repo)
  --bindir DIR         benchmark binaries (default build/bench, else a standalone build)
  --timeout S          kill a run after S seconds (default 60 smoke, 300 otherwise)
  --no-charts          skip the gnuplot PNGs
  -h, --help           show this text
EOF
}
hb_usage_error() { printf 'ace_sweep.sh: %s\n' "$*" >&2; usage >&2; exit 2; }

DEFAULT_BENCHES="micro-tight micro-batch micro-xthread larson fragment huge_ws realloc mid_mt phases"
KNOWN_BENCHES="$DEFAULT_BENCHES larson-tiny larson-mid larson-mixed"
DEFAULT_POLICIES="static rules decay resize ucb1 ace-off"

# grid_settings SIZE: one "name VAR=VAL ..." line per static setting (see the header).
grid_settings() {
  local P=HAKMEM_
  case $1 in
    full)
      echo "default"
      echo "cache16k ${P}TLS_CACHE_BYTES=16K"
      echo "cache256k ${P}TLS_CACHE_BYTES=256K ${P}TLS_CAP_MAX=1024"
      echo "batch16 ${P}REFILL_BATCH=16"
      echo "batch128 ${P}REFILL_BATCH=128"
      echo "drain16 ${P}REMOTE_DRAIN_INTERVAL=16"
      echo "drain256 ${P}REMOTE_DRAIN_INTERVAL=256"
      echo "lean ${P}TLS_CACHE_BYTES=16K ${P}REFILL_BATCH=16 ${P}SWEEP_INTERVAL=16 ${P}PURGE_DELAY=10"
      echo "fat ${P}TLS_CACHE_BYTES=256K ${P}TLS_CAP_MAX=1024 ${P}REFILL_BATCH=128 ${P}REMOTE_DRAIN_INTERVAL=256 ${P}SWEEP_INTERVAL=256 ${P}PURGE_DELAY=1000"
      ;;
    small)
      echo "default"
      echo "cache256k ${P}TLS_CACHE_BYTES=256K ${P}TLS_CAP_MAX=1024"
      echo "batch128 ${P}REFILL_BATCH=128"
      echo "lean ${P}TLS_CACHE_BYTES=16K ${P}REFILL_BATCH=16 ${P}SWEEP_INTERVAL=16 ${P}PURGE_DELAY=10"
      ;;
  esac
}

runs="" seconds="" benches="" policies="" grid="" smoke=0 threads=2 out="" bindir="" tmo="" charts=1
hakmem="$HB_ROOT/build/libhakmem.so"
need() { [ $# -ge 2 ] && [ -n "$2" ] || hb_usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) need "$@"; runs=$2; shift ;;
    --runs=*) runs=${1#*=} ;;
    --seconds) need "$@"; seconds=$2; shift ;;
    --seconds=*) seconds=${1#*=} ;;
    --bench | --benchmarks) need "$@"; benches=$2; shift ;;
    --bench=* | --benchmarks=*) benches=${1#*=} ;;
    --policies) need "$@"; policies=$2; shift ;;
    --policies=*) policies=${1#*=} ;;
    --grid) need "$@"; grid=$2; shift ;;
    --grid=*) grid=${1#*=} ;;
    --smoke) smoke=1 ;;
    --threads) need "$@"; threads=$2; shift ;;
    --threads=*) threads=${1#*=} ;;
    --out) need "$@"; out=$2; shift ;;
    --out=*) out=${1#*=} ;;
    --hakmem) need "$@"; hakmem=$2; shift ;;
    --hakmem=*) hakmem=${1#*=} ;;
    --bindir) need "$@"; bindir=$2; shift ;;
    --bindir=*) bindir=${1#*=} ;;
    --timeout) need "$@"; tmo=$2; shift ;;
    --timeout=*) tmo=${1#*=} ;;
    --no-charts) charts=0 ;;
    -h | --help) usage; exit 0 ;;
    *) hb_usage_error "unknown option '$1'" ;;
  esac
  shift
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v x="$1" 'BEGIN{exit !(x > 0)}'; }
if [ $smoke = 1 ]; then
  profile=smoke; : "${runs:=1}" "${seconds:=0.2}" "${grid:=small}" "${tmo:=60}"
else
  profile=quick; : "${runs:=3}" "${seconds:=2}" "${grid:=full}" "${tmo:=300}"
fi
is_uint "$runs" || hb_usage_error "--runs must be a positive integer, not '$runs'"
is_uint "$threads" || hb_usage_error "--threads must be a positive integer, not '$threads'"
is_uint "$tmo" || hb_usage_error "--timeout must be a positive integer, not '$tmo'"
is_num "$seconds" || hb_usage_error "--seconds must be a positive number, not '$seconds'"
case $grid in small | full) ;; *) hb_usage_error "--grid must be small or full, not '$grid'" ;; esac
benches=$(echo "${benches:-$DEFAULT_BENCHES}" | tr ',' ' ')
for b in $benches; do
  [[ " $KNOWN_BENCHES " == *" $b "* ]] || hb_usage_error "unknown benchmark '$b' (known: $KNOWN_BENCHES)"
done
policies=$(echo "${policies:-$DEFAULT_POLICIES}" | tr ',' ' ')
for p in $policies; do
  [[ $p =~ ^[a-z0-9_-]+$ ]] || hb_usage_error "bad policy name '$p'"
done
[ -n "$benches" ] || hb_usage_error "--bench is empty"
[ -n "$policies" ] || hb_usage_error "--policies is empty"
[ -f "$hakmem" ] || hb_die "$hakmem does not exist (build it: HAK_JOBS=1 bash scripts/build.sh, or pass --hakmem PATH)"
hak_lib="$(cd "$(dirname "$hakmem")" && pwd)/$(basename "$hakmem")"

hb_busy_warning
hb_ensure_tools
hb_ensure_bins "$bindir"

stamp=$(date +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$HB_ROOT/results/sweep-$stamp
mkdir -p "$out/logs" || hb_die "cannot create $out"
out=$(cd "$out" && pwd)

# Columns: the grid settings ("grid-<name>") and then the policies, all preloading hakmem.
GRID_COLS=() POL_COLS=()
declare -A SETTING_ENV
while read -r name vars; do
  env="HAKMEM_ACE_POLICY=static"
  for v in $vars; do env+=$'\n'"$v"; done
  hb_add_col "grid-$name" "$hak_lib" "$env"
  GRID_COLS+=("grid-$name")
  SETTING_ENV[grid-$name]=${vars:-"(defaults)"}
done < <(grid_settings "$grid")
for p in $policies; do
  hb_has_col "$p" && hb_usage_error "policy '$p' given twice"
  if [ "$p" = ace-off ]; then hb_add_col "$p" "$hak_lib" "HAKMEM_ACE_ENABLED=0"
  else hb_add_col "$p" "$hak_lib" "HAKMEM_ACE_POLICY=$p"; fi
  POL_COLS+=("$p")
done
hb_snapshot_libs "$out/lib"

nb=$(echo $benches | wc -w)
ng=${#GRID_COLS[@]} np=${#POL_COLS[@]}
nruns=$((runs * nb * (ng + np)))
hb_log "ace_sweep.sh: runs=$runs seconds=$seconds grid=$grid ($ng settings) policies: ${POL_COLS[*]}"
hb_log "benchmarks: $benches"
hb_log "binaries: $HB_BINDIR   results: $out"

raw=$out/raw.csv
echo "stage,benchmark,column,run,status,ops_per_sec,peak_rss_kb,rss_area_mib_s,ace_cpu_ms,wall_s,cpu_pct,load1,result" >"$raw"
: >"$out/failures.log"
declare -A OPS RSS AREA ACE NOK FAILS FIRSTCSV
t_start=$(date +%s.%N)
k_run=0
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# run_stage NAME COLUMN...: every benchmark with every column, round-robin inside each
# repetition with the starting column rotated (as compare.sh does).
run_stage() {
  local stage=$1 r b k ci col logp key n sample
  shift
  local cols=("$@")
  n=${#cols[@]}
  for ((r = 1; r <= runs; r++)); do
    for b in $benches; do
      for ((k = 0; k < n; k++)); do
        col=${cols[$(((k + r - 1) % n))]}
        ci=$(hb_col_index "$col")
        hb_bench_cmd "$b" "$profile" "$seconds" "$threads"
        logp=$out/logs/$b.$col.r$r
        [ "$b" = phases ] && CMD+=(--rss-csv "$logp.phases.csv")
        CMD=("$HB_BINDIR/proc_sample" --csv "$logp.rss.csv" -- "${CMD[@]}")
        hb_run "$ci" "$tmo" "$logp" "${CMD[@]}"
        key="$b|$col"
        sample=$(grep '^SAMPLE ' "$logp.out" 2>/dev/null | tail -n 1)
        local area ace speak
        area=$(printf '%s\n' "$sample" | tr ' ' '\n' | sed -n 's/^rss_area_mib_s=//p')
        ace=$(printf '%s\n' "$sample" | tr ' ' '\n' | sed -n 's/^ace_cpu_ms=//p')
        speak=$(printf '%s\n' "$sample" | tr ' ' '\n' | sed -n 's/^peak_rss_kb=//p')
        [ -n "$RUN_RSS_KB" ] || RUN_RSS_KB=$speak
        if [ "$RUN_STATUS" = ok ]; then
          OPS[$key]="${OPS[$key]:-} $RUN_OPS"
          RSS[$key]="${RSS[$key]:-} $RUN_RSS_KB"
          AREA[$key]="${AREA[$key]:-} $area"
          ACE[$key]="${ACE[$key]:-} $ace"
          NOK[$key]=$((${NOK[$key]:-0} + 1))
          [ -n "${FIRSTCSV[$key]:-}" ] || [ ! -s "$logp.phases.csv" ] || FIRSTCSV[$key]=$logp.phases.csv
          rm -f "$logp.err"
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
        printf '%s,%s,%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,"%s"\n' "$stage" "$b" "$col" "$r" "$RUN_STATUS" "$RUN_OPS" \
          "$RUN_RSS_KB" "$area" "$ace" "$RUN_SECS" "$RUN_CPU" "$RUN_LOAD" "$(printf '%s' "$RUN_LINE" | sed 's/"/""/g')" >>"$raw"
        k_run=$((k_run + 1))
        printf '[%*d/%d] %-6s run %d/%d %-13s %-15s %10s ops/s %9s KiB  ace %6s ms  %-10s %6ss  load %-5s %s\n' \
          ${#nruns} "$k_run" "$nruns" "$stage" "$r" "$runs" "$b" "$col" "$(hb_human "$RUN_OPS")" "${RUN_RSS_KB:--}" \
          "${ace:--}" "$RUN_STATUS" "$RUN_SECS" "$RUN_LOAD" \
          "$(hb_time_left "$k_run" "$nruns" "$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")" >&2
      done
    done
  done
}

# medians KEY...: fill MOPS MRSS MAREA MACE for the given bench|column keys
declare -A MOPS MRSS MAREA MACE
medians() {
  local key
  for key in "$@"; do
    MOPS[$key]=$(hb_median ${OPS[$key]:-})
    MRSS[$key]=$(hb_median ${RSS[$key]:-})
    MAREA[$key]=$(printf '%s\n' ${AREA[$key]:-} | awk 'NF' | sort -g | awk '{ v[n++] = $1 } END { if (n) printf "%.1f\n", n % 2 ? v[(n-1)/2] : (v[n/2-1] + v[n/2]) / 2 }')
    MACE[$key]=$(printf '%s\n' ${ACE[$key]:-} | awk 'NF' | sort -g | awk '{ v[n++] = $1 } END { if (n) printf "%.1f\n", n % 2 ? v[(n-1)/2] : (v[n/2-1] + v[n/2]) / 2 }')
  done
}

# ---- stage 1: the static grid -----------------------------------------------------------
run_stage grid "${GRID_COLS[@]}"
keys=()
for b in $benches; do for c in "${GRID_COLS[@]}"; do keys+=("$b|$c"); done; done
medians "${keys[@]}"

declare -A BEST
for b in $benches; do
  best="" bv=0
  for c in "${GRID_COLS[@]}"; do
    v=${MOPS[$b|$c]}
    [ -n "$v" ] && awk -v a="$v" -v b="$bv" 'BEGIN { exit !(a > b) }' && { best=$c; bv=$v; }
  done
  BEST[$b]=$best
done
# best single setting: highest geomean of ops / best ops over the benchmarks; a setting
# that failed on a benchmark where another passed is not a candidate
single="" single_gm=0
declare -A GRID_GM
for c in "${GRID_COLS[@]}"; do
  rs=() ok=1
  for b in $benches; do
    [ -n "${BEST[$b]}" ] || continue
    r=$(hb_ratio "${MOPS[$b|$c]}" "${MOPS[$b|${BEST[$b]}]}")
    [ -n "$r" ] || { ok=0; break; }
    rs+=("$r")
  done
  [ $ok = 1 ] && [ ${#rs[@]} -gt 0 ] || continue
  gm=$(hb_geomean "${rs[@]}")
  GRID_GM[$c]=$gm
  awk -v a="$gm" -v b="$single_gm" 'BEGIN { exit !(a > b) }' && { single=$c; single_gm=$gm; }
done
for b in $benches; do hb_log "best static setting for $b: ${BEST[$b]:-none} (${MOPS[$b|${BEST[$b]:-x}]:-})"; done
hb_log "best single static setting: ${single:-none} (geomean ${single_gm}x of the per-benchmark best)"

# ---- stage 2: the policies --------------------------------------------------------------
run_stage policy "${POL_COLS[@]}"
keys=()
for b in $benches; do for c in "${POL_COLS[@]}"; do keys+=("$b|$c"); done; done
medians "${keys[@]}"
t_total=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

# ---- tables -----------------------------------------------------------------------------
# the reference (best static) of a benchmark for metric M (ops rss area)
ref() {
  local m=$1 b=$2 c=${BEST[$2]:-}
  [ -n "$c" ] || return 0
  case $m in ops) echo "${MOPS[$b|$c]}" ;; rss) echo "${MRSS[$b|$c]}" ;; area) echo "${MAREA[$b|$c]}" ;; esac
}
val() {
  case $1 in ops) echo "${MOPS[$2|$3]}" ;; rss) echo "${MRSS[$2|$3]}" ;; area) echo "${MAREA[$2|$3]}" ;; ace) echo "${MACE[$2|$3]}" ;; esac
}
ratio_txt() { local r; r=$(hb_ratio "$1" "$2"); [ -n "$r" ] && echo "${r}x" || echo "-"; }
mib() { awk -v x="$1" 'BEGIN { if (x == "") print "-"; else printf "%.1f MiB\n", x / 1024 }'; }

# row BENCH COLUMN LABEL: one line of the policy table
row() {
  local b=$1 c=$2 label=$3 key="$1|$2" o r a ace
  o=$(val ops "$b" "$c") r=$(val rss "$b" "$c") a=$(val area "$b" "$c") ace=$(val ace "$b" "$c")
  if [ -z "$o" ]; then
    printf '| %s | %s | FAIL (%s) | | | | | | |\n' "$b" "$label" "${FAILS[$key]%% *}"
    return
  fi
  local note=""
  [ "${NOK[$key]:-0}" -lt "$runs" ] && note=" [${NOK[$key]}/$runs ok]"
  printf '| %s | %s | %s%s | %s | %s | %s | %s | %s | %s |\n' "$b" "$label" "$(hb_human "$o")" "$note" \
    "$(ratio_txt "$o" "$(ref ops "$b")")" "$(mib "$r")" "$(ratio_txt "$r" "$(ref rss "$b")")" \
    "${a:--}" "$(ratio_txt "$a" "$(ref area "$b")")" "${ace:--} ms"
}

# geo METRIC COLUMN|best-single: geomean over the benchmarks of the column's ratio
geo() {
  local m=$1 c=$2 b cc rs=()
  for b in $benches; do
    cc=$c
    [ "$c" = best-single ] && cc=$single
    [ -n "$cc" ] || continue
    rs+=("$(hb_ratio "$(val "$m" "$b" "$cc")" "$(ref "$m" "$b")")")
  done
  local g
  g=$(hb_geomean "${rs[@]+"${rs[@]}"}")
  [ -n "$g" ] && echo "${g}x" || echo "-"
}
ace_total() {
  local c=$1 b
  for b in $benches; do val ace "$b" "$c"; done | awk 'NF { s += $1; n++ } END { if (n) printf "%.1f ms\n", s; else print "-" }'
}

policy_table() {
  echo "| benchmark | column | ops/s | vs best static | peak RSS | vs best | RSS area (MiB*s) | vs best | ACE CPU |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  local b c
  for b in $benches; do
    if [ -n "${BEST[$b]}" ]; then row "$b" "${BEST[$b]}" "best static: ${BEST[$b]#grid-}"; fi
    if [ -n "$single" ] && [ "$single" != "${BEST[$b]}" ]; then row "$b" "$single" "best single: ${single#grid-}"; fi
    for c in "${POL_COLS[@]}"; do row "$b" "$c" "$c"; done
  done
  if [ -n "$single" ]; then
    printf '| *geomean* | best single: %s | | %s | | %s | | %s | %s |\n' "${single#grid-}" "$(geo ops best-single)" \
      "$(geo rss best-single)" "$(geo area best-single)" "$(ace_total "$single")"
  fi
  for c in "${POL_COLS[@]}"; do
    printf '| *geomean* | %s | | %s | | %s | | %s | %s |\n' "$c" "$(geo ops "$c")" "$(geo rss "$c")" "$(geo area "$c")" "$(ace_total "$c")"
  done
}

grid_table() {
  local b c
  printf '| setting |'
  for b in $benches; do printf ' %s |' "$b"; done
  printf ' geomean |\n|---|'
  for b in $benches; do printf -- '---:|'; done
  printf -- '---:|\n'
  for c in "${GRID_COLS[@]}"; do
    printf '| %s |' "${c#grid-}"
    for b in $benches; do
      local v=${MOPS[$b|$c]}
      if [ -z "$v" ]; then printf ' FAIL |'; else printf ' %s (%s) |' "$(hb_human "$v")" "$(ratio_txt "$v" "$(ref ops "$b")")"; fi
    done
    printf ' %s |\n' "${GRID_GM[$c]:+${GRID_GM[$c]}x}"
  done
}

summary=$out/summary.csv
echo "benchmark,column,env,runs_ok,runs,median_ops_per_sec,median_peak_rss_kb,median_rss_area_mib_s,median_ace_cpu_ms,ops_ratio_vs_best_static,rss_ratio_vs_best_static,area_ratio_vs_best_static,best_static,failures" >"$summary"
for b in $benches; do
  for c in "${GRID_COLS[@]}" "${POL_COLS[@]}"; do
    ci=$(hb_col_index "$c")
    echo "$b,$c,\"$(echo ${HB_COL_ENV[$ci]})\",${NOK[$b|$c]:-0},$runs,${MOPS[$b|$c]},${MRSS[$b|$c]},${MAREA[$b|$c]},${MACE[$b|$c]},$(hb_ratio "${MOPS[$b|$c]}" "$(ref ops "$b")"),$(hb_ratio "${MRSS[$b|$c]}" "$(ref rss "$b")"),$(hb_ratio "${MAREA[$b|$c]}" "$(ref area "$b")"),${BEST[$b]#grid-},${FAILS[$b|$c]:-}" >>"$summary"
  done
done

md=$out/summary.md
{
  echo "# ACE policy sweep ($stamp)"
  echo
  echo "- host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  echo "- repo commit: $(git -C "$HB_ROOT" rev-parse --short HEAD 2>/dev/null || echo none); hakmem: $hak_lib"
  echo "- runs per cell: $runs (median); timed runs and phases: ${seconds}s; threads: $threads; grid: $grid"
  echo "- load average at start: $load_start; wall time: ${t_total}s"
  echo "- peak RSS: $([ -n "$HB_TIME" ] && echo 'max RSS from /usr/bin/time -f %M' || echo 'sampled every 100 ms');"
  echo "  RSS area: /proc/PID/statm every 100 ms, each sample held until the next (MiB*s);"
  echo "  ACE CPU: the hakmem-ace thread's CPU time at the last sample before exit (median of the runs)"
  echo
  echo "## Static grid (median ops/s; ratio vs the best setting of each benchmark)"
  echo
  grid_table
  echo
  echo "Settings (each with HAKMEM_ACE_POLICY=static):"
  echo
  for c in "${GRID_COLS[@]}"; do echo "- ${c#grid-}: ${SETTING_ENV[$c]}"; done
  echo
  echo "Best single setting: ${single#grid-} (geomean ${single_gm}x of the per-benchmark best)."
  echo
  echo "## Policies vs the best static setting of each benchmark"
  echo
  policy_table
  echo
  echo "## Commands"
  echo
  for b in $benches; do hb_bench_cmd "$b" "$profile" "$seconds" "$threads"; echo "- $b: \`proc_sample -- ${CMD[*]}\`"; done | sed "s|$HB_BINDIR/||g"
  if [ -s "$out/failures.log" ]; then
    echo
    echo "## Failures"
    echo
    grep -E '^(==|command:)' "$out/failures.log" | sed 's/^/    /'
  fi
} >"$md"

# ---- charts -----------------------------------------------------------------------------
if [ $charts = 1 ]; then
  if ! command -v gnuplot >/dev/null 2>&1; then hb_apt_install gnuplot-nox || true; fi
  if command -v gnuplot >/dev/null 2>&1; then
    dat=$out/throughput.dat
    {
      printf 'row'
      [ -n "$single" ] && printf ' "best-single:%s"' "${single#grid-}"
      for c in "${POL_COLS[@]}"; do printf ' "%s"' "$c"; done
      printf '\n'
      for b in $benches; do
        printf '"%s"' "$b"
        if [ -n "$single" ]; then v=$(hb_ratio "${MOPS[$b|$single]}" "$(ref ops "$b")"); printf ' %s' "${v:-NaN}"; fi
        for c in "${POL_COLS[@]}"; do v=$(hb_ratio "${MOPS[$b|$c]}" "$(ref ops "$b")"); printf ' %s' "${v:-NaN}"; done
        printf '\n'
      done
    } >"$dat"
    {
      echo "set terminal pngcairo size 1400,640 font \"DejaVu Sans,11\" noenhanced"
      echo "set output '$out/throughput.png'"
      hb_gp_bars "$dat" "Throughput vs the best static setting of each benchmark (median ops/s ratio, higher is better) - $stamp" \
        "ops/s relative to best static" "%.2f" "1 with lines dt 2 lw 1.5 lc rgb \"black\" title \"best static = 1.0\""
    } | gnuplot 2>>"$out/gnuplot.log"
    printf '\n![throughput](throughput.png)\n' >>"$md"
    # RSS over time of phases (the first passing run of each column), with the best static
    if [[ " $benches " == *" phases "* ]]; then
      plots=()
      for c in ${BEST[phases]:-} "${POL_COLS[@]}"; do
        f=${FIRSTCSV[phases|$c]:-}
        [ -n "$f" ] || continue
        t=$c
        [ "$c" = "${BEST[phases]:-}" ] && t="best static: ${c#grid-}"
        plots+=("'$f' using 1:(\$2/1048576) with lines lw 2 title '$t'")
      done
      if [ ${#plots[@]} -gt 0 ]; then
        gnuplot <<GP 2>>"$out/gnuplot.log"
set terminal pngcairo size 1400,640 font "DejaVu Sans,11" noenhanced
set output '$out/rss_phases.png'
set title "phases: RSS over time (first run of each column; phases prodcons, hugews, churn, idle in turn) - $stamp"
set datafile separator ','
set key outside right top
set grid
set xlabel 'seconds'
set ylabel 'RSS (MiB)'
plot $(IFS=,; echo "${plots[*]}")
GP
        printf '\n![RSS over time in phases](rss_phases.png)\n' >>"$md"
      fi
    fi
    [ -s "$out/gnuplot.log" ] || rm -f "$out/gnuplot.log"
  else
    hb_log "note: gnuplot not available (package gnuplot-nox); no charts"
  fi
fi

# ---- stdout -----------------------------------------------------------------------------
echo "## ACE policies vs the best static setting ($runs run(s) per cell, ${seconds}s runs, grid $grid)"
echo
policy_table
echo
echo "Best static setting per benchmark: $(for b in $benches; do printf '%s=%s ' "$b" "${BEST[$b]#grid-}"; done)"
echo "Best single static setting: ${single#grid-} (geomean ${single_gm}x of the per-benchmark best); grid table in summary.md"
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
