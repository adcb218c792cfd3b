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
run "cycle engine: layer3 conv FF, batch 4" layer
run "cycle engine: layer3 conv FF, batch 4, functional" layer --functional
run "cycle engine: ResNet-18 CIFAR iteration" cifar
run "cycle engine: ResNet-18 ImageNet iteration" imagenet
run "fast engine: layer3 conv FF, batch 4" layer --engine fast
run "fast engine: ResNet-18 CIFAR iteration" cifar --engine fast
run "fast engine: ResNet-18 ImageNet iteration" imagenet --engine fast
run "fast engine: CIFAR iteration, ticking" cifar --engine fast --tick
