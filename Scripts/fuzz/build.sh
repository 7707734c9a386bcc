#!/usr/bin/env bash
# Builds the fuzzing tools into .build/fuzz/ (each compiles Sources/TraceFormat with it, as one
# module, so nothing else of the package is needed):
#   fuzz-trace-reader  libFuzzer over the trace reader (swiftc -sanitize=fuzzer,address)
#   stream-trace       streams a trace with a live-set replay and prints its peak memory
#   churn              a C program that makes a trace of N allocation events
# Usage: Scripts/fuzz/build.sh [--no-libfuzzer]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build/fuzz
mkdir -p "$out"
sources=(Sources/TraceFormat/*.swift)
libfuzzer=1
[ "${1:-}" = "--no-libfuzzer" ] && libfuzzer=0

cc -O2 -g -o "$out/churn" Scripts/fuzz/churn.c
swiftc -O -parse-as-library -module-name TraceFormat -I Sources/CZstd "${sources[@]}" Scripts/fuzz/StreamTrace.swift \
  -o "$out/stream-trace" -lzstd
test -x "$out/stream-trace"
if [ "$libfuzzer" = 1 ]; then
  # -parse-as-library: the entry point is libFuzzer's main, not top-level code.
  if swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name TraceFormat -I Sources/CZstd \
       "${sources[@]}" Scripts/fuzz/FuzzTraceReader.swift -o "$out/fuzz-trace-reader" -lzstd \
       > "$out/fuzz-build.log" 2>&1 && test -x "$out/fuzz-trace-reader"; then
    echo "built $out/fuzz-trace-reader"
  else
    echo "build.sh: this toolchain cannot build the libFuzzer harness (see $out/fuzz-build.log)" >&2
    rm -f "$out/fuzz-trace-reader"
  fi
fi
echo "built $out/stream-trace $out/churn"
