#!/usr/bin/env bash
# ace_cost.sh — what the ACE thread costs each program of compare.sh's quick suite,
# measured so that a 2 % difference can be seen on a shared, noisy machine.
#
# Timed runs cannot show 2 % here: on these 2-vCPU VMs the medians of 5 runs move by
# 1.5x from one run of the suite to the next. This script measures the three ways ACE
# can cost a program instead, each with a method that does not depend on the load:
#
#  1. Instructions (callgrind). Each benchmark runs a fixed amount of work (its
#     --iterations, or its quick profile's count; bench_size below) under `valgrind
#     --tool=callgrind --separate-threads=yes` with libhakmem.so preloaded, ACE on (the
#     default) and HAKMEM_ACE_ENABLED=0, --cg-runs times each, interleaved. Counted:
#     the instructions of the program's own threads; the hakmem-ace thread's (the
#     inclusive cost of ace_main, its start routine) are left out: item 3 is its cost.
#     Reported per operation (ops= of the RESULT line, else ops_per_sec x seconds),
#     median of the runs. The work is the same in both columns, so the ratio is exact
#     for the single-thread programs; in the multi-thread ones the interleaving of the
#     threads (which valgrind runs one at a time) changes what the allocator does, by a
#     few % from run to run (the spread column). Under valgrind the program runs ~50x
#     slower while ACE ticks on the wall clock (every 500 ms), so whatever a tick costs
#     the program's threads (drains, refaults of scavenged memory, knob changes) weighs
#     ~50x more per operation than in a native run: an upper bound. HAKMEM_ACE_TRACE
#     counts the ticks.
#  2. Page faults the kernel takes for the program (callgrind does not see the kernel):
#     minor faults of native runs of a fixed amount of work, the same in both columns
#     (wait4's rusage of the program, through proc_sample), ACE on against off, --runs
#     interleaved runs each, medians. The hakmem-ace thread's own faults (its stack and
#     buffers, ~30 at its start; /proc/PID/task/TID/stat at proc_sample's last sample)
#     are taken out and shown apart. The scavenger gives pages back with
#     madvise(MADV_DONTNEED); a refault of such a page is the main way it can cost a
#     program time.
#  3. The ACE thread's own CPU: in the same native runs, proc_sample's ace_cpu_ms (the
#     hakmem-ace thread's schedstat or utime+stime) as % of the run's wall time (one
#     core = 100 %), median over the ACE-on runs, and in how many runs the thread ran.
#
# Markdown table on stdout, progress [k/N] on stderr, logs and raw.csv in --out.
# shellcheck disable=SC2034,SC2154  # HB_* are read by lib_bench.sh; mf, jf, acems, wall, acet are set by hb_kv
set -u -o pipefail
HB_PROG=ace_cost.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_bench.sh"

usage() {
  cat <<EOF
usage: ace_cost.sh [options]

Measures ACE on (the default) against HAKMEM_ACE_ENABLED=0 for compare.sh's quick suite:
instructions per operation of the program's own threads under callgrind, minor page
faults of native runs, and the hakmem-ace thread's CPU as % of one core.
About 20 minutes on 2 cores with the defaults.

options:
  --bench LIST       comma-separated benchmarks (default: $(echo "$ALL_BENCHES" | tr ' ' ','))
  --runs N           native runs per column (default 5)
  --cg-runs N        callgrind runs per column (default 3)
  --scale X          multiply the work of every run by X (default 1; compare two scales
                     to check that the per-operation figures do not depend on the size)
  --no-callgrind     native runs only
  --no-native        callgrind only
  --threads N        threads of the multi-thread benchmarks (default 2)
  --out DIR          results folder (default results/acecost-<timestamp>/ under the repo)
  --hakmem PATH      hakmem shared library (default build/libhakmem.so under the repo)
  --bindir DIR       benchmark binaries (default build/bench, else a standalone build)
  --timeout S        kill a run after S seconds (default 300)
  -h, --help         show this text
EOF
}
hb_usage_error() { printf 'ace_cost.sh: %s\n' "$*" >&2; usage >&2; exit 2; }

