#!/usr/bin/env python3
"""Debian's python3-websockets as a sluice client (sluice.v1.json).

Pipelines 200 publishes on one connection (keys, headers, a binary payload
as base64), checks every ack (distinct offsets, in order per partition),
then reads everything back on a second connection's subscription with
credit, and resumes a third connection from positions mid-way: exactly the
suffix, nothing more, nothing less. A retried publish (same producer id and
sequence) is acknowledged as a duplicate at the original offset. Then a
durable consumer (made over HTTP) is pulled and acknowledged over the
WebSocket: pull, ack, nack with a delay (redelivered no sooner, attempt 2),
in_progress, and the errors for an unknown consumer.

Usage: ws_python.py HOST PORT TOPIC   (TOPIC exists with one partition)
"""
import asyncio
import base64
import json
import sys
import time
import urllib.request

import websockets

HOST, PORT, TOPIC = sys.argv[1], int(sys.argv[2]), sys.argv[3]
URL = f"ws://{HOST}:{PORT}/v1/ws"
N = 200


def payload_of(i):
    return {"op": "publish", "id": i, "topic": TOPIC, "key": f"k{i % 7}", "headers": {"n": str(i)},
            "payload": f"message {i}", "producer_id": 4242, "sequence": i + 1}


async def read_n(ws, n, timeout=20):
    got = []
    while len(got) < n:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        assert m["op"] == "message", m
        got.append(m)
    return got


async def main():
    async with websockets.connect(URL, subprotocols=["sluice.v1.json"], max_size=2**22) as ws:
        assert ws.subprotocol == "sluice.v1.json", ws.subprotocol
        for i in range(N):
            await ws.send(json.dumps(payload_of(i)))
        acks = {}
        while len(acks) < N:
            a = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert a["op"] == "ack" and not a["duplicate"], a
            acks[a["id"]] = a
        offsets = [acks[i]["offset"] for i in range(N)]
        assert offsets == sorted(offsets) and len(set(offsets)) == N, offsets[:10]
        # a retry of message 17 is stored once: a duplicate at its offset
        await ws.send(json.dumps(payload_of(17) | {"id": "retry"}))
        a = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert a["op"] == "ack" and a["duplicate"] and a["offset"] == offsets[17], a
        # binary payload as base64 both ways
        blob = bytes(range(256))
        await ws.send(json.dumps({"op": "publish", "id": "bin", "topic": TOPIC,
                                  "payload": base64.b64encode(blob).decode(), "payload_encoding": "base64"}))
        bin_ack = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert bin_ack["op"] == "ack", bin_ack

    async with websockets.connect(URL, subprotocols=["sluice.v1.json"]) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": "all", "topic": TOPIC, "from": "earliest", "credit": 50}))
        sub = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert sub["op"] == "subscribed" and sub["partitions"] == [{"partition": 0, "next": 0}], sub
        got = await read_n(ws, 50)
        # the window is used up: nothing more until credit
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.5)
            raise AssertionError(f"a message beyond the credit: {extra}")
        except asyncio.TimeoutError:
            pass
        await ws.send(json.dumps({"op": "credit", "sub": sub["sub"], "n": 1000}))
        got += await read_n(ws, N - 50 + 1)
        for i in range(N):
            m = got[i]
            assert (m["offset"], m["key"], m["headers"], m["payload"]) == \
                (offsets[i], f"k{i % 7}", {"n": str(i)}, f"message {i}"), m
        b = got[N]
        assert b["offset"] == bin_ack["offset"] and b["payload_encoding"] == "base64", b
        assert base64.b64decode(b["payload"]) == blob

    # resume from positions mid-way: exactly the suffix
    async with websockets.connect(URL, subprotocols=["sluice.v1.json"]) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": 1, "topic": TOPIC,
                                  "from": {"positions": {"0": offsets[150]}}}))
        sub = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert sub["partitions"] == [{"partition": 0, "next": offsets[150]}], sub
        got = await read_n(ws, N - 150 + 1)
        assert [m["offset"] for m in got] == offsets[150:] + [bin_ack["offset"]], [m["offset"] for m in got]
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.5)
            raise AssertionError(f"a message past the end: {extra}")
        except asyncio.TimeoutError:
            pass
    await consumer_ops(offsets)
    print(f"ws_python: ok ({N} pipelined publishes, credit, resume, duplicate, binary, durable consumer)")


async def consumer_ops(offsets):
    req = urllib.request.Request(f"http://{HOST}:{PORT}/v1/consumers", method="POST",
                                 data=json.dumps({"name": "pyc", "topic": TOPIC, "mode": "shared",
                                                  "max_in_flight": 100, "from": "earliest"}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201, r.status

    async def call(ws, msg):
        await ws.send(json.dumps(msg))
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if m.get("id") == msg["id"]:
                return m

    async with websockets.connect(URL, subprotocols=["sluice.v1.json"]) as ws:
        p = await call(ws, {"op": "pull", "id": "p1", "consumer": "pyc", "max": 50})
        assert p["op"] == "pulled" and len(p["messages"]) == 50, p
        assert [m["offset"] for m in p["messages"]] == offsets[:50], [m["offset"] for m in p["messages"]]
        assert all(m["attempt"] == 1 and m["topic"] == TOPIC for m in p["messages"])
        assert p["messages"][3]["payload"] == "message 3" and p["messages"][3]["key"] == "k3", p["messages"][3]
        ok = await call(ws, {"op": "ack", "id": "a1", "consumer": "pyc",
                             "messages": [{"partition": 0, "offset": m["offset"]} for m in p["messages"]]})
        assert ok == {"op": "ok", "id": "a1", "count": 50}, ok
        p = await call(ws, {"op": "pull", "id": "p2", "consumer": "pyc", "max": 2})
        first, second = p["messages"]
        assert (first["offset"], second["offset"]) == (offsets[50], offsets[51]), p
        t0 = time.monotonic()
        ok = await call(ws, {"op": "nack", "id": "n1", "consumer": "pyc", "delay_ms": 700, "error": "later",
                             "messages": [{"partition": 0, "offset": first["offset"]}]})
        assert ok["op"] == "ok" and ok["count"] == 1, ok
        ok = await call(ws, {"op": "in_progress", "id": "w1", "consumer": "pyc",
                             "messages": [{"partition": 0, "offset": second["offset"]}]})
        assert ok["op"] == "ok", ok
        # shared mode goes on with new messages; the nacked one comes back after its delay
        again = None
        while again is None:
            p = await call(ws, {"op": "pull", "id": "p3", "consumer": "pyc", "max": 1000, "wait_ms": 3000})
            assert time.monotonic() - t0 < 20, "the nacked message never came back"
            for m in p["messages"]:
                if m["offset"] == first["offset"]:
                    again = m
        assert again["attempt"] == 2, again
        assert time.monotonic() - t0 >= 0.6, "redelivered before the nack's delay"
        e = await call(ws, {"op": "pull", "id": "bad", "consumer": "nobody"})
        assert e["op"] == "error" and e["code"] == "NO_SUCH_CONSUMER", e
        e = await call(ws, {"op": "ack", "id": "bad2", "consumer": "pyc", "messages": []})
        assert e["op"] == "error" and e["code"] == "MALFORMED", e


asyncio.run(main())
