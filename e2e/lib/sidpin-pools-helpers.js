'use strict';
// Helpers of e2e/tests/sidpin-pools.test.js (issue 6: health checks, failover, drain, hot reload,
// graceful shutdown, the /api/nodes part of the admin API). sidpin runs from a config FILE of the test's
// own (memory store, admin listener on a free loopback port, fast health checks) that the tests rewrite
// while it runs; chat nodes are Go chatnodes on the test Redis fan-out. Clients: socket.io-client v4
// with reconnection on (every connect, disconnect and connect_error recorded with its time), a strict raw
// Engine.IO v4 polling session over node:http (every request's outcome classified: answered in full,
// refused, reset before an answer, cut mid-answer, timed out), and a raw Engine.IO WebSocket session over
// the `ws` package (the close code is recorded). Every wait and loop is bounded in count and time.
const { sourceOpts } = require('./source-addr');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { start, freePort } = require('./procs');
const { redisAddr, uniqueChannel, startNode, sleep, httpGet } = require('./chat-cluster');
const { waitProxying, errText } = require('./sidpin-helpers');
const { waitUntil } = require('./sidpin-scenario');
const { tail, summaryOf } = require('./sidpin-redis-helpers');

const SESSION_UNKNOWN = '{"code":1,"message":"Session ID unknown"}';
const EIO_PATH = '/socket.io/';

// ------------------------------------------------------------------------------------------ chat nodes

