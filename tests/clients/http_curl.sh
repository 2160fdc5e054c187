#!/usr/bin/env bash
# curl as a real HTTP client of one sluiced: REST publish and read, NDJSON,
# 202 + polling, an SSE stream read with curl -N that resumes with
# Last-Event-ID, /metrics, /v1/asyncapi.json, the console page, HEAD,
# OPTIONS, a CORS preflight, and a durable consumer (create, pull, ack).
# Usage: http_curl.sh PATH/TO/sluiced
# Listens on 127.0.0.1 only (free ports), stops what it starts by pid, and
# bounds every wait.
set -euo pipefail
sluiced=$1
dir=$(mktemp -d /tmp/sluice-curl-XXXXXX)
pid=""
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$dir/log" >&2 || true; exit 1; }
# two distinct free ports: both sockets stay bound until both are chosen
free_ports() { python3 -c 'import socket; s=[socket.socket() for _ in range(2)]; [x.bind(("127.0.0.1",0)) for x in s]; print(*[x.getsockname()[1] for x in s])'; }

read -r native http < <(free_ports)
"$sluiced" --data-dir "$dir/data" --listen 127.0.0.1:$native --http 127.0.0.1:$http --frontends 2 \
    --http-cors-origins 'https://app.example' >"$dir/log" 2>&1 &
pid=$!
H=http://127.0.0.1:$http
for _ in $(seq 100); do curl -sf "$H/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$H/readyz" >/dev/null || fail "not ready"

c() { curl -s --max-time 10 "$@"; }
status() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@"; }

[ "$(status -X PUT -H 'Content-Type: application/json' -d '{"partitions":2}' "$H/v1/topics/orders")" = 201 ] || fail "create"
[ "$(status -X PUT -H 'Content-Type: application/json' -d '{}' "$H/v1/topics/orders")" = 409 ] || fail "create twice"

out=$(c -X POST -H 'Content-Type: text/plain' -H 'Sluice-Partition: 0' --data-binary 'hello' "$H/v1/topics/orders/messages")
echo "$out" | grep -q '"partition":0,"offset":0' || fail "publish: $out"
out=$(c "$H/v1/topics/orders/messages/0/0")
[ "$out" = hello ] || fail "read one: $out"
# an empty header value and an empty payload come back as "" (they have no bytes to point at)
[ "$(status -X PUT -H 'Content-Type: application/json' -d '{"partitions":1}' "$H/v1/topics/empties")" = 201 ] || fail "create empties"
printf '{"payload":"","headers":{"z":"","a":"b"}}\n' |
    c -X POST -H 'Content-Type: application/x-ndjson' --data-binary @- "$H/v1/topics/empties/messages" >/dev/null
out=$(c "$H/v1/topics/empties/messages?from=earliest&max=1")
echo "$out" | grep -q '"headers":{"z":"","a":"b"},"payload":""' || fail "empty header value or payload: $out"

out=$(printf '{"payload":"a"}\n{"payload":"b"}\n' | c -X POST -H 'Content-Type: application/x-ndjson' -H 'Sluice-Partition: 0' --data-binary @- "$H/v1/topics/orders/messages")
echo "$out" | grep -q '"offset":1.*"offset":2' || fail "ndjson: $out"

hdrs=$(c -D - -o /dev/null -X POST -H 'Prefer: respond-async' -H 'Sluice-Partition: 0' -d 'later' "$H/v1/topics/orders/messages")
echo "$hdrs" | grep -q '^HTTP/1.1 202' || fail "202: $hdrs"
loc=$(echo "$hdrs" | tr -d '\r' | sed -n 's/^Location: //p')
st=""
for _ in $(seq 100); do
    st=$(c "$H$loc")
    echo "$st" | grep -q '"status":"committed"' && break
    sleep 0.05
done
echo "$st" | grep -q '"status":"committed".*"offset":3' || fail "poll: $st"

[ "$(status "$H/v1/topics/orders/messages?from=nope")" = 400 ] || fail "bad from"
[ "$(status -X DELETE "$H/v1/cluster")" = 405 ] || fail "405"

