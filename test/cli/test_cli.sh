#!/usr/bin/env bash
# test_cli.sh LIBHAKMEM [WRAPPER] — the command-line faces of hakmem: HAKMEM_STATS at
# exit (text and JSON that parses), HAKMEM_VERBOSE, the hakmem wrapper (options, exit
# status and messages) and the benchmark runners' option checking.
#
# WRAPPER is an installed bin/hakmem; without it, the wrapper is made from
# scripts/hakmem.sh.in the way `cmake --install` makes it (the three @VAR@ filled in),
# preloading LIBHAKMEM.
set -u
lib=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 skip=0
check() {   # check NAME CONDITION-EXIT-CODE [detail]
  if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1 ${3:-}" >&2; fi
}

# HAKMEM_STATS=json: the last stderr line is one JSON object with the documented keys.
out=$(HAKMEM_STATS=json LD_PRELOAD=$lib sh -c 'for i in 1 2 3; do echo $i; done | sort -r' 2>&1 >/dev/null)
echo "$out" | tail -n 1 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["version"] == 1, d["version"]
assert set(d["modes"]) >= {"superslab", "ace", "pmu", "debug_counters"}
for k in ("allocs", "frees", "refills", "remote_frees", "remote_backlog", "bytes_in_use",
          "bytes_held", "rss_bytes", "lock_waits", "threads_started"):
    assert isinstance(d[k], int), k
assert d["allocs"] > 0 and d["frees"] > 0
assert d["classes"], "no size classes"
# sh and sort are single-threaded: no class frees more blocks than it handed out
# (a remote free would be a block of another thread), and in_use is the difference.
for c in d["classes"]:
    assert c["allocs"] >= c["frees"] or c["remote_frees"] > 0, c
    assert c["in_use"] == max(c["allocs"] - c["frees"], 0), c
assert sum(c["allocs"] for c in d["classes"]) <= d["allocs"]
assert all(c["size"] % 16 == 0 for c in d["classes"])
'
check "stats json parses" $? "$out"

# HAKMEM_STATS=1: a text summary naming the active modes.
out=$(HAKMEM_STATS=1 LD_PRELOAD=$lib /bin/true 2>&1)
echo "$out" | grep -q '^hakmem: stats: modes: superslab on, ACE off' ; check "stats text modes" $? "$out"
echo "$out" | grep -Eq '^hakmem: stats: allocs +[0-9]+ ' ; check "stats text allocs" $? "$out"
out=$(HAKMEM_STATS=1 HAKMEM_TINY_USE_SUPERSLAB=0 LD_PRELOAD=$lib /bin/true 2>&1)
echo "$out" | grep -q '^hakmem: stats: modes: superslab off' ; check "stats text superslab off" $? "$out"

# Without HAKMEM_STATS nothing is printed.
out=$(LD_PRELOAD=$lib /bin/true 2>&1)
[ -z "$out" ]; check "silent by default" $? "$out"

# HAKMEM_STATS with a bad value: one warning line, default (off) kept.
out=$(HAKMEM_STATS=loud LD_PRELOAD=$lib /bin/true 2>&1)
[ "$(echo "$out" | grep -c 'hakmem: warning: HAKMEM_STATS=loud')" = 1 ] && ! echo "$out" | grep -q 'stats: modes'
check "stats bad value" $? "$out"

