#!/usr/bin/env bash
# A three-node cluster with TLS on every client listener and on the peer
# links (mutual TLS, node certificates from deploy/certs.sh) and [auth]
# enabled (docs/security.md), through a kill -9 of its leader: a principal allowed to
# publish and read one topic publishes over HTTPS with a bearer token, each
# message with its own Idempotency-Key and retried until acknowledged (as a
# client must after 503), through a follower, while the leader is killed;
# then every acknowledged message is read back exactly once, in offset order,
# from a survivor, over HTTPS with the token. The principals and the token
# signing key, being log entries, are on the new leader too: the token still
# verifies there, a key made before the kill still authenticates, and a
# principal added after it works. Last, an impostor takes the dead node's id
# and addresses with a certificate from another CA: the survivors refuse its
# links (TLS), it never learns of a leader, and the cluster goes on.
# Usage: secure_cluster.sh PATH/TO/sluiced PATH/TO/sluice
# Loopback only (free ports), stops what it starts by pid, bounds every wait.
set -euo pipefail
sluiced=$1
sluice=$2
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/sluice-seccluster-XXXXXX)
pids=(0 0 0 0)
cleanup() {
    for p in "${pids[@]}"; do [ "$p" = 0 ] || { kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }; done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for i in 1 2 3 4; do echo "--- node $i" >&2; tail -15 "$dir/node$i.log" >&2 || true; done; exit 1; }
cd "$dir"

SLUICE_CERT_DAYS=2 bash "$here/deploy/certs.sh" tls 1 2 3
SLUICE_CERT_DAYS=2 bash "$here/deploy/certs.sh" other 1 2 3 # another cluster's CA: the impostor's
cp tls/ca.pem ca.pem
"$sluice" key gen admin.key >admin.pub
"$sluice" key gen writer.key >writer.pub
head -c 32 /dev/urandom >seal.key && chmod 600 seal.key

read -r n1 n2 n3 h1 h2 h3 r1 r2 r3 < <(python3 -c 'import socket; s=[socket.socket() for _ in range(9)]; [x.bind(("127.0.0.1",0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
nat=($n1 $n2 $n3)
http=($h1 $h2 $h3)
peers="1=127.0.0.1:$r1,2=127.0.0.1:$r2,3=127.0.0.1:$r3"
start() { # index 0..2 [CA dir [slot]]: node i+1 with its certificate from that CA (tls)
    local i=$1 ca=${2:-tls} slot=${3:-$1}
    "$sluiced" --node-id $((i + 1)) --data-dir "$dir/d$((slot + 1))" --listen 127.0.0.1:${nat[$i]} \
        --http 127.0.0.1:${http[$i]} --peers "$peers" --frontends 1 --election-timeout-ms 500 --heartbeat-ms 50 \
        --tls-cert $ca/node$((i + 1)).pem --tls-key $ca/node$((i + 1)).key --tls-ca $ca/ca.pem \
        --auth true --auth-admin-key "$(cat admin.pub)" --auth-key-file "$dir/seal.key" \
        >>"$dir/node$((slot + 1)).log" 2>&1 &
    pids[$slot]=$!
}
for i in 0 1 2; do start $i; done
url() { echo "https://127.0.0.1:${http[$1]}"; }
for i in 0 1 2; do
    end=$((SECONDS + 30))
    until [ "$(curl -s --cacert ca.pem -o /dev/null -w '%{http_code}' "$(url $i)/readyz")" = 200 ]; do
        [ $SECONDS -lt $end ] || fail "node $((i + 1)) not ready"
        sleep 0.1
    done
done
A() { timeout 30 "$sluice" -s "127.0.0.1:$n1,127.0.0.1:$n2,127.0.0.1:$n3" --tls-ca ca.pem --key admin.key "$@"; }
leader() { # the index of the leader, as node $1 sees it (over HTTPS, with the token)
    curl -s -m 5 --cacert ca.pem -H "Authorization: Bearer $token" "$(url $1)/v1/cluster" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"] - 1)'
}
end=$((SECONDS + 30))
until A auth init >/dev/null 2>&1 || A auth init 2>&1 | grep -q "made once"; do
    [ $SECONDS -lt $end ] || fail "auth init"
    sleep 0.2
done
A topic create jobs --partitions 2 >/dev/null
A principal add writer --pubkey "$(cat writer.pub)" --allow 'pub:jobs' --allow 'sub:jobs' >/dev/null
token=$(A token issue --principal writer --ttl 10m)
L=$(leader 0)
F=$(( (L + 1) % 3 ))
echo "leader node $((L + 1)); publishing through node $((F + 1))"

# publish N messages through the follower; kill -9 the leader after a third
N=120
publish() { # i: retried (bounded) until 201, with the same Idempotency-Key
    local i=$1 end=$((SECONDS + 60)) code
    while :; do
        code=$(curl -s -m 10 --cacert ca.pem -o "$dir/ack" -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $token" -H "Idempotency-Key: job-$i" -d "job $i" \
            "$(url $F)/v1/topics/jobs/messages" || true)
        [ "$code" = 201 ] && return 0
        case "$code" in 503|000) ;; *) fail "publish $i answered $code: $(cat "$dir/ack")" ;; esac
        [ $SECONDS -lt $end ] || fail "publish $i never acknowledged"
        sleep 0.2
    done
}
for i in $(seq 1 $N); do
    publish "$i"
    if [ "$i" = $((N / 3)) ]; then
        kill -9 "${pids[$L]}"
        wait "${pids[$L]}" 2>/dev/null || true
        pids[$L]=0
        echo "killed node $((L + 1)) after $i acknowledged"
    fi
