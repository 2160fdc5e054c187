// sluice console: cluster status, topics with publish rates, group lag, a
// live tail (Server-Sent Events, or WebSocket through the node's client
// module /v1/sluice.js) and a publish form (HTTP POST, or WebSocket), all
// through the node's own APIs (docs/http.md, docs/websocket.md). No
// framework, no build step, no external resource: the frontend serves this
// file from the binary. Data from the server is only ever placed with
// textContent.
//
// A node with [auth] enabled (docs/security.md) wants a token: the page
// keeps one in the cookie sluice_token (SameSite=Strict, Secure over
// https), which fetch, EventSource and the WebSocket all send to this
// origin; `/?access_token=T` sets it and takes it out of the address bar.
import { connect } from '/v1/sluice.js';

const POLL_MS = 2000;
const TAIL_ROWS_MAX = 200;
const $ = (id) => document.getElementById(id);
const seg = (s) => encodeURIComponent(s);
let lastTotals = new Map(); // topic -> {sum, t}
let source = null;          // the tail's EventSource
let wsTail = null;          // the tail's sluice.js subscription
let client = null;          // the sluice.js client, made on first use

function wsClient() {
  if (!client) {
    client = connect([], {
      onState: (state) => {
        if (wsTail) $('tail-state').textContent = state === 'open' ? `tailing ${wsTail.topic}` : `${state}…`;
      },
    });
  }
  return client;
}

function showError(msg) {
  $('error-line').textContent = msg || '';
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const why = body && (body.detail || body.title) ? `${body.title}: ${body.detail}` : `HTTP ${r.status}`;
    throw new Error(`${path}: ${why}`);
  }
  return body;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.appendChild(c);
    else td.textContent = c === undefined || c === null ? '' : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ---------- cluster ----------

async function refreshCluster() {
  const c = await getJSON('/v1/cluster');
  $('cl-node').textContent = c.node_id;
  $('cl-role').textContent = c.role;
  $('cl-leader').textContent = c.leader_id || 'none known';
  $('cl-term').textContent = c.term;
  $('cl-commit').textContent = c.commit_index;
  $('cl-applied').textContent = c.applied_index;
  $('node-line').textContent = `node ${c.node_id} · ${c.role}`;
  fill($('cl-nodes').tBodies[0], (c.nodes || []).map((n) => {
    const tr = row([n.id, n.client_address, n.raft_address, n.reachable ? 'yes' : 'no', n.match_index]);
    if (!n.reachable) tr.classList.add('bad');
    return tr;
  }));
}

// ---------- topics ----------

function endSum(t) {
  return (t.partition_offsets || []).reduce((a, p) => a + p.end_offset, 0);
}

function rate(name, sum, now) {
  const prev = lastTotals.get(name);
  lastTotals.set(name, { sum, t: now });
  if (!prev || now <= prev.t) return '–';
  return `${((sum - prev.sum) * 1000 / (now - prev.t)).toFixed(1)} msg/s`;
}

async function refreshTopics() {
  const { topics } = await getJSON('/v1/topics');
  const now = Date.now();
  fill($('topic-table').tBodies[0], topics.map((t) => {
    const b = document.createElement('button');
    b.className = 'link';
    b.type = 'button';
    b.textContent = 'details';
    b.addEventListener('click', () => showTopic(t.name).catch((e) => showError(e.message)));
    const sum = endSum(t);
    return row([t.name, t.partitions, sum, rate(t.name, sum, now), b]);
  }));
  fill($('topic-names'), topics.map((t) => {
    const o = document.createElement('option');
    o.value = t.name;
    return o;
  }));
}

async function showTopic(name) {
  const t = await getJSON(`/v1/topics/${seg(name)}`);
  $('td-name').textContent = `${t.name}: ${t.partitions} partition(s), retention ${t.retention_ms || '∞'} ms`;
  fill($('td-parts').tBodies[0], (t.partition_offsets || []).map((p) =>
    row([p.partition, p.first_offset, p.end_offset, p.bytes])));
  $('topic-detail').hidden = false;
}

