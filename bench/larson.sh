#!/usr/bin/env bash
# larson.sh — the unified Larson runner: profiles x thread counts x allocators,
# median ops/s with its min-max and ratio vs mimalloc as a Markdown table on stdout;
# progress ([k/N] and the time left) on stderr. See docs/BENCHMARKS.md.
set -u -o pipefail
HB_PROG=larson.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_bench.sh"

PROFILES="tiny small churn mid mixed fragment"

usage() {
  cat <<EOF
usage: larson.sh [options]

Runs the larson benchmark (bench/larson.c) for each profile, thread count and allocator
(allocators round-robin inside each repetition) and prints a Markdown table of median
ops/s (malloc+free calls per second) with the ratio vs mimalloc and, beside it, the
lowest and highest of the runs.

profiles (--profile, comma-separated, or 'all'); every profile but churn hands a lane
to a new thread after 500,000 replacements and starts from a shuffled warm-up:
  tiny       8 - 128 B uniform, 1000 slots per thread
  small      8 - 1024 B uniform, 5000 slots per thread (the reference setting)
  churn      8 - 1024 B uniform, 1000 slots, a new thread every 20,000 replacements, no
             warm-up (the old default: mostly thread start and exit)
  mid        1 - 32 KiB uniform, 1000 slots per thread
  mixed      8 B - 256 KiB log-uniform, 1000 slots per thread
  fragment   8 B - 64 KiB log-uniform, 10000 slots per thread (fragments memory)

options:
  --profile LIST       profiles to run (default small)
  --threads LIST       thread counts, comma-separated (default 1,2)
  --seconds S          seconds per run (default 2)
  --runs N             repetitions; the median is reported (default 3)
  --allocators LIST    columns among glibc,mimalloc,jemalloc,tcmalloc,hakmem (default all;
                       hakmem is skipped with a note if not built)
  --hakmem PATH        hakmem shared library (default build/libhakmem.so under the repo)
  --extra SPEC         extra column, repeatable: NAME[@BASE]:VAR=VAL[,VAR=VAL...]
                       (BASE defaults to hakmem), e.g. 'hakmem-ace-off:HAKMEM_ACE_ENABLED=0'
  --bindir DIR         benchmark binaries (default build/bench, else build-bench/bench)
  --csv FILE           also write the per-run results as CSV
  --timeout S          kill a run after S seconds (default 120)
  -h, --help           show this text
EOF
}
hb_usage_error() { printf 'larson.sh: %s\n' "$*" >&2; usage >&2; exit 2; }

profiles=small threads_list=1,2 seconds=2 runs=3 allocs="" allocs_explicit=0
hakmem="$HB_ROOT/build/libhakmem.so" hakmem_explicit=0 extras=() bindir="" csv="" tmo=120

need() { [ $# -ge 2 ] && [ -n "$2" ] || hb_usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --profile | --profiles) need "$@"; profiles=$2; shift ;;
    --profile=* | --profiles=*) profiles=${1#*=} ;;
    --threads) need "$@"; threads_list=$2; shift ;;
    --threads=*) threads_list=${1#*=} ;;
    --seconds) need "$@"; seconds=$2; shift ;;
    --seconds=*) seconds=${1#*=} ;;
    --runs) need "$@"; runs=$2; shift ;;
    --runs=*) runs=${1#*=} ;;
    --allocators) need "$@"; allocs=$2; allocs_explicit=1; shift ;;
    --allocators=*) allocs=${1#*=}; allocs_explicit=1 ;;
    --hakmem) need "$@"; hakmem=$2; hakmem_explicit=1; shift ;;
    --hakmem=*) hakmem=${1#*=}; hakmem_explicit=1 ;;
    --extra) need "$@"; extras+=("$2"); shift ;;
    --extra=*) extras+=("${1#*=}") ;;
    --bindir) need "$@"; bindir=$2; shift ;;
    --bindir=*) bindir=${1#*=} ;;
    --csv) need "$@"; csv=$2; shift ;;
    --csv=*) csv=${1#*=} ;;
    --timeout) need "$@"; tmo=$2; shift ;;
    --timeout=*) tmo=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    *) hb_usage_error "unknown option '$1'" ;;
  esac
  shift
done

[[ $runs =~ ^[0-9]+$ ]] && [ "$runs" -gt 0 ] || hb_usage_error "--runs must be a positive integer, not '$runs'"
[[ $tmo =~ ^[0-9]+$ ]] && [ "$tmo" -gt 0 ] || hb_usage_error "--timeout must be a positive integer, not '$tmo'"
[[ $seconds =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v x="$seconds" 'BEGIN{exit !(x > 0)}' ||
  hb_usage_error "--seconds must be a positive number, not '$seconds'"
[[ $threads_list =~ ^[0-9]+(,[0-9]+)*$ ]] || hb_usage_error "--threads must be a comma-separated list of positive integers, not '$threads_list'"
threads_list=$(echo "$threads_list" | tr ',' ' ')
for t in $threads_list; do [ "$t" -gt 0 ] || hb_usage_error "--threads: thread counts must be positive"; done
[ "$profiles" = all ] && profiles=$PROFILES
profiles=$(echo "$profiles" | tr ',' ' ')
for p in $profiles; do
  [[ " $PROFILES " == *" $p "* ]] || hb_usage_error "unknown profile '$p' (known: $PROFILES)"
done
[ -n "$allocs" ] || [ $allocs_explicit = 0 ] || hb_usage_error "--allocators needs a value"

profile_args() {
  case $1 in
    tiny) PARGS=(--min 8 --max 128 --slots 1000) ;;
    small) PARGS=(--min 8 --max 1024 --slots 5000) ;;
    churn) PARGS=(--min 8 --max 1024 --slots 1000 --rounds-per-thread 20000 --warmup 0) ;;
    mid) PARGS=(--min 1024 --max 32768 --slots 1000) ;;
    mixed) PARGS=(--min 8 --max 262144 --dist log --slots 1000) ;;
    fragment) PARGS=(--min 8 --max 65536 --dist log --slots 10000) ;;
  esac
}

