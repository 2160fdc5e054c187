// Open streams end when their identity may no longer read (docs/security.md,
// "Open streams"), on one node with [auth] on and two frontends, with real
// clients: the sluice CLI (native, a key or a token), eventsource@4 (SSE,
// access_token), ws 8 (sluice.v1.json, Authorization: Bearer) and graphql-ws 6
// (graphql-transport-ws, access_token).
//   - narrowed: `principal revoke alice --allow sub:...` ends alice's streams
//     on every protocol with PERMISSION_DENIED; bob's streams on the same
//     topic keep receiving
//   - removed: `principal remove carol` ends hers with UNAUTHENTICATED
//   - a revoked key: erin's native subscription ends with UNAUTHENTICATED
//   - expired: streams opened with a 5 s token end with UNAUTHENTICATED
// Each within a bounded time, and a message published after the change
// never reaches an ended stream. An EventSource that does not close() on
// the error event reconnects once, is refused with the same status, and
// stops (no reconnect loop).
// Usage: node revoke.mjs PATH/TO/sluiced PATH/TO/sluice
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { freePorts, sleep, until } from './cluster.mjs';

const [sluiced, sluice] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'sluice-revoke-'));
const procs = [];
const ENDED_MS = 3000; // an ended stream hears within this of the change (frontend tick: 100 ms)
let nat, http, base;

const cli = (...args) => execFileSync(sluice, ['-s', `127.0.0.1:${nat}`, ...args],
  { cwd: dir, encoding: 'utf8', timeout: 20000 }).trim();
const admin = (...args) => cli('--key', 'admin.key', ...args);
const keyGen = (name) => cli('key', 'gen', `${name}.key`);
const publish = (topic, payload) => admin('pub', topic, payload);
const token = (principal, ttl = '1h') => admin('token', 'issue', '--principal', principal, '--ttl', ttl).split('\n')[0];

// A stream of any protocol: what it received, and how it ended.
class Stream {
  constructor(name) { this.name = name; this.got = []; this.end = null; }
  push(p) { if (this.end) this.after = p; else this.got.push(p); }
  finish(code, message) { if (!this.end) this.end = { code, message }; }
  async received(p) { await until(`${this.name} receives ${p}`, () => this.got.includes(p), 10000); }
  async ended(code, pattern) {
    const want = this.native ? 'EXIT_77' : code; // the CLI exits 77 for both codes, with the message
    await until(`${this.name} ends with ${want}`, () => this.end, ENDED_MS);
    if (this.end.code !== want || !pattern.test(this.end.message))
      throw new Error(`${this.name} ended ${JSON.stringify(this.end)}, want ${want} ${pattern}`);
  }
  close() { this.closer?.(); }
}

// The CLI's subscription: stdout one payload per line; the end on stderr, exit 77.
function nativeSub(name, auth, topic) {
  const s = new Stream(name);
  s.native = true;
  const p = spawn(sluice, ['-s', `127.0.0.1:${nat}`, ...auth, 'sub', topic], { cwd: dir });
  procs.push(p);
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; const l = out.split('\n'); out = l.pop(); l.forEach((x) => s.push(x)); });
  p.stderr.on('data', (d) => { err += d; });
  p.on('exit', (code) => s.finish(code === 77 ? 'EXIT_77' : `EXIT_${code}`, err));
  s.closer = () => p.kill();
  return s;
}

function sseSub(name, tok, topic) {
  const s = new Stream(name);
  s.fetches = [];
  const es = new EventSource(`${base}/v1/topics/${topic}/events?access_token=${tok}`, {
    fetch: (url, init) => fetch(url, init).then((r) => { s.fetches.push(r.status); return r; }),
  });
  es.addEventListener(topic, (e) => s.push(e.data));
  // the server's `event: error` is a MessageEvent with data; connection errors have none
  es.addEventListener('error', (e) => {
    if (typeof e.data === 'string') {
      const pb = JSON.parse(e.data);
      s.problem = pb;
      s.finish(pb.code, pb.detail);
    }
  });
  s.es = es;
  s.closer = () => es.close();
  return s;
}

