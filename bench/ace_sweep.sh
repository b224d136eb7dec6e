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
# By default the two stages run as one: in each repetition every benchmark runs every
# grid setting and every policy, round-robin, so a change of the machine's load during
# the sweep hits the static settings and the policies alike (run one after the other, a
# busier second half made every policy look 0.4-0.6x of the grid). --staged runs the
# grid first and the policies after it, as before.
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
#   huge       HUGE_PAGES=all                            transparent huge pages for every
#              segment and large block from the start (ACE's auto mode decides them;
#              static settings would otherwise never have them)
# --grid full (default) runs all ten; --grid small runs default, cache256k, batch128, lean.
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
  --grid small|full    static settings to try (default full: 10 settings; small: 4)
  --smoke              1 run, tiny durations, small grid: checks that everything runs
  --threads N          threads for the multi-thread benchmarks (default 2)
  --out DIR            results folder (default results/sweep-<timestamp>/ under the repo)
  --hakmem PATH        hakmem shared library (default build/libhakmem.so under the repo)
  --bindir DIR         benchmark binaries (default build/bench, else a standalone build)
  --timeout S          kill a run after S seconds (default 60 smoke, 300 otherwise)
  --no-charts          skip the gnuplot PNGs
  --staged             run the whole grid first, then the policies (default: grid
                       settings and policies interleaved in every repetition)
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
      echo "huge ${P}HUGE_PAGES=all"
      ;;
    small)
      echo "default"
      echo "cache256k ${P}TLS_CACHE_BYTES=256K ${P}TLS_CAP_MAX=1024"
      echo "batch128 ${P}REFILL_BATCH=128"
      echo "lean ${P}TLS_CACHE_BYTES=16K ${P}REFILL_BATCH=16 ${P}SWEEP_INTERVAL=16 ${P}PURGE_DELAY=10"
      ;;
  esac
}

runs="" seconds="" benches="" policies="" grid="" smoke=0 threads=2 out="" bindir="" tmo="" charts=1 staged=0
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
    --staged) staged=1 ;;
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

