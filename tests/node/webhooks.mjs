// Webhooks end to end (broker/http/webhook, POST /v1/webhooks): real sluiced
// nodes deliver to node HTTP servers on 127.0.0.1, and npm standardwebhooks
// 1.1.1 (the Standard Webhooks reference library) verifies every request
// each receiver gets; one request that does not verify fails the test.
//
// On one node: (1) 200 keyed messages over 2 partitions arrive once each, in
// each partition's offset order, and the webhook's counters add up;
// (2) 500, a timeout and 429 + Retry-After are retried with the same id and
// growing attempt, spaced by the schedule, holding back the partition, and
// a message that keeps failing goes to <topic>.dlq with its sluice-dlq-*
// headers while delivery goes on; (3) 410 pauses the webhook until resume;
// (4) a receiver that goes away and comes back on its port loses nothing;
// (5) rotate-secret signs with both secrets (and a given secret cannot
// change other settings), replay delivers from offset 0.
// On three nodes: (6) kill -9 of the delivering leader in the middle of a
// stream published through a follower: everything arrives, first deliveries
// in order, few duplicates, lag 0 at the end.
// Usage: node webhooks.mjs PATH/TO/sluiced
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { createTopic, leaderIndex, sleep, startCluster, startNode, until } from './cluster.mjs';

const sluiced = process.argv[2];
if (!sluiced) throw new Error('usage: node webhooks.mjs PATH/TO/sluiced');
const ALLOW = ['--webhook-allow-private', 'true'];
const T0 = Date.now();
const took = () => `${((Date.now() - T0) / 1000).toFixed(1)} s`;
const refused = []; // requests that standardwebhooks refused, over every receiver

// ---------- a receiver ----------

// An HTTP server that verifies and records every request, then answers
// what .answer(rec) says: {status, headers, delayMs} or {hang: true} (no
// answer).
class Receiver {
  constructor(secret, answer = () => ({ status: 200 })) {
    this.secrets = [secret]; // each one must verify every request
    this.answer = answer;
    this.got = [];
  }