// startNodes starts Go chatnodes sharing one Redis fan-out channel; extra nodes can join it later with
// cluster.add(name).
async function startNodes(names, tag, extraArgs = []) {
  const redis = redisAddr();
  const channel = uniqueChannel(tag);
  const cluster = {
    nodes: [],
    byName: (n) => cluster.nodes.find((x) => x.name === n),
    async add(name) {
      const node = await startNode(name, { redis, channel, extraArgs });
      cluster.nodes.push(node);
      return node;
    },
    stop: () => Promise.all(cluster.nodes.map((n) => n.proc.stop())),
  };
  try {
    for (const n of names) await cluster.add(n);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

// ---------------------------------------------------------------------------------------------- config

const FAST_HEALTH = { kind: 'http', path: '/healthz', interval: '300ms', timeout: '300ms', rise: 2, fall: 2 };

// poolConfigYAML is a sidpin config of one pool "chat". nodes: [{name, url, drain, weight}] (weight may be
// any value, to write an invalid file).
function poolConfigYAML({
  listenPort, adminPort, tokenEnv = '', nodes, onNodeRemoved = null, health = FAST_HEALTH, shutdownGrace = null,
  log = 'log: {level: info}',
}) {
  const lines = [
    `listen: 127.0.0.1:${listenPort}`,
    'admin:',
    `  listen: 127.0.0.1:${adminPort}`,
  ];
  if (tokenEnv) lines.push(`  token_env: ${tokenEnv}`);
  lines.push('store: {kind: memory}', 'pools:', '  - name: chat');
  if (onNodeRemoved) lines.push(`    on_node_removed: ${onNodeRemoved}`);
  lines.push('    health:');
  for (const [k, v] of Object.entries(health)) lines.push(`      ${k}: ${v}`);
  lines.push('    nodes:');
  for (const n of nodes) {
    const extra = [];
    if (n.weight !== undefined) extra.push(`weight: ${n.weight}`);
    if (n.drain !== undefined) extra.push(`drain: ${n.drain}`);
    lines.push(`      - {name: ${n.name}, url: "${n.url}"${extra.length ? `, ${extra.join(', ')}` : ''}}`);
  }
  if (shutdownGrace) lines.push('timeouts:', `  shutdown_grace: ${shutdownGrace}`);
  lines.push(log);
  return `${lines.join('\n')}\n`;
}

// ConfigFile is a sidpin config in a temp dir of its own. write(patch) rewrites it in place (same inode);
// writeRenamed(patch) writes a temp file beside it and renames it over the file; linkOutside() makes a
// hard link to the file in another directory, and writeThroughLink(patch) rewrites the file in place
// through that link (no event in the file's own directory: sidpin's directory watch does not see it).
class ConfigFile {
  constructor(opts) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidpin-pools-e2e-'));
    this.file = path.join(this.dir, 'sidpin.yaml');
    this.opts = { ...opts };
    this.link = null;
    this.linkDir = null;
    fs.writeFileSync(this.file, poolConfigYAML(this.opts));
  }

  text(patch = {}) {
    return poolConfigYAML({ ...this.opts, ...patch });
  }

  // commit records patch as the config in the file (what sidpin should run once it applies it).
  commit(patch) {
    this.opts = { ...this.opts, ...patch };
    return poolConfigYAML(this.opts);
  }

  write(patch = {}) {
    fs.writeFileSync(this.file, this.commit(patch));
  }

  // writeInvalid writes a config that is NOT recorded as the running one.
  writeInvalid(patch) {
    const text = this.text(patch);
    fs.writeFileSync(this.file, text);
    return text;
  }

  writeRenamed(patch = {}) {
    const tmp = path.join(this.dir, `.sidpin.yaml.${process.pid}.tmp`);
    fs.writeFileSync(tmp, this.commit(patch));
    fs.renameSync(tmp, this.file);
  }

  linkOutside() {
    this.linkDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidpin-pools-e2e-link-'));
    this.link = path.join(this.linkDir, 'same-inode.yaml');
    fs.linkSync(this.file, this.link);
  }

  writeThroughLink(patch = {}) {
    fs.writeFileSync(this.link, this.commit(patch));
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (this.linkDir) fs.rmSync(this.linkDir, { recursive: true, force: true });
  }
}

// newConfig picks free ports for sidpin's two listeners and writes the first config.
async function newConfig({ nodes, ...rest }) {
  return new ConfigFile({ listenPort: await freePort(), adminPort: await freePort(), nodes, ...rest });
}

// ----------------------------------------------------------------------------------------------- sidpin

// startPoolSidpin runs `sidpin -config FILE` (the environment of this process, so a token variable set
// in process.env reaches it) and waits (≤ 10 s each) until it proxies GET /healthz to a node and its
// admin listener answers GET /healthz with 200.
async function startPoolSidpin(cfg, { token = null } = {}) {
  const args = ['-config', cfg.file];
  const proc = start('sidpin', args);
  const sp = {
    name: 'sidpin',
    proc,
    port: cfg.opts.listenPort,
    url: `http://127.0.0.1:${cfg.opts.listenPort}`,
    admin: `http://127.0.0.1:${cfg.opts.adminPort}`,
    token,
    args,
    exited: new Promise((resolve) => proc.child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }))),
  };
  await waitProxying(sp, `config:\n${fs.readFileSync(cfg.file, 'utf8')}`);
  const deadline = Date.now() + 10000;
  let last = 'no answer';
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    try {
      const r = await httpGet(`${sp.admin}/healthz`, 1000);
      if (r.status === 200) return sp;
      last = `${r.status} ${r.body.slice(0, 200)}`;
    } catch (err) { last = err.message; }
    await sleep(50);
  }
  await proc.stop();
  throw new Error(`sidpin's admin listener ${sp.admin} did not answer GET /healthz with 200 within 10 s (last: ${last}); ` +
    `config:\n${fs.readFileSync(cfg.file, 'utf8')}\noutput:\n${proc.output()}`);
}

// adminGet is one GET on the admin listener; resolves {status, body, json (or null)}; never rejects.
async function adminGet(sp, p, { token, ms = 2000 } = {}) {
  const tok = token === undefined ? sp.token : token;
  const headers = tok ? { authorization: `Bearer ${tok}` } : {};
  const r = await rawHttp(`${sp.admin}${p}`, { headers, ms });
  let json = null;
  try { json = JSON.parse(r.body); } catch { /* not JSON */ }
  return { status: r.status, body: r.body, json, outcome: r.outcome };
}

// apiNodes is GET /api/nodes's node list; throws with the answer when it is not 200 JSON {"nodes":[…]}.
async function apiNodes(sp) {
  const r = await adminGet(sp, '/api/nodes');
  if (r.status !== 200 || !r.json || !Array.isArray(r.json.nodes)) {
    throw new Error(`GET ${sp.admin}/api/nodes: ${r.status} ${String(r.body).slice(0, 400)} (outcome ${r.outcome})`);
  }
  return r.json.nodes;
}