ALL_BENCHES="micro-tight micro-batch micro-xthread larson fragment huge_ws realloc mid_mt large_replace
  batches batches-bg batches-mt alloc_test mstress minimize bigfactor rebuild"
ALL_BENCHES=$(echo $ALL_BENCHES)

# bench_size NAME: the fixed work of a run, "FLAG CALLGRIND_N NATIVE_N [FLAG VALUE...]",
# appended to the quick profile's command (the programs take the last of a repeated
# flag; --iterations replaces --seconds). Callgrind runs take about 2-8 s on this
# machine and native runs 2-5 s when it is quiet (the thread starts 1 s into a run, so
# the runs must be longer than the quick profile's 1 s for ACE to do anything).
# --warmup 0 where the warm-up is timed (the work would depend on the speed).
# --scale multiplies both counts.
bench_size() {
  case $1 in
    micro-tight) echo "--iterations 400000 72000000" ;;
    micro-batch) echo "--iterations 800000 240000000" ;;
    micro-xthread) echo "--iterations 600000 30000000" ;;
    larson) echo "--iterations 600000 180000000" ;;
    fragment) echo "--rounds 4000 64000" ;;
    huge_ws) echo "--iterations 600000 36000000" ;;
    realloc) echo "--iterations 5000 1350000 --warmup 0" ;;
    mid_mt) echo "--iterations 100000 3000000 --warmup 0" ;;
    large_replace) echo "--rounds 10 120" ;;
    batches) echo "--iterations 800000 240000000" ;;
    batches-bg) echo "--iterations 800000 360000000" ;;
    batches-mt) echo "--iterations 600000 180000000" ;;
    alloc_test) echo "--iterations 400000 45000000" ;;
    mstress) echo "--rounds 20 600" ;;
    minimize) echo "--functions 600 5000" ;;
    bigfactor) echo "--numbers 100 1500" ;;
    rebuild) echo "--rounds 2 8 --ws 64M" ;;
    *) hb_die "internal: no size for $1" ;;
  esac
}

# sized_cmd NAME cg|native: CMD = the quick profile's command with the fixed work
sized_cmd() {
  local sz n
  hb_bench_cmd "$1" quick 1 "$threads"
  read -r -a sz <<<"$(bench_size "$1")"
  n=${sz[1]}
  [ "$2" = native ] && n=${sz[2]}
  CMD+=("${sz[0]}" "$(awk -v n="$n" -v s="$scale" 'BEGIN { printf "%.0f", n * s }')" "${sz[@]:3}")
}

benches="" runs=5 cg_runs=3 scale=1 do_cg=1 do_native=1 threads=2 out="" bindir="" tmo=300
hakmem="$HB_ROOT/build/libhakmem.so"
need() { [ $# -ge 2 ] && [ -n "$2" ] || hb_usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --bench | --benchmarks) need "$@"; benches=$2; shift ;;
    --bench=* | --benchmarks=*) benches=${1#*=} ;;
    --runs) need "$@"; runs=$2; shift ;;
    --runs=*) runs=${1#*=} ;;
    --cg-runs) need "$@"; cg_runs=$2; shift ;;
    --cg-runs=*) cg_runs=${1#*=} ;;
    --scale) need "$@"; scale=$2; shift ;;
    --scale=*) scale=${1#*=} ;;
    --no-callgrind) do_cg=0 ;;
    --no-native) do_native=0 ;;
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
    -h | --help) usage; exit 0 ;;
    *) hb_usage_error "unknown option '$1'" ;;
  esac
  shift
