#!/usr/bin/env bash
# deps.sh — install the Debian packages that hakmem's build, tests and benchmarks need.
#
#   bash scripts/deps.sh           install what is missing (apt-get; root or sudo)
#   bash scripts/deps.sh --check   only report; exit 1 when something is missing
#   bash scripts/deps.sh --list    print the package list
#
# Idempotent and quick when everything is there (one dpkg-query call). Runs
# `apt-get update` at most once, and only when something has to be installed and the
# package lists are missing, stale, or lack a package. Works with no standard input.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  liburcu-dev           # ACE: knob snapshots published with urcu-bp
  libpfm4-dev           # ACE: PMU event encoding
  # peers the benchmarks compare against (preloaded)
  libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4
  # benchmarks and tests
  gnuplot-nox           # charts in results/
  time                  # /usr/bin/time -v: peak RSS
  sqlite3               # real-program test
  git python3
  libpython3.11-testsuite    # real-program test: python's own regression tests
  valgrind
  clang libclang-rt-14-dev   # test/fuzz/run_fuzz.sh: libFuzzer (-fsanitize=fuzzer)
)

mode=install
case "${1:-}" in
  "")                       ;;
  --check)  mode=check     ;;
  --list)   printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
  -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "deps.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: no dpkg-query: this script knows Debian/Ubuntu only; install these yourself:" >&2
  printf '  %s\n' "${PACKAGES[@]}" >&2
  exit 1
fi

# Packages not in state "install ok installed" (one dpkg-query for all of them).
missing_packages() {
  local -A ok=()
  local name status
  while IFS=$'\t' read -r name status; do
    [ "$status" = "install ok installed" ] && ok["${name%%:*}"]=1
  done < <(dpkg-query -W -f='${Package}\t${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  local p
  for p in "${PACKAGES[@]}"; do
    [ -n "${ok[$p]:-}" ] || echo "$p"
  done
}

mapfile -t missing < <(missing_packages)
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps.sh: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "deps.sh: missing: ${missing[*]}"
[ "$mode" = check ] && exit 1

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "deps.sh: not root and no password-less sudo; run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
     -o DPkg::Lock::Timeout=300
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

updated=0
apt_update() {
  [ $updated -eq 1 ] && return 0
  echo "deps.sh: apt-get update"
  "${APT[@]}" update </dev/null
  updated=1
}

# Update first when the lists are absent or older than a day, or when one of the
# missing packages has no install candidate in them.
lists_fresh() {
  local lists=/var/lib/apt/lists
  compgen -G "$lists/*_Packages*" >/dev/null || return 1
  [ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin +1440 -print -quit)" ] || return 1
  local p
  for p in "${missing[@]}"; do
    apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]' || return 1
  done
}
lists_fresh || apt_update

install() {
  echo "deps.sh: apt-get install ${missing[*]}"
  "${APT[@]}" install --no-install-recommends "${missing[@]}" </dev/null
}
if ! install; then
  [ $updated -eq 1 ] && { echo "deps.sh: apt-get install failed" >&2; exit 1; }
  apt_update        # stale lists give 404s: refresh once and try again
  install || { echo "deps.sh: apt-get install failed" >&2; exit 1; }
fi

mapfile -t missing < <(missing_packages)
if [ ${#missing[@]} -ne 0 ]; then
  echo "deps.sh: still missing after install: ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: all ${#PACKAGES[@]} packages present"
