#!/usr/bin/env bash
# real_programs.sh — programs nobody here wrote (Debian's python3, sqlite3, git, gcc,
# redis, sort, gawk) on fixed, allocation-heavy workloads under each allocator: glibc
# (no preload), mimalloc, jemalloc, tcmalloc and hakmem by LD_PRELOAD, the columns found
# and run by lib_bench.sh exactly as compare.sh does. See docs/BENCHMARKS.md, "Real programs".
#
# Per program and column: median wall time of the runs with min-max, median peak RSS
# (max RSS from /usr/bin/time: the largest process of the run) with min-max, ratios to
# mimalloc. redis reports requests/s of redis-benchmark and the server's own peak RSS
# (VmHWM) in their place. Every run's output is checked against a reference run made
# without a preload before the timed runs (row counts, checksums, object-file hashes);
# a run that crashes, exits non-zero or prints something else is a failure in the table.
#
# stdout: the Markdown tables; stderr: progress ([k/N] and the time left); --out DIR:
# raw.csv (one line per run), summary.csv, summary.md, failures.log, logs/.
set -u -o pipefail
HB_PROG=real_programs.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_bench.sh"

ALL_PROGRAMS="python sqlite git gcc redis sort awk"

usage() {
  cat <<EOF
usage: real_programs.sh [options]

Runs each program's workload with each allocator column, round-robin inside each
repetition (the first column rotates), and reports median wall time and peak RSS with
their min-max and ratios vs mimalloc. Missing Debian packages are installed with
apt-get when root; a program that cannot be installed is skipped with a note.

options:
  --runs N             repetitions (default 5)
  --allocators LIST    comma-separated columns among: glibc,mimalloc,jemalloc,tcmalloc,hakmem
                       (default: all; a missing one is skipped with a note)
  --hakmem PATH        hakmem shared library (default build/libhakmem.so under the repo)
  --extra SPEC         extra column, as in compare.sh: NAME[@BASE]:VAR=VAL[,VAR=VAL...]
  --programs LIST      comma-separated, among: $(echo $ALL_PROGRAMS | tr ' ' ',')
  --scale F            multiply every workload's size by F (default 1; 0.1 for a smoke run)
  --out DIR            results folder (default results/real-<timestamp>/ under the repo)
  --timeout S          kill a run after S seconds (default 120)
  --keep-inputs        keep the generated inputs (in the results folder, inputs/)
  -h, --help           show this text
EOF
}
hb_usage_error() { printf 'real_programs.sh: %s\n' "$*" >&2; usage >&2; exit 2; }

runs=5 allocs="" allocs_explicit=0 hakmem="$HB_ROOT/build/libhakmem.so" hakmem_explicit=0
extras=() programs=$ALL_PROGRAMS scale=1 out="" tmo=120 keep=0
need() { [ $# -ge 2 ] && [ -n "$2" ] || hb_usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) need "$@"; runs=$2; shift ;;
    --allocators) need "$@"; allocs=$2; allocs_explicit=1; shift ;;
    --hakmem) need "$@"; hakmem=$2; hakmem_explicit=1; shift ;;
    --extra) need "$@"; extras+=("$2"); shift ;;
    --programs) need "$@"; programs=$(echo "$2" | tr ',' ' '); shift ;;
    --scale) need "$@"; scale=$2; shift ;;
    --out) need "$@"; out=$2; shift ;;
    --timeout) need "$@"; tmo=$2; shift ;;
    --keep-inputs) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    *) hb_usage_error "unknown option '$1'" ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || hb_usage_error "--runs must be a positive integer, not '$runs'"
[[ $tmo =~ ^[1-9][0-9]*$ ]] || hb_usage_error "--timeout must be a positive integer, not '$tmo'"
[[ $scale =~ ^[0-9]*[.]?[0-9]+$ ]] && awk -v s="$scale" 'BEGIN { exit !(s > 0) }' ||
  hb_usage_error "--scale must be a positive number, not '$scale'"
for p in $programs; do
  [[ " $ALL_PROGRAMS " == *" $p "* ]] || hb_usage_error "unknown program '$p' (known: $ALL_PROGRAMS)"