# Benchmark runners reject bad options with a usage message and exit 2.
out=$("$root/bench/larson.sh" --bogus 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q '^usage: larson.sh'; check "larson.sh bad option" $? "rc=$rc $out"
out=$("$root/bench/larson.sh" --profile nosuch 2>&1); rc=$?
[ $rc -eq 2 ]; check "larson.sh bad profile" $? "rc=$rc"
out=$("$root/bench/compare.sh" --bogus 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q '^usage: compare.sh'; check "compare.sh bad option" $? "rc=$rc $out"

# ---- the hakmem wrapper ----------------------------------------------------------------
W=${2:-}
if [ -z "$W" ]; then
  W=$tmp/bin/hakmem
  mkdir -p "$tmp/bin"
  sed -e "s|@HAKMEM_WRAPPER_LIBDIR@|$(cd "$(dirname "$lib")" && pwd)|" \
      -e "s|@HAKMEM_WRAPPER_LIBNAME@|$(basename "$lib")|" \
      -e "s|@HAK_VERSION@|test|" "$root/scripts/hakmem.sh.in" >"$W" && chmod +x "$W"
  ! grep -q '@[A-Z_]*@' "$W"; check "wrapper: every @VAR@ of hakmem.sh.in filled in" $?
fi
# wrap NAME WANT_RC WANT_STDERR CMD...: CMD exits WANT_RC and its stderr is exactly
# WANT_STDERR (one line; "" for none); stdout must be empty unless WANT_STDERR is "*".
wrap() {
  local name=$1 want_rc=$2 want_err=$3 rc out err
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
  [ "$rc" -eq "$want_rc" ] && { [ "$want_err" = "*" ] || [ "$err" = "$want_err" ]; } &&
    { [ "$want_err" = "*" ] || [ -z "$out" ]; }
  check "wrapper: $name" $? "(exit $rc, want $want_rc; stderr '$err', want '$want_err'; stdout '$out')"
}
mkdir -p "$tmp/path" "$tmp/dir"
printf '#!/bin/sh\necho never\n' >"$tmp/path/hak-not-executable"
chmod 644 "$tmp/path/hak-not-executable"
cp "$tmp/path/hak-not-executable" "$tmp/not-executable"
wrap "command not in PATH: 127, one line as env(1)" 127 \
  "hakmem: 'hak-no-such-command': No such file or directory" "$W" hak-no-such-command arg
wrap "missing file with a path: 127" 127 \
  "hakmem: '$tmp/missing': No such file or directory" "$W" "$tmp/missing"
wrap "empty command name: 127" 127 "hakmem: '': No such file or directory" "$W" ""
wrap "file not executable: 126" 126 \
  "hakmem: '$tmp/not-executable': Permission denied" "$W" "$tmp/not-executable"
wrap "directory: 126" 126 "hakmem: '$tmp/dir': Permission denied" "$W" "$tmp/dir"
wrap "only a non-executable file in PATH: 126" 126 \
  "hakmem: 'hak-not-executable': Permission denied" \
  env PATH="$tmp/path:$PATH" "$W" hak-not-executable
wrap "-- then a missing command starting with '-': 127" 127 \
  "hakmem: '-x': No such file or directory" "$W" -- -x
wrap "a shell builtin without a file ('cd'): 127" 127 \
  "hakmem: 'cd': No such file or directory" "$W" cd /
wrap "command's own exit status passes through" 7 "" "$W" sh -c 'exit 7'
wrap "no command: 2" 2 "*" "$W"
wrap "unknown option: 2" 2 "hakmem: unknown option '--bogus' (try 'hakmem --help')" "$W" --bogus true
wrap "--stats=bogus: 2" 2 "hakmem: --stats takes 'text' or 'json', not 'bogus' (try 'hakmem --help')" \
  "$W" --stats=bogus true

out=$("$W" --stats sh -c 'echo "$HAKMEM_STATS"' 2>/dev/null)
[ "$out" = 1 ]; check "wrapper: --stats sets HAKMEM_STATS=1" $? "got '$out'"
out=$("$W" --stats=text sh -c 'echo "$HAKMEM_STATS"' 2>/dev/null)
[ "$out" = 1 ]; check "wrapper: --stats=text sets HAKMEM_STATS=1" $? "got '$out'"
out=$("$W" --stats=json sh -c 'echo "$HAKMEM_STATS"' 2>/dev/null)
[ "$out" = json ]; check "wrapper: --stats=json sets HAKMEM_STATS=json" $? "got '$out'"
# and the program really reports JSON at exit: the last stderr line is one object
out=$("$W" --stats=json /bin/true 2>&1)
echo "$out" | tail -n 1 | python3 -c 'import json, sys; assert json.loads(sys.stdin.read())["version"] == 1'
check "wrapper: --stats=json /bin/true prints the JSON stats" $? "$out"
out=$("$W" --stats /bin/true 2>&1)
echo "$out" | grep -q '^hakmem: stats: modes:'; check "wrapper: --stats /bin/true prints the text stats" $? "$out"
out=$("$W" --help 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q -- '--stats=json' && echo "$out" | grep -q '127'
check "wrapper: --help lists --stats=json and the exit statuses" $? "rc=$rc"

line="$pass passed, $fail failed"
[ $skip -gt 0 ] && line="$line, $skip skipped"
echo "$line"
[ "$fail" -eq 0 ]