async function wsSub(name, tok, topic) {
  const s = new Stream(name);
  const ws = new WebSocket(`ws://127.0.0.1:${http}/v1/ws`, 'sluice.v1.json', { headers: { Authorization: `Bearer ${tok}` } });
  let sub = null;
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.op === 'subscribed') sub = m.sub;
    else if (m.op === 'message') s.push(m.payload);
    else if (m.op === 'error' && m.sub === sub) s.finish(m.code, m.message);
    else if (m.op === 'pong' || m.op === 'ok') s.pong = true;
  });
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  ws.send(JSON.stringify({ op: 'subscribe', id: 1, topic, from: 'latest' }));
  await until(`${name} subscribed`, () => sub !== null, 10000);
  s.ws = ws;
  s.closer = () => ws.close();
  return s;
}

function gqlSub(name, tok, topic) {
  const s = new Stream(name);
  const client = createClient({ url: `ws://127.0.0.1:${http}/v1/graphql?access_token=${tok}`, webSocketImpl: WebSocket,
    retryAttempts: 0, lazy: false });
  client.subscribe({ query: `subscription { m: messages(topic: "${topic}") { payload } }` }, {
    next: (r) => s.push(r.data?.m?.payload),
    error: (e) => {
      const x = Array.isArray(e) ? e[0] : e;
      s.finish(x?.extensions?.code ?? 'UNKNOWN', x?.message ?? JSON.stringify(e));
    },
    complete: () => s.finish('COMPLETE', ''),
  });
  s.closer = () => client.dispose();
  return s;
}

// Every stream receives a fresh payload: they are all live before the change.
async function live(topic, streams) {
  const p = `live-${randomBytes(4).toString('hex')}`;
  await until(`${topic} streams live`, async () => {
    publish(topic, p);
    await sleep(300);
    return streams.every((s) => s.got.includes(p));
  }, 15000);
}

// After a change: the ended streams end as stated, the others keep receiving,
// and what is published after the change reaches none of the ended ones.
async function afterChange(topic, ended, code, pattern, kept) {
  await Promise.all(ended.map((s) => s.ended(code, pattern)));
  const p = `after-${randomBytes(4).toString('hex')}`;
  publish(topic, p);
  await Promise.all(kept.map((s) => s.received(p)));
  await sleep(300);
  for (const s of ended)
    if (s.got.includes(p) || s.after) throw new Error(`${s.name} got ${p} after it ended`);
  for (const s of kept) if (s.end) throw new Error(`${s.name} ended: ${JSON.stringify(s.end)}`);
}

