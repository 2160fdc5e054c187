#!/usr/bin/env bash
# Limits against abuse ([limits], docs/security.md#limits) on single nodes
# with one frontend each (the limits are per frontend):
#   - requests per second per principal: alice floods over HTTP and gets 429
#     TOO_MANY with Retry-After once over the rate, while bob, publishing at a
#     modest rate at the same time, gets every publish acknowledged with his
#     p99 latency within bounds (limits_flood.py); over the native protocol a
#     burst of CLI publishes by alice gets TOO_MANY naming the rate
#   - bytes per second, keyed by source address with [auth] off: a large
#     publish passes, the next is refused with 429 and Retry-After, and passes
#     after waiting that long
#   - subscriptions per connection and connections per source address
#     (limits_conns.py, raw sockets)
# Usage: limits.sh PATH/TO/sluiced PATH/TO/sluice
# Loopback only (free ports), stops what it starts by pid, bounds every wait.
set -euo pipefail
sluiced=$1
sluice=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/lib.sh" limits
read -r n1 h1 n2 h2 n3 h3 < <(free_ports 6)

cd "$dir"
"$sluice" key gen admin.key >admin.pub
"$sluice" key gen alice.key >alice.pub
"$sluice" key gen bob.key >bob.pub
head -c 32 /dev/urandom >seal.key && chmod 600 seal.key
start_node() { # NATIVE HTTP DATA [flags...]
    local n=$1 h=$2 d=$3
    shift 3
    "$sluiced" --data-dir "$dir/$d" --listen 127.0.0.1:$n --http 127.0.0.1:$h --frontends 1 "$@" >>"$dir/log" 2>&1 &
    pids+=($!)
    local end=$((SECONDS + 20))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$h/readyz")" = 200 ]; do
        [ $SECONDS -lt $end ] || fail "node on $n not ready"
        sleep 0.1
    done
}
AUTH=(--auth true --auth-admin-key "$(cat admin.pub)" --auth-key-file "$dir/seal.key")
RATE=20

echo "-- requests per second per principal ($RATE/s)"
start_node "$n1" "$h1" d1 "${AUTH[@]}" --principal-requests-per-s $RATE
S() { timeout 30 "$sluice" -s 127.0.0.1:$n1 "$@"; }
S --key admin.key auth init >/dev/null
S --key admin.key topic create flood >/dev/null
S --key admin.key principal add alice --pubkey "$(cat alice.pub)" --allow 'pub:flood' >/dev/null
S --key admin.key principal add bob --pubkey "$(cat bob.pub)" --allow 'pub:flood' >/dev/null
TA=$(S --key admin.key token issue --principal alice --ttl 1h)
TB=$(S --key admin.key token issue --principal bob --ttl 1h)
timeout 60 python3 "$here/limits_flood.py" "$h1" "$TA" "$TB" $RATE || fail "flood over HTTP"
# native: 3x the rate of CLI publishes at once, after the bucket refilled
sleep 1.2
cli=()
for i in $(seq $((3 * RATE))); do
    S --key alice.key pub flood "n$i" >"$dir/pub.$i.out" 2>"$dir/pub.$i.err" &
    cli+=($!)
done
for p in "${cli[@]}"; do wait "$p" || true; done # each is bounded by S's timeout
refused=$(cat "$dir"/pub.*.err | grep -c "principal alice over its requests per second ($RATE/s); retry after [0-9]* ms" || true)
acked=$(cat "$dir"/pub.*.out | grep -c . || true)
echo "native: $acked acknowledged, $refused refused"
[ "$refused" -ge 1 ] || fail "no native publish refused: $(cat "$dir"/pub.*.err | sort | uniq -c | head)"
[ $((acked + refused)) = $((3 * RATE)) ] || fail "every publish is answered: $acked + $refused, $(cat "$dir"/pub.*.err | sort | uniq -c | head)"
# bob was not touched by alice's bucket
S --key bob.key pub flood bob-after >/dev/null || fail "bob refused after alice's flood"

echo "-- bytes per second, keyed by address with [auth] off"
start_node "$n2" "$h2" d2 --principal-bytes-per-s 64k
H2=http://127.0.0.1:$h2
curl -s -m 10 -X PUT "$H2/v1/topics/big" >/dev/null
head -c 40000 /dev/zero | tr '\0' x >big.txt
st=$(curl -s -m 10 -o body -w '%{http_code}' -X POST --data-binary @big.txt "$H2/v1/topics/big/messages")
[ "$st" = 201 ] || fail "first large publish: $st $(cat body)"
st=$(curl -s -m 10 -D hdrs -o body -w '%{http_code}' -X POST --data-binary @big.txt "$H2/v1/topics/big/messages")
[ "$st" = 429 ] || fail "second large publish within the second: $st $(cat body)"
grep -q '"code":"TOO_MANY"' body || fail "429 body: $(cat body)"
grep -q 'address 127.0.0.1 over its bytes per second (65536/s); retry after [0-9]* ms' body || fail "429 detail: $(cat body)"
ra=$(tr -d '\r' <hdrs | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
[ -n "$ra" ] && [ "$ra" -ge 1 ] || fail "Retry-After: '$ra'"
sleep "$ra"
st=$(curl -s -m 10 -o body -w '%{http_code}' -X POST --data-binary @big.txt "$H2/v1/topics/big/messages")
[ "$st" = 201 ] || fail "large publish after Retry-After ($ra s): $st $(cat body)"
echo "bytes: 40000-byte publishes at 64k/s: second refused with Retry-After $ra, passes after it"

echo "-- subscriptions per connection, connections per address"
start_node "$n3" "$h3" d3 "${AUTH[@]}" --connections-per-address-max 3 --subscriptions-max 2
S3() { timeout 30 "$sluice" -s 127.0.0.1:$n3 "$@"; }
S3 --key admin.key auth init >/dev/null
S3 --key admin.key topic create subs.t >/dev/null
S3 --key admin.key principal add carol --allow 'sub:subs.*' --allow 'pub:subs.*' >/dev/null
TC=$(S3 --key admin.key token issue --principal carol --ttl 1h)
timeout 60 python3 "$here/limits_conns.py" "$n3" "$h3" "$TC" 3 2 || fail "connections and subscriptions"
echo "PASS"
