#!/usr/bin/env bash
# Runs the whole test suite: builds the preload library, then `swift test` (which builds the
# analyzer and the test programs it traces). Extra arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/build.sh --shim-only
swift test "$@"
