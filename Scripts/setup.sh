#!/usr/bin/env bash
# Installs what leaktrace needs to build and test on Debian/Ubuntu (the Swift toolchain is
# expected on PATH already). Safe to run again. A test whose tool is missing is skipped, or
# fails when CI is set (.ci/run): everything a test needs is listed here.
set -euo pipefail
packages=(
  libunwind-dev libdw-dev libelf-dev libzstd-dev libdeflate-dev pkg-config   # build: preload library, analyzer
  libiberty-dev                                                # build: the analyzer's Rust v0 demangler (static)
  gcc g++ binutils zstd dwz                                    # tests compile and inspect programs
  libjemalloc2 libmimalloc2.0                                  # hazard tests: foreign allocators
  perl git sqlite3 heaptrack util-linux                        # hazard tests on real programs; bench
  python3 libpython3.11                                        # hazard test on python; symbol-table test
  rustc                                                        # Rust demangling test
  libc6-dbg                                                    # DWARF symbolization test on libc
  valgrind                                                     # reachability tests: memcheck as the oracle
  man-db chromium                                              # install test (man -l); HTML report test
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
