#!/usr/bin/env bash
# Regenerates the fuzz corpus: small real traces (a few KiB each) written by libleaktrace.so
# for programs in Tests/LeakTraceTests/Programs, into Tests/LeakTraceTests/Fixtures/corpus/.
# Every kind of record and both chunk codecs appear somewhere; a few traces are cut (SIGKILL,
# exec). The corpus is committed: run this only when the trace format or the tracer changes,
# and commit the result. The traces without `-v2` in their names were written by the version-1
# tracer (every event written) and are kept as they are: the reader still reads version 1. This
# script writes the `-v2` ones (short-lived blocks folded, FOLD records).
#   Scripts/fuzz/make-corpus.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=$root/Tests/LeakTraceTests/Fixtures/corpus
Scripts/build.sh --shim-only
# Fixed, neutral paths: a trace records the program's path, its command line and the path of
# every loaded object, the tracer included.
work=/tmp/leaktrace-corpus
rm -rf "$work"
mkdir -p "$work/bin" "$work/traces"
cp .build/release/libleaktrace.so "$work/libleaktrace.so"
shim=$work/libleaktrace.so
programs=$root/Tests/LeakTraceTests/Programs
build() { cc -g -O0 -I "$root/CShim/include" -o "$work/bin/$1" "$programs/$2" -pthread -ldl; }
build corpus hazard_corpus.c
build hooks hooks_all.c
build output hazard_output.c
build spawn hazard_spawn.c
build sigalrm hazard_sigalrm.c
build fold fold_shapes.c

# trace NAME [env...] -- program args...: runs one traced program, keeps its traces as NAME*.lt
trace() {
  local name=$1; shift
  local -a env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  rm -rf "$work/traces"; mkdir -p "$work/traces"
  env ${env[@]+"${env[@]}"} LD_PRELOAD="$shim" LEAKTRACE_OUTPUT="$work/traces/%e.%p.lt" "$@" > /dev/null 2>&1 || true
  local n=0
  # In process-id order: the first process's trace keeps the plain name.
  for f in $(ls "$work/traces" | sort -t. -k2,2n); do
    if [ $n = 0 ]; then cp "$work/traces/$f" "$out/$name-v2.lt"; else cp "$work/traces/$f" "$out/$name-v2-$n.lt"; fi
    n=$((n + 1))
  done
}

rm -f "$out"/*-v2*.lt
mkdir -p "$out"
cd "$work"
trace every-record-zstd -- "$work/bin/corpus" "$work/mapped.dat"
trace every-record-raw LEAKTRACE_ZSTD_LEVEL=0 -- "$work/bin/corpus" "$work/mapped.dat"
trace hooks-depth4 LEAKTRACE_DEPTH=4 -- "$work/bin/hooks"
trace spawn LEAKTRACE_ZSTD_LEVEL=0 -- "$work/bin/spawn"
trace alarm-handler LEAKTRACE_FLUSH_MS=5 -- "$work/bin/sigalrm" 40
# Folding at work: FOLD records in a parent and a forked child; the same run in full.
trace fold-shapes LEAKTRACE_ZSTD_LEVEL=0 -- "$work/bin/fold"
trace fold-shapes-all LEAKTRACE_EVENTS=all -- "$work/bin/fold"
# The allocator behind the tracer is jemalloc: paths unknown, a NOTE says why.
trace jemalloc-behind -- env LD_PRELOAD="$shim:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2" "$work/bin/output" 300
# A trace cut by SIGKILL after its data was flushed.
rm -rf "$work/traces"; mkdir -p "$work/traces"
LD_PRELOAD="$shim" LEAKTRACE_OUTPUT="$work/traces/%e.%p.lt" LEAKTRACE_ZSTD_LEVEL=0 "$work/bin/output" 300 wait > "$work/out.txt" &
pid=$!
for _ in $(seq 100); do grep -q flushed "$work/out.txt" 2>/dev/null && break; sleep 0.1; done
kill -KILL $pid; wait $pid 2>/dev/null || true
cp "$work/traces/"*.lt "$out/killed-after-flush-v2.lt"
cd "$root"
ls -l "$out"
