'use strict';
// Helpers of the tests of sidpin's shared Redis pin table: config files, sidpin instances started with
// -config, a redis-server of a test's own (stoppable, restartable on the same port), Redis key counts
// through the `redis` npm client, chat node session counts, and a raw Engine.IO v4 polling session whose
// every request can be sent to any address (so that a request of one session can be aimed at one
// sidpin instance), its POSTs never overlapping. Every wait is bounded.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { start, freePort } = require('./procs');
const { sleep, httpGet } = require('./chat-cluster');
const { waitProxying } = require('./sidpin-helpers');

// ---------------------------------------------------------------------------------------------- config

// configYAML is a sidpin config: the nodes in pool "chat", the store redis (addr, prefix, per-command
// timeout) or memory, and an admin listener when adminPort is given (with admin.token_env when tokenEnv is).
// behindFront: sidpin sees every client with the front's address (an L4 balancer without the PROXY
// protocol), so the per-client limits are turned off, as the README tells operators in that case.
function configYAML({ listenPort, store, redisAddr, prefix, nodes, redisTimeout = '100ms', adminPort, tokenEnv, behindFront = false }) {
  const lines = [`listen: 127.0.0.1:${listenPort}`];
  if (adminPort) {
    lines.push('admin:', `  listen: 127.0.0.1:${adminPort}`);
    if (tokenEnv) lines.push(`  token_env: ${tokenEnv}`);
  }
  if (store === 'redis') {
    lines.push('store:', '  kind: redis',
      `  redis: {addrs: ["${redisAddr}"], key_prefix: "${prefix}", dial_timeout: 500ms, read_timeout: ${redisTimeout}, write_timeout: ${redisTimeout}}`);
  } else {
    lines.push('store: {kind: memory}');
  }
  lines.push('pools:', '  - name: chat', '    nodes:');
  for (const n of nodes) lines.push(`      - {name: ${n.name}, url: "${n.url}"}`);
  if (behindFront) lines.push('limits: {per_client: {max_connections: 0, handshake_rate: 0}}');
  lines.push('log: {level: info}');
  return `${lines.join('\n')}\n`;
}

// writeConfig writes the config to a fresh temp dir; returns the file's path and a cleanup.
function writeConfig(opts) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidpin-redis-e2e-'));
  const file = path.join(dir, 'sidpin.yaml');
  fs.writeFileSync(file, configYAML(opts));
  return { file, dir, text: fs.readFileSync(file, 'utf8'), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// startInstance runs `sidpin -config FILE -listen 127.0.0.1:PORT` and waits (≤ 10 s) until GET /healthz
// (proxied to a node) answers 200 through it.
async function startInstance(name, configFile, port) {
  const p = port || await freePort();
  const args = ['-config', configFile, '-listen', `127.0.0.1:${p}`];
  const proc = start('sidpin', args);
  const sp = { name, port: p, proc, url: `http://127.0.0.1:${p}`, args };
  return waitProxying(sp, `args ${args.join(' ')}; config:\n${fs.readFileSync(configFile, 'utf8')}`);
}

// tail is the end of a process's output, for failure messages.
function tail(proc, n = 2500) {
  const out = proc.output();
  return out.length > n ? `…${out.slice(-n)}` : out;
}

// grepLines returns the output lines of proc matching re (at most max of them).
function grepLines(proc, re, max = 8) {
  return proc.output().split('\n').filter((l) => re.test(l)).slice(0, max);
}

// --------------------------------------------------------------------------------------- redis-server

// pingRedis sends PING on a fresh connection; resolves true on +PONG within ms.
function pingRedis(port, ms = 500) {
  const net = require('node:net');
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (v) => { clearTimeout(timer); s.destroy(); resolve(v); };
    const timer = setTimeout(() => done(false), ms);
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { got += d; if (got.includes('\r\n')) done(got.startsWith('+PONG')); });
  });
}

