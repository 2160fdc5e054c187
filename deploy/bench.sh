#!/usr/bin/env bash
# Measure with `sluice bench` beside the LMDB ceiling of this machine.
# Publishes are batched by libsluice (linger 5 ms) unless a row says
# "unbatched" (--linger-ms 0: one Publish frame per message).
#   deploy/bench.sh [RUNS]             one node (default 3 runs; prints every run and the median)
#   deploy/bench.sh --http [RUNS]      one node, only the HTTP and SSE rows (and one native row)
#   deploy/bench.sh --cluster [RUNS]   a three-node cluster on loopback (deploy/cluster.sh),
#                                      publishing through the leader and through a follower
# One node also gets the HTTP rows: POST with keep-alive (wrk, installed here
# from Debian if missing; deploy/wrk/publish.lua), one message and NDJSON
# batches per request, beside the native rows of the same run; and SSE
# fan-out (`sluice bench sse`, 10,000 subscribers, each run on a fresh node
# so its memory figure starts from a clean heap).
# Starts its own nodes on loopback with temporary data dirs (sync before ack,
# the default), and stops them at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cluster=0 http_only=0
if [ "${1:-}" = "--cluster" ]; then cluster=1; shift; fi
if [ "${1:-}" = "--http" ]; then http_only=1; shift; fi
runs=${1:-3}
bash "$here/deploy/install-deps.sh"
if [ "$cluster" = 0 ] && ! command -v wrk >/dev/null; then # only this script needs it
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get install -y -qq wrk >/dev/null
fi
build=${SLUICE_BUILD_DIR:-$here/build} # an existing RelWithDebInfo build may be given
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target sluiced sluice >/dev/null
work=$(mktemp -d /tmp/sluice-bench.XXXXXX)
pid=
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [ "$cluster" = 1 ]; then
    export SLUICE_CLUSTER_DIR="$work/cluster" SLUICE_BIN_DIR="$build"
    export SLUICE_CLIENT_PORT=$(( 20000 + RANDOM % 20000 )) SLUICE_PEER_PORT=$(( 40000 + RANDOM % 20000 ))
    cleanup() { bash "$here/deploy/cluster.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
    trap cleanup EXIT
    bash "$here/deploy/cluster.sh" start >/dev/null
    all="127.0.0.1:$((SLUICE_CLIENT_PORT + 1)),127.0.0.1:$((SLUICE_CLIENT_PORT + 2)),127.0.0.1:$((SLUICE_CLIENT_PORT + 3))"
    leader=
    for _ in $(seq 100); do
        leader=$("$build/sluice" --server "$all" --json cluster status 2>/dev/null |
                 python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader") or "")' 2>/dev/null || true)
        [ -n "$leader" ] && [ "$leader" != 0 ] && break; sleep 0.1
    done
    follower=$(( leader % 3 + 1 ))
    port=$((SLUICE_CLIENT_PORT + leader))
    fport=$((SLUICE_CLIENT_PORT + follower))
else
    cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
    trap cleanup EXIT
    port=$(freeport); hport=$(freeport)
    "$build/sluiced" --data-dir "$work/data" --listen "127.0.0.1:$port" --http "127.0.0.1:$hport" \
        >"$work/sluiced.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do "$build/sluice" --server "127.0.0.1:$port" node status >/dev/null 2>&1 && break; sleep 0.1; done
fi

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bench() { # label, then sluice bench arguments
    local label=$1; shift
    local rates=() p99s=()
    for _ in $(seq "$runs"); do
        out=$("$build/sluice" --server "127.0.0.1:${target:-$port}" --json bench "$@")
        rates+=("$(echo "$out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["msgs_per_s"]))')")
        p99s+=("$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_ms"]["p99"])')")
    done
    printf '%-46s median %8s msg/s  p99 %6s ms   runs: %s\n' "$label" \
        "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${p99s[@]}" | median)" "${rates[*]}"
}
echo "# $(nproc) cores, $(uname -r), $runs runs each, sync before ack"
if [ "$cluster" = 1 ]; then
    echo "# three nodes on this machine; leader is node $leader"
    bench "3 nodes: pub 100 B, 1 producer, via leader" pub --size 100 --count 300000
    bench "3 nodes: pub 100 B, 4 producers, via leader" pub --size 100 --count 400000 --producers 4
    bench "3 nodes: pub 100 B, 4 producers, unbatched, via leader" pub --size 100 --count 400000 --producers 4 --linger-ms 0
    bench "3 nodes: pub 1 KiB, 4 producers, via leader" pub --size 1024 --count 200000 --producers 4
    bench "3 nodes: pub 100 B, window 1 (latency), via leader" pub --size 100 --count 3000 --window 1
    target=$fport bench "3 nodes: pub 100 B, 4 producers, via follower" pub --size 100 --count 400000 --producers 4
    target=$fport bench "3 nodes: e2e 100 B, pub via follower, sub on follower" e2e --size 100 --count 200000
    target=$fport bench "3 nodes: e2e 100 B at 300k msg/s (half of peak), via follower" e2e --size 100 --count 600000 --rate 300000
    exit 0