# SSE: read the 4 events of partition 0, then resume after the second one
c -N --max-time 2 "$H/v1/topics/orders/events?partition=0&from=earliest" >"$dir/sse1" || true
grep -c '^data: ' "$dir/sse1" | grep -qx 4 || fail "sse: $(cat "$dir/sse1")"
grep -q '^retry: ' "$dir/sse1" || fail "no retry hint"
id2=$(grep '^id: ' "$dir/sse1" | sed -n 2p | cut -c5-)
c -N --max-time 2 -H "Last-Event-ID: $id2" "$H/v1/topics/orders/events?partition=0" >"$dir/sse2" || true
got=$(grep '^data: ' "$dir/sse2" | cut -c7- | tr '\n' ' ')
[ "$got" = "b later " ] || fail "resume got '$got'"
# the query parameter works the same for clients that cannot set headers
c -N --max-time 2 "$H/v1/topics/orders/events?partition=0&lastEventId=$id2" >"$dir/sse3" || true
got=$(grep '^data: ' "$dir/sse3" | cut -c7- | tr '\n' ' ')
[ "$got" = "b later " ] || fail "resume by query got '$got'"
# Prometheus, AsyncAPI and the console over HTTP
ct=$(curl -s --max-time 10 -o "$dir/metrics" -w '%{http_code} %{content_type}' "$H/metrics")
case "$ct" in "200 text/plain; version=0.0.4"*) ;; *) fail "/metrics answered '$ct'" ;; esac
grep -q '^sluice_[a-z_]* ' "$dir/metrics" || fail "/metrics has no sluice_ samples: $(head -5 "$dir/metrics")"
grep -q '^# TYPE sluice_' "$dir/metrics" || fail "/metrics has no sluice_ TYPE lines"
ct=$(curl -s --max-time 10 -o "$dir/asyncapi" -w '%{http_code} %{content_type}' "$H/v1/asyncapi.json")
case "$ct" in "200 application/json"*) ;; *) fail "/v1/asyncapi.json answered '$ct'" ;; esac
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["asyncapi"]=="3.0.0", d.get("asyncapi"); assert "orders" in json.dumps(d["channels"])' \
    "$dir/asyncapi" || fail "/v1/asyncapi.json is not an AsyncAPI 3.0.0 document naming orders"
ct=$(curl -s --max-time 10 -o "$dir/console" -w '%{http_code} %{content_type}' "$H/")
case "$ct" in "200 text/html"*) ;; *) fail "/ answered '$ct'" ;; esac
grep -qi '<!doctype html>' "$dir/console" && grep -q '<script type="module" src="/console.js">' "$dir/console" ||
    fail "/ is not the console page"
