#!/usr/bin/env bash
# Regenerates docs/man/leakreport.1 from leakreport's own command definitions with
# swift-argument-parser's generate-manual tool. Run it after changing a command or an option;
# the tests check that every option leakreport takes is in the page. (leaktrace.1 is written
# by hand.)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product leakreport --static-swift-stdlib
swift build -c release --product generate-manual
# The page carries the date of the last change to the commands, so regenerating it without
# one changes nothing.
date=$(git log -1 --format=%cs -- Sources/LeakReportCommands 2>/dev/null || true)
.build/release/generate-manual .build/release/leakreport --section 1 ${date:+--date "$date"} \
    --output-directory docs/man
