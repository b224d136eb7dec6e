# lib_bench.sh — shared by compare.sh and larson.sh (sourced, not run).
# shellcheck shell=bash disable=SC2034  # RUN_* and HB_BINDIR are read by the sourcing scripts
#
# Columns: each column is an allocator run (name, library to preload, extra env).
#   glibc     no preload (the system allocator)
#   mimalloc  libmimalloc.so.2          (Debian package libmimalloc2.0)
#   jemalloc  libjemalloc.so.2          (Debian package libjemalloc2)
#   tcmalloc  libtcmalloc_minimal.so.4  (Debian package libtcmalloc-minimal4)
#   hakmem    build/libhakmem.so (or --hakmem PATH)
#   extras    --extra 'NAME[@BASE]:VAR=VAL[,VAR=VAL...]' — BASE (default hakmem)
#             preloaded with those variables, e.g. 'hakmem-ace-off:HAKMEM_ACE_ENABLED=0'
#
# A run: `timeout` around `/usr/bin/time -f %M` around `env VARS LD_PRELOAD=LIB bin args`.
# Its result: the last "RESULT " line of stdout (ops_per_sec=...), the max RSS that
# time(1) saw, and a status: ok, crash:SIGNAME, exit:N, timeout, noresult.

HB_ROOT=${HB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
HB_KNOWN_ALLOCATORS="glibc mimalloc jemalloc tcmalloc hakmem"
HB_BENCH_PROGRAMS="bench_micro larson fragment_stress huge_ws realloc_bench mid_mt phases proc_sample large_replace
  batches alloc_test mstress minimize bigfactor rebuild"

hb_log() { printf '%s\n' "$*" >&2; }
hb_die() { printf '%s: error: %s\n' "${HB_PROG:-bench}" "$*" >&2; exit 1; }

# Library directories to search for the peer allocators.
hb_libdirs() {
  local ma
  ma=$(gcc -print-multiarch 2>/dev/null || true)
  [ -n "$ma" ] && printf '%s\n' "/usr/lib/$ma" "/lib/$ma"
  printf '%s\n' /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/local/lib /usr/lib /usr/lib64
}

# hb_find_so PATTERN...: print the first existing file matching one of the patterns.
hb_find_so() {
  local d p f
  for p in "$@"; do
    for d in $(hb_libdirs); do
      for f in "$d"/$p; do
        [ -e "$f" ] && { printf '%s\n' "$f"; return 0; }
      done
    done
  done
  return 1
}

hb_peer_package() {
  case $1 in
    mimalloc) echo libmimalloc2.0 ;;
    jemalloc) echo libjemalloc2 ;;
    tcmalloc) echo libtcmalloc-minimal4 ;;
  esac
}

hb_peer_lib() {
  case $1 in
    mimalloc) hb_find_so 'libmimalloc.so.2' 'libmimalloc.so.2.*' 'libmimalloc.so' ;;
    jemalloc) hb_find_so 'libjemalloc.so.2' 'libjemalloc.so' ;;
    tcmalloc) hb_find_so 'libtcmalloc_minimal.so.4' 'libtcmalloc_minimal.so.4.*' 'libtcmalloc.so.4' ;;
    *) return 1 ;;
  esac
}

HB_APT_UPDATED=0
# hb_apt_install PKG...: install Debian packages; quiet; returns apt's status.
hb_apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  [ "$(id -u)" = 0 ] || { hb_log "note: not root, cannot apt-get install $*"; return 1; }
  hb_log "installing $* with apt-get ..."
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then return 0; fi
  if [ "$HB_APT_UPDATED" = 0 ]; then
    HB_APT_UPDATED=1
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
  fi
  return 1
}

# Tools: /usr/bin/time (package time) for max RSS, timeout (coreutils).
hb_ensure_tools() {
  HB_TIME=/usr/bin/time
  if [ ! -x "$HB_TIME" ]; then
    hb_apt_install time || true
  fi
  if [ ! -x "$HB_TIME" ]; then
    hb_log "note: /usr/bin/time is missing; peak RSS comes from the programs' own VmHWM"
    HB_TIME=""
  fi
  command -v timeout >/dev/null 2>&1 || hb_die "timeout (coreutils) is required"
}