done

# sz N: N scaled by --scale (at least 1)
sz() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'; }

# Debian's own binaries (a python3 earlier in PATH, e.g. pyenv's, is not Debian's).
PY=/usr/bin/python3 SQLITE=/usr/bin/sqlite3 GIT=/usr/bin/git GCC=/usr/bin/gcc SORT=/usr/bin/sort
GAWK=/usr/bin/gawk REDIS_SERVER=/usr/bin/redis-server REDIS_BENCH=/usr/bin/redis-benchmark
REDIS_CLI=/usr/bin/redis-cli

# prog_needs PROGRAM -> "BINARY PACKAGE" pairs it cannot run without
prog_needs() {
  case $1 in
    python) echo "$PY python3-minimal" ;;
    sqlite) echo "$SQLITE sqlite3" ;;
    git) echo "$GIT git" ;;
    gcc) echo "$GCC gcc" ;;
    redis) echo "$REDIS_SERVER redis-server $REDIS_BENCH redis-tools $REDIS_CLI redis-tools" ;;
    sort) echo "$SORT coreutils" ;;
    awk) echo "$GAWK gawk" ;;
  esac
}

# ensure_program PROGRAM: install what it needs; false (with a note) if that fails.
ensure_program() {
  local -a w
  read -r -a w <<<"$(prog_needs "$1")"
  local i
  for ((i = 0; i < ${#w[@]}; i += 2)); do
    [ -x "${w[i]}" ] && continue
    hb_apt_install "${w[i + 1]}" || true
    [ -x "${w[i]}" ] || { HB_NOTES+=("$1: ${w[i]} is missing and package ${w[i + 1]} could not be installed; program skipped"); return 1; }
  done
  return 0
}

# ---- inputs (deterministic; made once, by Debian's python3 without a preload) --------

gen_inputs() {
  local d=$IN
  mkdir -p "$d"
  case $1 in
    python)
      # sorts and groups N small tuples, a dict of lists, json dumps/loads of the groups,
      # string building, M small objects; prints sizes and checksums
      cat >"$d/work.py" <<EOF
import hashlib, json, random, sys
random.seed(20261204)
N, M = $(sz 400000), $(sz 200000)
rows = [(random.randrange(1000000), "k%d" % (i * 7919 % 20011), i) for i in range(N)]
rows.sort()
h = hashlib.sha256()
for r in rows[::997]:
    h.update(repr(r).encode())
groups = {}
for a, k, i in rows:
    groups.setdefault(k, []).append(a)
big = {k: {"n": len(v), "sum": sum(v), "head": v[:16], "tag": k.upper() * 3} for k, v in groups.items()}
s = json.dumps(big, sort_keys=True)
back = json.loads(s)
assert back == big
text = ",".join("%s:%d" % (k, back[k]["n"]) for k in sorted(back))
class Node:
    def __init__(self, i, s):
        self.i, self.s, self.kids = i, s, []
nodes = [Node(i, str(i) * 3) for i in range(M)]
for n in nodes[1:]:
    nodes[(n.i * 2654435761) % 4294967296 % n.i].kids.append(n)
depth = sum(len(n.kids) for n in nodes)
del nodes, rows
print("rows", N, "groups", len(groups), "json_bytes", len(s), "links", depth)
print("sha", h.hexdigest()[:32], hashlib.sha256(text.encode()).hexdigest()[:32])
EOF
      ;;
    sqlite)
      # an in-memory database: the table, 20 transactions of inserts, an index, queries
      "$PY" - "$(sz 200000)" >"$d/work.sql" <<'EOF'
import sys
n = int(sys.argv[1])
w = sys.stdout.write
w("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, note TEXT);\n")
for i in range(n):
    if i % 10000 == 0:
        w("BEGIN;\n")
    x = (i * 2654435761) % 4294967296
    w("INSERT INTO t(grp, name, val, note) VALUES(%d, 'name-%08x', %d.%02d, '%s');\n"
      % (x % 997, x, x % 100000, i % 100, "n" * (x % 60)))
    if i % 10000 == 9999 or i == n - 1:
        w("COMMIT;\n")
w("CREATE INDEX t_grp ON t(grp, val);\nCREATE INDEX t_name ON t(name);\n")
w("SELECT count(*), sum(length(note)) FROM t;\n")
w("SELECT grp, count(*), printf('%.2f', sum(val)), max(name) FROM t GROUP BY grp ORDER BY 3 DESC LIMIT 5;\n")
w("SELECT name, val FROM t ORDER BY name DESC LIMIT 3;\n")
w("SELECT count(*) FROM (SELECT grp, group_concat(name) g FROM t GROUP BY grp HAVING length(g) > 100);\n")
w("SELECT count(*) FROM t a JOIN t b ON a.grp = b.grp AND a.id + 1 = b.id;\n")
w("UPDATE t SET note = note || name WHERE grp % 3 = 0;\nDELETE FROM t WHERE grp % 7 = 0;\n")
w("SELECT count(*), sum(length(note)) FROM t;\nPRAGMA integrity_check;\n")
EOF
      ;;
    git)
      # a repository made by git fast-import (fixed dates): F files, C commits that each
      # change a few lines in a few files; then 1/6 of the files modified in the work tree
      local files commits
      files=$(sz 3000) commits=$(sz 1500)
      rm -rf "$d/repo"
      "$GIT" init -q -b main "$d/repo" || return 1
      "$PY" - "$files" "$commits" <<'EOF' | "$GIT" -C "$d/repo" fast-import --quiet || return 1
import sys
F, C = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
files = [["line %d of file %d: %s\n" % (l, f, "x" * ((f * 7 + l) % 40)) for l in range(40)] for f in range(F)]
def blob(data):
    out.write(b"data %d\n" % len(data)); out.write(data); out.write(b"\n")
for c in range(C):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer Bench <bench@example.com> %d +0000\n" % (1700000000 + 60 * c))
    blob(b"commit %d\n" % c)
    if c == 0:
        touched = range(F)
    else:
        touched = [(c * 37 + k * 101) % F for k in range(6)]
        for f in touched:
            l = (c * 13 + f) % 40
            files[f][l] = "line %d of file %d changed in commit %d\n" % (l, f, c)
            files[f].insert((c + f) % 40, "added in commit %d\n" % c)
    for f in touched:
        out.write(b"M 100644 inline src/d%02d/f%05d.txt\n" % (f % 50, f))
        blob("".join(files[f]).encode())
EOF
      "$GIT" -C "$d/repo" checkout -q -f main || return 1
      local f
      for ((f = 0; f < files; f += 6)); do
        printf 'a local change to file %d\n' "$f" >>"$d/repo/src/d$(printf %02d $((f % 50)))/f$(printf %05d "$f").txt"
      done
      "$GIT" -C "$d/repo" update-index -q --refresh >/dev/null
      # the timed part: history with patches, status, a big diff, blame, rev-list
      cat >"$d/git.sh" <<'EOF'
set -e -o pipefail
cd "$1"
export GIT_PAGER=cat PAGER=cat
git log -p --no-color | md5sum | cut -c1-16
git log --stat --format=%H%n%s | md5sum | cut -c1-16
git status --porcelain | wc -l
git diff --no-color HEAD~100 | md5sum | cut -c1-16
git diff --no-color | wc -l
git blame -s --date=iso src/d00/f00000.txt | md5sum | cut -c1-16
git rev-list --objects --all | wc -l
EOF
      ;;
    gcc)
      # one C file of F functions (loops, a switch, struct copies, inlined helpers)
      "$PY" - "$(sz 150)" >"$d/big.c" <<'EOF'
