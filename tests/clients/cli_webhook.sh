#!/usr/bin/env bash
# `sluice webhook ...` against one sluiced and a receiver (python3's
# http.server) that checks every Standard Webhooks signature with hmac:
# create (the secret it prints signs), a filter and an extra header, a
# failing message retried then dead-lettered, list and describe, pause and
# resume, rotate-secret (two signatures, both valid), replay, and the refusals
# for a bad URL and a consumer that is not a webhook.
# Usage: cli_webhook.sh PATH/TO/sluiced PATH/TO/sluice
# Loopback only (free ports), stops what it starts by pid, bounds every wait.
set -euo pipefail
sluiced=$1
sluice=$2
dir=$(mktemp -d /tmp/sluice-clihook-XXXXXX)
pid=""
rpid=""
cleanup() {
    for p in $pid $rpid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$dir/log" >&2 || true; tail -20 "$dir/recv.log" >&2 || true; exit 1; }
free_ports() { python3 -c 'import socket; s=[socket.socket() for _ in range(3)]; [x.bind(("127.0.0.1",0)) for x in s]; print(*[x.getsockname()[1] for x in s])'; }
read -r native http rport < <(free_ports)

# the receiver: one JSON line per request (signatures checked against the secrets in $dir/secrets)
cat >"$dir/recv.py" <<'PY'
import base64, hashlib, hmac, http.server, json, sys
port, out, secrets_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def valid(secret, h, body):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body, hashlib.sha256).digest()
    want = base64.b64encode(mac).decode()
    return any(s.startswith("v1,") and hmac.compare_digest(s[3:], want) for s in h["webhook-signature"].split(" "))
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        secrets = open(secrets_path).read().split()
        rec = {"id": self.headers["webhook-id"], "attempt": int(self.headers["sluice-attempt"]),
               "team": self.headers.get("x-team"), "nsig": len(self.headers["webhook-signature"].split(" ")),
               "valid": [valid(s, self.headers, body) for s in secrets], "body": json.loads(body)}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        code = 500 if rec["body"]["data"] == "please fail" else 200
        self.send_response(code); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
: >"$dir/secrets"
python3 "$dir/recv.py" "$rport" "$dir/recv.log" "$dir/secrets" 2>"$dir/recv.err" &
rpid=$!
"$sluiced" --data-dir "$dir/data" --listen 127.0.0.1:$native --http 127.0.0.1:$http \
    --webhook-allow-private true >"$dir/log" 2>&1 &
pid=$!
S() { timeout 30 "$sluice" -s 127.0.0.1:$native "$@"; }
# ready within 20 s in all (a port another process took could hold a call open)
end=$((SECONDS + 20))
until timeout 2 "$sluice" -s 127.0.0.1:$native node status >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "not ready"
    sleep 0.1
done
: >"$dir/recv.log"
# count of receiver lines matching a python predicate on rec, waited for up to 20 s
wait_for() {
    local want=$1 pred=$2
    for _ in $(seq 200); do
        n=$(python3 -c "import json,sys; print(sum(1 for l in open(sys.argv[1]) if (lambda rec: $pred)(json.loads(l))))" "$dir/recv.log")
        [ "$n" -ge "$want" ] && return 0
        sleep 0.1
    done
    fail "waited for $want requests where $pred, got $n"
}

S topic create t --partitions 2 >/dev/null
S webhook create t http://127.0.0.1:$rport/ftp-is-not-ok --name bad --secret nope >/dev/null 2>&1 && fail "a bad secret was taken"
S webhook create t ftp://127.0.0.1/ >/dev/null 2>&1 && fail "an ftp URL was taken"
out=$(S --json webhook create t http://127.0.0.1:$rport/hook --name w1 --header x-team=pay --filter key-prefix=eu- \
      --max-attempts 2 --schedule 0,300)
secret=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["name"]=="w1" and d["topic"]=="t"; print(d["secret"])' "$out") ||
    fail "create: $out"
[[ $secret == whsec_* ]] || fail "secret: $secret"
echo "$secret" >"$dir/secrets"
S pub t --key eu-1 hello >/dev/null
S pub t --key us-1 skipped >/dev/null
S pub t --key eu-2 "please fail" >/dev/null
wait_for 1 'rec["body"]["data"] == "hello"'
wait_for 2 'rec["body"]["data"] == "please fail"'
python3 - "$dir/recv.log" <<'PY' || fail "deliveries: $(cat "$dir/recv.log")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["valid"] == [True] and r["nsig"] == 1 and r["team"] == "pay" for r in recs), recs
assert not any(r["body"]["data"] == "skipped" for r in recs), "the filter let us-1 through"
hello = [r for r in recs if r["body"]["data"] == "hello"]
assert len(hello) == 1 and hello[0]["body"]["type"] == "t" and hello[0]["body"]["key"] == "eu-1", hello
fails = [r for r in recs if r["body"]["data"] == "please fail"]
assert [r["attempt"] for r in fails] == [1, 2] and fails[0]["id"] == fails[1]["id"], fails
PY
# the failing message is dead-lettered with the error, the webhook goes on
for _ in $(seq 100); do
    d=$(S --json webhook describe w1)
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert sum(p["dead_lettered"] for p in d["partitions"]) == 1' "$d" 2>/dev/null && break
    sleep 0.1
done
python3 -c 'import json,sys; d=json.loads(sys.argv[1])
assert d["url"].endswith("/hook") and d["secrets"] == 1 and d["ordered"] and d["max_attempts"] == 2, d
assert d["schedule_ms"] == [0, 300] and d["headers"] == {"x-team": "pay"} and not d["paused"], d
assert sum(p["dead_lettered"] for p in d["partitions"]) == 1 and "HTTP 500" in [p["last_error"] for p in d["partitions"]], d
assert "whsec" not in sys.argv[1], "a secret in describe"' "$d" || fail "describe: $d"
S sub t.dlq --from earliest --count 1 --format json >"$dir/dlq" || fail "no dead letter"
grep -q '"please fail"' "$dir/dlq" || fail "dead letter: $(cat "$dir/dlq")"
S webhook list | grep -q '^w1 ' || fail "list: $(S webhook list)"

# pause: nothing is sent; resume: it is
S webhook pause w1 >/dev/null
sleep 1.5
S pub t --key eu-3 while-paused >/dev/null
sleep 1.5
grep -q while-paused "$dir/recv.log" && fail "delivered while paused"
S webhook resume w1 >/dev/null
wait_for 1 'rec["body"]["data"] == "while-paused"'

# rotate: two signatures, each valid with its secret
out=$(S webhook rotate-secret w1)
new=$(echo "$out" | sed -n 's/^secret \(whsec_[^ ]*\).*/\1/p')
[[ $new == whsec_* ]] || fail "rotate: $out"
printf '%s\n%s\n' "$new" "$secret" >"$dir/secrets"
sleep 1.5
S pub t --key eu-4 after-rotation >/dev/null
wait_for 1 'rec["body"]["data"] == "after-rotation" and rec["nsig"] == 2 and rec["valid"] == [True, True]'

# replay from the start: hello comes again
S webhook replay w1 --from earliest >/dev/null
wait_for 2 'rec["body"]["data"] == "hello"'

# a consumer that is not a webhook
S consumer create plain --topic t >/dev/null
set +e
S webhook describe plain >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 65 ] || fail "describe of a plain consumer exited $rc"
S webhook delete w1 >/dev/null
S webhook list | grep -q '^w1 ' && fail "deleted webhook listed"
echo "cli_webhook: ok"