# hb_ensure_bins BINDIR: make sure the benchmark binaries exist; sets HB_BINDIR.
# With an explicit --bindir they must already be there. Otherwise the build tree's
# bench/ is used when complete and not older than the sources, else the benchmarks
# are built standalone into build-bench/ (independent of whether hakmem builds).
hb_ensure_bins() {
  local want=$1 p missing=0 stale=0
  if [ -n "$want" ]; then
    for p in $HB_BENCH_PROGRAMS; do [ -x "$want/$p" ] || hb_die "--bindir $want has no $p"; done
    HB_BINDIR=$(cd "$want" && pwd)
    return 0
  fi
  local main=$HB_ROOT/build/bench
  for p in $HB_BENCH_PROGRAMS; do
    [ -x "$main/$p" ] || missing=1
    # stale: its own source or the common helpers changed since it was built (make leaves
    # the other binaries' times alone, so comparing every source with it would misfire)
    [ -x "$main/$p" ] && [ -n "$(find "$HB_ROOT/bench" \( -name "$p.c" -o -name 'bench_common.[ch]' \) -newer "$main/$p" 2>/dev/null)" ] && stale=1
  done
  if [ $missing = 0 ] && [ $stale = 0 ]; then
    HB_BINDIR=$main
    return 0
  fi
  local sb=$HB_ROOT/build-bench
  hb_log "build/bench is missing or older than bench/ sources: using a standalone build in $sb"
  command -v cmake >/dev/null 2>&1 || hb_die "cmake is needed to build the benchmarks"
  if ! { cmake -S "$HB_ROOT/bench" -B "$sb" -DCMAKE_BUILD_TYPE=Release >"$sb.log" 2>&1 &&
         cmake --build "$sb" -j"${HAK_JOBS:-$(nproc)}" >>"$sb.log" 2>&1; }; then
    hb_die "building the benchmarks failed; see $sb.log"
  fi
  rm -f "$sb.log"
  HB_BINDIR=$sb/bench
}

# Column registry (parallel arrays).
HB_COLS=()        # names
HB_COL_LIB=()     # library to preload ("" = none)
HB_COL_ENV=()     # newline-separated VAR=VAL list
HB_NOTES=()       # things to tell the user at the end

hb_add_col() { HB_COLS+=("$1"); HB_COL_LIB+=("$2"); HB_COL_ENV+=("$3"); }