function brief(nodes) {
  return nodes.map((n) => `${n.name}:${n.state}${n.draining ? '(draining)' : ''} healthy=${n.healthy} sessions=${n.sessions}` +
    `${n.last_error ? ` last_error=${JSON.stringify(n.last_error).slice(0, 80)}` : ''}`).join(', ');
}

// waitNodes polls GET /api/nodes every 50 ms until pred(list) is true (≤ ms); resolves with the list or
// throws with the last list seen and the tail of sidpin's log.
async function waitNodes(sp, pred, ms, what) {
  const deadline = Date.now() + ms;
  let last = null;
  let lastErr = null;
  for (let i = 0; i < Math.ceil(ms / 50) + 1; i++) {
    try {
      last = await apiNodes(sp);
      lastErr = null;
      if (pred(last)) return last;
    } catch (err) { lastErr = err; }
    if (Date.now() >= deadline) break;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for /api/nodes: ${what}; last seen: ` +
    `${last ? brief(last) : 'nothing'}${lastErr ? `; last error: ${lastErr.message}` : ''}\nsidpin log (tail):\n${tail(sp.proc)}`);
}

function nodeIn(list, name) {
  return list.find((n) => n.pool === 'chat' && n.name === name) || list.find((n) => n.name === name);
}

// logSince is what sidpin logged after offset (an earlier proc.output().length).
function logSince(sp, offset) {
  return sp.proc.output().slice(offset);
}

// waitLog waits (≤ ms) until sidpin logs a line matching re after offset; resolves with the line or null.
async function waitLog(sp, offset, re, ms) {
  let line = null;
  await waitUntil(() => {
    line = logSince(sp, offset).split('\n').find((l) => re.test(l)) || null;
    return line !== null;
  }, ms);
  return line;
}

function countLines(text, re) {
  return text.split('\n').filter((l) => re.test(l)).length;
}

// ------------------------------------------------------------------------------------ socket.io client

// ChatClient is a socket.io-client v4 socket (forceNew; reconnection on unless told) that records its
// whole life: every connect (and the node of the welcome that followed), disconnect (with the WebSocket
// close code when there is one), connect_error, and every "probe" message it receives, with times.
class ChatClient {
  constructor(url, opts, label) {
    const { io } = require('socket.io-client');
    this.label = label;
    this.socket = io(url, { forceNew: true, reconnection: true, timeout: 5000, ...sourceOpts(), ...opts });
    this.node = null; // node of the latest welcome
    this.nodes = []; // every welcome: {node, at}
    this.connects = []; // times of "connect"
    this.disconnects = []; // {at, reason, code, detail}
    this.connectErrors = []; // {at, detail}
    this.probes = []; // {at, id, node (the sender's), from}
    this.loadReceived = 0;
    this.closing = false;
    this.onConnect = null; // called on every connect after the first, when set
    const s = this.socket;
    s.on('connect', () => {
      this.connects.push(Date.now());
      if (this.connects.length > 1 && this.onConnect) this.onConnect(this);
    });
    s.on('welcome', (w) => {
      this.node = w && w.node;
      this.nodes.push({ node: this.node, at: Date.now() });
    });
    s.on('disconnect', (reason, details) => {
      const ctx = details && details.context;
      const code = ctx && typeof ctx.code === 'number' ? ctx.code : null;
      let detail = '';
      if (details) detail = typeof details.description === 'string' ? details.description : errText(details);
      this.disconnects.push({ at: Date.now(), reason, code, detail, closing: this.closing });
    });
    s.on('connect_error', (e) => this.connectErrors.push({ at: Date.now(), detail: errText(e), closing: this.closing }));
    s.on('message', (m) => {
      const msg = m && m.msg;
      if (msg && msg.probe) this.probes.push({ at: Date.now(), id: msg.probe, node: m.node, from: m.from });
      else this.loadReceived += 1;
    });
  }

  get transport() {
    const e = this.socket.io.engine;
    return e && e.transport ? e.transport.name : null;
  }

  // troubles are the disconnects and connect_errors not caused by close(), as text.
  troubles(since = 0) {
    return [
      ...this.disconnects.filter((d) => !d.closing && d.at >= since).map((d) => `disconnect ${d.reason}${d.code !== null ? ` code ${d.code}` : ''}${d.detail ? ` (${d.detail})` : ''}`),
      ...this.connectErrors.filter((d) => !d.closing && d.at >= since).map((d) => `connect_error ${d.detail}`),
    ];
  }

  emit(msg) {
    this.socket.emit('sendMessage', msg);
  }

  probe(id) {
    this.socket.emit('sendMessage', { probe: id });
  }

  close() {
    this.closing = true;
    this.socket.disconnect();
  }
}

// openClients opens n ChatClients and waits (≤ ms) until each has had a welcome or a trouble.
async function openClients(url, n, opts, labelPrefix, ms = 10000) {
  const clients = Array.from({ length: n }, (_, i) => new ChatClient(url, opts, `${labelPrefix}#${i}`));
  await waitUntil(() => clients.every((c) => c.node !== null || c.troubles().length > 0), ms);
  return clients;
}

function distribution(clients) {
  const d = {};
  for (const c of clients) d[c.node] = (d[c.node] || 0) + 1;
  return d;
}

// firstReceipt is the earliest receipt of probe id by one of observers (pred(observer) filters them).
function firstReceipt(observers, id, pred = () => true) {
  let best = null;
  for (const o of observers) {
    if (!pred(o)) continue;
    const p = o.probes.find((x) => x.id === id);
    if (p && (!best || p.at < best.at)) best = { ...p, observer: o.label, observerNode: o.node };
  }
  return best;
}

// startLoad makes every client emit a load message every everyMs (staggered), to everyone or to a room
// only; returns stop().
function startLoad(clients, everyMs, tag, room = null) {
  const timers = [];
  let k = 0;
  clients.forEach((c, i) => {
    timers.push(setTimeout(() => {
      const tick = () => { k += 1; c.emit(room ? { room, msg: { load: tag, k } } : { load: tag, k }); };
      tick();
      timers.push(setInterval(tick, everyMs));
    }, Math.round((i * everyMs) / Math.max(1, clients.length))));
  });
  return () => { for (const t of timers) { clearTimeout(t); clearInterval(t); } };
}

// ------------------------------------------------------------------------------ raw HTTP, classified

// rawHttp is one HTTP request on a new connection, bounded by ms. It never rejects; it resolves with
// {outcome, status, body, ms, startedAt, endedAt, detail}, outcome one of:
//   ok                   the whole answer arrived (Content-Length or chunked end seen by node's parser)
//   refused              ECONNREFUSED: nothing listens
//   reset-before-answer  the connection was accepted, then reset/closed before any response byte
//   cut-mid-answer       the response had started (status line / headers) and did not arrive in full
//   timeout              no full answer within ms
//   aborted              stopped by the caller's signal
function rawHttp(url, { method = 'GET', body = null, headers = {}, ms = 5000, signal } = {}) {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let responded = false;
    let timer = null;
    let req = null;
    const onAbort = () => { if (req) req.destroy(); done('aborted', null, '', 'aborted by the caller'); };
    let resHeaders = null;
    const done = (outcome, status, text, detail = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
      const endedAt = Date.now();
      resolve({ outcome, status, body: text, detail, ms: endedAt - startedAt, startedAt, endedAt, method, url, headers: resHeaders });
    };
    const h = { ...headers };
    if (body !== null) {
      h['content-type'] = 'text/plain;charset=UTF-8';
      h['content-length'] = Buffer.byteLength(body);
    }
    req = http.request(url, { method, headers: h, agent: false }, (res) => {
      responded = true;
      resHeaders = res.headers;
      const chunks = [];
      let got = 0;
      res.on('data', (d) => { chunks.push(d); got += d.length; });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const cl = res.headers['content-length'];
        if (cl !== undefined && Number(cl) !== got) {
          done('cut-mid-answer', res.statusCode, text, `content-length ${cl}, got ${got} bytes`);
        } else {
          done('ok', res.statusCode, text);
        }
      });
      res.on('aborted', () => done('cut-mid-answer', res.statusCode, Buffer.concat(chunks).toString('utf8'), `response aborted after ${got} bytes`));
      res.on('error', (e) => done('cut-mid-answer', res.statusCode, Buffer.concat(chunks).toString('utf8'), `${e.code || ''} ${e.message} after ${got} bytes`));
      res.on('close', () => {
        if (!res.complete) done('cut-mid-answer', res.statusCode, Buffer.concat(chunks).toString('utf8'), `connection closed after ${got} bytes`);
      });
    });
    timer = setTimeout(() => { req.destroy(); done('timeout', null, '', `no full answer within ${ms} ms (response started: ${responded})`); }, ms);
    if (signal) {
      if (signal.aborted) { onAbort(); return; }
      signal.addEventListener('abort', onAbort, { once: true });
    }
    req.on('error', (e) => {
      if (responded) done('cut-mid-answer', null, '', `${e.code || ''} ${e.message}`);
      else if (e.code === 'ECONNREFUSED') done('refused', null, '', e.message);
      else done('reset-before-answer', null, '', `${e.code || ''} ${e.message}`);
    });
    if (body !== null) req.write(body);
    req.end();
  });
}

