#!/usr/bin/env bash
# bench.sh — build hakmem and compare it with glibc, mimalloc, jemalloc and tcmalloc.
#
#   bash scripts/bench.sh [--no-deps] [compare.sh options, e.g. --full]
#
# Installs what is missing (scripts/deps.sh), builds build/ in Release, then runs
# `bench/compare.sh --quick` (or the mode you pass: --quick, --full, ...) with the
# other arguments passed through; compare.sh prints the table and writes the
# results, charts included, under results/.
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
      sed -n '2,10s/^# \{0,1\}//p' "$0"
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
[ $deps -eq 1 ] && bash scripts/deps.sh
bash scripts/build.sh

# A build directory other than build/: point compare.sh at its library and binaries.
if [ "$HAK_BUILD_DIR" != "$repo/build" ]; then
  case " ${args[*]} " in *" --hakmem"*) ;; *) args+=(--hakmem "$HAK_BUILD_DIR/libhakmem.so") ;; esac
  case " ${args[*]} " in *" --bindir"*) ;; *) args+=(--bindir "$HAK_BUILD_DIR/bench") ;; esac
fi
echo "bench.sh: bench/compare.sh ${args[*]}"
bash bench/compare.sh "${args[@]}"
