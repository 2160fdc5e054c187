// eventsource@4 against a real 3-node sluice cluster on 127.0.0.1 (free
// ports): subscribe over SSE on node 1, kill -9 node 1, resume on node 2 with
// Last-Event-ID, and check every message arrives exactly once, in order.
// Usage: node sse_failover.mjs PATH/TO/sluiced
import { EventSource } from 'eventsource';
import { createTopic, post, run, sleep, until } from './cluster.mjs';

run('sse_failover', async (c) => {
  const bases = c.bases;
  await createTopic(c, 't', 1);
  const publish = async (base, i) => until(`publish ${i}`, async () =>
    (await post(base, '/v1/topics/t/messages', `m${i}`, { 'Idempotency-Key': `k${i}` })).status === 201);
  for (let i = 0; i < 10; i++) await publish(bases[0], i);

  const got = [];
  let lastId = '';
  const es1 = new EventSource(bases[0] + '/v1/topics/t/events?from=earliest');
  es1.addEventListener('t', (e) => { got.push(e.data); lastId = e.lastEventId; });
  await until('first 6 events', async () => got.length >= 6);
  es1.close();
  const seen = got.length;
  c.procs[0].kill('SIGKILL'); // kill -9 of node 1's master; its children die with it
  for (let i = 10; i < 20; i++) await publish(bases[1], i);

  const es2 = new EventSource(bases[1] + '/v1/topics/t/events', {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'Last-Event-ID': lastId } }),
  });
  es2.addEventListener('t', (e) => { got.push(e.data); });
  await until('all 20 events', async () => got.length >= 20);
  await sleep(300); // a duplicate would show up here
  es2.close();
  const want = Array.from({ length: 20 }, (_, i) => `m${i}`);
  if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(`after ${seen} events on node 1, got ${JSON.stringify(got)}`);
  return `${seen} events from node 1, ${got.length - seen} from node 2 after kill -9`;
});
