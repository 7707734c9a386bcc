#!/usr/bin/env bash
# The reliability figures (docs/reliability.md): runs the hazard suite with the full repetition
# count, the reader fuzzers for longer than `swift test` does, and the bounded-memory check on a
# 50-million-event trace; then prints the figures:
#   hazard cases passed, runs per case, fuzz executions and findings, bit flips survived,
#   peak memory streaming the 50M-event trace.
#
# Usage: Scripts/hazards.sh [--quick]
#   --quick                   3 runs per case and short fuzz runs (a smoke test of this script)
# Environment:
#   LEAKTRACE_HAZARD_RUNS     runs per hazard case (default 20)
#   LEAKTRACE_FUZZ_EXECUTIONS executions of the seeded mutation fuzzer (default 1,000,000)
#   LIBFUZZER_SECONDS         how long libFuzzer runs over the corpus (default 300; 0 skips it)
#   STREAM_EVENTS             events in the big trace (default 50,000,000)
#   SCRATCH                   SwiftPM scratch path (default .build-hazards)
# Exit status: 0 when every case passed (or was skipped for a missing package) and the fuzzers
# found nothing; 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

runs=${LEAKTRACE_HAZARD_RUNS:-20}
executions=${LEAKTRACE_FUZZ_EXECUTIONS:-1000000}
libfuzzer_seconds=${LIBFUZZER_SECONDS:-300}
stream_events=${STREAM_EVENTS:-50000000}
if [ "${1:-}" = "--quick" ]; then
  runs=3 executions=20000 libfuzzer_seconds=20 stream_events=${STREAM_EVENTS:-5000000}
