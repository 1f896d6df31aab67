'use strict';
// The session log (log.sessions, JSON): sidpin in front of two official Node socket.io@4 servers,
// official socket.io-client v4 clients of each kind (polling then WebSocket, polling only, WebSocket
// only, and Engine.IO v3 through a v3-accepting server) chat and leave; each session gets exactly one
// "session ended" line with its transports in order, its requests and bytes, and end client_close.
// A node stopped under a polling client gives its session a node_down line.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { redisAddr, Registry, connectV2 } = require('../lib/chat-cluster');
const { startNodeCluster } = require('../lib/sidpin-helpers');
const { newConfig, startPoolSidpin, ChatClient, waitUntil } = require('../lib/sidpin-pools-helpers');

const T = { timeout: 30000 };

it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

// sessionLines are sidpin's "session ended" lines so far, by sid.
function sessionLines(sp) {
  const bySid = new Map();
  for (const l of sp.proc.output().split('\n')) {
    if (!l.startsWith('{')) continue;
    let m;
    try { m = JSON.parse(l); } catch { continue; }
    if (m.msg !== 'session ended') continue;
    bySid.set(m.sid, [...(bySid.get(m.sid) || []), m]);
  }
  return bySid;
}

describe('one line per ended session, in front of official socket.io servers', () => {
  let nodes = [];
  let sp = null;
  before(async () => {
    nodes = await startNodeCluster(['node1', 'node2'], 'sessionlog', { eio3: true });
    const cfg = await newConfig({
      nodes: nodes.map((n) => ({ name: n.name, url: n.url })),
      log: 'log: {level: info, format: json, sessions: true}',
    });
    sp = await startPoolSidpin(cfg);
  });
  after(async () => {
    if (sp) await sp.proc.stop();
    await Promise.all(nodes.map((n) => n.proc.stop()));
  });

  for (const kind of [
    { name: 'polling, then WebSocket', opts: {}, transports: 'polling→websocket', eio: 4 },
    { name: 'polling only', opts: { transports: ['polling'] }, transports: 'polling', eio: 4 },
    { name: 'WebSocket only', opts: { transports: ['websocket'] }, transports: 'websocket', eio: 4 },
  ]) {
    it(`${kind.name}: chat, leave, one client_close line with the session's story`, T, async () => {
      const c = new ChatClient(sp.url, { ...kind.opts, reconnection: false }, kind.name);
      await waitUntil(() => c.node !== null && (kind.transports !== 'polling→websocket' || c.transport === 'websocket'), 10000);
      assert.ok(c.node, `connected (troubles: ${c.troubles().join(' | ')})`);
      const sid = c.socket.io.engine.id;
      for (let i = 0; i < 3; i++) c.emit({ text: `hello ${i}`.padEnd(200, '.') });
      await waitUntil(() => c.loadReceived >= 3, 5000);
      c.close();
      await waitUntil(() => sessionLines(sp).has(sid), 5000);
      await new Promise((r) => setTimeout(r, 200)); // a second line would come now
      const ls = sessionLines(sp).get(sid) || [];
      assert.equal(ls.length, 1, `one line for ${sid}: ${JSON.stringify(ls)}`);
      const l = ls[0];
      assert.equal(l.end, 'client_close', JSON.stringify(l));
      assert.equal(l.transports, kind.transports, JSON.stringify(l));
      assert.equal(l.eio, kind.eio);
      assert.equal(l.pool, 'chat');
      assert.equal(l.node, c.node, 'the node that welcomed the client');
      assert.match(l.client, /^127\.\d+\.\d+\.\d+:\d+$/);
      assert.ok(l.bytes_in > 600 && l.bytes_out > 600, `3 messages of 200+ bytes each way: ${JSON.stringify(l)}`);
      assert.ok(l.requests >= (kind.transports === 'websocket' ? 1 : 3), JSON.stringify(l));
      assert.ok(l.duration_ms >= 0 && Date.parse(l.start) > Date.now() - 60000, JSON.stringify(l));
    });
  }

  it('Engine.IO v3 (socket.io-client v2), upgraded: one client_close line with eio 3', T, async () => {
    const registry = new Registry();
    try {
      const c = await connectV2(registry, { name: 'sidpin', url: sp.url }, {});
      assert.equal(await c.upgraded, 'websocket');
      const sid = c.socket.io.engine.id;
      for (let i = 0; i < 3; i++) c.socket.emit('sendMessage', { text: `v3 ${i}`.padEnd(200, '.') });
      await c.messages.waitCount(() => true, 3, 5000, 'the 3 messages back');
      c.socket.close();
      await waitUntil(() => sessionLines(sp).has(sid), 5000);
      const ls = sessionLines(sp).get(sid) || [];
      assert.equal(ls.length, 1, `one line for ${sid}: ${JSON.stringify(ls)}`);
      assert.deepEqual([ls[0].end, ls[0].transports, ls[0].eio, ls[0].node], ['client_close', 'polling→websocket', 3, c.welcome.node], JSON.stringify(ls[0]));
      assert.ok(ls[0].bytes_in > 600 && ls[0].bytes_out > 600, JSON.stringify(ls[0]));
    } finally {
      registry.closeAll();
    }
  });

  it('a node killed under a polling client: its session gets one node_down line', T, async () => {
    const c = new ChatClient(sp.url, { transports: ['polling'], reconnection: false }, 'polling, node killed');
    await waitUntil(() => c.node !== null, 10000);
    assert.ok(c.node, `connected (troubles: ${c.troubles().join(' | ')})`);
    const sid = c.socket.io.engine.id;
    const node = nodes.find((n) => n.name === c.node);
    node.proc.child.kill('SIGKILL'); // a node of this test, by its child process
    await waitUntil(() => sessionLines(sp).has(sid), 10000);
    c.close();
    const ls = sessionLines(sp).get(sid) || [];
    assert.equal(ls.length, 1, `one line for ${sid}: ${JSON.stringify(ls)}`);
    assert.deepEqual([ls[0].end, ls[0].transports, ls[0].node], ['node_down', 'polling', c.node], JSON.stringify(ls[0]));
  });
});
