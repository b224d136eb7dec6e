#!/usr/bin/env bash
# build.sh — configure and build hakmem (Release) in build/.
#
#   bash scripts/build.sh [extra cmake -D options...]
#
# HAK_BUILD_DIR overrides the build directory, HAK_JOBS the parallelism (default: nproc).
# test.sh and bench.sh call this; it does not install dependencies (deps.sh does).
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;; esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HAK_BUILD_DIR:-$repo/build}"
jobs="${HAK_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Release, and never a leftover sanitizer configuration (test/sanitize.sh uses its own dirs).
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHAK_SANITIZE= "$@"
cmake --build "$build" -j"$jobs"
