#!/usr/bin/env bash
# test_install.sh — install hakmem into a temporary prefix and use it the ways a user
# would: pkg-config + -lhakmem (shared and static), a CMake project with
# find_package(hakmem CONFIG), and the bin/hakmem preload wrapper.
#
#   bash scripts/test_install.sh [BUILD_DIR]      (default: build/, must be built)
#
# Exits 0 when every check passes; otherwise prints what failed and exits 1.
# HAK_KEEP_TMP=1 keeps the temporary directory for a look afterwards.
# Word splitting of pkg-config output and single-quoted $VARs for sh -c are on purpose.
# shellcheck disable=SC2046,SC2086,SC2016,SC2015
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
unset LD_PRELOAD          # the checks below set it themselves where they mean to

passed=0
failed=0
ok()   { passed=$((passed + 1)); echo "ok   - $*"; }
bad()  { failed=$((failed + 1)); echo "FAIL - $*"; }
die()  { echo "test_install: FAIL - $*" >&2; exit 1; }
# check NAME CMD...: run CMD with its output in $tmp/log, count the result.
check() {
  local name="$1"; shift
  if "$@" >"$tmp/log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    | /' "$tmp/log"; fi
}

[ -f "$build/CMakeCache.txt" ] || die "no configured build in $build (run: bash scripts/build.sh)"
[ -e "$build/libhakmem.so" ] || die "$build/libhakmem.so is missing (build first: cmake --build $build)"
[ -e "$build/libhakmem.a" ]  || die "$build/libhakmem.a is missing (build first: cmake --build $build)"
for tool in cmake pkg-config "$CC" "$CXX"; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run: bash scripts/deps.sh)"
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hakmem-install-test.XXXXXX")"
if [ "${HAK_KEEP_TMP:-0}" = 1 ]; then
  trap 'echo "test_install: kept $tmp"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi
P="$tmp/prefix"

# ---- install -------------------------------------------------------------------------
if ! cmake --install "$build" --prefix "$P" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  die "cmake --install $build --prefix $P failed"
fi
ok "cmake --install --prefix $P"

pcfile="$(find "$P" -name hakmem.pc -path '*/pkgconfig/*' | head -n1)"
[ -n "$pcfile" ] || die "no pkgconfig/hakmem.pc under $P"
libdir="$(dirname "$(dirname "$pcfile")")"

