// console.test.js: the web console in a real browser. Headless Chromium
// (Debian package chromium) driven by playwright-core loads the page from a
// node's HTTP listener, starts a live tail of a topic, publishes through the
// page's form, and sees the message arrive in the tail over Server-Sent Events.
// Then the server closes the stream (kill -9 of the node's frontend process,
// which the master restarts): the page's EventSource reconnects with
// Last-Event-ID and the tail shows every message exactly once, in order. The
// same over WebSocket through the client module /v1/sluice.js: the form
// publishes on the socket, and the tail resumes after the frontend dies.
// The page lists durable consumers and webhooks with their state.
//
// ctest runs it as console_browser_test (tests/CMakeLists.txt); by hand:
//   apt-get install chromium && (cd tests/web && npm ci) && cmake --build build
//   SLUICED=build/sluiced node --test tests/web/console.test.js
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { freePorts } from '../node/cluster.mjs';

const SLUICED = process.env.SLUICED || new URL('../../build/sluiced', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 20000;

let dir, node, base, browser;


async function waitReady() {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('sluiced did not become ready');
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-console-'));
  const [native, http] = await freePorts(2);
  base = `http://127.0.0.1:${http}`;
  node = spawn(SLUICED, ['--data-dir', join(dir, 'data'), '--listen', `127.0.0.1:${native}`,
    '--http', `127.0.0.1:${http}`, '--frontends', '1'], { stdio: 'inherit' });
  await waitReady();
  const r = await fetch(`${base}/v1/topics/web-orders`, {
    method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"partitions":2}',
  });
  assert.equal(r.status, 201);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (node) {
    node.kill('SIGTERM');
    await new Promise((r) => node.once('exit', r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the console publishes through its form and sees the message in its live tail', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/`);
  await page.waitForSelector('#topic-table tbody tr', { timeout: WAIT_MS }); // topics listed
  assert.match(await page.textContent('#topic-table tbody'), /web-orders/);
  assert.notEqual((await page.textContent('#cl-role')).trim(), '–');

  await page.fill('#tail-topic', 'web-orders');
  await page.click('#tail-start');
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('tailing'),
    null, { timeout: WAIT_MS });

  const payload = `hello from the console ${Date.now()}`;
  await page.fill('#pub-topic', 'web-orders');
  await page.fill('#pub-key', 'k1');
  await page.fill('#pub-body', payload);
  await page.click('#pub-send');
  await page.waitForFunction(() => /^201: partition \d+ offset \d+/.test(
    document.getElementById('pub-result').textContent), null, { timeout: WAIT_MS });

  const row = await page.waitForSelector(`#tail-log tr:has-text("${payload}")`, { timeout: WAIT_MS });
  assert.match(await row.textContent(), /k1/);
  assert.deepEqual(errors, []);
});

// ---------- the tail resumes after the server closes the stream ----------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The frontend children of the master (sluice-fe-N), by /proc.
function frontendPids() {
  let kids = [];
  try {
    kids = readFileSync(`/proc/${node.pid}/task/${node.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch { /* the master is gone: none */ }
  return kids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sluice-fe-');
    } catch {
      return false;
    }
  }).map(Number);
}

// kill -9 the node's only frontend; returns its pid.
function killFrontend() {
  const before = frontendPids();
  assert.equal(before.length, 1, `one frontend expected, found ${before}`);
  process.kill(before[0], 'SIGKILL');
  return before[0];
}

// Wait until the master has started another frontend than `old`.
async function frontendRestarted(old) {
  const deadline = Date.now() + WAIT_MS;
  while (!frontendPids().some((p) => p !== old)) {
    assert.ok(Date.now() < deadline, 'the master did not restart the frontend');
    await sleep(50);
  }
}

// Every sent message once in the rows, each partition in offset order.
function assertOnceInOrder(rows, sent) {
  const key = (x) => `${x.partition}:${x.offset}:${x.payload}`;
  assert.deepEqual(rows.map(key).sort(), sent.map(key).sort());
  for (const p of [0, 1]) {
    assert.deepEqual(rows.filter((x) => x.partition === p).map(key), sent.filter((x) => x.partition === p).map(key));
  }
}

// Publish one message, retrying (bounded) while the frontend restarts; the
// Idempotency-Key stores a retried publish once.
async function publish(topic, partition, payload) {
  const deadline = Date.now() + WAIT_MS;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${base}/v1/topics/${topic}/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain', 'Sluice-Partition': String(partition), 'Idempotency-Key': payload },
        body: payload,
        signal: AbortSignal.timeout(5000),
      });
      if (r.status === 201) return (await r.json()).offset;
      last = `${r.status} ${await r.text()}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(100);
  }
  throw new Error(`publish ${payload}: ${last}`);
}

// The tail's rows, oldest first (the page puts the newest on top).
const tailRows = (page) => page.$$eval('#tail-log tr', (trs) => trs.reverse().map((tr) => ({
  partition: Number(tr.dataset.partition),
  offset: Number(tr.dataset.offset),
  payload: tr.lastChild.textContent,
})));

test('the live tail resumes with Last-Event-ID after the server closes the stream', async () => {
  const topic = 'web-resume';
  const r = await fetch(`${base}/v1/topics/${topic}`, {
    method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"partitions":2}',
  });
  assert.equal(r.status, 201);
  const page = await browser.newPage();
  const errors = [];
  const streams = []; // the event stream requests, with their Last-Event-ID
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (req) => {
    if (req.url().includes(`/v1/topics/${topic}/events`)) {
      streams.push(req.allHeaders().then((h) => h['last-event-id'] || null, () => 'headers unknown'));
    }
  });
  await page.goto(`${base}/`);
  await page.fill('#tail-topic', topic);
  await page.click('#tail-start');
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('tailing'),
    null, { timeout: WAIT_MS });

  const tag = `r${Date.now()}`;
  const sent = []; // {partition, offset, payload} in publish order
  const send = async (i) => {
    const payload = `${tag}-${i}`;
    const partition = i % 2;
    sent.push({ partition, offset: await publish(topic, partition, payload), payload });
  };
  await send(0);
  await page.waitForSelector(`#tail-log tr:has-text("${tag}-0")`, { timeout: WAIT_MS });

  // the server closes the stream: kill -9 the frontend, the master starts another
  const old = killFrontend();
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('reconnecting'),
    null, { timeout: WAIT_MS });
  await frontendRestarted(old);
  // published while the page is disconnected (it waits sse_retry_ms before reconnecting)
  for (let i = 1; i <= 4; i++) await send(i);
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('tailing'),
    null, { timeout: WAIT_MS });
  // and after it is back
  await send(5);
  await page.waitForSelector(`#tail-log tr:has-text("${tag}-5")`, { timeout: WAIT_MS });
  await sleep(500); // a duplicate would have time to show up

  const rows = (await tailRows(page)).filter((x) => x.payload.startsWith(`${tag}-`));
  // every message exactly once, each partition in offset order, and the one sent after the reconnect last
  assertOnceInOrder(rows, sent);
  assert.equal(rows[rows.length - 1].payload, `${tag}-5`);
  assert.equal(rows[0].payload, `${tag}-0`);
  // the reconnect named the position after the first message: Last-Event-ID
  const ids = await Promise.all(streams);
  assert.ok(ids.length >= 2, `a reconnect expected, saw ${ids.length} stream requests`);
  assert.equal(ids[0], null);
  assert.match(ids[ids.length - 1] || '', /^\d+:\d+,\d+:\d+$/);
  assert.deepEqual(errors, []);
});

