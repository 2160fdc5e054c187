// console_auth.test.js: the web console against a node with [auth] enabled,
// in headless Chromium (Debian chromium, driven by playwright-core). Without
// a token the page shows the node's 401; opened as /?access_token=T it keeps
// the token in its sluice_token cookie (and takes it out of the address
// bar), lists the topics, publishes through its form, tails over
// Server-Sent Events and WebSocket with the cookie, and shows the 403 that
// names a missing permission; signing out brings the 401 back. The token
// comes from the sluice CLI as an operator would make it.
//
// ctest runs it as console_auth_browser_test (tests/CMakeLists.txt); by hand:
//   SLUICED=build/sluiced SLUICE=build/sluice node --test tests/web/console_auth.test.js
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { freePorts } from '../node/cluster.mjs';

const SLUICED = process.env.SLUICED || new URL('../../build/sluiced', import.meta.url).pathname;
const SLUICE = process.env.SLUICE || new URL('../../build/sluice', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 20000;

let dir, node, base, native, browser, token;
const f = (n) => join(dir, n);
const cli = (...a) => execFileSync(SLUICE, ['-s', `127.0.0.1:${native}`, '--key', f('admin.key'), ...a],
  { encoding: 'utf8', timeout: 30000 }).trim();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-console-auth-'));
  const admin = execFileSync(SLUICE, ['key', 'gen', f('admin.key')], { encoding: 'utf8' }).trim();
  writeFileSync(f('seal.key'), randomBytes(32));
  chmodSync(f('seal.key'), 0o600);
  let http;
  [native, http] = await freePorts(2);
  base = `http://127.0.0.1:${http}`;
  node = spawn(SLUICED, ['--data-dir', f('data'), '--listen', `127.0.0.1:${native}`, '--http', `127.0.0.1:${http}`,
    '--frontends', '1', '--auth', 'true', '--auth-admin-key', admin, '--auth-key-file', f('seal.key')],
  { stdio: 'inherit' });
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try { if ((await fetch(`${base}/readyz`)).ok) break; } catch { /* not yet */ }
    assert.ok(Date.now() < deadline, 'sluiced did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  cli('topic', 'create', 'web.orders');
  cli('topic', 'create', 'private');
  cli('auth', 'init');
  cli('principal', 'add', 'viewer', '--allow', 'pub:web.*', '--allow', 'sub:web.*');
  token = cli('token', 'issue', '--principal', 'viewer', '--ttl', '10m');
  assert.match(token, /^v4\.public\./);
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

const errorLine = (page, re) => page.waitForFunction((src) => new RegExp(src).test(
  document.getElementById('error-line').textContent), re.source, { timeout: WAIT_MS });

test('the console signs in with a token and works within its permissions', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto(`${base}/`);
  await errorLine(page, /authenticate first/);
  assert.equal((await page.textContent('#auth-state')).trim(), 'no token');

  await page.goto(`${base}/?access_token=${token}`);
  assert.ok(!page.url().includes('access_token'), `the token left the address bar: ${page.url()}`);
  await page.waitForSelector('#topic-table tbody tr', { timeout: WAIT_MS });
  assert.match(await page.textContent('#topic-table tbody'), /web\.orders/);
  assert.equal((await page.textContent('#auth-state')).trim(), 'signed in with a token');
  const cookie = (await page.context().cookies()).find((c) => c.name === 'sluice_token');
  assert.equal(cookie.value, token);
  assert.equal(cookie.sameSite, 'Strict');

  // SSE tail and the form, with the cookie
  await page.fill('#tail-topic', 'web.orders');
  await page.click('#tail-start');
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('tailing'),
    null, { timeout: WAIT_MS });
  const payload = `signed in ${Date.now()}`;
  await page.fill('#pub-topic', 'web.orders');
  await page.fill('#pub-body', payload);
  await page.click('#pub-send');
  await page.waitForFunction(() => /^201: /.test(document.getElementById('pub-result').textContent), null,
    { timeout: WAIT_MS });
  await page.waitForSelector(`#tail-log tr:has-text("${payload}")`, { timeout: WAIT_MS });

  // over WebSocket (sluice.js): the upgrade carries the cookie
  await page.selectOption('#pub-via', 'ws');
  const wsPayload = `over the socket ${Date.now()}`;
  await page.fill('#pub-body', wsPayload);
  await page.click('#pub-send');
  await page.waitForFunction(() => /^ack: /.test(document.getElementById('pub-result').textContent), null,
    { timeout: WAIT_MS });
  await page.waitForSelector(`#tail-log tr:has-text("${wsPayload}")`, { timeout: WAIT_MS });

  // a topic the principal may not publish to: the node's 403 names why
  await page.selectOption('#pub-via', 'http');
  await page.fill('#pub-topic', 'private');
  await page.fill('#pub-body', 'nope');
  await page.click('#pub-send');
  await page.waitForFunction(() => /^403: principal viewer lacks publish on private/.test(
    document.getElementById('pub-result').textContent), null, { timeout: WAIT_MS });

  await page.click('#auth-out');
  await errorLine(page, /authenticate first/);
  assert.equal((await page.context().cookies()).filter((c) => c.name === 'sluice_token').length, 0);
  assert.deepEqual(errors, []);
});
