#!/usr/bin/env bash
# Frontend instructions per message delivered to native subscribers
# (callgrind "Ir"), with stored batches (libsluice's default) and without
# (--messages-only: one Message per record, as before batches).
#
#   deploy/native_fanout_instructions.sh BUILD_DIR [COUNT] [S1] [S2]
#
# For each way, a fresh one-node sluiced with one frontend runs under
# `valgrind --tool=callgrind --trace-children=yes`; `sluice bench sub`
# publishes COUNT 100-byte messages (batched by libsluice) and then S1
# subscribers (one connection each) read all of them from the earliest
# offset; then the same again on another fresh node with S2 subscribers.
# Both runs publish the same, so the frontend's instructions differ by the
# (S2 - S1) * COUNT deliveries and S2 - S1 connection set-ups:
#     (Ir(S2) - Ir(S1)) / ((S2 - S1) * COUNT)
# is the frontend's cost of one delivered message. The callgrind files
# stay in $work for callgrind_annotate.
set -euo pipefail
build=${1:?usage: deploy/native_fanout_instructions.sh BUILD_DIR [COUNT] [S1] [S2]}
count=${2:-20000}; s1=${3:-1}; s2=${4:-5}
work=$(mktemp -d /tmp/native-cg.XXXXXX)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT

frontend_ir() { # WAY SUBSCRIBERS -> prints the frontend's Ir
    local way=$1 subs=$2 dir=$work/$1-$2 port
    mkdir -p "$dir"
    port=$(freeport)
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
        "$build/sluiced" --data-dir "$dir/data" --listen "127.0.0.1:$port" --frontends 1 >"$dir/sluiced.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        "$build/sluice" --server "127.0.0.1:$port" node status >/dev/null 2>&1 && break
        sleep 0.1
    done
    # shellcheck disable=SC2046
    "$build/sluice" --server "127.0.0.1:$port" --json bench sub --count "$count" --subscribers "$subs" \
        $([ "$way" = messages ] && echo --messages-only) >"$dir/bench.json"
    local fe
    fe=$(for c in $(pgrep -P "$pid"); do grep -q '^sluice-fe-' "/proc/$c/comm" && echo "$c"; done | head -1)
    kill -TERM "$pid"; wait "$pid" || true; pid=
    awk '/^summary:|^totals:/ {print $2; exit}' "$dir/cg.$fe"
}
for way in messages batches; do
    a=$(frontend_ir "$way" "$s1"); b=$(frontend_ir "$way" "$s2")
    python3 -c "import sys; w,a,b,n,s=sys.argv[1],*map(int,sys.argv[2:]); print(f'{w}: frontend Ir {a} ($s1 subscribers), {b} ($s2); per delivered message: {(b-a)/(n*s):.0f}')" \
        "$way" "$a" "$b" "$count" "$((s2 - s1))"
done
echo "callgrind files: $work"
