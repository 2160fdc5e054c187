#!/usr/bin/env bash
# Authentication and permissions ([auth] enabled, docs/security.md) on one
# node, with the sluice CLI (keys), curl (tokens over HTTP: header, query,
# cookie, SSE) and npm ws (a token on the WebSocket upgrade):
#   - no identity, an unknown key, a bad signature path: UNAUTHENTICATED (exit 77, 401)
#   - each verb allowed and denied per topic pattern, the refusal naming what is missing
#   - a change to a principal applies to its next request; anonymous for a public feed
#   - tokens: issued, expired, tampered, narrowed, of a removed principal, from another cluster
#   - /metrics needs cluster; /healthz needs nothing; the audit trail names who did what
#   - webhooks still deliver (the node's own principal), signed with secrets sealed at rest
# Usage: auth.sh PATH/TO/sluiced PATH/TO/sluice
# Loopback only (free ports), stops what it starts by pid, bounds every wait.
set -euo pipefail
sluiced=$1
sluice=$2
here=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/lib.sh" auth
read -r native http native2 http2 rport < <(free_ports 5)

cd "$dir"
"$sluice" key gen admin.key >admin.pub
"$sluice" key gen alice.key >alice.pub
"$sluice" key gen mallory.key >mallory.pub
[ "$(stat -c %a admin.key)" = 600 ] || fail "a secret key file is not 0600"
[ "$("$sluice" key show admin.key)" = "$(cat admin.pub)" ] || fail "key show"
"$sluice" key gen admin.key >/dev/null 2>&1 && fail "key gen overwrote a key"
head -c 32 /dev/urandom >seal.key && chmod 600 seal.key
start_node() { # NATIVE HTTP DATA
    "$sluiced" --data-dir "$dir/$3" --listen 127.0.0.1:$1 --http 127.0.0.1:$2 --auth true \
        --auth-admin-key "$(cat admin.pub)" --auth-key-file "$dir/seal.key" --webhook-allow-private true \
        >>"$dir/log" 2>&1 &
    pids+=($!)
    local end=$((SECONDS + 20))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/readyz")" = 200 ]; do
        [ $SECONDS -lt $end ] || fail "node on $1 not ready"
        sleep 0.1
    done
}
start_node "$native" "$http" data
S() { timeout 30 "$sluice" -s 127.0.0.1:$native "$@"; }
H=http://127.0.0.1:$http
# expect EXIT_CODE STDERR_PATTERN COMMAND...
expect() {
    local code=$1 pat=$2 rc=0
    shift 2
    "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    [ "$rc" = "$code" ] || fail "$* exited $rc (want $code): $(cat "$dir/err")"
    [ -z "$pat" ] || grep -q -- "$pat" "$dir/err" || fail "$*: stderr '$(cat "$dir/err")' lacks '$pat'"
}
# status METHOD URL [curl args...]: the HTTP status; the body in $dir/body
status() { local m=$1 u=$2; shift 2; curl -s -m 10 -o "$dir/body" -w '%{http_code}' -X "$m" "$@" "$u"; }

echo "-- identities over the native protocol"
expect 77 "authenticate first" S topic list
expect 77 "no principal has this key" S --key mallory.key topic list
S --key admin.key topic create orders.eu --partitions 1 >/dev/null
S --key admin.key topic create orders.us >/dev/null
S --key admin.key topic create public.feed >/dev/null
expect 65 "built in" S --key admin.key principal add admin --allow 'sub:x'
expect 65 "built in" S --key admin.key principal add - --allow 'sub:x'
expect 65 "" S --key admin.key principal remove nobody      # refused, and the node goes on
expect 65 "" S --key admin.key principal revoke nobody --allow 'sub:x'
expect 64 "unknown verb" S --key admin.key principal add alice --allow 'read:x'
S --key admin.key principal add alice --pubkey "$(cat alice.pub)" --allow 'pub:orders.*' --allow 'sub:orders.eu' >/dev/null
expect 65 "" S --key admin.key principal add bob --pubkey "$(cat alice.pub)"   # one key, one principal
S --key admin.key principal list | grep -q "allow publish:orders.\*" || fail "list shows canonical permissions"

