// npm `ws` 8 over wss:// against a real sluiced with TLS on 127.0.0.1 (free
// ports; a throw-away CA and node certificates made with the openssl
// command): with `ca` set the WebSocket connects, subscribes and publishes
// (sluice.v1.json); without it the handshake fails verification. Then a
// SIGHUP with a new certificate (same CA, another serial) while that
// WebSocket stays open: it still receives a message published after the
// reload, and every publish it made across the reload is acknowledged on
// it; a new wss connection is served the new certificate.
// Usage: node tls_ws.mjs PATH/TO/sluiced
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, sleep, until } from './cluster.mjs';

const sluiced = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), 'sluice-tlsws-'));
const f = (n) => join(dir, n);
let proc = null;

function makeCerts() {
  const ossl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'ignore'] });
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=sluice test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
    '-keyout', f('node.key'), '-out', f('node.csr'));
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  for (const serial of ['1001', '2002'])
    ossl('x509', '-req', '-in', f('node.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial',
      '0x' + serial, '-days', '2', '-extfile', f('ext.cnf'), '-out', f(`node-${serial}.pem`));
  copyFileSync(f('node-1001.pem'), f('node.pem'));
}

// A sluice.v1.json WebSocket that collects what it receives.
async function open(WebSocket, url, ca) {
  const ws = new WebSocket(url, 'sluice.v1.json', { ca, handshakeTimeout: 10000 });
  ws.got = [];
  ws.serial = null;
  ws.on('upgrade', (res) => { ws.serial = res.socket.getPeerCertificate().serialNumber; });
  ws.on('message', (d) => ws.got.push(JSON.parse(d.toString())));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return ws;
}

const waitFor = (ws, what, pred) => until(what, () => ws.got.find(pred), 15000);

async function main() {
  const { default: WebSocket } = await import('ws');
  makeCerts();
  const ca = readFileSync(f('ca.pem'));
  const [nat, http] = await freePorts(2);
  const log = openSync(f('node.log'), 'a');
  proc = spawn(sluiced, ['--data-dir', f('d'), '--listen', `127.0.0.1:${nat}`, '--http', `127.0.0.1:${http}`,
    '--frontends', '2', '--tls-cert', f('node.pem'), '--tls-key', f('node.key'), '--tls-ca', f('ca.pem')],
  { stdio: ['ignore', log, log] });
  const url = `wss://127.0.0.1:${http}/v1/ws`;
  const base = `https://127.0.0.1:${http}`;
  // fetch has no per-request CA: readiness is the WebSocket opening
  const ws = await until('wss open', () => open(WebSocket, url, ca), 20000);
  if (ws.serial !== '1001') throw new Error(`first serial ${ws.serial}`);

  // without the CA: refused by verification, not by the server
  const bad = await open(WebSocket, url, undefined).then(() => 'opened', (e) => e.code || e.message);
  if (!['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN'].includes(bad))
    throw new Error(`wss without the CA: ${bad}`);

  ws.send(JSON.stringify({ op: 'publish', id: 1, topic: 'tls', payload: 'before' }));
  let m = await waitFor(ws, 'publish answer', (x) => x.id === 1);
  if (m.op !== 'error' || m.code !== 'NO_SUCH_TOPIC') throw new Error(`publish to no topic: ${JSON.stringify(m)}`);
  execFileSync('curl', ['-sf', '--max-time', '10', '--cacert', f('ca.pem'), '-X', 'PUT', '-H',
    'Content-Type: application/json', '-d', '{"partitions":1}', `${base}/v1/topics/tls`]);
  ws.send(JSON.stringify({ op: 'subscribe', id: 2, topic: 'tls', from: 'earliest', credit: 100000 }));
  await waitFor(ws, 'subscribed', (x) => x.id === 2 && x.op === 'subscribed');
  ws.send(JSON.stringify({ op: 'publish', id: 3, topic: 'tls', payload: 'before' }));
  m = await waitFor(ws, 'ack 3', (x) => x.id === 3);
  if (m.op !== 'ack' || m.offset !== 0) throw new Error(`ack: ${JSON.stringify(m)}`);
  await waitFor(ws, 'message 0', (x) => x.op === 'message' && x.offset === 0 && x.payload === 'before');

  // the reload, with the WebSocket open and publishing (load on the old connection)
  let closed = false, next = 100;
  ws.on('close', () => { closed = true; });
  const load = setInterval(() => {
    for (let i = 0; i < 10; i++) ws.send(JSON.stringify({ op: 'publish', id: next++, topic: 'tls', payload: 'load' }));
  }, 5);
  await sleep(200);
  copyFileSync(f('node-2002.pem'), f('node.pem'));
  proc.kill('SIGHUP');
  await until('reload logged', () => (readFileSync(f('node.log'), 'utf8').match(/TLS certificate reloaded/g) || [])
    .length >= 2, 10000);
  await sleep(200);
  clearInterval(load);
  const sent = next - 100;
  await until(`${sent} acks on the old WebSocket`, () => ws.got.filter((x) => x.op === 'ack' && x.id >= 100).length === sent,
    20000);
  if (closed || ws.got.some((x) => x.op === 'error' && x.id >= 100)) throw new Error('the old WebSocket failed during the reload');
  const ws2 = await open(WebSocket, url, ca);
  if (ws2.serial !== '2002') throw new Error(`serial after the reload: ${ws2.serial}`);
  ws2.send(JSON.stringify({ op: 'publish', id: 1, topic: 'tls', payload: 'after' }));
  m = await waitFor(ws2, 'ack after', (x) => x.id === 1);
  const after = 1 + sent;
  if (m.op !== 'ack' || m.offset !== after) throw new Error(`ack after: ${JSON.stringify(m)}, want offset ${after}`);
  await waitFor(ws, 'the old WebSocket gets the new message',
    (x) => x.op === 'message' && x.offset === after && x.payload === 'after');
  if (ws.readyState !== WebSocket.OPEN) throw new Error('the old WebSocket closed');
  ws.close();
  ws2.close();
  console.log(`tls_ws: ok (wss with ca, refused without; ${sent} publishes across the reload, all acked on the old WebSocket)`);
}

function cleanup() {
  if (proc && proc.exitCode === null) { try { proc.kill('SIGTERM'); } catch {} }
  rmSync(dir, { recursive: true, force: true });
}

main().then(async () => { await sleep(50); cleanup(); process.exit(0); }, (e) => {
  console.error('FAIL:', e.message);
  try { console.error(readFileSync(f('node.log'), 'utf8').slice(-3000)); } catch {}
  cleanup();
  process.exit(1);
});