import sys
F = int(sys.argv[1])
p = print
p("#include <string.h>\nstruct s { int a[8]; double d; char name[24]; };")
p("static inline int mix(int x, int y) { return (x * 31) ^ (y >> 3); }")
for f in range(F):
    p("int fn%d(struct s *v, int n, const char *str) {" % f)
    p("  int acc = %d; struct s t = *v;" % f)
    p("  for (int i = 0; i < n; i++) {")
    p("    switch ((i + acc) %% %d) {" % (5 + f % 11))
    for c in range(5 + f % 11):
        p("    case %d: acc = mix(acc, t.a[%d] + i * %d); t.d += acc * %d.5; break;" % (c, c % 8, c + 1, c))
    p("    default: acc += (int)strlen(str);\n    }")
    p("    if (acc & %d) t.a[i & 7] ^= acc; else memcpy(t.name, str, 8);\n  }" % (1 << (f % 5)))
    p("  *v = t;\n  return acc + (int)t.d%s;\n}" % (" + fn%d(v, n - 1, str)" % (f - 1) if f % 4 else ""))
EOF
      ;;
    sort)
      # N lines "key,number,text"; sorted by the text field, then the number
      "$PY" - "$(sz 1500000)" >"$d/sort.in" <<'EOF'
import sys
n = int(sys.argv[1]); w = sys.stdout.write
for i in range(n):
    x = (i * 2654435761) % 4294967296
    w("k%07d,%d,%s\n" % (i, x % 100000, format(x, "x") * (1 + x % 4)))
