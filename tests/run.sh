#!/usr/bin/env bash
# Install what is missing, build, and run every test:
#   1. a -Werror build and the whole ctest suite (unit + integration + fault tests)
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build: the unit tests, and the HTTP, WebSocket,
#      GraphQL, durable consumer, webhook and TLS suites with their real clients
#   3. the libFuzzer targets (native frames, cluster frames, raft entries, storage batches, HTTP requests,
#      GraphQL documents, WebSocket messages, webhook URLs, secrets and Retry-After),
#      for a bounded time
# Options: --quick (skip the sanitizer and fuzz stages), SLUICE_FUZZ_SECONDS (default 30, split
# evenly over the fuzz targets, at least 5s each).
#   --soak N: build, then run only the cluster fault tests, with random faults for N more
#   seconds (sets SLUICE_SOAK_SECONDS=N; SLUICE_SOAK_SEED=S replays a fault schedule).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
quick=0
soak=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --soak)
            soak=${2:-}
            [[ "$soak" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [--quick] [--soak SECONDS]" >&2; exit 2; }
            shift ;;
        *) echo "usage: $0 [--quick] [--soak SECONDS]" >&2; exit 2 ;;
    esac
    shift
done
fuzz_seconds=${SLUICE_FUZZ_SECONDS:-30}
jobs=$(nproc)

bash deploy/install-deps.sh
# npm clients of the tests, pinned by their package-lock.json: eventsource@4, ws 8, graphql-ws 6,
# graphql@16 and standardwebhooks 1.1.1 (tests/node),
# @asyncapi/parser (tests/web)
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/web && npm ci --no-audit --no-fund --loglevel=error)

start=$(date +%s)
echo "== build (-Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

if [ "$soak" != 0 ]; then
    echo "== cluster fault tests with a ${soak}s soak"
    SLUICE_SOAK_SECONDS="$soak" build/tests/cluster_test --jobs 1
    echo "== soak passed in $(( $(date +%s) - start ))s"
    exit 0
fi

echo "== tests"
ctest --test-dir build --output-on-failure --timeout 900

if [ "$quick" = 0 ]; then
    echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_WERROR=ON -DSLUICE_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$jobs"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -L unit --timeout 900
    # The HTTP, SSE, WebSocket and GraphQL servers under the sanitizers, driven by their real clients.
    # A frontend that hits an error is restarted by its master and a client may not notice, so the
    # sanitizers write to files and any file fails the stage.
    san_logs="$here/build-asan/san-logs"
    rm -rf "$san_logs" && mkdir -p "$san_logs"
    ASAN_OPTIONS=detect_leaks=1:log_path=$san_logs/asan UBSAN_OPTIONS=print_stacktrace=1:log_path=$san_logs/ubsan \
        ctest --test-dir build-asan --output-on-failure --timeout 600 \
        -R '^(http_test|http_curl_test|gql_http_test|ws_clients_test|ws_python_failover|node_sluice_js_failover|node_graphql_ws|console_browser_test|consumer_native_test|consumer_cluster_test|http_consumer_test|cli_webhook_test|node_webhooks|node_callbacks|auth_test_cli|node_revoke|audit_test_cli|secure_cluster_test|limits_test|tbucket_test|tls_test|node_tls_ws|console_tls_browser_test)$'
    # A sanitizer opens its file when it starts a report. An empty one means a process was killed
    # (kill -9 by a test) between that open and the first line: named here, not a failure.
    for f in "$san_logs"/*; do
        [ -e "$f" ] && [ ! -s "$f" ] && echo "note: empty sanitizer log $(basename "$f") (its process was killed)" && rm -f "$f"
    done
    if [ -n "$(ls -A "$san_logs")" ]; then
        head -60 "$san_logs"/*
        echo "sanitizers reported errors in the servers (build-asan/san-logs)"
        exit 1
    fi

    # Every fuzz target; one not built yet is skipped. Each runs from build-fuzz/corpus-NAME
    # (NAME without _fuzz), seeded from tests/fuzz/corpus-NAME when that exists.
    fuzz_targets="frame_fuzz peer_fuzz entry_fuzz batch_fuzz unpack_fuzz http_fuzz gql_fuzz ws_fuzz consumer_fuzz wh_fuzz auth_fuzz"
    echo "== fuzz: ${fuzz_targets} for ${fuzz_seconds}s in all"
    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSLUICE_FUZZ=ON -DSLUICE_TESTS=OFF >/dev/null
    cmake --build build-fuzz -j"$jobs" --target fuzz
    present=()
    for name in $fuzz_targets; do
        if [ -x "build-fuzz/$name" ]; then
            present+=("$name")
        else
            echo "$name: skipped, build-fuzz/$name was not built"
        fi
    done
    [ "${#present[@]}" -gt 0 ] || { echo "fuzz: no fuzz target was built"; exit 1; }
    secs=$(( fuzz_seconds / ${#present[@]} ))
    [ "$secs" -ge 5 ] || secs=5
    for name in "${present[@]}"; do
        corpus="build-fuzz/corpus-${name%_fuzz}"
        seeds="tests/fuzz/corpus-${name%_fuzz}"
        mkdir -p "$corpus"
        [ ! -d "$seeds" ] || find "$seeds" -maxdepth 1 -type f -exec cp -t "$corpus" {} +
        build-fuzz/$name -max_total_time="$secs" -max_len=4096 -artifact_prefix="build-fuzz/$name-" "$corpus" \
            2>"build-fuzz/$name.log" \
            || { tail -50 "build-fuzz/$name.log"; echo "fuzz: $name found a failure"; exit 1; }
        echo "$name (${secs}s): $(tail -1 "build-fuzz/$name.log")"
    done
fi
echo "== all stages passed in $(( $(date +%s) - start ))s"
