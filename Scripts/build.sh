#!/usr/bin/env bash
# Builds both halves of leaktrace:
#   .build/release/libleaktrace.so  the preload library (C, built here with cc: a SwiftPM
#                                   dynamic product would link the Swift runtime into it)
#   .build/release/leakreport       the analyzer (SwiftPM)
# Usage: Scripts/build.sh [--debug-shim] [--shim-only]
set -euo pipefail
cd "$(dirname "$0")/.."

shim_only=0
shim_opt="-O2"
for arg in "$@"; do
  case "$arg" in
    --shim-only) shim_only=1 ;;
    --debug-shim) shim_opt="-O0 -g3" ;;
    *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# SwiftPM owns .build/release, a symlink to the triple's release folder that every release
# build re-creates: the Swift build runs first and the library goes into that folder.
# --static-swift-stdlib: the Swift runtime is linked into leakreport, so an installed copy runs
# without the toolchain's libraries, and a report no longer pays the dynamic loader for eleven
# runtime libraries and their symbols (git's next report: 47.9 M -> 41.1 M instructions,
# 12.1 -> 9.3 ms of CPU, 18.4 -> 15.0 MiB peak).
if [ "$shim_only" = 0 ]; then
  swift build -c release --product leakreport --static-swift-stdlib
fi
bin=$(swift build -c release --show-bin-path)
mkdir -p "$bin"
[ -e .build/release ] || ln -sfn "$bin" .build/release
out=$bin

CC=${CC:-cc}
sources=$(find CShim -name '*.c' | sort)
# -fvisibility=hidden: only the hooks and the public API are exported.
# -ftls-model=initial-exec: the library is preloaded, so static TLS is available and fast.
# -z now: every symbol is bound at load time, so no lazy binding runs inside a hook.
$CC $shim_opt -g -fPIC -shared -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
    -fvisibility=hidden -ftls-model=initial-exec -fno-builtin-malloc -fno-builtin-free \
    -ICShim \
    -o "$out/libleaktrace.so.tmp" $sources \
    -Wl,-z,now -Wl,--no-undefined -Wl,-soname,libleaktrace.so \
    -lunwind -lzstd -ldl -lpthread
mv "$out/libleaktrace.so.tmp" "$out/libleaktrace.so"

# The preload library goes into every traced process: it may need only libc, libunwind and
# libzstd. Fail the build if anything else crept in.
extra=$(readelf -d "$out/libleaktrace.so" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' |
        grep -vE '^(libc|libunwind|libunwind-x86_64|libzstd|libdl|libpthread|ld-linux-x86-64)\.so' || true)
if [ -n "$extra" ]; then
  echo "build.sh: libleaktrace.so must not need: $extra" >&2
  exit 1
fi