echo "-- permissions per verb and topic"
S --key alice.key pub orders.eu one >/dev/null
S --key alice.key pub orders.us two >/dev/null
expect 77 "principal alice lacks publish on public.feed" S --key alice.key pub public.feed x
[ "$(S --key alice.key sub orders.eu --from earliest --count 1)" = one ] || fail "alice reads orders.eu"
expect 77 "lacks subscribe on orders.us" S --key alice.key sub orders.us --from earliest --count 1
expect 77 "lacks admin on orders.new" S --key alice.key topic create orders.new
expect 77 "lacks cluster on cluster" S --key alice.key principal list
S --key alice.key topic list | grep -q orders.eu || fail "an identity may list topics"
S --key admin.key consumer create billing --topic orders.eu --from earliest >/dev/null
expect 77 "lacks consume on orders.eu" S --key alice.key consumer pull billing --count 1
S --key admin.key principal add alice --allow 'consume:orders.eu' >/dev/null
S --key alice.key consumer pull billing --count 1 | grep -q one || fail "consume allowed after the grant"
S --key admin.key principal revoke alice --allow 'pub:orders.*' >/dev/null
expect 77 "lacks publish on orders.eu" S --key alice.key pub orders.eu three

echo "-- anonymous: a public feed for clients without an identity"
[ "$(status GET "$H/v1/topics/public.feed/messages?from=earliest")" = 401 ] || fail "anonymous before it exists"
grep -q '"code":"UNAUTHENTICATED"' "$dir/body" || fail "401 body: $(cat "$dir/body")"
S --key admin.key principal add anonymous --allow 'sub:public.*' >/dev/null
S --key admin.key pub public.feed hello >/dev/null
[ "$(status GET "$H/v1/topics/public.feed/messages?from=earliest")" = 200 ] || fail "anonymous read: $(cat "$dir/body")"
grep -q '"payload":"hello"' "$dir/body" || fail "public feed payload"
[ "$(status GET "$H/v1/topics/orders.eu/messages?from=earliest")" = 403 ] || fail "anonymous on orders"
grep -q 'principal anonymous lacks subscribe on orders.eu' "$dir/body" || fail "403 detail: $(cat "$dir/body")"
timeout 5 curl -sN "$H/v1/topics/public.feed/events?from=earliest" >"$dir/sse" || true
grep -q '^data: hello' "$dir/sse" || fail "anonymous SSE: $(cat "$dir/sse")"
[ "$(status GET "$H/healthz")" = 200 ] || fail "healthz is open"
[ "$(status GET "$H/metrics")" = 403 ] || fail "metrics need cluster"