# summarize: one awk pass over raw.csv (the shell would need thousands of forks) that
# finds the best static setting of each benchmark and the best single setting, and
# writes best.txt ("best BENCH COLUMN" lines, "single COLUMN GEOMEAN"), grid.md (the
# static grid table), policy.md (the policy table), summary.csv and throughput.dat.
summarize() {
  awk -F, -v benches="$benches" -v gridcols="${GRID_COLS[*]}" -v polcols="${POL_COLS[*]}" -v runs="$runs" \
    -v out="$out" -v envs="$col_envs" '
    function median(list,   v, n, i, j, x) {
      n = split(list, v, " ")
      if (n == 0) return ""
      for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      return sprintf("%.10g", n % 2 ? v[(n + 1) / 2] + 0 : (v[n / 2] + v[n / 2 + 1]) / 2)
    }
    function human(x) {
      if (x == "") return "-"
      x += 0
      if (x >= 1e9) return sprintf("%.2fG", x / 1e9); if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
      if (x >= 1e3) return sprintf("%.1fk", x / 1e3); return sprintf("%.0f", x)
    }
    function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "" : sprintf("%.2f", a / b) }
    function rtxt(a, b,   r) { r = ratio(a, b); return r == "" ? "-" : r "x" }
    function mib(x) { return x == "" ? "-" : sprintf("%.1f MiB", x / 1024) }
    function short(c) { sub(/^grid-/, "", c); return c }
    function val(m, b, c) { return m == "ops" ? MOPS[b "|" c] : m == "rss" ? MRSS[b "|" c] : m == "area" ? MAREA[b "|" c] : MACE[b "|" c] }
    function ref(m, b) { return BEST[b] == "" ? "" : val(m, b, BEST[b]) }
    function geo(m, c,   i, s, n, r) {
      s = 0; n = 0
      for (i = 1; i <= nb; i++) { r = ratio(val(m, B[i], c), ref(m, B[i])); if (r != "" && r + 0 > 0) { s += log(r); n++ } }
      return n ? sprintf("%.2fx", exp(s / n)) : "-"
    }
    function acesum(c,   i, s, n, v) {
      s = 0; n = 0
      for (i = 1; i <= nb; i++) { v = MACE[B[i] "|" c]; if (v != "") { s += v; n++ } }
      return n ? sprintf("%.1f ms", s) : "-"
    }
    function row(b, c, label,   k, o, note) {
      k = b "|" c; o = MOPS[k]
      if (o == "") { f = FAILS[k]; sub(/ .*/, "", f); printf "| %s | %s | FAIL (%s) | | | | | | |\n", b, label, f > POL; return }
      note = NOK[k] < runs ? sprintf(" [%d/%d ok]", NOK[k], runs) : ""
      printf "| %s | %s | %s%s | %s | %s | %s | %s | %s | %s ms |\n", b, label, human(o), note, rtxt(o, ref("ops", b)),
        mib(MRSS[k]), rtxt(MRSS[k], ref("rss", b)), (MAREA[k] == "" ? "-" : sprintf("%.1f", MAREA[k])),
        rtxt(MAREA[k], ref("area", b)), (MACE[k] == "" ? "-" : sprintf("%.1f", MACE[k])) > POL
    }
    BEGIN { nb = split(benches, B, " "); ng = split(gridcols, G, " "); np = split(polcols, P, " ")
      n = split(envs, E, ";"); for (i = 1; i <= n; i++) { split(E[i], kv, "="); ENV[kv[1]] = substr(E[i], length(kv[1]) + 2) }
      POL = out "/policy.md"; GRID = out "/grid.md" }
    NR > 1 { k = $2 "|" $3
      if ($5 == "ok") { OPS[k] = OPS[k] " " $6; RSS[k] = RSS[k] " " $7; if ($8 != "") AREA[k] = AREA[k] " " $8
        if ($9 != "") ACE[k] = ACE[k] " " $9; NOK[k]++ }
      else FAILS[k] = FAILS[k] (FAILS[k] == "" ? "" : " ") $5 }
    END {
      for (k in NOK) { MOPS[k] = median(OPS[k]); MRSS[k] = median(RSS[k]); MAREA[k] = median(AREA[k]); MACE[k] = median(ACE[k]) }
      for (i = 1; i <= nb; i++) {
        b = B[i]; BEST[b] = ""; bv = 0
        for (j = 1; j <= ng; j++) { v = MOPS[b "|" G[j]]; if (v != "" && v + 0 > bv) { bv = v + 0; BEST[b] = G[j] } }
        print "best", b, (BEST[b] == "" ? "-" : BEST[b]) > (out "/best.txt")
      }
      single = ""; sgm = 0
      for (j = 1; j <= ng; j++) {
        s = 0; n = 0; ok = 1
        for (i = 1; i <= nb; i++) { if (BEST[B[i]] == "") continue; r = ratio(MOPS[B[i] "|" G[j]], ref("ops", B[i]))
          if (r == "" || r + 0 <= 0) { ok = 0; break } s += log(r); n++ }
        GM[G[j]] = ok && n ? exp(s / n) : ""
        if (GM[G[j]] != "" && GM[G[j]] > sgm) { sgm = GM[G[j]]; single = G[j] }
      }
      print "single", (single == "" ? "-" : single), sprintf("%.2f", sgm) > (out "/best.txt")
      if (np == 0) exit
      # the static grid table
      printf "| setting |" > GRID; for (i = 1; i <= nb; i++) printf " %s |", B[i] > GRID; printf " geomean |\n|---|" > GRID
      for (i = 1; i <= nb; i++) printf "---:|" > GRID; printf "---:|\n" > GRID
      for (j = 1; j <= ng; j++) {
        printf "| %s |", short(G[j]) > GRID
        for (i = 1; i <= nb; i++) { v = MOPS[B[i] "|" G[j]]; if (v == "") printf " FAIL |" > GRID; else printf " %s (%s) |", human(v), rtxt(v, ref("ops", B[i])) > GRID }
        printf " %s |\n", (GM[G[j]] == "" ? "-" : sprintf("%.2fx", GM[G[j]])) > GRID
      }
      # the policy table
      print "| benchmark | column | ops/s | vs best static | peak RSS | vs best | RSS area (MiB*s) | vs best | ACE CPU |" > POL
      print "|---|---|---:|---:|---:|---:|---:|---:|---:|" > POL
      for (i = 1; i <= nb; i++) {
        b = B[i]
        if (BEST[b] != "") row(b, BEST[b], "best static: " short(BEST[b]))
        if (single != "" && single != BEST[b]) row(b, single, "best single: " short(single))
        for (j = 1; j <= np; j++) row(b, P[j], P[j])
      }
      if (single != "")
        printf "| *geomean* | best single: %s | | %s | | %s | | %s | %s |\n", short(single), geo("ops", single), geo("rss", single), geo("area", single), acesum(single) > POL
      for (j = 1; j <= np; j++)
        printf "| *geomean* | %s | | %s | | %s | | %s | %s |\n", P[j], geo("ops", P[j]), geo("rss", P[j]), geo("area", P[j]), acesum(P[j]) > POL
      # summary.csv
      S = out "/summary.csv"
      print "benchmark,column,env,runs_ok,runs,median_ops_per_sec,median_peak_rss_kb,median_rss_area_mib_s,median_ace_cpu_ms,ops_ratio_vs_best_static,rss_ratio_vs_best_static,area_ratio_vs_best_static,best_static,failures" > S
      for (i = 1; i <= nb; i++) {
        b = B[i]
        for (j = 1; j <= ng + np; j++) { c = j <= ng ? G[j] : P[j - ng]; k = b "|" c
          printf "%s,%s,\"%s\",%d,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", b, c, ENV[c], NOK[k], runs, MOPS[k], MRSS[k], MAREA[k], MACE[k],
            ratio(MOPS[k], ref("ops", b)), ratio(MRSS[k], ref("rss", b)), ratio(MAREA[k], ref("area", b)), short(BEST[b]), FAILS[k] > S }
      }
      # throughput.dat for the chart: ratio to the best static per benchmark and column
      D = out "/throughput.dat"
      printf "row" > D; if (single != "") printf " \"best-single:%s\"", short(single) > D
      for (j = 1; j <= np; j++) printf " \"%s\"", P[j] > D; printf "\n" > D
      for (i = 1; i <= nb; i++) {
        b = B[i]; printf "\"%s\"", b > D
        if (single != "") { r = ratio(MOPS[b "|" single], ref("ops", b)); printf " %s", (r == "" ? "NaN" : r) > D }
        for (j = 1; j <= np; j++) { r = ratio(MOPS[b "|" P[j]], ref("ops", b)); printf " %s", (r == "" ? "NaN" : r) > D }
        printf "\n" > D
      }
    }' "$raw"
}

