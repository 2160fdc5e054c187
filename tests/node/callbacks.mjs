// Commit callbacks of 202 publishes (POST .../messages with Prefer:
// respond-async and a callback URL, docs/webhooks.md#callbacks): real
// sluiced nodes call node HTTP servers on 127.0.0.1, and npm
// standardwebhooks 1.1.1 verifies every request once the test knows the
// secret.
//
// On one node: (1) the first callback makes the webhook sluice.callbacks
// itself; its body is the operation as GET /v1/operations/{id} answers it
// (same id, partition, offset); a secret set with rotate-secret signs the
// next ones; an NDJSON batch reports its count and first offset; a bad
// callback URL is refused with 400 and nothing is stored; (2) an endpoint
// that answers 500 is called again with the same webhook-id and a higher
// attempt; one that answers 410 gets no more calls for that operation and
// the others go on (the webhook is not paused).
// On three nodes: (3) the webhook made beforehand with a known secret;
// async publishes through a follower while the leader is killed with -9:
// every operation that polls committed gets a callback that agrees with the
// poll (at least once), and no callback reports a position the poll does
// not.
// Usage: node callbacks.mjs PATH/TO/sluiced
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { createTopic, leaderIndex, sleep, startCluster, startNode, until } from './cluster.mjs';

const sluiced = process.argv[2];
if (!sluiced) throw new Error('usage: node callbacks.mjs PATH/TO/sluiced');
const ALLOW = ['--webhook-allow-private', 'true'];
const T0 = Date.now();
const took = () => `${((Date.now() - T0) / 1000).toFixed(1)} s`;
const refused = [];

// Records every request; verifies it with each secret in .secrets (none: not
// yet known); answers what .answer(rec) says.
class Receiver {
  constructor(answer = () => 200) {
    this.secrets = [];
    this.answer = answer;
    this.got = [];
  }

  async listen() {
    this.server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.onRequest(req, res, Buffer.concat(chunks)));
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return this;
  }

  url(path) { return `http://127.0.0.1:${this.port}${path}`; }

  onRequest(req, res, body) {
    const h = req.headers;
    const rec = { at: Date.now(), path: req.url, id: h['webhook-id'], attempt: Number(h['sluice-attempt']),
      body: JSON.parse(body.toString()), verified: false };
    try {
      for (const s of this.secrets) {
        new Webhook(s).verify(body, h);
        rec.verified = true;
      }
    } catch (e) {
      refused.push(`${req.url} attempt ${rec.attempt}: ${e.message}`);
      res.writeHead(400);
      res.end();
      return;
    }
    this.got.push(rec);
    res.writeHead(this.answer(rec));
    res.end();
  }

  // the calls for operation id
  of(id) { return this.got.filter((r) => r.body.data.id === id); }

  async close() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

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

// An asynchronous publish with a callback: the 202's operation.
async function publishAsync(base, topic, body, callback, { ndjson = false, header = false } = {}) {
  const headers = { 'Content-Type': ndjson ? 'application/x-ndjson' : 'application/json',
    Prefer: 'respond-async' };
  let q = '';
  if (header) headers['Sluice-Callback'] = callback;
  else q = `?callback=${encodeURIComponent(callback)}`;
  const r = await fetch(`${base}/v1/topics/${topic}/messages${q}`, { method: 'POST', headers, body,
    signal: AbortSignal.timeout(10000) });
  const text = await r.text();
  if (r.status !== 202) throw new Error(`publish: ${r.status} ${text}`);
  const op = JSON.parse(text);
  assert.equal(r.headers.get('location'), `/v1/operations/${op.id}`);
  assert.equal(op.status, 'pending');
  return op;
}

