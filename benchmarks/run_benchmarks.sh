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
  printf '%s\n' "${out[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
r = rows[0]
print(f"{sys.argv[1]:28s} cycles {r[\"simulated_cycles\"]:>11d}  host s (median of {len(rows)}) "
      f"{statistics.median(x[\"host_seconds\"] for x in rows):7.3f}  cycles/s "
      f"{statistics.median(x[\"cycles_per_second\"] for x in rows)/1e6:7.2f} M  peak RSS "
      f"{max(x[\"peak_rss_mb\"] for x in rows):6.1f} MB")' "$name"
}
run "layer3 conv FF, batch 4" layer
run "ResNet-18 CIFAR iteration" cifar
run "ResNet-18 ImageNet iteration" imagenet
run "CIFAR iteration, ticking" cifar --tick
