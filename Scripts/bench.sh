#!/usr/bin/env bash
# Benchmarks leaktrace against heaptrack on the same workloads, interleaved in one run.
#
#   Scripts/bench.sh [--quick] [--rounds N] [--only REGEX] [--verify] [--analyzer-events N] [--diff] [--sizes]
#
# Capture (issues 2 and 10): for each workload, the median wall time natively, under leaktrace
# in its default mode, under leaktrace with LEAKTRACE_UNWIND=libunwind (a full backtrace per
# allocation) and under heaptrack, all four in each round; the capture cost in ns per allocator
# call above native for each tracer; the ratios default/heaptrack, libunwind/heaptrack and
# default/libunwind; trace bytes per call. The hard stack shapes come first: many outer call
# paths under each allocation site at equal depth (pathsbench), deep recursion with varying
# paths (recursebench), gcc's cc1 on a generated C file, git log -p on a generated repository.
# Then the original workloads (allocbench, python3, perl, sqlite3).
# Analysis (issue 3): leakreport on a trace of >= 20 million events against heaptrack_print
# on heaptrack's trace of the same program: allocator calls read per second and peak memory.
# Trace size (issue 12): for each workload, one run of leaktrace folded (the default), one with
# LEAKTRACE_EVENTS=all and one of heaptrack: bytes per allocator call of each, the ratios to
# heaptrack's, the blocks folded and the writer thread's CPU time in each mode. The fold's worst
# case comes first: foldbench-worst, whose blocks all live just longer than the fold window.
# Reports (issue 15): the same for every workload's traces, in wall seconds (with the ratio of
# CPU seconds for the next report beside it: leakreport decodes on a second core): leakreport with
# nothing kept from earlier runs, its first report of the program (with the decompressed debug
# files an earlier report kept), and the next one. The traces that defeat the fold come first:
# foldbench-worst, and python3-json, perl-hash and cc1 traced with LEAKTRACE_EVENTS=all. Beside
# each, the live-table floor: what a bare table takes to match the trace's frees to their blocks.
# Reachability (issue 14, --only reach): the exit scan's time against live heap size (10 MB to
# 1 GB, a pointer-dense worst case first), and what keeping the live set costs the program.
# Diff (issue 4): `leakreport diff` of two large traces of the same program (different
# iteration counts) against reading both (`leakreport info`); target: at most 1.5x.
#
#   --quick        one round, smaller workloads
#   --rounds N     rounds of the capture section (median of N)
#   --only REGEX   only the workloads whose name matches (extended regex); the sections
#                  "analysis", "diff" and "reports" count as workloads of those names
#   --verify       one more run of each workload with LEAKTRACE_UNWIND=verify, printing the
#                  tracer's count of captures that disagreed with libunwind's own walk
#   --diff         only the diff section
#   --sizes        only the trace size section ("size" is its name for --only as well; with
#                  --only, the workloads that match too)
# These are figures to read, not pass/fail tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
analyzer_calls=12000000     # allocbench iterations: ~1.75 allocator calls each => ~21M events
quick=0
diff_only=0
sizes_only=0
only=
verify=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; rounds=1; analyzer_calls=3000000; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --verify) verify=1; shift ;;
    --analyzer-events) analyzer_calls=$2; shift 2 ;;
    --diff) diff_only=1; shift ;;
    --sizes) sizes_only=1; shift ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "bench.sh: --rounds needs a positive number" >&2; exit 2 ;; esac
[ "$diff_only" = 1 ] && only='^diff$'
selected() { [ -z "$only" ] || [[ $1 =~ $only ]]; }
# The capture section runs unless only the size section is asked for.
capture_on() { [ "$sizes_only" = 0 ] && [ "$diff_only" = 0 ]; }
sizes_on() { [ "$diff_only" = 0 ] && { [ "$sizes_only" = 1 ] || [ -z "$only" ] || [[ size =~ $only ]]; }; }

