#!/usr/bin/env bash
# WebSocket clients nobody here wrote, against one sluiced: the RFC 6455
# conformance suite on raw sockets (ws_conformance.py) and Debian's
# python3-websockets (ws_python.py).
# Usage: ws_clients.sh PATH/TO/sluiced
# Listens on 127.0.0.1 only (free ports), stops what it starts by pid, and
# bounds every wait.
set -euo pipefail
sluiced=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/sluice-ws-XXXXXX)
pid=""
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$dir/log" >&2 || true; exit 1; }
# Debian's python3 (python3-websockets is installed for it), whatever python3 is first on PATH
py=/usr/bin/python3
# two distinct free ports: both sockets stay bound until both are chosen
free_ports() { $py -c 'import socket; s=[socket.socket() for _ in range(2)]; [x.bind(("127.0.0.1",0)) for x in s]; print(*[x.getsockname()[1] for x in s])'; }

max=262144
read -r native http < <(free_ports)
"$sluiced" --data-dir "$dir/data" --listen 127.0.0.1:$native --http 127.0.0.1:$http --frontends 2 \
    --ws-message-max $max --ws-ping-interval-ms 1000 --ws-origins 'https://app.example, http://localhost:3000' >"$dir/log" 2>&1 &
pid=$!
H=http://127.0.0.1:$http
for _ in $(seq 100); do curl -sf "$H/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$H/readyz" >/dev/null || fail "not ready"
for t in conf py; do
    [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
        -d '{"partitions":1}' "$H/v1/topics/$t")" = 201 ] || fail "create topic $t"
done
timeout 300 $py "$here/ws_conformance.py" 127.0.0.1 "$http" conf "$max" 1000 || fail "ws_conformance.py"
timeout 120 $py "$here/ws_python.py" 127.0.0.1 "$http" py || fail "ws_python.py"
kill -0 "$pid" || fail "sluiced died"
# a node that stops says so: close 1001 to every WebSocket client
timeout 30 $py - "$http" "$pid" <<'PY' || fail "no 1001 on shutdown"
import asyncio, os, signal, sys, websockets
async def main():
    async with websockets.connect(f"ws://127.0.0.1:{sys.argv[1]}/v1/ws", subprotocols=["sluice.v1.json"]) as ws:
        os.kill(int(sys.argv[2]), signal.SIGTERM)
        try:
            await asyncio.wait_for(ws.recv(), 20)
        except websockets.exceptions.ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 1001, e
            return
        raise AssertionError("a message instead of the close")
asyncio.run(main())
PY
wait "$pid" 2>/dev/null || true
pid=""
echo "ws_clients: ok"
