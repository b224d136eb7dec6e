#!/usr/bin/env bash
# test_check_layers.sh REPO — scripts/check_layers.sh must reject an upward include and
# an include that names no layer, naming the file and line, and accept the tree as is.
set -u
repo="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1"; fi; }

cp -r "$repo/src" "$tmp/src"
bash "$repo/scripts/check_layers.sh" "$tmp/src" >"$tmp/clean.out" 2>&1
check "the tree as is passes" '[ $? -eq 0 ]'

line=$(( $(wc -l <"$tmp/src/alloc/free.c") + 1 ))
echo '#include "runtime/runtime.h"' >>"$tmp/src/alloc/free.c"
bash "$repo/scripts/check_layers.sh" "$tmp/src" >"$tmp/up.out" 2>&1
rc=$?
check "an upward include fails" '[ $rc -eq 1 ]'
check "the message names file, line and direction" \
  'grep -q "alloc/free.c:$line: #include \"runtime/runtime.h\" points up (alloc includes runtime)" "$tmp/up.out"'

cp "$repo/src/alloc/free.c" "$tmp/src/alloc/free.c"
echo '#include "alloc.h"' >>"$tmp/src/base/io.c"
bash "$repo/scripts/check_layers.sh" "$tmp/src" >"$tmp/bare.out" 2>&1
rc=$?
check "an include without a layer fails" '[ $rc -eq 1 ] && grep -q "base/io.c:.*does not name its layer" "$tmp/bare.out"'

cat "$tmp"/*.out | sed 's/^/  | /'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
