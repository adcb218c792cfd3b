#!/usr/bin/env bash
# Times the simulator: each scenario REPEAT times (default 5), one process per run, and prints the
# median of host seconds and cycles per second. Usage: benchmarks/run_benchmarks.sh [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-5}
export SC_COPYRIGHT_MESSAGE=DISABLE
[ -x build/bench_sim ] || bash scripts/build.sh >/dev/null
run() {
  local name=$1; shift
  local out=()
  for _ in $(seq "$repeat"); do out+=("$(build/bench_sim "$@")"); done
  printf '%s\n' "${out[@]}" | /usr/bin/python3 benchmarks/summarize.py "$name"
}
run "layer3 conv FF, batch 4" layer
run "ResNet-18 CIFAR iteration" cifar
run "ResNet-18 ImageNet iteration" imagenet
run "CIFAR iteration, ticking" cifar --tick
