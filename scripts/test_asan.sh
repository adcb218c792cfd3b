#!/usr/bin/env bash
# The sanitizer leg of CI: builds swpu-sim and a subset of the tests with AddressSanitizer +
# UndefinedBehaviorSanitizer (gcc, -DSWPU_SANITIZE=ON) in build-asan/ and runs them; any report
# fails the test that triggered it (UBSan halts on the first error, LeakSanitizer runs at exit).
# Extra arguments go to ctest. The last line of the output is ctest's summary.
#
# The subset (SWPU_ASAN_TESTS, a ctest regex) is every test of the input readers (config, --set,
# .npy, trace loader, the malformed-trace corpus, the fuzz regression replays), the command line
# (CliTest: each test runs the sanitized swpu-sim, a quarter-width ResNet-18 simulation among
# them, on the default cycle engine) and the unit testbenches of the blocks, the port-level
# testbenches of the clocked units included, and the DRAM formats (their corpus and a chip run
# computing on corrupted DRAM bytes); the end-to-end cycle, functional and network
# suites and the Python tests stay in the normal leg (docs/robustness.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SC_COPYRIGHT_MESSAGE=DISABLE
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=0
export LSAN_OPTIONS="suppressions=$ROOT/tests/sanitize/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TESTS="${SWPU_ASAN_TESTS:-^(Config[A-Za-z]*|Npy|TraceLoader|TraceLoaderErrors|MalformedTrace|CliTest|CompactionNetwork|CompactionNetworkUnit|DblController|DblControllerClocked|ReorderUnit|ReorderUnitClocked|GlobalBufferUnit|PeArrayUnit|VectorUnit|VectorUnitClocked|Energy|Vcd|DmaDram|DramFormat|Machines)\.|^Passes/DramCorruption\.|^Parts/DramCorruptionPart\.|^Tiles/DramTiled\.|^fuzz_replay_}"

bash scripts/install_deps.sh
start=$(date +%s)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSWPU_SANITIZE=ON >/dev/null
cmake --build build-asan -j2 --target sanitizer_subset  # the targets the subset needs
echo "test_asan: sanitized build took $(( $(date +%s) - start )) s"
exec ctest --test-dir build-asan --output-on-failure -j2 -R "$TESTS" "$@"
