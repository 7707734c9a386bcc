#!/usr/bin/env bash
# Benchmarks leaktrace against heaptrack on the same workloads, interleaved in one run.
#
#   Scripts/bench.sh [--quick] [--rounds N] [--analyzer-events N] [--diff]
#
# Capture (issue 2): for each workload, the median wall time natively, under leaktrace and
# under heaptrack; the capture cost in ns per allocator call above native; trace bytes per
# call; each as a ratio to heaptrack's.
# Analysis (issue 3): leakreport on a trace of >= 20 million events against heaptrack_print
# on heaptrack's trace of the same program: allocator calls read per second and peak memory.
# Diff (issue 4): `leakreport diff` of two large traces of the same program (different
# iteration counts) against reading both (`leakreport info`); target: at most 1.5x.
# `--diff` runs only that section. These are figures to read, not pass/fail tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
analyzer_calls=12000000     # allocbench iterations: ~1.75 allocator calls each => ~21M events
quick=0
diff_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; rounds=1; analyzer_calls=3000000; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --analyzer-events) analyzer_calls=$2; shift 2 ;;
    --diff) diff_only=1; shift ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

[ "$diff_only" = 1 ] || command -v heaptrack >/dev/null || { echo "bench.sh: heaptrack is not installed (apt-get install heaptrack)" >&2; exit 2; }
[ -x .build/release/leakreport ] && [ -f .build/release/libleaktrace.so ] || Scripts/build.sh
lib=$PWD/.build/release/libleaktrace.so
report=$PWD/.build/release/leakreport
work=$(mktemp -d "${TMPDIR:-/tmp}/leaktrace-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -g -pthread -o "$work/allocbench" Scripts/bench/allocbench.c

iterations=2000000
[ "$quick" = 1 ] && iterations=500000
# Real programs run as themselves (not through a shell or a version-manager shim), so both
# tracers see the same single process.
python=$(python3 -c 'import sys; print(sys.executable)')
# CPython serves small objects from its own pools (pymalloc): the JSON workload then makes only
# ~12 thousand allocator calls, too few to measure a cost per call against run-to-run noise.
# PYTHONMALLOC=malloc sends every object to malloc (what memray and heaptrack users set too).
export PYTHONMALLOC=malloc
cat > "$work/w.py" <<'PY'
import json
d = [{'k': str(i), 'v': list(range(i % 50))} for i in range(150000)]
s = json.dumps(d)
print(len(json.loads(s)))
PY
cat > "$work/w.pl" <<'PL'
my %h; for my $i (1..300000) { $h{$i} = "x" x ($i % 100); }
my $n = 0; for my $k (keys %h) { $n += length $h{$k}; } print "$n\n";
PL
cat > "$work/w.sql" <<'SQL'
create table t(a integer primary key, b text);
with recursive c(x) as (select 1 union all select x+1 from c where x < 200000)
insert into t select x, printf('%.*c', x % 80, 'y') from c;
select count(*), sum(length(b)) from t;
SQL

# name|command (words split on spaces: no quoting inside)
workloads=(
  "c-1thread-depth10|$work/allocbench 1 10 $iterations"
  "c-1thread-depth30|$work/allocbench 1 30 $iterations"
  "c-2threads-depth10|$work/allocbench 2 10 $iterations"
  "c-2threads-depth30|$work/allocbench 2 30 $iterations"
  "python3-json|$python $work/w.py"
  "perl-hash|$(command -v perl) $work/w.pl"
  "sqlite3-insert|$(command -v sqlite3) -init $work/w.sql :memory: .quit"
)

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1 </dev/null || true; end=$(date +%s.%N); awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'; }

# The number of allocator calls a workload makes: the counts in leaktrace's END record.
calls_in() { "$report" info "$1" | awk -F'[ =]' '/^calls /{print $2}'; }

if [ "$diff_only" = 0 ]; then
printf '\n== Capture cost (median of %d interleaved rounds) ==\n' "$rounds"
printf '%-20s %9s %9s %9s %8s %8s %10s %10s %7s %8s %8s %7s\n' workload native_s lt_s ht_s lt_x ht_x lt_ns/call ht_ns/call ratio lt_B/call ht_B/call ratio
for entry in "${workloads[@]}"; do
  name=${entry%%|*}; cmd=${entry#*|}
  nat=(); lt=(); ht=()
  for ((r = 0; r < rounds; r++)); do
    # shellcheck disable=SC2086 # the command is a word list on purpose
    nat+=("$(seconds $cmd)")
    rm -f "$work"/lt.*
    lt+=("$(seconds env LD_PRELOAD="$lib" LEAKTRACE_OUTPUT="$work/lt.%p.lt" $cmd)")
    rm -f "$work"/ht.*
    ht+=("$(seconds heaptrack -o "$work/ht" $cmd)")
  done
  n=$(printf '%s\n' "${nat[@]}" | median); l=$(printf '%s\n' "${lt[@]}" | median); h=$(printf '%s\n' "${ht[@]}" | median)
  lt_trace=$(ls -S "$work"/lt.*.lt* | head -1)
  calls=$(calls_in "$lt_trace")
  lt_bytes=$(stat -c %s "$lt_trace")
  ht_bytes=$(stat -c %s "$(ls -S "$work"/ht.* | head -1)")
  awk -v name="$name" -v n="$n" -v l="$l" -v h="$h" -v c="$calls" -v lb="$lt_bytes" -v hb="$ht_bytes" 'BEGIN {
    lns = (l - n) * 1e9 / c; hns = (h - n) * 1e9 / c; if (lns < 0) lns = 0
    printf "%-20s %9.3f %9.3f %9.3f %8.2f %8.2f %10.0f %10.0f %7.2f %8.2f %8.2f %7.2f\n",
      name, n, l, h, l / n, h / n, lns, hns, (hns > 0 ? lns / hns : 0), lb / c, hb / c, lb / hb }'
done
echo "(ratio = leaktrace / heaptrack; targets: capture cost ratio <= 0.33, bytes ratio <= 0.5)"

printf '\n== Analysis of a large trace ==\n'
rm -f "$work"/big.*
env LD_PRELOAD="$lib" LEAKTRACE_OUTPUT="$work/big.lt" "$work/allocbench" 1 10 "$analyzer_calls" >/dev/null
heaptrack -o "$work/bight" "$work/allocbench" 1 10 "$analyzer_calls" >/dev/null 2>&1
big_calls=$(calls_in "$work/big.lt")
ht_file=$(ls "$work"/bight*)
/usr/bin/time -f '%e %M' -o "$work/lt.time" "$report" "$work/big.lt" --format json >/dev/null
/usr/bin/time -f '%e %M' -o "$work/ht.time" heaptrack_print "$ht_file" >/dev/null 2>&1
read -r lt_s lt_kb < "$work/lt.time"
read -r ht_s ht_kb < "$work/ht.time"
awk -v c="$big_calls" -v ls="$lt_s" -v lk="$lt_kb" -v hs="$ht_s" -v hk="$ht_kb" 'BEGIN {
  printf "allocator calls in the trace: %d\n", c
  printf "%-16s %9s %14s %12s\n", "tool", "seconds", "calls/s", "peak MiB"
  printf "%-16s %9.2f %14.0f %12.1f\n", "leakreport", ls, c / ls, lk / 1024
  printf "%-16s %9.2f %14.0f %12.1f\n", "heaptrack_print", hs, c / hs, hk / 1024
  printf "speed ratio %.2fx (target >= 3x), memory ratio %.2f (target <= 1)\n", hs / ls, lk / hk }'
