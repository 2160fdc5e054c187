#!/usr/bin/env bash
# Frontend instructions per message delivered to native subscribers
# (callgrind "Ir"), with stored batches (libsluice's default) and without
# (--messages-only: one Message per record, as before batches).
#
#   deploy/native_fanout_instructions.sh BUILD_DIR [COUNT] [SUBSCRIBERS]
#
# For each way, a fresh one-node sluiced with one frontend runs under
# `valgrind --tool=callgrind --trace-children=yes`; `sluice bench sub`
# publishes COUNT 100-byte messages (batched by libsluice) and then no one,
# one, or SUBSCRIBERS subscribers (one connection each) read all of them
# from the earliest offset; each run on a fresh node. The runs publish the
# same, so the frontend's instructions beyond the run without readers are
# the deliveries (and a connection set-up per subscriber):
#     (Ir(S) - Ir(0)) / (S * COUNT)
# is the frontend's cost of one delivered message, on average over S
# subscribers that share the reads and renderings (fe_fanout.c), and
#     (Ir(S) - Ir(1)) / ((S - 1) * COUNT)
# that of each reader after the first. Left out: the inclusive cost of the
# webhook deliverer's tick (wh_deliver.c), whose first run loads the system
# CA store (about 240 M instructions) at a moment that depends on how long
# the run lasts. The callgrind files stay in $work
# for callgrind_annotate. SLUICED=path runs another build's server (e.g.
# one from before batches, with WAYS=messages); WAYS picks the ways
# measured ("messages batches").
set -euo pipefail
build=${1:?usage: deploy/native_fanout_instructions.sh BUILD_DIR [COUNT] [SUBSCRIBERS]}
count=${2:-20000}; subs=${3:-5}
sluiced=${SLUICED:-$build/sluiced}; ways=${WAYS:-messages batches}
work=$(mktemp -d /tmp/native-cg.XXXXXX)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT

frontend_ir() { # WAY SUBSCRIBERS -> prints the frontend's Ir, less its webhook deliverer's ticks
    local way=$1 subs=$2 dir=$work/$1-$2 port
    mkdir -p "$dir"
    port=$(freeport)
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
        "$sluiced" --data-dir "$dir/data" --listen "127.0.0.1:$port" --frontends 1 >"$dir/sluiced.log" 2>&1 &
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
    local total wh
    total=$(awk '/^summary:|^totals:/ {print $2; exit}' "$dir/cg.$fe")
    wh=$(callgrind_annotate --inclusive=yes --threshold=100 "$dir/cg.$fe" 2>/dev/null |
        awk '/wh_deliver.c:tick_cb/ {gsub(",", "", $1); print $1; exit}')
    echo $((total - ${wh:-0}))
}
for way in $ways; do
    z=$(frontend_ir "$way" 0); a=$(frontend_ir "$way" 1); b=$(frontend_ir "$way" "$subs")
    python3 -c "import sys; w,z,a,b,n,s=sys.argv[1],*map(int,sys.argv[2:]); \
print(f'{w}: frontend Ir {z} (no reader), {a} (1), {b} ({s}); per delivered message: {(b-z)/(n*s):.0f}' \
      f' on average, {(a-z)/n:.0f} for one reader alone, {(b-a)/(n*(s-1)):.0f} for each further one')" \
        "$way" "$z" "$a" "$b" "$count" "$subs"
done
echo "callgrind files: $work"
