#!/usr/bin/env bash
# bench.sh — build hakmem and compare it with glibc, mimalloc, jemalloc and tcmalloc.
#
#   bash scripts/bench.sh [--no-deps] [--smoke | --quick | --full] [compare.sh options]
#
# Installs what is missing (scripts/deps.sh), builds build/ in Release, then runs
# `bench/compare.sh --quick` (or the mode you pass: --smoke, --quick, --full) with the
# other arguments passed through. stdout gets only the tables; progress goes to stderr,
# the deps and build output to build/bench-logs/. Results, charts included, are written
# under results/. --smoke is a run of a few seconds per allocator, for CI.
# HAK_BUILD_DIR overrides the build directory, HAK_JOBS the build's parallelism.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export HAK_BUILD_DIR="${HAK_BUILD_DIR:-$repo/build}"

deps=1
args=()
for a in "$@"; do
  case "$a" in
    --no-deps) deps=0 ;;
    -h|--help)
      sed -n '2,12s/^# \{0,1\}//p' "$0"
      if [ -f bench/compare.sh ]; then echo; echo "bench/compare.sh --help:"; bash bench/compare.sh --help || true; fi
      exit 0 ;;
    *) args+=("$a") ;;
  esac
done

# --quick unless a mode was given.
mode_given=0
for a in "${args[@]}"; do
  case "$a" in --quick|--full|--mode|--mode=*|--smoke) mode_given=1 ;; esac
done
[ $mode_given -eq 1 ] || args=(--quick "${args[@]}")

if [ ! -f bench/compare.sh ]; then
  echo "bench.sh: bench/compare.sh is not there yet: no benchmarks to run" >&2
  exit 1
fi

# Check the load now: the build below raises it by itself.
. bench/lib_bench.sh
HB_PROG=bench.sh hb_busy_warning
export HB_LOAD_CHECKED=1

logs="$HAK_BUILD_DIR/bench-logs"
mkdir -p "$logs"
# step NAME LOG CMD...: run CMD with its output in LOG; on failure show the end of LOG.
step() {
  local name=$1 log=$2
  shift 2
  echo "bench.sh: $name (log: $log)" >&2
  if ! "$@" >"$log" 2>&1; then
    echo "bench.sh: $name failed; the end of $log:" >&2
    tail -n 30 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
}
[ $deps -eq 1 ] && step "dependencies (scripts/deps.sh)" "$logs/deps.log" bash scripts/deps.sh
step "build $HAK_BUILD_DIR (scripts/build.sh)" "$logs/build.log" bash scripts/build.sh

# A build directory other than build/: point compare.sh at its library and binaries.
if [ "$HAK_BUILD_DIR" != "$repo/build" ]; then
  case " ${args[*]} " in *" --hakmem"*) ;; *) args+=(--hakmem "$HAK_BUILD_DIR/libhakmem.so") ;; esac
  case " ${args[*]} " in *" --bindir"*) ;; *) args+=(--bindir "$HAK_BUILD_DIR/bench") ;; esac
fi
echo "bench.sh: bench/compare.sh ${args[*]}" >&2
exec bash bench/compare.sh "${args[@]}"