fi
if [ "$http_only" = 0 ]; then
    bench "pub 100 B, 1 producer, window 1000" pub --size 100 --count 300000
    bench "pub 100 B, 4 producers, window 1000" pub --size 100 --count 400000 --producers 4
    bench "pub 100 B, 4 producers, unbatched (linger 0)" pub --size 100 --count 400000 --producers 4 --linger-ms 0
    bench "pub 1 KiB, 1 producer, window 1000" pub --size 1024 --count 100000
    bench "pub 1 KiB, 4 producers, window 1000" pub --size 1024 --count 200000 --producers 4
    bench "pub 100 B, 1 producer, window 1 (latency)" pub --size 100 --count 3000 --window 1
    bench "e2e 100 B, 1 producer, window 1000" e2e --size 100 --count 200000
    bench "e2e 100 B at 1M msg/s (half of peak)" e2e --size 100 --count 2000000 --rate 1000000
fi
http_bench() { # label, connections, messages per POST (1: a plain body, N: NDJSON lines)
    local label=$1 conns=$2 batch=$3 rates=() p99s=()
    "$build/sluice" --server "127.0.0.1:$port" topic create "http-bench-$batch-$conns" >/dev/null
    for _ in $(seq "$runs"); do
        out=$(SLUICE_SIZE=100 SLUICE_BATCH=$batch wrk -t2 -c"$conns" -d10s -s "$here/deploy/wrk/publish.lua" \
              "http://127.0.0.1:$hport/v1/topics/http-bench-$batch-$conns/messages" | tail -1)
        echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["errors"] or d["non_2xx"])' ||
            echo "  errors in a run: $out"
        rates+=("$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["messages"]/d["seconds"]))')")
        p99s+=("$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])')")
    done
    printf '%-46s median %8s msg/s  p99 %6s ms   runs: %s\n' "$label" \
        "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${p99s[@]}" | median)" "${rates[*]}"
}
sse_bench() { # label, then sluice bench sse arguments; every run on a fresh node
    local label=$1; shift
    local p50s=() p99s=() rss=() rates=() errs=()
    for r in $(seq "$runs"); do
        local sp shp spid
        sp=$(freeport); shp=$(freeport)
        "$build/sluiced" --data-dir "$work/sse$r" --listen "127.0.0.1:$sp" --http "127.0.0.1:$shp" \
            >"$work/sse$r.log" 2>&1 &
        spid=$!
        for _ in $(seq 100); do "$build/sluice" --server "127.0.0.1:$sp" node status >/dev/null 2>&1 && break; sleep 0.1; done
        out=$("$build/sluice" --server "127.0.0.1:$sp" --json bench sse --http "127.0.0.1:$shp" --pid "$spid" "$@" || true)
        kill "$spid"; wait "$spid" 2>/dev/null || true; rm -rf "$work/sse$r"
        read -r rate p50 p99 per err < <(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); l=d["latency_ms"]
print(round(d["msgs_per_s"]), l["p50"], l["p99"], round(d["rss_bytes_per_subscriber"]),
      d["missing"] + d["duplicates"] + d["failed"] + d["dropped"])')
        rates+=("$rate"); p50s+=("$p50"); p99s+=("$p99"); rss+=("$per"); errs+=("$err")
    done
    printf '%-46s median %8s msg/s  p50 %8s ms  p99 %8s ms  %6s B/idle subscriber  missing+dup+failed: %s   runs: %s\n' \
        "$label" "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${p50s[@]}" | median)" \
        "$(printf '%s\n' "${p99s[@]}" | median)" "$(printf '%s\n' "${rss[@]}" | median)" "${errs[*]}" "${rates[*]}"
}
http_bench "http POST 100 B, 64 keep-alive connections" 64 1
http_bench "http NDJSON 100 x 100 B per POST, 16 conns" 16 100
http_bench "http NDJSON 1000 x 100 B per POST, 4 conns" 4 1000
bench "native pub 100 B, 4 producers (same run)" pub --size 100 --count 400000 --producers 4
sse_bench "sse 10,000 subscribers, 1,000 msg/s, 20 s" --subscribers 10000 --rate 1000 --duration 20
sse_bench "sse 10,000 subscribers, 100 msg/s, 20 s" --subscribers 10000 --rate 100 --duration 20
[ "$http_only" = 1 ] && exit 0
cc -O2 -o "$work/lmdbbench" /work/shared/anchors/lmdbbench.c -llmdb 2>/dev/null ||
    cc -O2 -o "$work/lmdbbench" "$here/../shared/anchors/lmdbbench.c" -llmdb
mkdir -p "$work/lmdb"
"$work/lmdbbench" "$work/lmdb" 100 1000 1000000
rm -rf "$work/lmdb"; mkdir -p "$work/lmdb"
"$work/lmdbbench" "$work/lmdb" 1024 1000 300000
