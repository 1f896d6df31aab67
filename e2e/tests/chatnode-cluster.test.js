'use strict';
// Three chat nodes sharing the test Redis: the official socket.io-client v4 and v2 and the raw
// engine.io-client, on every transport, chat across the nodes (broadcasts, rooms, binary, acks).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Socket: EngineSocket } = require('engine.io-client');
const {
  WAIT_MS, redisAddr, startCluster, Inbox, Registry, connectV4, connectV2, ack, withTimeout, once, toBuffer,
  isBinary, someBytes,
} = require('../lib/chat-cluster');

const T = { timeout: 20000 }; // per test; every wait inside is bounded much tighter

let seq = 0;
function nonce(tag) {
  seq += 1;
  return `${tag}-${process.pid}-${seq}-${Math.random().toString(36).slice(2, 8)}`;
}

// checkMessage asserts a received "message" event: who sent it, through which node, what, when.
function checkMessage(m, { node, from, msg }, where) {
  assert.equal(typeof m, 'object', `${where}: "message" payload is not an object: ${JSON.stringify(m)}`);
  assert.equal(m.node, node, `${where}: message.node`);
  assert.equal(m.from, from, `${where}: message.from (the sender's socket.id)`);
  assert.equal(typeof m.ts, 'number', `${where}: message.ts is not a number: ${JSON.stringify(m.ts)}`);
  assert.ok(Math.abs(Date.now() - m.ts) < 60000, `${where}: message.ts ${m.ts} is not a recent time in ms`);
  if (msg !== undefined) assert.deepEqual(m.msg, msg, `${where}: message.msg`);
  assert.deepEqual(Object.keys(m).sort(), ['from', 'msg', 'node', 'ts'], `${where}: keys of the message`);
}

function assertBytes(got, want, what) {
  assert.ok(isBinary(got), `${what}: expected binary data (${want.length} bytes), got ${typeof got} ${JSON.stringify(got)?.slice(0, 200)}`);
  const buf = toBuffer(got);
  assert.equal(buf.length, want.length, `${what}: length`);
  assert.ok(buf.equals(want), `${what}: bytes differ (first difference at ${[...buf].findIndex((b, i) => b !== want[i])})`);
}

// Without the test Redis this file fails (here, and in the before hook), it is never skipped.
it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

