#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ (clang-14, -fsanitize=fuzzer,address,undefined,
# without SystemC) into build-fuzz/, runs each from a seed corpus made of the shipped inputs, and
# turns every finding (crash, leak, timeout, out-of-memory input) into a regression input under
# tests/fuzz/regressions/<harness>/, which ctest replays in every build (fuzz_replay_<harness>).
#
#   scripts/fuzz.sh [-t SECONDS | -n RUNS] [HARNESS...]      HARNESS: config set npy trace (default all)
#
# -t: time per harness (default 60 s); -n: executions per harness instead. Prints one line per
# harness with the executions done and the findings; exits 1 when anything was found.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

limit=(-max_total_time=60)
while getopts "t:n:h" opt; do
    case "$opt" in
        t) limit=(-max_total_time="$OPTARG") ;;
        n) limit=(-runs="$OPTARG") ;;
        *) sed -n '2,11p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
harnesses=("$@")
[ "${#harnesses[@]}" -gt 0 ] || harnesses=(config set npy trace)

for tool in clang++-14 cmake; do
    command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool is missing (apt-get install clang-14 libclang-rt-14-dev cmake)" >&2; exit 2; }
done
cmake -S . -B build-fuzz -DSWPU_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j2 >/dev/null

trace=configs/traces/resnet18-cifar-digits-substructured
seed_corpus() {  # the shipped inputs each harness starts from
    case "$1" in
        config) cp configs/*.json configs/baselines/*.json "$2"/ ;;
        set)    cp tests/fuzz/seeds/set/* "$2"/ ;;
        npy)    find "$trace" -name '*.npy' | while read -r f; do cp "$f" "$2/$(basename "$(dirname "$f")")_$(basename "$f")"; done ;;
        # The shipped manifest loads in ~50 ms (2 iterations of 4 images at 32x32): mutating it
        # would give ~20 executions per second. Its layout, minified and shrunk to width 1/16, 8x8
        # and batch 1 (tests/fuzz/seeds/trace/tiny.json), loads in about a millisecond; the
        # shipped manifest itself is replayed by ctest (fuzz_replay_trace).
        trace)  cp tests/fuzz/seeds/trace/tiny.json "$2"/ ;;
        *) echo "fuzz.sh: unknown harness '$1' (known: config set npy trace)" >&2; exit 2 ;;
    esac
    if [ -d "tests/fuzz/regressions/$1" ]; then cp tests/fuzz/regressions/"$1"/* "$2"/ 2>/dev/null || true; fi
}

found=0
summary=()
for h in "${harnesses[@]}"; do
    corpus="build-fuzz/corpus/$h"; artifacts="build-fuzz/findings/$h"; log="build-fuzz/fuzz_$h.log"
    mkdir -p "$corpus" "$artifacts"
    seed_corpus "$h" "$corpus"
    start=$(date +%s)
    # Exit status 0 (no finding) or non-zero (a finding); the artifacts say which input.
    set +e
    # A small quarantine and no malloc fill: 1.5x the executions per second, same checks.
    ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=8:max_malloc_fill_size=0:malloc_context_size=5 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "build-fuzz/fuzz_$h" "$corpus" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
    rc=$?
    set -e
    secs=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    n=0
    for a in "$artifacts"/*; do
        [ -f "$a" ] || continue
        kind=$(basename "$a" | cut -d- -f1)
        mkdir -p "tests/fuzz/regressions/$h"
        dest="tests/fuzz/regressions/$h/$kind-$(sha1sum "$a" | cut -c1-16)"
        mv "$a" "$dest"
        echo "fuzz.sh: $h: finding $dest (see $log)" >&2
        n=$((n + 1))
    done
    if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
        echo "fuzz.sh: $h: the fuzzer exited with $rc and left no input (see $log)" >&2
        n=1
    fi
    found=$((found + n))
    summary+=("$(printf '%-7s %12s executions in %6s s, %d finding(s), corpus %s inputs' \
        "$h" "${execs:-?}" "$secs" "$n" "$(find "$corpus" -type f | wc -l)")")
done
printf '%s\n' "${summary[@]}"
[ "$found" -eq 0 ]