// ---------- WebSocket through the node's client module, /v1/sluice.js ----------

test('the console publishes and tails over WebSocket (sluice.js) and resumes after a frontend kill', async () => {
  const topic = 'web-ws';
  const r = await fetch(`${base}/v1/topics/${topic}`, {
    method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"partitions":2}',
  });
  assert.equal(r.status, 201);
  const page = await browser.newPage();
  const errors = [];
  const sockets = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`${base}/`);
  await page.selectOption('#tail-via', 'ws');
  await page.selectOption('#tail-from', 'earliest');
  await page.fill('#tail-topic', topic);
  await page.click('#tail-start');
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('tailing'),
    null, { timeout: WAIT_MS });

  // a publish through the page's form, over the same WebSocket
  const tag = `w${Date.now()}`;
  await page.selectOption('#pub-via', 'ws');
  await page.fill('#pub-topic', topic);
  await page.fill('#pub-key', 'wk');
  await page.fill('#pub-partition', '1');
  await page.fill('#pub-body', `${tag}-0`);
  await page.click('#pub-send');
  await page.waitForFunction(() => /^ack: partition 1 offset \d+/.test(document.getElementById('pub-result').textContent),
    null, { timeout: WAIT_MS });
  const first = Number((await page.textContent('#pub-result')).match(/offset (\d+)/)[1]);
  const sent = [{ partition: 1, offset: first, payload: `${tag}-0` }];
  const row = await page.waitForSelector(`#tail-log tr:has-text("${tag}-0")`, { timeout: WAIT_MS });
  assert.match(await row.textContent(), /wk/);

  // the frontend dies; sluice.js reconnects and resumes each partition after the last row
  await frontendRestarted(killFrontend());
  for (let i = 1; i <= 4; i++) {
    const payload = `${tag}-${i}`;
    sent.push({ partition: i % 2, offset: await publish(topic, i % 2, payload), payload });
  }
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('tailing'),
    null, { timeout: WAIT_MS });
  await page.waitForSelector(`#tail-log tr:has-text("${tag}-4")`, { timeout: WAIT_MS });
  await sleep(500); // a duplicate would have time to show up

  const rows = (await tailRows(page)).filter((x) => x.payload.startsWith(`${tag}-`));
  assertOnceInOrder(rows, sent);
  assert.ok(sockets.length >= 2 && sockets.every((u) => u.endsWith('/v1/ws')), `sockets: ${sockets}`);
  assert.deepEqual(errors, []);
});