EOF
      ;;
    awk)
      # N records "word group value": associative arrays of words and of group/word pairs
      "$PY" - "$(sz 350000)" >"$d/awk.in" <<'EOF'
import sys
n = int(sys.argv[1]); w = sys.stdout.write
for i in range(n):
    x = (i * 2654435761) % 4294967296
    w("w%x g%d %d\n" % (x % 300007, x % 1009, x % 1000))
EOF
      cat >"$d/work.awk" <<'EOF'
{ cnt[$1]++; sum[$1] += $3; pair[$2 SUBSEP $1] = pair[$2 SUBSEP $1] $3 "," }
END {
  for (k in cnt) { n++; t += cnt[k] * sum[k] % 1000003 }
  for (k in pair) { m++; l += length(pair[k]) }
  for (k in pair) if (length(pair[k]) < 4) delete pair[k]
  for (k in pair) r++
  printf "words %d pairs %d kept %d chars %d check %d\n", n, m, r, l, t
}
EOF
      ;;
    redis)
      cat >"$d/redis.sh" <<'EOF'
# redis.sh DIR N SERVER BENCH CLI: the server under the caller's LD_PRELOAD, the client
# tools without it; prints requests/s per test, checks, and a RESULT line.
dir=$1 n=$2 server=$3 bench=$4 cli=$5
sock=$dir/redis.sock
rm -rf "$dir" && mkdir -p "$dir" || exit 1
"$server" --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$dir" --daemonize no \
  --logfile "$dir/server.log" &
pid=$!
client() { env -u LD_PRELOAD "$@"; }
for _ in $(seq 200); do [ -S "$sock" ] && client "$cli" -s "$sock" ping >/dev/null 2>&1 && break; sleep 0.05; done
client "$cli" -s "$sock" ping | grep -qx PONG || { echo "server did not start"; kill "$pid"; exit 1; }
client "$bench" -s "$sock" -q -n "$n" -P 16 -r 200000 -d 64 -t set,get,lpush,lpop >"$dir/bench.out" 2>&1
rc=$?
tr '\r' '\n' <"$dir/bench.out" | grep 'requests per second' >"$dir/rps.txt"
awk '{ printf "%s %s\n", $1, $2 }' "$dir/rps.txt" | sed 's/:/ rps/; s/ [0-9.]*$/ ok/'
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
echo "bench_rc $rc tests $(wc -l <"$dir/rps.txt")"
echo "ping $(client "$cli" -s "$sock" ping) mylist $(client "$cli" -s "$sock" llen mylist)"
keys=$(client "$cli" -s "$sock" dbsize)
echo "dbsize_ok $([ "$keys" -ge 1000 ] 2>/dev/null && echo yes || echo "no ($keys)")"
client "$cli" -s "$sock" shutdown nosave >/dev/null 2>&1
wait "$pid"
echo "server_exit $?"
awk -v n="$n" -v h="$hwm" '{ t += n / $1 } END { if (t > 0) printf "RESULT ops_per_sec=%.0f peak_rss_kb=%s\n", NR * n / t, h }' \
  <(awk '{ print $2 }' "$dir/rps.txt")