fi
scratch=${SCRATCH:-.build-hazards}
work=$(mktemp -d "${TMPDIR:-/tmp}/leaktrace-hazards.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0

say() { echo "hazards.sh: $*" >&2; }

# ---- build ----
say "building libleaktrace.so, the tests and the fuzzing tools"
Scripts/build.sh --shim-only || exit 1
swift build --scratch-path "$scratch" --build-tests > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
Scripts/fuzz/build.sh > "$work/fuzz-build.log" 2>&1 || { cat "$work/fuzz-build.log"; exit 1; }

run_tests() { # filter log [env...]
  local filter=$1 log=$2; shift 2
  env "$@" swift test --scratch-path "$scratch" --skip-build --filter "$filter" > "$log" 2>&1
}

# ---- 1. the hazard suite ----
say "hazard suite, $runs runs per case (plain and traced)"
start=$(date +%s)
run_tests 'Hazard' "$work/hazards.log" LEAKTRACE_HAZARD_RUNS="$runs"
hazard_seconds=$(( $(date +%s) - start ))
names=("" "bootstrap reentrancy" "allocators that map under their own lock" "loader lock under load"
       "fork storm from a threaded parent" "exec and spawn" "signals" "closed and reused descriptors"
       "killed and failing output" "abrupt exits" "threads, exact accounting" "thread lifecycle" "linkage"
       "real programs" "small thread stacks and signal masks" "per-thread event rings"
       "signals that end the process")
cases_total=$(( ${#names[@]} - 1 ))
cases_passed=0
case_lines=()
for n in $(seq 1 "$cases_total"); do
  tag=$(printf 'testCase%02d' "$n")
  passed=$(grep -cE "Test Case '[A-Za-z]+\.${tag}[A-Za-z0-9]*' passed" "$work/hazards.log")
  failedn=$(grep -cE "Test Case '[A-Za-z]+\.${tag}[A-Za-z0-9]*' failed" "$work/hazards.log")
  skipped=$(grep -cE "Test Case '[A-Za-z]+\.${tag}[A-Za-z0-9]*' skipped" "$work/hazards.log")
  if [ "$failedn" -gt 0 ] || [ $((passed + skipped)) -eq 0 ]; then
    state="FAILED ($failedn of $((passed + failedn + skipped)) tests failed)"
    failed=1
  elif [ "$skipped" -gt 0 ]; then
    state="passed, $skipped of $((passed + skipped)) tests skipped"
    cases_passed=$((cases_passed + 1))
  else
    state="passed ($passed test$([ "$passed" = 1 ] || echo s))"
    cases_passed=$((cases_passed + 1))
  fi
  case_lines+=("$(printf '  %2d. %-42s %s' "$n" "${names[$n]}" "$state")")
done
grep -E "error:|skipped" "$work/hazards.log" | grep -vE "^Test Suite" | head -20 > "$work/hazard-notes.txt"

# ---- 2. the reader fuzzers ----
say "seeded mutation fuzzer ($executions executions), cuts, bit flips, hostile files"
findings_dir="$work/findings"
run_tests 'Fuzz' "$work/fuzz.log" LEAKTRACE_FUZZ_EXECUTIONS="$executions" LEAKTRACE_FUZZ_FINDINGS="$findings_dir"
grep -q "' failed" "$work/fuzz.log" && failed=1
figure() { sed -n "s/.*fuzz-figures:.*\b$1=\([0-9]*\).*/\1/p" "$work/fuzz.log" | head -1; }
fuzz_executions=$(figure executions) fuzz_findings=$(figure findings) fuzz_outcomes=$(figure outcomes)
bitflips=$(figure bitflips) survived=$(figure survived) cuts=$(figure cuts)
fuzz_summary=$(grep -E "^fuzz: " "$work/fuzz.log" | head -1)

libfuzzer_line="not run"
if [ "$libfuzzer_seconds" -gt 0 ] && [ -x .build/fuzz/fuzz-trace-reader ]; then
  say "libFuzzer over the corpus for $libfuzzer_seconds s"
  mkdir -p "$work/lf/corpus" "$work/lf/artifacts"
  cp Tests/LeakTraceTests/Fixtures/corpus/*.lt "$work/lf/corpus/"
  (cd "$work/lf" && "$root/.build/fuzz/fuzz-trace-reader" -max_total_time="$libfuzzer_seconds" -timeout=10 \
     -rss_limit_mb=2048 -artifact_prefix="$work/lf/artifacts/" -print_final_stats=1 corpus > "$work/libfuzzer.log" 2>&1)
  lf_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/libfuzzer.log")
  lf_rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/libfuzzer.log")
  lf_new=$(sed -n 's/^stat::new_units_added: *//p' "$work/libfuzzer.log")
  lf_findings=$(find "$work/lf/artifacts" -type f | wc -l)
  libfuzzer_line="${lf_runs:-?} executions (${lf_rate:-?}/s, $lf_new new inputs), $lf_findings findings"
  if [ "$lf_findings" -gt 0 ]; then
    failed=1
    mkdir -p "$root/.build/fuzz/findings" && cp "$work/lf/artifacts/"* "$root/.build/fuzz/findings/"
    libfuzzer_line="$libfuzzer_line (kept in .build/fuzz/findings)"
  fi
elif [ "$libfuzzer_seconds" -gt 0 ]; then
  libfuzzer_line="not available (this toolchain cannot build -sanitize=fuzzer; see Scripts/fuzz/build.sh)"
fi
if [ -d "$findings_dir" ] && ls "$findings_dir"/finding-* > /dev/null 2>&1; then
  mkdir -p "$root/.build/fuzz/findings" && cp "$findings_dir"/finding-* "$root/.build/fuzz/findings/"
fi

# ---- 3. bounded memory on a long trace ----
say "bounded memory: tracing churn with $stream_events events, then streaming the trace"
shim=$root/.build/release/libleaktrace.so
trace_churn() { # name events live-blocks
  LD_PRELOAD="$shim" LEAKTRACE_OUTPUT="$work/$1.lt" .build/fuzz/churn "$2" "$3" 1000 > /dev/null
}
stream() { # name -> "events=... peak-rss-kib=..." plus /usr/bin/time's own peak
  /usr/bin/time -f "time-peak-rss-kib=%M" .build/fuzz/stream-trace "$work/$1.lt" > "$work/$1.stream" 2> "$work/$1.time"
  echo "$(cat "$work/$1.stream") $(tail -1 "$work/$1.time")"
}
small_events=$((stream_events / 10))
trace_churn small "$small_events" 10000
trace_churn big "$stream_events" 10000
trace_churn wide "$stream_events" 1000000
small=$(stream small) big=$(stream big) wide=$(stream wide)
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
size_of() { awk -v b="$(stat -c %s "$work/$1.lt")" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
for line in "$small" "$big" "$wide"; do
  case "$line" in *end=complete*) ;; *) failed=1 ;; esac
done
big_peak=$(field "$big" time-peak-rss-kib) small_peak=$(field "$small" time-peak-rss-kib)
wide_peak=$(field "$wide" time-peak-rss-kib)
# Ten times the events must not cost more than 4 MiB more: memory follows live blocks.
[ $((big_peak - small_peak)) -gt 4096 ] && failed=1

# ---- figures ----
echo
echo "leaktrace reliability figures ($(date -u +%Y-%m-%d), $(uname -m), $(nproc) cores)"
echo "hazard cases passed: $cases_passed of $cases_total, $runs runs per case, each run with and without the tracer ($hazard_seconds s)"
printf '%s\n' "${case_lines[@]}"
if [ -s "$work/hazard-notes.txt" ]; then
  echo "  notes:"; sed 's/^/    /' "$work/hazard-notes.txt" | cut -c1-200
fi
echo "seeded mutation fuzzer: ${fuzz_executions:-?} executions, ${fuzz_findings:-?} findings, ${fuzz_outcomes:-?} distinct outcomes"
[ -n "$fuzz_summary" ] && echo "  ${fuzz_summary#fuzz: }"
echo "libFuzzer (-sanitize=fuzzer,address): $libfuzzer_line"
echo "cuts at every byte of two real traces: ${cuts:-?} cuts read"
echo "bit flips survived: ${survived:-?} of ${bitflips:-?}"
echo "peak memory streaming a trace with a live-set replay (/usr/bin/time, maximum resident set):"
echo "  $(field "$small" events) events, 10,000 live blocks, $(size_of small) trace:   $(mib "$small_peak")"
echo "  $(field "$big" events) events, 10,000 live blocks, $(size_of big) trace:  $(mib "$big_peak")"
echo "  $(field "$wide" events) events, 1,000,000 live blocks, $(size_of wide) trace: $(mib "$wide_peak")"
echo "result: $([ $failed = 0 ] && echo "all passed" || echo "FAILURES (logs: rerun the failing filter with swift test)")"
if [ $failed != 0 ]; then
  mkdir -p "$root/.build/hazards-logs" && cp "$work"/*.log "$root/.build/hazards-logs/" 2>/dev/null
  echo "logs kept in .build/hazards-logs/"
fi
exit $failed
