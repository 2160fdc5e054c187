#!/usr/bin/env bash
# Install what is missing, build, and start a three-node sluice cluster on
# loopback (clients on 127.0.0.1:7401-7403, HTTP/SSE on 8401-8403, peers on 7501-7503, one data dir
# per node under /tmp/sluice-quickstart or $SLUICE_QUICKSTART_DIR), wait until
# it has a leader, then print how to use it.
#   deploy/quickstart.sh          start, with TLS on every link and authentication on
#   deploy/quickstart.sh --plain  start with plain TCP and no authentication (local development;
#                                 also SLUICE_QUICKSTART_PLAIN=1)
#   deploy/quickstart.sh stop     stop the nodes it started
# TLS: on first start it makes a local CA and a certificate per node (deploy/certs.sh, for 127.0.0.1
# and localhost) in <dir>/tls, keeps them for later starts, and prints how clients trust the CA.
# The peer links between the nodes use the same certificates (mutual TLS).
# Auth: it makes an admin key (<dir>/auth/admin.key, `sluice key gen`) and a sealing key, runs the
# nodes with [auth] enabled, makes the token signing key (`sluice auth init`) and writes a token of
# the admin valid for a day to <dir>/auth/token, for curl and browsers.
# deploy/cluster.sh (status, kill NODE, restart NODE) operates the same cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export SLUICE_CLUSTER_DIR=${SLUICE_QUICKSTART_DIR:-/tmp/sluice-quickstart}
export SLUICE_BIN_DIR=$here/build
run=$SLUICE_CLUSTER_DIR
cluster=$here/deploy/cluster.sh
leader_wait_s=20

if [ "${1:-}" = "stop" ]; then
    exec "$cluster" stop
fi
plain=${SLUICE_QUICKSTART_PLAIN:-0}
[ "${1:-}" = "--plain" ] && plain=1
tls=$run/tls
ca=$tls/ca.pem

# A local CA (10 years) and one certificate per node (about 2 years), made once by
# deploy/certs.sh. A certificate of an earlier quickstart that does not name its node
# (URI:sluice:node:N, which the peer links check) is made again.
make_certs() {
    local n
    for n in 1 2 3; do
        [ -f "$tls/node$n.pem" ] || continue
        openssl x509 -in "$tls/node$n.pem" -noout -ext subjectAltName 2>/dev/null | grep -q "sluice:node:$n\b" ||
            rm -f "$tls/node$n.pem" "$tls/node$n.key"
    done
    bash "$here/deploy/certs.sh" "$tls" 1 2 3
}

# The admin's key and the key that seals secrets at rest, made once.
make_auth() {
    mkdir -p "$run/auth"
    chmod 700 "$run/auth"
    [ -f "$run/auth/admin.key" ] && [ -f "$run/auth/admin.pub" ] ||
        "$here/build/sluice" key gen "$run/auth/admin.key" >"$run/auth/admin.pub"
    [ -f "$run/auth/seal.key" ] || { head -c 32 /dev/urandom >"$run/auth/seal.key"; chmod 600 "$run/auth/seal.key"; }
}

bash "$here/deploy/install-deps.sh"
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j"$(nproc)" --target sluiced sluice

mkdir -p "$run"
if [ "$plain" = 1 ]; then
    touch "$run/plain"
else
    rm -f "$run/plain"
    make_certs
    make_auth
    export SLUICE_TLS_CA=$ca SLUICE_KEY=$run/auth/admin.key
fi
"$cluster" start
servers=$("$cluster" servers)
leader=""
for _ in $(seq $((leader_wait_s * 5))); do
    leader=$("$here/build/sluice" -s "$servers" --json cluster status 2>/dev/null |
        sed -n 's/^{"leader":\([0-9][0-9]*\),.*/\1/p' || true)
    [ -n "$leader" ] && break
    sleep 0.2
done
if [ -z "$leader" ]; then
    echo "the cluster elected no leader within ${leader_wait_s}s; node logs are in $run" >&2
    "$cluster" status >&2 || true
    exit 1
fi
"$cluster" status
if [ "$plain" = 0 ]; then
    # the token signing key, once per cluster (a later start finds it made), and a day's admin token
    end=$((SECONDS + 20))
    until out=$("$here/build/sluice" -s "$servers" auth init 2>&1) || [[ $out == *"made once"* ]]; do
        [ $SECONDS -lt $end ] || { echo "sluice auth init: $out" >&2; exit 1; }
        sleep 0.3
    done
    "$here/build/sluice" -s "$servers" token issue --principal admin --ttl 24h >"$run/auth/token"