echo "-- tokens over HTTP"
[ "$(status GET "$H/v1/topics" -H 'Authorization: Bearer v4.public.eyJ4Ijp9')" = 401 ] || fail "a token before auth init"
grep -q 'auth init' "$dir/body" || fail "no signing key yet: $(cat "$dir/body")"
S --key admin.key auth init >/dev/null
expect 65 "" S --key admin.key auth init   # once
S --key admin.key principal add alice --allow 'pub:orders.*' >/dev/null
T=$(S --key admin.key token issue --principal alice --ttl 1h)
[[ $T == v4.public.* ]] || fail "token: $T"
[ "$(status POST "$H/v1/topics/orders.eu/messages" -H "Authorization: Bearer $T" -d four)" = 201 ] || fail "bearer publish: $(cat "$dir/body")"
[ "$(status GET "$H/v1/topics/orders.eu/messages?from=earliest&access_token=$T")" = 200 ] || fail "access_token: $(cat "$dir/body")"
grep -q '"payload":"four"' "$dir/body" || fail "access_token read"
[ "$(status GET "$H/v1/topics/orders.eu/messages?from=earliest" -H "Cookie: theme=dark; sluice_token=$T")" = 200 ] || fail "cookie"
[ "$(status GET "$H/v1/topics/orders.us/messages?from=earliest" -H "Authorization: Bearer $T")" = 403 ] || fail "token: alice's permissions"
timeout 5 curl -sN "$H/v1/topics/orders.eu/events?from=earliest&access_token=$T" >"$dir/sse" || true
grep -q '^data: four' "$dir/sse" || fail "SSE with access_token: $(cat "$dir/sse")"
# tampered: one character of the signature changed
last=${T: -1}; [ "$last" = A ] && repl=B || repl=A
[ "$(status GET "$H/v1/topics" -H "Authorization: Bearer ${T%?}$repl")" = 401 ] || fail "tampered token"
grep -q 'token refused' "$dir/body" || fail "tampered detail: $(cat "$dir/body")"
# expired
T1=$(S --key admin.key token issue --principal alice --ttl 1)
sleep 2.2
[ "$(status GET "$H/v1/topics" -H "Authorization: Bearer $T1")" = 401 ] || fail "expired token"
grep -q 'expired' "$dir/body" || fail "expired detail: $(cat "$dir/body")"
# narrowed: only what both the principal and the token allow
TN=$(S --key admin.key token issue --principal alice --ttl 1h --allow 'sub:orders.eu')
[ "$(status POST "$H/v1/topics/orders.eu/messages" -H "Authorization: Bearer $TN" -d five)" = 403 ] || fail "narrowed token publishes"
grep -q 'narrowed by its token' "$dir/body" || fail "narrowed detail: $(cat "$dir/body")"
[ "$(status GET "$H/v1/topics/orders.eu/messages?from=earliest" -H "Authorization: Bearer $TN")" = 200 ] || fail "narrowed read"
# a native client with a token
S --token "$T" pub orders.us six >/dev/null
# WebSocket: the token on the upgrade request
cat >"$dir/ws.mjs" <<'JS'
import WebSocket from 'ws';
const [url, expect] = process.argv.slice(2);
const ws = new WebSocket(url, 'sluice.v1.json');
const t = setTimeout(() => { console.error('timeout'); process.exit(1); }, 10000);
ws.on('open', () => ws.send(JSON.stringify({ op: 'publish', id: 1, topic: 'orders.eu', payload: 'ws' })));
ws.on('message', (d) => {
  const m = JSON.parse(d.toString());
  if (m.id !== 1) return;
  clearTimeout(t);
  const got = m.op === 'ack' ? 'ack' : m.code;
  if (got !== expect) { console.error(`got ${JSON.stringify(m)}`); process.exit(1); }
  process.exit(0);
});
ws.on('error', (e) => { console.error(e.message); process.exit(1); });
JS
cp "$dir/ws.mjs" "$here/node/.auth_ws_$$.mjs"
trap 'rm -f "$here/node/.auth_ws_$$.mjs"; cleanup' EXIT
(cd "$here/node" && timeout 20 node ".auth_ws_$$.mjs" "ws://127.0.0.1:$http/v1/ws?access_token=$T" ack) || fail "ws with a token"
(cd "$here/node" && timeout 20 node ".auth_ws_$$.mjs" "ws://127.0.0.1:$http/v1/ws" PERMISSION_DENIED) || fail "ws as anonymous"
# a principal removed: its tokens and keys stop working
S --key admin.key principal add carol --allow 'sub:orders.eu' >/dev/null
TC=$(S --key admin.key token issue --principal carol --ttl 1h)
[ "$(status GET "$H/v1/topics/orders.eu/messages?from=earliest" -H "Authorization: Bearer $TC")" = 200 ] || fail "carol"
S --key admin.key principal remove carol >/dev/null
[ "$(status GET "$H/v1/topics/orders.eu/messages?from=earliest" -H "Authorization: Bearer $TC")" = 401 ] || fail "removed principal's token"
grep -q 'no longer exists' "$dir/body" || fail "removed detail: $(cat "$dir/body")"
# a token of another cluster (its own signing key) does not verify here
start_node "$native2" "$http2" data2
timeout 30 "$sluice" -s 127.0.0.1:$native2 --key admin.key auth init >/dev/null
T2=$(timeout 30 "$sluice" -s 127.0.0.1:$native2 --key admin.key token issue --principal alice --ttl 1h)
[ "$(status GET "$H/v1/topics" -H "Authorization: Bearer $T2")" = 401 ] || fail "another cluster's token"
TA=$(S --key admin.key token issue --principal admin --ttl 60)
[ "$(status GET "$H/metrics" -H "Authorization: Bearer $TA")" = 200 ] || fail "metrics with cluster"