# read_best: BEST[bench], single and single_gm from best.txt
declare -A BEST
read_best() {
  local kind x y
  single="" single_gm=""
  while read -r kind x y; do
    case $kind in
      best) [ "$y" = - ] && y=""; BEST[$x]=$y ;;
      single) [ "$x" = - ] && x=""; single=$x single_gm=$y ;;
    esac
  done <"$out/best.txt"
}

# col_envs: "column=VAR=VAL VAR=VAL;..." for summary.csv
col_envs=""
for i in "${!HB_COLS[@]}"; do col_envs+="${HB_COLS[$i]}=$(echo ${HB_COL_ENV[$i]});"; done

if [ $staged = 1 ]; then
  # ---- stage 1: the static grid ---------------------------------------------------------
  run_stage grid "${GRID_COLS[@]}"
  POL_SAVE=("${POL_COLS[@]}")
  POL_COLS=()
  summarize
  POL_COLS=("${POL_SAVE[@]}")
  read_best
  for b in $benches; do hb_log "best static setting for $b: ${BEST[$b]:-none}"; done
  hb_log "best single static setting: ${single:-none} (geomean ${single_gm}x of the per-benchmark best)"
  # ---- stage 2: the policies ------------------------------------------------------------
  run_stage policy "${POL_COLS[@]}"
else
  # ---- both stages in one: grid settings and policies interleaved ------------------------
  run_stage both "${GRID_COLS[@]}" "${POL_COLS[@]}"
fi
t_total=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
summarize
read_best

md=$out/summary.md
{
  echo "# ACE policy sweep ($stamp)"
  echo
  echo "- host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  echo "- repo commit: $(git -C "$HB_ROOT" rev-parse --short HEAD 2>/dev/null || echo none); hakmem: $hak_lib"
  echo "- runs per cell: $runs (median); timed runs and phases: ${seconds}s; threads: $threads; grid: $grid"
  echo "- load average at start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg); wall time: ${t_total}s"
  echo "- peak RSS: $([ -n "$HB_TIME" ] && echo 'max RSS from /usr/bin/time -f %M' || echo "the program's own VmHWM");"
  echo "  RSS area: /proc/PID/statm every 100 ms, each sample held until the next (MiB*s);"
  echo "  ACE CPU: the hakmem-ace thread's CPU time at the last sample before exit (median of the runs)"
  echo
  echo "## Static grid (median ops/s; ratio vs the best setting of each benchmark)"
  echo
  cat "$out/grid.md"
  echo
  echo "Settings (each with HAKMEM_ACE_POLICY=static):"
  echo
  for c in "${GRID_COLS[@]}"; do echo "- ${c#grid-}: ${SETTING_ENV[$c]}"; done
  echo
  echo "Best single setting: ${single#grid-} (geomean ${single_gm}x of the per-benchmark best)."
  echo
  echo "## Policies vs the best static setting of each benchmark"
  echo
  cat "$out/policy.md"
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
    dat=$out/throughput.dat   # written by summarize
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
        # phase boundaries (the t_start of each phase line of the first curve's run): a
        # dotted line and the phase's name
        f=${FIRSTCSV[phases|${BEST[phases]:-}]:-${FIRSTCSV[phases|${POL_COLS[0]}]:-}}
        marks=$(awk '/^phase / { t = ""; k = ""; for (i = 1; i <= NF; i++) { if ($i ~ /^t_start=/) t = substr($i, 9); if ($i ~ /^kind=/) k = substr($i, 6) }
            if (t != "") printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 3 lc rgb \"#999999\"\nset label \"%s\" at %s, graph 0.97 left offset 0.3,0 font \",9\" tc rgb \"#666666\"\n", t, t, k, t }' \
          "${f%.phases.csv}.out" 2>/dev/null)
        gnuplot <<GP 2>>"$out/gnuplot.log"
set terminal pngcairo size 1400,640 font "DejaVu Sans,11" noenhanced
set output '$out/rss_phases.png'
set title "phases: RSS over time (first run of each column; dotted: the phase starts of the first curve) - $stamp"
set datafile separator ','
set key outside right top
set grid
set xlabel 'seconds'
set ylabel 'RSS (MiB)'
$marks
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
cat "$out/policy.md"
echo
echo "Best static setting per benchmark: $(for b in $benches; do printf '%s=%s ' "$b" "${BEST[$b]:+${BEST[$b]#grid-}}"; done)"
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
