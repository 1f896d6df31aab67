'use strict';
// sidpin in front of a three-node chat cluster, for each backend kind: three Go chatnodes and three
// official Node socket.io@4 servers with @socket.io/redis-adapter, all on the test Redis.
//   main    260 socket.io-client v4 clients (200 default transports, 30 polling only, 30 websocket only)
//           through sidpin: spread over the three nodes, every message reaches every client exactly once,
//           zero connect_error / disconnect / engine error / upgradeError, every default client ends on
//           websocket.
//   balance the 260 new sessions of that burst are spread evenly (least-sessions): each node >= 15%.
//   control the same scenario through rr-front (round robin, no stickiness) must FAIL, with
//           "Session ID unknown" answers: proof that the main test can fail.
//   EIO3    socket.io-client v2 (default transports and polling only) through sidpin: welcome, messages
//           both ways with a v4 client on another node, binary echo.
//   idle    new sessions still succeed after sidpin's connections to the nodes sat idle 7 s (a Node http
//           server closes idle keep-alive connections after 5 s + 1 s).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  WAIT_MS, redisAddr, Registry, connectV2, connectV4, ack, withTimeout, toBuffer, isBinary, someBytes, httpGet, sleep,
} = require('../lib/chat-cluster');
const { requireQuickStart, sidpinHelp, startSidpin, startBackends, rawRequest } = require('../lib/sidpin-helpers');
const { startRRFront } = require('../lib/rr-front');
const { runChatScenario } = require('../lib/sidpin-scenario');

const NAMES = ['node1', 'node2', 'node3'];

let seq = 0;
function nonce(tag) {
  seq += 1;
  return `${tag}-${process.pid}-${seq}-${Math.random().toString(36).slice(2, 8)}`;
}

// sidpinLog is the tail of sidpin's output (its warnings explain a 502), for failure messages.
function sidpinLog(sp, n = 1500) {
  const out = sp.proc.output();
  return out.length > n ? `…${out.slice(-n)}` : out;
}

function assertBytes(got, want, what) {
  assert.ok(isBinary(got), `${what}: expected binary data (${want.length} bytes), got ${typeof got} ${JSON.stringify(got)?.slice(0, 200)}`);
  const buf = toBuffer(got);
  assert.equal(buf.length, want.length, `${what}: length`);
  assert.ok(buf.equals(want), `${what}: bytes differ`);
}

// Without the test Redis this file fails (here, and in every before hook), it is never skipped.
it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

it('bin/sidpin has the quick-start flags -listen and -to', () => {
  requireQuickStart();
  assert.match(sidpinHelp(), /^\s*-listen\b/m, 'sidpin -h lists no -listen flag');
});