echo "-- webhooks deliver with auth on (the node's own principal)"
# the receiver marks each request with whether its signature verifies with the secret we chose
secret=whsec_$(head -c 32 /dev/urandom | base64 -w0)
python3 -c '
import base64, hashlib, hmac, http.server, sys
key = base64.b64decode(sys.argv[3].removeprefix("whsec_"))
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        h = self.headers
        mac = hmac.new(key, (h["webhook-id"] + "." + h["webhook-timestamp"] + ".").encode() + body, hashlib.sha256).digest()
        ok = any(s == "v1," + base64.b64encode(mac).decode() for s in self.headers["webhook-signature"].split(" "))
        open(sys.argv[2], "ab").write((b"valid " if ok else b"INVALID ") + body + b"\n")
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$rport" "$dir/hooks" "$secret" &
pids+=($!)
S --key admin.key webhook create orders.eu "http://127.0.0.1:$rport/h" --from earliest --name hook --secret "$secret" >/dev/null
for _ in $(seq 100); do grep -q '"data":"four"' "$dir/hooks" 2>/dev/null && break; sleep 0.2; done
grep -q '^valid .*"data":"four"' "$dir/hooks" || fail "webhook delivery with auth on, signed: $(cat "$dir/hooks" 2>/dev/null)"
# secrets at rest: sealed with [auth] key_file, so the store never holds the secret itself
S --key admin.key webhook rotate-secret hook --secret "$secret" >/dev/null   # a rotation is sealed too
sleep 0.5
! grep -qaF "${secret#whsec_}" "$dir/data/data.mdb" || fail "a webhook secret is stored in clear"
grep -qa 'sealed:v1:' "$dir/data/data.mdb" || fail "no sealed secret in the store"

echo "-- audit"
S --key admin.key --json audit >"$dir/audit"
python3 - "$dir/audit" <<'PY' || fail "audit: $(cat "$dir/audit")"
import json, sys
e = json.load(open(sys.argv[1]))["entries"]
acts = [(x["principal"], x["action"], json.loads(x["detail"]).get("name")) for x in e]
assert acts[0] == ("admin", "topic.create", "orders.eu"), acts
assert [a for a in acts if a[1].startswith("principal.")][0] == ("admin", "principal.put", "alice"), acts
assert ("admin", "consumer.create", "billing") in acts and ("admin", "webhook.update", "hook") in acts, acts
assert ("admin", "principal.revoke", "alice") in acts, acts
assert ("admin", "auth.init", None) in acts, acts
assert ("admin", "principal.remove", "carol") in acts, acts
assert all("sealed" not in x["detail"] for x in e), "the sealed key is not in the audit"
assert all("whsec_" not in x["detail"] for x in e), "no webhook secret in the audit"
assert [x["seq"] for x in e] == list(range(1, len(e) + 1)), "sequences"
PY
S --key admin.key audit --after 2 --max 1 | grep -c . | grep -qx 1 || fail "audit --after --max"
echo "auth: ok"
