#!/usr/bin/env bash
# Acked consumption and webhook deliveries beside a plain subscription
# (`sluice bench consume|webhook`, docs/benchmarks.md "Durable consumers and
# webhooks"), with the log bytes each costs.
#   deploy/bench_consume.sh [RUNS]            one node (default 3 runs per row; every run and the median)
#   deploy/bench_consume.sh --cluster [RUNS]  three nodes of deploy/cluster.sh, through the leader;
#                                             the consume rows only (cluster.sh writes configs
#                                             without [webhooks] allow_private)
# Starts its node(s) on loopback with temporary data dirs (sync before ack, the
# default; one node gets --webhook-allow-private true, so the bench's loopback
# receiver is allowed) and passes the (leader's) master pid to the bench, which
# reads its logwriter's /proc/PID/io (write_bytes and wchar) around each
# phase. Stops them at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cluster=0
if [ "${1:-}" = "--cluster" ]; then cluster=1; shift; fi
runs=${1:-3}
build=${SLUICE_BUILD_DIR:-$here/build} # an existing RelWithDebInfo build may be given
if [ -z "${SLUICE_BUILD_DIR:-}" ]; then
    cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j"$(nproc)" --target sluiced sluice >/dev/null
fi
work=$(mktemp -d /tmp/sluice-bench-consume.XXXXXX)
pid=
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [ "$cluster" = 1 ]; then
    export SLUICE_CLUSTER_DIR="$work/cluster" SLUICE_BIN_DIR="$build"
    export SLUICE_CLIENT_PORT=$(( 20000 + RANDOM % 20000 )) SLUICE_PEER_PORT=$(( 40000 + RANDOM % 20000 ))
    export SLUICE_HTTP_PORT=$(( SLUICE_PEER_PORT + 10 ))
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
    port=$((SLUICE_CLIENT_PORT + leader))
    pid=$(cat "$SLUICE_CLUSTER_DIR/node$leader.pid")
else
    cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
    trap cleanup EXIT
    port=$(freeport); hport=$(freeport)
    "$build/sluiced" --data-dir "$work/data" --listen "127.0.0.1:$port" --http "127.0.0.1:$hport" \
        --webhook-allow-private true >"$work/sluiced.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do "$build/sluice" --server "127.0.0.1:$port" node status >/dev/null 2>&1 && break; sleep 0.1; done
fi

cat >"$work/median.py" <<'PY'
import json, statistics, sys
label = sys.argv[1]
runs = [json.loads(l) for l in sys.stdin if l.strip()]
def med(k, sub=None):
    v = [(r[k][sub] if sub else r[k]) for r in runs]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else float("nan")
def each(k):
    return " / ".join(str(round(r[k])) if r[k] is not None else "-" for r in runs)
if runs[0]["mode"] == "consume":
    print(f"{label}: acked {med('msgs_per_s'):,.0f} msg/s [{each('msgs_per_s')}], "
          f"plain sub {med('subscribe_msgs_per_s'):,.0f} [{each('subscribe_msgs_per_s')}], "
          f"ratio {med('acked_vs_subscribe'):.3f}, pull->ack p50 {med('latency_ms', 'p50'):.2f} ms "
          f"p99 {med('latency_ms', 'p99'):.2f} ms; log bytes per published {med('log_bytes_per_published'):,.0f} "
          f"(wchar {med('log_wchar_per_published'):,.0f}), per acked {med('log_bytes_per_acked'):,.0f} "
          f"(wchar {med('log_wchar_per_acked'):,.0f}) [{each('log_bytes_per_acked')}], per request "
          f"{med('log_bytes_per_request'):,.0f} (wchar {med('log_wchar_per_request'):,.0f}); "
          f"pulls {med('pulls_made'):.0f}, ack requests {med('ack_requests'):.0f}")
else:
    print(f"{label}: {med('deliveries_per_s'):,.0f} deliveries/s [{each('deliveries_per_s')}], "
          f"first after {med('first_delivery_ms'):.0f} ms, redelivered {med('redelivered'):.0f}; "
          f"log bytes per published {med('log_bytes_per_published'):,.0f} "
          f"(wchar {med('log_wchar_per_published'):,.0f}), per delivered {med('log_bytes_per_delivered'):,.0f} "
          f"(wchar {med('log_wchar_per_delivered'):,.0f}) [{each('log_bytes_per_delivered')}]")
PY
# label, then sluice bench arguments: the median of each figure over the runs, and the runs
row() {
    local label=$1; shift
    local outs=()
    for _ in $(seq "$runs"); do
        outs+=("$("$build/sluice" --server "127.0.0.1:$port" --json bench "$@" --pid "$pid")")
    done
    printf '%s\n' "${outs[@]}" | python3 "$work/median.py" "$label"
}
echo "# $(nproc) cores, $(uname -r), $runs runs each, sync before ack, load: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$cluster" = 1 ] && echo "# three nodes on this machine; through the leader, node $leader (its logwriter's bytes)"
row "consume shared, 1 partition, 200,000 x 100 B, 4 pulls x 1000" consume --count 200000
row "consume shared, 4 partitions, 200,000 x 100 B, 4 pulls x 1000" consume --count 200000 --partitions 4
row "consume ordered, 4 partitions, 4,000 x 100 B, 1 pull" consume --ordered --partitions 4 --count 4000 --pulls 1
row "consume ordered, 4 partitions, 4,000 x 100 B, 4 pulls" consume --ordered --partitions 4 --count 4000 --pulls 4
if [ "$cluster" = 0 ]; then
row "webhook ordered, 1 partition, 3,000 x 100 B" webhook --count 3000
row "webhook ordered, 4 partitions, 6,000 x 100 B" webhook --count 6000 --partitions 4
row "webhook shared, max_in_flight 100, 30,000 x 100 B" webhook --count 30000 --max-in-flight 100
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
