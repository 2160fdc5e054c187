// A 3-node sluice cluster on 127.0.0.1 for the node client tests: free
// ports, one frontend per node, short raft timers, logs kept for a failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// n distinct free ports: every listener stays open until all are chosen.
export async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    servers.push(await new Promise((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    }));
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// Poll fn until it returns something truthy (errors count as "not yet").
export async function until(what, fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch {}
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

export async function post(base, path, body, headers = {}) {
  const r = await fetch(base + path, { method: 'POST', body, headers, signal: AbortSignal.timeout(10000) });
  return { status: r.status, body: await r.text() };
}

// Start three nodes; resolves once every node answers /readyz.
// .bases: HTTP base URLs, .procs: the masters (kill -9 one to kill its node).
// opts.args: more flags for every node (e.g. ['--webhook-allow-private', 'true']).
export async function startCluster(sluiced, opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-node-'));
  const ports = await freePorts(9);
  const nat = ports.slice(0, 3), http = ports.slice(3, 6), raft = ports.slice(6, 9);
  const peers = raft.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
  const c = { dir, procs: [], bases: http.map((p) => `http://127.0.0.1:${p}`) };
  c.cleanup = () => {
    for (const p of c.procs) if (p && p.exitCode === null) { try { p.kill('SIGKILL'); } catch {} }
    rmSync(dir, { recursive: true, force: true });
  };
  c.dumpLogs = () => {
    for (let i = 1; i <= 3; i++) {
      try { console.error(`--- node ${i}\n` + readFileSync(join(dir, `node${i}.log`), 'utf8').slice(-3000)); } catch {}
    }
  };
  for (let i = 0; i < 3; i++) {
    const log = openSync(join(dir, `node${i + 1}.log`), 'a');
    c.procs.push(spawn(sluiced, ['--node-id', `${i + 1}`, '--data-dir', join(dir, `d${i + 1}`),
      '--listen', `127.0.0.1:${nat[i]}`, '--http', `127.0.0.1:${http[i]}`, '--peers', peers,
      '--frontends', '1', '--election-timeout-ms', '500', '--heartbeat-ms', '50', ...(opts.args || [])],
      { stdio: ['ignore', log, log] }));
  }
  try {
    for (const b of c.bases) await until(`${b} ready`, async () => (await fetch(b + '/readyz')).status === 200);
  } catch (e) {
    c.dumpLogs();
    c.cleanup();
    throw e;
  }
  return c;
}

// Start one node without peers (it leads itself); resolves once it answers
// /readyz. .base: its HTTP base URL, .proc: the master. opts.args: more flags.
export async function startNode(sluiced, opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-node-'));
  const [nat, http] = await freePorts(2);
  const n = { dir, base: `http://127.0.0.1:${http}` };
  const log = openSync(join(dir, 'node.log'), 'a');
  n.proc = spawn(sluiced, ['--node-id', '1', '--data-dir', join(dir, 'd'), '--listen', `127.0.0.1:${nat}`,
    '--http', `127.0.0.1:${http}`, '--frontends', '1', ...(opts.args || [])], { stdio: ['ignore', log, log] });
  n.cleanup = () => {
    if (n.proc.exitCode === null) { try { n.proc.kill('SIGKILL'); } catch {} }
    rmSync(dir, { recursive: true, force: true });
  };
  n.dumpLogs = () => {
    try { console.error('--- node\n' + readFileSync(join(dir, 'node.log'), 'utf8').slice(-5000)); } catch {}
  };
  try {
    await until(`${n.base} ready`, async () => (await fetch(n.base + '/readyz')).status === 200);
  } catch (e) {
    n.dumpLogs();
    n.cleanup();
    throw e;
  }
  return n;
}

// The index in c.bases of the node that leads, as node `from` sees it.
export async function leaderIndex(c, from = 0, ms = 30000) {
  const id = await until('a leader', async () => {
    const r = await (await fetch(`${c.bases[from]}/v1/cluster`, { signal: AbortSignal.timeout(5000) })).json();
    return r.leader_id > 0 && r.leader_id <= c.bases.length ? r.leader_id : 0;
  }, ms);
  return id - 1;
}

// Create topic on the cluster and wait until every node has applied it.
export async function createTopic(c, topic, partitions) {
  await until(`topic ${topic} created`, async () => {
    const r = await fetch(`${c.bases[0]}/v1/topics/${topic}`, { method: 'PUT',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ partitions }) });
    return r.status === 201 || r.status === 409;
  });
  for (const b of c.bases) await until('topic visible', async () => (await fetch(`${b}/v1/topics/${topic}`)).status === 200);
}

// Run main(cluster) against a fresh cluster; exit 0 on success, 1 with the
// node logs on failure.
export function run(name, main) {
  const sluiced = process.argv[2];
  let c = null;
  startCluster(sluiced)
    .then(async (cl) => { c = cl; return main(c); })
    .then((msg) => { console.log(`${name}: ok${msg ? ` (${msg})` : ''}`); c.cleanup(); process.exit(0); },
      (e) => { console.error(`${name}: FAIL:`, e && e.stack ? e.stack : e); if (c) { c.dumpLogs(); c.cleanup(); } process.exit(1); });
}
