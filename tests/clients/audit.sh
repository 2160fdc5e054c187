#!/usr/bin/env bash
# The audit trail of admin requests and [limits] topics_per_principal_max
# (docs/security.md#audit, #limits), on one node with [auth] on and the
# sluice CLI:
#   - topic create/delete, consumer and webhook create/delete, webhook
#     pause/resume/rotate-secret and replay (a seek) are audit entries, in
#     order, naming who asked; refused requests are not; no detail holds a
#     webhook secret, sealed or clear
#   - a principal's topics are bounded (TOO_MANY, exit 75) while they live;
#     admin is not; with [auth] off the entries name "-"
#   - topic describe (CLI, --json, GET /v1/topics/{t}) names the creator
# Usage: audit.sh PATH/TO/sluiced PATH/TO/sluice
# Loopback only (free ports), stops what it starts by pid, bounds every wait.
set -euo pipefail
sluiced=$1
sluice=$2
. "$(dirname "$0")/lib.sh" audit
read -r native http native2 http2 < <(free_ports 4)

cd "$dir"
"$sluice" key gen admin.key >admin.pub
"$sluice" key gen alice.key >alice.pub
head -c 32 /dev/urandom >seal.key && chmod 600 seal.key
wait_ready() { # HTTP_PORT
    local end=$((SECONDS + 20))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; do
        [ $SECONDS -lt $end ] || fail "node on $1 not ready"
        sleep 0.1
    done
}
"$sluiced" --data-dir "$dir/data" --listen 127.0.0.1:$native --http 127.0.0.1:$http --auth true \
    --auth-admin-key "$(cat admin.pub)" --auth-key-file "$dir/seal.key" --webhook-allow-private true \
    --topics-per-principal-max 2 >>"$dir/log" 2>&1 &
pids+=($!)
wait_ready "$http"
S() { timeout 30 "$sluice" -s 127.0.0.1:$native "$@"; }
# expect EXIT_CODE STDERR_PATTERN COMMAND...
expect() {
    local code=$1 pat=$2 rc=0
    shift 2
    "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    [ "$rc" = "$code" ] || fail "$* exited $rc (want $code): $(cat "$dir/err")"
    [ -z "$pat" ] || grep -q -- "$pat" "$dir/err" || fail "$*: stderr '$(cat "$dir/err")' lacks '$pat'"
}

echo "-- topics per principal"
S --key admin.key principal add alice --pubkey "$(cat alice.pub)" --allow 'admin:alice.*' >/dev/null
S --key admin.key topic create t1 >/dev/null
S --key alice.key topic create alice.a >/dev/null
S --key alice.key topic create alice.b >/dev/null
expect 75 "principal alice has created topics_per_principal_max (2)" S --key alice.key topic create alice.c
expect 65 "" S --key alice.key topic create alice.b   # exists: that answer first
S --key alice.key topic delete alice.a >/dev/null
S --key alice.key topic create alice.c >/dev/null
S --key admin.key topic create t2 >/dev/null
S --key admin.key topic create t3 >/dev/null   # admin: not limited
S --key admin.key topic create alice.d >/dev/null   # made by admin: counts for admin, not alice
expect 75 "topics_per_principal_max" S --key alice.key topic create alice.e

echo "-- the creator in topic describe and the CLI's JSON"
S --key alice.key topic describe alice.b | grep -qx "created by alice" || fail "describe alice.b: $(S --key alice.key topic describe alice.b)"
creator() { python3 -c 'import json,sys; o=json.load(sys.stdin); print(o.get("created_by", "absent"))'; }
[ "$(S --key alice.key --json topic describe alice.d | creator)" = admin ] || fail "alice.d made by admin"

