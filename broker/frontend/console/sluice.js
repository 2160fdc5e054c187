// sluice.js: a client for sluice over WebSocket (subprotocol sluice.v1.json,
// docs/websocket.md), served by every node at /v1/sluice.js. No build step,
// no dependency: an ES module for browsers and Node (give Node 20 a
// WebSocket implementation, e.g. npm ws, as the WebSocket option).
//
//   import { connect } from '/v1/sluice.js';
//   const c = connect(['ws://n1:8401', 'ws://n2:8402']);
//   const ack = await c.publish('orders', 'hello', { key: 'k1' });
//   for await (const m of c.subscribe('orders', { from: 'earliest' })) ...
//
// Delivery guarantees it adds on top of the protocol:
// - publish: each message carries this client's producer id and a sequence
//   per topic (and partition, when one is named). A publish whose answer
//   was lost (connection dropped, UNAVAILABLE, FENCED) is sent again, with
//   the same sequence, after the client reconnects, so the log stores it
//   once and the Promise resolves with the original position. Publishes are
//   resent in the order they were first sent.
// - subscribe: the iterator remembers, per partition, the offset after the
//   last message it yielded, and a resubscription after a reconnect (to the
//   same node or another) starts exactly there: no gap, no duplicate.
// - reconnect: servers are tried in turn with a growing delay (reconnectMs
//   up to reconnectMaxMs); the client never gives up until close().
'use strict';

const PROTOCOL = 'sluice.v1.json';
const RETRY_CODES = new Set(['UNAVAILABLE', 'FENCED']);

// A server address as a WebSocket URL of /v1/ws; a token (opts.token) goes in
// access_token, since browsers cannot set headers on a WebSocket.
function wsUrl(server, token) {
  let s = String(server);
  if (!/^[a-z]+:\/\//i.test(s)) s = `ws://${s}`;
  s = s.replace(/^http(s?):\/\//i, 'ws$1://');
  const u = new URL(s);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/ws';
  if (token) u.searchParams.set('access_token', token);
  return u.toString();
}

function defaultServers() {
  if (typeof location !== 'undefined' && location.host) {
    return [`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`];
  }
  throw new Error('sluice: no server given');
}

export class SluiceError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'SluiceError';
    this.code = code;
  }
}

// An async iterator of one subscription's messages, with exact resume.
class Subscription {
  constructor(client, topic, opts) {
    this.client = client;
    this.topic = topic;
    this.from = opts.from === undefined ? 'latest' : opts.from;
    this.partitions = opts.partitions;
    this.group = opts.group;
    this.window = Math.max(1, opts.credit || 256);
    this.positions = null;   // partition -> next offset, once known
    this.queue = [];
    this.waiters = [];
    this.sub = null;         // the server's subscription id on the current connection
    this.reqId = null;
    this.granted = 0;        // credit the server holds for us
    this.closed = false;
    this.error = null;
  }

  // The subscribe op for the current connection: from the positions seen
  // once there are any, else from what the caller asked.
  request(id) {
    const m = { op: 'subscribe', id, topic: this.topic, credit: this.window };
    if (this.positions) m.from = { positions: Object.fromEntries(this.positions) };
    else m.from = this.from;
    if (this.partitions) m.partitions = this.partitions;
    if (this.group) m.group = this.group;
    this.granted = this.window;
    return m;
  }

  subscribed(m) {
    this.sub = m.sub;
    if (!this.positions && Array.isArray(m.partitions)) {
      this.positions = new Map(m.partitions.map((p) => [String(p.partition), p.next]));
    }
  }

  push(m) {
    if (this.closed) return;
    this.granted--;
    this.queue.push(m);
    this.wake();
  }

  fail(err) {
    this.error = err;
    this.closed = true;
    this.wake();
  }

  wake() {
    while (this.waiters.length && (this.queue.length || this.closed)) this.waiters.shift()();
  }