// payloadProblem says what is wrong with an Engine.IO v4 polling payload (null when it is well formed:
// records separated by \x1e, each a packet type 0-6 and, for 0/40/42/43, valid JSON after the type).
function payloadProblem(body) {
  if (body === '') return 'empty payload';
  for (const rec of body.split('\x1e')) {
    if (!/^[0-6]/.test(rec)) return `record ${JSON.stringify(rec.slice(0, 40))} is no Engine.IO packet`;
    let json = null;
    if (rec[0] === '0') json = rec.slice(1);
    else if (/^4[0-6]/.test(rec)) json = rec.slice(2).replace(/^\d+-/, '').replace(/^\/[^,]*,/, '').replace(/^\d+/, '');
    if (json) {
      try { JSON.parse(json); } catch { return `record ${JSON.stringify(rec.slice(0, 60))}… is not valid JSON (truncated?)`; }
    }
  }
  return null;
}

// RawPolling is an Engine.IO v4 polling session of namespace "/" over node:http: handshake, POST "40",
// then one held GET at a time, pongs for pings, and chat messages; POSTs serialized (a chat node closes a
// session on overlapping POSTs). Every request is kept in this.requests with its classified outcome. The
// session stops on its first request that is not a 200 (stopReason says why).
class RawPolling {
  constructor(base, label) {
    this.base = base;
    this.label = label;
    this.sid = null;
    this.node = null;
    this.requests = [];
    this.chain = Promise.resolve();
    this.abort = new AbortController();
    this.running = false;
    this.stopReason = null;
    this.probes = [];
  }