for (const kind of ['go', 'node']) {
  const kindLabel = kind === 'go' ? 'Go chatnodes' : 'official Node socket.io@4 servers (redis adapter)';

  describe(`sidpin in front of three ${kindLabel}`, () => {
    let nodes = [];
    let front = null;
    let sidpinPromise = null;
    let mainDistribution = null; // welcome node -> clients, of the main test
    const reg = new Registry();

    // sidpin is started by the first test that needs it: the control runs even when sidpin cannot start.
    function sidpin() {
      if (!sidpinPromise) sidpinPromise = startSidpin(nodes);
      return sidpinPromise;
    }

    before(async () => {
      nodes = await startBackends(kind, `sidpin-${kind}`);
      front = await startRRFront({ backends: nodes.map((n) => n.url) });
    });

    after(async () => {
      reg.closeAll();
      const sp = sidpinPromise ? await sidpinPromise.catch(() => null) : null;
      await Promise.all([
        sp ? sp.proc.stop() : null,
        front ? front.stop() : null,
        ...nodes.map((n) => n.proc.stop()),
      ]);
    });

    it('main: 200 default + 30 polling-only + 30 websocket-only v4 clients through sidpin — spread, every message to every client, zero errors, all upgraded',
      { timeout: 60000 }, async () => {
        const sp = await sidpin();
        const tag = nonce(`main-${kind}`);
        const r = await runChatScenario(sp.url, {
          defaults: 200, pollingOnly: 30, wsOnly: 30, tag, registry: reg, connectMs: 20000, messageMs: 30000, upgradeMs: 10000,
        });
        mainDistribution = r.distribution;
        const ctx = `\n${r.summary}\nsidpin output (tail):\n${sp.proc.output().slice(-2000)}`;
        try {
          process.stdout.write(`${r.summary.split('\n').slice(0, 2).join(' |')}\n`);
          assert.deepEqual(r.notConnected, [], `clients that never got "welcome" through sidpin${ctx}`);
          assert.equal(r.connected, 260, `clients welcomed without any error event while connecting${ctx}`);

          // Spread over the three nodes (how evenly: the next test).
          assert.deepEqual(Object.keys(r.distribution).sort(), NAMES, `nodes that got clients: ${JSON.stringify(r.distribution)}${ctx}`);

          // Each node has exactly the Engine.IO sessions sidpin pinned to it: no stray session was created
          // by a request that went to the wrong node.
          for (const n of nodes) {
            const h = await httpGet(`${n.url}/healthz`);
            assert.equal(h.status, 200, `${n.name} /healthz`);
            const m = /sessions=(\d+)/.exec(h.body);
            assert.ok(m, `${n.name} /healthz body ${JSON.stringify(h.body)}`);
            assert.equal(Number(m[1]), r.distribution[n.name],
              `${n.name} holds ${m[1]} Engine.IO sessions but ${r.distribution[n.name]} clients were welcomed by it${ctx}`);
          }

          // Zero "Session ID unknown": with reconnection off it would show as connect_error / disconnect /
          // engine error / upgradeError.
          assert.equal(r.errorEvents, 0, `connect_error / disconnect / error / upgradeError events through sidpin${ctx}`);
          assert.deepEqual(r.errors, []);

          assert.equal(r.acks, 260, `acks of sendMessage${ctx}`);
          assert.deepEqual(r.wrongMeta, [], `message payloads / acks${ctx}`);
          assert.deepEqual(r.missing, [], `clients that did not get all ${r.senders} messages within 30 s${ctx}`);
          assert.deepEqual(r.duplicates, [], `clients that got a message more than once${ctx}`);
          assert.deepEqual(r.strays, [], `unexpected messages${ctx}`);
          for (const c of r.clients) assert.equal(c.got.size, 260, `${c.label}: distinct messages`);

          // Every default-transport client upgraded to websocket (engine "upgrade"), the others stayed put.
          assert.deepEqual(r.notUpgraded, [], `default-transport clients not on websocket${ctx}`);
          assert.equal(r.upgradeEvents, 200, `engine "upgrade" events of the 200 default-transport clients${ctx}`);
          for (const c of r.clients) {
            const want = c.kind === 'polling' ? 'polling' : 'websocket';
            assert.equal(c.socket.io.engine.transport.name, want, `${c.label}: transport`);
          }
          // Still no error after all the checks, right before closing.
          assert.equal(r.clients.reduce((n, c) => n + c.errors.length, 0), 0, `error events until the close${ctx}`);
        } finally {
          r.closeAll();
        }
      });

    it('main, balance: least-sessions spreads the burst of 260 new sessions evenly — every node gets at least 15%',
      async () => {
        assert.ok(mainDistribution, 'the main test did not get as far as connecting its clients');
        const total = Object.values(mainDistribution).reduce((a, b) => a + b, 0);
        const low = NAMES.filter((n) => !((mainDistribution[n] || 0) >= Math.floor(total * 0.15)));
        assert.deepEqual(low, [], `nodes with fewer than 15% of the ${total} sessions of a burst of new sessions through ` +
          `sidpin (least-sessions would give each about a third): ${JSON.stringify(mainDistribution)}`);
      });

    it('control: the same scenario through a round-robin proxy without stickiness FAILS with "Session ID unknown"',
      { timeout: 30000 }, async () => {
        const base = { ...front.stats, statuses: { ...front.stats.statuses } };
        const tag = nonce(`control-${kind}`);
        const r = await runChatScenario(front.url, {
          defaults: 30, pollingOnly: 10, wsOnly: 10, tag, registry: reg, connectMs: 8000, messageMs: 8000, upgradeMs: 3000,
        });
        try {
          const unknown = front.stats.sessionUnknown - base.sessionUnknown;
          process.stdout.write(`control ${kind}: ${r.connected}/${r.total} connected, ${r.errors.length} clients with errors ` +
            `(${r.errorEvents} events, ${r.sessionUnknownErrors} naming HTTP 400), ${r.missing.length} missing messages; ` +
            `rr-front saw ${unknown} "Session ID unknown" answers, ${front.stats.upgradeRefused - base.upgradeRefused} refused upgrades\n`);
          // What the main test requires, broken here.
          const broken = r.notConnected.length + r.errors.length + r.missing.length + r.notUpgraded.length;
          assert.ok(broken > 0, `the control scenario through round robin passed — the main test would not catch a proxy without stickiness\n${r.summary}`);
          assert.ok(r.errorEvents > 0, `no client error event through round robin\n${r.summary}`);
          assert.ok(r.notConnected.length > 0, `every client connected through round robin\n${r.summary}`);
          assert.ok(unknown > 0, `rr-front saw no "Session ID unknown" answer of a node: ${JSON.stringify(front.stats)}`);
          assert.ok(r.sessionUnknownErrors > 0, `no client error names the HTTP 400 of "Session ID unknown"\n${r.summary}`);
        } finally {
          r.closeAll();
        }
      });

    describe('EIO3: socket.io-client v2 through sidpin', () => {
      for (const [label, opts] of [['default transports', {}], ['polling only', { transports: ['polling'] }]]) {
        it(`v2 ${label}: welcome, messages both ways with a v4 client on another node, binary echo, no errors`,
          { timeout: 20000 }, async () => {
            const sp = await sidpin();
            const front2 = { url: sp.url, name: 'sidpin' };
            const c = await connectV2(reg, front2, opts, `v2 client through sidpin (${label})`).catch((err) => {
              err.message += `\nsidpin output (tail):\n${sidpinLog(sp)}`;
              throw err;
            });
            const errors = [];
            for (const ev of ['connect_error', 'error', 'disconnect', 'reconnect_attempt']) c.socket.on(ev, (e) => errors.push(`${ev}: ${e && (e.message || e)}`));
            c.socket.io.engine.on('upgradeError', (e) => errors.push(`upgradeError: ${e && (e.message || e)}`));
            assert.ok(NAMES.includes(c.welcome.node), `welcome of the v2 client: ${JSON.stringify(c.welcome)}`);
            const home = nodes.find((n) => n.name === c.welcome.node);
            if (opts.transports) {
              assert.equal(c.socket.io.engine.transport.name, 'polling');
            } else {
              if (c.socket.io.engine.transport.name !== 'websocket') {
                assert.equal(await withTimeout(c.upgraded, WAIT_MS, 'the v2 engine "upgrade" through sidpin'), 'websocket');
              }
              assert.equal(c.socket.io.engine.transport.name, 'websocket');
            }

            // A v4 client directly on another node.
            const other = nodes.find((n) => n !== home);
            const v4 = await connectV4(reg, other, {}, `v4 client on ${other.name} (direct)`);

            const out = { text: 'from v2 through sidpin', nonce: nonce('v2out') };
            assert.deepEqual(await ack(c.socket, 'sendMessage', [out], WAIT_MS, 'the ack of the v2 sendMessage'), [{ node: home.name }]);
            for (const rcv of [v4, c]) {
              const m = await rcv.messages.waitFor((x) => x.msg && x.msg.nonce === out.nonce, WAIT_MS, `the v2 message at ${rcv.label}`);
              assert.equal(m.node, home.name);
              assert.deepEqual(m.msg, out);
              assert.equal(m.from, c.socket.id, 'from of the v2 message');
              assert.equal(typeof m.ts, 'number');
            }
            const inn = { text: 'to v2 through sidpin', nonce: nonce('v2in') };
            await ack(v4.socket, 'sendMessage', [inn]);
            const m = await c.messages.waitFor((x) => x.msg && x.msg.nonce === inn.nonce, WAIT_MS, `the ${other.name} message at the v2 client`);
            assert.deepEqual(m, { node: other.name, from: v4.socket.id, msg: inn, ts: m.ts });

            // Binary echo (BINARY_EVENT / BINARY_ACK of Socket.IO protocol v4 over Engine.IO v3).
            const buf = someBytes(4000, 21);
            const nested = { nested: { buf: someBytes(50, 22), list: ['a', someBytes(3, 23)] } };
            const reply = await ack(c.socket, 'echo', [buf, nested, 'txt'], WAIT_MS, 'the v2 binary echo ack through sidpin');
            assert.equal(reply.length, 3, 'echo args');
            assertBytes(reply[0], buf, 'v2 echo: top-level Buffer');
            assertBytes(reply[1].nested.buf, nested.nested.buf, 'v2 echo: nested.buf');
            assertBytes(reply[1].nested.list[1], nested.nested.list[1], 'v2 echo: nested.list[1]');
            assert.equal(reply[2], 'txt');

            // A binary message from v2 reaches the v4 client on the other node intact.
            const data = someBytes(2048, 24);
            const bn = nonce('v2bin');
            await ack(c.socket, 'sendMessage', [{ bn, data }]);
            const got = await v4.messages.waitFor((x) => x.msg && x.msg.bn === bn, WAIT_MS, 'the v2 binary message at the v4 client');
            assertBytes(got.msg.data, data, 'v2 binary message at the v4 client');

            assert.deepEqual(errors, [], `error events of the v2 client through sidpin`);
            assert.equal(c.socket.connected, true, 'the v2 client is still connected');
            c.socket.close();
            v4.socket.disconnect();
          });
      }
    });

    // sidpin keeps connections to the nodes open between requests. A node may close an idle one (Node's
    // http server does after keepAliveTimeout, 5 s by default, plus Node 20's 1 s keepAliveTimeoutBuffer);
    // sidpin must not fail the next request on it.
    it('new sessions after sidpin\'s node connections sat idle 7 s (longer than Node\'s default keep-alive timeout) all succeed',
      { timeout: 30000 }, async () => {
        const sp = await sidpin();
        const base = `${sp.url}/socket.io/?EIO=4&transport=polling`;
        // Warm up: concurrent sessions open several connections to every node; then close them.
        const warm = await Promise.all(Array.from({ length: 12 }, () => rawRequest(base, { ms: WAIT_MS })));
        for (const w of warm) {
          assert.equal(w.status, 200, `warm-up handshake: ${w.status} ${w.body}\nsidpin output (tail):\n${sidpinLog(sp)}`);
          const sid = JSON.parse(w.body.toString().slice(1)).sid;
          await rawRequest(`${base}&sid=${encodeURIComponent(sid)}`, { method: 'POST', body: '1', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
        }
        const logBefore = sp.proc.output().length;
        await sleep(7000);
        const answers = [];
        for (let i = 0; i < 12; i++) {
          const r = await rawRequest(base, { ms: WAIT_MS }).then((x) => ({ status: x.status, body: x.body.toString() }),
            (e) => ({ status: null, body: e.message }));
          answers.push(r);
          if (r.status === 200) {
            const sid = JSON.parse(r.body.slice(1)).sid;
            await rawRequest(`${base}&sid=${encodeURIComponent(sid)}`, { method: 'POST', body: '1', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
          }
        }
        const bad = answers.map((a, i) => (a.status === 200 && /^0\{"sid"/.test(a.body) ? null : `handshake #${i + 1}: ${a.status} ${a.body.slice(0, 100)}`)).filter(Boolean);
        assert.deepEqual(bad, [], `handshakes through sidpin after its node connections were idle 7 s, ${bad.length} of 12 failed` +
          `\nsidpin output since the pause:\n${sp.proc.output().slice(logBefore).slice(-2500)}`);
      });
  });
}
