'use strict';
// Helpers of the admin listener's end-to-end tests (e2e/tests/sidpin-admin.test.js, admin-page.test.js):
// a sidpin config with an admin listener and admin.token_env, sidpin instances started from it with the
// token in their environment, bounded HTTP requests to the admin API, the pin list read page by page
// through its cursor, a Prometheus text parser, socket.io-client v4 clients that follow their session
// across reconnections, and a bounded waitUntil. Every request and wait is bounded in time and count;
// only 127.0.0.1 is ever addressed.
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { start, freePort } = require('./procs');
const { sourceOpts } = require('./source-addr');
const { sleep, withTimeout, Inbox } = require('./chat-cluster');
const { waitProxying, errText } = require('./sidpin-helpers');
const { configYAML } = require('./sidpin-redis-helpers');

// TOKEN_ENV is the environment variable that the tests' configs name in admin.token_env.
const TOKEN_ENV = 'SIDPIN_E2E_ADMIN_TOKEN';

function unique(tag) {
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

// adminConfigYAML is a sidpin config: pool "chat" of the given nodes, an admin listener on adminPort with
// admin.token_env, the store redis (redisAddr, prefix) or memory.
function adminConfigYAML({ tokenEnv = TOKEN_ENV, store = 'memory', ...rest }) {
  return configYAML({ ...rest, store, tokenEnv, redisTimeout: '200ms' });
}

// startAdminSidpin writes a config of its own (temp dir) and runs `sidpin -config FILE` with the token in
// the environment variable the config names; waits (≤ 10 s) until a plain request is proxied and (≤ 5 s)
// until the admin listener answers /healthz. Returns {name, url, admin, adminPort, proc, config, remove()}.
async function startAdminSidpin(name, { nodes, token, tokenEnv = TOKEN_ENV, store = 'memory', redisAddr, prefix }) {
  const listenPort = await freePort();
  const adminPort = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidpin-admin-e2e-'));
  const file = path.join(dir, 'sidpin.yaml');
  const text = adminConfigYAML({ listenPort, adminPort, tokenEnv, store, redisAddr, prefix, nodes });
  fs.writeFileSync(file, text);
  // The child inherits process.env: the token reaches sidpin only through the variable the config names.
  if (tokenEnv) process.env[tokenEnv] = token;
  const args = ['-config', file];
  const proc = start('sidpin', args);
  const sp = {
    name, port: listenPort, proc, url: `http://127.0.0.1:${listenPort}`, args, config: text, file,
    adminPort, admin: `http://127.0.0.1:${adminPort}`,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  try {
    await waitProxying(sp, `config:\n${text}`);
  } catch (err) {
    sp.remove();
    throw err;
  }
  const deadline = Date.now() + 5000;
  let last = 'no answer';
  for (let i = 0; i < 100 && Date.now() < deadline; i++) {
    const r = await adminRequest(sp.admin, 'GET', '/healthz', { ms: 1000 });
    if (r.status === 200) return sp;
    last = `${r.status} ${r.body.slice(0, 200)}`;
    await sleep(50);
  }
  await proc.stop();
  sp.remove();
  throw new Error(`sidpin ${name}: the admin listener ${sp.admin} did not answer GET /healthz within 5 s (last: ${last}); ` +
    `config:\n${text}\noutput:\n${proc.output()}`);
}

// adminRequest sends one request (new connection) to base+path, bounded by ms. token: sent as
// "Authorization: Bearer TOKEN" unless null; headers are added as given. Never rejects: resolves with
// {status, headers, body (string), json (parsed, or undefined)} or {status: 'error', body: message}.
function adminRequest(base, method, pathAndQuery, { token = null, headers = {}, body = null, ms = 5000 } = {}) {
  const h = { ...headers };
  if (token !== null && token !== undefined) h.authorization = `Bearer ${token}`;
  if (body !== null) {
    h['content-length'] = Buffer.byteLength(body);
    if (!h['content-type']) h['content-type'] = 'application/x-www-form-urlencoded';
  }
  return new Promise((resolve) => {
    let settled = false;
    const done = (v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      let json;
      if (typeof v.body === 'string' && /json/.test(String(v.headers && v.headers['content-type']))) {
        try { json = JSON.parse(v.body); } catch { /* left undefined: the assertion shows the body */ }
      }
      resolve({ ...v, json });
    };
    const req = http.request(`${base}${pathAndQuery}`, { method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => done({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => done({ status: 'error', headers: {}, body: e.message }));
    });
    const timer = setTimeout(() => { req.destroy(); done({ status: 'error', headers: {}, body: `timed out after ${ms} ms` }); }, ms);
    req.on('error', (e) => done({ status: 'error', headers: {}, body: e.message }));
    if (body !== null) req.write(body);
    req.end();
  });
}

// api is adminRequest that must answer `want` (default 200) with JSON; it throws with the request and
// the answer otherwise, and returns the parsed body.
async function api(base, method, pathAndQuery, token, want = 200) {
  const r = await adminRequest(base, method, pathAndQuery, { token });
  if (r.status !== want || r.json === undefined) {
    throw new Error(`${method} ${base}${pathAndQuery}: want ${want} with JSON, got ${r.status} ` +
      `(${r.headers && r.headers['content-type']}) ${String(r.body).slice(0, 400)}`);
  }
  return r.json;
}

// listAllPins reads GET /api/pins?query page by page (limit per page) through the cursor, at most
// maxPages pages. Returns {pins, pages, cursors}.
async function listAllPins(base, token, query = {}, { limit = 17, maxPages = 200 } = {}) {
  const pins = [];
  const cursors = [];
  const seen = new Map(); // sid -> page it came on
  let cursor = '';
  let pages = 0;
  for (; pages < maxPages; pages++) {
    const q = new URLSearchParams({ ...query, limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    const page = await api(base, 'GET', `/api/pins?${q}`, token);
    if (!Array.isArray(page.pins)) throw new Error(`GET /api/pins?${q}: no pins array: ${JSON.stringify(page).slice(0, 300)}`);
    if (page.pins.length > limit) throw new Error(`GET /api/pins?${q}: ${page.pins.length} pins on a page of limit ${limit}`);
    // A cursor must move forward: a sid listed again means the paging went back (and would loop).
    const again = page.pins.filter((p) => seen.has(p.sid));
    if (again.length) {
      const prev = pins[pins.length - 1];
      throw new Error(`GET ${base}/api/pins?${q} (page ${pages + 1}): the cursor went back: ${again.length} sid(s) of earlier pages listed again ` +
        `(e.g. ${again[0].sid} of page ${seen.get(again[0].sid)}); cursor ${JSON.stringify(cursor)} = "${decodeCursorText(cursor)}" ` +
        `was made after the pin ${JSON.stringify(prev)}`);
    }
    for (const p of page.pins) seen.set(p.sid, pages + 1);
    pins.push(...page.pins);
    cursor = page.next || '';
    if (!cursor) return { pins, pages: pages + 1, cursors };
    cursors.push(cursor);
  }
  throw new Error(`GET /api/pins ${JSON.stringify(query)}: still a next cursor after ${maxPages} pages (${pins.length} pins)`);
}

// decodeCursorText shows what an opaque cursor holds when it is base64url text (for failure messages only).
function decodeCursorText(cursor) {
  try { return Buffer.from(cursor, 'base64url').toString('utf8').replace(/[\x00-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`); } catch { return '?'; }
}

// nodesOf is GET /api/nodes as a map "pool/name" -> node view.
async function nodesOf(base, token) {
  const out = await api(base, 'GET', '/api/nodes', token);
  const map = {};
  for (const n of out.nodes || []) map[`${n.pool}/${n.name}`] = n;
  return { map, raw: out };
}

// parseMetrics reads Prometheus text exposition into [{name, labels, value}] (comments skipped).
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// sumMetric adds the samples of name whose labels include every label of match.
function sumMetric(samples, name, match = {}) {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

// waitUntil polls cond() (sync or async) every tick ms until it is truthy or ms have passed; resolves
// with the last value of cond().
async function waitUntil(cond, ms, tick = 25) {
  const deadline = Date.now() + ms;
  let v;
  for (let i = 0; i < Math.ceil(ms / tick) + 2; i++) {
    v = await cond();
    if (v || Date.now() >= deadline) return v;
    await sleep(tick);
  }
  return v;
}

// FollowedClient is a socket.io-client v4 socket (forceNew) whose session is followed across
// reconnections: node is the node of the last "welcome", engineId() the engine id of the current
// session, ids every engine id it has had, and errors every error event (disconnects included) with the
// time it came. reconnection is on (short delays) only when reconnect is true.
class FollowedClient {
  constructor(url, { kind, label, reconnect = false, extra = {} }) {
    const { io } = require('socket.io-client');
    const transports = { polling: ['polling'], websocket: ['websocket'], default: undefined }[kind];
    const opts = { forceNew: true, timeout: 8000, reconnection: reconnect, reconnectionDelay: 100, reconnectionDelayMax: 400,
      randomizationFactor: 0, reconnectionAttempts: reconnect ? 20 : 0, ...sourceOpts(), ...extra };
    if (transports) opts.transports = transports;
    this.url = url;
    this.kind = kind;
    this.label = label;
    this.socket = io(url, opts);
    this.node = null;
    this.welcomes = new Inbox(this.socket, 'welcome', label);
    this.errors = [];
    this.events = []; // {t, what}: connect, disconnect, welcome … in order
    this.closing = false;
    this.upgradedTo = null;
    const note = (what) => { this.events.push({ t: Date.now(), what }); if (!this.closing) this.errors.push(what); };
    this.socket.on('welcome', (w) => { this.node = w && w.node; this.events.push({ t: Date.now(), what: `welcome ${this.node} ${this.engineId()}` }); });
    this.socket.on('connect', () => this.events.push({ t: Date.now(), what: `connect ${this.engineId()}` }));
    this.socket.on('connect_error', (e) => note(`connect_error: ${errText(e)}`));
    this.socket.on('disconnect', (reason, desc) => note(`disconnect: ${reason}${desc ? ` (${errText(desc)})` : ''}`));
    this.socket.io.on('error', (e) => note(`manager error: ${errText(e)}`));
    this.watchEngine(this.socket.io.engine);
    this.socket.io.on('open', () => this.watchEngine(this.socket.io.engine));
  }

  watchEngine(engine) {
    if (!engine || engine.__followed) return;
    engine.__followed = true;
    engine.on('upgrade', (tr) => { this.upgradedTo = tr.name; });
    engine.on('upgradeError', (e) => { if (!this.closing) this.errors.push(`engine upgradeError: ${errText(e)}`); });
  }

  engineId() {
    const e = this.socket.io.engine;
    return e ? e.id : null;
  }

  transport() {
    const e = this.socket.io.engine;
    return e && e.transport ? e.transport.name : null;
  }

  // waitWelcome resolves with the node of the first "welcome" (≤ ms).
  async waitWelcome(ms = 8000) {
    const w = await this.welcomes.waitFor(() => true, ms, 'the "welcome" event');
    return w.node;
  }

  close() {
    this.closing = true;
    this.socket.disconnect();
  }
}

// expectedPinTransport is what the pin of a client of each kind must say once it settled.
const PIN_TRANSPORT = { polling: 'polling', default: 'upgraded', websocket: 'websocket' };

// tail is the last n characters of a process's output, for failure messages.
function tail(proc, n = 3000) {
  const out = proc.output();
  return out.length > n ? `…${out.slice(-n)}` : out;
}

// countBy counts items by key(item).
function countBy(items, key) {
  const out = {};
  for (const it of items) out[key(it)] = (out[key(it)] || 0) + 1;
  return out;
}

module.exports = {
  TOKEN_ENV, unique, adminConfigYAML, startAdminSidpin, adminRequest, api, listAllPins, nodesOf, parseMetrics, sumMetric,
  waitUntil, FollowedClient, PIN_TRANSPORT, withTimeout, sleep, tail, countBy,
};
