'use strict';
// A Redis outage under two sidpin instances sharing their pin table (store.kind: redis). The pin table
// lives on a redis-server of this file's own (free port, no persistence), killed with SIGKILL for 10 s
// and started again on the same port; the three Go chatnodes keep their chat fan-out on the test Redis
// (SIDPIN_TEST_REDIS), which stays up. Sessions reach the instances through the alternating front
// (e2e/lib/alt-front.js: each request of a session goes to the other instance than its previous one),
// and directly.
//
// One timeline (run once, by the first test that needs it), then one test per property:
//   1. 40 socket.io-client v4 polling-only clients + 5 raw Engine.IO polling sessions connect through
//      the front; a noop POST of each session straight at A and straight at B answers 200 (both
//      instances have seen every session). The Redis table holds 45 pins.
//   2. Steady load: each client sends a message every 250 ms with an ack, long-polling as usual.
//   3. SIGKILL the redis-server; during the 10 s outage: 10 new raw sessions handshake straight at A,
//      join "/" and long-poll at A; each of them sends a noop POST straight at B every 500 ms.
//   4. Start redis-server again on the same port; each outage session's noop POST at B every 100 ms until
//      it answers 200 (time to converge).
//   5. 2 s more load, then the load stops and every ack is awaited.
//   6. New clients through the front (10 polling only, 5 default transports) after Redis is back.
//   7. The pin table converges: keys PREFIX p:* in Redis == live Engine.IO sessions on the nodes.
//   8. A sidpin instance C started now (same config, fresh cache) routes every live raw session.
// Figures are printed as one summary line and written to e2e/artifacts/redis-outage.json.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { redisAddr, Registry, startCluster, sleep } = require('../lib/chat-cluster');
const { trackedV4 } = require('../lib/sidpin-helpers');
const { waitUntil } = require('../lib/sidpin-scenario');
const { startAltFront } = require('../lib/alt-front');
const {
  writeConfig, startInstance, tail, grepLines, ownRedis, pingRedis, pinSids, nodeSessions, request, RawSession, summaryOf,
} = require('../lib/sidpin-redis-helpers');
const { freePort } = require('../lib/procs');

const NAMES = ['node1', 'node2', 'node3'];
const ESTABLISHED = 40; // socket.io-client polling-only clients through the front
const RAW_ESTABLISHED = 5; // raw polling sessions through the front
const OUTAGE_HANDSHAKES = 10; // raw sessions opened straight at A while Redis is down
const NEW_POLLING = 10; // socket.io-client clients through the front after Redis is back
const NEW_DEFAULT = 5;
const OUTAGE_MS = 10000;
const SEND_EVERY_MS = 250;
const ACK_LATE_MS = 5000;
const CONVERGE_MS = 10000; // bound of the wait for the outage sessions to work through B after Redis is back
const KEYS_CONVERGE_MS = 5000;
const ARTIFACT = path.join(__dirname, '..', 'artifacts', 'redis-outage.json');

