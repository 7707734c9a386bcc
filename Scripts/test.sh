#!/usr/bin/env bash
# Runs the whole test suite: builds both halves as users get them (Scripts/build.sh: the preload
# library and the release leakreport, which ReleaseBuildTests checks), then `swift test` (which
# builds the debug analyzer the other tests run and the test programs they trace). Extra
# arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/build.sh
swift test "$@"