echo "-- consumers and webhooks"
S --key alice.key consumer create alice.c1 --topic alice.b >/dev/null
S --key alice.key consumer delete alice.c1 >/dev/null
secret=whsec_$(head -c 32 /dev/urandom | base64 -w0)
secret2=whsec_$(head -c 32 /dev/urandom | base64 -w0)
S --key admin.key webhook create alice.b "http://127.0.0.1:9/h" --name hook --secret "$secret" >/dev/null
S --key admin.key webhook pause hook >/dev/null
S --key admin.key webhook resume hook >/dev/null
S --key admin.key webhook rotate-secret hook --secret "$secret2" >/dev/null
S --key admin.key webhook replay hook --from earliest >/dev/null
S --key admin.key webhook delete hook >/dev/null

echo "-- audit"
S --key admin.key --json audit >"$dir/audit"
python3 - "$dir/audit" "${secret#whsec_}" "${secret2#whsec_}" <<'PY' || fail "audit: $(cat "$dir/audit")"
import json, sys
e = json.load(open(sys.argv[1]))["entries"]
got = [(x["principal"], x["action"], json.loads(x["detail"]).get("name")) for x in e]
want = [
    ("admin", "principal.put", "alice"),
    ("admin", "topic.create", "t1"),
    ("alice", "topic.create", "alice.a"),
    ("alice", "topic.create", "alice.b"),
    ("alice", "topic.delete", "alice.a"),
    ("alice", "topic.create", "alice.c"),
    ("admin", "topic.create", "t2"),
    ("admin", "topic.create", "t3"),
    ("admin", "topic.create", "alice.d"),
    ("alice", "consumer.create", "alice.c1"),
    ("alice", "consumer.delete", "alice.c1"),
    ("admin", "consumer.create", "hook"),
    ("admin", "webhook.update", "hook"),
    ("admin", "webhook.update", "hook"),
    ("admin", "webhook.update", "hook"),
    ("admin", "consumer.seek", "hook"),
    ("admin", "consumer.delete", "hook"),
]
assert got == want, got
d = [json.loads(x["detail"]) for x in e]
assert d[1]["partitions"] == 1, d[1]
assert d[9] == {"name": "alice.c1", "topic": "alice.b", "dead_letter_topic": "alice.b.dlq", "webhook": False}, d[9]
assert d[11]["webhook"] is True and d[11]["topic"] == "alice.b", d[11]
assert d[12]["changes"] == {"paused": True}, d[12]
assert d[13]["changes"].get("paused") is False, d[13]
assert d[14]["changes"] == {"rotate_secret": "(new secret)"}, d[14]
assert d[15]["start"] == "earliest", d[15]
for x in e:
    for s in sys.argv[2:]:
        assert s not in x["detail"] and s[:16] not in x["detail"], "a secret in " + x["detail"]
    assert "sealed:" not in x["detail"] and "whsec_" not in x["detail"], x["detail"]
assert [x["seq"] for x in e] == list(range(1, len(e) + 1)), "sequences"
PY

echo "-- the creator in GET /v1/topics/{t}"
S --key admin.key auth init >/dev/null
T=$(S --key admin.key token issue --principal alice --ttl 1h | head -1)
[ "$(curl -s -m 10 -H "Authorization: Bearer $T" "http://127.0.0.1:$http/v1/topics/alice.c" | creator)" = alice ] \
    || fail "GET /v1/topics/alice.c: created_by"

echo "-- [auth] off: the entries name -"
"$sluiced" --data-dir "$dir/data2" --listen 127.0.0.1:$native2 --http 127.0.0.1:$http2 \
    --topics-per-principal-max 1 >>"$dir/log" 2>&1 &
pids+=($!)
wait_ready "$http2"
S2() { timeout 30 "$sluice" -s 127.0.0.1:$native2 "$@"; }
S2 topic create open.a >/dev/null
S2 topic create open.b >/dev/null   # "-" is not limited
[ "$(S2 --json topic describe open.a | creator)" = - ] || fail "open.a made with [auth] off: created_by -"
S2 --json audit >"$dir/audit2"
python3 - "$dir/audit2" <<'PY' || fail "audit without auth: $(cat "$dir/audit2")"
import json, sys
e = json.load(open(sys.argv[1]))["entries"]
assert [(x["principal"], x["action"]) for x in e] == [("-", "topic.create")] * 2, e
PY
echo "audit: ok"