EOF
      ;;
  esac
}

# work_cmd PROGRAM RUNDIR: fills CMD with the timed command (RUNDIR: scratch of this run).
work_cmd() {
  local r=$2
  case $1 in
    python) CMD=("$PY" "$IN/work.py") ;;
    sqlite) CMD=("$SQLITE" -batch :memory: ".read $IN/work.sql") ;;
    git) CMD=(bash "$IN/git.sh" "$IN/repo") ;;
    gcc) CMD=("$GCC" -O2 -c "$IN/big.c" -o "$r/big.o") ;;
    sort) CMD=(env LC_ALL=C "$SORT" -t, -k3,3 -k2,2n -o "$r/sorted.txt" "$IN/sort.in") ;;
    awk) CMD=("$GAWK" -f "$IN/work.awk" "$IN/awk.in") ;;
    redis) CMD=(bash "$IN/redis.sh" "$r/redis" "$(sz 300000)" "$REDIS_SERVER" "$REDIS_BENCH" "$REDIS_CLI") ;;
  esac
}

# digest PROGRAM STDOUT RUNDIR: what a run must reproduce exactly (its output, or the
# hashes of the files it wrote); redis's requests/s and RESULT line are left out.
digest() {
  case $1 in
    gcc) sha256sum <"$3/big.o" | cut -c1-32 ;;
    sort) { wc -l <"$3/sorted.txt"; sha256sum <"$3/sorted.txt" | cut -c1-32; } ;;
    redis) grep -v '^RESULT ' "$2" ;;
    *) cat "$2" ;;
  esac
}

# sane PROGRAM DIGEST_FILE: the reference itself must look right (row counts, "ok")
sane() {
  local f=$2
  case $1 in
    python) grep -q "^rows $(sz 400000) groups " "$f" ;;
    sqlite) grep -qx "$(sz 200000)|[0-9]*" "$f" && grep -qx ok "$f" ;;
    git) [ "$(sed -n 7p "$f")" -gt "$(sz 3000)" ] && [ "$(sed -n 3p "$f")" -ge "$(($(sz 3000) / 6))" ] ;;
    gcc) [ "$(wc -c <"$f")" -ge 32 ] ;;
    sort) [ "$(head -n 1 "$f")" = "$(sz 1500000)" ] ;;
    awk) grep -q '^words [1-9]' "$f" ;;
    redis) grep -qx 'bench_rc 0 tests 4' "$f" && grep -qx 'ping PONG mylist 0' "$f" && grep -qx 'dbsize_ok yes' "$f" &&
      grep -qx 'server_exit 0' "$f" ;;
  esac
}

# ---- setup ---------------------------------------------------------------------------

hb_busy_warning
hb_setup_columns "$allocs" "$allocs_explicit" "$hakmem" "$hakmem_explicit" "${extras[@]+"${extras[@]}"}"
hb_ensure_tools
[ -n "$HB_TIME" ] || hb_die "/usr/bin/time (package time) is needed for the peak RSS"

