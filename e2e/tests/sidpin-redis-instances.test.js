'use strict';
// Two sidpin instances sharing one pin table in Redis (store.kind: redis), behind an ALTERNATING front
// (e2e/lib/alt-front.js): every request and every WebSocket upgrade of a session goes to the other
// instance than its previous one, so a session opened through instance A sends its first poll, its
// later polls and its upgrade alternately through B and A.
//   main    60 socket.io-client v4 clients on default transports (polling, then the upgrade), 30 polling
//           only, 20 websocket only through the front, over three Go chatnodes: every client welcomed,
//           zero connect_error / disconnect / engine error / upgradeError, every default client upgraded
//           to websocket, every client gets every broadcast, zero "Session ID unknown" at the front, and
//           the Redis table holds exactly one pin per live session.
//   control the same front over two sidpin instances on their own memory tables must FAIL, with
//           "Session ID unknown" answers: proof that the main test can fail.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { redisAddr, Registry, startCluster, sleep } = require('../lib/chat-cluster');
const { runChatScenario } = require('../lib/sidpin-scenario');
const { startAltFront } = require('../lib/alt-front');
const { writeConfig, startInstance, tail, pinSids, nodeSessions } = require('../lib/sidpin-redis-helpers');
const { freePort } = require('../lib/procs');

const NAMES = ['node1', 'node2', 'node3'];
const DEFAULTS = 60;
const POLLING = 30;
const WEBSOCKET = 20;
const TOTAL = DEFAULTS + POLLING + WEBSOCKET;

