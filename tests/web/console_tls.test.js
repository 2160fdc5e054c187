// console_tls.test.js: the web console over https in a real browser that
// trusts the node's CA. A throw-away CA and node certificate (openssl, for
// 127.0.0.1 and localhost); headless Chromium (Debian package chromium,
// driven by playwright-core) gets the CA in its NSS store ($HOME/.pki/nssdb,
// certutil from libnss3-tools), loads the console from the node's TLS
// listener, tails a topic over Server-Sent Events and then over WebSocket
// (wss, sluice.js), and publishes through the page's form. A browser
// without the CA refuses the page (ERR_CERT_AUTHORITY_INVALID).
//
// ctest runs it as console_tls_browser_test (tests/CMakeLists.txt); by hand:
//   apt-get install chromium libnss3-tools && (cd tests/web && npm ci) && cmake --build build
//   SLUICED=build/sluiced node --test tests/web/console_tls.test.js
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { freePorts } from '../node/cluster.mjs';

const SLUICED = process.env.SLUICED || new URL('../../build/sluiced', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CERTUTIL = process.env.CERTUTIL || '/usr/bin/certutil';
const WAIT_MS = 20000;

let dir, node, base, ca, trusting, untrusting;
const f = (n) => join(dir, n);

function makeCerts() {
  const ossl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'ignore'] });
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=sluice browser test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
    '-keyout', f('node.key'), '-out', f('node.csr'));
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', f('node.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial', '0x1001',
    '-days', '2', '-extfile', f('ext.cnf'), '-out', f('node.pem'));
}

// A HOME whose NSS store trusts our CA for servers (what Chromium on Linux reads).
function homeTrustingCa() {
  const home = f('home');
  const db = `sql:${join(home, '.pki', 'nssdb')}`;
  mkdirSync(join(home, '.pki', 'nssdb'), { recursive: true });
  execFileSync(CERTUTIL, ['-d', db, '-N', '--empty-password']);
  execFileSync(CERTUTIL, ['-d', db, '-A', '-t', 'C,,', '-n', 'sluice-test-ca', '-i', f('ca.pem')]);
  return home;
}

// One HTTPS request with our CA: { status, body }.
function call(method, path, body = '', headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, ca, headers, timeout: 10000 }, (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

async function waitReady() {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    try {
      if ((await call('GET', '/readyz')).status === 200) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('sluiced did not become ready');
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-console-tls-'));
  makeCerts();
  ca = readFileSync(f('ca.pem'));
  const [native, http] = await freePorts(2);
  base = `https://127.0.0.1:${http}`;
  node = spawn(SLUICED, ['--data-dir', f('data'), '--listen', `127.0.0.1:${native}`, '--http', `127.0.0.1:${http}`,
    '--frontends', '1', '--tls-cert', f('node.pem'), '--tls-key', f('node.key'), '--tls-ca', f('ca.pem')],
  { stdio: 'inherit' });
  await waitReady();
  for (const t of ['tls-sse', 'tls-ws'])
    assert.equal((await call('PUT', `/v1/topics/${t}`, '{"partitions":1}', { 'Content-Type': 'application/json' }))
      .status, 201);
  const launch = (home) => chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'],
    env: { ...process.env, HOME: home } });
  trusting = await launch(homeTrustingCa());
  mkdirSync(f('empty-home'));
  untrusting = await launch(f('empty-home'));
});

after(async () => {
  for (const b of [trusting, untrusting]) if (b) await b.close();
  if (node) {
    node.kill('SIGTERM');
    await new Promise((r) => node.once('exit', r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Tail `topic` over `via` (sse or ws), publish through the form, see the row.
async function tailAndPublish(page, topic, via) {
  await page.goto(`${base}/`);
  await page.selectOption('#tail-via', via);
  await page.fill('#tail-topic', topic);
  await page.click('#tail-start');
  await page.waitForFunction(() => document.getElementById('tail-state').textContent.startsWith('tailing'),
    null, { timeout: WAIT_MS });
  const payload = `over ${via} with tls ${Date.now()}`;
  await page.selectOption('#pub-via', via === 'ws' ? 'ws' : 'http');
  await page.fill('#pub-topic', topic);
  await page.fill('#pub-key', 'k1');
  await page.fill('#pub-body', payload);
  await page.click('#pub-send');
  await page.waitForFunction(() => /(^201|^ack): partition \d+ offset \d+/.test(
    document.getElementById('pub-result').textContent), null, { timeout: WAIT_MS });
  await page.waitForSelector(`#tail-log tr:has-text("${payload}")`, { timeout: WAIT_MS });
}

test('a browser that trusts the CA uses the console over https: SSE tail and form publish', async () => {
  const page = await trusting.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await tailAndPublish(page, 'tls-sse', 'sse');
  assert.ok(page.url().startsWith('https://'));
  assert.deepEqual(errors, []);
  await page.close();
});

test('the same browser tails and publishes over wss (sluice.js)', async () => {
  const page = await trusting.newPage();
  const errors = [];
  const sockets = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await tailAndPublish(page, 'tls-ws', 'ws');
  assert.ok(sockets.length >= 1 && sockets.every((u) => u.startsWith('wss://')), `sockets: ${sockets}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a browser without the CA refuses the page', async () => {
  const page = await untrusting.newPage();
  await assert.rejects(page.goto(`${base}/`, { timeout: WAIT_MS }), /ERR_CERT_AUTHORITY_INVALID/);
  await page.close();
});
