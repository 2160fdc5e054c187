// console.test.js: the web console in a real browser. Headless Chromium
// (Debian package chromium) driven by playwright-core loads the page from a
// node's HTTP listener, starts a live tail of a topic, publishes through the
// page's form, and sees the message arrive in the tail over Server-Sent Events.
//
// ctest runs it as console_browser_test (tests/CMakeLists.txt); by hand:
//   apt-get install chromium && (cd tests/web && npm ci) && cmake --build build
//   SLUICED=build/sluiced node --test tests/web/console.test.js
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const SLUICED = process.env.SLUICED || new URL('../../build/sluiced', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 20000;

let dir, node, base, browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

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
  const [native, http] = [await freePort(), await freePort()];
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