  async listen(port = 0) {
    this.server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.onRequest(req, res, Buffer.concat(chunks)));
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}/hook`;
    return this;
  }

  onRequest(req, res, body) {
    const h = req.headers;
    const rec = { at: Date.now(), id: h['webhook-id'], attempt: Number(h['sluice-attempt']),
      topic: h['sluice-topic'], partition: Number(h['sluice-partition']), offset: Number(h['sluice-offset']),
      sigs: (h['webhook-signature'] || '').split(' '), headers: h, body };
    try {
      for (const s of this.secrets) rec.payload = new Webhook(s).verify(body, h);
      assert.equal(req.method, 'POST');
      assert.equal(rec.payload.type, rec.topic);
    } catch (e) {
      refused.push(`${rec.topic}/${rec.partition}/${rec.offset} attempt ${rec.attempt}: ${e.message}`);
      res.writeHead(400);
      res.end();
      return;
    }
    this.got.push(rec);
    const a = this.answer(rec);
    rec.status = a.hang ? 0 : a.status;
    if (a.hang) return; // the node's timeout closes it
    const reply = () => {
      res.writeHead(a.status, a.headers || {});
      res.end();
    };
    if (a.delayMs) setTimeout(reply, a.delayMs);
    else reply();
  }

  // every request of (partition, offset)
  at(p, o) { return this.got.filter((r) => r.partition === p && r.offset === o); }

  async close() {
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
}

// ---------- HTTP API ----------

async function api(base, method, path, body) {
  const init = { method, signal: AbortSignal.timeout(10000) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  const r = await fetch(base + path, init);
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null, text };
}

async function createWebhook(base, spec) {
  const r = await api(base, 'POST', '/v1/webhooks', spec);
  assert.equal(r.status, 201, `create webhook: ${r.text}`);
  assert.equal(r.json.name, spec.name);
  assert.match(r.json.secret, /^whsec_/);
  return r.json.secret;
}

async function describe(base, name) {
  const r = await api(base, 'GET', `/v1/webhooks/${name}`);
  assert.equal(r.status, 200, `describe ${name}: ${r.text}`);
  return r.json;
}

async function deleteWebhook(base, name) {
  const r = await api(base, 'DELETE', `/v1/webhooks/${name}`);
  assert.equal(r.status, 204, `delete ${name}: ${r.text}`);
}

// Publish a JSON payload; the answer names its partition and offset.
async function publish(base, topic, payload, { key, partition, idem } = {}) {
  const q = new URLSearchParams();
  if (key !== undefined) q.set('key', key);
  if (partition !== undefined) q.set('partition', String(partition));
  const headers = { 'Content-Type': 'application/json' };
  if (idem) headers['Idempotency-Key'] = idem;
  const r = await fetch(`${base}/v1/topics/${topic}/messages?${q}`, { method: 'POST', headers,
    body: JSON.stringify(payload), signal: AbortSignal.timeout(10000) });
  const text = await r.text();
  if (r.status !== 201) throw new Error(`publish to ${topic}: ${r.status} ${text}`);
  return JSON.parse(text);
}

// fn over 0..n-1, `width` at a time
async function pool(n, width, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

// The first delivery of each position, in arrival order, per partition:
// offsets must run from..from+n-1 with no gap.
function assertInOrder(recs, partition, from, n, what) {
  const seen = new Set(), offs = [];
  for (const r of recs) {
    if (r.partition !== partition || seen.has(r.offset)) continue;
    seen.add(r.offset);
    offs.push(r.offset);
  }
  assert.deepEqual(offs, Array.from({ length: n }, (_, i) => from + i), `${what}: partition ${partition} order`);
}

const sum = (parts, f) => parts.reduce((a, p) => a + p[f], 0);

// ---------- 1. one node: 200 messages, each once, in order ----------

async function caseBasic(base) {
  const rx = await new Receiver(null).listen();
  try {
    await createTopic({ bases: [base] }, 'orders', 2);
    const acks = [];
    await pool(200, 8, async (i) => {
      acks[i] = await publish(base, 'orders', { i, note: `order ${i}` }, { key: `customer-${i % 13}` });
    });
    rx.secrets = [await createWebhook(base, { name: 'basic', topic: 'orders', url: rx.url, from: 'earliest' })];
    const count = [0, 0];
    for (const a of acks) count[a.partition]++;
    assert.ok(count[0] > 0 && count[1] > 0, `keys spread over both partitions: ${count}`);
    await until('200 deliveries', () => rx.got.length >= 200, 60000);
    await until('lag 0', async () => {
      const d = await describe(base, 'basic');
      return sum(d.partitions, 'delivered') === 200 && d.partitions.every((p) => p.lag === 0 && p.in_flight === 0);
    }, 30000);
    await sleep(500); // a duplicate would come now
    assert.equal(rx.got.length, 200, 'each message exactly once');
    for (let i = 0; i < 200; i++) {
      const a = acks[i], got = rx.at(a.partition, a.offset);
      assert.equal(got.length, 1, `message ${i} at ${a.partition}/${a.offset}`);
      const r = got[0];
      assert.deepEqual(r.payload.data, { i, note: `order ${i}` });
      assert.equal(r.payload.key, `customer-${i % 13}`);
      assert.equal(r.payload.type, 'orders');
      assert.equal(r.attempt, 1);
      assert.match(r.id, /^msg_[0-9a-f]{32}$/);
    }
    assert.equal(new Set(rx.got.map((r) => r.id)).size, 200, 'one id per message');
    for (const p of [0, 1]) assertInOrder(rx.got, p, 0, count[p], 'basic');
    const d = await describe(base, 'basic');
    assert.equal(d.ordered, true);
    assert.deepEqual(d.partitions.map((p) => p.delivered), count);
    assert.deepEqual(d.partitions.map((p) => p.end_offset), count);
    assert.equal(sum(d.partitions, 'attempts'), 200);
    assert.equal(sum(d.partitions, 'retries'), 0);
    assert.equal(sum(d.partitions, 'dead_lettered'), 0);
    await deleteWebhook(base, 'basic');
    return `200 messages (${count.join('+')}) once each, in order`;
  } finally {
    await rx.close();
  }
}

// ---------- 2. retries: 500, timeout, 429, dead letter ----------

async function caseRetries(base) {
  const TIMEOUT_MS = 1000;
  const script = { // what the receiver answers at each attempt of a message
    fail2: [{ status: 500 }, { status: 500 }, { status: 200 }],
    hang: [{ hang: true }, { status: 200 }],
    busy: [{ status: 429, headers: { 'Retry-After': '1' } }, { status: 204 }],
    dead: [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }],
    after: [{ status: 200 }],
  };
  const kinds = Object.keys(script);
  const rx = await new Receiver(null, (r) => script[r.payload.data.kind][r.attempt - 1] || { status: 599 }).listen();
  try {
    await createTopic({ bases: [base] }, 'retry', 1);
    rx.secrets = [await createWebhook(base, { name: 'retry', topic: 'retry', url: rx.url, from: 'latest',
      schedule_ms: [0, 300, 300, 300], timeout_ms: TIMEOUT_MS })];
    const off = {};
    for (const kind of kinds) off[kind] = (await publish(base, 'retry', { kind }, { partition: 0 })).offset;
    await until('the last message delivered', () => rx.at(0, off.after).length > 0, 60000);
    await sleep(500);

    const byKind = Object.fromEntries(kinds.map((k) => [k, rx.at(0, off[k])]));
    for (const k of kinds) {
      const g = byKind[k];
      assert.deepEqual(g.map((r) => r.attempt), script[k].map((_, i) => i + 1), `${k}: attempts`);
      assert.equal(new Set(g.map((r) => r.id)).size, 1, `${k}: one webhook-id for every attempt`);
      g.forEach((r) => assert.deepEqual(r.payload.data, { kind: k }));
    }
    const gaps = (k) => byKind[k].slice(1).map((r, i) => r.at - byKind[k][i].at);
    // schedule 300 ms +-20 %: at least 240 ms between attempts
    for (const g of gaps('fail2')) assert.ok(g >= 230 && g < 20000, `fail2: ${g} ms between attempts`);
    for (const g of gaps('dead')) assert.ok(g >= 230 && g < 20000, `dead: ${g} ms between attempts`);
    // the timeout, then the schedule's delay
    assert.ok(gaps('hang')[0] >= TIMEOUT_MS, `hang: retried after ${gaps('hang')[0]} ms`);
    // Retry-After: 1 wins over the schedule (no jitter)
    assert.ok(gaps('busy')[0] >= 900, `429: retried after ${gaps('busy')[0]} ms`);
    // ordered: each message comes only once the one before it is done
    for (let i = 1; i < kinds.length; i++) {
      const prev = byKind[kinds[i - 1]], cur = byKind[kinds[i]];
      assert.ok(cur[0].at >= prev[prev.length - 1].at, `${kinds[i]} came before ${kinds[i - 1]} was done`);
    }
    assert.equal(rx.got.length, kinds.reduce((a, k) => a + script[k].length, 0), 'no other request');

    // the message that kept failing is in retry.dlq, with where it came from
    const dlq = await until('the dead letter', async () => {
      const r = await api(base, 'GET', '/v1/topics/retry.dlq/messages?partition=0&from=earliest');
      return r.status === 200 && r.json.messages.length > 0 && r.json.messages;
    }, 20000);
    assert.equal(dlq.length, 1);
    const h = dlq[0].headers;
    assert.equal(h['sluice-dlq-topic'], 'retry');
    assert.equal(h['sluice-dlq-partition'], '0');
    assert.equal(h['sluice-dlq-offset'], String(off.dead));
    assert.equal(h['sluice-dlq-deliveries'], '4');
    assert.equal(h['sluice-dlq-error'], 'HTTP 500');
    assert.deepEqual(JSON.parse(dlq[0].payload), { kind: 'dead' });

    const d = await until('counters settled', async () => {
      const x = await describe(base, 'retry');
      return x.partitions[0].lag === 0 && x.partitions[0].in_flight === 0 && x;
    }, 20000);
    const p = d.partitions[0];
    assert.equal(d.max_attempts, 4);
    assert.deepEqual(d.schedule_ms, [0, 300, 300, 300]);
    assert.equal(d.dead_letter_topic, 'retry.dlq');
    assert.equal(p.delivered, 4, 'fail2, hang, busy, after');
    assert.equal(p.dead_lettered, 1);
    assert.equal(p.attempts, rx.got.length);
    assert.equal(p.retries, rx.got.length - kinds.length);
    await deleteWebhook(base, 'retry');
    return `gaps fail2 ${gaps('fail2').join('/')} ms, timeout ${gaps('hang')[0]} ms, 429 ${gaps('busy')[0]} ms`;
  } finally {
    await rx.close();
  }
}

// ---------- 3. 410 pauses the webhook ----------

async function caseGone(base) {
  let gone = true;
  const rx = await new Receiver(null, (r) =>
    (r.payload.data.n === 1 && gone ? { status: 410 } : { status: 200 })).listen();
  try {
    await createTopic({ bases: [base] }, 'gone', 1);
    rx.secrets = [await createWebhook(base, { name: 'gone', topic: 'gone', url: rx.url, from: 'earliest',
      schedule_ms: [0, 300, 300, 300, 300, 300] })];
    for (const n of [0, 1]) await publish(base, 'gone', { n });
    const d = await until('paused by the 410', async () => {
      const x = await describe(base, 'gone');
      return x.paused === true && x;
    }, 30000);
    assert.match(d.disabled_reason, /410/);
    gone = false;
    for (const n of [2, 3]) await publish(base, 'gone', { n });
    const before = rx.got.length;
    assert.deepEqual(rx.got.map((r) => [r.offset, r.status]), [[0, 200], [1, 410]]);
    await sleep(2500); // several schedule delays, and ticks that reread the settings
    assert.equal(rx.got.length, before, 'nothing is POSTed while paused');
    const r = await api(base, 'POST', '/v1/webhooks/gone/resume');
    assert.equal(r.status, 200, r.text);
    await until('delivery resumed', () => rx.at(0, 3).length > 0, 30000);
    const again = rx.at(0, 1);
    assert.equal(again.length, 2);
    assert.ok(again[1].attempt > 1, `the 410'd message comes again (attempt ${again[1].attempt})`);
    assert.equal(again[1].id, again[0].id);
    assertInOrder(rx.got, 0, 0, 4, 'gone');
    assert.deepEqual(rx.got.slice(before).map((x) => x.payload.data.n), [1, 2, 3]);
    const after = await describe(base, 'gone');
    assert.equal(after.paused, false);
    assert.ok(!after.disabled_reason, `disabled_reason after resume: ${after.disabled_reason}`);
    await deleteWebhook(base, 'gone');
    return `reason "${d.disabled_reason}"`;
  } finally {
    await rx.close();
  }
}

