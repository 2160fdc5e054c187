#!/usr/bin/env python3
"""Debian's python3-websockets as a sluice client (sluice.v1.json).

Pipelines 200 publishes on one connection (keys, headers, a binary payload
as base64), checks every ack (distinct offsets, in order per partition),
then reads everything back on a second connection's subscription with
credit, and resumes a third connection from positions mid-way: exactly the
suffix, nothing more, nothing less. A retried publish (same producer id and
sequence) is acknowledged as a duplicate at the original offset.

Usage: ws_python.py HOST PORT TOPIC   (TOPIC exists with one partition)
"""
import asyncio
import base64
import json
import sys

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
    print(f"ws_python: ok ({N} pipelined publishes, credit, resume, duplicate, binary)")


asyncio.run(main())
