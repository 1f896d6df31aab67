'use strict';
// Paced migration with the official client: 600 socket.io-client v4 sessions (a third polling only)
// chatting on node1 of three Go chatnodes behind sidpin, each emitting an acknowledged message every
// second (ackTimeout + retries: the client sends again what its node did not acknowledge). The admin API
// migrates node1 at 100 sessions per second. Checked: the other nodes never get more than 1.5 × 100 new
// sessions in a second, the migration takes at least 5 s, every emitted message is acknowledged, node1
// ends with no session, and no client gives up.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, sleep } = require('../lib/chat-cluster');
const { startAdminSidpin, api, waitUntil, unique, tail } = require('../lib/admin-helpers');
const { sourceOpts } = require('../lib/source-addr');

const N = 600;
const RATE = 100;

describe(`paced migration: ${N} socket.io-client v4 sessions moved off node1 at ${RATE}/s`, () => {
  let nodes = [];
  let sp = null;
  const sockets = [];
  const timers = [];
  const token = unique('migrate-token');

  before(async () => {
    nodes = await startCluster(['node1', 'node2', 'node3'], unique('migrate'));
    sp = await startAdminSidpin('migrate', { nodes, token });
  });

  after(async () => {
    for (const t of timers) clearInterval(t);
    for (const s of sockets) s.disconnect();
    if (sp) {
      await sp.proc.stop();
      sp.remove();
    }
    await Promise.all(nodes.map((n) => n.proc.stop()));
  });

  it('reconnects stream at the rate, every message is acknowledged, node1 ends empty', async () => {
    const { io } = require('socket.io-client');
    await api(sp.admin, 'POST', '/api/nodes/chat/node2/drain', token);
    await api(sp.admin, 'POST', '/api/nodes/chat/node3/drain', token);
    const welcomes = []; // {t, node, i}
    for (let i = 0; i < N; i++) {
      const socket = io(sp.url, {
        forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 1000, ackTimeout: 3000, retries: 20,
        ...(i % 3 === 0 ? { transports: ['polling'] } : {}), ...sourceOpts(),
      });
      socket.on('welcome', (w) => welcomes.push({ t: Date.now(), node: w.node, i }));
      sockets.push(socket);
      if (i % 50 === 49) await sleep(50);
    }
    const firsts = () => new Set(welcomes.map((w) => w.i)).size;
    assert.ok(await waitUntil(() => firsts() === N, 30000), `${firsts()} of ${N} clients welcomed in 30 s`);
    assert.ok(welcomes.every((w) => w.node === 'node1'), 'the first sessions must all be on node1');
    await api(sp.admin, 'POST', '/api/nodes/chat/node2/undrain', token);
    await api(sp.admin, 'POST', '/api/nodes/chat/node3/undrain', token);

    let sent = 0;
    let acked = 0;
    const failed = [];
    for (const socket of sockets) {
      timers.push(setInterval(() => {
        const msg = `m${++sent}`;
        socket.emit('echo', msg, (err, got) => {
          if (err || got !== msg) failed.push(err ? String(err.message || err) : `${msg} acked as ${got}`);
          else acked++;
        });
      }, 1000));
    }
    await sleep(1500);

    const start = Date.now();
    const m = await api(sp.admin, 'POST', `/api/nodes/chat/node1/migrate?rate=${RATE}`, token, 202);
    assert.equal(m.total, N, `the migration found ${m.total} sessions on node1`);
    let done = null;
    await waitUntil(async () => {
      const r = await api(sp.admin, 'GET', '/api/nodes', token);
      const n1 = r.nodes.find((n) => n.name === 'node1');
      if (n1.migration && n1.migration.done) done = n1;
      return done;
    }, 30000, 100);
    assert.ok(done, `the migration was not done in 30 s; sidpin:\n${tail(sp.proc)}`);
    const took = Date.parse(done.migration.updated) - start;

    await sleep(3000); // the last clients reconnect and their messages are acknowledged
    for (const t of timers) clearInterval(t);
    await waitUntil(() => acked + failed.length === sent, 20000, 50);

    const reconnects = welcomes.filter((w) => w.t >= start);
    const perSecond = {};
    for (const w of reconnects) perSecond[Math.floor((w.t - start) / 1000)] = (perSecond[Math.floor((w.t - start) / 1000)] || 0) + 1;
    const peak = Math.max(...Object.values(perSecond));
    const summary = `migrated in ${took} ms; ${reconnects.length} reconnects, per second ${JSON.stringify(perSecond)}; ` +
      `${sent} messages sent, ${acked} acked, ${failed.length} failed (${failed.slice(0, 3).join('; ')})`;
    console.log(`# [migrate] ${summary}`);
    assert.ok(took >= 5000, `the migration took ${took} ms, want at least 5 s for ${N} sessions at ${RATE}/s; ${summary}`);
    assert.ok(reconnects.length >= N, `${reconnects.length} of ${N} clients reconnected; ${summary}`);
    assert.ok(reconnects.every((w) => w.node !== 'node1'), `a client reconnected to node1; ${summary}`);
    assert.ok(peak <= 1.5 * RATE, `${peak} new sessions in one second on the other nodes, over 1.5 × ${RATE}; ${summary}`);
    assert.equal(failed.length, 0, summary);
    assert.equal(acked, sent, summary);
    assert.equal(done.sessions, 0, `node1 has ${done.sessions} sessions after the migration`);
    assert.ok(sockets.every((s) => s.connected), `${sockets.filter((s) => !s.connected).length} clients not connected at the end`);
  });
});
