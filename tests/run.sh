#!/usr/bin/env bash
# Install what is missing, build, and run every test:
#   1. a -Werror build and the whole ctest suite (unit + integration + fault tests)
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build and the unit tests
#   3. the libFuzzer frame-decoder target, for a bounded time
# Options: --quick (skip the sanitizer and fuzz stages), SLUICE_FUZZ_SECONDS (default 30).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
fuzz_seconds=${SLUICE_FUZZ_SECONDS:-30}
jobs=$(nproc)

bash deploy/install-deps.sh

start=$(date +%s)
echo "== build (-Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== tests"
ctest --test-dir build --output-on-failure --timeout 900

if [ "$quick" = 0 ]; then
    echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_WERROR=ON -DSLUICE_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$jobs"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -L unit --timeout 900

    echo "== fuzz: frame decoder for ${fuzz_seconds}s"
    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSLUICE_FUZZ=ON -DSLUICE_TESTS=OFF >/dev/null
    cmake --build build-fuzz -j"$jobs" --target frame_fuzz
    mkdir -p build-fuzz/corpus
    build-fuzz/frame_fuzz -max_total_time="$fuzz_seconds" -max_len=4096 build-fuzz/corpus 2>build-fuzz/fuzz.log \
        || { tail -50 build-fuzz/fuzz.log; echo "fuzz: frame_fuzz found a failure"; exit 1; }
    tail -1 build-fuzz/fuzz.log
fi
echo "== all stages passed in $(( $(date +%s) - start ))s"