stamp=$(date +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$HB_ROOT/results/real-$stamp
mkdir -p "$out/logs" || hb_die "cannot create $out"
out=$(cd "$out" && pwd)
hb_snapshot_libs "$out/lib"
caller_env=$(hb_alloc_env)
[ -z "$caller_env" ] || HB_NOTES+=("the caller's allocator variables, inherited by every run of every column: $(echo $caller_env)")
base=mimalloc
hb_has_col mimalloc || base=${HB_COLS[0]}
ncols=${#HB_COLS[@]}

if [ $keep = 1 ]; then IN=$out/inputs; else IN=$(mktemp -d "${TMPDIR:-/tmp}/hak-real.XXXXXX"); fi
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/hak-real-run.XXXXXX")
# the inputs stay when a run failed, so that the commands in failures.log reproduce it
cleanup() {
  if [ -s "${out}/failures.log" ]; then
    hb_log "note: inputs kept for the failed runs' commands: $IN $SCRATCH"
    return
  fi
  rm -rf "$SCRATCH"
  [ $keep = 1 ] || rm -rf "$IN"
}
trap cleanup EXIT
mkdir -p "$IN"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$SCRATCH

hb_log "real_programs.sh: runs=$runs scale=$scale columns: ${HB_COLS[*]}   results: $out"
ready=""
for p in $programs; do
  ensure_program "$p" || continue
  hb_log "preparing $p ..."
  if ! gen_inputs "$p" >"$out/logs/$p.gen.log" 2>&1; then
    HB_NOTES+=("$p: making its input failed (logs/$p.gen.log); program skipped")
    continue
  fi
  # the reference: one run without a preload, untimed (also warms the page cache)
  mkdir -p "$SCRATCH/ref"
  work_cmd "$p" "$SCRATCH/ref"
  env -u LD_PRELOAD "${CMD[@]}" >"$out/logs/$p.ref.out" 2>"$out/logs/$p.ref.err"
  rc=$?
  digest "$p" "$out/logs/$p.ref.out" "$SCRATCH/ref" >"$out/logs/$p.ref.digest" 2>/dev/null
  if [ $rc != 0 ] || ! sane "$p" "$out/logs/$p.ref.digest"; then
    HB_NOTES+=("$p: the reference run without a preload failed (exit $rc, logs/$p.ref.*); program skipped")
    continue
  fi
  rm -rf "$SCRATCH/ref"
  ready="$ready $p"
done
programs=$(echo $ready)
[ -n "$programs" ] || hb_die "no program could be prepared"
for n in "${HB_NOTES[@]+"${HB_NOTES[@]}"}"; do hb_log "note: $n"; done

# ---- the runs ------------------------------------------------------------------------

raw=$out/raw.csv
echo "program,allocator,run,status,wall_s,cpu_s,peak_rss_kb,requests_per_sec,cpu_pct,load1" >"$raw"
: >"$out/failures.log"
declare -A SECS CPUS RSS RPS FAILS NOK
LOADS=""
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$EPOCHREALTIME
nb=$(echo $programs | wc -w)
nruns=$((runs * nb * ncols))
k_run=0
for ((r = 1; r <= runs; r++)); do
  for p in $programs; do
    for ((k = 0; k < ncols; k++)); do
      ci=$(((k + r - 1) % ncols)) # rotate the starting column each repetition
      col=${HB_COLS[$ci]}
      rd=$SCRATCH/run
      rm -rf "$rd" && mkdir -p "$rd"
      work_cmd "$p" "$rd"
      logp=$out/logs/$p.$col.r$r
      hb_run "$ci" "$tmo" "$logp" "${CMD[@]}"
      status=$RUN_STATUS rps=""
      # user+sys seconds of every process of the run: less moved by other work than wall
      cpus=$(awk -v w="$RUN_SECS" -v c="$RUN_CPU" 'BEGIN { if (c != "") printf "%.2f", w * c / 100 }')
      [ "$p" = redis ] || [ "$status" != noresult ] || status=ok # only redis prints RESULT
      if [ "$p" = redis ] && [ "$status" = ok ]; then
        rps=$RUN_OPS
        hb_kv RUN_RSS_KB "$RUN_LINE" peak_rss_kb # the server's VmHWM, not the wrapper's tree
      fi
      if [ "$status" = ok ] && ! cmp -s <(digest "$p" "$logp.out" "$rd" 2>&1) "$out/logs/$p.ref.digest"; then
        status=wrong-output
        digest "$p" "$logp.out" "$rd" >"$logp.digest" 2>&1
      fi
      key="$p|$col"
      if [ "$status" = ok ]; then
        SECS[$key]="${SECS[$key]:-} $RUN_SECS"
        [ -z "$cpus" ] || CPUS[$key]="${CPUS[$key]:-} $cpus"
        RSS[$key]="${RSS[$key]:-} $RUN_RSS_KB"
        [ -z "$rps" ] || RPS[$key]="${RPS[$key]:-} $rps"
        NOK[$key]=$((${NOK[$key]:-0} + 1))
        rm -f "$logp.err" "$logp.out"
      else
        FAILS[$key]="${FAILS[$key]:-}${FAILS[$key]:+ }$status"
        {
          echo "== $p / $col / run $r: $status"
          echo "command: $(hb_cmdline "$ci" "${CMD[@]}")"
          [ "$status" != wrong-output ] || echo "--- digest differs from logs/$p.ref.digest: $(diff "$out/logs/$p.ref.digest" "$logp.digest" | head -n 6 | tr '\n' ' ')"
          echo "--- stderr (last 20 lines):"
          tail -n 20 "$logp.err" 2>/dev/null
          echo
        } >>"$out/failures.log"
      fi
      echo "$p,$col,$r,$status,$RUN_SECS,$cpus,$RUN_RSS_KB,$rps,$RUN_CPU,$RUN_LOAD" >>"$raw"
      LOADS="$LOADS $RUN_LOAD"
      k_run=$((k_run + 1))
      printf '[%*d/%d] run %d/%d %-7s %-10s %7ss %9s KiB %10s  %-12s cpu %4s%%  load %-5s %s\n' \
        ${#nruns} "$k_run" "$nruns" "$r" "$runs" "$p" "$col" "$RUN_SECS" "${RUN_RSS_KB:--}" \
        "${rps:+$(hb_human "$rps") req/s}" "$status" "${RUN_CPU:--}" "$RUN_LOAD" \
        "$(hb_time_left "$k_run" "$nruns" "$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')")" >&2
    done
  done
done
t_total=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---- summary -------------------------------------------------------------------------

# stat KIND KEY WHICH: median/min/max of a key's passing runs (seconds are decimals: x1000)
stat() {
  local vals
  case $1 in
    secs) vals=$(for v in ${SECS[$2]:-}; do awk -v v="$v" 'BEGIN { printf "%.0f ", v * 1000 }'; done) ;;
    cpu) vals=$(for v in ${CPUS[$2]:-}; do awk -v v="$v" 'BEGIN { printf "%.0f ", v * 1000 }'; done) ;;
    rss) vals=${RSS[$2]:-} ;;
    rps) vals=${RPS[$2]:-} ;;
  esac
  # shellcheck disable=SC2086
  "hb_$3" $vals
}