  url() {
    return `${this.base}${EIO_PATH}?EIO=4&transport=polling&t=${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}${this.sid ? `&sid=${encodeURIComponent(this.sid)}` : ''}`;
  }

  async req(method, body, ms) {
    const r = await rawHttp(this.url(), { method, body, ms, signal: this.abort.signal });
    if (r.outcome !== 'aborted') this.requests.push(r);
    if (r.outcome === 'ok' && r.status === 200 && method === 'GET') {
      const problem = payloadProblem(r.body);
      if (problem) {
        r.outcome = 'cut-mid-answer';
        r.detail = `200 with a malformed payload: ${problem}`;
      }
    }
    if (r.outcome !== 'ok' || r.status !== 200) this.halt(r);
    return r;
  }

  halt(r) {
    if (this.stopReason === null && r.outcome !== 'aborted') {
      this.stopReason = `${r.method} ${r.outcome} ${r.status ?? ''} ${String(r.body).slice(0, 120)} ${r.detail}`.trim();
    }
    this.running = false;
  }

  post(payload, ms = 5000) {
    const p = this.chain.then(() => (this.running ? this.req('POST', payload, ms) : null));
    this.chain = p.then(() => {}, () => {});
    return p;
  }

  // open handshakes, joins "/" and waits (≤ ms) for the welcome; resolves true when welcomed.
  async open(ms = 5000) {
    this.running = true;
    const h = await this.req('GET', null, 5000);
    if (h.outcome !== 'ok' || h.status !== 200) return false;
    const m = /^0(\{.*?\})(?:\x1e|$)/.exec(h.body);
    try {
      this.sid = JSON.parse(m[1]).sid;
    } catch {
      this.halt({ method: 'GET', outcome: 'bad-handshake', status: 200, body: h.body, detail: '' });
      return false;
    }
    const c = await this.post('40');
    if (!c || c.status !== 200) return false;
    this.loop();
    await waitUntil(() => this.node !== null || !this.running, ms);
    return this.node !== null;
  }