hb_busy_warning
hb_setup_columns "$allocs" "$allocs_explicit" "$hakmem" "$hakmem_explicit" "${extras[@]+"${extras[@]}"}"
hb_ensure_tools
hb_ensure_bins "$bindir"
base=mimalloc
hb_has_col mimalloc || base=${HB_COLS[0]}
ncols=${#HB_COLS[@]}
hb_log "larson.sh: profiles: $profiles; threads: $threads_list; ${seconds}s x $runs runs; columns: ${HB_COLS[*]}"

logdir=$(mktemp -d "${TMPDIR:-/tmp}/larson.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
# hakmem is preloaded from a snapshot (kept after a failure so its commands reproduce).
keep_snap=0
if [ -n "$csv" ]; then snapdir=${csv%.csv}.lib; else snapdir=$(mktemp -d "${TMPDIR:-/tmp}/larson-lib.XXXXXX"); fi
hb_snapshot_libs "$snapdir"
trap 'rm -rf "$logdir"; [ $keep_snap = 1 ] || [ -n "$csv" ] || rm -rf "$snapdir"' EXIT
for n in "${HB_NOTES[@]+"${HB_NOTES[@]}"}"; do hb_log "note: $n"; done
[ -z "$csv" ] || echo "profile,threads,allocator,run,status,ops_per_sec,peak_rss_kb,cpu_pct,load1" >"$csv" ||
  hb_die "cannot write $csv"
declare -A OPS FAILS NOK
failures=""
nruns=$((runs * $(echo $profiles | wc -w) * $(echo $threads_list | wc -w) * ncols))
k_run=0
t_start=$(date +%s.%N)
for ((r = 1; r <= runs; r++)); do
  for p in $profiles; do
    profile_args "$p"
    for t in $threads_list; do
      for ((k = 0; k < ncols; k++)); do
        ci=$(((k + r - 1) % ncols))
        col=${HB_COLS[$ci]}
        cmd=("$HB_BINDIR/larson" --threads "$t" --seconds "$seconds" "${PARGS[@]}")
        hb_run "$ci" "$tmo" "$logdir/run" "${cmd[@]}"
        key="$p|$t|$col"
        if [ "$RUN_STATUS" = ok ]; then
          OPS[$key]="${OPS[$key]:-} $RUN_OPS"
          NOK[$key]=$((${NOK[$key]:-0} + 1))
        else
          FAILS[$key]="${FAILS[$key]:-}${FAILS[$key]:+ }$RUN_STATUS"
          failures+="$p/$t threads/$col run $r: $RUN_STATUS"$'\n'"  command: $(hb_cmdline "$ci" "${cmd[@]}")"$'\n'
          failures+="$(tail -n 5 "$logdir/run.err" 2>/dev/null | sed 's/^/  stderr: /')"$'\n'
        fi
        [ -z "$csv" ] || echo "$p,$t,$col,$r,$RUN_STATUS,$RUN_OPS,$RUN_RSS_KB,$RUN_CPU,$RUN_LOAD" >>"$csv"
        k_run=$((k_run + 1))
        printf '[%*d/%d] run %d/%d %-9s %3s thr  %-16s %10s ops/s  %-10s cpu %4s%%  load %-5s %s\n' \
          ${#nruns} "$k_run" "$nruns" "$r" "$runs" "$p" "$t" "$col" "$(hb_human "$RUN_OPS")" "$RUN_STATUS" \
          "${RUN_CPU:--}" "$RUN_LOAD" \
          "$(hb_eta "$k_run" "$nruns" "$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")" >&2
      done
    done
  done
done

echo "## Larson: median ops/s of $runs run(s), ${seconds}s each (ratio vs $base, higher is better; min-max over the runs)"
echo
printf '| profile | threads |'
for col in "${HB_COLS[@]}"; do printf ' %s | min-max |' "$col"; done
printf '\n|---|---:|'
for col in "${HB_COLS[@]}"; do printf -- '---:|---:|'; done
printf '\n'
for p in $profiles; do
  for t in $threads_list; do
    printf '| %s | %s |' "$p" "$t"
    bv=$(hb_median ${OPS[$p|$t|$base]:-})
    for col in "${HB_COLS[@]}"; do
      key="$p|$t|$col"
      v=$(hb_median ${OPS[$key]:-})
      if [ -z "$v" ]; then
        txt="FAIL (${FAILS[$key]%% *})"
      else
        txt=$(hb_human "$v")
        rt=$(hb_ratio "$v" "$bv")
        [ -n "$rt" ] && txt="$txt (${rt}x)"
        [ "${NOK[$key]:-0}" -lt "$runs" ] && txt="$txt [${NOK[$key]:-0}/$runs ok]"
      fi
      spread=-
      [ "${NOK[$key]:-0}" -ge 2 ] && spread=$(hb_human_range "$(hb_min ${OPS[$key]})" "$(hb_max ${OPS[$key]})")
      printf ' %s | %s |' "$txt" "$spread"
    done
    printf '\n'
  done
done
for n in "${HB_NOTES[@]+"${HB_NOTES[@]}"}"; do echo; echo "note: $n"; done
if [ -n "$failures" ]; then
  keep_snap=1
  echo
  echo "FAILURES:"
  printf '%s' "$failures"
  exit 3
fi
exit 0
