'use strict';
// Helpers of the chatnode end-to-end tests: start chat nodes on the test Redis, connect clients of every
// flavour (socket.io-client v4 and v2, raw engine.io-client), and wait for things with a deadline that
// fails with a message naming what was missing.
const { sourceOpts } = require('./source-addr');
const { start, freePort } = require('./procs');

const WAIT_MS = 5000; // default bound of every wait; no wait in these tests is longer than 15 s

// redisAddr is the Redis of the test run. Without it the chat fan-out cannot be tested: that is a
// failure of the run (make test sets it), never a skip.
function redisAddr() {
  const addr = process.env.SIDPIN_TEST_REDIS;
  if (!addr) {
    throw new Error('SIDPIN_TEST_REDIS is not set: the chatnode e2e tests need a Redis host:port ' +
      '(`make test` starts a throwaway redis-server and sets it)');
  }
  return addr;
}

// uniqueChannel is a Redis pub/sub channel no other test file or run shares.
function uniqueChannel(tag) {
  return `e2e-${tag}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// withTimeout rejects with "timed out after N ms waiting for WHAT" unless promise settles in time.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// once waits for one event of an emitter (first argument, or all of them with all=true).
function once(emitter, event, ms, what, all = false) {
  return withTimeout(new Promise((resolve) => {
    emitter.once(event, (...args) => resolve(all ? args : args[0]));
  }), ms, what);
}

// httpGet fetches a URL with a deadline; returns {status, body}.
async function httpGet(url, ms = WAIT_MS) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    const res = await fetch(url, { signal: ac.signal });
    return { status: res.status, body: await res.text() };
  } finally {
    clearTimeout(timer);
  }
}

// startNode starts one chatnode and waits (≤ 10 s) until /healthz answers 200.
async function startNode(name, { redis, channel, extraArgs = [] } = {}) {
  const port = await freePort();
  const args = ['-listen', `127.0.0.1:${port}`, '-name', name];
  if (redis) args.push('-redis', redis);
  if (channel) args.push('-redis-channel', channel);
  args.push(...extraArgs);
  const proc = start('chatnode', args);
  const node = { name, port, proc, url: `http://127.0.0.1:${port}` };
  const deadline = Date.now() + 10000;
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`chatnode ${name} exited (code ${proc.child.exitCode}, signal ${proc.child.signalCode}) ` +
        `before answering /healthz; args ${args.join(' ')}; output:\n${proc.output()}`);
    }
    try {
      const r = await httpGet(`${node.url}/healthz`, 1000);
      if (r.status === 200) return node;
    } catch { /* not listening yet */ }
    await sleep(50);
  }
  await proc.stop();
  throw new Error(`chatnode ${name} did not answer /healthz with 200 within 10 s; output:\n${proc.output()}`);
}

// startCluster starts the named nodes sharing one Redis channel.
async function startCluster(names, tag) {
  const redis = redisAddr();
  const channel = uniqueChannel(tag);
  const nodes = [];
  try {
    for (const name of names) nodes.push(await startNode(name, { redis, channel }));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.proc.stop()));
    throw err;
  }
  return nodes;
}

// Inbox records every occurrence of an event on a socket from the moment it is created, so that no
// wait races the arrival. waitFor/waitCount look at what already came, then at what comes.
class Inbox {
  constructor(socket, event, label) {
    this.label = label || event;
    this.event = event;
    this.items = [];
    this.waiters = new Set();
    socket.on(event, (...args) => {
      this.items.push(args.length === 1 ? args[0] : args);
      for (const w of [...this.waiters]) w();
    });
  }

  filter(pred) {
    return this.items.filter(pred);
  }

  waitFor(pred, ms = WAIT_MS, what = 'a matching event') {
    return this.waitCount(pred, 1, ms, what).then((found) => found[0]);
  }

