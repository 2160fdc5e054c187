#!/usr/bin/env bash
# Install what is missing, build, and start one sluice node in the background
# on 127.0.0.1:7400 (override with SLUICE_PORT), then print how to use it.
#   deploy/quickstart.sh          start
#   deploy/quickstart.sh stop     stop the node it started
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${SLUICE_PORT:-7400}
run=${SLUICE_QUICKSTART_DIR:-/tmp/sluice-quickstart}
pidfile=$run/sluiced.pid

if [ "${1:-}" = "stop" ]; then
    if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
        echo "sluiced stopped"
    else
        echo "no sluiced running from $run"
    fi
    rm -f "$pidfile"
    exit 0
fi

bash "$here/deploy/install-deps.sh"
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j"$(nproc)" --target sluiced sluice

mkdir -p "$run"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "sluiced already running (pid $(cat "$pidfile")); 'deploy/quickstart.sh stop' stops it"
else
    nohup "$here/build/sluiced" --data-dir "$run/data" --listen "127.0.0.1:$port" >"$run/sluiced.log" 2>&1 &
    echo $! >"$pidfile"
    ok=0
    for _ in $(seq 100); do
        if "$here/build/sluice" --server "127.0.0.1:$port" node status >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    if [ "$ok" != 1 ]; then
        echo "sluiced did not come up; its log:" >&2
        tail -20 "$run/sluiced.log" >&2
        exit 1
    fi
fi
bin=$here/build
cat <<MSG

sluice is running: node 1 on 127.0.0.1:$port, data in $run/data, log in $run/sluiced.log

  export PATH=$bin:\$PATH SLUICE_SERVER=127.0.0.1:$port
  sluice topic create orders --partitions 3
  sluice pub orders 'hello, world'                 # one message; prints its partition and offset
  seq 1 100000 | sluice pub orders                 # one message per line, pipelined
  sluice sub orders --from earliest --count 10     # read back
  sluice sub orders --group billing                # a consumer group: resumes where it left off
  sluice topic describe orders
  sluice bench pub --size 100 --count 200000

Stop it with: $here/deploy/quickstart.sh stop
MSG