function unique(tag) {
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function failuresText(front, n = 8) {
  const f = front.failures.slice(0, n).map((x) => `  ${x.method} ${x.path} via instance ${x.instance} -> ${x.status} ${JSON.stringify(x.body)}`);
  return f.length ? `\nfront failures (${front.stats.failuresTotal}):\n${f.join('\n')}` : '';
}

// Without the test Redis this file fails, it is never skipped.
it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

describe('two sidpin instances on one Redis pin table behind an alternating front', () => {
  let nodes = [];
  const procs = [];
  const fronts = [];
  const configs = [];
  const reg = new Registry();

  // startPair starts instances A and B on one config (store redis with a fresh key prefix, or memory)
  // and an alternating front over them.
  async function startPair(store) {
    const prefix = `${unique('sidpin-e2e-inst')}:`;
    const cfg = writeConfig({ listenPort: await freePort(), store, redisAddr: redisAddr(), prefix, nodes, behindFront: true });
    configs.push(cfg);
    const a = await startInstance(`A (${store})`, cfg.file);
    procs.push(a);
    const b = await startInstance(`B (${store})`, cfg.file);
    procs.push(b);
    const front = await startAltFront({ backends: [a.url, b.url] });
    fronts.push(front);
    return { a, b, front, prefix, cfg };
  }

  before(async () => {
    redisAddr();
    nodes = await startCluster(NAMES, 'sidpin-redis-inst');
  });

  after(async () => {
    reg.closeAll();
    await sleep(100);
    await Promise.all([...fronts.map((f) => f.stop()), ...procs.map((p) => p.proc.stop()), ...nodes.map((n) => n.proc.stop())]);
    for (const c of configs) c.remove();
  });

  it(`main: ${DEFAULTS} default + ${POLLING} polling-only + ${WEBSOCKET} websocket-only v4 clients, their requests alternating between two sidpin instances on Redis — all welcomed, zero errors, all upgraded, every broadcast everywhere, zero "Session ID unknown"`,
    { timeout: 45000 }, async () => {
      const { a, b, front, prefix } = await startPair('redis');
      const tag = unique('redis-inst-main');
      const r = await runChatScenario(front.url, {
        defaults: DEFAULTS, pollingOnly: POLLING, wsOnly: WEBSOCKET, tag, registry: reg,
        connectMs: 15000, messageMs: 15000, upgradeMs: 10000,
      });
      const st = front.snapshot();
      const alt = front.sessionsOnAll();
      const ctx = () => `\n${r.summary}\nfront: ${JSON.stringify(st)}${failuresText(front)}` +
        `\nsidpin A output (tail):\n${tail(a.proc)}\nsidpin B output (tail):\n${tail(b.proc)}`;
      try {
        process.stdout.write(`${r.summary.split('\n').slice(0, 2).join(' |')}\n`);
        process.stdout.write(`alt-front: ${st.requests} requests + ${st.upgrades} upgrades, per instance ` +
          `${st.perInstance.map((p) => `${p.requests}+${p.upgrades}`).join(' / ')}; ${st.handshakesSeen} polling handshakes, ` +
          `${st.sidRequestsSwitched}/${st.sidRequests} sid requests switched instance; ${alt.onAllInstances}/${alt.sessions} sessions ` +
          `served by both; Session ID unknown ${st.sessionUnknown}; failures ${st.failuresTotal}\n`);

        assert.deepEqual(r.notConnected, [], `clients that never got "welcome"${ctx()}`);
        assert.equal(r.connected, TOTAL, `clients welcomed without any error event while connecting${ctx()}`);
        assert.equal(r.errorEvents, 0, `connect_error / disconnect / error / upgradeError events${ctx()}`);
        assert.deepEqual(r.errors, []);
        assert.equal(st.sessionUnknown, 0, `"Session ID unknown" answers seen by the front${ctx()}`);
        assert.equal(st.failuresTotal, 0, `answers other than 2xx / 101 seen by the front${ctx()}`);
        assert.equal(st.proxyErrors, 0, `front proxy errors${ctx()}`);

        // The front really made the sessions alternate: every polling handshake was seen, every request
        // carrying a sid went to the other instance than the previous request of its session, and every
        // polling session was served by both instances.
        assert.equal(st.handshakesSeen, DEFAULTS + POLLING, `polling handshakes whose sid the front read${ctx()}`);
        assert.equal(st.sidRequestsUnknownToFront, 0, `requests with a sid the front had not seen${ctx()}`);
        assert.ok(st.sidRequests >= 3 * (DEFAULTS + POLLING), `requests with a sid: ${st.sidRequests}${ctx()}`);
        assert.equal(st.sidRequestsSwitched, st.sidRequests, `sid requests that changed instance${ctx()}`);
        assert.equal(alt.onAllInstances, DEFAULTS + POLLING, `polling sessions served by both instances${ctx()}`);
        for (const p of st.perInstance) assert.ok(p.requests > TOTAL / 2, `requests through ${p.url}: ${p.requests}${ctx()}`);
        const upgradesPer = st.perInstance.map((p) => p.upgrades);
        assert.equal(upgradesPer[0] + upgradesPer[1], DEFAULTS + WEBSOCKET, `WebSocket upgrades through the front${ctx()}`);
        assert.ok(upgradesPer.every((u) => u >= 10), `upgrades per instance ${upgradesPer}${ctx()}`);

        assert.equal(r.acks, TOTAL, `acks of sendMessage${ctx()}`);
        assert.deepEqual(r.wrongMeta, [], `message payloads / acks${ctx()}`);
        assert.deepEqual(r.missing, [], `clients that did not get all ${r.senders} messages${ctx()}`);
        assert.deepEqual(r.duplicates, [], `clients that got a message more than once${ctx()}`);
        assert.deepEqual(r.strays, [], `unexpected messages${ctx()}`);
        for (const c of r.clients) assert.equal(c.got.size, TOTAL, `${c.label}: distinct messages`);

        assert.deepEqual(r.notUpgraded, [], `default-transport clients not on websocket${ctx()}`);
        assert.equal(r.upgradeEvents, DEFAULTS, `engine "upgrade" events of the default-transport clients${ctx()}`);
        for (const c of r.clients) {
          assert.equal(c.socket.io.engine.transport.name, c.kind === 'polling' ? 'polling' : 'websocket', `${c.label}: transport`);
        }

        // The nodes hold exactly the welcomed sessions, and the shared table exactly one pin for each.
        const sessions = await nodeSessions(nodes);
        assert.equal(sessions.total, TOTAL, `Engine.IO sessions on the nodes ${JSON.stringify(sessions)} (distribution ${JSON.stringify(r.distribution)})${ctx()}`);
        const engineIds = new Set(r.clients.map((c) => c.socket.io.engine.id));
        const sids = await pinSids(redisAddr(), prefix);
        const missing = [...engineIds].filter((s) => !sids.includes(s));
        assert.deepEqual(missing, [], `live sessions without a pin key ${prefix}p:<sid> in Redis${ctx()}`);
        assert.equal(sids.length, TOTAL, `pin keys in Redis (${sids.length}) vs live sessions (${TOTAL})${ctx()}`);
        assert.equal(r.clients.reduce((n, c) => n + c.errors.length, 0), 0, `error events until the close${ctx()}`);
      } finally {
        r.closeAll();
      }
      // Ended sessions leave the table (close packet over polling, end of an upgraded WebSocket), whichever
      // instance saw the end.
      let left = -1;
      for (let i = 0; i < 40 && left !== 0; i++) {
        left = (await pinSids(redisAddr(), prefix)).length;
        if (left !== 0) await sleep(100);
      }
      assert.equal(left, 0, `pin keys left in Redis 4 s after every client disconnected${ctx()}`);
    });

  it('control: the same alternating front over two sidpin instances with their own memory tables FAILS with "Session ID unknown"',
    { timeout: 30000 }, async () => {
      const { a, b, front } = await startPair('memory');
      const tag = unique('redis-inst-control');
      const r = await runChatScenario(front.url, {
        defaults: DEFAULTS, pollingOnly: POLLING, wsOnly: WEBSOCKET, tag, registry: reg,
        connectMs: 10000, messageMs: 4000, upgradeMs: 2000, settleMs: 100,
      });
      r.closeAll();
      const st = front.snapshot();
      process.stdout.write(`control (memory tables): ${r.connected}/${r.total} connected cleanly, ${r.errorEvents} error events, ` +
        `${r.missing.length} clients missing messages, front "Session ID unknown" ${st.sessionUnknown}, failures ${st.failuresTotal}\n`);
      const ctx = `\n${r.summary}\nfront: ${JSON.stringify(st)}${failuresText(front)}\nA:\n${tail(a.proc, 800)}\nB:\n${tail(b.proc, 800)}`;
      assert.ok(st.sessionUnknown > 0, `with two separate memory tables the front saw no "Session ID unknown"${ctx}`);
      assert.ok(r.errorEvents > 0, `with two separate memory tables no client had an error event${ctx}`);
      assert.ok(r.connected < r.total, `with two separate memory tables every client connected cleanly${ctx}`);
    });
});
