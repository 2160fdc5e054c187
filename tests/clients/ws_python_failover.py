#!/usr/bin/env python3
"""Debian's python3-websockets against a three-node sluice cluster: kill -9 of
the serving node in the middle, exact resume on another.

Publishes and subscribes over one WebSocket on node 1 (sluice.v1.json), with
a producer id and sequences; after part of the stream has arrived, node 1 is
killed with SIGKILL. The client moves to node 2: it resubscribes from the
positions after the last message it saw, resends every publish that was not
acknowledged (same sequences) and publishes the rest. Every message must
then have arrived exactly once, in offset order, at the offset its ack named.

Usage: ws_python_failover.py PATH/TO/sluiced
Listens on 127.0.0.1 only (free ports), stops what it starts, bounds every wait.
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

SLUICED = sys.argv[1]
N = 30
PID = 777001


def free_ports(n):
    """n distinct free ports: every socket stays bound until all are chosen."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def http(base, method, path, body=None):
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def until(what, fn, secs=60):
    end = time.time() + secs
    while time.time() < end:
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


async def recv_json(ws, secs=20):
    return json.loads(await asyncio.wait_for(ws.recv(), secs))


async def session(url, got, acks, start_positions, to_publish, stop_after, need_acks=0):
    """One connection: subscribe from positions, publish, collect; returns when
    stop_after messages are in `got` and need_acks publishes are acknowledged
    (or raises on a dropped connection). A message may arrive before its
    publisher's ack: the two travel separately."""
    async with websockets.connect(url, subprotocols=["sluice.v1.json"], open_timeout=10) as ws:
        sub = {"op": "subscribe", "id": "sub", "topic": "t", "from": {"positions": start_positions}}
        await ws.send(json.dumps(sub))
        for i in to_publish:
            await ws.send(json.dumps({"op": "publish", "id": i, "topic": "t", "payload": f"m{i}",
                                      "producer_id": PID, "sequence": i + 1}))
        while len(got) < stop_after or len(acks) < need_acks:
            m = await recv_json(ws)
            if m["op"] == "message":
                got.append(m)
            elif m["op"] == "ack":
                acks[m["id"]] = m
            elif m["op"] == "subscribed":
                assert m["partitions"] == [{"partition": 0, "next": start_positions["0"]}], m
            elif m["op"] == "error" and m.get("code") in ("UNAVAILABLE", "FENCED") and "id" in m:
                # no leader yet (maybe stored) or fenced behind such a publish: the same bytes again
                await asyncio.sleep(0.1)
                i = m["id"]
                await ws.send(json.dumps({"op": "publish", "id": i, "topic": "t", "payload": f"m{i}",
                                          "producer_id": PID, "sequence": i + 1}))
            else:
                raise AssertionError(f"unexpected: {m}")


async def main(bases, procs):
    ws1 = bases[0].replace("http", "ws") + "/v1/ws"
    ws2 = bases[1].replace("http", "ws") + "/v1/ws"
    got, acks = [], {}
    # node 1: the first half published, part of it read
    await session(ws1, got, acks, {"0": 0}, range(N // 2), N // 3)
    seen = len(got)
    procs[0].send_signal(signal.SIGKILL)  # kill -9 of node 1's master; its children die with it
    procs[0].wait(10)
    # node 2: resume after the last message seen, resend what was not acked, publish the rest
    nxt = {"0": got[-1]["offset"] + 1}
    resend = [i for i in range(N // 2) if i not in acks]
    for attempt in range(100):
        try:
            await session(ws2, got, acks, nxt, resend + list(range(N // 2, N)), N, N)
            break
        except (OSError, asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            nxt = {"0": got[-1]["offset"] + 1}
            resend = [i for i in range(N) if i not in acks]
            await asyncio.sleep(0.2)
    # every publish acked, maybe as a duplicate of its first try; nothing arrives twice
    assert sorted(acks) == list(range(N)), sorted(acks)
    offsets = [m["offset"] for m in got]
    assert offsets == list(range(offsets[0], offsets[0] + N)), offsets
    assert [m["payload"] for m in got] == [f"m{i}" for i in range(N)], [m["payload"] for m in got]
    for i in range(N):
        assert acks[i]["offset"] == got[i]["offset"], (i, acks[i], got[i])
    print(f"ws_python_failover: ok ({seen} messages from node 1, {N - seen} from node 2 after kill -9)")


def run():
    d = tempfile.mkdtemp(prefix="sluice-pyws-")
    procs = []
    try:
        ports = free_ports(9)
        nat, htp, raft = ports[0:3], ports[3:6], ports[6:9]
        peers = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(raft))
        for i in range(3):
            log = open(os.path.join(d, f"node{i + 1}.log"), "a")
            procs.append(subprocess.Popen([SLUICED, "--node-id", str(i + 1), "--data-dir", os.path.join(d, f"d{i + 1}"),
                                           "--listen", f"127.0.0.1:{nat[i]}", "--http", f"127.0.0.1:{htp[i]}",
                                           "--peers", peers, "--frontends", "1", "--election-timeout-ms", "500",
                                           "--heartbeat-ms", "50"], stdout=log, stderr=log))
        bases = [f"http://127.0.0.1:{p}" for p in htp]
        for b in bases:
            until(f"{b} ready", lambda b=b: http(b, "GET", "/readyz") == 200)
        until("topic", lambda: http(bases[0], "PUT", "/v1/topics/t", b'{"partitions":1}') in (201, 409))
        for b in bases:
            until("topic visible", lambda b=b: http(b, "GET", "/v1/topics/t") == 200)
        asyncio.run(asyncio.wait_for(main(bases, procs), 120))
    except BaseException:
        for i in range(3):
            try:
                print(f"--- node {i + 1}\n" + open(os.path.join(d, f"node{i + 1}.log")).read()[-3000:], file=sys.stderr)
            except OSError:
                pass
        raise
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        shutil.rmtree(d, ignore_errors=True)


run()
