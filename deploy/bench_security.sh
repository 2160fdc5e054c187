#!/usr/bin/env bash
# The cost of TLS and authentication (docs/benchmarks.md, docs/security.md):
# three single nodes side by side on this machine, plain, TLS, and TLS with
# [auth] enabled (the client authenticates with a key), the same `sluice
# bench` rows against each, interleaved run by run; medians of RUNS, and each
# one's throughput as a ratio of plain's measured in the same run. The
# HTTP row POSTs 100-byte messages with wrk (deploy/wrk/publish.lua) over
# 16 keep-alive connections, with a bearer token on the auth node.
# Usage: deploy/bench_security.sh [RUNS]     (default 3; builds into build/ if needed)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
b=$here/build
[ -x "$b/sluiced" ] && [ -x "$b/sluice" ] || { cmake -S "$here" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build "$b" -j"$(nproc)" >/dev/null; }
w=$(mktemp -d /tmp/sluice-secbench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$w"; }
trap cleanup EXIT
cd "$w"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" -keyout node.key -out node.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 2 -extfile ext.cnf -out node.pem 2>/dev/null
"$b/sluice" key gen admin.key >admin.pub
head -c 32 /dev/urandom >seal.key && chmod 600 seal.key
read -r p1 h1 p2 h2 p3 h3 < <(python3 -c 'import socket; s=[socket.socket() for _ in range(6)]; [x.bind(("127.0.0.1",0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
"$b/sluiced" --data-dir "$w/plain" --listen 127.0.0.1:$p1 --http 127.0.0.1:$h1 >plain.log 2>&1 &
pids+=($!)
"$b/sluiced" --data-dir "$w/tls" --listen 127.0.0.1:$p2 --http 127.0.0.1:$h2 --tls-cert node.pem --tls-key node.key \
    >tls.log 2>&1 &
pids+=($!)
"$b/sluiced" --data-dir "$w/auth" --listen 127.0.0.1:$p3 --http 127.0.0.1:$h3 --tls-cert node.pem --tls-key node.key \
    --auth true --auth-admin-key "$(cat admin.pub)" --auth-key-file "$w/seal.key" >auth.log 2>&1 &
pids+=($!)
plain=(-s 127.0.0.1:$p1)
tls=(-s 127.0.0.1:$p2 --tls-ca ca.pem)
auth=(-s 127.0.0.1:$p3 --tls-ca ca.pem --key admin.key)
for v in plain tls auth; do
    declare -n args=$v
    for _ in $(seq 100); do "$b/sluice" "${args[@]}" node status >/dev/null 2>&1 && break; sleep 0.1; done
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
"$b/sluice" "${auth[@]}" auth init >/dev/null
token=$("$b/sluice" "${auth[@]}" token issue --principal admin --ttl 1h)
for v in plain tls auth; do
    declare -n args=$v
    "$b/sluice" "${args[@]}" topic create http-bench >/dev/null
done
declare -A url=([plain]="http://127.0.0.1:$h1" [tls]="https://127.0.0.1:$h2" [auth]="https://127.0.0.1:$h3")
# One run of a workload on node v: "msgs_per_s p99_ms".
measure_bench() { # v, sluice bench args
    declare -n args=$1
    shift
    "$b/sluice" "${args[@]}" --json bench "$@" | tail -1 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["msgs_per_s"]), d["latency_ms"]["p99"])'
}
measure_http() { # v: 100 B POSTs over 16 connections for 5 s, with the token on the auth node
    SLUICE_SIZE=100 SLUICE_BATCH=1 SLUICE_TOKEN=$([ "$1" = auth ] && echo "$token") \
        wrk -t2 -c16 -d5s -s "$here/deploy/wrk/publish.lua" "${url[$1]}/v1/topics/http-bench/messages" | tail -1 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); assert not d["errors"] and not d["non_2xx"], d; print(round(d["messages"]/d["seconds"]), d["p99_ms"])'
}
# The table rows of one workload: RUNS interleaved runs on each node, medians, ratios to plain per run.
row() { # label, measure function, its args
    local label=$1 measure=$2 v base t l
    shift 2
    declare -A thr=() lat=() ratio=()
    for _ in $(seq "$runs"); do
        base=0
        for v in plain tls auth; do
            read -r t l < <("$measure" "$v" "$@")
            [ "$v" = plain ] && base=$t
            thr[$v]+="$t "
            lat[$v]+="$l "
            ratio[$v]+="$(python3 -c "print(round($t / $base, 3))") "
        done
    done
    for v in plain tls auth; do
        printf '| %s | %s | %s msg/s | p99 %s ms | %s |\n' "$label" "$v" \
            "$(tr ' ' '\n' <<<"${thr[$v]}" | grep . | median)" "$(tr ' ' '\n' <<<"${lat[$v]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${ratio[$v]}" | grep . | median)"
    done
}
echo "# $(nproc) cores, $(uname -r), $runs runs each, interleaved, sync before ack, TLS 1.3 (P-256), auth: an Ed25519 key"
echo "| workload | node | throughput (median) | latency | throughput / plain (median of per-run ratios) |"
echo "|---|---|---|---|---|"
row "pub 100 B, 4 producers, batched" measure_bench pub --size 100 --count 400000 --producers 4
row "pub 100 B, 4 producers, unbatched" measure_bench pub --size 100 --count 400000 --producers 4 --linger-ms 0
row "e2e 100 B, batched" measure_bench e2e --size 100 --count 200000
row "HTTP POST 100 B, 16 connections" measure_http