# value KIND N -> human text (N: ms, KiB or req/s)
value() {
  case $1 in
    secs | cpu) awk -v x="$2" 'BEGIN { printf "%.2f s", x / 1000 }' ;;
    rss) awk -v x="$2" 'BEGIN { printf "%.1f MiB", x / 1024 }' ;;
    rps) printf '%s req/s' "$(hb_human "$2")" ;;
  esac
}

# cell KIND PROGRAM COLUMN -> "median (ratio) | min-max" (or the failures)
cell() {
  local kind=$1 key="$2|$3" m bm lo hi txt ok=${NOK["$2|$3"]:-0}
  m=$(stat "$kind" "$key" median)
  bm=$(stat "$kind" "$2|$base" median)
  if [ -z "$m" ]; then
    printf '**FAIL** (%s) | - ' "${FAILS[$key]:-no run}"
    return
  fi
  txt="$(value "$kind" "$m")"
  [ -z "$bm" ] || txt="$txt ($(hb_ratio "$m" "$bm")x)"
  [ "$ok" -lt "$runs" ] && txt="$txt **[$ok/$runs ok: ${FAILS[$key]}]**"
  lo=$(stat "$kind" "$key" min) hi=$(stat "$kind" "$key" max)
  case $kind in
    secs | cpu) printf '%s | %s' "$txt" "$(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.2f-%.2f", a / 1000, b / 1000 }')" ;;
    rss) printf '%s | %s' "$txt" "$(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.1f-%.1f", a / 1024, b / 1024 }')" ;;
    rps) printf '%s | %s' "$txt" "$(hb_human_range "$lo" "$hi")" ;;
  esac
}

