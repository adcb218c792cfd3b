#!/usr/bin/env bash
# Builds, then runs the default chip (configs/swpu.json) on the built-in synthetic ResNet-18 trace,
# writing the reports to out/default. Extra arguments go to swpu-sim, e.g.
#   scripts/run_default.sh --set chip.voltage=0.56 --set workload.width=0.25
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SC_COPYRIGHT_MESSAGE=DISABLE  # SystemC prints its banner on stderr otherwise
bash scripts/build.sh
exec build/swpu-sim --config configs/swpu.json --out out/default "$@"
