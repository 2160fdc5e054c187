// graphql-ws 6 (with graphql@16) against a real sluiced on 127.0.0.1 (free
// ports): a subscription with a field selection over graphql-transport-ws
// at /v1/graphql receives exactly the messages a mutation publishes, in
// order, with only the selected fields; the mutation over the same socket
// is answered with its offset.
// Needs the WebSocket layer (ws.c) and npm `ws` 8 in this package.json.
// Usage: node graphql_ws.mjs PATH/TO/sluiced
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import { freePorts } from './cluster.mjs';

const sluiced = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), 'sluice-gqlws-'));
let proc = null;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch {}
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

function once(client, query, variables) {
  return new Promise((resolve, reject) => {
    let result;
    const t = setTimeout(() => reject(new Error(`no answer to ${query}`)), 10000);
    client.subscribe({ query, variables }, {
      next: (r) => { result = r; },
      error: (e) => { clearTimeout(t); reject(new Error(JSON.stringify(e))); },
      complete: () => { clearTimeout(t); resolve(result); },
    });
  });
}

async function main() {
  const { default: WebSocket } = await import('ws');
  const [nat, http] = await freePorts(2);
  const log = openSync(join(dir, 'node.log'), 'a');
  proc = spawn(sluiced, ['--node-id', '1', '--data-dir', join(dir, 'd'), '--listen', `127.0.0.1:${nat}`,
    '--http', `127.0.0.1:${http}`, '--frontends', '1'], { stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${http}`;
  await until('ready', async () => (await fetch(base + '/readyz')).status === 200);
  const put = await fetch(base + '/v1/topics/g', { method: 'PUT', headers: { 'Content-Type': 'application/json' },
    body: '{"partitions":1}' });
  if (put.status !== 201) throw new Error(`create topic: ${put.status}`);

  const client = createClient({ url: `ws://127.0.0.1:${http}/v1/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
  const got = [];
  const sub = client.iterate({
    query: 'subscription ($t: String!) { m: messages(topic: $t, from: "earliest") { offset payload json headers { name value } } }',
    variables: { t: 'g' },
  });
  const reader = (async () => { for await (const r of sub) { got.push(r); if (got.length === 5) break; } })();

  for (let i = 0; i < 5; i++) {
    const r = await once(client, 'mutation ($p: String!, $i: String!) { publish(topic: "g", payload: $p, headers: [{name: "i", value: $i}]) { partition offset } }',
      { p: JSON.stringify({ n: i }), i: String(i) });
    if (r.errors || r.data.publish.offset !== String(i) || r.data.publish.partition !== 0)
      throw new Error(`publish ${i}: ${JSON.stringify(r)}`);
  }
  await Promise.race([reader, sleep(15000).then(() => { throw new Error(`only ${got.length} messages`); })]);
  for (let i = 0; i < 5; i++) {
    const want = { data: { m: { offset: String(i), payload: JSON.stringify({ n: i }), json: { n: i },
      headers: [{ name: 'i', value: String(i) }] } } };
    if (JSON.stringify(got[i]) !== JSON.stringify(want))
      throw new Error(`message ${i}: ${JSON.stringify(got[i])}, want ${JSON.stringify(want)}`);
  }
  const q = await once(client, '{ topics { name endOffsets } }');
  if (JSON.stringify(q.data.topics) !== JSON.stringify([{ name: 'g', endOffsets: ['5'] }]))
    throw new Error(`topics: ${JSON.stringify(q)}`);
  await client.dispose();
  console.log('graphql_ws: ok (5 published by mutation, 5 received by the subscription)');
}

function cleanup() {
  if (proc && proc.exitCode === null) { try { proc.kill('SIGTERM'); } catch {} }
  rmSync(dir, { recursive: true, force: true });
}

main().then(() => { cleanup(); process.exit(0); }, (e) => {
  console.error('FAIL:', e.message);
  try { console.error(readFileSync(join(dir, 'node.log'), 'utf8').slice(-3000)); } catch {}
  cleanup();
  process.exit(1);
});