done

# every message exactly once, per partition in offset order, read from the survivor over HTTPS
python3 - "$(url $F)" "$token" "$dir/ca.pem" "$N" <<'PY' || fail "read back"
import json, ssl, sys, urllib.request
base, token, ca, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
got = []
for p in (0, 1):
    off = 0
    while True:
        req = urllib.request.Request(f"{base}/v1/topics/jobs/messages?partition={p}&from={off}&max=1000",
                                     headers={"Authorization": "Bearer " + token})
        d = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))
        offs = [m["offset"] for m in d["messages"]]
        assert offs == list(range(off, off + len(offs))), (p, offs)
        got += [m["payload"] for m in d["messages"]]
        if not d["messages"] or d["next_offset"] >= d["end_offset"]:
            break
        off = d["next_offset"]
want = sorted(f"job {i}" for i in range(1, n + 1))
assert sorted(got) == want, (len(got), sorted(set(want) - set(got))[:5], len(got) - len(set(got)))
print(f"read back {len(got)} messages, each once")
PY

# the security state is the new leader's too
NL=$(leader "$F")
[ "$NL" != "$L" ] || fail "no new leader"
code=$(curl -s -m 10 --cacert ca.pem -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
    -d after "$(url $NL)/v1/topics/jobs/messages")
[ "$code" = 201 ] || fail "the token on the new leader: $code"
timeout 30 "$sluice" -s "127.0.0.1:${nat[$NL]}" --tls-ca ca.pem --key writer.key pub jobs by-key >/dev/null ||
    fail "a key made before the kill"
A principal add late --allow 'sub:jobs' >/dev/null
late=$(A token issue --principal late --ttl 1m)
code=$(curl -s -m 10 --cacert ca.pem -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $late" \
    -d nope "$(url $NL)/v1/topics/jobs/messages")
[ "$code" = 403 ] || fail "a principal added after the kill may not publish: $code"

# the peer links are TLS: a node was refused nothing so far
grep -q "(TLS, certificate checked)" "$dir/node$((F + 1)).log" || fail "peer links without TLS"
# SIGHUP: the survivor's logwriter takes the certificate files again for new peer links
kill -HUP "${pids[$F]}"
end=$((SECONDS + 10))
until grep -q "SIGHUP: peer links reloaded their TLS certificate" "$dir/node$((F + 1)).log"; do
    [ $SECONDS -lt $end ] || fail "no peer-link reload after SIGHUP"
    sleep 0.2
done
# an impostor with another CA's certificate for the dead node's id and addresses
before=$(grep -c "refused: TLS" "$dir/node$((F + 1)).log" || true)
start "$L" other 3
end=$((SECONDS + 20))
until [ "$(grep -c "refused: TLS" "$dir/node$((F + 1)).log" || true)" -gt "$before" ]; do
    [ $SECONDS -lt $end ] || fail "the impostor's links were not refused"
    sleep 0.2
done
sleep 2
grep -q "incoming link up" "$dir/node4.log" && fail "a survivor's link reached the impostor"
code=$(curl -s -m 5 --cacert other/ca.pem -o /dev/null -w '%{http_code}' "https://127.0.0.1:${http[$L]}/readyz" || true)
[ "$code" = 503 ] || fail "the impostor knows a leader: /readyz $code"
code=$(curl -s -m 10 --cacert ca.pem -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
    -d "after the impostor" "$(url $F)/v1/topics/jobs/messages")
[ "$code" = 201 ] || fail "publish beside the impostor: $code"
echo "secure cluster: ok"