  // Give the server more credit once half the window was used up.
  refill() {
    const want = this.window - this.granted - this.queue.length;
    if (this.sub !== null && want >= this.window / 2) {
      if (this.client.send({ op: 'credit', sub: this.sub, n: want })) this.granted += want;
    }
  }

  async next() {
    for (;;) {
      if (this.queue.length) {
        const m = this.queue.shift();
        if (!this.positions) this.positions = new Map();
        this.positions.set(String(m.partition), m.offset + 1);
        this.refill();
        return { value: m, done: false };
      }
      if (this.closed) {
        if (this.error) {
          const e = this.error;
          this.error = null;
          throw e;
        }
        return { value: undefined, done: true };
      }
      await new Promise((resolve) => this.waiters.push(resolve));
    }
  }

  async return() {
    this.close();
    return { value: undefined, done: true };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.client.unsubscribe(this);
    this.wake();
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

export class Client {
  constructor(servers, opts = {}) {
    this.servers = (servers && servers.length ? servers : defaultServers()).map((s) => wsUrl(s, opts.token));
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new Error('sluice: no WebSocket implementation (pass opts.WebSocket)');
    this.reconnectMs = opts.reconnectMs || 100;
    this.reconnectMaxMs = opts.reconnectMaxMs || 5000;
    this.onState = opts.onState || (() => {});
    // A producer id of 52 random bits (exact in a JS number).
    this.producerId = opts.producerId ||
      (Math.floor(Math.random() * 2 ** 20) * 2 ** 32 + Math.floor(Math.random() * 2 ** 32)) || 1;
    this.sequences = new Map(); // "topic\0partition|*" -> last sequence used
    this.nextId = 1;
    this.pending = new Map();   // request id -> {msg, resolve, reject}, in send order
    this.subs = new Map();      // request id of the subscribe -> Subscription (current connection)
    this.bySub = new Map();     // server subscription id -> Subscription
    this.all = new Set();       // every open Subscription
    this.ws = null;
    this.open = false;
    this.closed = false;
    this.serverIndex = 0;
    this.delay = this.reconnectMs;
    this.dial();
  }

  dial() {
    if (this.closed) return;
    const url = this.servers[this.serverIndex % this.servers.length];
    this.serverIndex++;
    this.onState('connecting', url);
    let ws;
    try {
      ws = new this.WebSocket(url, PROTOCOL);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.opened(ws, url);
    ws.onmessage = (ev) => this.received(ws, ev.data);
    ws.onclose = () => this.lost(ws);
    ws.onerror = () => {};
  }

  opened(ws, url) {
    if (ws !== this.ws) return;
    this.open = true;
    this.delay = this.reconnectMs;
    this.onState('open', url);
    // Everything unanswered goes again, in the order it was first sent:
    // publishes keep their sequence, subscriptions resume where they were.
    this.subs.clear();
    this.bySub.clear();
    const again = [...this.pending.values()].sort((a, b) => a.order - b.order);
    for (const p of again) this.raw(p.msg);
    for (const s of this.all) this.startSub(s);
  }

  lost(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.open = false;
    for (const s of this.all) s.sub = null;
    if (this.closed) return;
    this.onState('reconnecting');
    this.retry();
  }

  retry() {
    const d = this.delay;
    this.delay = Math.min(this.delay * 2, this.reconnectMaxMs);
    setTimeout(() => this.dial(), d);
  }

  // Drop the current connection and dial the next server.
  reconnect() {
    const ws = this.ws;
    if (!ws) return;
    this.lost(ws);
    try {
      ws.close();
    } catch (e) { /* already closing */ }
  }

  raw(msg) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  send(msg) {
    return this.raw(msg);
  }

  received(ws, data) {
    if (ws !== this.ws || typeof data !== 'string') return;
    let m;
    try {
      m = JSON.parse(data);
    } catch (e) {
      return;
    }
    switch (m.op) {
      case 'message': {
        const s = this.bySub.get(m.sub);
        if (s) s.push(m);
        return;
      }
      case 'subscribed': {
        const s = this.subs.get(m.id);
        if (s) {
          s.subscribed(m);
          this.bySub.set(m.sub, s);
        }
        return;
      }
      case 'ack':
      case 'ok': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.resolve(m);
        return;
      }
      case 'end':
      case 'error': {
        if (m.sub !== undefined && m.sub !== null && this.bySub.has(m.sub)) {
          const s = this.bySub.get(m.sub);
          this.bySub.delete(m.sub);
          this.all.delete(s);
          s.fail(new SluiceError(m.code, m.message));
          return;
        }
        const s = this.subs.get(m.id);
        if (s) {
          this.subs.delete(m.id);
          if (RETRY_CODES.has(m.code)) {
            this.reconnect();
          } else {
            this.all.delete(s);
            s.fail(new SluiceError(m.code, m.message));
          }
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        if (RETRY_CODES.has(m.code)) {
          // maybe stored, maybe not: the same bytes again after a reconnect
          // are stored once (producer id and sequence)
          this.reconnect();
          return;
        }
        this.pending.delete(m.id);
        p.reject(new SluiceError(m.code, m.message));
        return;
      }
      default:
    }
  }

  request(msg) {
    const id = this.nextId++;
    msg.id = id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { msg, resolve, reject, order: id });
      this.raw(msg);
    });
  }

