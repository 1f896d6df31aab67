'use strict';
// Two chat nodes whose Redis (the chat fan-out) is down when they start, comes up, dies and comes back on
// the same port. The nodes start and stay healthy throughout, chat among each node's own clients never
// stops, and messages cross between the nodes again once Redis is back, without a restart. The
// redis-server is this file's own (free port, no persistence), not the test Redis.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startCommand, freePort } = require('../lib/procs');
const { startNode, uniqueChannel, httpGet, Registry, connectV4, ack, sleep } = require('../lib/chat-cluster');

const T = { timeout: 40000 }; // per test; every wait inside is bounded much tighter
const CROSS_MS = 15000; // the fan-out retries at most every 5 s (with jitter)

// ping sends PING on a fresh connection and resolves true on +PONG, false otherwise (≤ 300 ms).
function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(300, () => done(false));
    s.on('error', () => done(false));
    s.on('data', (d) => done(d.toString().startsWith('+PONG')));
    s.on('connect', () => s.write('PING\r\n'));
  });
}

// startRedis runs redis-server on port and waits (≤ 5 s) until it answers PING.
async function startRedis(port) {
  const proc = startCommand('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', require('node:os').tmpdir()]);
  for (let i = 0, deadline = Date.now() + 5000; i < 200 && Date.now() < deadline; i++) {
    if (await ping(port)) return proc;
    await sleep(25);
  }
  await proc.stop();
  throw new Error(`redis-server on port ${port} did not answer PING within 5 s:\n${proc.output()}`);
}

// crosses sends messages from one client until one reaches the other node's client (≤ CROSS_MS).
async function crosses(from, to, tag) {
  const deadline = Date.now() + CROSS_MS;
  for (let i = 0; i < 100 && Date.now() < deadline; i++) {
    const text = `${tag} ${i}`;
    await ack(from.socket, 'sendMessage', [text]);
    try {
      await to.messages.waitFor((m) => typeof m.msg === 'string' && m.msg.startsWith(tag), 300, tag);
      return;
    } catch { /* not yet: the fan-out is still reconnecting */ }
  }
  assert.fail(`no "${tag}" message from ${from.node.name} reached ${to.node.name} within ${CROSS_MS} ms`);
}

// chatsLocally checks that a message reaches the sender's node's other client, and the sender is acked.
async function chatsLocally(from, other, text) {
  const [reply] = await ack(from.socket, 'sendMessage', [text], 3000);
  assert.deepEqual(reply, { node: from.node.name }, `ack of sendMessage on ${from.node.name}`);
  await other.messages.waitFor((m) => m.msg === text, 3000, `"${text}" on ${other.node.name}`);
}

async function healthy(node, when) {
  const r = await httpGet(`${node.url}/healthz`);
  assert.equal(r.status, 200, `${node.name} /healthz ${when}: ${r.status} ${r.body}`);
}

describe('chatnode while its Redis is down', () => {
  let port;
  let redis = null;
  let nodes = [];
  const reg = new Registry();

  before(async () => {
    port = await freePort(); // nothing listens there yet
    const channel = uniqueChannel('redis-down');
    const redisArg = `127.0.0.1:${port}`;
    nodes.push(await startNode('down1', { redis: redisArg, channel }));
    nodes.push(await startNode('down2', { redis: redisArg, channel }));
  });

  after(async () => {
    reg.closeAll();
    await Promise.all(nodes.map((n) => n.proc.stop()));
    if (redis) await redis.proc.stop();
  });

  it('starts, is healthy and chats among its own clients; fan-out works once Redis is up', T, async () => {
    const [n1, n2] = nodes;
    await healthy(n1, 'with redis down');
    const a = await connectV4(reg, n1);
    const c = await connectV4(reg, n1);
    const b = await connectV4(reg, n2);
    await chatsLocally(a, c, 'local while redis was never up');

    redis = { proc: await startRedis(port) };
    await crosses(a, b, 'down1 to down2 after redis came up');
    await crosses(b, a, 'down2 to down1 after redis came up');
  });

  it('keeps chatting when Redis dies, and fans out again when it is back', T, async () => {
    const [n1, n2] = nodes;
    const a = await connectV4(reg, n1);
    const c = await connectV4(reg, n1);
    const b = await connectV4(reg, n2);
    await redis.proc.stop();
    redis = null;
    await chatsLocally(a, c, 'local after redis died');
    await healthy(n1, 'after redis died');
    await healthy(n2, 'after redis died');

    redis = { proc: await startRedis(port) };
    await crosses(a, b, 'down1 to down2 after redis restarted');
    await crosses(b, a, 'down2 to down1 after redis restarted');
  });

  it('logs the outage without flooding', () => {
    for (const n of nodes) {
      const out = n.proc.output();
      const failures = (out.match(/redis unreachable/g) || []).length;
      // Two outages of a few seconds each: the first failure of each, then at most one line per 5 s.
      assert.ok(failures >= 2 && failures <= 8, `${n.name} logged ${failures} "redis unreachable" lines:\n${out}`);
      const back = (out.match(/subscribed to redis again/g) || []).length;
      assert.equal(back, 2, `${n.name} logged ${back} reconnections:\n${out}`);
    }
  });
});