[ "$diff_only" = 1 ] || command -v heaptrack >/dev/null || { echo "bench.sh: heaptrack is not installed (apt-get install heaptrack)" >&2; exit 2; }
[ -x .build/release/leakreport ] && [ -f .build/release/libleaktrace.so ] || Scripts/build.sh
lib=$PWD/.build/release/libleaktrace.so
report=$PWD/.build/release/leakreport
work=$(mktemp -d "${TMPDIR:-/tmp}/leaktrace-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -g -pthread -o "$work/allocbench" Scripts/bench/allocbench.c

iterations=2000000
paths_iterations=1000000    # pathsbench: iterations in all, split between the threads
recurse_calls=2000000
cc1_functions=200
git_commits=3000
if [ "$quick" = 1 ]; then
  iterations=500000; paths_iterations=200000; recurse_calls=500000; cc1_functions=60; git_commits=1000
fi
# Real programs run as themselves (not through a shell or a version-manager shim), so both
# tracers see the same single process.
python=$(python3 -c 'import sys; print(sys.executable)')
# CPython serves small objects from its own pools (pymalloc): the JSON workload then makes only
# ~12 thousand allocator calls, too few to measure a cost per call against run-to-run noise.
# PYTHONMALLOC=malloc sends every object to malloc (what memray and heaptrack users set too).
export PYTHONMALLOC=malloc
# git reads no configuration but the repository's own, and never starts a pager.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_PAGER=cat PAGER=cat
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

# name|command (words split on spaces: no quoting inside). The hard stack shapes come first,
# the worst case (most threads, deepest) first.
workloads=()
fold_workloads=("foldbench-worst|$work/foldworst 17000 $iterations")
for threads in 4 2 1; do
  for depth in 30 10; do
    t="${threads}threads"; [ "$threads" = 1 ] && t="1thread"
    workloads+=("paths-$t-depth$depth|$work/pathsbench $threads $depth $((paths_iterations / threads))")
  done
done
workloads+=(
  "recurse-5to80deep|$work/recursebench 1 $recurse_calls"
  "cc1-O1-${cc1_functions}fn|$(gcc -print-prog-name=cc1) -quiet -O1 $work/gen.c -o /dev/null"
  "git-log-p-${git_commits}|$(command -v git) -C $work/repo log -p"
  "c-1thread-depth10|$work/allocbench 1 10 $iterations"
  "c-1thread-depth30|$work/allocbench 1 30 $iterations"
  "c-2threads-depth10|$work/allocbench 2 10 $iterations"
  "c-2threads-depth30|$work/allocbench 2 30 $iterations"
  "python3-json|$python $work/w.py"
  "perl-hash|$(command -v perl) $work/w.pl"
  "sqlite3-insert|$(command -v sqlite3) -init $work/w.sql :memory: .quit"
)

# What the selected workloads need, built once.
# any REGEX: a selected workload's name matches; needed REGEX: the same, or the reports section
# (which runs every workload) is selected.
any() { local e; for e in "${workloads[@]}"; do [[ ${e%%|*} =~ $1 ]] && selected "${e%%|*}" && return 0; done; return 1; }
needed() { selected reports || selected reach || any "$1"; }
if [ "$diff_only" = 0 ]; then
  { sizes_on || selected reports; } && cc -O2 -g -o "$work/foldworst" Scripts/bench/foldworst.c
  needed '^paths-' && cc -O2 -g -pthread -o "$work/pathsbench" Scripts/bench/pathsbench.c
  needed '^recurse-' && cc -O2 -g -pthread -o "$work/recursebench" Scripts/bench/recursebench.c
  needed '^cc1-' && python3 Scripts/bench/gen_c.py "$cc1_functions" > "$work/gen.c"
  if needed '^git-log-p'; then
    git init -q -b main "$work/repo"
    python3 Scripts/bench/gen_git.py "$git_commits" | git -C "$work/repo" fast-import --quiet --done
  fi
fi

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# seconds ERRFILE command...: the wall time of one run; its stderr goes to ERRFILE, and a
# non-zero exit status is appended to $work/failures.
seconds() {
  local err=$1 start end rc=0; shift
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$err" </dev/null || rc=$?
  end=$(date +%s.%N)
  echo "$rc" > "$work/rc"
  [ "$rc" = 0 ] || echo "exit status $rc: $*" >> "$work/failures"
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}

# The number of allocator calls a workload makes: the counts in leaktrace's END record.
calls_in() { "$report" info "$1" | awk -F'[ =]' '/^calls /{print $2}'; }
# Its allocation calls (malloc, calloc, realloc...: what heaptrack_print counts as "calls to
# allocation functions").
allocs_in() { "$report" info "$1" | awk '/^(allocs|reallocs) /{n += $2} END {print n + 0}'; }
# The largest file of a prefix (a workload that starts other processes writes several traces).
largest() { { ls -S "$work"/"$1".* 2>/dev/null || true; } | head -1; }

if capture_on && any .; then
printf '\n== Capture cost (median of %d interleaved rounds; calls from leaktrace'"'"'s trace) ==\n' "$rounds"
printf '%s\n' "native_s, lt_s, lu_s, ht_s: wall time natively, leaktrace default mode, leaktrace LEAKTRACE_UNWIND=libunwind, heaptrack"
printf '%s\n' "lt_ns, lu_ns, ht_ns: capture cost, ns per allocator call above native; lt/ht, lu/ht, lt/lu: their ratios"
printf '%s\n' "lt_B, ht_B: trace bytes per call (leaktrace default mode, heaptrack) and their ratio"
header=$(printf '%-22s %8s %8s %8s %8s %7s %7s %7s %6s %6s %6s %6s %6s %6s %10s' workload native_s lt_s lu_s ht_s lt_ns lu_ns ht_ns lt/ht lu/ht lt/lu lt_B ht_B B_rat calls)
echo "$header"
: > "$work/rows"
for entry in "${workloads[@]}"; do
  name=${entry%%|*}; cmd=${entry#*|}
  selected "$name" || continue
  nat=(); lt=(); lu=(); ht=()
  rm -f "$work/failures"
  ht_raw=0
  for ((r = 0; r < rounds; r++)); do
    # shellcheck disable=SC2086 # the command is a word list on purpose
    nat+=("$(seconds "$work/err-nat" $cmd)")
    rm -f "$work"/lt.* "$work"/lu.*
    lt+=("$(seconds "$work/err-lt" env LD_PRELOAD="$lib" LEAKTRACE_VERBOSE=1 LEAKTRACE_OUTPUT="$work/lt.%p.lt" $cmd)")
    lu+=("$(seconds "$work/err-lu" env LD_PRELOAD="$lib" LEAKTRACE_VERBOSE=1 LEAKTRACE_UNWIND=libunwind LEAKTRACE_OUTPUT="$work/lu.%p.lt" $cmd)")
    rm -f "$work"/ht.*
    if [ "$ht_raw" = 0 ]; then
      t=$(seconds "$work/err-ht" heaptrack -o "$work/ht" $cmd)
      # heaptrack 1.4's interpreter runs out of memory on some programs (many stacks times
      # many distinct sizes: cc1): the program then dies of SIGPIPE. From then on this
      # workload is measured with --raw (recording only, no interpreter: a lower bound of
      # heaptrack's cost, so the ratios to it are if anything too high).
      if [ "$(cat "$work/rc")" != 0 ]; then ht_raw=1; rm -f "$work"/ht.*; fi
    fi
    [ "$ht_raw" = 0 ] || t=$(seconds "$work/err-ht" heaptrack --raw -o "$work/ht" $cmd)
    ht+=("$t")
  done
  n=$(printf '%s\n' "${nat[@]}" | median); l=$(printf '%s\n' "${lt[@]}" | median)
  u=$(printf '%s\n' "${lu[@]}" | median); h=$(printf '%s\n' "${ht[@]}" | median)
  lt_trace=$(largest lt); ht_trace=$(largest ht)
  if [ -z "$lt_trace" ] || [ -z "$ht_trace" ]; then
    printf '%-22s no trace written (leaktrace: %s, heaptrack: %s)\n' "$name" "${lt_trace:-none}" "${ht_trace:-none}"
    [ -f "$work/failures" ] && sed 's/^/  ! /' "$work/failures"
    continue
  fi
  calls=$(calls_in "$lt_trace")
  [ -n "$calls" ] && [ "$calls" -gt 0 ] || { printf '%-22s no allocator calls in %s\n' "$name" "$lt_trace"; continue; }
  lt_bytes=$(stat -c %s "$lt_trace")
  ht_bytes=$(stat -c %s "$ht_trace")
  mark=; [ "$ht_raw" = 0 ] || mark='*'
  awk -v name="$name$mark" -v n="$n" -v l="$l" -v u="$u" -v h="$h" -v c="$calls" -v lb="$lt_bytes" -v hb="$ht_bytes" '
    function cost(t) { x = (t - n) * 1e9 / c; return x < 0 ? 0 : x }
    function ratio(a, b) { return b > 0 ? sprintf("%6.2f", a / b) : sprintf("%6s", "-") }
    BEGIN {
      lns = cost(l); uns = cost(u); hns = cost(h)
      printf "%-22s %8.3f %8.3f %8.3f %8.3f %7.0f %7.0f %7.0f %s %s %s %6.2f %6.2f %6.2f %10d\n",
        name, n, l, u, h, lns, uns, hns, ratio(lns, hns), ratio(uns, hns), ratio(lns, uns), lb / c, hb / c, lb / hb, c }' \
    | tee -a "$work/rows"
  # What the capture did (printed at exit under LEAKTRACE_VERBOSE=1 by libraries that count it).
  grep -h '^leaktrace: capture' "$work/err-lt" 2>/dev/null | head -4 | sed 's/^/    default:   /' || true
  grep -h '^leaktrace: capture' "$work/err-lu" 2>/dev/null | head -4 | sed 's/^/    libunwind: /' || true
  # Anything else a tracer said on stderr that is not its own verbose chatter.
  grep -hv '^leaktrace: \(tracing to\|trace written to\|capture\)' "$work/err-lt" "$work/err-lu" 2>/dev/null \
    | grep '^leaktrace' | sort -u | head -3 | sed 's/^/    ! /' || true
  [ -f "$work/failures" ] && sort -u "$work/failures" | head -4 | sed 's/^/    ! /'
  [ "$ht_raw" = 0 ] || echo "    ! heaptrack failed (its interpreter): ht_s, ht_ns and ht_B are heaptrack --raw's (no interpretation)"
  if [ "$verify" = 1 ]; then
    rm -f "$work"/vf.*
    # shellcheck disable=SC2086
    env LD_PRELOAD="$lib" LEAKTRACE_UNWIND=verify LEAKTRACE_OUTPUT="$work/vf.%p.lt" $cmd >/dev/null 2>"$work/err-vf" </dev/null || true
    for t in "$work"/vf.*.lt*; do
      [ -e "$t" ] || { echo "    verify: no trace"; break; }
      note=$("$report" dump "$t" | grep -m1 -o 'unwind-verify[^"]*' || true)
      mismatches=$(sed -n 's/.*mismatches=\([0-9]*\).*/\1/p' <<<"$note")
      if [ -z "$note" ]; then echo "    verify: no unwind-verify note in $(basename "$t")"
      elif [ "$mismatches" != 0 ]; then echo "    !!! verify: $note  <-- stack cache disagreed with libunwind"
      else echo "    verify: $note"; fi
    done
  fi
done
echo "(targets: lt/ht <= 0.33, aim 0.2; lt/lu <= ~1; bytes ratio <= 0.5; * heaptrack --raw, see above)"
if [ "$(wc -l < "$work/rows")" -gt 1 ]; then
  printf '\nWorst first (by lt/ht):\n%s\n' "$header"
  sort -k9,9gr "$work/rows"
fi
fi

if sizes_on; then
printf '\n== Trace size (one run per mode; calls from the folded trace) ==\n'
printf '%s\n' "fold_B, all_B, ht_B: trace bytes per allocator call: leaktrace folded (default), LEAKTRACE_EVENTS=all, heaptrack"
printf '%s\n' "fold/ht, all/ht: ratios to heaptrack; folded%: blocks folded per allocation or realloc call; wfold_ms, wall_ms: writer thread CPU"
size_header=$(printf '%-22s %7s %7s %7s %7s %7s %8s %9s %8s %10s' workload fold_B all_B ht_B fold/ht all/ht folded% wfold_ms wall_ms calls)
echo "$size_header"
: > "$work/size-rows"
# writer_ms ERRFILE: the writer threads' CPU time, all processes of a run added up.
writer_ms() { sed -n 's/^leaktrace: writer thread cpu ms: \([0-9]*\).*/\1/p' "$1" | awk '{s += $1} END {print s + 0}'; }
folded_in() { "$report" info "$1" | awk '/^folded-blocks /{print $2}'; }
for entry in "${fold_workloads[@]}" "${workloads[@]}"; do
  name=${entry%%|*}; cmd=${entry#*|}
  [[ $name == foldbench-* ]] || any "^$name\$" || continue
  [[ $name == foldbench-* ]] && [ -n "$only" ] && ! [[ size =~ $only || $name =~ $only ]] && continue
  rm -f "$work"/sf.* "$work"/sa.* "$work"/ht.*
  # shellcheck disable=SC2086
  seconds "$work/err-sf" env LD_PRELOAD="$lib" LEAKTRACE_VERBOSE=1 LEAKTRACE_OUTPUT="$work/sf.%p.lt" $cmd >/dev/null
  # shellcheck disable=SC2086
  seconds "$work/err-sa" env LD_PRELOAD="$lib" LEAKTRACE_VERBOSE=1 LEAKTRACE_EVENTS=all LEAKTRACE_OUTPUT="$work/sa.%p.lt" $cmd >/dev/null
  # shellcheck disable=SC2086
  seconds "$work/err-ht" heaptrack -o "$work/ht" $cmd >/dev/null
  ht_mark=
  if [ "$(cat "$work/rc")" != 0 ]; then
    rm -f "$work"/ht.*; ht_mark='*'
    # shellcheck disable=SC2086
    seconds "$work/err-ht" heaptrack --raw -o "$work/ht" $cmd >/dev/null
  fi
  f_trace=$(largest sf); a_trace=$(largest sa); h_trace=$(largest ht)
  if [ -z "$f_trace" ] || [ -z "$a_trace" ] || [ -z "$h_trace" ]; then
    printf '%-22s no trace written\n' "$name"; continue
  fi
  calls=$(calls_in "$f_trace")
  [ -n "$calls" ] && [ "$calls" -gt 0 ] || { printf '%-22s no allocator calls\n' "$name"; continue; }
  awk -v name="$name$ht_mark" -v c="$calls" -v f="$(stat -c %s "$f_trace")" -v a="$(stat -c %s "$a_trace")" \
      -v h="$(stat -c %s "$h_trace")" -v fo="$(folded_in "$f_trace")" -v al="$(allocs_in "$f_trace")" \
      -v wf="$(writer_ms "$work/err-sf")" -v wa="$(writer_ms "$work/err-sa")" 'BEGIN {
    printf "%-22s %7.3f %7.3f %7.3f %7.2f %7.2f %7.1f%% %9d %8d %10d\n", name, f / c, a / c, h / c, f / h, a / h,
      (al > 0 ? 100 * fo / al : 0), wf, wa, c }' | tee -a "$work/size-rows"
done
echo "(targets, folded: fold/ht <= 1 on every workload, <= 0.5 on the median; * heaptrack --raw's file)"
if [ "$(wc -l < "$work/size-rows")" -gt 1 ]; then
  printf '\nWorst first (by fold/ht):\n%s\n' "$size_header"
  sort -k5,5gr "$work/size-rows"
  awk '{print $5}' "$work/size-rows" | sort -g | awk '{a[NR]=$1} END {printf "median fold/ht: %.2f\n", a[int((NR+1)/2)]}'
fi
fi

if selected analysis && [ "$sizes_only" = 0 ]; then
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

if selected diff && [ "$sizes_only" = 0 ]; then
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
fi

if selected reports && [ "$sizes_only" = 0 ]; then
report_runs=5
cc -O2 -o "$work/tablefloor" Scripts/bench/tablefloor.c
printf '\n== Reports: leakreport against heaptrack_print on each workload'"'"'s traces ==\n'
printf '%s\n' "Wall seconds per report (what the user waits for), the median of $report_runs runs each, and peak RSS. lt_cold: a report"
printf '%s\n' "with nothing kept from earlier runs (the first report on a machine); lt_1st: the first report of this program, with"
printf '%s\n' "the decompressed debug files an earlier report of any program kept (libc's); lt_next: the next report (answers kept"
printf '%s\n' "by the first); ht_s: heaptrack_print's wall seconds; speed: heaptrack_print's wall time / leakreport's; cpu_next:"
printf '%s\n' "the same ratio in CPU seconds (user+sys) for the next report (leakreport decodes on the second core, heaptrack_print"
printf '%s\n' "uses one); MiB: peak RSS of the cold / next report and of heaptrack_print; Mc/s: millions of allocator calls read"
printf '%s\n' "per wall second by leakreport's next report and by heaptrack_print; floor_s: the live-table floor, the seconds a bare"
printf '%s\n' "table of leakreport's layout takes to apply the trace's allocation events and nothing else (Scripts/bench/tablefloor.c:"
printf '%s\n' "a free is matched to its block by address, on the replay's thread, whatever else the analyzer does); ceil: ht_s /"
printf '%s\n' "floor_s, the speed an analyzer that did nothing but that lookup would have"
printf '%-22s %10s %8s %8s %8s %8s %7s %7s %7s %8s %7s %7s %7s %7s %7s %8s %7s\n' workload calls lt_cold lt_1st lt_next ht_s \
  sp_cold sp_1st sp_next cpu_next lt_MiB lt2_MiB ht_MiB lt_Mc/s ht_Mc/s floor_s ceil
# median_of KIND: the medians of the runs' CPU and wall seconds in $work/rp-KIND.*.time
# (Scripts/bench/rusage.py), and the largest RSS. Medians, not means: on a shared machine one run
# in three now and then takes half as long again, for either tool.
median_of() {
  cat "$work"/rp-"$1".*.time | awk '{c[n] = $1 + $2; w[n] = $3; if ($4 > m) m = $4; n++}
    function median(a, n,   i, j, t) {
      for (i = 1; i < n; i++) for (j = i; j > 0 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n % 2 ? a[int(n / 2)] : (a[n / 2 - 1] + a[n / 2]) / 2
    }
    END {printf "%.4f %.4f %d", median(c, n), median(w, n), m}'
}
# The fold keeps short-lived blocks out of the trace, and so out of the replay: the traces that
# defeat it come first. foldbench-worst's blocks all outlive the fold window; the "-all" rows are
# traced with LEAKTRACE_EVENTS=all, every block written (the largest programs and the compiler).
report_entries=("${fold_workloads[@]}")
for entry in "${workloads[@]}"; do
  case ${entry%%|*} in python3-json|perl-hash|cc1-*) report_entries+=("${entry%%|*}-all|${entry#*|}") ;; esac
done
report_entries+=("${workloads[@]}")
for entry in "${report_entries[@]}"; do
  name=${entry%%|*}; cmd=${entry#*|}
  events=; [[ $name == *-all ]] && events=all
  rm -f "$work"/rp-lt.* "$work"/rp-ht.* "$work"/rp-*.time
  # shellcheck disable=SC2086
  env LD_PRELOAD="$lib" ${events:+LEAKTRACE_EVENTS=$events} LEAKTRACE_OUTPUT="$work/rp-lt.%p.lt" $cmd >/dev/null 2>&1 </dev/null || true
  # heaptrack's interpreter dies on some runs (std::bad_alloc on cc1) and leaves the trace cut
  # short: heaptrack_print then reads less than the run made, and the row says so.
  ht_note=""
  # shellcheck disable=SC2086
  heaptrack -o "$work/rp-ht" $cmd >/dev/null 2>&1 </dev/null || ht_note=" (heaptrack's trace cut short)"
  lt_trace=$(largest rp-lt); ht_trace=$(largest rp-ht)
  [ -n "$lt_trace" ] || { printf '%-22s no leaktrace trace\n' "$name"; continue; }
  calls=$(calls_in "$lt_trace")
  floor=$("$report" dump "$lt_trace" | "$work/tablefloor" | awk '{print $1}')
  answers="$work/answers-$name"
  for ((r = 0; r < report_runs; r++)); do
    rm -rf "$answers"
    LEAKTRACE_SYMBOL_CACHE=$answers Scripts/bench/rusage.py "$work/rp-cold.$r.time" "$report" "$lt_trace"
    rm -rf "$answers/symbols"
    LEAKTRACE_SYMBOL_CACHE=$answers Scripts/bench/rusage.py "$work/rp-first.$r.time" "$report" "$lt_trace"
    LEAKTRACE_SYMBOL_CACHE=$answers Scripts/bench/rusage.py "$work/rp-next.$r.time" "$report" "$lt_trace"
    [ -z "$ht_trace" ] || Scripts/bench/rusage.py "$work/rp-ht.$r.time" heaptrack_print "$ht_trace"
  done
  read -r _ cold cold_kb <<<"$(median_of cold)"
  read -r _ first _ <<<"$(median_of first)"
  read -r next_cpu next next_kb <<<"$(median_of next)"
  ht=-; ht_cpu=-; ht_kb=0
  [ -n "$ht_trace" ] && read -r ht_cpu ht ht_kb <<<"$(median_of ht)"
  # A trace cut short holds fewer calls than the run made: the speeds are then ratios of calls
  # per second (heaptrack_print's CPU scaled up to the calls leaktrace recorded), as the target
  # is stated, instead of ratios of CPU seconds on unequal work.
  if [ -n "$ht_note" ] && [ "$ht" != - ]; then
    ht_read=$(heaptrack_print "$ht_trace" 2>/dev/null | awk '/^calls to allocation functions:/{print $5}')
    lt_allocs=$(allocs_in "$lt_trace")
    if [ -n "$ht_read" ] && [ "$ht_read" -gt 0 ]; then
      ht=$(awk -v h="$ht" -v a="$lt_allocs" -v r="$ht_read" 'BEGIN {printf "%.4f", h * a / r}')
      ht_cpu=$(awk -v h="$ht_cpu" -v a="$lt_allocs" -v r="$ht_read" 'BEGIN {printf "%.4f", h * a / r}')
      ht_note=" (heaptrack's trace cut short: heaptrack_print read $ht_read of $lt_allocs allocation calls; ht_s scaled to $lt_allocs)"
    fi
  fi
  awk -v name="$name" -v c="$calls" -v k="$cold" -v f="$first" -v x="$next" -v xc="$next_cpu" -v h="$ht" \
      -v hc="$ht_cpu" -v fk="$cold_kb" -v nk="$next_kb" -v hk="$ht_kb" -v fl="$floor" -v note="$ht_note" '
    function ratio(a, b) { return (a != "-" && b > 0) ? sprintf("%7.2f", a / b) : sprintf("%7s", "-") }
    BEGIN {
      printf "%-22s %10d %8.3f %8.3f %8.3f %8s %s %s %s %8s %7.1f %7.1f %7s %7.1f %7s %8.4f %s%s\n", name, c, k, f, x,
        (h == "-" ? h : sprintf("%.3f", h)), ratio(h, k), ratio(h, f), ratio(h, x), ratio(hc, xc),
        fk / 1024, nk / 1024, (hk > 0 ? sprintf("%.1f", hk / 1024) : "-"),
        c / x / 1e6, (h == "-" ? h : sprintf("%.1f", c / h / 1e6)), fl, ratio(h, fl), note }'
done
echo "(targets: speed >= 3 on every workload, aim 5; lt_MiB <= ht_MiB)"
fi

if selected reach && [ "$sizes_only" = 0 ]; then
cc -O2 -g -o "$work/reachscan" Scripts/bench/reachscan.c
printf '\n== Reachability (issue 14): the exit scan ==\n'
printf '%s\n' "live heap of SIZE-byte blocks, all reachable from one array. dense: every word points into a random block,"
printf '%s\n' "half of them inside it (the worst case: every word is a lookup, in no order); list: one pointer per block"
printf '%s\n' "scan_s: the scan's wall time (from LEAKTRACE_VERBOSE); GB/s: live bytes per second; +MiB: peak RSS above untraced;"
printf '%s\n' "total_s: the whole traced run; vg_s: the same program under valgrind --leak-check=full (10 MB only)"
scan_sizes=(10 100 1000); [ "$quick" = 1 ] && scan_sizes=(10 100 300)
printf '%-6s %6s %8s %10s %8s %8s %8s %8s %8s\n' shape size live_MB blocks scan_s GB/s +MiB total_s vg_s
for shape_size in dense:64 list:64 list:1024; do
  shape=${shape_size%:*}; size=${shape_size#*:}
  for mb in "${scan_sizes[@]}"; do
    /usr/bin/time -f '%M' -o "$work/rs-native.time" "$work/reachscan" "$mb" "$size" "$shape" >/dev/null
    rm -f "$work"/rs.*
    start=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$work/rs-traced.time" env LD_PRELOAD="$lib" LEAKTRACE_VERBOSE=1 LEAKTRACE_OUTPUT="$work/rs.lt" \
      "$work/reachscan" "$mb" "$size" "$shape" >/dev/null 2>"$work/rs.err"
    end=$(date +%s.%N)
    vg=-
    if [ "$mb" = 10 ] && command -v valgrind >/dev/null; then
      vg=$(seconds "$work/rs-vg.err" valgrind --leak-check=full "$work/reachscan" "$mb" "$size" "$shape")
    fi
    line=$(grep -m1 '^leaktrace: reachability' "$work/rs.err" || true)
    scan_us=$(sed -n 's/.*scan-us=\([0-9]*\).*/\1/p' <<<"$line")
    blocks=$(sed -n 's/.*still-reachable=[0-9]*\/\([0-9]*\).*/\1/p' <<<"$line")
    awk -v s="$shape" -v z="$size" -v mb="$mb" -v b="${blocks:-0}" -v us="${scan_us:-0}" -v nk="$(tail -1 "$work/rs-native.time")" \
        -v tk="$(tail -1 "$work/rs-traced.time")" -v t0="$start" -v t1="$end" -v vg="$vg" 'BEGIN {
      printf "%-6s %6d %8d %10d %8.2f %8.2f %8.0f %8.2f %8s\n", s, z, mb, b, us / 1e6, (us > 0 ? mb * 1048576 / (us * 1000) : 0),
        (tk - nk) / 1024, t1 - t0, vg }'
  done
done
echo "(aim: 1 GB of live heap scanned in under a second)"

printf '\n== Reachability: what keeping the live set costs while the program runs ==\n'
printf '%s\n' "median of $rounds interleaved rounds: off_s with LEAKTRACE_REACHABILITY=0, on_s the default (live set and exit scan);"
printf '%s\n' "scan_s: the exit scan within on_s; run: (on_s - scan_s) / off_s, the cost of keeping the set while the program runs"
printf '%-22s %8s %8s %8s %7s\n' workload off_s on_s scan_s run
for entry in "${workloads[@]}"; do
  name=${entry%%|*}; cmd=${entry#*|}
  { [ "$only" = reach ] || selected "$name"; } || continue
  off=(); on=(); scan=()
  for ((r = 0; r < rounds; r++)); do
    rm -f "$work"/rl.*
    # shellcheck disable=SC2086
    off+=("$(seconds "$work/err-off" env LD_PRELOAD="$lib" LEAKTRACE_REACHABILITY=0 LEAKTRACE_OUTPUT="$work/rl.%p.lt" $cmd)")
    rm -f "$work"/rl.*
    # shellcheck disable=SC2086
    on+=("$(seconds "$work/err-on" env LD_PRELOAD="$lib" LEAKTRACE_VERBOSE=1 LEAKTRACE_OUTPUT="$work/rl.%p.lt" $cmd)")
    scan+=("$(sed -n 's/^leaktrace: reachability.*scan-us=\([0-9]*\).*/\1/p' "$work/err-on" | awk '{s += $1} END {print s / 1e6}')")
  done
  o=$(printf '%s\n' "${off[@]}" | median); n=$(printf '%s\n' "${on[@]}" | median); s=$(printf '%s\n' "${scan[@]}" | median)
  awk -v name="$name" -v o="$o" -v n="$n" -v s="$s" 'BEGIN {
    printf "%-22s %8.3f %8.3f %8.3f %7.2f\n", name, o, n, s, (o > 0 ? (n - s) / o : 0) }'
done
echo "(aim: run = 1.00, no measurable change)"
fi
