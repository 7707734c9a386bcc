#!/usr/bin/env bash
# Sets up a fresh machine, builds leaktrace, traces the bundled example program and shows the
# leak report: the first thing to run.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
Scripts/build.sh
mkdir -p .build/demo
cc -g -O0 -pthread -o .build/demo/leaky examples/leaky.c
rm -f .build/demo/leaky.*.lt
Scripts/leaktrace -o .build/demo/leaky.%p.lt .build/demo/leaky
echo
.build/release/leakreport .build/demo/leaky.*.lt