fi
bin=$here/build
cl=$cluster
[ "$run" = /tmp/sluice-quickstart ] || cl="SLUICE_CLUSTER_DIR=$run $cluster"
if [ "$plain" = 1 ]; then
    http=http ws=ws curl=curl ca_export="" token_q="" tls_msg="
Plain TCP (--plain), no authentication: for local development only. Without --plain the quickstart
runs with TLS and authentication."
else
    http=https ws=wss curl="curl --cacert \$CA -H \"Authorization: Bearer \$TOKEN\"" token_q="?access_token=\$TOKEN"
    ca_export="
  export SLUICE_TLS_CA=$ca    # trust the local CA (or: sluice --tls-ca FILE ...)
  export SLUICE_KEY=$run/auth/admin.key    # act as the admin (or: sluice --key FILE ...)
  CA=$ca TOKEN=\$(cat $run/auth/token)    # for curl and browsers: the admin's token, a day long"
    tls_msg="
TLS: every client listener (native, HTTP, SSE, WebSocket) and the peer links between the nodes
(mutual TLS) speak TLS 1.2+ with a certificate of a local CA made for this cluster (for 127.0.0.1
and localhost): $ca
  sluice:   export SLUICE_TLS_CA=$ca   or   sluice --tls-ca $ca ...
  curl:     curl --cacert $ca https://127.0.0.1:8401/healthz
  openssl:  openssl s_client -connect 127.0.0.1:7401 -CAfile $ca
  Node:     new WebSocket(url, { ca: fs.readFileSync('$ca') })   or   NODE_EXTRA_CA_CERTS=$ca
  browsers: trust $ca as an authority (Chromium: Settings, Privacy and security, Security,
            Manage certificates, Authorities, Import; or certutil -d sql:\$HOME/.pki/nssdb -A -t C,, -n sluice -i $ca)
  A renewed certificate (same file names) is taken without dropping connections: $cl reload N
  Plain TCP instead: $here/deploy/quickstart.sh stop; $here/deploy/quickstart.sh --plain

Auth: every request needs a principal allowed to do it (docs/security.md). The admin's key is
$run/auth/admin.key; give services their own keys and permissions, browsers short tokens:
  sluice key gen billing.key && sluice principal add billing --pubkey \$(sluice key show billing.key) --allow 'pub:orders'
  sluice principal add anonymous --allow 'sub:public.*'      # what needs no identity
  sluice token issue --principal billing --ttl 1h --allow 'sub:orders'
  sluice audit                                                # who changed what"
fi
cat <<MSG

sluice is running: three nodes, node $leader leads. Configs, data, logs and pid files are in $run

  export PATH=$bin:\$PATH
  export SLUICE_SERVER=$servers    # every command can fail over to any node$ca_export
  sluice topic create orders --partitions 3

  # publish through node 1 (the first of the list; the others are for failover)
  sluice -s 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 pub orders 'hello, world'
  seq 1 100000 | sluice -s 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 pub orders
  # read it back from node 3
  sluice -s 127.0.0.1:7403,127.0.0.1:7401,127.0.0.1:7402 sub orders --from earliest --count 10

  sluice sub orders --group billing          # a consumer group: resumes where it left off
  sluice cluster status                      # role, term, log index and lag of every node
  sluice cluster transfer-leader --to 2      # move leadership (before maintenance on the leader)

Over HTTP (any node: 127.0.0.1:8401, 8402, 8403; docs/http.md):
  $curl -X POST -H 'Content-Type: text/plain' --data-binary 'hello' $http://127.0.0.1:8401/v1/topics/orders/messages
  $curl -N '$http://127.0.0.1:8402/v1/topics/orders/events?from=earliest'     # Server-Sent Events
  open $http://127.0.0.1:8401/$token_q in a browser: the console (live tail over SSE or WebSocket, publish)
  WebSocket: $ws://127.0.0.1:8401/v1/ws (docs/websocket.md), client module $http://127.0.0.1:8401/v1/sluice.js
  GraphQL:   $http://127.0.0.1:8401/v1/graphql (POST queries, subscriptions over WebSocket; docs/graphql.md)
$tls_msg

Fail a node and watch the cluster carry on:
  $cl kill $leader       # kill -9 the leader; another node leads within about 2 s
  $cl restart $leader    # it comes back as a follower and catches up
  $cl status

Stop it with: ${SLUICE_QUICKSTART_DIR:+SLUICE_QUICKSTART_DIR=$run }$here/deploy/quickstart.sh stop
MSG
