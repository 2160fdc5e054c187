// npm standardwebhooks 1.1.1 (the Standard Webhooks reference library for JavaScript) verifies
// what the webhook module (broker/http/webhook) sends: an HTTP server on 127.0.0.1 (a free port)
// receives the deliveries of tests/integration/wh_post_driver (JSON, text and binary payloads,
// keys, a retry, signed with a rotated pair of secrets) and checks every one with
// `new Webhook(secret).verify(body, headers)` for both secrets, refuses it with a third secret,
// with a tampered body and with a tampered id, compares each body with what the driver sent, and
// checks that one (topic, partition, offset) always has one webhook-id.
// Usage: node webhook_verify.mjs PATH/TO/wh_post_driver
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

const driver = process.argv[2];
if (!driver) throw new Error('usage: node webhook_verify.mjs PATH/TO/wh_post_driver');
const secret = () => 'whsec_' + randomBytes(32).toString('base64');
const current = secret(), previous = secret(), stranger = secret();

// what wh_post_driver.c sends, in order (its msgs[] table)
const order = { id: 1, total: 12.5, items: ['a', 'b'] };
const expected = [
  { topic: 'orders', partition: 0, offset: 0, data: order },
  { topic: 'orders', partition: 0, offset: 1, key: 'customer-7', data: [1, 2, 3] },
  { topic: 'orders', partition: 1, offset: 1, data: 'plain text, not JSON: café' },
  { topic: 'audit.eu-west_1', partition: 3, offset: 42,
    data: { base64: Buffer.from([0x00, 0xff, 0x10, 0x80, 0xc3, 0x28]).toString('base64') } },
  { topic: 'orders', partition: 0, offset: 0, data: order }, // a retry of the first
  { topic: 'orders', partition: 2, offset: 9, key: 'k', data: 'a JSON string' },
  { topic: 'orders', partition: 2, offset: 10, data: '' },
];

const got = [];
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    got.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
    res.writeHead(204);
    res.end();
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const watchdog = setTimeout(() => { console.error('timed out'); process.exit(1); }, 60000);

const child = spawn(driver, [`http://127.0.0.1:${port}/hooks/in?src=sluice`, current, previous],
  { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => { out += d; });
const code = await new Promise((resolve) => child.on('exit', resolve));
server.close();
clearTimeout(watchdog);
assert.equal(code, 0, `driver failed:\n${out}`);
assert.equal(got.length, expected.length, `received ${got.length} deliveries`);

const idAt = new Map();
const ids = new Set();
got.forEach((g, i) => {
  const want = expected[i];
  const h = g.headers;
  assert.equal(g.method, 'POST');
  assert.equal(g.url, '/hooks/in?src=sluice');
  assert.equal(h['content-type'], 'application/json');
  assert.match(h['user-agent'], /^sluice-webhook\//);
  assert.match(h['webhook-id'], /^msg_[0-9a-f]{32}$/);
  assert.ok(Math.abs(Number(h['webhook-timestamp']) - Date.now() / 1000) < 60, 'attempt timestamp is now');
  const sigs = h['webhook-signature'].split(' ');
  assert.equal(sigs.length, 2, 'one signature per secret');
  sigs.forEach((s) => assert.match(s, /^v1,[A-Za-z0-9+/]{43}=$/));

  // both secrets of the rotation verify, as the reference library does it
  for (const s of [current, previous]) {
    const payload = new Webhook(s).verify(g.body, h);
    assert.equal(payload.type, want.topic);
    assert.equal(payload.timestamp, new Date(1700000000000 + want.offset).toISOString());
    assert.deepEqual(payload.data, want.data);
    assert.equal(payload.key, want.key);
  }
  assert.throws(() => new Webhook(stranger).verify(g.body, h), /No matching signature/);
  const tampered = Buffer.from(g.body);
  tampered[tampered.length - 2] ^= 1;
  assert.throws(() => new Webhook(current).verify(tampered, h), /No matching signature/);
  assert.throws(() => new Webhook(current).verify(g.body, { ...h, 'webhook-id': 'msg_other' }),
    /No matching signature/);

  const pos = `${h['sluice-topic']}/${h['sluice-partition']}/${h['sluice-offset']}`;
  assert.equal(pos, `${want.topic}/${want.partition}/${want.offset}`);
  if (idAt.has(pos)) assert.equal(h['webhook-id'], idAt.get(pos), `${pos}: the retry has the same id`);
  idAt.set(pos, h['webhook-id']);
  ids.add(h['webhook-id']);
});
assert.equal(ids.size, idAt.size, 'different positions have different ids');
assert.equal(idAt.size, expected.length - 1);
console.log(`${got.length} deliveries verified by standardwebhooks with both secrets; ${ids.size} distinct ids`);