  // Publish one message; resolves with {topic, partition, offset, duplicate}
  // once it is committed on a majority. payload: a string (sent as UTF-8)
  // or a Uint8Array (sent as base64).
  publish(topic, payload, opts = {}) {
    if (this.closed) return Promise.reject(new Error('sluice: client closed'));
    const space = `${topic}\0${opts.partition === undefined ? '*' : opts.partition}`;
    const sequence = (this.sequences.get(space) || 0) + 1;
    this.sequences.set(space, sequence);
    const msg = { op: 'publish', topic, producer_id: this.producerId, sequence };
    if (payload instanceof Uint8Array) {
      msg.payload = toBase64(payload);
      msg.payload_encoding = 'base64';
    } else {
      msg.payload = String(payload);
    }
    if (opts.key !== undefined && opts.key !== null) msg.key = String(opts.key);
    if (opts.headers) msg.headers = opts.headers;
    if (opts.partition !== undefined) msg.partition = opts.partition;
    return this.request(msg);
  }

  // Commit a group's offsets: offsets is {partition: nextOffset, ...}.
  commit(group, topic, offsets) {
    const list = Object.entries(offsets).map(([p, o]) => ({ partition: Number(p), offset: o }));
    return this.request({ op: 'commit', group, topic, offsets: list });
  }

  // An async iterator of messages: {topic, partition, offset, timestamp,
  // key, headers, payload}; a payload that is not UTF-8 comes as base64 with
  // payload_encoding: 'base64' (fromBase64 turns it into a Uint8Array). from: 'earliest', 'latest', an
  // offset, {time: unixMs} or {positions: {partition: next}}.
  subscribe(topic, opts = {}) {
    const s = new Subscription(this, topic, opts);
    this.all.add(s);
    this.startSub(s);
    return s;
  }

  startSub(s) {
    const id = this.nextId++;
    s.reqId = id;
    this.subs.set(id, s);
    this.raw(s.request(id));
  }

  unsubscribe(s) {
    this.all.delete(s);
    this.subs.delete(s.reqId);
    if (s.sub !== null) {
      this.bySub.delete(s.sub);
      this.raw({ op: 'unsubscribe', id: this.nextId++, sub: s.sub });
    }
  }

  close() {
    this.closed = true;
    for (const s of this.all) s.fail(null);
    this.all.clear();
    for (const p of this.pending.values()) p.reject(new Error('sluice: client closed'));
    this.pending.clear();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}

function toBase64(u8) {
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

export function connect(servers, opts) {
  return new Client(servers, opts);
}
