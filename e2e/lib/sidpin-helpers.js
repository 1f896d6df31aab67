'use strict';
// Helpers of the sidpin end-to-end tests: start sidpin (quick start: -listen / -to) in front of chat
// nodes, start the official Node socket.io servers (e2e/lib/node-chat-server.js) as children, and
// socket.io-client v4 clients that record every error, with bounded waits everywhere.
const { sourceOpts } = require('./source-addr');
const http = require('node:http');
const path = require('node:path');
const { start, startCommand, freePort, runSync } = require('./procs');
const { redisAddr, uniqueChannel, sleep, httpGet, startCluster, Inbox, withTimeout } = require('./chat-cluster');

const SESSION_UNKNOWN = '{"code":1,"message":"Session ID unknown"}';

// sidpinHelp is the -h output of bin/sidpin (flags are listed there).
function sidpinHelp() {
  try {
    const r = runSync('sidpin', ['-h']);
    return `${r.stdout}${r.stderr}`;
  } catch (err) {
    return `cannot run sidpin -h: ${err.message}`;
  }
}

// requireQuickStart fails with a clear message when bin/sidpin has no -to flag yet.
function requireQuickStart() {
  const help = sidpinHelp();
  if (!/^\s*-to\b/m.test(help)) {
    throw new Error(`bin/sidpin has no -to flag (the quick start -listen/-to is not built yet); sidpin -h:\n${help}`);
  }
}

// waitProxying waits (≤ 10 s) until GET /healthz through sidpin answers 200 (proxied plainly to some
// node); on failure it stops sidpin and throws with its output and whatever context describes it.
async function waitProxying(sp, context) {
  const { proc } = sp;
  const deadline = Date.now() + 10000;
  let last = 'no answer';
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    if (!proc.alive()) {
      throw new Error(`sidpin instance ${sp.name} exited (code ${proc.child.exitCode}, signal ${proc.child.signalCode}) before answering; ` +
        `${context}output:\n${proc.output()}`);
    }
    try {
      const r = await httpGet(`${sp.url}/healthz`, 1000);
      if (r.status === 200) return sp;
      last = `${r.status} ${r.body.slice(0, 200)}`;
    } catch (err) { last = err.message; }
    await sleep(50);
  }
  await proc.stop();
  throw new Error(`sidpin instance ${sp.name} did not proxy GET /healthz with 200 within 10 s (last: ${last}); ${context}output:\n${proc.output()}`);
}

// startSidpin runs `sidpin -listen 127.0.0.1:PORT -to URL1,URL2,…` and waits (≤ 10 s) until a plain
// request (GET /healthz, proxied to some node) answers 200 through it.
async function startSidpin(nodes, { extraArgs = [] } = {}) {
  requireQuickStart();
  const port = await freePort();
  const args = ['-listen', `127.0.0.1:${port}`, '-to', nodes.map((n) => n.url).join(','), ...extraArgs];
  const proc = start('sidpin', args);
  const sp = { name: 'sidpin', port, proc, url: `http://127.0.0.1:${port}`, args };
  return waitProxying(sp, `args ${args.join(' ')}; `);
}

// startNodeServer starts e2e/lib/node-chat-server.js (official socket.io@4 + redis adapter) and waits
// (≤ 10 s) for its ready line and a 200 on /healthz. Same shape as chat-cluster's startNode.
async function startNodeServer(name, { redis, prefix, eio3 = false, compressThreshold = null } = {}) {
  const port = await freePort();
  const args = [path.join(__dirname, 'node-chat-server.js'), '--port', String(port), '--name', name,
    '--redis', redis, '--channel-prefix', prefix];
  if (eio3) args.push('--eio3');
  if (compressThreshold !== null) args.push('--compress-threshold', String(compressThreshold));
  const proc = startCommand(process.execPath, args);
  const ready = () => /^ready port=/m.test(proc.output());
  const node = { name, port, proc, url: `http://127.0.0.1:${port}` };
  const deadline = Date.now() + 10000;
  for (let i = 0; i < 400 && Date.now() < deadline; i++) {
    if (!proc.alive()) {
      throw new Error(`node-chat-server ${name} exited (code ${proc.child.exitCode}) before it was ready; args ${args.join(' ')}; output:\n${proc.output()}`);
    }
    if (ready()) {
      try {
        const r = await httpGet(`${node.url}/healthz`, 1000);
        if (r.status === 200) return node;
      } catch { /* not yet */ }
    }
    await sleep(25);
  }
  await proc.stop();
  throw new Error(`node-chat-server ${name} was not ready within 10 s; output:\n${proc.output()}`);
}