ct=$(curl -s --max-time 10 -o "$dir/sluicejs" -w '%{http_code} %{content_type}' "$H/v1/sluice.js")
case "$ct" in "200 text/javascript"*) ;; *) fail "/v1/sluice.js answered '$ct'" ;; esac
grep -q '^export function connect' "$dir/sluicejs" || fail "/v1/sluice.js is not the client module"
[ "$(status "$H/console.js")" = 200 ] || fail "/console.js"
# HEAD: GET's headers, Content-Length included, and no body
hl=$(curl -s --max-time 10 -I "$H/v1/asyncapi.json" | tr -d '\r' | sed -n 's/^Content-Length: //p')
gl=$(curl -s --max-time 10 "$H/v1/asyncapi.json" | wc -c)
[ -n "$hl" ] && [ "$hl" = "$gl" ] || fail "HEAD Content-Length '$hl', GET sent $gl bytes"
# OPTIONS and CORS: a preflight from an allowed origin, an actual answer, another origin
pre=$(curl -s --max-time 10 -i -X OPTIONS -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' \
      -H 'Access-Control-Request-Headers: content-type' "$H/v1/topics/orders/messages" | tr -d '\r')
echo "$pre" | grep -q '^HTTP/1.1 204' && echo "$pre" | grep -q '^Allow: POST, GET, HEAD, OPTIONS$' &&
    echo "$pre" | grep -q '^Access-Control-Allow-Origin: https://app.example$' &&
    echo "$pre" | grep -q '^Access-Control-Allow-Methods: POST, GET, HEAD, OPTIONS$' &&
    echo "$pre" | grep -q '^Access-Control-Allow-Headers: content-type$' &&
    echo "$pre" | grep -q '^Access-Control-Max-Age: 600$' || fail "preflight: $pre"
act=$(curl -s --max-time 10 -i -H 'Origin: https://app.example' --data-binary x "$H/v1/topics/orders/messages" | tr -d '\r')
echo "$act" | grep -q '^Access-Control-Allow-Origin: https://app.example$' &&
    echo "$act" | grep -q '^Access-Control-Expose-Headers: Location, ' || fail "CORS on a publish: $act"
other=$(curl -s --max-time 10 -i -X OPTIONS -H 'Origin: https://other.example' -H 'Access-Control-Request-Method: POST' \
        "$H/v1/topics/orders/messages" | tr -d '\r')
echo "$other" | grep -qi '^Access-Control-' && fail "CORS headers for an origin not in the list: $other"
[ "$(status -X OPTIONS "$H/v1/nope")" = 404 ] || fail "OPTIONS on an unknown path"
# a durable consumer: create it, publish, pull, ack, and the ack floor moves
[ "$(status -X PUT -H 'Content-Type: application/json' -d '{"partitions":1}' "$H/v1/topics/jobs")" = 201 ] || fail "create jobs"
hdrs=$(c -D - -o "$dir/cons" -X POST -H 'Content-Type: application/json' \
       -d '{"name":"workers","topic":"jobs","mode":"shared","ack_timeout_ms":30000}' "$H/v1/consumers" | tr -d '\r')
echo "$hdrs" | grep -q '^HTTP/1.1 201' && echo "$hdrs" | grep -q '^Location: /v1/consumers/workers$' ||
    fail "create consumer: $hdrs $(cat "$dir/cons")"
for p in j1 j2; do c -X POST -H 'Content-Type: text/plain' --data-binary "$p" "$H/v1/topics/jobs/messages" >/dev/null; done
c "$H/v1/consumers/workers/messages?max=10&wait_ms=2000" >"$dir/pulled"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["messages"]
assert [(x["offset"], x["payload"], x["attempt"]) for x in m] == [(0, "j1", 1), (1, "j2", 1)], m' \
    "$dir/pulled" || fail "pull: $(cat "$dir/pulled")"
acks=$(python3 -c 'import json,sys; print(json.dumps({"messages": [{"partition": x["partition"], "offset": x["offset"]} for x in json.load(open(sys.argv[1]))["messages"]]}))' "$dir/pulled")
out=$(c -X POST -H 'Content-Type: application/json' -d "$acks" "$H/v1/consumers/workers/ack")
[ "$out" = '{"acked":2}' ] || fail "ack: $out"
c "$H/v1/consumers/workers" >"$dir/desc"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["partitions"][0]
assert d["name"] == "workers" and d["mode"] == "shared" and p["ack_floor"] == 2 and p["in_flight"] == 0, d' \
    "$dir/desc" || fail "describe: $(cat "$dir/desc")"
out=$(c "$H/v1/consumers/workers/messages?wait_ms=100")
[ "$out" = '{"messages":[]}' ] || fail "pull after ack: $out"
# the consumer in /metrics, in a format Prometheus takes
c "$H/metrics" >"$dir/metrics"
grep -qx 'sluice_consumer_acked_total{consumer="workers",topic="jobs",webhook="false"} 2' "$dir/metrics" &&
    grep -qx 'sluice_consumer_lag_messages{consumer="workers",topic="jobs",webhook="false"} 0' "$dir/metrics" ||
    fail "consumer metrics: $(grep sluice_consumer "$dir/metrics")"
if command -v promtool >/dev/null; then
    promtool check metrics <"$dir/metrics" >/dev/null 2>&1 || fail "promtool: $(promtool check metrics <"$dir/metrics" 2>&1 | head)"
fi
[ "$(status -X DELETE "$H/v1/consumers/workers")" = 204 ] || fail "delete consumer"
[ "$(status "$H/v1/consumers/workers")" = 404 ] || fail "deleted consumer still there"
echo "http_curl: ok"
