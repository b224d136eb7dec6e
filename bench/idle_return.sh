#!/usr/bin/env bash
# idle_return.sh — does each allocator give memory back while the program idles?
#
#   bash bench/idle_return.sh [--mib N] [--seconds S] [--allocators LIST] [--out DIR]
#                             [--pool T] [--keep-every K]
#
# Runs bench/idle_return (two threads build N MiB of 16 B..32 KiB blocks, free 90 % of
# each other's, then idle) under glibc, mimalloc, jemalloc, tcmalloc, hakmem and hakmem
# with ACE off (HAKMEM_ACE_ENABLED=0), one after the other (hakmem-POLICY, e.g. hakmem-ucb1,
# runs hakmem with HAKMEM_ACE_POLICY=POLICY), and prints the RSS right
# after the frees, the RSS at the end, their ratio and when RSS first fell to 40 %.
# The per-second RSS of each run goes to DIR/<allocator>.rss (gnuplot-ready) and a
# chart to DIR/idle_return.png when gnuplot is there. Defaults: 400 MiB, 70 s, all.
# --pool T: T threads each free their own blocks instead (a thread pool gone quiet:
# its thread caches full); --keep-every K: one block in K stays (default 10, 0 none).
set -u -o pipefail
HB_PROG=idle_return.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_bench.sh"

mib=400 seconds=70 allocs="glibc,mimalloc,jemalloc,tcmalloc,hakmem,hakmem-ace-off" out=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mib) mib=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --allocators) allocs=$2; shift ;;
    --out) out=$2; shift ;;
    --pool|--keep-every) extra+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "idle_return.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
bin="$HB_ROOT/build/bench/idle_return"
hak="$HB_ROOT/build/libhakmem.so"
[ -x "$bin" ] || hb_die "$bin is missing: build first (bash scripts/build.sh)"
out=${out:-$HB_ROOT/results/idle-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
hb_busy_warning 2>/dev/null || true

printf '| allocator | RSS after the frees | RSS after %ss | end / after | first at <= 40 %% |\n' "$seconds"
printf '|---|---:|---:|---:|---:|\n'
IFS=, read -r -a list <<<"$allocs"
k=0
for a in "${list[@]}"; do
  k=$((k + 1))
  env=()
  case $a in
    glibc) lib="" ;;
    hakmem) lib=$hak ;;
    hakmem-ace-off) lib=$hak; env=(HAKMEM_ACE_ENABLED=0) ;;
    hakmem-*) lib=$hak; env=("HAKMEM_ACE_POLICY=${a#hakmem-}") ;;   # hakmem-ucb1, hakmem-decay, ...
    *) lib=$(hb_peer_lib "$a") || { echo "| $a | not installed | | | |"; continue; } ;;
  esac
  hb_log "[$k/${#list[@]}] $a: ${seconds}s ..."
  log="$out/$a.log"
  env -u LD_PRELOAD "${env[@]}" ${lib:+LD_PRELOAD=$lib} "$bin" --mib "$mib" --seconds "$seconds" ${extra[@]+"${extra[@]}"} >"$log" 2>&1
  sed -n 's/^rss_t=\([0-9]*\) rss_mib=\([0-9.]*\)$/\1 \2/p' "$log" >"$out/$a.rss"
  res=$(grep '^RESULT' "$log" | tail -n 1)
  get() { printf '%s\n' "$res" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  if [ -z "$res" ]; then echo "| $a | failed (see $log) | | | |"; continue; fi
  to40=$(get seconds_to_40pct); [ "$to40" = "-1" ] && to40="never" || to40="${to40} s"
  printf '| %s | %s MiB | %s MiB | %s %% | %s |\n' "$a" "$(get rss_after_free_mib)" "$(get rss_end_mib)" \
    "$(get rss_end_pct)" "$to40"
done
if command -v gnuplot >/dev/null 2>&1; then
  plots=()
  for a in "${list[@]}"; do [ -s "$out/$a.rss" ] && plots+=("'$out/$a.rss' using 1:2 with lines lw 2 title '$a'"); done
  if [ ${#plots[@]} -gt 0 ]; then
    gnuplot <<GP 2>/dev/null
set terminal pngcairo size 900,500
set output '$out/idle_return.png'
set title 'RSS while the program idles after freeing 90 % of ${mib} MiB'
set xlabel 'seconds after the frees'
set ylabel 'RSS (MiB)'
set key outside right
set grid
plot $(IFS=,; echo "${plots[*]}")
GP
    hb_log "chart: $out/idle_return.png"
  fi
fi
hb_log "logs: $out"