// ---------- durable consumers and webhooks ----------

function sumOf(parts, field) {
  return (parts || []).reduce((a, p) => a + (p[field] || 0), 0);
}

async function refreshConsumers() {
  const [{ consumers }, { webhooks }] = await Promise.all([getJSON('/v1/consumers'), getJSON('/v1/webhooks')]);
  const hooks = new Map(webhooks.map((w) => [w.name, w]));
  fill($('consumer-table').tBodies[0], consumers.map((c) => {
    const errs = (c.partitions || []).map((p) => p.last_error).filter(Boolean);
    const tr = row([c.name, c.topic, hooks.has(c.name) ? 'webhook' : c.mode, sumOf(c.partitions, 'in_flight'),
      sumOf(c.partitions, 'lag'), sumOf(c.partitions, 'acked'), sumOf(c.partitions, 'redelivered'),
      sumOf(c.partitions, 'dead_lettered'), errs[0] || '']);
    if (sumOf(c.partitions, 'dead_lettered') > 0) tr.classList.add('bad');
    return tr;
  }));
  fill($('webhook-table').tBodies[0], webhooks.map((w) => {
    const next = Math.min(...(w.partitions || []).map((p) => p.next_attempt_ms || Infinity));
    const tr = row([w.name, w.callback ? '(callback URLs)' : w.url, w.paused ? `paused${w.disabled_reason ? ': ' + w.disabled_reason : ''}` : 'delivering',
      sumOf(w.partitions, 'delivered'), sumOf(w.partitions, 'retries'),
      Number.isFinite(next) ? new Date(next).toLocaleTimeString() : '–']);
    if (w.paused) tr.classList.add('bad');
    return tr;
  }));
}

// ---------- groups ----------

async function showGroup(ev) {
  ev.preventDefault();
  const g = await getJSON(`/v1/groups/${seg($('group-name').value)}`);
  fill($('group-table').tBodies[0], (g.partitions || []).map((p) =>
    row([p.topic, p.partition, p.committed, p.end, p.lag])));
}

// ---------- publish ----------

async function publishWs() {
  const opts = { key: $('pub-key').value || undefined, headers: { 'content-type': $('pub-type').value || 'text/plain' } };
  if ($('pub-partition').value !== '') opts.partition = Number($('pub-partition').value);
  try {
    const a = await wsClient().publish($('pub-topic').value, $('pub-body').value, opts);
    $('pub-result').textContent = `ack: partition ${a.partition} offset ${a.offset}${a.duplicate ? ' (duplicate)' : ''}`;
  } catch (e) {
    $('pub-result').textContent = `error: ${e.message}`;
  }
}

async function publish(ev) {
  ev.preventDefault();
  if ($('pub-via').value === 'ws') return publishWs();
  const headers = { 'Content-Type': $('pub-type').value || 'application/octet-stream' };
  if ($('pub-key').value) headers['Sluice-Key'] = $('pub-key').value;
  if ($('pub-partition').value !== '') headers['Sluice-Partition'] = $('pub-partition').value;
  const r = await fetch(`/v1/topics/${seg($('pub-topic').value)}/messages`, {
    method: 'POST', headers, body: $('pub-body').value,
  });
  const body = await r.json().catch(() => null);
  if (r.status === 201 && body) {
    $('pub-result').textContent =
      `${r.status}: partition ${body.partition} offset ${body.offset} (term ${body.term}, log index ${body.log_index})`;
  } else {
    $('pub-result').textContent = `${r.status}: ${body ? body.detail || body.title : 'no answer body'}`;
  }
}

// ---------- live tail (Server-Sent Events) ----------

function tailRow(ev) {
  let m;
  try {
    m = JSON.parse(ev.data);
  } catch {
    m = { payload: ev.data };
  }
  addTailRow(m);
}

