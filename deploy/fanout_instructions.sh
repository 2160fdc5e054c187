#!/usr/bin/env bash
# Frontend instructions per delivered SSE event (callgrind "Ir").
#
#   deploy/fanout_instructions.sh BUILD_DIR [SUBSCRIBERS] [N1] [N2]
#
# A fresh one-node sluiced with one frontend runs under
# `valgrind --tool=callgrind --trace-children=yes`; `sluice bench sse`
# opens SUBSCRIBERS raw event streams and publishes N1 messages (unbatched,
# 20 msg/s); then the same again with N2 messages on another fresh node.
# The frontend's instructions of the two runs differ only by the N2 - N1
# messages fanned out to every subscriber, so
#     (Ir(N2) - Ir(N1)) / ((N2 - N1) * SUBSCRIBERS)
# is the frontend's cost of one delivered event, without start-up and
# connection set-up. The callgrind files stay in $work for callgrind_annotate.
set -euo pipefail
build=${1:?usage: deploy/fanout_instructions.sh BUILD_DIR [SUBSCRIBERS] [N1] [N2]}
subs=${2:-1000}; n1=${3:-20}; n2=${4:-120}
work=$(mktemp -d /tmp/fanout-cg.XXXXXX)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT

measure() { # N -> prints the frontend's Ir
    local n=$1 dir=$work/run-$1 port hport
    mkdir -p "$dir"
    port=$(freeport); hport=$(freeport)
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
        "$build/sluiced" --data-dir "$dir/data" --listen "127.0.0.1:$port" --http "127.0.0.1:$hport" \
        --frontends 1 >"$dir/sluiced.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        "$build/sluice" --server "127.0.0.1:$port" node status >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$build/sluice" --server "127.0.0.1:$port" --json bench sse --http "127.0.0.1:$hport" --pid "$pid" \
        --subscribers "$subs" --rate 20 --count "$n" >"$dir/bench.json"
    local fe
    fe=$(for c in $(pgrep -P "$pid"); do grep -q '^sluice-fe-' "/proc/$c/comm" && echo "$c"; done | head -1)
    kill -TERM "$pid"; wait "$pid" || true; pid=
    awk '/^summary:|^totals:/ {print $2; exit}' "$dir/cg.$fe"
}
a=$(measure "$n1"); b=$(measure "$n2")
python3 -c "import sys; a,b,n,s=map(int,sys.argv[1:]); print(f'frontend Ir: {a} (N1), {b} (N2); per delivered event: {(b-a)/(n*s):.0f}')" \
    "$a" "$b" "$((n2 - n1))" "$subs"
echo "callgrind files: $work"