# table KIND PROGRAMS...
table() {
  local kind=$1 col p
  shift
  printf '| program |'
  for col in "${HB_COLS[@]}"; do printf ' %s | min-max |' "$col"; done
  printf '\n|---|'
  for col in "${HB_COLS[@]}"; do printf -- '---:|---:|'; done
  printf '\n'
  for p in "$@"; do
    printf '| %s |' "$p"
    for col in "${HB_COLS[@]}"; do printf ' %s |' "$(cell "$kind" "$p" "$col")"; done
    printf '\n'
  done
}

summary=$out/summary.csv
echo "program,allocator,runs_ok,runs,median_wall_s,min_wall_s,max_wall_s,median_cpu_s,min_cpu_s,max_cpu_s,median_peak_rss_kb,min_peak_rss_kb,max_peak_rss_kb,median_requests_per_sec,min_requests_per_sec,max_requests_per_sec,wall_ratio_vs_$base,cpu_ratio_vs_$base,rss_ratio_vs_$base,rps_ratio_vs_$base,failures" >"$summary"
for p in $programs; do
  for col in "${HB_COLS[@]}"; do
    key="$p|$col"
    line="$p,$col,${NOK[$key]:-0},$runs"
    for kind in secs cpu rss rps; do
      for w in median min max; do
        v=$(stat "$kind" "$key" "$w")
        [ "$kind" = secs ] || [ "$kind" = cpu ] && [ -n "$v" ] && v=$(awk -v x="$v" 'BEGIN { printf "%.3f", x / 1000 }')
        line="$line,$v"
      done
    done
    for kind in secs cpu rss rps; do line="$line,$(hb_ratio "$(stat "$kind" "$key" median)" "$(stat "$kind" "$p|$base" median)")"; done
    echo "$line,${FAILS[$key]:-}" >>"$summary"
  done
done

timed=$(for p in $programs; do [ "$p" = redis ] || echo "$p"; done)
report() {
  echo "- date: $stamp; repo commit $(git -C "$HB_ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$([ -n "$(git -C "$HB_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo ' (with uncommitted changes)')"
  for i in "${!HB_COLS[@]}"; do
    lib=${HB_COL_LIB[$i]}
    [ -n "$lib" ] && [ -n "${HB_LIB_BUILD[$lib]:-}" ] && echo "- ${HB_COLS[$i]} library: ${HB_LIB_BUILD[$lib]}"
  done
  echo "- host: $(hb_environment)"
  echo "- runs per cell: $runs (columns round-robin inside each run, the first one rotated), scale $scale;" \
    "load average at start $load_start; 1-minute load before each run $(echo $LOADS | tr ' ' '\n' | sort -n | sed -n '1p;$p' | paste -sd- -) (min-max); wall time ${t_total}s"
  echo
  if [ -n "$timed" ]; then
    echo "Wall time (median of the runs; ratio vs $base, lower is better; min-max in s)"
    echo
    table secs $timed
    echo
    echo "CPU time (user+sys of all the run's processes, median; ratio vs $base, lower is better; min-max in s)"
    echo
    table cpu $timed
    echo
  fi
  echo "Peak RSS (median of the runs; ratio vs $base, lower is better; min-max in MiB)"
  echo
  table rss $programs
  if [[ " $programs " == *" redis "* ]]; then
    echo
    echo "redis: requests/s of redis-benchmark over set, get, lpush and lpop (total requests / total time; ratio vs $base, higher is better)"
    echo
    table rps redis
  fi
  for n in "${HB_NOTES[@]+"${HB_NOTES[@]}"}"; do echo; echo "note: $n"; done
  if [ -s "$out/failures.log" ]; then
    echo
    echo "FAILURES (exact commands in $out/failures.log):"
    echo
    grep -E '^(==|command:)' "$out/failures.log" | sed 's/^/    /'
  fi
}
report >"$out/summary.md"
cat "$out/summary.md"
echo
echo "results: $out"
nfail=$(grep -c '^==' "$out/failures.log" 2>/dev/null || true)
[ "${nfail:-0}" = 0 ] || exit 3
exit 0
