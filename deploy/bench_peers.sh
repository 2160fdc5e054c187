#!/usr/bin/env bash
# The cost of TLS on the peer links (docs/benchmarks.md, docs/security.md):
# a three-node cluster on this machine (deploy/cluster.sh), started plain and
# then with TLS on every link (client listeners and mutual TLS between the
# nodes, certificates from deploy/certs.sh), run by run interleaved; the same
# `sluice bench` rows against each: batched publishes through the leader and
# through a follower (whose publishes cross a peer link twice more), and
# window 1 through the leader (one replication round trip per message).
# Medians of RUNS, and each TLS figure as a ratio of plain's in the same run;
# also the CPU time all nine processes of the cluster spent per message of
# the first row (utime + stime from /proc), which a busy machine disturbs
# less than throughput.
# With SLUICE_BASE_BUILD=DIR (a build of another commit), its plain cluster
# runs beside them too, so a change to the peer links is measured in one run.
# Usage: deploy/bench_peers.sh [RUNS]     (default 3; builds into build/ if needed)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
build=${SLUICE_BUILD_DIR:-$here/build}
base=${SLUICE_BASE_BUILD:-}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target sluiced sluice >/dev/null
work=$(mktemp -d /tmp/sluice-bench-peers.XXXXXX)
export SLUICE_CLIENT_PORT=$(( 10000 + RANDOM % 6000 )) SLUICE_PEER_PORT=$(( 17000 + RANDOM % 6000 )) # below the ephemeral range
export SLUICE_HTTP_PORT=$(( 24000 + RANDOM % 6000 ))
stop() { bash "$here/deploy/cluster.sh" stop >/dev/null 2>&1 || true; }
trap 'stop; rm -rf "$work"' EXIT
bash "$here/deploy/certs.sh" "$work/certs" 1 2 3
all="127.0.0.1:$((SLUICE_CLIENT_PORT + 1)),127.0.0.1:$((SLUICE_CLIENT_PORT + 2)),127.0.0.1:$((SLUICE_CLIENT_PORT + 3))"

variants=(plain tls)
[ -n "$base" ] && variants=(base "${variants[@]}")
declare -A res
rows=("pub 100 B, 4 producers, via leader" "pub 100 B, 4 producers, via follower" "pub 100 B, window 1, via leader"
      "CPU us per message, via leader")
cpu_ticks() { # every process of the running cluster, in clock ticks
    local t=0 p
    for p in $(pgrep -f -- "$SLUICE_CLUSTER_DIR/"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo $t
}
start_cluster() { # variant
    local v=$1 bin=$build
    [ "$v" = base ] && bin=$base
    export SLUICE_CLUSTER_DIR="$work/$v-$RANDOM" SLUICE_BIN_DIR=$bin
    mkdir -p "$SLUICE_CLUSTER_DIR"
    if [ "$v" = tls ]; then cp -r "$work/certs" "$SLUICE_CLUSTER_DIR/tls"; export SLUICE_TLS_CA=$work/certs/ca.pem
    else unset SLUICE_TLS_CA; fi
    bash "$here/deploy/cluster.sh" start >/dev/null
    leader=
    for _ in $(seq 200); do
        leader=$("$bin/sluice" --server "$all" --json cluster status 2>/dev/null |
                 python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader") or "")' 2>/dev/null || true)
        [ -n "$leader" ] && [ "$leader" != 0 ] && break; sleep 0.1
    done
    [ -n "$leader" ] && [ "$leader" != 0 ] || { echo "no leader ($v)" >&2; exit 1; }
    sleep 1 # every peer link up
    follower=$(( leader % 3 + 1 ))
}
one() { # variant, row index, port, sluice bench arguments
    local v=$1 r=$2 port=$3; shift 3
    local bin=$build out
    [ "$v" = base ] && bin=$base
    out=$("$bin/sluice" --server "127.0.0.1:$port" --json bench "$@")
    res[$v,$r]+="$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["msgs_per_s"]) if d["messages"] > 5000 else d["latency_ms"]["p50"])') "
}
for run in $(seq "$runs"); do
    for v in "${variants[@]}"; do
        start_cluster "$v"
        t0=$(cpu_ticks)
        one "$v" 0 $((SLUICE_CLIENT_PORT + leader)) pub --size 100 --count 400000 --producers 4
        t1=$(cpu_ticks)
        res[$v,3]+="$(python3 -c "print(round(($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / 400000, 2))") "
        one "$v" 1 $((SLUICE_CLIENT_PORT + follower)) pub --size 100 --count 400000 --producers 4
        one "$v" 2 $((SLUICE_CLIENT_PORT + leader)) pub --size 100 --count 3000 --window 1
        stop
    done
    echo "run $run done" >&2
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# $(nproc) cores, $(uname -r), $runs runs each, three nodes on this machine, sync before ack"
printf '%-40s' "row (msg/s; window 1: p50 ms)"; for v in "${variants[@]}"; do printf ' %12s' "$v"; done; printf '   tls/plain per run\n'
for r in 0 1 2 3; do
    printf '%-40s' "${rows[$r]}"
    for v in "${variants[@]}"; do printf ' %12s' "$(echo "${res[$v,$r]}" | median)"; done
    read -ra p <<<"${res[plain,$r]}"; read -ra t <<<"${res[tls,$r]}"
    printf '  '; for i in "${!p[@]}"; do printf ' %.2f' "$(python3 -c "print(${t[$i]}/${p[$i]})")"; done
    echo
done
for v in "${variants[@]}"; do echo "# $v runs: $(for r in 0 1 2 3; do printf '[%s] ' "${res[$v,$r]% }"; done)"; done