hb_has_col() { local c; for c in "${HB_COLS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

# hb_setup_columns ALLOCATORS_CSV EXPLICIT(0/1) HAKMEM_PATH HAKMEM_EXPLICIT(0/1) EXTRA...
# ALLOCATORS_CSV empty = every known allocator that can be found (missing ones are
# skipped with a note); an explicitly requested allocator that cannot be found is an error.
hb_setup_columns() {
  local list=$1 explicit=$2 hak=$3 hak_explicit=$4
  shift 4
  local a lib
  [ -n "$list" ] || list=$(echo "$HB_KNOWN_ALLOCATORS" | tr ' ' ',')
  local names=()
  IFS=, read -r -a names <<<"$list"
  for a in "${names[@]}"; do
    case $a in
      glibc) hb_add_col glibc "" "" ;;
      mimalloc | jemalloc | tcmalloc)
        lib=$(hb_peer_lib "$a") || { hb_apt_install "$(hb_peer_package "$a")" && lib=$(hb_peer_lib "$a"); } || lib=""
        if [ -n "$lib" ]; then
          hb_add_col "$a" "$lib" ""
        elif [ "$explicit" = 1 ]; then
          hb_die "$a was requested but its library was not found (package $(hb_peer_package "$a"))"
        else
          HB_NOTES+=("$a: library not found and package $(hb_peer_package "$a") could not be installed; column skipped")
        fi
        ;;
      hakmem)
        if [ -f "$hak" ]; then
          hb_add_col hakmem "$(cd "$(dirname "$hak")" && pwd)/$(basename "$hak")" ""
        elif [ "$explicit" = 1 ] || [ "$hak_explicit" = 1 ]; then
          hb_die "hakmem was requested but $hak does not exist (build it: cmake -S $HB_ROOT -B $HB_ROOT/build && cmake --build $HB_ROOT/build -j2, or pass --hakmem PATH)"
        else
          HB_NOTES+=("hakmem: $hak does not exist (not built yet?); column skipped")
        fi
        ;;
      "") ;;
      *) hb_usage_error "unknown allocator '$a' (known: $HB_KNOWN_ALLOCATORS)" ;;
    esac
  done
  local spec name rest base envs line
  for spec in "$@"; do
    # NAME[@BASE]:ENV or NAME[@BASE]=ENV — whichever of ':' and '=' comes first separates.
    local head=${spec%%[:=]*}
    [ "$head" != "$spec" ] || hb_usage_error "--extra '$spec': expected NAME:VAR=VAL[,VAR=VAL...]"
    rest=${spec:${#head}+1}
    name=${head%%@*}
    base=hakmem
    [ "$name" != "$head" ] && base=${head#*@}
    [[ $name =~ ^[A-Za-z0-9._+-]+$ ]] || hb_usage_error "--extra '$spec': bad column name '$name'"
    hb_has_col "$name" && hb_usage_error "--extra '$spec': column '$name' already exists"
    envs=$(printf '%s' "$rest" | sed -E 's/,([A-Za-z_][A-Za-z0-9_]*=)/\n\1/g; s/[[:space:]]+([A-Za-z_][A-Za-z0-9_]*=)/\n\1/g')
    while IFS= read -r line; do
      [ -z "$line" ] && continue
      [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || hb_usage_error "--extra '$spec': '$line' is not VAR=VALUE"
    done <<<"$envs"
    case $base in
      glibc) lib="" ;;
      mimalloc | jemalloc | tcmalloc)
        lib=$(hb_peer_lib "$base") || hb_die "--extra '$spec': $base library not found" ;;
      hakmem)
        [ -f "$hak" ] || hb_die "--extra '$spec' needs hakmem, but $hak does not exist"
        lib="$(cd "$(dirname "$hak")" && pwd)/$(basename "$hak")" ;;
      */*)   # a library file: another build of hakmem (before/after a change)
        [ -f "$base" ] || hb_die "--extra '$spec': $base does not exist"
        lib="$(cd "$(dirname "$base")" && pwd)/$(basename "$base")" ;;
      *) hb_usage_error "--extra '$spec': unknown base allocator '$base'" ;;
    esac
    hb_add_col "$name" "$lib" "$envs"
  done
  [ ${#HB_COLS[@]} -gt 0 ] || hb_die "no allocator columns to run"
}

# hb_lib_build LIB: which code a hakmem library was built from. The build writes
# libhakmem.build-info next to the library at each link (cmake/BuildInfo.cmake): the
# commit of the sources, whether they had uncommitted changes, and the time. Without
# that file (an older build) the best guess is the HEAD of the source tree named in the
# build tree's CMakeCache.txt, said to be a guess.
declare -A HB_LIB_BUILD=()
hb_lib_build() {
  local lib=$1 dir info commit dirty built src
  dir=$(dirname "$(readlink -f "$lib")")
  info=$dir/libhakmem.build-info
  if [ -f "$info" ]; then
    commit=$(sed -n 's/^commit=//p' "$info")
    dirty=$(sed -n 's/^dirty=//p' "$info")
    built=$(sed -n 's/^built=//p' "$info")
    printf 'build commit %s%s, linked %s\n' "${commit:0:12}" "$([ "$dirty" = 1 ] && echo ' + uncommitted changes')" "$built"
    return
  fi
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$dir/CMakeCache.txt" 2>/dev/null)
  commit=$( [ -n "$src" ] && git -C "$src" rev-parse --short=12 HEAD 2>/dev/null)
  if [ -n "$commit" ]; then
    printf 'build commit unknown (no libhakmem.build-info; its source tree %s is at %s now)\n' "$src" "$commit"
  else
    printf 'build commit unknown (no libhakmem.build-info)\n'
  fi
}

# hb_alloc_env: the caller's variables that steer an allocator (HAKMEM_*, MIMALLOC_*,
# MALLOC_* (MALLOC_CONF, MALLOC_ARENA_MAX, ...), JE_MALLOC_CONF, TCMALLOC_*,
# GLIBC_TUNABLES), one VAR=VALUE a line. Every run inherits them, in every column.
hb_alloc_env() {
  env | grep -E '^(HAKMEM_[A-Za-z0-9_]*|MIMALLOC_[A-Za-z0-9_]*|MALLOC_[A-Za-z0-9_]*|JE_MALLOC_CONF|_RJEM_MALLOC_CONF|TCMALLOC_[A-Za-z0-9_]*|GLIBC_TUNABLES)=' | LC_ALL=C sort
}

# hb_environment: one line on the machine and the system's C library (for summaries).
hb_environment() {
  local thp mem gl
  thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
  mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
  gl=$(ldd --version 2>/dev/null | head -n 1 | awk '{print $NF}')
  printf '%s CPUs (%s), %s RAM, kernel %s, glibc %s, transparent hugepages: %s, %s\n' "$(nproc)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "${mem:-?}" "$(uname -r)" "${gl:-?}" \
    "${thp:-?}" "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
}

# hb_snapshot_libs DIR: copy every preloaded library that is not a system one (hakmem)
# into DIR and preload the copy, so a rebuild of build/libhakmem.so in the middle of a
# comparison cannot mix two versions, and failing commands stay reproducible.
hb_snapshot_libs() {
  local dir=$1 i lib real dst sum
  declare -A done_map=()
  mkdir -p "$dir" || hb_die "cannot create $dir"
  for i in "${!HB_COLS[@]}"; do
    lib=${HB_COL_LIB[$i]}
    case $lib in "" | /usr/lib/* | /lib/* | /usr/lib64/* | /usr/local/lib/*) continue ;; esac
    real=$(readlink -f "$lib")
    dst=$dir/$(basename "$lib")
    if [ -z "${done_map[$real]:-}" ]; then
      [ -e "$dst" ] && dst=$dir/col$i-$(basename "$lib")   # another build of the same name
      cp -p "$real" "$dst" || hb_die "cannot copy $real to $dst"
      sum=$(sha256sum "$dst" | cut -c1-16)
      HB_LIB_BUILD[$dst]=$(hb_lib_build "$lib")
      [ -f "$(dirname "$real")/libhakmem.build-info" ] && cp -p "$(dirname "$real")/libhakmem.build-info" "$dir/"
      HB_NOTES+=("$(basename "$lib"): runs preload a snapshot of $lib (-> $real, modified $(date -r "$real" '+%Y-%m-%d %H:%M:%S'), sha256 $sum..., ${HB_LIB_BUILD[$dst]}) copied to $dst")
      done_map[$real]=$dst
    fi
    HB_COL_LIB[$i]=${done_map[$real]}
  done
}

# hb_col_index NAME -> index in HB_COLS
hb_col_index() {
  local i
  for i in "${!HB_COLS[@]}"; do [ "${HB_COLS[$i]}" = "$1" ] && { echo "$i"; return 0; }; done
  return 1
}

# The shell command line that reproduces a run of column $1 (for logs and reports).
hb_cmdline() {
  local ci=$1
  shift
  local out="" line
  while IFS= read -r line; do
    [ -n "$line" ] && out+="$(printf '%q' "$line") "
  done <<<"${HB_COL_ENV[$ci]}"
  if [ -n "${HB_COL_LIB[$ci]}" ]; then out+="LD_PRELOAD=$(printf '%q' "${HB_COL_LIB[$ci]}") "; fi
  local a
  for a in "$@"; do out+="$(printf '%q' "$a") "; done
  printf 'env %s\n' "${out% }"
}

# hb_kv VAR LINE KEY: VAR = the value of KEY=value in the space-separated LINE (empty if
# absent); VAR "-" prints it instead.
hb_kv() {
  local re="(^| )$3=([^ ]*)" v=""
  [[ $2 =~ $re ]] && v=${BASH_REMATCH[2]}
  if [ "$1" = - ]; then printf '%s' "$v"; else printf -v "$1" '%s' "$v"; fi
}

# hb_run COLUMN_INDEX TIMEOUT_S LOGPREFIX BIN ARGS...
# With HB_WHOLE=1 in its environment (a whole-process row, see hb_bench_cmd) RUN_OPS is
# the ops= of the RESULT line divided by the wall time of the whole process (start-up,
# set-up, teardown and exit included), not the program's own ops_per_sec.
# Sets RUN_STATUS, RUN_OPS, RUN_RSS_KB, RUN_LINE (the RESULT line), RUN_SECS (wall),
# RUN_CPU (user+sys seconds of the run as % of wall; how much CPU it actually got) and
# RUN_LOAD (1-minute load average just before the run: other work on the machine).
hb_run() {
  local ci=$1 tmo=$2 logp=$3
  shift 3
  local envv=() line
  while IFS= read -r line; do [ -n "$line" ] && envv+=("$line"); done <<<"${HB_COL_ENV[$ci]}"
  if [ -n "${HB_COL_LIB[$ci]}" ]; then envv+=("LD_PRELOAD=${HB_COL_LIB[$ci]}"); fi
  local tf=$logp.time out=$logp.out err=$logp.err rc t0 t1
  read -r RUN_LOAD _ </proc/loadavg
  t0=$EPOCHREALTIME
  if [ -n "$HB_TIME" ]; then
    timeout -k 5 "$tmo" "$HB_TIME" -f 'HB_MAXRSS_KB=%M HB_USER=%U HB_SYS=%S HB_WALL=%e' -o "$tf" env -u LD_PRELOAD "${envv[@]}" "$@" >"$out" 2>"$err"
  else
    timeout -k 5 "$tmo" env -u LD_PRELOAD "${envv[@]}" "$@" >"$out" 2>"$err"
  fi
  rc=$?
  t1=$EPOCHREALTIME
  # parsed with bash alone: a fork per field under a loaded machine costs more than a
  # smoke run of the program
  RUN_LINE="" line=""
  while IFS= read -r line; do [[ $line == "RESULT "* ]] && RUN_LINE=$line; done <"$out"
  hb_kv RUN_OPS "$RUN_LINE" ops_per_sec
  RUN_RSS_KB="" RUN_CPU=""
  if [ -f "$tf" ]; then
    local tl="" u s w
    while IFS= read -r line; do [[ $line == HB_MAXRSS_KB=* ]] && tl=$line; done <"$tf"
    hb_kv RUN_RSS_KB "$tl" HB_MAXRSS_KB
    hb_kv u "$tl" HB_USER
    hb_kv s "$tl" HB_SYS
    hb_kv w "$tl" HB_WALL
    [ -n "$w" ] && RUN_CPU=$(awk -v u="$u" -v s="$s" -v w="$w" 'BEGIN { if (w > 0) printf "%.0f", 100 * (u + s) / w }')
  fi
  [ -n "$RUN_RSS_KB" ] || hb_kv RUN_RSS_KB "$RUN_LINE" peak_rss_kb
  RUN_SECS=$(awk -v a="$t0" -v b="$t1" -v n="${HB_WHOLE:-0}" -v ops="$(hb_kv - "$RUN_LINE" ops)" \
    'BEGIN { printf "%.2f", b - a; if (n == 1 && ops != "" && b > a) printf " %.0f", ops / (b - a) }')
  local whole_ops=${RUN_SECS#* }
  RUN_SECS=${RUN_SECS%% *}
  if [ $rc = 124 ] || { [ $rc = 137 ] && [ ! -s "$tf" ]; }; then
    RUN_STATUS=timeout
  elif [ $rc -gt 128 ]; then
    RUN_STATUS="crash:$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
  elif [ $rc != 0 ]; then
    RUN_STATUS="exit:$rc"
  elif [ -z "$RUN_OPS" ]; then
    RUN_STATUS=noresult
  else
    RUN_STATUS=ok
  fi
  [ "$RUN_STATUS" = ok ] || { RUN_OPS=""; }
  if [ "$RUN_STATUS" = ok ] && [ "${HB_WHOLE:-0}" = 1 ]; then
    RUN_OPS=""
    [ "$whole_ops" != "$RUN_SECS" ] && RUN_OPS=$whole_ops
    [ -n "$RUN_OPS" ] || RUN_STATUS=noresult
  fi
  rm -f "$tf"
  return 0
}

# hb_busy_warning: warn on stderr when the 1-minute load average is above (cores - 0.5),
# i.e. something else is using a core and the runs will compete with it. Skipped when
# HB_LOAD_CHECKED=1 (scripts/bench.sh checks before its own build raises the load).
# HB_LOADAVG names another file to read in place of /proc/loadavg (for the tests).
hb_busy_warning() {
  [ "${HB_LOAD_CHECKED:-0}" = 1 ] && return 0
  local load cores
  load=$(cut -d' ' -f1 "${HB_LOADAVG:-/proc/loadavg}" 2>/dev/null) || return 0
  cores=$(nproc 2>/dev/null || echo 1)
  if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l > c - 0.5) }'; then
    hb_log "${HB_PROG:-bench}: warning: machine is busy: results will be noisy (1-minute load average $load on $cores cores)"
  fi
}

# hb_duration SECONDS -> 1m05s / 42s
hb_duration() {
  awk -v s="$1" 'BEGIN { s = int(s + 0.5); if (s >= 60) printf "%dm%02ds\n", s / 60, s % 60; else printf "%ds\n", s }'
}

# hb_eta DONE TOTAL ELAPSED_S -> "eta 1m05s": time left if the remaining runs take as
# long on average as the finished ones.
hb_eta() {
  local done=$1 total=$2 elapsed=$3
  if [ "$done" -ge "$total" ]; then echo "done in $(hb_duration "$elapsed")"; return; fi
  echo "eta $(hb_duration "$(awk -v d="$done" -v t="$total" -v e="$elapsed" 'BEGIN { print (d > 0 ? e / d * (t - d) : 0) }')")"
}

# hb_ints VALUES...: true when every argument is a plain non-negative integer below 10^18
# (the usual case: ops/s and KiB are printed as integers), so the helpers below can stay
# in bash; anything else goes through awk. A summary calls them hundreds of times.
hb_ints() {
  local v
  for v in "$@"; do [[ $v =~ ^[0-9]{1,18}$ ]] || return 1; done
}

# hb_median VALUES... -> median of the numeric values (empty if none)
hb_median() {
  if hb_ints "$@"; then
    [ $# -gt 0 ] || return 0
    local a=() v i j x n=$#
    for v in "$@"; do a+=($((10#$v))); done
    for ((i = 1; i < n; i++)); do
      x=${a[i]}
      for ((j = i - 1; j >= 0 && a[j] > x; j--)); do a[j + 1]=${a[j]}; done
      a[j + 1]=$x
    done
    if ((n % 2)); then echo "${a[(n - 1) / 2]}"; return; fi
    x=$((a[n / 2 - 1] + a[n / 2]))
    i=$((x / 2))
    ((x % 2 && i % 2)) && i=$((i + 1)) # awk's %.0f rounds a half to even
    echo "$i"
    return
  fi
  hb_median_fmt %.0f "$@"
}

# hb_median_fmt FORMAT VALUES... -> median of the numeric values printed with the printf
# FORMAT (e.g. %.2f; empty if none)
hb_median_fmt() {
  local fmt=$1
  shift
  printf '%s\n' "$@" | awk -v f="$fmt\n" 'NF && $1 ~ /^[0-9.eE+-]+$/ {v[n++]=$1} END {
    if (n == 0) exit
    for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j+1] = v[j]; v[j+1] = x }
    if (n % 2) printf f, v[(n-1)/2]; else printf f, (v[n/2-1] + v[n/2]) / 2 }'
}

# hb_min VALUES... / hb_max VALUES... -> smallest / largest numeric value (empty if none)
hb_min() {
  if hb_ints "$@"; then
    local v m=""
    for v in "$@"; do v=$((10#$v)); [ -z "$m" ] || ((v < m)) && m=$v; done
    [ -z "$m" ] || echo "$m"
    return
  fi
  printf '%s\n' "$@" | awk 'NF && $1 ~ /^[0-9.eE+-]+$/ { if (n++ == 0 || $1 + 0 < m) m = $1 + 0 } END { if (n) printf "%.0f\n", m }'; }
hb_max() {
  if hb_ints "$@"; then
    local v m=""
    for v in "$@"; do v=$((10#$v)); [ -z "$m" ] || ((v > m)) && m=$v; done
    [ -z "$m" ] || echo "$m"
    return
  fi
  printf '%s\n' "$@" | awk 'NF && $1 ~ /^[0-9.eE+-]+$/ { if (n++ == 0 || $1 + 0 > m) m = $1 + 0 } END { if (n) printf "%.0f\n", m }'; }

# hb_human_range MIN MAX -> "280-301M": both ends in the unit of MAX, 3 significant
# digits; "-" when either is missing.
hb_human_range() {
  awk -v a="$1" -v b="$2" 'function f(x, d) { x /= d; return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
    BEGIN { if (a == "" || b == "") { print "-"; exit }
      if (b >= 1e9) { d = 1e9; u = "G" } else if (b >= 1e6) { d = 1e6; u = "M" } else if (b >= 1e3) { d = 1e3; u = "k" } else { d = 1; u = "" }
      printf "%s-%s%s\n", f(a, d), f(b, d), u }'
}

# Human-readable numbers: 12345678 -> 12.3M
hb_human() {
  awk -v x="$1" 'BEGIN { if (x == "") { print "-"; exit }
    if (x >= 1e9) printf "%.2fG\n", x/1e9; else if (x >= 1e6) printf "%.2fM\n", x/1e6;
    else if (x >= 1e3) printf "%.1fk\n", x/1e3; else printf "%.0f\n", x }'
}

# hb_ratio A B -> A/B with 2 decimals (empty if either is missing or B is 0)
hb_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) exit; printf "%.2f\n", a / b }'
}

# hb_bench_cmd NAME PROFILE DUR THREADS: fills CMD with the program and arguments of one
# run of benchmark NAME (compare.sh's rows) in PROFILE (smoke, quick or full); DUR is the
# duration of the timed ones in seconds, THREADS the threads of the multi-thread ones.
# Sets CMD_WHOLE=1 for the whole-process rows: fixed work, throughput = ops / wall time
# of the process (hb_run with HB_WHOLE=1), because their cost is in start-up, first-touch
# faults, thread start/exit or teardown, which the programs' own clocks would leave out.
# Uses HB_BINDIR (hb_ensure_bins).
HB_WHOLE_ROWS="large_replace mstress minimize bigfactor rebuild"
hb_bench_cmd() {
  local B=$HB_BINDIR profile=$2 dur=$3 T=$4
  CMD_WHOLE=0
  [[ " $HB_WHOLE_ROWS " == *" $1 "* ]] && CMD_WHOLE=1
  case $1 in
    micro-tight) CMD=("$B/bench_micro" --case tight --seconds "$dur") ;;
    micro-batch) CMD=("$B/bench_micro" --case batch --seconds "$dur") ;;
    micro-xthread) CMD=("$B/bench_micro" --case xthread --threads "$T" --seconds "$dur") ;;
    larson) CMD=("$B/larson" --threads "$T" --seconds "$dur" --min 8 --max 1024) ;;
    larson-churn) CMD=("$B/larson" --threads "$T" --seconds "$dur" --min 8 --max 1024 --slots 1000 --rounds-per-thread 20000 --warmup 0) ;;
    larson-tiny) CMD=("$B/larson" --threads "$T" --seconds "$dur" --min 8 --max 128) ;;
    larson-mid) CMD=("$B/larson" --threads "$T" --seconds "$dur" --min 1024 --max 32768) ;;
    larson-mixed) CMD=("$B/larson" --threads "$T" --seconds "$dur" --min 8 --max 262144 --dist log) ;;
    fragment)
      case $profile in
        smoke) CMD=("$B/fragment_stress" --rounds 300 --phase-rounds 50 --burst 200 --long-lived 2000) ;;
        quick) CMD=("$B/fragment_stress" --rounds 2000 --phase-rounds 150 --burst 500 --long-lived 10000) ;;
        full) CMD=("$B/fragment_stress" --rounds 3000 --phase-rounds 250 --burst 1000 --long-lived 20000) ;;
      esac ;;
    huge_ws)
      case $profile in
        smoke) CMD=("$B/huge_ws" --ws 16M --seconds "$dur") ;;
        quick) CMD=("$B/huge_ws" --ws 128M --seconds "$dur") ;;
        full) CMD=("$B/huge_ws" --ws 256M --seconds "$dur") ;;
      esac ;;
    realloc)
      CMD=("$B/realloc_bench" --case all --seconds "$dur")
      [ $profile = smoke ] && CMD+=(--warmup 0.02) ;;
    mid_mt) CMD=("$B/mid_mt" --threads "$T" --seconds "$dur") ;;
    phases)
      case $profile in
        smoke) CMD=("$B/phases" --phase-seconds "$dur" --rounds 1 --ws 32M) ;;
        quick) CMD=("$B/phases" --phase-seconds "$dur" --rounds 2 --ws 128M) ;;
        full) CMD=("$B/phases" --phase-seconds "$dur" --rounds 2 --ws 384M) ;;
      esac ;;
    large_replace)
      case $profile in
        smoke) CMD=("$B/large_replace" --live 6 --rounds 4) ;;
        quick) CMD=("$B/large_replace" --live 20 --rounds 20) ;;
        full) CMD=("$B/large_replace" --live 20 --rounds 100) ;;
      esac ;;
    batches) CMD=("$B/batches" --seconds "$dur") ;;
    batches-bg) CMD=("$B/batches" --idle-threads 1 --seconds "$dur") ;;
    batches-mt) CMD=("$B/batches" --threads "$T" --seconds "$dur") ;;
    alloc_test) CMD=("$B/alloc_test" --threads "$T" --seconds "$dur") ;;
    mstress)
      case $profile in
        smoke) CMD=("$B/mstress" --threads "$T" --rounds 4 --steps 10000) ;;
        quick) CMD=("$B/mstress" --threads "$T" --rounds 30 --steps 50000) ;;
        full) CMD=("$B/mstress" --threads "$T" --rounds 100 --steps 50000) ;;
      esac ;;
    minimize)
      case $profile in
        smoke) CMD=("$B/minimize" --functions 40) ;;
        quick) CMD=("$B/minimize" --functions 1500) ;;
        full) CMD=("$B/minimize" --functions 5000) ;;
      esac ;;
    bigfactor)
      case $profile in
        smoke) CMD=("$B/bigfactor" --numbers 30) ;;
        quick) CMD=("$B/bigfactor" --numbers 500) ;;
        full) CMD=("$B/bigfactor" --numbers 1500) ;;
      esac ;;
    rebuild)
      case $profile in
        smoke) CMD=("$B/rebuild" --ws 16M --rounds 2) ;;
        quick) CMD=("$B/rebuild" --ws 256M --rounds 5) ;;
        full) CMD=("$B/rebuild" --ws 512M --rounds 8) ;;
      esac ;;
    *) hb_die "internal: no command for $1" ;;
  esac
}

# hb_gp_yaxis DATFILE LINEAR_FORMAT: gnuplot settings for the y axis of a bar chart: from 0
# when the positive values span at most 10x, else a log scale over whole decades (so a
# 0.01x bar and a 2x bar can both be read).
hb_gp_yaxis() {
  awk -v fmt="$2" 'function floor(x) { return x == int(x) || x > 0 ? int(x) : int(x) - 1 }
    function ceil(x) { return -floor(-x) }
    NR > 1 { for (i = 2; i <= NF; i++) if ($i != "NaN" && $i + 0 > 0) {
        v = $i + 0; if (n++ == 0 || v < lo) lo = v; if (v > hi) hi = v } }
    END { if (n && hi / lo > 10) {
            printf "set logscale y 10\nset yrange [%g:%g]\nset format y \"%%g\"\n",
              10 ^ floor(log(lo) / log(10) + 1e-9), 10 ^ ceil(log(hi * 1.05) / log(10) - 1e-9) }
          else printf "set yrange [0:*]\nset format y \"%s\"\n", fmt }' "$1"
}

# hb_gp_bars DATFILE TITLE YLABEL FORMAT [REFLINE]: the gnuplot commands of one grouped bar
# chart (rows of DATFILE on the x axis, one bar per column; the first line names the
# columns: row "a" "b" ...); REFLINE, a gnuplot plot
# element such as '1 with lines ... title "..."', is drawn over the bars.
hb_gp_bars() {
  local dat=$1 title=$2 ylabel=$3 fmt=$4 ref=${5:-} nrows nbars
  nrows=$(($(wc -l <"$dat") - 1))
  nbars=$(awk 'NR == 1 { print NF - 1; exit }' "$dat")
  cat <<EOF
set title "$title"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.85 border rgb "#333333"
set boxwidth 0.95
set key outside right top vertical
set grid ytics lc rgb "#dddddd"
unset logscale y
$(hb_gp_yaxis "$dat" "$fmt")
set ylabel "$ylabel"
set xtics nomirror rotate by -25 scale 0
set xrange [-0.6:$((nrows - 1)).6]
set linetype 1 lc rgb "#4e79a7"
set linetype 2 lc rgb "#f28e2b"
set linetype 3 lc rgb "#59a14f"
set linetype 4 lc rgb "#e15759"
set linetype 5 lc rgb "#b07aa1"
set linetype 6 lc rgb "#76b7b2"
set linetype 7 lc rgb "#edc948"
set linetype 8 lc rgb "#9c755f"
plot for [i=2:$((nbars + 1))] '$dat' using i:xtic(1) title columnheader(i)${ref:+, $ref}
EOF
}

# hb_time_left DONE TOTAL ELAPSED_S -> "time left ~3 min" (the remaining runs at the
# average pace of the finished ones, rounded up to a whole minute), or "done in 1m05s".
hb_time_left() {
  local done=$1 total=$2 elapsed=$3
  if [ "$done" -ge "$total" ]; then echo "done in $(hb_duration "$elapsed")"; return; fi
  awk -v d="$done" -v t="$total" -v e="$elapsed" 'BEGIN {
    s = d > 0 ? e / d * (t - d) : 0; m = int(s / 60); if (m * 60 < s) m++
    printf "time left ~%d min\n", m }'
}

# hb_geomean RATIO... -> geometric mean of the positive values, 2 decimals (empty if none)
hb_geomean() {
  printf '%s\n' "$@" | awk 'NF && $1 + 0 > 0 { s += log($1); n++ } END { if (n) printf "%.2f\n", exp(s / n) }'
}
