#!/usr/bin/env bash
# TLS on the client listeners of one sluiced, with real clients: a throw-away
# CA and node certificate (openssl, subjectAltName IP:127.0.0.1,DNS:localhost);
# curl --cacert publishes and reads back over https, and plain http or an
# untrusted CA fails; openssl s_client refuses TLS 1.1 and speaks 1.2 and 1.3
# on both listeners; the sluice CLI (libsluice) with --tls-ca and
# $SLUICE_TLS_CA publishes and subscribes, and without the CA is refused; an
# SSE stream over https; a bad certificate stops the node at start; and a
# SIGHUP with a new certificate (same CA, another serial) while an SSE stream
# stays open: the stream receives a message published after the reload, and
# new connections see the new serial.
# Usage: tls.sh PATH/TO/sluiced PATH/TO/sluice
# Listens on 127.0.0.1 only (free ports), stops what it starts by pid, and
# bounds every wait.
set -euo pipefail
sluiced=$1
sluice=$2
dir=$(mktemp -d /tmp/sluice-tls-XXXXXX)
pid=""
sse_pid=""
cleanup() {
    [ -z "$sse_pid" ] || { kill "$sse_pid" 2>/dev/null || true; wait "$sse_pid" 2>/dev/null || true; }
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$dir/log" >&2 || true; exit 1; }
free_ports() { python3 -c 'import socket; s=[socket.socket() for _ in range(2)]; [x.bind(("127.0.0.1",0)) for x in s]; print(*[x.getsockname()[1] for x in s])'; }

# ---- a CA and two node certificates it signs (serials 1001 and 2002)
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=sluice test CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout node.key -out node.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext.cnf
for serial in 1001 2002; do
    openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -set_serial 0x$serial -days 2 -extfile ext.cnf \
        -out node-$serial.pem 2>/dev/null
done
cp node-1001.pem node.pem
# another CA, which the clients must not take for ours
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=other CA" \
    -keyout other.key -out other.pem 2>/dev/null

# ---- files that cannot serve stop the node at start, naming the file (exit 78)
read -r native http < <(free_ports)
common=(--data-dir "$dir/data" --listen 127.0.0.1:$native --http 127.0.0.1:$http --frontends 2)
set +e
out=$(timeout 10 "$sluiced" "${common[@]}" --tls-cert "$dir/node.pem" --tls-key "$dir/ca.key" 2>&1); rc=$?
[ $rc = 78 ] && echo "$out" | grep -q 'does not match' || fail "mismatched key: rc $rc: $out"
out=$(timeout 10 "$sluiced" "${common[@]}" --tls-cert "$dir/missing.pem" --tls-key "$dir/node.key" 2>&1); rc=$?
[ $rc = 78 ] && echo "$out" | grep -q 'missing.pem' || fail "missing cert: rc $rc: $out"
out=$(timeout 10 "$sluiced" "${common[@]}" --tls-cert "$dir/node.pem" --tls-key "$dir/node.key" \
    --tls-ca "$dir/other.pem" 2>&1); rc=$?
[ $rc = 78 ] && echo "$out" | grep -q 'not issued by' || fail "cert of another CA: rc $rc: $out"
out=$(timeout 10 "$sluiced" "${common[@]}" --tls-cert "$dir/node.pem" 2>&1); rc=$?
[ $rc = 64 ] && echo "$out" | grep -q 'tls.key' || fail "cert without key: rc $rc: $out"
set -e

"$sluiced" "${common[@]}" --tls-cert "$dir/node.pem" --tls-key "$dir/node.key" --tls-ca "$dir/ca.pem" \
    >"$dir/log" 2>&1 &
pid=$!
H=https://127.0.0.1:$http
c() { curl -s --max-time 10 --cacert "$dir/ca.pem" "$@"; }
for _ in $(seq 100); do c -f "$H/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
c -f "$H/readyz" >/dev/null || fail "not ready over https"

# ---- curl over https: publish, read back the exact payload and offset
[ "$(c -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' -d '{"partitions":1}' \
    "$H/v1/topics/orders")" = 201 ] || fail "create over https"
out=$(c -X POST -H 'Content-Type: text/plain' --data-binary 'hello over tls' "$H/v1/topics/orders/messages")
echo "$out" | grep -q '"partition":0,"offset":0' || fail "publish over https: $out"
[ "$(c "$H/v1/topics/orders/messages/0/0")" = 'hello over tls' ] || fail "read back over https"
# the name in the certificate works as well as the address
[ "$(c "https://localhost:$http/v1/topics/orders/messages/0/0")" = 'hello over tls' ] || fail "https://localhost"

# ---- what must fail: plain HTTP on the TLS port, no CA, another CA
curl -s --max-time 5 "http://127.0.0.1:$http/readyz" >/dev/null && fail "plain http answered on the TLS port"
set +e
curl -s --max-time 5 "$H/readyz" >/dev/null; rc=$?
[ $rc = 60 ] || fail "curl without the CA: exit $rc, wanted 60 (certificate not trusted)"
curl -s --max-time 5 --cacert "$dir/other.pem" "$H/readyz" >/dev/null; rc=$?
[ $rc = 60 ] || fail "curl with another CA: exit $rc, wanted 60"
set -e

# ---- protocol versions, on both listeners
for port in $native $http; do
    # SECLEVEL=0 lets the client offer TLS 1.1 at all: the refusal must be the server's
    out=$(echo | timeout 10 openssl s_client -connect 127.0.0.1:$port -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
        -CAfile ca.pem 2>&1 || true)
    echo "$out" | grep -q 'alert protocol version' || fail "TLS 1.1 not refused by the server on $port: $out"
    echo "$out" | grep -q 'Cipher is (NONE)' || fail "TLS 1.1 accepted on $port: $out"
    for v in 1_2 1_3; do
        out=$(echo | timeout 10 openssl s_client -connect 127.0.0.1:$port -tls$v -CAfile ca.pem \
            -verify_return_error 2>&1 || true)
        echo "$out" | grep -q "New, TLSv${v/_/.}, Cipher is [A-Z]" || fail "no TLS ${v/_/.} on $port: $out"
        echo "$out" | grep -q 'Verify return code: 0 (ok)' || fail "TLS ${v/_/.} on $port: not verified: $out"
    done
done

# ---- the sluice CLI (libsluice): --tls-ca, $SLUICE_TLS_CA, the name, and no CA
S=("$sluice" --servers 127.0.0.1:$native)
timeout 20 "${S[@]}" --tls-ca "$dir/ca.pem" pub orders 'from the cli' | grep -q 'partition 0 offset 1' ||
    fail "sluice --tls-ca pub"
got=$(timeout 20 "${S[@]}" --tls-ca "$dir/ca.pem" sub orders --from earliest --count 2 | tr '\n' '|')
[ "$got" = 'hello over tls|from the cli|' ] || fail "sluice --tls-ca sub got '$got'"
got=$(SLUICE_TLS_CA="$dir/ca.pem" timeout 20 "$sluice" --servers localhost:$native sub orders --from 1 --count 1)
[ "$got" = 'from the cli' ] || fail "SLUICE_TLS_CA and localhost: got '$got'"
set +e
out=$(timeout 20 "${S[@]}" topic list 2>&1); rc=$?
[ $rc = 69 ] || fail "a plain client on the TLS port: exit $rc: $out"
out=$(timeout 20 "${S[@]}" --tls-ca "$dir/other.pem" topic list 2>&1); rc=$?
[ $rc = 69 ] && echo "$out" | grep -q 'TLS handshake failed' || fail "another CA: exit $rc: $out"
out=$(timeout 20 "${S[@]}" --tls-ca "$dir/nothing.pem" topic list 2>&1); rc=$?
[ $rc = 64 ] || fail "an unreadable CA file: exit $rc: $out"
set -e

# ---- SSE over https, kept open across a certificate reload
c -N --max-time 20 "$H/v1/topics/orders/events?from=earliest" >"$dir/sse" &
sse_pid=$!
for _ in $(seq 100); do grep -q '^data: from the cli' "$dir/sse" 2>/dev/null && break; sleep 0.1; done
grep -q '^data: hello over tls' "$dir/sse" && grep -q '^data: from the cli' "$dir/sse" ||
    fail "sse over https: $(cat "$dir/sse")"
serial() { echo | timeout 10 openssl s_client -connect 127.0.0.1:$1 -CAfile "$dir/ca.pem" 2>/dev/null |
    openssl x509 -noout -serial; }
[ "$(serial $http)" = serial=1001 ] || fail "serial before the reload: $(serial $http)"

# a bad file first: the reload fails, the old certificate stays
echo 'not a certificate' >node.pem
kill -HUP "$pid"
for _ in $(seq 50); do [ "$(grep -c 'TLS reload failed' "$dir/log")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c 'TLS reload failed' "$dir/log")" -ge 2 ] || fail "no reload error logged"
[ "$(serial $http)" = serial=1001 ] || fail "a failed reload changed the certificate"
kill -0 "$pid" || fail "the node died on SIGHUP"

cp node-2002.pem node.pem
kill -HUP "$pid"
for _ in $(seq 50); do [ "$(grep -c 'TLS certificate reloaded' "$dir/log")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c 'TLS certificate reloaded' "$dir/log")" -ge 2 ] || fail "no reload logged"
for port in $http $native; do
    [ "$(serial $port)" = serial=2002 ] || fail "new connections on $port see $(serial $port), wanted 2002"
done
out=$(c -X POST -H 'Content-Type: text/plain' --data-binary 'after the reload' "$H/v1/topics/orders/messages")
echo "$out" | grep -q '"offset":2' || fail "publish after the reload: $out"
for _ in $(seq 100); do grep -q '^data: after the reload' "$dir/sse" && break; sleep 0.1; done
grep -q '^data: after the reload' "$dir/sse" || fail "the stream opened before the reload missed: $(cat "$dir/sse")"
kill -0 "$sse_pid" || fail "the stream opened before the reload ended"
timeout 20 "${S[@]}" --tls-ca "$dir/ca.pem" sub orders --from 2 --count 1 | grep -qx 'after the reload' ||
    fail "the CLI after the reload"
echo "tls: ok"