  // waitCount resolves with the matching items once there are at least n of them.
  waitCount(pred, n, ms = WAIT_MS, what = 'matching events') {
    return new Promise((resolve, reject) => {
      let waiter;
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const got = this.items.filter(pred);
        reject(new Error(`${this.label}: timed out after ${ms} ms waiting for ${n} × ${what} ` +
          `on "${this.event}" (got ${got.length}; all ${this.items.length} "${this.event}" events: ` +
          `${preview(this.items)})`));
      }, ms);
      waiter = () => {
        const got = this.items.filter(pred);
        if (got.length >= n) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(got);
        }
      };
      this.waiters.add(waiter);
      waiter();
    });
  }
}

function preview(items) {
  const s = JSON.stringify(items, (k, v) => (v && v.type === 'Buffer' && Array.isArray(v.data) ? `<Buffer ${v.data.length}>` : v));
  return s.length > 600 ? `${s.slice(0, 600)}…` : s;
}

// Registry keeps every client a test file opened, to close them all in `after`.
class Registry {
  constructor() { this.closers = []; }

  add(close) { this.closers.push(close); }

  closeAll() {
    for (const close of this.closers.splice(0)) {
      try { close(); } catch { /* already closed */ }
    }
  }
}

// connectV4 opens a socket.io-client v4 socket and waits for "connect" and the "welcome" event.
// Returns {socket, welcome, messages (Inbox of "message"), upgraded (promise: engine upgrade), label}.
async function connectV4(registry, node, opts = {}, label) {
  const { io } = require('socket.io-client');
  const tag = label || `v4 client on ${node.name} (${opts.transports ? opts.transports.join('+') : 'default transports'})`;
  const socket = io(node.url, { forceNew: true, reconnection: false, timeout: WAIT_MS, ...sourceOpts(), ...opts });
  registry.add(() => socket.disconnect());
  return await finishConnect(socket, node, tag, socket.io.engine);
}

// connectV2 is connectV4 for socket.io-client v2 (Engine.IO v3, Socket.IO protocol v4).
async function connectV2(registry, node, opts = {}, label) {
  const ioV2 = require('socket.io-client-v2');
  const tag = label || `v2 client on ${node.name} (${opts.transports ? opts.transports.join('+') : 'default transports'})`;
  const socket = ioV2(node.url, { forceNew: true, reconnection: false, timeout: WAIT_MS, ...sourceOpts(), ...opts });
  registry.add(() => socket.close());
  return await finishConnect(socket, node, tag, socket.io.engine);
}

async function finishConnect(socket, node, tag, engine) {
  const messages = new Inbox(socket, 'message', tag);
  const welcomes = new Inbox(socket, 'welcome', tag);
  const upgraded = new Promise((resolve) => {
    if (engine) engine.once('upgrade', (t) => resolve(t.name));
  });
  upgraded.catch(() => {});
  let failure = null;
  socket.on('connect_error', (err) => { failure = `connect_error: ${err && (err.message || err)}`; });
  socket.on('error', (err) => { failure = `error: ${err && (err.message || err)}`; });
  let welcome;
  try {
    welcome = await welcomes.waitFor(() => true, WAIT_MS, 'the "welcome" event after connecting');
  } catch (err) {
    err.message += failure ? ` [${failure}]` : ` [connected: ${socket.connected}]`;
    throw err;
  }
  return { socket, welcome, messages, welcomes, upgraded, label: tag, node };
}

// ack emits event with args and resolves with the array of the acknowledgement's arguments.
function ack(socket, event, args, ms = WAIT_MS, what) {
  return withTimeout(new Promise((resolve) => {
    socket.emit(event, ...args, (...reply) => resolve(reply));
  }), ms, what || `the ack of "${event}"`);
}

// toBuffer turns what a client decoded as binary (Buffer, ArrayBuffer, typed array) into a Buffer;
// anything else is returned unchanged so that an assertion shows what came instead.
function toBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return v;
}

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

// someBytes is n bytes covering every byte value (0x00..0xff first), then pseudo-random ones.
function someBytes(n, seed = 1) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    if (i < 256) { b[i] = i; continue; }
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

module.exports = {
  WAIT_MS, redisAddr, uniqueChannel, sleep, withTimeout, once, httpGet, startNode, startCluster,
  Inbox, Registry, connectV4, connectV2, ack, toBuffer, isBinary, someBytes,
};