// ownRedis is a redis-server of this test only, on a free loopback port, without persistence. start()
// (re)starts it on the same port and waits (≤ 5 s) until it answers PING; kill(signal) stops it by its
// handle and waits for the exit.
async function ownRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidpin-redis-own-'));
  const r = {
    port,
    addr: `127.0.0.1:${port}`,
    child: null,
    output: '',
    starts: 0,
    async start() {
      if (r.child && r.child.exitCode === null && r.child.signalCode === null) throw new Error('own redis-server is already running');
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir];
      const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      r.child = child;
      r.starts += 1;
      child.stdout.on('data', (d) => { r.output += d; });
      child.stderr.on('data', (d) => { r.output += d; });
      const spawnError = new Promise((resolve) => child.once('error', (e) => resolve(e)));
      const deadline = Date.now() + 5000;
      for (let i = 0; i < 200 && Date.now() < deadline; i++) {
        const err = await Promise.race([spawnError, sleep(0).then(() => null)]);
        if (err) throw new Error(`cannot run redis-server: ${err.message}`);
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${r.output.slice(-1500)}`);
        if (await pingRedis(port, 300)) return Date.now();
        await sleep(25);
      }
      await r.kill('SIGKILL');
      throw new Error(`own redis-server on ${r.addr} did not answer PING within 5 s: ${r.output.slice(-1500)}`);
    },
    kill(signal = 'SIGKILL') {
      const child = r.child;
      return new Promise((resolve) => {
        if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
        setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); }, 3000).unref();
      });
    },
    async stop() {
      await r.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return r;
}

// ------------------------------------------------------------------------------------ redis key counts

// withRedis runs fn(client) on a short-lived `redis` npm client of addr (no reconnection), then quits.
async function withRedis(addr, fn) {
  const { createClient } = require('redis');
  const client = createClient({ url: `redis://${addr}`, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.quit().catch(() => client.disconnect().catch(() => {}));
  }
}

// pinKeys lists the sids that have a key PREFIX p:<sid> (SCAN, bounded).
async function pinSids(addr, prefix) {
  return withRedis(addr, async (client) => {
    const sids = [];
    for await (const key of client.scanIterator({ MATCH: `${prefix}p:*`, COUNT: 1000 })) {
      sids.push(key.slice(prefix.length + 2));
      if (sids.length > 100000) break;
    }
    return sids;
  });
}

// nodeSessions is the number of Engine.IO sessions each chat node holds (from /healthz "sessions=N").
async function nodeSessions(nodes) {
  const out = {};
  for (const n of nodes) {
    const h = await httpGet(`${n.url}/healthz`, 2000);
    const m = /sessions=(\d+)/.exec(h.body);
    if (h.status !== 200 || !m) throw new Error(`${n.name} /healthz: ${h.status} ${JSON.stringify(h.body)}`);
    out[n.name] = Number(m[1]);
  }
  out.total = Object.values(out).reduce((a, b) => a + b, 0);
  return out;
}

// ----------------------------------------------------------------------------- raw Engine.IO session

// request is one HTTP request (new connection) bounded by ms; resolves with {status, body (string), ms}
// or {status: 'error', body: message}. It never rejects.
function request(url, { method = 'GET', body = null, ms = 5000, signal } = {}) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const onAbort = () => { req.destroy(); done({ status: 'aborted', body: '' }); };
    const done = (v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
      resolve({ ...v, ms: Date.now() - t0 });
    };
    const headers = body !== null ? { 'content-type': 'text/plain;charset=UTF-8', 'content-length': Buffer.byteLength(body) } : {};
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => done({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => done({ status: 'error', body: e.message }));
    });
    const timer = setTimeout(() => { req.destroy(); done({ status: 'error', body: `timed out after ${ms} ms` }); }, ms);
    if (signal) {
      if (signal.aborted) { onAbort(); return; }
      signal.addEventListener('abort', onAbort, { once: true });
    }
    req.on('error', (e) => done({ status: 'error', body: e.message }));
    if (body !== null) req.write(body);
    req.end();
  });
}

const EIO_PATH = '/socket.io/';

// RawSession is an Engine.IO v4 polling session driven by hand: handshake at one address, then every
// GET or POST at whatever address the caller names. POSTs of one session are serialized (a chat node
// closes a session on overlapping POSTs); the GET loop holds one long-poll at a time and answers pings.
class RawSession {
  constructor(label) {
    this.label = label;
    this.sid = null;
    this.errors = []; // failures of the session's own traffic (handshake, connect, GET loop, pongs)
    this.messages = 0; // Socket.IO events received
    this.welcomeNode = null;
    this.pingInterval = null;
    this.chain = Promise.resolve();
    this.polling = false;
    this.closed = false;
    this.abort = new AbortController();
    this.getStats = { ok: 0, failed: 0 };
  }

