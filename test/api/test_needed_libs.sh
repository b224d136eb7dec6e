#!/usr/bin/env bash
# test_needed_libs.sh LIBHAKMEM — what the preloaded library makes every process map.
# libhakmem.so needs libc and liburcu-bp only: libm (about 280 KiB resident in each
# process, for the controller's ln/exp/sqrt; base/fmath.h replaced it), libstdc++ and
# libpfm4 (dlopened by the ACE thread when it starts, pmu.c) must not be in DT_NEEDED,
# and a short command run under LD_PRELOAD must not have them mapped. The library's
# initialized writable data stays small: every process maps all of it (the kernel maps a
# file's pages around a faulting one), and a heap struct there once cost 37 KiB each.
set -u
lib="$1"
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1"; fi; }

needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
echo "  NEEDED: $needed"
check "DT_NEEDED is libc and liburcu-bp" '[ "$needed" = "libc.so.6 liburcu-bp.so.8 " ]'

data=$(readelf -SW "$lib" | awk '$2 == ".data" { print strtonum("0x" $6) }')
echo "  .data: ${data:-none} bytes"
check ".data is under 16 KiB" '[ "${data:-0}" -lt 16384 ]'

maps=$(LD_PRELOAD="$lib" cat /proc/self/maps)
check "a preloaded short command maps libhakmem" 'grep -q libhakmem <<<"$maps"'
for l in libm.so libstdc++ libpfm; do
  check "a preloaded short command does not map $l" '! grep -q "/$l" <<<"$maps"'
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