// ---------- 4. the receiver goes away and comes back ----------

async function caseDown(base) {
  const rx = await new Receiver(null).listen();
  try {
    await createTopic({ bases: [base] }, 'down', 2);
    rx.secrets = [await createWebhook(base, { name: 'down', topic: 'down', url: rx.url, from: 'earliest',
      schedule_ms: [0, 200, 400, 800, 1000], max_attempts: 1000 })];
    const acks = [];
    await pool(20, 4, async (i) => { acks[i] = await publish(base, 'down', { i }, { key: `k${i}` }); });
    await until('the first 20 delivered and acknowledged', async () => {
      const x = await describe(base, 'down');
      return sum(x.partitions, 'delivered') === 20 && x.partitions.every((p) => p.in_flight === 0);
    }, 30000);
    assert.equal(rx.got.length, 20);
    await rx.close();
    await pool(30, 4, async (j) => { acks[20 + j] = await publish(base, 'down', { i: 20 + j }, { key: `k${20 + j}` }); });
    const d = await until('failures seen while down', async () => {
      const x = await describe(base, 'down');
      return sum(x.partitions, 'retries') >= 2 && x;
    }, 30000);
    const errors = d.partitions.map((p) => p.last_error).filter(Boolean);
    assert.ok(errors.some((e) => /refused|connect/i.test(e)), `last_error: ${errors}`);
    await sleep(1000);
    assert.equal(rx.got.length, 20);
    await rx.listen(rx.port); // back on the same port
    await until('all 50 delivered', () => acks.every((a) => rx.at(a.partition, a.offset).length > 0), 60000);
    await sleep(300);
    for (let i = 0; i < 50; i++) {
      const a = acks[i], g = rx.at(a.partition, a.offset);
      assert.equal(g.length, 1, `message ${i} once`);
      assert.deepEqual(g[0].payload.data, { i });
    }
    for (const p of [0, 1]) assertInOrder(rx.got, p, 0, acks.filter((a) => a.partition === p).length, 'down');
    const late = rx.got.slice(20);
    assert.ok(late.some((r) => r.attempt > 1), 'the first message after the outage was retried');
    const x = await describe(base, 'down');
    assert.equal(sum(x.partitions, 'dead_lettered'), 0);
    assert.equal(sum(x.partitions, 'delivered'), 50);
    assert.ok(x.partitions.every((p) => p.lag === 0));
    await deleteWebhook(base, 'down');
    return `${sum(x.partitions, 'retries')} retries over the outage`;
  } finally {
    await rx.close();
  }
}