async function poll(base, id) {
  const r = await api(base, 'GET', `/v1/operations/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

// The callback must say what the poll says.
function assertAgrees(call, polled, what) {
  const d = call.body.data;
  assert.equal(call.body.type, `operation.${polled.status}`, what);
  assert.equal(call.body.key, polled.id, what);
  for (const k of ['id', 'status', 'topic', 'partition', 'offset', 'count', 'created'])
    assert.deepEqual(d[k], polled[k], `${what}: ${k}`);
  assert.equal(d.error, null, what);
}

// ---------- 1. one node: made on first use, the body, rotate-secret, batches, refusals ----------

async function caseBasic(base) {
  const rx = await new Receiver().listen();
  try {
    await createTopic({ bases: [base] }, 'orders', 2);
    const op = await publishAsync(base, 'orders', JSON.stringify({ order: 1 }), rx.url('/done?order=1'));
    const [call] = await until('the first callback', () => rx.of(op.id).length && rx.of(op.id), 20000);
    assert.equal(call.path, '/done?order=1');
    assert.equal(call.attempt, 1);
    assert.match(call.id, /^msg_[0-9a-f]{32}$/);
    const polled = await poll(base, op.id);
    assert.equal(polled.status, 'committed');
    assertAgrees(call, polled, 'first');
    assert.equal(call.body.data.count, 1);

    // the webhook it made: a shared callback webhook; a known secret from now on
    const d = await api(base, 'GET', '/v1/webhooks/sluice.callbacks');
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.topic, 'sluice.callbacks');
    assert.equal(d.json.callback, true);
    assert.equal(d.json.url, undefined);
    assert.equal(d.json.ordered, false);
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const rot = await api(base, 'POST', '/v1/webhooks/sluice.callbacks/rotate-secret', { secret });
    assert.equal(rot.status, 200, rot.text);
    rx.secrets = [secret];
    await sleep(1000); // the deliverer rescans settings every 500 ms

    // a batch of 3, the callback in a header
    const lines = [1, 2, 3].map((i) => JSON.stringify({ key: `k${i}`, payload: { line: i } })).join('\n');
    const bop = await publishAsync(base, 'orders', lines, rx.url('/batch'), { ndjson: true, header: true });
    const [bcall] = await until('the batch callback', () => rx.of(bop.id).length && rx.of(bop.id), 20000);
    assert.ok(bcall.verified, 'signed with the secret set by rotate-secret');
    assert.equal(bcall.body.data.count, 3);
    assertAgrees(bcall, await poll(base, bop.id), 'batch');
    const read = await api(base, 'GET',
      `/v1/topics/orders/messages?partition=${bcall.body.data.partition}&from=${bcall.body.data.offset}&max=3`);
    assert.equal(read.status, 200, read.text);
    const payloads = read.json.messages.map((m) => (typeof m.payload === 'string' ? JSON.parse(m.payload) : m.payload));
    assert.deepEqual(payloads, [1, 2, 3].map((i) => ({ line: i })));

    // refusals: nothing stored, no callback
    const before = (await api(base, 'GET', '/v1/topics/orders')).json;
    for (const bad of ['ftp://127.0.0.1/x', 'http://user:pw@127.0.0.1/', 'not a url']) {
      const r = await fetch(`${base}/v1/topics/orders/messages?callback=${encodeURIComponent(bad)}`,
        { method: 'POST', body: 'x', headers: { Prefer: 'respond-async' } });
      const t = await r.text();
      assert.equal(r.status, 400, `${bad}: ${t}`);
      assert.match(JSON.parse(t).detail, /callback/);
    }
    const after = (await api(base, 'GET', '/v1/topics/orders')).json;
    assert.deepEqual(after.partition_offsets, before.partition_offsets, 'a refused publish is not stored');
    return `callback ${call.at - op.created} ms after the 202`;
  } finally {
    await rx.close();
  }
}

// ---------- 2. one node: 500 retried, 410 gives up on that operation only ----------

async function caseFailures(base) {
  const seen = new Map();
  const rx = await new Receiver((r) => {
    const n = (seen.get(r.path) || 0) + 1;
    seen.set(r.path, n);
    if (r.path === '/flaky') return n === 1 ? 500 : 200;
    if (r.path === '/gone') return 410;
    return 200;
  }).listen();
  try {
    rx.secrets = [await rotate(base)];
    const flaky = await publishAsync(base, 'orders', '"flaky"', rx.url('/flaky'));
    const gone = await publishAsync(base, 'orders', '"gone"', rx.url('/gone'));
    const fine = await publishAsync(base, 'orders', '"fine"', rx.url('/fine'));
    await until('the fine one', () => rx.of(fine.id).length, 20000);
    const calls = await until('the flaky one twice', () => rx.of(flaky.id).length >= 2 && rx.of(flaky.id), 20000);
    assert.equal(calls[0].id, calls[1].id, 'a retry keeps its webhook-id');
    assert.deepEqual(calls.map((c) => c.attempt), [1, 2]);
    // the schedule's second step is 5 s, with +-20 % jitter
    const gap = calls[1].at - calls[0].at;
    assert.ok(gap >= 3500 && gap <= 7500, `retried after ${gap} ms`);
    await sleep(1500);
    assert.equal(rx.of(gone.id).length, 1, '410: that operation is not called again');
    const d = await api(base, 'GET', '/v1/webhooks/sluice.callbacks');
    assert.equal(d.json.paused, false, 'one endpoint answering 410 does not pause the others');
    const more = await publishAsync(base, 'orders', '"more"', rx.url('/fine'));
    await until('callbacks go on', () => rx.of(more.id).length, 20000);
    for (const r of rx.got) assert.ok(r.verified);
    return `retried after ${gap} ms`;
  } finally {
    await rx.close();
  }
}

async function rotate(base) {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const r = await api(base, 'POST', '/v1/webhooks/sluice.callbacks/rotate-secret', { secret });
  assert.equal(r.status, 200, r.text);
  await sleep(1000);
  return secret;
}

// ---------- 3. three nodes: kill -9 of the leader while operations are under way ----------

async function caseFailover() {
  const N = 60;
  // an operation not stored is reported failed after 10 s (not 2 min)
  const c = await startCluster(sluiced, { args: [...ALLOW, '--operation-pending-ms', '10000'] });
  const rx = await new Receiver().listen();
  try {
    // made beforehand, with a known secret (any node may deliver after the kill)
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    rx.secrets = [secret];
    await createTopic(c, 'sluice.callbacks', 1);
    await createTopic(c, 'jobs', 2);
    await until('callback webhook', async () => {
      const r = await api(c.bases[0], 'POST', '/v1/webhooks', { name: 'sluice.callbacks', topic: 'sluice.callbacks',
        callback: true, secret, from: 'earliest', max_in_flight: 64, schedule_ms: [0, 500, 1000] });
      return r.status === 201 || r.status === 409;
    }, 30000);
    const leader = await leaderIndex(c);
    const via = (leader + 1) % 3;
    const ops = [];
    // a third before the kill, the rest over the 4 s after it (the election
    // takes about one: what is accepted then may fail, and is polled so)
    for (let i = 0; i < N; i++) {
      if (i === N / 3) c.procs[leader].kill('SIGKILL');
      const op = await until(`publish ${i}`, () =>
        publishAsync(c.bases[via], 'jobs', JSON.stringify({ i }), rx.url(`/job/${i}`)), 30000);
      ops.push(op);
      await sleep(i < N / 3 ? 20 : 100);
    }
    // every operation settles; those committed have their callback
    const polled = [];
    for (const op of ops) {
      polled.push(await until(`operation ${op.id} settled`, async () => {
        const p = await poll(c.bases[via], op.id);
        return p.status !== 'pending' && p;
      }, 60000));
    }
    const committed = polled.filter((p) => p.status === 'committed');
    assert.ok(committed.length >= N / 2, `${committed.length} of ${N} committed`);
    assert.ok(committed.some((p) => ops.indexOf(ops.find((o) => o.id === p.id)) > N / 3 + 15),
      'operations after the election commit');
    await until('a callback for every committed operation',
      () => committed.every((p) => rx.of(p.id).length > 0), 60000);
    for (const p of committed)
      for (const call of rx.of(p.id)) assertAgrees(call, p, `operation ${p.id}`);
    for (const r of rx.got) {
      assert.ok(r.verified, 'signed with the secret the webhook was made with');
      const p = polled.find((x) => x.id === r.body.data.id);
      assert.ok(p, 'a callback names an operation of this test');
      if (r.body.data.status === 'committed') assert.equal(p.status, 'committed');
    }
    const dups = rx.got.length - new Set(rx.got.map((r) => r.body.data.id)).size;
    return `${committed.length}/${N} committed, every one called back, ${dups} duplicate call(s)`;
  } catch (e) {
    c.dumpLogs();
    throw e;
  } finally {
    await rx.close();
    c.cleanup();
  }
}

// ---------- main ----------

const watchdog = setTimeout(() => { console.error(`callbacks: timed out after ${took()}`); process.exit(1); }, 280000);
let node = null;
try {
  node = await startNode(sluiced, { args: ALLOW });
  for (const [name, fn] of [['1 basic', caseBasic], ['2 failures', caseFailures]]) {
    const msg = await fn(node.base);
    assert.deepEqual(refused, [], 'every request verifies');
    console.log(`callbacks: case ${name}: ok (${msg}) [${took()}]`);
  }
  node.cleanup();
  node = null;
  const msg = await caseFailover();
  assert.deepEqual(refused, [], 'every request verifies');
  console.log(`callbacks: case 3 failover: ok (${msg}) [${took()}]`);
  clearTimeout(watchdog);
  process.exit(0);
} catch (e) {
  console.error('callbacks: FAIL:', e && e.stack ? e.stack : e);
  if (node) { node.dumpLogs(); node.cleanup(); }
  process.exit(1);
}