fi

printf '\n== Diff of two large traces ==\n'
rm -f "$work"/diff-old.* "$work"/diff-new.*
env LD_PRELOAD="$lib" LEAKTRACE_OUTPUT="$work/diff-old.lt" "$work/allocbench" 1 10 "$analyzer_calls" >/dev/null
env LD_PRELOAD="$lib" LEAKTRACE_OUTPUT="$work/diff-new.lt" "$work/allocbench" 1 10 "$((analyzer_calls + analyzer_calls / 10))" >/dev/null
events=$(( $(calls_in "$work/diff-old.lt") + $(calls_in "$work/diff-new.lt") ))
read_s=$( { /usr/bin/time -f '%e' "$report" info "$work/diff-old.lt" >/dev/null; /usr/bin/time -f '%e' "$report" info "$work/diff-new.lt" >/dev/null; } 2>&1 | awk '{s += $1} END {print s}')
/usr/bin/time -f '%e %M' -o "$work/diff.time" "$report" diff "$work/diff-old.lt" "$work/diff-new.lt" --format json >/dev/null
read -r diff_s diff_kb < "$work/diff.time"
awk -v e="$events" -v r="$read_s" -v d="$diff_s" -v k="$diff_kb" 'BEGIN {
  printf "allocator calls in both traces: %d\n", e
  printf "reading both (info): %.2f s; diff: %.2f s, peak %.1f MiB; ratio %.2f (target <= 1.5)\n", r, d, k / 1024, d / r }'