async function main() {
  [nat, http] = await freePorts(2);
  base = `http://127.0.0.1:${http}`;
  for (const n of ['admin', 'alice', 'bob', 'erin']) keyGen(n);
  writeFileSync(join(dir, 'seal.key'), randomBytes(32));
  chmodSync(join(dir, 'seal.key'), 0o600);
  const log = openSync(join(dir, 'node.log'), 'a');
  const node = spawn(sluiced, ['--data-dir', join(dir, 'd'), '--listen', `127.0.0.1:${nat}`, '--http', `127.0.0.1:${http}`,
    '--frontends', '2', '--auth', 'true', '--auth-admin-key', readFileSync(join(dir, 'admin.key.pub'), 'utf8').trim(),
    '--auth-key-file', join(dir, 'seal.key')], { stdio: ['ignore', log, log] });
  procs.push(node);
  await until('ready', async () => (await fetch(base + '/readyz')).status === 200, 20000);
  admin('auth', 'init');
  for (const t of ['t.a', 't.b', 't.c', 't.d']) admin('topic', 'create', t, '--partitions', '2');
  const pk = (n) => readFileSync(join(dir, `${n}.key.pub`), 'utf8').trim();
  admin('principal', 'add', 'alice', '--pubkey', pk('alice'), '--allow', 'sub:t.*');
  admin('principal', 'add', 'bob', '--pubkey', pk('bob'), '--allow', 'sub:t.*');
  admin('principal', 'add', 'carol', '--allow', 'sub:t.b');
  admin('principal', 'add', 'dave', '--allow', 'sub:t.c');
  admin('principal', 'add', 'erin', '--pubkey', pk('erin'), '--allow', 'sub:t.d');

  // narrowed: alice loses subscribe on t.*; bob keeps his
  const ta = token('alice'), tb = token('bob');
  const alice = [nativeSub('alice native', ['--key', 'alice.key'], 't.a'), sseSub('alice sse', ta, 't.a'),
    await wsSub('alice ws', ta, 't.a'), gqlSub('alice graphql', ta, 't.a')];
  const bob = [nativeSub('bob native', ['--key', 'bob.key'], 't.a'), sseSub('bob sse', tb, 't.a'),
    await wsSub('bob ws', tb, 't.a'), gqlSub('bob graphql', tb, 't.a')];
  await live('t.a', [...alice, ...bob]);
  admin('principal', 'revoke', 'alice', '--allow', 'sub:t.*');
  const denied = /principal alice lacks subscribe on t\.a/;
  await afterChange('t.a', alice, 'PERMISSION_DENIED', denied, bob);
  if (alice[1].problem.status !== 403 || alice[1].problem.type !== 'urn:sluice:problem:permission-denied')
    throw new Error(`SSE problem: ${JSON.stringify(alice[1].problem)}`);
  // the WebSocket and the GraphQL socket stay open, and still answer
  alice[2].ws.send(JSON.stringify({ op: 'subscribe', id: 2, topic: 't.a' }));
  const again = await new Promise((resolve) => alice[2].ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.id === 2) resolve(m);
  }));
  if (again.op !== 'error' || again.code !== 'PERMISSION_DENIED') throw new Error(`resubscribe: ${JSON.stringify(again)}`);
  // an EventSource that keeps going reconnects once, is refused 403, and stops
  await until('alice sse stops reconnecting', () => alice[1].es.readyState === 2, 10000);
  await sleep(2500);
  if (JSON.stringify(alice[1].fetches) !== '[200,403]') throw new Error(`SSE fetches ${alice[1].fetches}`);
  console.log('narrowed: alice\'s native, SSE, WebSocket and GraphQL streams ended PERMISSION_DENIED; bob\'s go on');

  // removed: carol's streams (tokens) end UNAUTHENTICATED
  const tc = token('carol');
  const carol = [nativeSub('carol native', ['--token', tc], 't.b'), sseSub('carol sse', tc, 't.b'),
    await wsSub('carol ws', tc, 't.b'), gqlSub('carol graphql', tc, 't.b')];
  const bobB = sseSub('bob sse t.b', tb, 't.b');
  await live('t.b', [...carol, bobB]);
  admin('principal', 'remove', 'carol');
  await afterChange('t.b', carol, 'UNAUTHENTICATED', /the principal no longer exists/, [bobB]);
  if (carol[1].problem.status !== 401) throw new Error(`SSE problem: ${JSON.stringify(carol[1].problem)}`);
  console.log('removed: carol\'s streams ended UNAUTHENTICATED');

  // a revoked key: erin's native subscription ends; her principal stays
  const erin = nativeSub('erin native', ['--key', 'erin.key'], 't.d');
  await live('t.d', [erin]);
  admin('principal', 'revoke', 'erin', '--pubkey', pk('erin'));
  await afterChange('t.d', [erin], 'UNAUTHENTICATED', /the key this connection authenticated with was revoked/, []);
  console.log('revoked key: erin\'s subscription ended UNAUTHENTICATED');

  // expired: streams opened with a 5 s token end when it expires
  const ttlMs = 5000, td = token('dave', '5s');
  const t0 = Date.now();
  const dave = [nativeSub('dave native', ['--token', td], 't.c'), sseSub('dave sse', td, 't.c'), await wsSub('dave ws', td, 't.c'), gqlSub('dave graphql', td, 't.c')];
  const bobC = sseSub('bob sse t.c', tb, 't.c');
  await live('t.c', [...dave, bobC]);
  await Promise.all(dave.map((s) => until(`${s.name} ends`, () => s.end, ttlMs + ENDED_MS + 1000)));
  if (Date.now() - t0 > ttlMs + ENDED_MS + 1000) throw new Error('expiry noticed late');
  await afterChange('t.c', dave, 'UNAUTHENTICATED', /the token expired/, [bobC]);
  console.log('expired: dave\'s streams ended UNAUTHENTICATED when the token expired');

  await live('t.a', bob); // bob's first streams outlived every change
  for (const s of [...alice, ...bob, ...carol, bobB, erin, ...dave, bobC]) s.close();
  console.log('revoke: ok');
}

main().then(() => { cleanup(); process.exit(0); }, (e) => {
  console.error(`FAIL: ${e.stack || e}`);
  try { console.error(readFileSync(join(dir, 'node.log'), 'utf8').split('\n').slice(-30).join('\n')); } catch {}
  cleanup();
  process.exit(1);
});

function cleanup() {
  for (const p of procs) try { p.kill('SIGKILL'); } catch {}
  rmSync(dir, { recursive: true, force: true });
}