  loop() {
    (async () => {
      for (let i = 0; i < 100000 && this.running; i++) {
        const r = await this.req('GET', null, 60000);
        if (r.outcome !== 'ok' || r.status !== 200) break;
        for (const rec of r.body.split('\x1e')) {
          if (rec === '2') this.post('3');
          else if (rec === '1') this.halt({ method: 'GET', outcome: 'close-packet', status: 200, body: '1', detail: 'the node closed the session' });
          else if (rec.startsWith('42')) {
            let ev = null;
            try { ev = JSON.parse(rec.slice(2)); } catch { /* counted by payloadProblem */ }
            if (ev && ev[0] === 'welcome') this.node = ev[1] && ev[1].node;
            if (ev && ev[0] === 'message' && ev[1] && ev[1].msg && ev[1].msg.probe) this.probes.push({ at: Date.now(), id: ev[1].msg.probe, node: ev[1].node });
          }
        }
      }
    })();
  }

  send(msg) {
    return this.post(`42${JSON.stringify(['sendMessage', msg])}`);
  }

  join(room) {
    return this.post(`42${JSON.stringify(['join', room])}`);
  }

  async close() {
    if (this.running && this.sid) await this.post('1', 2000);
    this.stop();
  }

  stop() {
    this.running = false;
    this.abort.abort();
  }

  bad() {
    return this.requests.filter((r) => r.outcome !== 'ok' || r.status !== 200);
  }
}

// ------------------------------------------------------------------------------- raw WebSocket client

// RawWS is an Engine.IO v4 WebSocket-first session of namespace "/" over the `ws` package (a dependency
// of socket.io-client): it answers pings and records the close code and reason.
class RawWS {
  constructor(base, label) {
    const WebSocket = require('ws');
    this.label = label;
    this.node = null;
    this.closed = null; // {code, reason, at}
    this.errors = [];
    this.ws = new WebSocket(`${base.replace(/^http/, 'ws')}${EIO_PATH}?EIO=4&transport=websocket`, { perMessageDeflate: false });
    this.ws.on('message', (data) => {
      const s = data.toString();
      if (s.startsWith('0')) this.ws.send('40');
      else if (s === '2') this.ws.send('3');
      else if (s.startsWith('42["welcome"')) {
        try { this.node = JSON.parse(s.slice(2))[1].node; } catch { /* stays null */ }
      }
    });
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString(), at: Date.now() }; });
    this.ws.on('error', (e) => this.errors.push(`${e.code || ''} ${e.message}`.trim()));
  }

  send(msg) {
    if (this.ws.readyState === 1) this.ws.send(`42${JSON.stringify(['sendMessage', msg])}`);
  }

  join(room) {
    if (this.ws.readyState === 1) this.ws.send(`42${JSON.stringify(['join', room])}`);
  }

  stop() {
    try { this.ws.terminate(); } catch { /* gone */ }
  }
}

module.exports = {
  SESSION_UNKNOWN, FAST_HEALTH, startNodes, poolConfigYAML, ConfigFile, newConfig, startPoolSidpin, adminGet, apiNodes,
  brief, waitNodes, nodeIn, logSince, waitLog, countLines, ChatClient, openClients, distribution, firstReceipt, startLoad,
  rawHttp, payloadProblem, RawPolling, RawWS, summaryOf, tail, sleep, waitUntil,
};