  url(base) {
    return `${base}${EIO_PATH}?EIO=4&transport=polling&t=${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}${this.sid ? `&sid=${encodeURIComponent(this.sid)}` : ''}`;
  }

  // handshake opens the session at base; resolves with the request's result (status, body, ms).
  async handshake(base) {
    const r = await request(this.url(base), { ms: 5000 });
    if (r.status === 200) {
      const m = /^0(\{.*?\})(?:\x1e|$)/.exec(r.body);
      try {
        const open = JSON.parse(m[1]);
        this.sid = open.sid;
        this.pingInterval = open.pingInterval;
      } catch {
        this.errors.push(`handshake at ${base}: 200 without an open packet: ${r.body.slice(0, 120)}`);
      }
    } else {
      this.errors.push(`handshake at ${base}: ${r.status} ${r.body.slice(0, 160)}`);
    }
    return r;
  }

  // post sends payload (serialized after the session's other POSTs) to base.
  post(base, payload, ms = 5000) {
    const p = this.chain.then(() => request(this.url(base), { method: 'POST', body: payload, ms }));
    this.chain = p.then(() => {}, () => {});
    return p;
  }

  // handle reads a GET answer's packets.
  handle(body) {
    for (const rec of body.split('\x1e')) {
      if (rec === '2') {
        this.post(this.pongBase, '3').then((r) => {
          if (r.status !== 200) this.errors.push(`pong POST at ${this.pongBase}: ${r.status} ${String(r.body).slice(0, 160)}`);
        });
      } else if (rec === '1') {
        if (!this.closing) this.errors.push('the node closed the session (close packet)');
        this.closed = true;
      } else if (rec.startsWith('42')) {
        this.messages += 1;
        if (rec.startsWith('42["welcome"')) {
          try { this.welcomeNode = JSON.parse(rec.slice(2))[1].node; } catch { /* counted anyway */ }
        }
      }
    }
  }

  // connect joins namespace "/" (POST "40" at postBase) and runs the GET loop at getBase (a function of
  // the poll's number, or a base URL); pongs go to pongBase. Resolves once "welcome" came (≤ ms).
  async connect(postBase, getBase, pongBase = postBase, ms = 5000) {
    this.pongBase = pongBase;
    const r = await this.post(postBase, '40');
    if (r.status !== 200) {
      this.errors.push(`POST "40" at ${postBase}: ${r.status} ${String(r.body).slice(0, 160)}`);
      return false;
    }
    this.startPolling(getBase);
    const deadline = Date.now() + ms;
    while (this.welcomeNode === null && Date.now() < deadline && !this.closed && this.polling) await sleep(20);
    if (this.welcomeNode === null) this.errors.push(`no "welcome" within ${ms} ms`);
    return this.welcomeNode !== null;
  }

  startPolling(getBase) {
    this.polling = true;
    const baseOf = typeof getBase === 'function' ? getBase : () => getBase;
    const hold = (this.pingInterval || 25000) + 25000;
    (async () => {
      for (let i = 0; this.polling && !this.closed; i++) {
        const base = baseOf(i);
        const r = await request(this.url(base), { ms: hold, signal: this.abort.signal });
        if (r.status === 'aborted') break;
        if (r.status !== 200) {
          this.getStats.failed += 1;
          if (!this.closing) this.errors.push(`GET poll at ${base}: ${r.status} ${String(r.body).slice(0, 160)}`);
          break;
        }
        this.getStats.ok += 1;
        this.handle(r.body);
      }
      this.polling = false;
    })();
  }

  // close sends the close packet at base and stops the GET loop (it ends with the node's close packet).
  async close(base) {
    if (!this.sid || this.closed) { this.stop(); return null; }
    this.closing = true;
    const r = await this.post(base, '1', 3000);
    const deadline = Date.now() + 2000;
    while (this.polling && Date.now() < deadline) await sleep(20);
    this.stop();
    return r;
  }

  stop() {
    this.closing = true;
    this.polling = false;
    this.abort.abort();
  }
}

// stats of a list of numbers.
function summaryOf(values) {
  if (!values.length) return { n: 0 };
  const s = [...values].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

module.exports = {
  configYAML, writeConfig, startInstance, tail, grepLines, ownRedis, pingRedis, withRedis, pinSids, nodeSessions,
  request, RawSession, summaryOf,
};