// ---------- 5. rotate-secret, replay ----------

async function caseRotateReplay(base) {
  const rx = await new Receiver(null).listen();
  try {
    await createTopic({ bases: [base] }, 'rot', 2);
    const old = await createWebhook(base, { name: 'rot', topic: 'rot', url: rx.url, from: 'earliest' });
    rx.secrets = [old];
    const acks = [];
    for (let i = 0; i < 10; i++) acks.push(await publish(base, 'rot', { i }, { key: `k${i}` }));
    await until('10 delivered', () => rx.got.length >= 10, 30000);
    assert.ok(rx.got.every((r) => r.sigs.length === 1));

    // a given secret is one JSON string, not a way to change other settings
    const sneaky = 'whsec_' + randomBytes(32).toString('base64') + '","url":"http://127.0.0.1:9/elsewhere';
    const bad = await api(base, 'POST', '/v1/webhooks/rot/rotate-secret', { secret: sneaky });
    assert.equal(bad.status, 400, `rotate-secret with a quote in the secret: ${bad.text}`);
    const kept = await describe(base, 'rot');
    assert.equal(kept.url, rx.url);
    assert.equal(kept.secrets, 1);

    const r = await api(base, 'POST', '/v1/webhooks/rot/rotate-secret');
    assert.equal(r.status, 200, r.text);
    const fresh = r.json.secret;
    assert.match(fresh, /^whsec_/);
    assert.notEqual(fresh, old);
    assert.equal((await describe(base, 'rot')).secrets, 2);
    // The delivering frontend rereads its settings each 500 ms: publish
    // probes (verified with the old secret) until one is signed twice.
    let probes = 0;
    await until('a delivery signed with both secrets', async () => {
      acks.push(await publish(base, 'rot', { probe: probes++ }, { key: 'probe' }));
      await sleep(200);
      return rx.got.some((x) => x.sigs.length === 2);
    }, 30000);
    await until('the probes delivered', () => rx.got.length >= acks.length, 30000);
    rx.secrets = [fresh, old]; // from now on each must verify every request
    const mark = rx.got.length;
    for (let i = 10; i < 20; i++) acks.push(await publish(base, 'rot', { i }, { key: `k${i}` }));
    await until('the rest delivered', () => rx.got.length >= acks.length, 30000);
    const stranger = 'whsec_' + randomBytes(32).toString('base64');
    for (const x of rx.got.slice(mark)) {
      assert.equal(x.sigs.length, 2, 'two signatures after the rotation');
      assert.equal(new Webhook(fresh).verify(x.body, x.headers).type, 'rot');
      assert.equal(new Webhook(old).verify(x.body, x.headers).type, 'rot');
      assert.throws(() => new Webhook(stranger).verify(x.body, x.headers), /No matching signature/);
    }

    const ends = [0, 1].map((p) => acks.filter((a) => a.partition === p).length);
    await until('everything acknowledged', async () => {
      const x = await describe(base, 'rot');
      return sum(x.partitions, 'delivered') === acks.length && x.partitions.every((p) => p.in_flight === 0);
    }, 30000);
    const first = rx.got.length;
    const rp = await api(base, 'POST', '/v1/webhooks/rot/replay', { from: 'earliest' });
    assert.equal(rp.status, 200, rp.text);
    await until('everything again', () => rx.got.length >= first + acks.length, 30000);
    await sleep(300);
    const replayed = rx.got.slice(first);
    assert.equal(replayed.length, acks.length, 'each message once more');
    for (const p of [0, 1]) assertInOrder(replayed, p, 0, ends[p], 'replay');
    for (const x of replayed) {
      const orig = rx.got.slice(0, first).find((o) => o.partition === x.partition && o.offset === x.offset);
      assert.equal(x.id, orig.id, 'a replayed message keeps its webhook-id');
      assert.deepEqual(x.payload.data, orig.payload.data);
      assert.equal(x.sigs.length, 2);
    }
    await deleteWebhook(base, 'rot');
    return `${probes} probe(s) before both signatures, ${replayed.length} replayed`;
  } finally {
    await rx.close();
  }
}