describe('chatnode cluster of three nodes on one Redis', () => {
  let nodes = [];
  let node1;
  let node2;
  let node3;
  const reg = new Registry();
  let trioPromise = null;

  before(async () => {
    nodes = await startCluster(['node1', 'node2', 'node3'], 'cluster');
    [node1, node2, node3] = nodes;
  });

  after(async () => {
    reg.closeAll();
    await Promise.all(nodes.map((n) => n.proc.stop()));
  });

  // The three clients of tests 1-4: default transports on node1, polling-only on node2,
  // websocket-only on node3. Made once, by whichever test runs first.
  function trio() {
    if (!trioPromise) {
      trioPromise = Promise.all([
        connectV4(reg, node1, {}, 'c1 (v4, default transports, node1)'),
        connectV4(reg, node2, { transports: ['polling'] }, 'c2 (v4, polling only, node2)'),
        connectV4(reg, node3, { transports: ['websocket'] }, 'c3 (v4, websocket only, node3)'),
      ]);
    }
    return trioPromise;
  }

  it('1. v4 clients on every transport get "welcome" from their own node; default upgrades to websocket', T, async () => {
    const [c1, c2, c3] = await trio();
    assert.deepEqual(c1.welcome, { node: 'node1' });
    assert.deepEqual(c2.welcome, { node: 'node2' });
    assert.deepEqual(c3.welcome, { node: 'node3' });
    for (const c of [c1, c2, c3]) {
      assert.equal(typeof c.socket.id, 'string', `${c.label}: socket.id`);
      assert.ok(c.socket.id.length > 0, `${c.label}: empty socket.id`);
    }
    assert.notEqual(c1.socket.id, c2.socket.id);

    if (c1.socket.io.engine.transport.name !== 'websocket') {
      const name = await withTimeout(c1.upgraded, WAIT_MS, 'the engine "upgrade" event of c1 (polling -> websocket)');
      assert.equal(name, 'websocket');
    }
    assert.equal(c1.socket.io.engine.transport.name, 'websocket', 'c1 transport after the upgrade');
    assert.equal(c2.socket.io.engine.transport.name, 'polling', 'c2 (polling only) transport');
    assert.equal(c3.socket.io.engine.transport.name, 'websocket', 'c3 (websocket only) transport');
    assert.equal(c1.welcomes.items.length, 1, 'c1 got more than one welcome');
  });

  it('2. a message sent on any node reaches every node, with node, from, ts and an ack {node}', T, async () => {
    const clients = await trio();
    for (const sender of clients) {
      const msg = { text: `hello from ${sender.label}`, nonce: nonce('bcast') };
      const reply = await ack(sender.socket, 'sendMessage', [msg], WAIT_MS, `the ack of sendMessage from ${sender.label}`);
      assert.deepEqual(reply, [{ node: sender.node.name }], `ack of ${sender.label}`);
      await Promise.all(clients.map(async (rcv) => {
        const m = await rcv.messages.waitFor((x) => x && x.msg && x.msg.nonce === msg.nonce, WAIT_MS,
          `the message ${msg.nonce} sent by ${sender.label}`);
        checkMessage(m, { node: sender.node.name, from: sender.socket.id, msg }, `${rcv.label} <- ${sender.label}`);
      }));
    }
    // Exactly once each.
    for (const rcv of clients) {
      const mine = rcv.messages.filter((x) => x && x.msg && typeof x.msg.nonce === 'string' && x.msg.nonce.startsWith('bcast-'));
      assert.equal(mine.length, 3, `${rcv.label}: got ${mine.length} broadcast messages, want 3 (one per sender)`);
    }
  });

  it('2b. any JSON value is a message, and sendMessage without an ack callback works', T, async () => {
    const clients = await trio();
    const c2 = clients[1];
    const n = nonce('json');
    const values = [`plain string ${n}`, 12345.5, -7, [n, 1, { a: null }], true, false, null, { nested: { deep: [n, 'é ✓ \u0000 "q"'] } }, ''];
    const seen = clients.map((c) => new Set(c.messages.items));
    for (const v of values) c2.socket.emit('sendMessage', v); // no ack asked
    await Promise.all(clients.map(async (rcv, i) => {
      const got = await rcv.messages.waitCount((x) => !seen[i].has(x) && x.from === c2.socket.id, values.length, WAIT_MS,
        `the ${values.length} messages of c2`);
      assert.deepEqual(got.map((m) => m.msg), values, `${rcv.label}: the values, in the order c2 sent them`);
      for (const m of got) checkMessage(m, { node: 'node2', from: c2.socket.id }, `${rcv.label} <- c2`);
    }));
  });

  it('3. a room message reaches only the room members, on every node; leave stops it', T, async () => {
    const a = await connectV4(reg, node1, { transports: ['websocket'] }, 'room a (node1, websocket)');
    const b = await connectV4(reg, node2, {}, 'room b (node2, default)');
    const c = await connectV4(reg, node3, { transports: ['polling'] }, 'room c (node3, polling, not a member)');
    assert.deepEqual(await ack(a.socket, 'join', ['r1']), [{ node: 'node1', room: 'r1' }], 'ack of join by a');
    assert.deepEqual(await ack(b.socket, 'join', ['r1']), [{ node: 'node2', room: 'r1' }], 'ack of join by b');

    // The non-member c sends to r1; then a broadcast sentinel. Messages of one sender through one node
    // keep their order, so when the sentinel is there, the room message would have been too.
    const x = `x-${nonce('room')}`;
    assert.deepEqual(await ack(c.socket, 'sendMessage', [{ room: 'r1', msg: x }]), [{ node: 'node3' }], 'ack of the room message');
    const s1 = nonce('sentinel');
    await ack(c.socket, 'sendMessage', [s1]);
    for (const member of [a, b]) {
      const m = await member.messages.waitFor((v) => v.msg === x, WAIT_MS, `room r1 message ${x}`);
      checkMessage(m, { node: 'node3', from: c.socket.id, msg: x }, `${member.label} <- c to r1`);
    }
    for (const rcv of [a, b, c]) await rcv.messages.waitFor((v) => v.msg === s1, WAIT_MS, `sentinel ${s1}`);
    assert.equal(c.messages.filter((v) => v.msg === x).length, 0, 'c, not in r1, received the r1 message');

    // A member sends to r1: both members (the sender too) get it, c does not.
    const x2 = { text: `x2-${nonce('room')}` };
    await ack(a.socket, 'sendMessage', [{ room: 'r1', msg: x2 }]);
    const s2 = nonce('sentinel');
    await ack(a.socket, 'sendMessage', [s2]);
    for (const member of [a, b]) {
      const m = await member.messages.waitFor((v) => v.msg && v.msg.text === x2.text, WAIT_MS, `room r1 message ${x2.text}`);
      checkMessage(m, { node: 'node1', from: a.socket.id, msg: x2 }, `${member.label} <- a to r1`);
    }
    await c.messages.waitFor((v) => v.msg === s2, WAIT_MS, `sentinel ${s2}`);
    assert.equal(c.messages.filter((v) => v.msg && v.msg.text === x2.text).length, 0, 'c received a message of r1');

    // b leaves: the next r1 message reaches a only.
    assert.deepEqual(await ack(b.socket, 'leave', ['r1']), [{ node: 'node2', room: 'r1' }], 'ack of leave by b');
    const x3 = `x3-${nonce('room')}`;
    await ack(a.socket, 'sendMessage', [{ room: 'r1', msg: x3 }]);
    const s3 = nonce('sentinel');
    await ack(a.socket, 'sendMessage', [s3]);
    await a.messages.waitFor((v) => v.msg === x3, WAIT_MS, `room r1 message ${x3} at a`);
    await b.messages.waitFor((v) => v.msg === s3, WAIT_MS, `sentinel ${s3} at b`);
    await c.messages.waitFor((v) => v.msg === s3, WAIT_MS, `sentinel ${s3} at c`);
    assert.equal(b.messages.filter((v) => v.msg === x3).length, 0, 'b received an r1 message after leaving r1');
    assert.equal(c.messages.filter((v) => v.msg === x3).length, 0, 'c received an r1 message');
    for (const cl of [a, b, c]) cl.socket.disconnect();
  });

  it('4a. echo round-trips Buffers (top level and nested) byte-exact over polling and websocket', T, async () => {
    const clients = await trio();
    const big = someBytes(70000, 7); // larger than one 64 KiB frame buffer
    const small = someBytes(300, 3);
    const tiny = Buffer.from([0x00, 0xff, 0x0a, 0x0d, 0x22, 0x5c]);
    for (const c of clients) {
      const obj = { nested: { buf: small, list: [1, tiny, 'str', { deeper: big }] }, n: 1, s: 'text' };
      const reply = await ack(c.socket, 'echo', [big, obj, 'plain', 42], WAIT_MS, `the echo ack on ${c.label}`);
      assert.equal(reply.length, 4, `${c.label}: echo answered ${reply.length} args`);
      assertBytes(reply[0], big, `${c.label}: echo arg 0 (top-level Buffer)`);
      assertBytes(reply[1].nested.buf, small, `${c.label}: echo arg 1 .nested.buf`);
      assertBytes(reply[1].nested.list[1], tiny, `${c.label}: echo arg 1 .nested.list[1]`);
      assertBytes(reply[1].nested.list[3].deeper, big, `${c.label}: echo arg 1 .nested.list[3].deeper`);
      assert.equal(reply[1].nested.list[0], 1);
      assert.equal(reply[1].nested.list[2], 'str');
      assert.equal(reply[1].n, 1);
      assert.equal(reply[1].s, 'text');
      assert.equal(reply[2], 'plain');
      assert.equal(reply[3], 42);
      // And a text-only echo is a plain ack.
      assert.deepEqual(await ack(c.socket, 'echo', ['a', { b: [1, 2] }, null]), ['a', { b: [1, 2] }, null], `${c.label}: text echo`);
    }
  });

  it('4b. echo of an empty Buffer and of 10 attachments (socket.io-parser\'s limit)', T, async () => {
    const clients = await trio();
    const many = Array.from({ length: 9 }, (_, i) => someBytes(i * 13 + 1, i + 1));
    for (const c of clients) {
      const reply = await ack(c.socket, 'echo', [Buffer.alloc(0), many], WAIT_MS, `the echo ack on ${c.label}`);
      assertBytes(reply[0], Buffer.alloc(0), `${c.label}: empty Buffer`);
      assert.equal(reply[1].length, many.length, `${c.label}: attachments array length`);
      many.forEach((b, i) => assertBytes(reply[1][i], b, `${c.label}: attachment ${i}`));
    }
  });

  it('4b2. 11 attachments (over socket.io-parser\'s maxAttachments 10) end the session, as on a Node server', T, async () => {
    for (const [node, opts] of [[node1, { transports: ['websocket'] }], [node2, { transports: ['polling'] }]]) {
      const c = await connectV4(reg, node, opts);
      const gone = once(c.socket, 'disconnect', WAIT_MS, `the disconnect of ${c.label} after 11 attachments`);
      let acked = false;
      c.socket.emit('echo', Array.from({ length: 11 }, (_, i) => Buffer.from([i])), () => { acked = true; });
      const reason = await gone;
      assert.equal(typeof reason, 'string');
      assert.equal(acked, false, `${c.label}: the 11-attachment echo was acknowledged`);
    }
  });

  it('4c. a binary sendMessage reaches clients on the other nodes with the bytes intact', T, async () => {
    const clients = await trio();
    for (const sender of clients) {
      const data = someBytes(5000, sender.node.port);
      const n = nonce('bin');
      const reply = await ack(sender.socket, 'sendMessage', [{ nonce: n, data, more: [data.subarray(0, 10)] }]);
      assert.deepEqual(reply, [{ node: sender.node.name }], `ack of the binary sendMessage of ${sender.label}`);
      for (const rcv of clients) {
        const m = await rcv.messages.waitFor((v) => v.msg && v.msg.nonce === n, WAIT_MS, `binary message ${n} from ${sender.label}`);
        checkMessage(m, { node: sender.node.name, from: sender.socket.id }, `${rcv.label} <- ${sender.label}`);
        assertBytes(m.msg.data, data, `${rcv.label} <- ${sender.label}: msg.data`);
        assertBytes(m.msg.more[0], data.subarray(0, 10), `${rcv.label} <- ${sender.label}: msg.more[0]`);
      }
    }
    // A Buffer as the whole message.
    const [c1, c2, c3] = clients;
    const whole = someBytes(1234, 99);
    await ack(c3.socket, 'sendMessage', [whole]);
    for (const rcv of [c1, c2, c3]) {
      const m = await rcv.messages.waitFor((v) => v.from === c3.socket.id && isBinary(v.msg) && toBuffer(v.msg).length === whole.length,
        WAIT_MS, 'the Buffer message of c3');
      assertBytes(m.msg, whole, `${rcv.label}: Buffer message`);
      assert.equal(m.node, 'node3');
    }
  });

  it('4d. a binary room message reaches the room members only', T, async () => {
    const a = await connectV4(reg, node1, { transports: ['polling'] }, 'rb a (node1, polling)');
    const b = await connectV4(reg, node3, { transports: ['websocket'] }, 'rb b (node3, websocket)');
    const c = await connectV4(reg, node2, {}, 'rb c (node2, default, not a member)');
    await ack(a.socket, 'join', ['rb']);
    await ack(b.socket, 'join', ['rb']);
    const data = someBytes(777, 5);
    const n = nonce('rbin');
    await ack(c.socket, 'sendMessage', [{ room: 'rb', msg: { n, data } }]);
    const s = nonce('sentinel');
    await ack(c.socket, 'sendMessage', [s]);
    for (const m of [a, b]) {
      const got = await m.messages.waitFor((v) => v.msg && v.msg.n === n, WAIT_MS, `binary room message at ${m.label}`);
      checkMessage(got, { node: 'node2', from: c.socket.id }, m.label);
      assertBytes(got.msg.data, data, `${m.label}: msg.data`);
    }
    await c.messages.waitFor((v) => v.msg === s, WAIT_MS, 'the sentinel at c');
    assert.equal(c.messages.filter((v) => v.msg && v.msg.n === n).length, 0, 'c, not in rb, got the binary room message');
    for (const cl of [a, b, c]) cl.socket.disconnect();
  });

  describe('5. raw engine.io-client speaking Socket.IO by hand', () => {
    function openRaw(node, opts) {
      const sock = new EngineSocket(node.url, { path: '/socket.io/', ...opts });
      reg.add(() => sock.close());
      const inbox = new Inbox(sock, 'message', `raw engine.io-client on ${node.name} ${JSON.stringify(opts)}`);
      const upgraded = once(sock, 'upgrade', WAIT_MS, `the engine "upgrade" on ${node.name}`);
      upgraded.catch(() => {});
      const errors = [];
      sock.on('error', (e) => errors.push(String(e && (e.message || e))));
      const opened = withTimeout(new Promise((resolve) => sock.once('open', resolve)), WAIT_MS,
        `"open" of the raw engine.io-client on ${node.name}`).catch((e) => { e.message += ` errors: ${errors.join('; ')}`; throw e; });
      return { sock, inbox, upgraded, opened };
    }

    // Engine.IO message data is the Socket.IO packet: CONNECT is "0" (the wire frame is "40"), the
    // answer "0{sid}" (frame "40{sid}"), an EVENT "2[…]" (frame "42[…]"), an ACK "3<id>[…]".
    async function connectNamespace(r, node) {
      r.sock.send('0');
      const connectAck = await r.inbox.waitFor((m) => typeof m === 'string' && m.startsWith('0'), WAIT_MS, 'the CONNECT answer 0{"sid":…} (frame 40{"sid":…})');
      assert.match(connectAck, /^0\{"sid":"[A-Za-z0-9_-]+"\}$/, 'CONNECT answer');
      const sid = JSON.parse(connectAck.slice(1)).sid;
      const welcome = await r.inbox.waitFor((m) => typeof m === 'string' && m.startsWith('2'), WAIT_MS, 'the welcome event 2[…] (frame 42[…])');
      assert.equal(welcome, `2["welcome",{"node":"${node.name}"}]`, 'the welcome packet, byte for byte');
      const iConnect = r.inbox.items.indexOf(connectAck);
      const iWelcome = r.inbox.items.indexOf(welcome);
      assert.deepEqual([iConnect, iWelcome], [0, 1], `the first two messages are 40{sid} then the welcome: ${JSON.stringify(r.inbox.items)}`);
      return sid;
    }

    it('default transports: open, CONNECT (frame 40) -> 40{sid} + 42[welcome], upgrade to websocket, echo after the upgrade', T, async () => {
      const r = openRaw(node1, {});
      await r.opened;
      assert.equal(typeof r.sock.id, 'string');
      const sid = await connectNamespace(r, node1);
      assert.notEqual(sid, r.sock.id, 'the Socket.IO socket id should differ from the Engine.IO sid');
      if (r.sock.transport.name !== 'websocket') assert.equal((await r.upgraded).name, 'websocket');
      assert.equal(r.sock.transport.name, 'websocket', 'transport after the upgrade');
      r.sock.send('21["echo","after-upgrade",{"k":[1,2]}]');
      const got = await r.inbox.waitFor((m) => typeof m === 'string' && m.startsWith('31'), WAIT_MS, 'the echo ack 31[…]');
      assert.equal(got, '31["after-upgrade",{"k":[1,2]}]');
      // sendMessage with ack id 2 over the raw socket: ack then the message itself.
      r.sock.send('22["sendMessage","raw hello"]');
      assert.equal(await r.inbox.waitFor((m) => typeof m === 'string' && m.startsWith('32'), WAIT_MS, 'the sendMessage ack 32[…]'),
        '32[{"node":"node1"}]');
      const m = await r.inbox.waitFor((x) => typeof x === 'string' && x.startsWith('2["message"'), WAIT_MS, 'the broadcast 2["message",…]');
      const [ev, payload] = JSON.parse(m.slice(1));
      assert.equal(ev, 'message');
      checkMessage(payload, { node: 'node1', from: sid, msg: 'raw hello' }, 'raw client <- itself');
    });

    it('polling only: opens on polling, CONNECT -> 40{sid} + 42[welcome]', T, async () => {
      const r = openRaw(node2, { transports: ['polling'] });
      await r.opened;
      assert.equal(r.sock.transport.name, 'polling');
      await connectNamespace(r, node2);
      r.sock.send('27["echo",{"p":true}]');
      assert.equal(await r.inbox.waitFor((m) => typeof m === 'string' && m.startsWith('37'), WAIT_MS, 'the echo ack 37[…]'),
        '37[{"p":true}]');
      assert.equal(r.sock.transport.name, 'polling');
    });

    it('websocket only: opens on websocket, CONNECT -> 40{sid} + 42[welcome]', T, async () => {
      const r = openRaw(node3, { transports: ['websocket'] });
      await r.opened;
      assert.equal(r.sock.transport.name, 'websocket');
      await connectNamespace(r, node3);
      r.sock.send('29["echo","ws"]');
      assert.equal(await r.inbox.waitFor((m) => typeof m === 'string' && m.startsWith('39'), WAIT_MS, 'the echo ack 39[…]'),
        '39["ws"]');
    });
    it('plain HTTP long-polling: the wire frames are 40 -> 40{"sid"} then 42["welcome",…]', T, async () => {
      const base = `${node2.url}/socket.io/?EIO=4&transport=polling`;
      const get = async (url) => {
        const res = await withTimeout(fetch(url), WAIT_MS, `GET ${url}`);
        return { status: res.status, body: await res.text() };
      };
      const hs = await get(base);
      assert.equal(hs.status, 200, `handshake: ${hs.body}`);
      assert.match(hs.body, /^0\{/, 'the handshake answer is an open packet');
      const open = JSON.parse(hs.body.slice(1));
      assert.deepEqual(open.upgrades, ['websocket']);
      const url = `${base}&sid=${encodeURIComponent(open.sid)}`;
      const post = await withTimeout(fetch(url, { method: 'POST', body: '40', headers: { 'content-type': 'text/plain;charset=UTF-8' } }),
        WAIT_MS, 'POST 40');
      assert.equal(post.status, 200, `POST 40: ${await post.text()}`);
      const frames = [];
      for (let i = 0; i < 5 && frames.length < 2; i++) {
        const r = await get(url);
        assert.equal(r.status, 200, `GET: ${r.body}`);
        frames.push(...r.body.split('\x1e').filter((f) => f !== '' && f !== '6' && f !== '2'));
      }
      assert.equal(frames.length, 2, `frames: ${JSON.stringify(frames)}`);
      assert.match(frames[0], /^40\{"sid":"[A-Za-z0-9_-]+"\}$/, 'first frame after POST 40');
      assert.equal(frames[1], '42["welcome",{"node":"node2"}]', 'second frame');
      // Close the session: POST the close packet.
      const bye = await withTimeout(fetch(url, { method: 'POST', body: '1' }), WAIT_MS, 'POST 1 (close)');
      assert.equal(bye.status, 200);
    });
  });

  describe('6. socket.io-client v2 (Engine.IO v3, Socket.IO protocol v4) on node2', () => {
    for (const [label, opts] of [['default transports', {}], ['polling only', { transports: ['polling'] }]]) {
      let v2 = null;
      const getV2 = async () => {
        if (!v2) v2 = connectV2(reg, node2, opts, `v2 client on node2 (${label})`);
        return v2;
      };

      it(`${label}: welcome, messages both ways with v4 clients on node1 and node3, binary echo`, T, async () => {
        const [c1, , c3] = await trio();
        const c = await getV2();
        assert.deepEqual(c.welcome, { node: 'node2' }, 'welcome of the v2 client');
        if (opts.transports) {
          assert.equal(c.socket.io.engine.transport.name, 'polling');
        } else {
          if (c.socket.io.engine.transport.name !== 'websocket') {
            assert.equal(await withTimeout(c.upgraded, WAIT_MS, 'the v2 engine "upgrade"'), 'websocket');
          }
          assert.equal(c.socket.io.engine.transport.name, 'websocket');
        }

        // v2 -> v4 on node1 (and the v2 client itself).
        const out = { text: 'from v2', nonce: nonce('v2out') };
        assert.deepEqual(await ack(c.socket, 'sendMessage', [out], WAIT_MS, 'the ack of the v2 sendMessage'), [{ node: 'node2' }]);
        for (const rcv of [c1, c]) {
          const m = await rcv.messages.waitFor((x) => x.msg && x.msg.nonce === out.nonce, WAIT_MS, `the v2 message at ${rcv.label}`);
          assert.equal(m.node, 'node2');
          assert.deepEqual(m.msg, out);
          assert.equal(typeof m.ts, 'number');
          assert.equal(typeof m.from, 'string');
        }

        // v4 on node3 -> v2.
        const inn = { text: 'to v2', nonce: nonce('v2in') };
        await ack(c3.socket, 'sendMessage', [inn]);
        const m = await c.messages.waitFor((x) => x.msg && x.msg.nonce === inn.nonce, WAIT_MS, 'the node3 message at the v2 client');
        checkMessage(m, { node: 'node3', from: c3.socket.id, msg: inn }, 'v2 <- c3');

        // Binary echo through the v2 protocol (BINARY_EVENT 5 / BINARY_ACK 6).
        const buf = someBytes(4000, 11);
        const nested = { nested: { buf: someBytes(50, 12), list: ['a', someBytes(3, 13)] } };
        const reply = await ack(c.socket, 'echo', [buf, nested, 'txt'], WAIT_MS, 'the v2 binary echo ack');
        assert.equal(reply.length, 3, 'echo args');
        assertBytes(reply[0], buf, 'v2 echo: top-level Buffer');
        assertBytes(reply[1].nested.buf, nested.nested.buf, 'v2 echo: nested.buf');
        assertBytes(reply[1].nested.list[1], nested.nested.list[1], 'v2 echo: nested.list[1]');
        assert.equal(reply[1].nested.list[0], 'a');
        assert.equal(reply[2], 'txt');

        // A binary message from v2 reaches a v4 client on node1 intact, and back.
        const data = someBytes(2048, 14);
        const bn = nonce('v2bin');
        await ack(c.socket, 'sendMessage', [{ bn, data }]);
        const got = await c1.messages.waitFor((x) => x.msg && x.msg.bn === bn, WAIT_MS, 'the v2 binary message at c1');
        assertBytes(got.msg.data, data, 'v2 binary message at c1');
        const data2 = someBytes(999, 15);
        const bn2 = nonce('v4bin');
        await ack(c1.socket, 'sendMessage', [{ bn2, data2 }]);
        const got2 = await c.messages.waitFor((x) => x.msg && x.msg.bn2 === bn2, WAIT_MS, 'the c1 binary message at the v2 client');
        assertBytes(got2.msg.data2, data2, 'c1 binary message at the v2 client');
      });

      it(`${label}: "from" of a v2 client's message is its socket.id`, T, async () => {
        const [c1] = await trio();
        const c = await getV2();
        const out = nonce('v2from');
        await ack(c.socket, 'sendMessage', [out]);
        const m = await c1.messages.waitFor((x) => x.msg === out, WAIT_MS, 'the v2 message at c1');
        // socket.io-client v2 takes the Engine.IO sid as its socket.id for "/" (Manager.generateId), as
        // Socket.IO v2 servers do: the sender must be able to recognise its own messages.
        assert.equal(m.from, c.socket.id,
          `message.from ${m.from} is not the v2 client's socket.id ${c.socket.id} (its Engine.IO sid ${c.socket.io.engine.id})`);
      });
    }
  });

  it('7. 60 v4 clients over three nodes and mixed transports: every client gets all 60 messages', { timeout: 30000 }, async () => {
    const transports = [undefined, ['polling'], ['websocket']];
    const specs = Array.from({ length: 60 }, (_, i) => ({ node: nodes[i % 3], transports: transports[Math.floor(i / 3) % 3] }));
    const many = await withTimeout(Promise.all(specs.map((s, i) => connectV4(reg, s.node,
      s.transports ? { transports: s.transports } : {}, `many#${i} (${s.node.name}, ${s.transports ? s.transports[0] : 'default'})`))),
    10000, 'the 60 clients to connect');
    const tag = nonce('many');
    const started = Date.now();
    many.forEach((c, i) => c.socket.emit('sendMessage', { tag, i }));
    const deadline = 15000;
    const results = await Promise.allSettled(many.map((c) => c.messages.waitCount((m) => m.msg && m.msg.tag === tag, 60,
      Math.max(1, deadline - (Date.now() - started)), `the 60 "${tag}" messages`)));
    const short = results.map((r, i) => (r.status === 'rejected'
      ? `${many[i].label}: ${many[i].messages.filter((m) => m.msg && m.msg.tag === tag).length}/60` : null)).filter(Boolean);
    assert.deepEqual(short, [], `clients that did not get all 60 messages within 15 s:\n${short.join('\n')}`);
    await new Promise((r) => setTimeout(r, 200)); // duplicates would show up now
    many.forEach((c, i) => {
      const got = c.messages.filter((m) => m.msg && m.msg.tag === tag);
      const idx = got.map((m) => m.msg.i).sort((x, y) => x - y);
      assert.deepEqual(idx, Array.from({ length: 60 }, (_, k) => k), `${many[i].label}: each of the 60 messages exactly once`);
      for (const m of got) {
        assert.equal(m.from, many[m.msg.i].socket.id, `${many[i].label}: from of message ${m.msg.i}`);
        assert.equal(m.node, specs[m.msg.i].node.name, `${many[i].label}: node of message ${m.msg.i}`);
      }
    });
    for (const c of many) c.socket.disconnect();
  });
});