files_ok() {
  local f missing=0
  for f in "$libdir/libhakmem.so" "$libdir/libhakmem.a" "$P/include/hakmem.h" \
           "$libdir/cmake/hakmem/hakmem-config.cmake" \
           "$libdir/cmake/hakmem/hakmem-config-version.cmake" \
           "$libdir/cmake/hakmem/hakmem-targets.cmake"; do
    [ -e "$f" ] || { echo "missing: $f"; missing=1; }
  done
  for f in "$repo"/include/*.h; do
    [ -e "$P/include/$(basename "$f")" ] || { echo "header not installed: $(basename "$f")"; missing=1; }
  done
  [ -x "$P/bin/hakmem" ] || { echo "missing or not executable: $P/bin/hakmem"; missing=1; }
  [ -L "$libdir/libhakmem.so" ] || { echo "$libdir/libhakmem.so is not a symlink to the versioned file"; missing=1; }
  local soname
  soname="$(objdump -p "$libdir/libhakmem.so" | awk '$1 == "SONAME" { print $2 }')"
  [ -n "$soname" ] && [ -e "$libdir/$soname" ] || { echo "soname '$soname' has no file in $libdir"; missing=1; }
  return $missing
}
check "installed files (libs, soname link, headers, pkg-config, cmake, bin/hakmem)" files_ok

# ---- the consumer program ----------------------------------------------------------
cat >"$tmp/consumer.c" <<'SRC'
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  void* p = malloc(10);
  int from_hakmem = p != NULL && hak_owns(p) != 0;
  printf("malloc %s hakmem\n", from_hakmem ? "from" : "NOT from");
  free(p);
  return from_hakmem ? 0 : 1;
}
SRC
cat >"$tmp/consumer.cpp" <<'SRC'
#include <hakmem.h>
#include <cstdio>
int main() {
  int* p = new int[16];
  int from_hakmem = hak_owns(p) != 0;
  std::printf("new %s hakmem\n", from_hakmem ? "from" : "NOT from");
  delete[] p;
  return from_hakmem ? 0 : 1;
}
SRC
# A program that does not link hakmem: it looks hak_owns up at run time (preload test).
cat >"$tmp/probe.c" <<'SRC'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  int (*owns)(const void*) = (int (*)(const void*))dlsym(RTLD_DEFAULT, "hak_owns");
  void* p = malloc(10);
  int from_hakmem = owns != NULL && owns(p) != 0;
  printf("malloc %s hakmem\n", from_hakmem ? "from" : "NOT from");
  free(p);
  return from_hakmem ? 0 : 1;
}
SRC

# run_expect OUTPUT_WORDS CMD...: CMD exits 0 and prints OUTPUT_WORDS.
run_expect() {
  local want="$1"; shift
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  [ $rc -eq 0 ] || { echo "$out"; echo "exit status $rc from: $*"; return 1; }
  echo "$out"
  grep -qF "$want" <<<"$out" || { echo "expected '$want' in the output"; return 1; }
}
# uses_installed_lib BINARY: ldd (in the current environment) resolves libhakmem to $libdir.
uses_installed_lib() {
  local out
  out="$(ldd "$1")" || return 1
  echo "$out"
  grep -q "libhakmem\.so.* => $libdir/" <<<"$out" || { echo "libhakmem does not resolve to $libdir"; return 1; }
}
no_shared_hakmem() {
  ! ldd "$1" | grep -q libhakmem
}

# (a) pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc_shared() {
  pkg-config --exists --print-errors hakmem &&
  "$CC" -O2 $(pkg-config --cflags hakmem) "$tmp/consumer.c" -o "$tmp/pc_shared" $(pkg-config --libs hakmem) &&
  LD_LIBRARY_PATH="$libdir" uses_installed_lib "$tmp/pc_shared" &&
  LD_LIBRARY_PATH="$libdir" run_expect "malloc from hakmem" "$tmp/pc_shared"
}
check "pkg-config: cc \$(pkg-config --cflags --libs hakmem), run with LD_LIBRARY_PATH" pc_shared

pc_static() {
  local libs
  libs="$(pkg-config --static --libs hakmem)" &&
  libs="${libs/-lhakmem/-l:libhakmem.a}" &&
  "$CC" -O2 $(pkg-config --cflags hakmem) "$tmp/consumer.c" -o "$tmp/pc_static" $libs &&
  no_shared_hakmem "$tmp/pc_static" &&
  run_expect "malloc from hakmem" "$tmp/pc_static"
}
check "pkg-config --static: link libhakmem.a" pc_static

pc_version() {
  local v
  v="$(pkg-config --modversion hakmem)" && echo "$v" &&
  grep -qx "CMAKE_PROJECT_VERSION:STATIC=$v" "$build/CMakeCache.txt"
}
check "pkg-config --modversion matches the project version" pc_version

# (b) CMake find_package
mkdir -p "$tmp/cmake-consumer"
cp "$tmp/consumer.c" "$tmp/consumer.cpp" "$tmp/cmake-consumer/"
cat >"$tmp/cmake-consumer/CMakeLists.txt" <<'SRC'
cmake_minimum_required(VERSION 3.16)
project(hakmem_consumer LANGUAGES C CXX)

# The version file must turn down a version hakmem is not.
function(check_too_new)
  find_package(hakmem 99.0 CONFIG QUIET)
  if(hakmem_FOUND)
    message(FATAL_ERROR "find_package(hakmem 99.0) accepted version ${hakmem_VERSION}")
  endif()
endfunction()
check_too_new()

find_package(hakmem CONFIG REQUIRED)
message(STATUS "found hakmem ${hakmem_VERSION} in ${hakmem_DIR}")
if(NOT TARGET hakmem::hakmem OR NOT TARGET hakmem::hakmem_static)
  message(FATAL_ERROR "hakmem::hakmem or hakmem::hakmem_static is missing")
endif()
find_package(hakmem ${hakmem_VERSION} CONFIG REQUIRED COMPONENTS shared static)

add_executable(c_shared consumer.c)
target_link_libraries(c_shared PRIVATE hakmem::hakmem)
add_executable(c_static consumer.c)
target_link_libraries(c_static PRIVATE hakmem::hakmem_static)
add_executable(cxx_shared consumer.cpp)
target_link_libraries(cxx_shared PRIVATE hakmem::hakmem)
SRC
cmake_configure() {
  cmake -S "$tmp/cmake-consumer" -B "$tmp/cmake-consumer/build" \
    -DCMAKE_PREFIX_PATH="$P" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release &&
  grep -qx "hakmem_DIR:PATH=$libdir/cmake/hakmem" "$tmp/cmake-consumer/build/CMakeCache.txt"
}
check "cmake: find_package(hakmem CONFIG REQUIRED) finds $libdir/cmake/hakmem" cmake_configure
check "cmake: build against hakmem::hakmem and hakmem::hakmem_static" \
  cmake --build "$tmp/cmake-consumer/build" -j2
check "cmake: hakmem::hakmem program (C) gets malloc from hakmem (via RPATH)" \
  bash -c "$(declare -f run_expect uses_installed_lib); libdir='$libdir';
           uses_installed_lib '$tmp/cmake-consumer/build/c_shared' &&
           run_expect 'malloc from hakmem' '$tmp/cmake-consumer/build/c_shared'"
check "cmake: hakmem::hakmem program (C++) gets operator new from hakmem" \
  run_expect "new from hakmem" "$tmp/cmake-consumer/build/cxx_shared"
check "cmake: hakmem::hakmem_static program gets malloc from hakmem" \
  bash -c "$(declare -f run_expect no_shared_hakmem);
           no_shared_hakmem '$tmp/cmake-consumer/build/c_static' &&
           run_expect 'malloc from hakmem' '$tmp/cmake-consumer/build/c_static'"

# (c) the wrapper
W="$P/bin/hakmem"
wrap_help() {
  run_expect "Usage: hakmem" "$W" --help && run_expect "hakmem" "$W" --version
}
check "wrapper: hakmem --help / --version" wrap_help
wrap_errors() {
  local rc
  "$W" >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || { echo "'hakmem' with no command exited $rc, want 2"; return 1; }
  "$W" --no-such-option true >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || { echo "'hakmem --no-such-option' exited $rc, want 2"; return 1; }
  local err
  err="$("$W" hak-no-such-command 2>&1)"; rc=$?
  [ $rc -eq 127 ] && [ "$err" = "hakmem: 'hak-no-such-command': No such file or directory" ] ||
    { echo "'hakmem hak-no-such-command' exited $rc with '$err', want 127 and env(1)'s message"; return 1; }
  return 0
}
check "wrapper: no command / unknown option exit 2, unknown command 127" wrap_errors
wrap_preload() {
  local out
  out="$("$W" sh -c 'echo "$LD_PRELOAD"')" || return 1
  echo "LD_PRELOAD=$out"
  case "$out" in
    "$libdir"/libhakmem.so*) ;;
    *) echo "want LD_PRELOAD=$libdir/libhakmem.so..."; return 1 ;;
  esac
}
check "wrapper: hakmem sh -c 'echo \$LD_PRELOAD' shows $libdir/libhakmem.so" wrap_preload
wrap_prepend_flags() {
  local out want
  out="$(LD_PRELOAD="$libdir/libhakmem.so" HAKMEM_STATS=0 HAKMEM_VERBOSE=0 \
         "$W" --stats --verbose sh -c 'echo "$LD_PRELOAD|$HAKMEM_STATS|$HAKMEM_VERBOSE"' 2>/dev/null)" || return 1
  want="$("$W" --lib):$libdir/libhakmem.so|1|1"
  echo "got:  $out"; echo "want: $want"
  [ "$out" = "$want" ]
}
check "wrapper: prepends to LD_PRELOAD, --stats/--verbose set HAKMEM_STATS/HAKMEM_VERBOSE" wrap_prepend_flags
wrap_probe() {
  "$CC" -O2 "$tmp/probe.c" -o "$tmp/probe" &&
  no_shared_hakmem "$tmp/probe" &&
  run_expect "malloc from hakmem" "$W" "$tmp/probe"
}
check "wrapper: a program not linked with hakmem gets malloc from hakmem" wrap_probe

# ---- DESTDIR staging -------------------------------------------------------------------
destdir_ok() {
  DESTDIR="$tmp/stage" cmake --install "$build" --prefix /opt/hakmem-test >/dev/null &&
  local pc
  pc="$(find "$tmp/stage/opt/hakmem-test" -name hakmem.pc)" && [ -n "$pc" ] &&
  grep -qx "prefix=/opt/hakmem-test" "$pc" &&
  grep -q "^libdir='/opt/hakmem-test/" "$tmp/stage/opt/hakmem-test/bin/hakmem" &&
  [ ! -e /opt/hakmem-test ]
}
check "DESTDIR=... cmake --install stages files, paths name the real prefix" destdir_ok

echo "test_install: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]
