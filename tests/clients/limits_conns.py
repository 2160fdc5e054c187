#!/usr/bin/env python3
"""Connections per source address and subscriptions per connection
(tests/clients/limits.sh), on raw sockets: no client library needed.

Usage: limits_conns.py NATIVE_PORT HTTP_PORT TOKEN PER_ADDRESS SUBS_MAX

- A WebSocket (sluice.v1.json) with TOKEN subscribes SUBS_MAX times, then
  once more: that one is answered TOO_MANY, the earlier ones keep going.
- PER_ADDRESS HTTP connections are served; one more (HTTP or native) is
  refused with TOO_MANY (429 / Error) and closed while the first still
  answers; after one closes, a new one is served again.
"""
import base64
import json
import os
import socket
import struct
import sys
import time

NATIVE, HTTP, TOKEN, PER_ADDR, SUBS = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def recv_all(s):
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
    return data


def http_get(s, path):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        assert b, "connection closed before an answer"
        buf += b
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(4096)
    return int(head.split()[1]), body


def ws_open():
    s = connect(HTTP)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /v1/ws?access_token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sluice.v1.json\r\n\r\n"
               % (TOKEN, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(1)
        assert b, "closed during the WebSocket handshake"
        buf += b
    assert buf.startswith(b"HTTP/1.1 101"), buf
    return s


def ws_send(s, obj):
    p = json.dumps(obj).encode()
    mask = os.urandom(4)
    hdr = bytes([0x81, 0x80 | len(p)]) if len(p) < 126 else bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(p))
    s.sendall(hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(p)))


def ws_recv(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            assert c, "WebSocket closed"
            b += c
        return b
    while True:
        h = exact(2)
        n = h[1] & 0x7f
        if n == 126:
            n = struct.unpack("!H", exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", exact(8))[0]
        p = exact(n)
        if h[0] & 0x0f == 1:
            return json.loads(p)


# -- subscriptions per connection
ws = ws_open()
for i in range(SUBS):
    ws_send(ws, {"op": "subscribe", "id": "s%d" % i, "topic": "subs.t", "from": "latest", "credit": 10})
    m = ws_recv(ws)
    assert m["op"] == "subscribed" and m["id"] == "s%d" % i, m
ws_send(ws, {"op": "subscribe", "id": "over", "topic": "subs.t", "from": "latest", "credit": 10})
m = ws_recv(ws)
assert m["op"] == "error" and m["id"] == "over" and m["code"] == "TOO_MANY", m
assert "subscriptions_max" in m["message"], m
# the connection and its subscriptions are still there: a publish on it is acknowledged
ws_send(ws, {"op": "publish", "id": "p", "topic": "subs.t", "payload": "x"})
seen = set()
while not {"ack", "message"} <= seen:
    m = ws_recv(ws)
    assert m["op"] in ("ack", "message"), m
    seen.add(m["op"])
ws.close()
print("subscriptions per connection: %d served, one more TOO_MANY" % SUBS)



def served_conn():
    """A connection that is served, waiting (bounded) for closes still on their way to the server."""
    deadline = time.monotonic() + 10
    while True:
        s = connect(HTTP)
        try:
            st, _ = http_get(s, "/healthz")
        except (AssertionError, ValueError, IndexError, ConnectionResetError, BrokenPipeError):
            st = 0
        if st == 200:
            return s
        s.close()
        assert time.monotonic() < deadline, ("no connection served", st)
        time.sleep(0.05)


# -- connections per source address (the WebSocket above and the CLI's may still be closing)
conns = [served_conn() for _ in range(PER_ADDR)]
over = connect(HTTP)
answer = recv_all(over)
assert answer.startswith(b"HTTP/1.1 429 "), answer
assert b"Retry-After: 1\r\n" in answer and b'"code":"TOO_MANY"' in answer, answer
assert b"too many connections from this address" in answer, answer
native = connect(NATIVE)
answer = recv_all(native)  # one Error frame (id 0) and EOF
assert b"too many connections from this address" in answer, answer
(n,) = struct.unpack("!I", answer[:4])
assert n == len(answer) - 4, answer
st, _ = http_get(conns[0], "/healthz")
assert st == 200, "an open connection stopped answering"
conns.pop().close()
conns.append(served_conn())
print("connections per address: %d served, one more refused (HTTP 429, native TOO_MANY), slot reused" % PER_ADDR)
print("ok")
