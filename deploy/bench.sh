#!/usr/bin/env bash
# Measure with `sluice bench` beside the LMDB ceiling of this machine.
# Publishes are batched by libsluice (linger 5 ms) unless a row says
# "unbatched" (--linger-ms 0: one Publish frame per message).
#   deploy/bench.sh [RUNS]             one node (default 3 runs; prints every run and the median)
#   deploy/bench.sh --cluster [RUNS]   a three-node cluster on loopback (deploy/cluster.sh),
#                                      publishing through the leader and through a follower
# Starts its own nodes on loopback with temporary data dirs (sync before ack,
# the default), and stops them at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cluster=0
if [ "${1:-}" = "--cluster" ]; then cluster=1; shift; fi
runs=${1:-3}
bash "$here/deploy/install-deps.sh"
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j"$(nproc)" --target sluiced sluice >/dev/null
work=$(mktemp -d /tmp/sluice-bench.XXXXXX)
pid=
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [ "$cluster" = 1 ]; then
    export SLUICE_CLUSTER_DIR="$work/cluster" SLUICE_BIN_DIR="$here/build"
    export SLUICE_CLIENT_PORT=$(( 20000 + RANDOM % 20000 )) SLUICE_PEER_PORT=$(( 40000 + RANDOM % 20000 ))
    cleanup() { bash "$here/deploy/cluster.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
    trap cleanup EXIT
    bash "$here/deploy/cluster.sh" start >/dev/null
    all="127.0.0.1:$((SLUICE_CLIENT_PORT + 1)),127.0.0.1:$((SLUICE_CLIENT_PORT + 2)),127.0.0.1:$((SLUICE_CLIENT_PORT + 3))"
    leader=
    for _ in $(seq 100); do
        leader=$("$here/build/sluice" --server "$all" --json cluster status 2>/dev/null |
                 python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader") or "")' 2>/dev/null || true)
        [ -n "$leader" ] && [ "$leader" != 0 ] && break; sleep 0.1
    done
    follower=$(( leader % 3 + 1 ))
    port=$((SLUICE_CLIENT_PORT + leader))
    fport=$((SLUICE_CLIENT_PORT + follower))
else
    cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
    trap cleanup EXIT
    port=$(freeport)
    "$here/build/sluiced" --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/sluiced.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do "$here/build/sluice" --server "127.0.0.1:$port" node status >/dev/null 2>&1 && break; sleep 0.1; done
fi

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bench() { # label, then sluice bench arguments
    local label=$1; shift
    local rates=() p99s=()
    for _ in $(seq "$runs"); do
        out=$("$here/build/sluice" --server "127.0.0.1:${target:-$port}" --json bench "$@")
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
bench "pub 100 B, 1 producer, window 1000" pub --size 100 --count 300000
bench "pub 100 B, 4 producers, window 1000" pub --size 100 --count 400000 --producers 4
bench "pub 100 B, 4 producers, unbatched (linger 0)" pub --size 100 --count 400000 --producers 4 --linger-ms 0
bench "pub 1 KiB, 1 producer, window 1000" pub --size 1024 --count 100000
bench "pub 1 KiB, 4 producers, window 1000" pub --size 1024 --count 200000 --producers 4
bench "pub 100 B, 1 producer, window 1 (latency)" pub --size 100 --count 3000 --window 1
bench "e2e 100 B, 1 producer, window 1000" e2e --size 100 --count 200000
bench "e2e 100 B at 1M msg/s (half of peak)" e2e --size 100 --count 2000000 --rate 1000000
cc -O2 -o "$work/lmdbbench" /work/shared/anchors/lmdbbench.c -llmdb 2>/dev/null ||
    cc -O2 -o "$work/lmdbbench" "$here/../shared/anchors/lmdbbench.c" -llmdb
mkdir -p "$work/lmdb"
"$work/lmdbbench" "$work/lmdb" 100 1000 1000000
rm -rf "$work/lmdb"; mkdir -p "$work/lmdb"
"$work/lmdbbench" "$work/lmdb" 1024 1000 300000