function unique(tag) {
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function tally(map, key) {
  map[key] = (map[key] || 0) + 1;
}

function statusKey(r) {
  if (r.status === 400 && /Session ID unknown/.test(r.body)) return '400 Session ID unknown';
  if (r.status === 503) return `503 ${String(r.body).trim().slice(0, 60)}`;
  return String(r.status);
}

// Without the test Redis this file fails, it is never skipped.
it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

describe('a 10 s Redis outage under two sidpin instances sharing their pin table', () => {
  let nodes = [];
  let redis = null; // this file's own redis-server, for the pin table only
  let cfg = null;
  let prefix = '';
  let A = null;
  let B = null;
  let C = null;
  let front = null;
  const reg = new Registry();
  const raws = [];
  let scenarioPromise = null;

  before(async () => {
    redisAddr();
    nodes = await startCluster(NAMES, 'sidpin-redis-outage');
    redis = await ownRedis();
    await redis.start();
    prefix = `${unique('sidpin-e2e-outage')}:`;
    cfg = writeConfig({ listenPort: await freePort(), store: 'redis', redisAddr: redis.addr, prefix, nodes, behindFront: true });
    A = await startInstance('A', cfg.file);
    B = await startInstance('B', cfg.file);
    front = await startAltFront({ backends: [A.url, B.url] });
  });

  after(async () => {
    reg.closeAll();
    for (const r of raws) r.stop();
    await sleep(100);
    await Promise.all([
      front ? front.stop() : null,
      ...[A, B, C].filter(Boolean).map((s) => s.proc.stop()),
      ...nodes.map((n) => n.proc.stop()),
    ]);
    if (redis) await redis.stop();
    if (cfg) cfg.remove();
  });

  function scenario() {
    if (!scenarioPromise) scenarioPromise = runOutage();
    return scenarioPromise;
  }

  function logs() {
    return `\nsidpin A output (tail):\n${tail(A.proc)}\nsidpin B output (tail):\n${tail(B.proc)}`;
  }

  async function runOutage() {
    const f = { figures: {}, established: {}, outage: {}, after: {} };
    const t0 = Date.now();
    const rel = (t) => (t === null || t === undefined ? null : t - t0);

    // 1. Established sessions through the front.
    const tag = unique('outage');
    const clients = [];
    for (let i = 0; i < ESTABLISHED; i++) {
      const c = trackedV4(front.url, { transports: ['polling'] }, `e#${i} (polling only, established)`);
      c.got = new Set();
      c.socket.on('message', (m) => { if (m && m.msg && m.msg.tag === tag) c.got.add(`${m.msg.i}/${m.msg.k}`); });
      reg.add(() => c.close());
      clients.push(c);
    }
    const rawEst = [];
    for (let i = 0; i < RAW_ESTABLISHED; i++) {
      const r = new RawSession(`raw-e#${i} (raw polling, established, via front)`);
      raws.push(r);
      rawEst.push(r);
    }
    await Promise.all(rawEst.map(async (r) => {
      const h = await r.handshake(front.url);
      if (h.status === 200 && r.sid) await r.connect(front.url, front.url, front.url);
    }));
    await waitUntil(() => clients.every((c) => c.welcomeNode !== null || c.errors.length > 0), 10000);
    f.established.welcomed = clients.filter((c) => c.welcomeNode !== null && c.errors.length === 0).length;
    f.established.rawWelcomed = rawEst.filter((r) => r.welcomeNode !== null && r.errors.length === 0).length;
    const estSids = new Set([...clients.map((c) => c.socket.io.engine.id), ...rawEst.map((r) => r.sid)].filter(Boolean));

    // Both instances have seen every session: a noop POST straight at A and straight at B answers 200.
    // (A polling-only socket.io client is idle after "welcome": no POST of its own can overlap.)
    const warm = { A: {}, B: {} };
    for (const c of clients) {
      const sid = c.socket.io.engine.id;
      for (const [name, sp] of [['A', A], ['B', B]]) {
        tally(warm[name], statusKey(await request(`${sp.url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, { method: 'POST', body: '6' })));
      }
    }
    for (const r of rawEst) {
      for (const [name, sp] of [['A', A], ['B', B]]) tally(warm[name], statusKey(await r.post(sp.url, '6')));
    }
    f.established.warmNoopPosts = warm;
    f.established.frontSessionsOnBothInstances = front.sessionsOnAll();
    f.established.pinKeysBeforeOutage = (await pinSids(redis.addr, prefix)).length;

    // 2. Steady load.
    const acks = []; // {sentAt, latency or null}
    let lateAcks = 0;
    let sent = 0;
    const timers = [];
    let k = 0;
    const loadStart = Date.now();
    const welcomed = clients.filter((c) => c.welcomeNode !== null);
    for (const [i, c] of welcomed.entries()) {
      const tick = () => {
        const entry = { sentAt: Date.now(), latency: null, client: i };
        acks.push(entry);
        sent += 1;
        k += 1;
        const late = setTimeout(() => { lateAcks += 1; }, ACK_LATE_MS);
        c.socket.emit('sendMessage', { tag, i, k }, () => {
          clearTimeout(late);
          entry.latency = Date.now() - entry.sentAt;
        });
      };
      const starter = setTimeout(() => {
        tick();
        timers.push(setInterval(tick, SEND_EVERY_MS));
      }, Math.round((i * SEND_EVERY_MS) / welcomed.length));
      timers.push(starter);
    }
    await sleep(2000);

    // 3. Outage.
    const snapDown = front.snapshot();
    const tDown = Date.now();
    await redis.kill('SIGKILL');
    const downConfirmed = !(await pingRedis(redis.port, 300));
    f.outage.redisDownAtMs = rel(tDown);
    f.outage.signal = 'SIGKILL';
    f.outage.downConfirmed = downConfirmed;
    const outageRaws = [];
    for (let i = 0; i < OUTAGE_HANDSHAKES; i++) {
      const r = new RawSession(`raw-o#${i} (opened straight at A during the outage)`);
      raws.push(r);
      outageRaws.push(r);
    }
    const hsLatency = [];
    await Promise.all(outageRaws.map(async (r) => {
      const h = await r.handshake(A.url);
      hsLatency.push(h.ms);
      r.handshakeStatus = statusKey(h);
      if (h.status === 200 && r.sid) await r.connect(A.url, A.url, A.url);
    }));
    const opened = outageRaws.filter((r) => r.sid);
    f.outage.handshakesAtA = {
      attempted: OUTAGE_HANDSHAKES,
      succeeded: opened.length,
      welcomed: outageRaws.filter((r) => r.welcomeNode !== null).length,
      statuses: outageRaws.reduce((m, r) => { tally(m, r.handshakeStatus); return m; }, {}),
      latencyMs: summaryOf(hsLatency),
      nodes: outageRaws.reduce((m, r) => { if (r.welcomeNode) tally(m, r.welcomeNode); return m; }, {}),
    };
    // Through B while Redis is down.
    const duringB = {};
    const duringBOkSessions = new Set();
    let duringProbes = 0;
    for (let round = 0; round < 40 && Date.now() < tDown + OUTAGE_MS - 600; round++) {
      const results = await Promise.all(opened.map((r) => r.post(B.url, '6', 2000).then((x) => ({ r, x }))));
      for (const { r, x } of results) {
        duringProbes += 1;
        tally(duringB, statusKey(x));
        if (x.status === 200) duringBOkSessions.add(r.sid);
      }
      await sleep(Math.min(500, Math.max(0, tDown + OUTAGE_MS - 600 - Date.now())));
    }
    f.outage.viaBDuringOutage = { probes: duringProbes, statuses: duringB, sessionsThatWorked: duringBOkSessions.size, of: opened.length };
    await sleep(Math.max(0, tDown + OUTAGE_MS - Date.now()));
    const snapUpStart = front.snapshot();

    // 4. Redis back, on the same port (empty: no persistence).
    const tRestart = Date.now();
    const tUp = await redis.start();
    f.outage.actualOutageMs = tUp - tDown;
    f.outage.redisUpAtMs = rel(tUp);
    f.outage.restartTookMs = tUp - tRestart;
    const afterB = {};
    const convergeMs = [];
    await Promise.all(opened.map(async (r) => {
      const deadline = tUp + CONVERGE_MS;
      for (let i = 0; i < 200 && Date.now() < deadline; i++) {
        const x = await r.post(B.url, '6', 2000);
        tally(afterB, statusKey(x));
        if (x.status === 200) { r.convergedMs = Date.now() - tUp; convergeMs.push(r.convergedMs); return; }
        await sleep(100);
      }
    }));
    f.outage.viaBAfterReturn = {
      sessionsThatWork: convergeMs.length,
      of: opened.length,
      statusesUntilTheyWork: afterB,
      msAfterRedisAnswersPing: summaryOf(convergeMs),
    };

    // 5. Two more seconds of load, then stop and await every ack.
    await sleep(2000);
    for (const t of timers) { clearTimeout(t); clearInterval(t); }
    const loadStop = Date.now();
    await waitUntil(() => acks.every((a) => a.latency !== null), ACK_LATE_MS + 1000);
    const acked = acks.filter((a) => a.latency !== null);
    await waitUntil(() => welcomed.every((c) => c.got.size >= acked.length || c.errors.length > 0), 5000);
    const snapLoadEnd = front.snapshot();
    const windowFailures = front.failures.filter((x) => x.t >= loadStart && x.t <= Date.now());
    const perWindow = (from, to) => ({
      requests: to.requests - from.requests,
      perInstance: to.perInstance.map((p, i) => p.requests - from.perInstance[i].requests),
      failures: to.failuresTotal - from.failuresTotal,
      sessionUnknown: to.sessionUnknown - from.sessionUnknown,
      proxyErrors: to.proxyErrors - from.proxyErrors,
    });
    f.established.load = {
      clients: welcomed.length,
      sendEveryMs: SEND_EVERY_MS,
      durationMs: loadStop - loadStart,
      sent,
      acked: acked.length,
      lateAcksOver5s: lateAcks,
      missingAcks: acks.length - acked.length,
      ackLatencyMs: {
        beforeOutage: summaryOf(acked.filter((a) => a.sentAt < tDown).map((a) => a.latency)),
        duringOutage: summaryOf(acked.filter((a) => a.sentAt >= tDown && a.sentAt < tUp).map((a) => a.latency)),
        afterOutage: summaryOf(acked.filter((a) => a.sentAt >= tUp).map((a) => a.latency)),
      },
      messagesReceivedPerClient: summaryOf(welcomed.map((c) => c.got.size)),
      clientsMissingMessages: welcomed.filter((c) => c.got.size < acked.length).length,
      errorEvents: clients.reduce((n, c) => n + c.errors.length, 0),
      errors: clients.filter((c) => c.errors.length).slice(0, 5).map((c) => `${c.label}: ${c.errors.join(' | ')}`),
      rawErrors: rawEst.filter((r) => r.errors.length).map((r) => `${r.label}: ${r.errors.join(' | ')}`),
      rawPolls: rawEst.reduce((n, r) => n + r.getStats.ok, 0),
      frontWholeLoad: perWindow(snapDown, snapLoadEnd),
      frontDuringOutage: perWindow(snapDown, snapUpStart),
      frontFailuresSample: windowFailures.slice(0, 8),
    };

    // 6. New sessions through the front after Redis is back.
    const fresh = [];
    for (let i = 0; i < NEW_POLLING + NEW_DEFAULT; i++) {
      const polling = i < NEW_POLLING;
      const c = trackedV4(front.url, polling ? { transports: ['polling'] } : {}, `n#${i} (${polling ? 'polling only' : 'default transports'}, after the outage)`);
      c.kind = polling ? 'polling' : 'default';
      reg.add(() => c.close());
      fresh.push(c);
    }
    const snapNew = front.snapshot();
    await waitUntil(() => fresh.every((c) => c.welcomeNode !== null || c.errors.length > 0), 10000);
    let freshAcks = 0;
    for (const c of fresh.filter((x) => x.welcomeNode !== null)) c.socket.emit('sendMessage', { tag: `${tag}-fresh` }, () => { freshAcks += 1; });
    await waitUntil(() => freshAcks >= fresh.filter((x) => x.welcomeNode !== null).length, 5000);
    await waitUntil(() => fresh.every((c) => c.kind === 'polling' || c.socket.io.engine.transport.name === 'websocket' || c.errors.length > 0), 5000);
    const snapNewEnd = front.snapshot();
    f.after.newSessionsThroughFront = {
      attempted: fresh.length,
      welcomed: fresh.filter((c) => c.welcomeNode !== null).length,
      acks: freshAcks,
      upgraded: fresh.filter((c) => c.kind === 'default' && c.socket.io.engine.transport.name === 'websocket').length,
      ofDefault: NEW_DEFAULT,
      errorEvents: fresh.reduce((n, c) => n + c.errors.length, 0),
      errors: fresh.filter((c) => c.errors.length).slice(0, 5).map((c) => `${c.label}: ${c.errors.join(' | ')}`),
      frontFailures: snapNewEnd.failuresTotal - snapNew.failuresTotal,
      frontSessionUnknown: snapNewEnd.sessionUnknown - snapNew.sessionUnknown,
    };

    // 7. The pin table converges: one key per live session.
    const freshSids = new Set(fresh.map((c) => c.socket.io.engine.id).filter(Boolean));
    const outageSids = new Set(opened.map((r) => r.sid));
    let live = null;
    let sids = [];
    const tKeys = Date.now();
    for (let i = 0; i < 50 && Date.now() < tKeys + KEYS_CONVERGE_MS; i++) {
      live = await nodeSessions(nodes);
      sids = await pinSids(redis.addr, prefix);
      if (sids.length === live.total) break;
      await sleep(100);
    }
    const keySet = new Set(sids);
    const count = (set) => [...set].filter((s) => !keySet.has(s)).length;
    f.after.pinTable = {
      keys: sids.length,
      liveSessionsOnNodes: live.total,
      liveByNode: live,
      expectedLive: estSids.size + outageSids.size + freshSids.size,
      waitedMs: Date.now() - tKeys,
      sessionsWithoutKey: {
        establishedBeforeOutage: count(estSids),
        ofEstablished: estSids.size,
        openedDuringOutage: count(outageSids),
        ofOutage: outageSids.size,
        openedAfterOutage: count(freshSids),
        ofAfter: freshSids.size,
      },
      keysOfNoKnownSession: sids.filter((s) => !estSids.has(s) && !outageSids.has(s) && !freshSids.has(s)).length,
    };

    // 8. A sidpin instance started now, with a fresh cache: the shared table is all it has.
    C = await startInstance('C', cfg.file);
    const freshInstance = { establishedRaw: {}, outageRaw: {} };
    for (const r of rawEst) tally(freshInstance.establishedRaw, statusKey(await r.post(C.url, '6')));
    for (const r of opened) tally(freshInstance.outageRaw, statusKey(await r.post(C.url, '6')));
    f.after.freshInstanceC = freshInstance;
    f.after.freshInstanceCLog = grepLines(C.proc, /Session ID|unknown|level=(WARN|ERROR)/, 5);

    f.sidpinLog = {
      A: { redisUnreachableLines: grepLines(A.proc, /redis unreachable/, 1000).length, sample: grepLines(A.proc, /level=(WARN|ERROR)/, 4) },
      B: { lookupFailedLines: grepLines(B.proc, /pin lookup failed/, 1000).length, sample: grepLines(B.proc, /level=(WARN|ERROR)/, 4) },
    };
    f.run = { ownRedis: redis.addr, chatFanoutRedis: redisAddr(), keyPrefix: prefix, outageMs: OUTAGE_MS, totalMs: Date.now() - t0 };
    f.summary = `redis outage ${f.outage.actualOutageMs} ms (SIGKILL): established ${welcomed.length}+${rawEst.length} sessions ` +
      `sent ${sent} msgs, acked ${acked.length}, late ${lateAcks}, errors ${f.established.load.errorEvents}, front failures ${f.established.load.frontWholeLoad.failures}, ` +
      `ack p95 during outage ${f.established.load.ackLatencyMs.duringOutage.p95} ms | handshakes at A during outage ${opened.length}/${OUTAGE_HANDSHAKES} ok | ` +
      `via B during outage ${JSON.stringify(duringB)} | via B after return: ${convergeMs.length}/${opened.length} in max ${f.outage.viaBAfterReturn.msAfterRedisAnswersPing.max} ms ` +
      `${JSON.stringify(afterB)} | new via front ${f.after.newSessionsThroughFront.welcomed}/${fresh.length} | ` +
      `pin keys ${sids.length} vs live ${live.total} (without key: ${JSON.stringify(f.after.pinTable.sessionsWithoutKey)}) | ` +
      `fresh instance C: established ${JSON.stringify(freshInstance.establishedRaw)}, outage ${JSON.stringify(freshInstance.outageRaw)}`;
    process.stdout.write(`${f.summary}\n`);
    fs.mkdirSync(path.dirname(ARTIFACT), { recursive: true });
    fs.writeFileSync(ARTIFACT, `${JSON.stringify(f, null, 2)}\n`);
    f.clients = clients;
    f.rawEst = rawEst;
    f.opened = opened;
    f.fresh = fresh;
    return f;
  }

  it('established sessions (40 socket.io polling clients + 5 raw, through the alternating front, seen by both instances) run through the outage and after it with zero failed requests, zero errors, every ack',
    { timeout: 60000 }, async () => {
      const f = await scenario();
      const e = f.established;
      const ctx = `\n${f.summary}\n${JSON.stringify(e, null, 1)}${logs()}`;
      assert.equal(e.welcomed, ESTABLISHED, `socket.io clients welcomed through the front${ctx}`);
      assert.equal(e.rawWelcomed, RAW_ESTABLISHED, `raw sessions welcomed through the front${ctx}`);
      assert.deepEqual(e.warmNoopPosts, { A: { 200: ESTABLISHED + RAW_ESTABLISHED }, B: { 200: ESTABLISHED + RAW_ESTABLISHED } },
        `noop POSTs of every established session straight at A and at B before the outage${ctx}`);
      assert.equal(e.pinKeysBeforeOutage, ESTABLISHED + RAW_ESTABLISHED, `pin keys in Redis before the outage${ctx}`);
      assert.equal(f.outage.downConfirmed, true, `the own redis-server still answered after SIGKILL${ctx}`);
      const l = e.load;
      assert.ok(l.sent >= ESTABLISHED * 40, `messages sent under load: ${l.sent}${ctx}`);
      assert.ok(l.ackLatencyMs.duringOutage.n >= ESTABLISHED * 30, `messages sent during the outage: ${l.ackLatencyMs.duringOutage.n}${ctx}`);
      assert.ok(l.frontDuringOutage.perInstance.every((n) => n >= ESTABLISHED * 10),
        `requests of established sessions through each instance during the outage: ${l.frontDuringOutage.perInstance}${ctx}`);
      assert.equal(l.frontWholeLoad.failures, 0, `failed requests (not 2xx) at the front from the start of the load to its end${ctx}`);
      assert.equal(l.frontWholeLoad.sessionUnknown, 0, `"Session ID unknown" at the front${ctx}`);
      assert.equal(l.frontWholeLoad.proxyErrors, 0, `front proxy errors${ctx}`);
      assert.equal(l.errorEvents, 0, `connect_error / disconnect / engine error events of established clients${ctx}`);
      assert.deepEqual(l.rawErrors, [], `errors of the raw established sessions${ctx}`);
      assert.equal(l.missingAcks, 0, `acks that never came${ctx}`);
      assert.equal(l.lateAcksOver5s, 0, `acks later than 5 s${ctx}`);
      assert.equal(l.acked, l.sent, `acks${ctx}`);
      assert.equal(l.clientsMissingMessages, 0, `established clients that did not get every broadcast${ctx}`);
      for (const c of f.clients) {
        assert.ok(c.socket.connected, `${c.label} is not connected any more`);
        assert.equal(c.socket.io.engine.transport.name, 'polling', `${c.label}: transport`);
      }
    });

  it(`new handshakes straight at A while Redis is down succeed (pinned on A only)`, { timeout: 60000 }, async () => {
    const f = await scenario();
    const h = f.outage.handshakesAtA;
    const ctx = `\n${f.summary}\n${JSON.stringify(f.outage, null, 1)}${logs()}`;
    assert.equal(h.succeeded, OUTAGE_HANDSHAKES, `handshakes answered with a sid by A during the outage${ctx}`);
    assert.equal(h.welcomed, OUTAGE_HANDSHAKES, `outage sessions that joined "/" and got "welcome" through A${ctx}`);
    assert.ok(f.sidpinLog.A.redisUnreachableLines >= OUTAGE_HANDSHAKES, `A logged no "redis unreachable: session pinned on this instance only" lines${ctx}`);
    for (const r of f.opened) assert.deepEqual(r.errors, [], `${r.label}: errors of its own traffic at A`);
  });

  it('through B, those sessions get 503 while Redis is down and work within a few seconds after it is back', { timeout: 60000 }, async () => {
    const f = await scenario();
    const o = f.outage;
    const ctx = `\n${f.summary}\n${JSON.stringify(o, null, 1)}${logs()}`;
    const d = o.viaBDuringOutage;
    assert.ok(d.probes >= OUTAGE_HANDSHAKES * 5, `probes through B during the outage: ${d.probes}${ctx}`);
    assert.deepEqual(Object.keys(d.statuses).filter((s) => !s.startsWith('503')), [], `answers of B during the outage other than 503${ctx}`);
    assert.equal(d.sessionsThatWorked, 0, `outage sessions that worked through B while Redis was down${ctx}`);
    const a = o.viaBAfterReturn;
    assert.equal(a.sessionsThatWork, a.of, `outage sessions working through B within ${CONVERGE_MS} ms after Redis is back${ctx}`);
    assert.ok(a.msAfterRedisAnswersPing.max <= 5000, `time until they work through B: ${JSON.stringify(a.msAfterRedisAnswersPing)}${ctx}`);
  });

  it('after Redis is back, new sessions through the alternating front work (polling only and upgraded)', { timeout: 60000 }, async () => {
    const f = await scenario();
    const n = f.after.newSessionsThroughFront;
    const ctx = `\n${f.summary}\n${JSON.stringify(n, null, 1)}${logs()}`;
    assert.equal(n.welcomed, NEW_POLLING + NEW_DEFAULT, `new clients welcomed${ctx}`);
    assert.equal(n.errorEvents, 0, `error events of the new clients${ctx}`);
    assert.equal(n.acks, NEW_POLLING + NEW_DEFAULT, `acks of the new clients${ctx}`);
    assert.equal(n.upgraded, NEW_DEFAULT, `default-transport new clients on websocket${ctx}`);
    assert.equal(n.frontFailures, 0, `failed requests at the front${ctx}`);
  });

  it(`the Redis pin table converges: keys PREFIX p:* == live sessions within ${KEYS_CONVERGE_MS / 1000} s`, { timeout: 60000 }, async () => {
    const f = await scenario();
    const p = f.after.pinTable;
    const ctx = `\n${f.summary}\n${JSON.stringify(p, null, 1)}${logs()}`;
    assert.equal(p.liveSessionsOnNodes, p.expectedLive, `Engine.IO sessions on the nodes vs sessions of this test${ctx}`);
    assert.deepEqual(p.sessionsWithoutKey, {
      establishedBeforeOutage: 0, ofEstablished: ESTABLISHED + RAW_ESTABLISHED,
      openedDuringOutage: 0, ofOutage: OUTAGE_HANDSHAKES,
      openedAfterOutage: 0, ofAfter: NEW_POLLING + NEW_DEFAULT,
    }, `live sessions without a pin key in Redis after the outage${ctx}`);
    assert.equal(p.keys, p.liveSessionsOnNodes, `pin keys in Redis vs live sessions${ctx}`);
  });

  it('a sidpin instance started after the outage (fresh cache, same Redis) routes every live session', { timeout: 60000 }, async () => {
    const f = await scenario();
    const c = f.after.freshInstanceC;
    const ctx = `\n${f.summary}\n${JSON.stringify(c)}\nC output:\n${C ? tail(C.proc, 1500) : ''}`;
    assert.deepEqual(c.outageRaw, { 200: OUTAGE_HANDSHAKES }, `noop POSTs of the sessions opened during the outage through C${ctx}`);
    assert.deepEqual(c.establishedRaw, { 200: RAW_ESTABLISHED }, `noop POSTs of the sessions established before the outage through C${ctx}`);
  });
});
