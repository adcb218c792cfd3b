#!/usr/bin/env bash
# Builds, then runs every test with ctest. Extra arguments go to ctest, e.g.
#   scripts/test.sh -R test_config
# The last line of the output is ctest's summary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SC_COPYRIGHT_MESSAGE=DISABLE  # SystemC prints its banner on stderr otherwise
bash scripts/build.sh
exec ctest --test-dir build --output-on-failure -j2 "$@"
