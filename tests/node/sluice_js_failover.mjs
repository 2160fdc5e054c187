// The broker's own JavaScript client (/v1/sluice.js, loaded from node 1 as
// a browser would) over npm ws 8 against a 3-node cluster: publish and
// subscribe on one WebSocket, kill -9 the node serving it mid-stream, and
// check that the client reconnects to another node by itself, every publish
// resolves once at a distinct position, and the subscription yields every
// message exactly once, in each partition's offset order, at the offset its
// ack named.
// Usage: node sluice_js_failover.mjs PATH/TO/sluiced
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { createTopic, run, sleep, until } from './cluster.mjs';

const N = 40;

run('sluice_js_failover', async (c) => {
  const r = await fetch(`${c.bases[0]}/v1/sluice.js`);
  if (r.status !== 200 || !/javascript/.test(r.headers.get('content-type')))
    throw new Error(`GET /v1/sluice.js: ${r.status} ${r.headers.get('content-type')}`);
  const file = join(c.dir, 'sluice.mjs');
  writeFileSync(file, await r.text());
  const { connect } = await import(pathToFileURL(file).href);

  await createTopic(c, 'js', 2);
  const states = [];
  const client = connect(c.bases, { WebSocket, reconnectMs: 50, reconnectMaxMs: 500,
    onState: (s, url) => states.push(`${s} ${url || ''}`) });
  const got = [];
  const sub = client.subscribe('js', { from: 'earliest', credit: 8 });
  const reading = (async () => { for await (const m of sub) got.push(m); })();

  const acks = new Array(N);
  const pub = (i) => client.publish('js', `m${i}`, { key: `k${i % 5}`, headers: { n: String(i) } })
    .then((a) => { acks[i] = a; });
  const first = [];
  for (let i = 0; i < N / 2; i++) first.push(pub(i));
  await Promise.all(first);
  await until('half the messages delivered', async () => got.length >= N / 4, 20000);
  c.procs[0].kill('SIGKILL'); // the node the client talks to dies with everything in flight
  const second = [];
  for (let i = N / 2; i < N; i++) second.push(pub(i));
  await until('every publish acknowledged', async () => acks.filter(Boolean).length === N, 60000);
  await Promise.all(second);
  await until(`all ${N} messages delivered`, async () => got.length >= N, 60000);
  await sleep(300); // a duplicate would show up here
  sub.close();
  await reading;
  client.close();

  if (!states.some((s) => s.startsWith(`open ${c.bases[1].replace('http', 'ws')}`) ||
      s.startsWith(`open ${c.bases[2].replace('http', 'ws')}`)))
    throw new Error(`no reconnect to another node: ${states.join(', ')}`);
  const pos = new Set(acks.map((a) => `${a.partition}:${a.offset}`));
  if (pos.size !== N) throw new Error(`acks name ${pos.size} distinct positions for ${N} publishes`);
  if (got.length !== N) throw new Error(`${got.length} messages delivered for ${N} published`);
  for (const m of got) {
    const i = Number(m.payload.slice(1));
    const a = acks[i];
    if (!a || a.partition !== m.partition || a.offset !== m.offset || m.key !== `k${i % 5}`)
      throw new Error(`message ${JSON.stringify(m)} does not match its ack ${JSON.stringify(a)}`);
  }
  for (const p of [0, 1]) {
    const offs = got.filter((m) => m.partition === p).map((m) => m.offset);
    for (let j = 1; j < offs.length; j++)
      if (offs[j] !== offs[j - 1] + 1) throw new Error(`partition ${p} out of order or gapped: ${offs}`);
  }
  return `${N} messages over a kill -9; states: ${states.join(' → ')}`;
});
