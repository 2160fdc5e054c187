#!/usr/bin/env python3
"""RFC 6455 conformance of sluice's WebSocket server, on raw sockets.

Modelled on the Autobahn testsuite's case groups (which needs Python 2 and is
not packaged here): 1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes,
5 fragmentation, 6 UTF-8, 7 close, 9 limits, plus the handshake and masking.
The server has no echo, so data cases go through the sluice.v1.json
subprotocol: a publish of the payload must be acknowledged and a
subscription must push the same bytes back.

Usage: ws_conformance.py HOST PORT TOPIC MESSAGE_MAX [PING_MS]
(TOPIC exists with one partition; MESSAGE_MAX and PING_MS are the server's
ws_message_max and ws_ping_interval_ms.)
Every case runs on its own connection and every read is bounded in time.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import sys

HOST, PORT, TOPIC, MESSAGE_MAX = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
PING_MS = int(sys.argv[5]) if len(sys.argv) > 5 else 20000
TIMEOUT = 10
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
failures = []
passed = 0


class Closed(Exception):
    def __init__(self, code, reason=b""):
        super().__init__(f"closed {code}")
        self.code = code
        self.reason = reason


def http_request(lines, body=b""):
    s = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return s, data


def handshake_lines(path="/v1/ws", key=None, version="13", proto="sluice.v1.json", extra=()):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{PORT}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}"]
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    if proto:
        lines.append(f"Sec-WebSocket-Protocol: {proto}")
    lines.extend(extra)
    return lines, key


class Conn:
    def __init__(self, proto="sluice.v1.json"):
        lines, key = handshake_lines(proto=proto)
        self.s, head = http_request(lines)
        head, _, self.buf = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n")[0]
        if b" 101 " not in status:
            raise AssertionError(f"handshake answered {status!r}")
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        if b"\r\nSec-WebSocket-Accept: " + want + b"\r\n" not in head:
            raise AssertionError(f"wrong Sec-WebSocket-Accept in {head!r}")

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length is None else length
        if n < 126:
            hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload)) if len(payload) < 4096 else \
                (int.from_bytes(payload, "big") ^ int.from_bytes((key * (len(payload) // 4 + 1))[:len(payload)], "big")
                 ).to_bytes(len(payload), "big")
            hdr += key
        self.s.sendall(hdr + payload)

    def send_text(self, text):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise Closed(1006)
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._need(2)
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return b0 & 0x0F, bool(b0 & 0x80), self._need(n)

    def recv(self):
        """The next data message (text as str); answers nothing; raises Closed on close."""
        while True:
            op, fin, data = self.recv_frame()
            if op == 0x8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                raise Closed(code, data[2:])
            if op in (0x9, 0xA):
                continue
            if not fin:
                raise AssertionError("the server fragments messages")
            return data.decode() if op == 0x1 else data

    def recv_json(self):
        return json.loads(self.recv())

    def expect_close(self, want):
        try:
            while True:
                self.recv()
        except Closed as c:
            if c.code != want:
                raise AssertionError(f"closed with {c.code}, want {want}")
        except (socket.timeout, ConnectionResetError):
            raise AssertionError(f"no close frame, want {want}")

    def close(self):
        self.s.close()


def case(name):
    def wrap(fn):
        global passed
        try:
            fn()
            passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(f"{name}: {type(e).__name__}: {e}")
        return fn
    return wrap


seq = [0]


def round_trip(c, payload_bytes, text=True):
    """Publish payload, subscribe from its offset, check the same bytes come back."""
    seq[0] += 1
    if text:
        msg = {"op": "publish", "id": seq[0], "topic": TOPIC, "payload": payload_bytes.decode()}
    else:
        msg = {"op": "publish", "id": seq[0], "topic": TOPIC, "payload_encoding": "base64",
               "payload": base64.b64encode(payload_bytes).decode()}
    c.send_text(json.dumps(msg))
    ack = c.recv_json()
    assert ack["op"] == "ack" and ack["id"] == seq[0], ack
    c.send_text(json.dumps({"op": "subscribe", "id": "s", "topic": TOPIC, "from": ack["offset"], "credit": 1}))
    sub = c.recv_json()
    assert sub["op"] == "subscribed", sub
    m = c.recv_json()
    assert m["op"] == "message" and m["offset"] == ack["offset"], m
    got = base64.b64decode(m["payload"]) if m.get("payload_encoding") == "base64" else m["payload"].encode()
    assert got == payload_bytes, f"{len(got)} bytes back for {len(payload_bytes)}"
    c.send_text(json.dumps({"op": "unsubscribe", "id": "u", "sub": sub["sub"]}))
    assert c.recv_json() == {"op": "ok", "id": "u"}


def protocol_error(frames, want=1002, proto="sluice.v1.json"):
    c = Conn(proto)
    try:
        for f in frames:
            c.send_frame(**f)
        c.expect_close(want)
    finally:
        c.close()


# ---------- 0: handshake ----------

@case("0.1 RFC 6455 example key")
def _():
    s, head = http_request(handshake_lines(key="dGhlIHNhbXBsZSBub25jZQ==")[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head, head
    assert b"Sec-WebSocket-Protocol: sluice.v1.json\r\n" in head, head


@case("0.2 version 8 -> 426 naming 13")
def _():
    s, head = http_request(handshake_lines(version="8")[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 426 "), head
    assert b"Sec-WebSocket-Version: 13" in head, head


@case("0.3 plain GET /v1/ws -> 426")
def _():
    s, head = http_request([f"GET /v1/ws HTTP/1.1", f"Host: {HOST}"])
    s.close()
    assert head.startswith(b"HTTP/1.1 426 "), head


@case("0.4 bad key -> 400")
def _():
    s, head = http_request(handshake_lines(key="c2hvcnQ=")[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 400 "), head


@case("0.5 unknown subprotocol -> 400")
def _():
    s, head = http_request(handshake_lines(proto="mqtt")[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 400 "), head


@case("0.6 no subprotocol offered -> sluice.v1.json, no header")
def _():
    s, head = http_request(handshake_lines(proto=None)[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Protocol" not in head, head


@case("0.7 an Origin not in ws_origins -> 403")
def _():
    s, head = http_request(handshake_lines(extra=["Origin: https://evil.example"])[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 403 "), head


@case("0.8 an Origin in ws_origins -> 101")
def _():
    s, head = http_request(handshake_lines(extra=["Origin: https://app.example"])[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 101 "), head


@case("0.9 graphql-transport-ws is served on /v1/graphql, not on /v1/ws")
def _():
    s, head = http_request(handshake_lines(path="/v1/graphql", proto="graphql-transport-ws")[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Protocol: graphql-transport-ws" in head, head
    s, head = http_request(handshake_lines(proto="graphql-transport-ws")[0])
    s.close()
    assert head.startswith(b"HTTP/1.1 400 "), head


@case("0.10 a frame sent right behind the handshake request is served")
def _():
    lines, key = handshake_lines()
    msg = json.dumps({"op": "publish", "id": "early", "topic": TOPIC, "payload": "early"}).encode()
    mask = os.urandom(4)
    frame = bytes([0x81, 0x80 | len(msg)]) + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(msg))
    s, head = http_request(lines, frame)
    try:
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        c = Conn.__new__(Conn)
        c.s, c.buf = s, rest
        ack = c.recv_json()
        assert ack["op"] == "ack" and ack["id"] == "early", ack
    finally:
        s.close()


# ---------- 1: framing ----------

for size in (0, 125, 126, 127, 65535, 65536, 200000):
    @case(f"1.1 text message of {size} bytes round trip")
    def _(size=size):
        c = Conn()
        try:
            round_trip(c, (b"x" * size) if size else b"")
        finally:
            c.close()

for size in (0, 125, 65536):
    @case(f"1.2 binary payload of {size} bytes round trip")
    def _(size=size):
        c = Conn()
        try:
            round_trip(c, bytes((i * 7 + 1) % 256 for i in range(size)) + b"\xff", text=False)
        finally:
            c.close()


@case("1.3 unmasked client frame -> 1002")
def _():
    protocol_error([dict(opcode=0x1, payload=b'{"op":"x"}', mask=False)])


@case("1.4 64-bit length with the top bit set -> 1002")
def _():
    c = Conn()
    try:
        c.s.sendall(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + os.urandom(4))
        c.expect_close(1002)
    finally:
        c.close()


# ---------- 2: ping/pong ----------

@case("2.1 ping with payload -> pong with the same payload")
def _():
    c = Conn()
    try:
        c.send_frame(0x9, b"hello ping")
        op, fin, data = c.recv_frame()
        assert (op, fin, data) == (0xA, True, b"hello ping"), (op, fin, data)
    finally:
        c.close()


@case("2.2 ping of 125 bytes answered")
def _():
    c = Conn()
    try:
        c.send_frame(0x9, b"p" * 125)
        op, _, data = c.recv_frame()
        assert op == 0xA and data == b"p" * 125
    finally:
        c.close()


@case("2.3 ping of 126 bytes -> 1002")
def _():
    protocol_error([dict(opcode=0x9, payload=b"p" * 126)])


@case("2.4 unsolicited pong ignored")
def _():
    c = Conn()
    try:
        c.send_frame(0xA, b"unasked")
        round_trip(c, b"after pong")
    finally:
        c.close()


@case("2.5 fragmented ping -> 1002")
def _():
    protocol_error([dict(opcode=0x9, payload=b"a", fin=False)])


# ---------- 3: reserved bits ----------

for rsv in range(1, 8):
    @case(f"3.{rsv} reserved bits {rsv:03b} -> 1002")
    def _(rsv=rsv):
        protocol_error([dict(opcode=0x1, payload=b"{}", rsv=rsv)])


# ---------- 4: opcodes ----------

for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
    @case(f"4 reserved opcode {op:#x} -> 1002")
    def _(op=op):
        protocol_error([dict(opcode=op, payload=b"")])


# ---------- 5: fragmentation ----------

@case("5.1 fragmented text with pings between fragments")
def _():
    c = Conn()
    try:
        msg = json.dumps({"op": "publish", "id": "frag", "topic": TOPIC, "payload": "in three pieces"}).encode()
        a, b = len(msg) // 3, 2 * len(msg) // 3
        c.send_frame(0x1, msg[:a], fin=False)
        c.send_frame(0x9, b"p1")
        c.send_frame(0x0, msg[a:b], fin=False)
        c.send_frame(0x9, b"p2")
        c.send_frame(0x0, msg[b:], fin=True)
        pongs, ack = [], None
        while ack is None:
            op, _, data = c.recv_frame()
            if op == 0xA:
                pongs.append(data)
            else:
                ack = json.loads(data)
        assert pongs == [b"p1", b"p2"], pongs
        assert ack["op"] == "ack" and ack["id"] == "frag", ack
    finally:
        c.close()


@case("5.2 continuation without a start -> 1002")
def _():
    protocol_error([dict(opcode=0x0, payload=b"x")])


@case("5.3 new data frame inside a fragmented message -> 1002")
def _():
    protocol_error([dict(opcode=0x1, payload=b"{", fin=False), dict(opcode=0x1, payload=b"}")])


# ---------- 6: UTF-8 ----------

for i, bad in enumerate([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"ok\x80"]):
    @case(f"6.{i + 1} invalid UTF-8 {bad!r} -> 1007")
    def _(bad=bad):
        protocol_error([dict(opcode=0x1, payload=bad)], want=1007)


@case("6.7 invalid UTF-8 split across fragments -> 1007")
def _():
    protocol_error([dict(opcode=0x1, payload=b"\xce", fin=False), dict(opcode=0x0, payload=b"\xff")], want=1007)


@case("6.8 valid UTF-8 split at every byte")
def _():
    c = Conn()
    try:
        text = "κόσμε 𝄞 €"
        msg = json.dumps({"op": "publish", "id": "u8", "topic": TOPIC, "payload": text}, ensure_ascii=False).encode()
        for i in range(len(msg)):
            c.send_frame(0x1 if i == 0 else 0x0, msg[i:i + 1], fin=(i == len(msg) - 1))
        ack = c.recv_json()
        assert ack["op"] == "ack", ack
        c.send_text(json.dumps({"op": "subscribe", "id": 1, "topic": TOPIC, "from": ack["offset"], "credit": 1}))
        c.recv_json()
        m = c.recv_json()
        assert m["payload"] == text, m
    finally:
        c.close()


# ---------- 7: close ----------

@case("7.1 clean close is echoed with the same code")
def _():
    c = Conn()
    try:
        c.send_frame(0x8, struct.pack("!H", 1000) + b"bye")
        c.expect_close(1000)
        assert c.s.recv(1) == b"", "the server did not close the TCP connection"
    finally:
        c.close()


@case("7.2 close without a payload")
def _():
    c = Conn()
    try:
        c.send_frame(0x8, b"")
        op, _, data = c.recv_frame()
        assert op == 0x8 and len(data) in (0, 2), (op, data)
    finally:
        c.close()


for code in (0, 999, 1004, 1005, 1006, 1016, 2999, 5000):
    @case(f"7.3 invalid close code {code} -> 1002")
    def _(code=code):
        protocol_error([dict(opcode=0x8, payload=struct.pack("!H", code))])


@case("7.4 close payload of 1 byte -> 1002")
def _():
    protocol_error([dict(opcode=0x8, payload=b"\x03")])


@case("7.5 close reason of 124 bytes (control frame over 125) -> 1002")
def _():
    protocol_error([dict(opcode=0x8, payload=struct.pack("!H", 1000) + b"r" * 124)])


@case("7.6 nothing is answered after a close")
def _():
    c = Conn()
    try:
        c.send_frame(0x8, struct.pack("!H", 1000))
        c.send_text(json.dumps({"op": "publish", "id": 1, "topic": TOPIC, "payload": "late"}))
        c.expect_close(1000)
        assert c.s.recv(100) == b""
    finally:
        c.close()


# ---------- 9: limits ----------

@case("9.1 a message over ws_message_max -> 1009")
def _():
    protocol_error([dict(opcode=0x2, payload=b"\0" * (MESSAGE_MAX + 1))], want=1009, proto="sluice.v1.proto")


@case("9.2 a fragmented message over ws_message_max -> 1009")
def _():
    half = MESSAGE_MAX // 2 + 1
    protocol_error([dict(opcode=0x1, payload=b" " * half, fin=False), dict(opcode=0x0, payload=b" " * half)],
                   want=1009)


# ---------- the json subprotocol stays usable after refusals ----------

@case("10.1 bad requests get errors, the session goes on")
def _():
    c = Conn()
    try:
        c.send_text("not json")
        e = c.recv_json()
        assert e["op"] == "error" and e["code"] == "MALFORMED", e
        c.send_text(json.dumps({"op": "teleport", "id": 9}))
        e = c.recv_json()
        assert e == {"op": "error", "id": 9, "code": "MALFORMED", "message": e["message"]} and "unknown op" in e["message"], e
        c.send_text(json.dumps({"op": "publish", "id": 10, "topic": "no-such-topic-here", "payload": "x"}))
        e = c.recv_json()
        assert e["op"] == "error" and e["id"] == 10 and e["code"] == "NO_SUCH_TOPIC", e
        round_trip(c, b"still serving")
    finally:
        c.close()


@case("10.2 binary message on sluice.v1.json answered with an error")
def _():
    c = Conn()
    try:
        c.send_frame(0x2, b"\x00\x01")
        e = c.recv_json()
        assert e["op"] == "error" and e["code"] == "MALFORMED", e
    finally:
        c.close()


# ---------- 11: sluice.v1.proto (native Frames, hand-encoded protobuf) ----------

def pb_varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def pb(fields):
    """fields: [(number, int | bytes | str)]"""
    out = b""
    for num, v in fields:
        if isinstance(v, int):
            out += pb_varint(num << 3) + pb_varint(v)
        else:
            v = v.encode() if isinstance(v, str) else v
            out += pb_varint(num << 3 | 2) + pb_varint(len(v)) + v
    return out


def pb_parse(b):
    """{number: [int | bytes]}"""
    out, i = {}, 0
    while i < len(b):
        key, shift = 0, 0
        while True:
            c = b[i]; i += 1
            key |= (c & 0x7F) << shift; shift += 7
            if not c & 0x80:
                break
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, shift = 0, 0
            while True:
                c = b[i]; i += 1
                v |= (c & 0x7F) << shift; shift += 7
                if not c & 0x80:
                    break
        elif wt == 2:
            n, shift = 0, 0
            while True:
                c = b[i]; i += 1
                n |= (c & 0x7F) << shift; shift += 7
                if not c & 0x80:
                    break
            v = b[i:i + n]; i += n
        else:
            raise AssertionError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def proto_recv(c):
    op, fin, data = c.recv_frame()
    while op in (0x9, 0xA):
        op, fin, data = c.recv_frame()
    assert op == 0x2 and fin, (op, data)
    return pb_parse(data)


@case("11.1 sluice.v1.proto: Hello, Publish, Subscribe, Delivery as native Frames")
def _():
    c = Conn("sluice.v1.proto")
    try:
        c.send_frame(0x2, pb([(1, 1), (2, pb([(1, 1), (2, 1), (3, "conformance")]))]))
        f = proto_recv(c)
        assert f[1] == [1] and 3 in f, f          # HelloOk
        c.send_frame(0x2, pb([(1, 2), (20, pb([(1, TOPIC), (6, b"proto \x00\xff bytes")]))]))
        f = proto_recv(c)
        assert f[1] == [2] and 21 in f, f         # PublishAck
        ack = pb_parse(f[21][0])
        offset = ack.get(2, [0])[0]
        c.send_frame(0x2, pb([(1, 3), (30, pb([(1, TOPIC), (3, 2), (4, offset), (7, 1)]))]))
        f = proto_recv(c)
        assert f[1] == [3] and 31 in f, f         # Subscribed
        f = proto_recv(c)
        assert 34 in f, f                         # Delivery (id 0)
        d = pb_parse(f[34][0])
        m = pb_parse(d[2][0])
        assert m[7] == [b"proto \x00\xff bytes"] and m.get(3, [0]) == [offset], m
    finally:
        c.close()


@case("11.2 sluice.v1.proto: a first frame that is not Hello is refused")
def _():
    c = Conn("sluice.v1.proto")
    try:
        c.send_frame(0x2, pb([(1, 5), (12, b"")]))   # ListTopics
        f = proto_recv(c)
        assert 4 in f and pb_parse(f[4][0])[1] == [12], f   # Error HANDSHAKE_REQUIRED
    finally:
        c.close()


# ---------- 12: liveness ----------

@case("12.1 a client that answers no ping is closed")
def _():
    c = Conn()
    try:
        c.s.settimeout(PING_MS / 1000 * 4 + 5)
        op, _, _ = c.recv_frame()
        assert op == 0x9, f"expected a ping, got opcode {op}"
        try:
            while True:
                op, _, _ = c.recv_frame()
                assert op in (0x9, 0x8), op
                if op == 0x8:
                    break
        except Closed:
            pass
    finally:
        c.close()


print(f"ws_conformance: {passed} cases passed, {len(failures)} failed")
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