done
is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v x="$1" 'BEGIN{exit !(x > 0)}'; }
[[ $runs =~ ^[0-9]+$ ]] && [ "$runs" -gt 0 ] || hb_usage_error "--runs must be a positive integer"
[[ $cg_runs =~ ^[0-9]+$ ]] && [ "$cg_runs" -gt 0 ] || hb_usage_error "--cg-runs must be a positive integer"
[[ $threads =~ ^[0-9]+$ ]] && [ "$threads" -gt 0 ] || hb_usage_error "--threads must be a positive integer"
is_num "$scale" || hb_usage_error "--scale must be a positive number"
is_num "$tmo" || hb_usage_error "--timeout must be a positive number"
[ -n "$benches" ] || benches=$ALL_BENCHES
benches=$(echo "$benches" | tr ',' ' ')
for b in $benches; do [[ " $ALL_BENCHES " == *" $b "* ]] || hb_usage_error "unknown benchmark '$b' (known: $ALL_BENCHES)"; done
[ $do_cg = 1 ] && ! command -v valgrind >/dev/null 2>&1 && { hb_apt_install valgrind || hb_die "valgrind is needed (or --no-callgrind)"; }

hb_ensure_tools
hb_ensure_bins "$bindir"
hb_setup_columns hakmem 1 "$hakmem" 1 'ace-off:HAKMEM_ACE_ENABLED=0'
out=${out:-$HB_ROOT/results/acecost-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs" || hb_die "cannot create $out"
hb_snapshot_libs "$out/lib"
ON=$(hb_col_index hakmem) OFF=$(hb_col_index ace-off)
# ACE on is the default; saying so gives both columns environments of the same shape
# (hakmem's option parsing at start-up costs a few hundred thousand instructions more
# or less with the environment, which would otherwise show in the short runs)
HB_COL_ENV[$ON]=HAKMEM_ACE_ENABLED=1
hb_busy_warning
[ -z "$(hb_alloc_env)" ] || hb_log "note: every run inherits the caller's $(hb_alloc_env | cut -d= -f1 | tr '\n' ' ')"

nb=$(echo "$benches" | wc -w)
total=$(( (do_cg * nb * 2 * cg_runs) + (do_native * nb * 2 * runs) ))
k_run=0 t_start=$EPOCHREALTIME
progress() {
  k_run=$((k_run + 1))
  hb_log "[$k_run/$total] $* ($(hb_time_left "$k_run" "$total" "$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"))"
}
raw=$out/raw.csv
echo "part,benchmark,column,run,status,ops,instructions,ace_thread_instructions,ace_ticks,minflt,majflt,ace_cpu_ms,wall_s,load1,ace_minflt" >"$raw"

# run_ops: the operations of the last hb_run (ops= of its RESULT line, else
# ops_per_sec x seconds, for the programs that print no ops=).
run_ops() {
  local o s r
  hb_kv o "$RUN_LINE" ops
  if [ -z "$o" ]; then
    hb_kv r "$RUN_LINE" ops_per_sec
    hb_kv s "$RUN_LINE" seconds
    o=$(awk -v r="$r" -v s="$s" 'BEGIN { if (r != "" && s != "") printf "%.0f", r * s }')
  fi
  echo "$o"
}

# cg_instr PREFIX: instructions in the per-thread dumps PREFIX-NN of one run, without
# those of the hakmem-ace thread: "PROGRAM_INSTR ACE_INSTR". ACE_INSTR is the inclusive
# cost of ace_main (the thread's start routine): valgrind reuses the id of a thread
# that has exited, and callgrind then writes both threads into one dump (larson starts
# new threads as it runs), so the ACE thread's dump may hold a program thread too.
cg_instr() {
  local f n a prog=0 ace=0
  for f in "$1"-*; do
    [ -f "$f" ] || continue
    n=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    [ -n "$n" ] || continue
    a=0
    if grep -qE '^c?fn=\([0-9]+\) ace_main$' "$f"; then
      a=$(callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null |
        awk '/[:]ace_main[ []/ { gsub(",", "", $1); print $1; exit }')
      [ -n "$a" ] || hb_die "callgrind_annotate found no ace_main in $f"
    fi
    prog=$((prog + n - a)) ace=$((ace + a))
  done
  echo "$prog $ace"
}

declare -A CG_IPO CG_TICKS NAT_FLT NAT_ACEFLT NAT_ACE NAT_ACERUN NAT_FAIL
# 1. callgrind: every benchmark --cg-runs times with each column, interleaved
if [ $do_cg = 1 ]; then
  for ((r = 1; r <= cg_runs; r++)); do
    for b in $benches; do
      for col in $( ((r % 2)) && echo "$ON $OFF" || echo "$OFF $ON"); do
        sized_cmd "$b" cg
        cname=${HB_COLS[$col]}
        logp=$out/logs/cg.$b.$cname.r$r
        progress "callgrind $b $cname run $r: ${CMD[*]##*/}"
        rm -f "$logp".cg* "$logp".trace.*
        HAKMEM_ACE_TRACE=$logp.trace.%p hb_run "$col" "$tmo" "$logp" \
          valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$logp.cg" "${CMD[@]}"
        key="$b|$cname"
        instr="" acei="" ops="" ticks=""
        if [ "$RUN_STATUS" = ok ]; then
          read -r instr acei <<<"$(cg_instr "$logp.cg")"
          ops=$(run_ops)
          ticks=$(cat "$logp".trace.* 2>/dev/null | grep -c '"tick":"fast"')
          CG_IPO[$key]="${CG_IPO[$key]:-} $(awk -v i="$instr" -v o="$ops" 'BEGIN { if (o + 0 > 0) printf "%.2f", i / o }')"
          CG_TICKS[$key]="${CG_TICKS[$key]:-} $ticks"
          rm -f "$logp".cg* "$logp.err"
        else
          hb_log "  $b $cname: $RUN_STATUS (see $logp.err)"
        fi
        echo "callgrind,$b,$cname,$r,$RUN_STATUS,$ops,$instr,$acei,$ticks,,,,$RUN_SECS,$RUN_LOAD" >>"$raw"
      done
    done
  done
fi

# 2 and 3. native runs through proc_sample, ACE on and off interleaved, the first
# column alternating from one repetition to the next
if [ $do_native = 1 ]; then
  for ((r = 1; r <= runs; r++)); do
    for b in $benches; do
      for col in $( ((r % 2)) && echo "$ON $OFF" || echo "$OFF $ON"); do
        cname=${HB_COLS[$col]}
        sized_cmd "$b" native
        logp=$out/logs/nat.$b.$cname.r$r
        progress "native $b $cname run $r: ${CMD[*]##*/}"
        hb_run "$col" "$tmo" "$logp" "$HB_BINDIR/proc_sample" -- "${CMD[@]}"
        key="$b|$cname"
        sample=$(grep '^SAMPLE ' "$logp.out" 2>/dev/null | tail -n 1)
        hb_kv mf "$sample" minflt
        hb_kv jf "$sample" majflt
        hb_kv af "$sample" ace_minflt
        hb_kv acems "$sample" ace_cpu_ms
        hb_kv acet "$sample" ace_thread
        hb_kv wall "$sample" wall_s
        if [ "$RUN_STATUS" = ok ] && [ -n "$mf" ]; then
          NAT_FLT[$key]="${NAT_FLT[$key]:-} $((mf - ${af:-0}))"
          if [ "$col" = "$ON" ]; then
            NAT_ACE[$b]="${NAT_ACE[$b]:-} $(awk -v c="$acems" -v w="$wall" 'BEGIN { printf "%.4f", (w > 0 ? c / 10 / w : 0) }')"
            NAT_ACERUN[$b]=$((${NAT_ACERUN[$b]:-0} + acet))
            NAT_ACEFLT[$b]="${NAT_ACEFLT[$b]:-} ${af:-0}"
          fi
          rm -f "$logp.err"
        else
          NAT_FAIL[$key]="${NAT_FAIL[$key]:-} $RUN_STATUS"
          hb_log "  $b $cname: $RUN_STATUS (see $logp.err)"
        fi
        echo "native,$b,$cname,$r,$RUN_STATUS,$(run_ops),,,,$mf,$jf,$acems,$wall,$RUN_LOAD,$af" >>"$raw"
      done
    done
  done
fi

# The table
# spread VALUES...: (max - min) / median in % (empty with fewer than two values)
spread() {
  local m
  m=$(hb_median_fmt %.6f "$@")
  printf '%s\n' "$@" | awk -v m="$m" 'NF { if (n++ == 0 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
    END { if (n >= 2 && m > 0) printf "%.1f\n", 100 * (hi - lo) / m }'
}
ratio3() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 != 0) printf "%.3f", a / b }'; }
lib=${HB_COL_LIB[$ON]}
echo "# ACE cost: ACE on (default) against HAKMEM_ACE_ENABLED=0"
echo
echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); library $lib (${HB_LIB_BUILD[$lib]:-$(hb_lib_build "$lib")})"
echo "- host: $(hb_environment)"
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- callgrind ($cg_runs runs per column, sizes x$scale): instructions of the program's own threads"
echo "  (hakmem-ace left out) per operation, medians; spread: (max - min) / median of the"
echo "  runs of each column; ticks: ACE fast ticks per ACE-on run (median; 0: the thread never started)"
echo "- native ($runs interleaved runs per column, the same fixed work in both, sizes x$scale):"
echo "  minor faults of the program's own threads (the process's less the hakmem-ace thread's,"
echo "  which has its own column), medians; ACE CPU: hakmem-ace thread CPU / wall time of"
echo "  the run (% of one core), median of the ACE-on runs; ACE ran: ACE-on runs with the thread"
echo
echo "| benchmark | instr/op off | instr/op on | on/off | spread off / on | ticks | minor faults off | on | on/off | ACE thread's faults | ACE CPU % of a core | ACE ran |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for b in $benches; do
  # shellcheck disable=SC2086  # the lists are space-separated on purpose
  {
    poff=$(hb_median_fmt %.2f ${CG_IPO["$b|ace-off"]:-}) pon=$(hb_median_fmt %.2f ${CG_IPO["$b|hakmem"]:-})
    soff=$(spread ${CG_IPO["$b|ace-off"]:-}) son=$(spread ${CG_IPO["$b|hakmem"]:-})
    ticks=$(hb_median ${CG_TICKS["$b|hakmem"]:-})
    foff=$(hb_median ${NAT_FLT["$b|ace-off"]:-}) fon=$(hb_median ${NAT_FLT["$b|hakmem"]:-})
    acep=$(hb_median_fmt %.2f ${NAT_ACE[$b]:-})
    acef=$(hb_median ${NAT_ACEFLT[$b]:-})
    nok=$(echo ${NAT_ACE[$b]:-} | wc -w)
  }
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$b" \
    "${poff:--}" "${pon:--}" "$(ratio3 "$pon" "$poff")" "${soff:--}% / ${son:--}%" "${ticks:--}" \
    "${foff:--}" "${fon:--}" "$(ratio3 "$fon" "$foff")" "${acef:--}" "${acep:--}" \
    "$([ $do_native = 1 ] && echo "${NAT_ACERUN[$b]:-0}/$nok" || echo -)"
done
fails=""
for key in "${!NAT_FAIL[@]}"; do fails+="$key:${NAT_FAIL[$key]}; "; done
[ -z "$fails" ] || { echo; echo "Failed native runs: $fails"; }
for n in "${HB_NOTES[@]}"; do echo; echo "- $n"; done
hb_log "ace_cost.sh: $(hb_time_left "$total" "$total" "$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"); raw data in $raw"