// ---------- 6. three nodes, kill -9 of the delivering leader ----------

async function caseFailover() {
  const N = 300, P = 2;
  const c = await startCluster(sluiced, { args: ALLOW });
  // A slowish endpoint, so that messages queue up; the leader dies as a
  // request arrives, before its answer: that message is in flight.
  let kill = null, killedAt = 0, killRec = null, deliveredAtKill = 0, published = 0;
  const rx = await new Receiver(null, (r) => {
    if (kill && !killedAt) {
      kill();
      killedAt = Date.now();
      killRec = r;
    }
    return { status: 200, delayMs: 25 };
  }).listen();
  try {
    await createTopic(c, 'stream', P);
    let via = ((await leaderIndex(c)) + 1) % 3; // a follower: webhook, publishes, describe
    rx.secrets = [await until('webhook created', async () => {
      const r = await api(c.bases[via], 'POST', '/v1/webhooks', { name: 'stream', topic: 'stream', url: rx.url,
        from: 'earliest', timeout_ms: 1000, schedule_ms: [0, 200, 500, 1000], max_attempts: 50 });
      return r.status === 201 && r.json.secret;
    }, 30000)];
    const acks = new Array(N);
    const publishing = pool(N, 2, async (i) => {
      acks[i] = await until(`publish ${i}`, () =>
        publish(c.bases[via], 'stream', { i }, { key: `k${i}`, idem: `stream-${i}` }), 60000);
      await sleep(20);
    });
    await until('a third delivered', () => rx.got.length >= N / 3, 60000);
    const leader = await leaderIndex(c, via); // the delivering node
    if (leader === via) via = (leader + 1) % 3; // (leadership moved: publish elsewhere)
    kill = () => {
      c.procs[leader].kill('SIGKILL');
      deliveredAtKill = rx.got.length;
      published = acks.filter(Boolean).length;
    };
    await until('the kill', () => killedAt, 30000);
    await publishing;
    const keys = new Set(acks.map((a) => `${a.partition}/${a.offset}`));
    assert.equal(keys.size, N, 'each publish at its own position');
    await until(`all ${N} delivered`, () => acks.every((a) => rx.at(a.partition, a.offset).length > 0), 120000);
    const allAt = Date.now();
    const d = await until('lag 0 on a surviving node', async () => {
      const x = await describe(c.bases[via], 'stream');
      return x.partitions.every((p) => p.lag === 0 && p.in_flight === 0) && x;
    }, 60000);
    await sleep(500);

    for (let i = 0; i < N; i++) {
      const a = acks[i], g = rx.at(a.partition, a.offset);
      g.forEach((r) => assert.deepEqual(r.payload.data, { i }));
    }
    const ends = [0, 1].map((p) => acks.filter((a) => a.partition === p).length);
    for (let p = 0; p < P; p++) assertInOrder(rx.got, p, 0, ends[p], 'failover');
    const dups = rx.got.length - N;
    assert.ok(dups >= 1 && dups <= 2 * P, `${dups} duplicate deliveries`);
    for (const r of rx.got) {
      const g = rx.at(r.partition, r.offset);
      if (g.length < 2) continue;
      // (a request the node sent as it died may arrive just after the kill)
      assert.ok(g[0].at <= killedAt + 500, `${r.partition}/${r.offset} was first delivered before the kill`);
      assert.ok(g.slice(1).every((x) => x.attempt > g[0].attempt && x.id === g[0].id),
        `${r.partition}/${r.offset}: a redelivery has a higher attempt and the same id`);
    }
    const again = rx.at(killRec.partition, killRec.offset);
    assert.ok(again.length >= 2 && again[1].attempt > 1, 'the message in flight at the kill comes again');
    const resumed = rx.got.find((r) => r.at > killedAt + 100);
    assert.ok(resumed, 'delivery after the kill');
    // what was in flight comes back after its ack timeout (timeout_ms + 15 s)
    assert.ok(resumed.at - killedAt < 45000, `delivery resumed ${resumed.at - killedAt} ms after the kill`);
    assert.equal(sum(d.partitions, 'delivered'), N);
    const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
    return `${published} published, ${deliveredAtKill} delivered at the kill of node ${leader + 1}; ` +
      `first delivery ${s(resumed.at - killedAt)} after, the one in flight again after ` +
      `${s(again[1].at - killedAt)}, all in ${s(allAt - killedAt)}; ${dups} duplicate(s)`;
  } catch (e) {
    c.dumpLogs();
    throw e;
  } finally {
    await rx.close();
    c.cleanup();
  }
}

// ---------- main ----------

const watchdog = setTimeout(() => { console.error(`webhooks: timed out after ${took()}`); process.exit(1); }, 280000);
let node = null;
try {
  node = await startNode(sluiced, { args: ALLOW });
  for (const [name, fn] of [['1 basic', caseBasic], ['2 retries', caseRetries], ['3 gone', caseGone],
    ['4 down', caseDown], ['5 rotate+replay', caseRotateReplay]]) {
    const msg = await fn(node.base);
    assert.deepEqual(refused, [], 'every request verifies');
    console.log(`webhooks: case ${name}: ok (${msg}) [${took()}]`);
  }
  node.cleanup();
  node = null;
  const msg = await caseFailover();
  assert.deepEqual(refused, [], 'every request verifies');
  console.log(`webhooks: case 6 failover: ok (${msg}) [${took()}]`);
  clearTimeout(watchdog);
  console.log(`webhooks: ok in ${took()}`);
  process.exit(0);
} catch (e) {
  console.error('webhooks: FAIL:', e && e.stack ? e.stack : e);
  if (node) { node.dumpLogs(); node.cleanup(); }
  process.exit(1);
}