test('the console lists durable consumers and webhooks with their state', async () => {
  const json = { 'Content-Type': 'application/json' };
  let r = await fetch(`${base}/v1/consumers`, {
    method: 'POST', headers: json, body: JSON.stringify({ name: 'web-billing', topic: 'web-orders', from: 'earliest' }),
  });
  assert.equal(r.status, 201);
  r = await fetch(`${base}/v1/webhooks`, {
    method: 'POST', headers: json,
    body: JSON.stringify({ name: 'web-hook', topic: 'web-orders', url: 'https://hooks.example.invalid/x' }),
  });
  assert.equal(r.status, 201);
  r = await fetch(`${base}/v1/webhooks/web-hook/pause`, { method: 'POST' });
  assert.equal(r.status, 200);
  const page = await browser.newPage();
  try {
    await page.goto(base + '/', { waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelectorAll('#webhook-table tbody tr').length === 1, null,
      { timeout: WAIT_MS });
    const hooks = await page.$$eval('#webhook-table tbody tr td', (tds) => tds.map((td) => td.textContent));
    assert.equal(hooks[0], 'web-hook');
    assert.equal(hooks[1], 'https://hooks.example.invalid/x');
    assert.equal(hooks[2], 'paused');
    const rows = await page.$$eval('#consumer-table tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    const byName = new Map(rows.map((cells) => [cells[0], cells]));
    assert.deepEqual(byName.get('web-billing').slice(1, 3), ['web-orders', 'ordered']);
    assert.deepEqual(byName.get('web-hook').slice(1, 3), ['web-orders', 'webhook']);
  } finally {
    await page.close();
  }
});
