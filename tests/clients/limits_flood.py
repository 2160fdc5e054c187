#!/usr/bin/env python3
"""Requests per second per principal under a flood (tests/clients/limits.sh).

Usage: limits_flood.py HTTP_PORT TOKEN_A TOKEN_B RATE

Principal B publishes alone (its normal latency), then A floods publishes on
one keep-alive connection for FLOOD_S seconds while B keeps publishing at a
modest rate. Asserts: A gets 429 TOO_MANY with Retry-After once over RATE/s
and no more than the bucket allows is accepted; B gets every publish
acknowledged (201) and its p99 latency under the flood stays within
max(20 x its p99 alone, 250 ms).
"""
import http.client
import json
import sys
import threading
import time

PORT, TA, TB, RATE = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
FLOOD_S = 3.0
B_EVERY_S = 0.1  # 10/s: well under RATE


def publish(conn, token, body):
    conn.request("POST", "/v1/topics/flood/messages", body=body,
                 headers={"Authorization": "Bearer " + token, "Content-Type": "text/plain"})
    r = conn.getresponse()
    return r.status, r.getheader("Retry-After"), r.read()


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def b_publishes(n, lat, statuses):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    for i in range(n):
        t0 = time.monotonic()
        st, _, body = publish(conn, TB, b"b%d" % i)
        lat.append(time.monotonic() - t0)
        statuses.append((st, body))
        time.sleep(B_EVERY_S)
    conn.close()


alone, st_alone = [], []
b_publishes(15, alone, st_alone)
assert all(s == 201 for s, _ in st_alone), st_alone

a_ok = a_refused = 0
a_bad = []
stop = threading.Event()


def flood():
    global a_ok, a_refused
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    while not stop.is_set():
        st, ra, body = publish(conn, TA, b"a")
        if st == 201:
            a_ok += 1
        elif st == 429:
            a_refused += 1
            j = json.loads(body)
            if j.get("code") != "TOO_MANY" or "principal alice over its requests per second (%d/s)" % RATE \
                    not in j.get("detail", "") or not ra or int(ra) < 1:
                a_bad.append((st, ra, body))
        else:
            a_bad.append((st, ra, body))
    conn.close()


flooder = threading.Thread(target=flood)
t0 = time.monotonic()
flooder.start()
time.sleep(0.3)
under, st_under = [], []
b_publishes(int((FLOOD_S - 0.6) / B_EVERY_S), under, st_under)
while time.monotonic() - t0 < FLOOD_S:
    time.sleep(0.05)
stop.set()
flooder.join(15)
elapsed = time.monotonic() - t0

bound = max(20 * p99(alone), 0.25)
print("A: %d acknowledged, %d refused in %.2f s; B p99 alone %.1f ms, under flood %.1f ms (bound %.0f ms)" %
      (a_ok, a_refused, elapsed, p99(alone) * 1e3, p99(under) * 1e3, bound * 1e3))
assert not a_bad, a_bad[:3]
assert a_refused > 0, "the flood was never refused"
# a full bucket (RATE) plus what refills while it runs, with slack for the clock
assert a_ok <= RATE + RATE * (elapsed + 0.5), (a_ok, elapsed)
assert a_ok >= RATE, ("the bucket's burst was not granted", a_ok)
assert all(s == 201 for s, _ in st_under), [x for x in st_under if x[0] != 201][:3]
assert p99(under) < bound, (p99(under), bound)
print("ok")