// startNodeCluster starts the named Node socket.io servers on the test Redis with one private key prefix.
async function startNodeCluster(names, tag, opts = {}) {
  const redis = redisAddr();
  const prefix = uniqueChannel(tag);
  const nodes = [];
  try {
    for (const n of names) nodes.push(await startNodeServer(n, { redis, prefix, ...opts }));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.proc.stop()));
    throw err;
  }
  return nodes;
}

// startBackends starts three nodes of a kind: 'go' (bin/chatnode, Engine.IO v3 accepted by default) or
// 'node' (official socket.io@4, --eio3 unless eio3:false).
async function startBackends(kind, tag, opts = {}) {
  const names = ['node1', 'node2', 'node3'];
  if (kind === 'go') return startCluster(names, tag);
  return startNodeCluster(names, tag, { eio3: true, ...opts });
}

function errText(e) {
  if (e === undefined) return '';
  if (e === null) return 'null';
  if (typeof e === 'string') return e;
  const parts = [e.message || String(e)];
  if (e.description !== undefined) {
    const d = e.description;
    parts.push(`description=${d && d.message ? d.message : typeof d === 'object' ? safeJSON(d) : d}`);
  }
  if (e.context && e.context.status !== undefined) parts.push(`status=${e.context.status}`);
  if (e.context && typeof e.context.responseText === 'string') parts.push(`body=${e.context.responseText.slice(0, 120)}`);
  if (e.type) parts.push(`type=${e.type}`);
  return parts.join(' ');
}

function safeJSON(v) {
  try { return JSON.stringify(v).slice(0, 200); } catch { return String(v); }
}

// trackedV4 opens a socket.io-client v4 socket (forceNew, reconnection off) and records, until close(),
// every connect_error, disconnect, manager error, engine error and engine upgradeError in t.errors.
// t.welcome resolves with the first "welcome"; t.messages is an Inbox of "message".
function trackedV4(url, opts, label) {
  const { io } = require('socket.io-client');
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 10000, ...sourceOpts(), ...opts });
  const t = {
    socket, label, errors: [], closing: false, upgradedTo: null, welcomeNode: null,
    messages: new Inbox(socket, 'message', label),
    welcomes: new Inbox(socket, 'welcome', label),
    close() { t.closing = true; socket.disconnect(); },
  };
  const note = (what) => { if (!t.closing) t.errors.push(what); };
  socket.on('connect_error', (e) => note(`connect_error: ${errText(e)}`));
  socket.on('disconnect', (reason, desc) => note(`disconnect: ${reason}${desc ? ` (${errText(desc)})` : ''}`));
  socket.io.on('error', (e) => note(`manager error: ${errText(e)}`));
  const engine = socket.io.engine;
  engine.on('error', (e) => note(`engine error: ${errText(e)}`));
  engine.on('upgradeError', (e) => note(`engine upgradeError: ${errText(e)}`));
  t.upgraded = new Promise((resolve) => engine.once('upgrade', (tr) => { t.upgradedTo = tr.name; resolve(tr.name); }));
  // Never rejects by itself: wait on it with withTimeout (no timer is left behind).
  t.welcome = new Promise((resolve) => socket.once('welcome', (w) => { t.welcomeNode = w && w.node; resolve(w); }));
  return t;
}

// rawRequest is http.request with full control of the headers; resolves with
// {status, headers, body (Buffer, as sent on the wire)}. Bounded by ms.
function rawRequest(url, { method = 'GET', headers = {}, body = null, ms = 5000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  }), ms, `${method} ${url}`);
}

module.exports = {
  SESSION_UNKNOWN, sidpinHelp, requireQuickStart, startSidpin, waitProxying, startNodeServer, startNodeCluster, startBackends,
  trackedV4, rawRequest, errText,
};