function addTailRow(m) {
  const payload = m.payload_encoding === 'base64' ? `(base64) ${m.payload}` :
    typeof m.payload === 'string' ? m.payload : JSON.stringify(m.payload);
  const tr = row([m.partition, m.offset, m.timestamp ? new Date(m.timestamp).toISOString() : '',
    m.key === null || m.key === undefined ? '' : m.key, m.headers ? JSON.stringify(m.headers) : '', payload]);
  tr.lastChild.className = 'payload';
  tr.dataset.partition = m.partition;
  tr.dataset.offset = m.offset;
  const log = $('tail-log');
  log.prepend(tr);
  while (log.rows.length > TAIL_ROWS_MAX) log.deleteRow(-1);
}

function stopTail() {
  if (source) source.close();
  source = null;
  if (wsTail) wsTail.close();
  wsTail = null;
  $('tail-state').textContent = 'stopped';
  $('tail-stop').disabled = true;
}

// The WebSocket tail: sluice.js reconnects by itself (to this node) and
// resumes each partition after the last message shown.
async function tailWs(topic, from) {
  const sub = wsClient().subscribe(topic, { from });
  wsTail = sub;
  $('tail-state').textContent = client.open ? `tailing ${topic}` : 'connecting…';
  try {
    for await (const m of sub) addTailRow(m);
  } catch (e) {
    if (wsTail === sub) $('tail-state').textContent = `ended: ${e.message}`;
  }
}

function startTail(ev) {
  ev.preventDefault();
  stopTail();
  const topic = $('tail-topic').value;
  const from = $('tail-from').value;
  $('tail-stop').disabled = false;
  if ($('tail-via').value === 'ws') {
    tailWs(topic, from);
    return;
  }
  // EventSource resumes by itself after a drop: it sends Last-Event-ID, the
  // position of every partition after the last event it received.
  source = new EventSource(`/v1/topics/${seg(topic)}/events?format=json&from=${from}`);
  source.addEventListener(topic, tailRow);
  source.addEventListener('reset', (e) => {
    $('tail-state').textContent = `retention passed the position: restarted at ${e.data}`;
  });
  source.onopen = () => { $('tail-state').textContent = `tailing ${topic}`; };
  source.onerror = () => {
    $('tail-state').textContent = source && source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting…';
  };
  $('tail-stop').disabled = false;
}

// ---------- sign-in (a token in the sluice_token cookie) ----------

function setToken(t) {
  const attrs = `; path=/; SameSite=Strict${location.protocol === 'https:' ? '; Secure' : ''}`;
  document.cookie = t ? `sluice_token=${t}${attrs}` : `sluice_token=${attrs}; max-age=0`;
  if (client) { client.close(); client = null; } // the socket keeps its upgrade's identity
  showAuth();
}

function showAuth() {
  const has = /(?:^|;\s*)sluice_token=[^;]+/.test(document.cookie);
  $('auth-state').textContent = has ? 'signed in with a token' : 'no token';
  $('auth-out').hidden = !has;
}

function signIn(ev) {
  ev.preventDefault();
  const t = $('auth-token').value.trim();
  if (!/^v4\.public\.[A-Za-z0-9_\-.]+$/.test(t)) {
    $('auth-state').textContent = 'not a token (sluice token issue prints one)';
    return;
  }
  $('auth-token').value = '';
  setToken(t);
  poll(true);
}

{
  const q = new URLSearchParams(location.search);
  const t = q.get('access_token');
  if (t) {
    setToken(t);
    q.delete('access_token');
    const rest = q.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
}

// ---------- start ----------

let pollTimer = null;
async function poll(now) {
  if (now && pollTimer) clearTimeout(pollTimer);
  try {
    await Promise.all([refreshCluster(), refreshTopics(), refreshConsumers()]);
    showError('');
  } catch (e) {
    showError(e.message);
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

const guard = (fn) => (ev) => fn(ev).catch((e) => showError(e.message));
$('group-form').addEventListener('submit', guard(showGroup));
$('pub-form').addEventListener('submit', guard(publish));
$('tail-form').addEventListener('submit', startTail);
$('tail-stop').addEventListener('click', stopTail);
$('auth-form').addEventListener('submit', signIn);
$('auth-out').addEventListener('click', () => { setToken(''); poll(true); });
showAuth();
poll();
