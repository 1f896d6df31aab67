'use strict';
// Issue 11, faults as tests with figures. Real processes only: Debian's HAProxy (mode tcp, health checks
// every 200 ms, fall 2, rise 2, option redispatch, retries 3, roundrobin; the rolling restart checks
// GET /readyz on sidpin's admin port with timeouts.shutdown_delay 1s, as the README recommends, the other
// scenarios a TCP connect; SIDPIN_FAULTS_CHECK=tcp|readyz forces one kind) in front of two sidpin instances A
// and B sharing their pin table in Redis, three Go chatnodes sharing a redis-server of this file's own for
// their chat fan-out, and socket.io-client v4 clients that chat through HAProxy (a message with an ack every
// 200-500 ms each, every broadcast counted). Each describe starts its own processes and stops each of them
// by its handle (PID) in `after`, whatever happened. Every test prints its figures as a short table.
//
// Clients arrive 10 every 100 ms. Figures are printed as [faults] tables; failures print their diagnosis
// (each failed request with HAProxy's log line of its connection, sidpin's log lines about the sid).
// SIDPIN_FAULTS_ONLY=roll,kill,sentinel runs some scenarios only, SIDPIN_FAULTS_PCAP=DIR captures the
// rolling restart with tshark, SIDPIN_FAULTS_REDIS_TIMEOUT overrides store.redis read/write timeouts,
// SIDPIN_FAULTS_KEEPALIVE=N (below).
//
//   rolling restart   60 polling-only + 60 default clients (SIDPIN_FAULTS_KEEPALIVE=N: N more polling-only
//                     ones sharing keep-alive connections, browser-like); SIGTERM A, wait for its exit, start it again
//                     with the same config, wait until it serves and HAProxy has it UP; then B the same way.
//                     Required: 0 polling sessions lost (sid kept, no disconnect), 0 "Session ID unknown"
//                     answers seen by any client, every acked message delivered to every other client
//                     connected over its window (see deliveryReport in e2e/lib/faults-helpers.js); WebSocket
//                     clients of a stopping instance reconnect (1001), counted and timed; no client stalls
//                     (an upgrade probe failing after 3probe); at the end everyone's message reaches everyone.
//   SIGKILL           30 + 30 clients; kill -9 A under load. Required: every client A's death disturbed is
//                     chatting again (reconnected, a message of its own acked and received by another
//                     client) within 3 s through B; the pin of every session whose client was not disturbed
//                     is still in Redis (B's admin API answers every pin left; a polling client whose request
//                     was cut at A sends a close packet, which ends its session and its pin); WebSocket
//                     clients tunnelled through B and polling clients with nothing in flight at A see
//                     nothing at all; no connection through B fails; no "Session ID unknown" but to sessions
//                     already cut at A.
//   Sentinel          the pin table on a Sentinel set (master, replica, three sentinels); 20 + 20 clients
//                     chatting; kill -9 the master. Required: established sessions see no failed request
//                     (no disconnect, no error); a new client every 200 ms: new sessions work again within
//                     3 s of the sentinels' +switch-master, and every one started later works.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  requireHaproxy, unique, startRig, openClients, ChatLoad, MetricsWatch, deliveryReport, FaultClient, pinnedSids, table, pct,
  summaryOf, sleep, waitUntil, relTo, missingDiagnosis, loopDelay, loadAverage, LineProc, finalRound,
} = require('../lib/faults-helpers');

// SIDPIN_FAULTS_ONLY=roll,kill,sentinel runs only the named scenarios (for debugging; make test runs all).
const ONLY = (process.env.SIDPIN_FAULTS_ONLY || '').split(',').filter(Boolean);
const skipUnless = (k) => (ONLY.length && !ONLY.includes(k) ? `not in SIDPIN_FAULTS_ONLY=${ONLY.join(',')}` : false);

const SEND_MIN_MS = 200;
const SEND_MAX_MS = 500;
const DELIVERY_WINDOW_MS = 2000;
// SIDPIN_FAULTS_KEEPALIVE=N adds N polling-only clients to the rolling restart that share keep-alive
// connections (one http.Agent with keepAlive, as a browser's requests do). Off by default: socket.io-client
// in Node opens a connection per request (engine.io-client passes agent: false to xmlhttprequest-ssl), and
// xmlhttprequest-ssl 2.1.2 retries a request reset on a reused socket without ever sending it (no end()),
// which stalls such a session instead of failing it.
const KEEPALIVE_CLIENTS = Number(process.env.SIDPIN_FAULTS_KEEPALIVE || 0);

function short(list, n = 10) {
  return list.length > n ? [...list.slice(0, n), `… ${list.length - n} more`] : list;
}

function tally(list, key) {
  const o = {};
  for (const x of list) { const k = key(x); o[k] = (o[k] || 0) + 1; }
  return o;
}

// requestTrail describes the last requests of a sid seen by the clients, with the HAProxy log line of
// each request's connection (server, Tw/Tc/Tt, bytes down/up, termination state, retries).
function requestTrail(rig, sid, rel, n = 6) {
  rig.hp.sync();
  const reqs = rig.observer.bySid.get(sid) || [];
  return reqs.slice(-n).map((r) => {
    const e = rig.hp.connOf(r);
    const hp = e ? [e] : [];
    const hpText = hp.map((e) => `haproxy ${e.server} ${e.Tw}/${e.Tc}/${e.Tt} down ${e.bytesDown} B up ${e.bytesUp} B state ${e.ts} retries ${e.rc}`).join('; ');
    return `${r.method} port ${r.localPort} ${rel(r.t0)} → ${rel(r.t1)}: ${r.error ? `ERROR ${r.error}` : r.status}${r.body ? ` ${JSON.stringify(r.body.slice(0, 80))}` : ''}${hpText ? ` [${hpText}]` : ' [no haproxy log line]'}`;
  });
}

// assertReady checks that every client connected (and every default one upgraded to websocket), and
// says what happened to those that did not: troubles, probe answered or not, upgrade errors, their
// requests (with HAProxy's log line of each) and sidpin's lines about their sid.
function assertReady(rig, clients, rel) {
  const unready = clients.filter((c) => !c.ready || (c.kind === 'default' && c.transportNow !== 'websocket'));
  const text = unready.slice(0, 6).map((c) => `${c.label} (sid ${c.sid}): connected ${c.socket.connected}, transport ${c.transportNow}, ` +
    `troubles ${c.troubles().map((t) => t.what).join(' | ') || 'none'}, probe answered ${c.upgrading.map((u) => rel(u.at)).join(',') || 'never'}, ` +
    `upgrade errors ${c.upgradeErrors.map((u) => `${rel(u.at)} ${u.detail}`).join(' | ') || 'none'}\n    ${requestTrail(rig, c.sid, rel, 8).join('\n    ')}` +
    `\n    ${[rig.A, rig.B].flatMap((x) => x.sidLines(c.sid || '-', rel)).slice(-5).join('\n    ')}`);
  if (unready.length) console.log(`[faults] clients not ready (times after the check):\n  ${text.join('\n  ')}`);
  assert.equal(unready.length, 0, `clients that did not connect through HAProxy (or, default transports, did not upgrade to websocket) within 15 s:\n  ${text.join('\n  ')}`);
}

// Without Debian's haproxy this file fails, it is never skipped.
it('Debian\'s haproxy is installed at /usr/sbin/haproxy', () => {
  requireHaproxy();
});

describe('rolling restart of two sidpin instances on Redis behind HAProxy', { skip: skipUnless('roll') }, () => {
  let rig = null;
  let capture = null;
  let keepAliveAgent = null;
  before(async () => {
    requireHaproxy();
    rig = await startRig({ tag: 'roll', check: 'readyz', shutdownDelay: '1s' });
    // SIDPIN_FAULTS_PCAP=DIR: capture the traffic of both instances' ports with tshark (for diagnosis).
    if (process.env.SIDPIN_FAULTS_PCAP) {
      const file = require('node:path').join(process.env.SIDPIN_FAULTS_PCAP, `roll-${Date.now()}.pcap`);
      capture = new LineProc('tshark', 'tshark', ['-i', 'lo', '-f', `tcp port ${rig.A.port} or tcp port ${rig.B.port}`, '-w', file]);
      await waitUntil(() => capture.lines.some((l) => /Capturing on/.test(l.text)) || !capture.alive(), 5000);
      console.log(`[faults] capturing ports A ${rig.A.port}, B ${rig.B.port} into ${file}`);
    }
  });
  after(async () => {
    if (capture) await capture.stop(3000);
    if (rig) await rig.stop();
    if (keepAliveAgent) keepAliveAgent.destroy();
  });

  it('loses no polling session, answers no "Session ID unknown", delivers every acked message; WebSockets reconnect', { timeout: 150000 }, async () => {
    const { A, B, hp, observer } = rig;
    const run = unique('roll');
    // 60 polling-only clients as socket.io-client runs in Node (a connection per request), 60 default ones,
    // and (SIDPIN_FAULTS_KEEPALIVE) polling-only ones sharing keep-alive connections as browsers do.
    if (KEEPALIVE_CLIENTS) keepAliveAgent = new (require('node:http').Agent)({ keepAlive: true });
    const clients = await openClients(hp.url, { polling: 60, defaults: 60, keepAlive: KEEPALIVE_CLIENTS, keepAliveAgent, run });
    rig.clients.push(...clients);
    const t0 = Date.now();
    const rel = relTo(t0);
    assertReady(rig, clients, rel);
    const load = new ChatLoad(clients, run, { minMs: SEND_MIN_MS, maxMs: SEND_MAX_MS, limitMs: 90000 });
    const metrics = new MetricsWatch([A, B]);
    const lag = loopDelay();
    const restarts = [];
    try {
      await sleep(2000);
      for (const inst of [A, B]) {
        const r = { name: inst.name, termAt: Date.now() };
        const t = await inst.term(20000);
        r.exitMs = t.exitMs;
        r.exit = t.exit;
        if (!t.exit) {
          restarts.push(r);
          assert.fail(`sidpin ${inst.name} did not exit within 20 s of SIGTERM\n${inst.logs(30)}`);
        }
        const s = await inst.start();
        r.startMs = s.startMs;
        r.servingAt = inst.current.servingAt;
        const up = await hp.waitStates({ [inst.name]: 'UP' }, 5000);
        const down = hp.states.find((x) => x.server === inst.name && x.state === 'DOWN' && x.at >= r.termAt);
        const upEv = hp.states.find((x) => x.server === inst.name && x.state === 'UP' && x.at >= r.termAt);
        r.hpDownMs = down ? down.at - r.termAt : null;
        r.hpUpMs = upEv ? upEv.at - r.termAt : null;
        r.hpUpOk = up.ok;
        restarts.push(r);
        await sleep(2000);
      }
    } finally {
      load.stop();
    }
    await load.settle(6000);
    await sleep(DELIVERY_WINDOW_MS + 500);
    await metrics.stop();
    const final = await finalRound(clients, run);
    const tEnd = Date.now();
    const lagFig = lag.stop();

    // ---- figures
    rig.hp.sync();
    const polling = clients.filter((c) => c.kind === 'polling');
    const defaults = clients.filter((c) => c.kind === 'default');
    const lostPolling = polling.filter((c) => c.connects.length !== 1 || c.troubles().length > 0);
    const pollRow = (label, list) => {
      const lost = list.filter((c) => lostPolling.includes(c));
      return [label, list.length, list.length - lost.length, lost.length, list.reduce((n, c) => n + c.connects.length - 1, 0), '-'];
    };
    const wsDisconnects = defaults.flatMap((c) => c.disconnects.filter((d) => !d.closing).map((d) => {
      const back = c.connects.find((x) => x.at > d.at);
      return { c, d, backMs: back ? back.at - d.at : null };
    }));
    const wsBack = summaryOf(wsDisconnects.filter((x) => x.backMs !== null).map((x) => x.backMs));
    const allTroubles = clients.flatMap((c) => c.troubles().map((t) => ({ c, ...t })));
    const unknownTroubles = allTroubles.filter((t) => /Session ID unknown/.test(t.what));
    const dr = deliveryReport(clients, load.messages, { windowMs: DELIVERY_WINDOW_MS });
    const wsAcked = load.messages.filter((m) => m.client.kind === 'default' && m.ackAt !== null);
    const drWs = deliveryReport(clients, wsAcked, { windowMs: DELIVERY_WINDOW_MS });
    const sidpinUnknown = metrics.sum(/^sidpin_session_unknown_total/);
    const failures = observer.failures;
    table('rolling restart: sessions', [
      ['transport', 'clients', 'kept', 'lost', 'reconnections', 'time back after a disconnect'],
      pollRow('polling only (a connection per request)', polling.filter((c) => !c.keepAlive)),
      ...(KEEPALIVE_CLIENTS ? [pollRow('polling only (keep-alive connections)', polling.filter((c) => c.keepAlive))] : []),
      ['default (websocket)', defaults.length, defaults.filter((c) => c.connects.length === 1 && !c.troubles().length).length,
        defaults.filter((c) => c.connects.length !== 1 || c.troubles().length).length, defaults.reduce((n, c) => n + c.connects.length - 1, 0), pct(wsBack)],
    ]);
    // Connections through the stopping instance that were open at its SIGTERM (HAProxy's log: accepted
    // before, ended after), by how they ended.
    for (const r of restarts) {
      const open = hp.entries.filter((e) => e.server === r.name && e.acceptAt < r.termAt && e.acceptAt + e.Tt > r.termAt);
      r.inFlight = open.length;
      r.inFlightStates = tally(open, (e) => e.ts);
    }
    table(`rolling restart: restarts (HAProxy checks ${rig.check === 'readyz' ? 'GET /readyz on the admin port, shutdown_delay 1s' : 'by TCP connect, no shutdown_delay'}; ms after SIGTERM, except start; load average ${loadAverage()}, test process event loop delay p50 ${lagFig.p50} / p99 ${lagFig.p99} / max ${lagFig.max} ms)`, [
      ['instance', 'SIGTERM at', 'SIGTERM→exit', 'exit', 'start→serving', 'HAProxy DOWN', 'HAProxy UP', 'connections open at SIGTERM (end states)'],
      ...restarts.map((r) => [r.name, rel(r.termAt), r.exitMs, r.exit ? `code ${r.exit.code} ${r.exit.signal || ''}`.trim() : 'still running', r.startMs, r.hpDownMs, r.hpUpMs,
        `${r.inFlight} ${JSON.stringify(r.inFlightStates)}`]),
    ]);
    table('rolling restart: messages', [
      ['sent', load.messages.length, 'acked', dr.acked, 'ack timeouts', load.messages.filter((m) => m.ackErr).length, 'skipped (disconnected)', load.skipped],
      ['deliveries expected', dr.expected, 'delivered', dr.delivered, 'missing', dr.missingTotal, 'excluded (recipient disconnected)', dr.excluded],
      ['acked by websocket clients', drWs.acked, 'their deliveries expected', drWs.expected, 'missing', drWs.missingTotal, 'duplicates received', clients.reduce((n, c) => n + c.duplicates, 0)],
      ['ack latency ms', pct(dr.ackLatency), 'receipt after the ack ms', pct(dr.receiptAfterAck), 'ack timeouts by sender kind', tally(load.messages.filter((m) => m.ackErr), (m) => m.client.kind)],
    ]);
    if (dr.missingTotal) {
      console.log(`[faults] rolling restart: missing deliveries by recipient (times after load start):\n  ${missingDiagnosis(dr, load.messages, rel).join('\n  ')}`);
      for (const g of missingDiagnosis.groups.slice(0, 3)) {
        const conn = [...g.c.connects].reverse().find((x) => x.at <= g.first) || g.c.connects[0];
        console.log(`[faults]   requests of ${g.c.label}'s session ${conn.sid} (the last ones):\n    ${requestTrail(rig, conn.sid, rel, 10).join('\n    ')}\n    ` +
          `${[A, B].flatMap((x) => x.sidLines(conn.sid, rel)).slice(-6).join('\n    ')}`);
      }
    }
    const stalled = clients.filter((c) => c.stalledProbes.length);
    table('rolling restart: end state', [
      ['clients connected at the end', final.live, 'not connected', final.notConnected.length, 'whose last message reached no one', final.silent.length, 'not receiving the others\' last messages', final.incomplete.length],
      ['clients stalled by a probe that failed after 3probe (engine.io-client stays paused)', stalled.length],
      ...short(stalled.map((c) => `  ${c.label}: probe answered ${c.stalledProbes.map((u) => `${rel(u.at)}, failed ${rel(u.error.at)} (${u.error.detail})`).join('; ')}`), 6),
    ]);
    table('rolling restart: errors', [
      ['"Session ID unknown" seen by clients (HTTP 400 bodies)', observer.sessionUnknown, 'in disconnect/connect_error reasons', unknownTroubles.length, 'counted by sidpin (metrics)', sidpinUnknown],
      ['client HTTP requests', observer.total, 'answers by status', observer.byStatus],
      ['HAProxy connections', hp.conns.total, 'per server', hp.conns.perServer, 'retried', hp.conns.retried, 'redispatched', hp.conns.redispatched],
      ['HAProxy termination states', hp.conns.byState],
      ['disconnect reasons', tally(allTroubles, (t) => `${t.c.kind}: ${t.what.slice(0, 70)}`)],
      ...short(failures.map((r) => [`transport error ${rel(r.t0)}`, `${r.method} sid ${r.sid} port ${r.localPort}`, r.error || `${r.status} ${r.body || ''}`]), 12),
    ]);

    // ---- diagnosis of each lost polling session
    const termA = restarts[0] && restarts[0].termAt;
    const diag = lostPolling.map((c) => {
      const oldSid = c.connects[0] && c.connects[0].sid;
      return [`${c.label} (sid ${oldSid}): ${c.troubles().map((t) => `${t.what} at ${rel(t.at)}`).join(' | ')}`,
        ...requestTrail(rig, oldSid, rel).map((x) => `    ${x}`),
        ...[A, B].flatMap((x) => x.sidLines(oldSid, rel)).slice(-6).map((x) => `    sidpin ${x}`)].join('\n');
    });
    // Every request that failed, with its session's last requests and sidpin's lines about the sid.
    const ownerOfSid = new Map(clients.flatMap((c) => c.connects.map((x) => [x.sid, c])));
    const failDiag = failures.slice(0, 6).map((r) => {
      const c = ownerOfSid.get(r.sid);
      return [`${r.method} ${r.transport} sid ${r.sid} (${c ? `${c.label}, ${c.kind}; troubles: ${c.troubles().map((t) => `${t.what.slice(0, 80)} at ${rel(t.at)}`).join(' | ') || 'none'}` : 'no client'}) ${rel(r.t0)} → ${rel(r.t1)}: ${r.error || `${r.status} ${r.body}`}`,
        ...requestTrail(rig, r.sid, rel, 5).map((x) => `    ${x}`),
        ...[A, B].flatMap((x) => x.sidLines(r.sid, rel)).slice(-4).map((x) => `    sidpin ${x}`)].join('\n');
    });
    if (failDiag.length) console.log(`[faults] rolling restart: failed client requests (times after load start):\n  ${failDiag.join('\n  ')}`);
    // HAProxy connections that did not end normally ("SD": the server reset or closed it during data),
    // each named by what the client used it for.
    const wsPorts = new Map(clients.flatMap((c) => c.upgrades.filter((u) => u.localPort).map((u) => [u.localPort, c])));
    const abnormal = hp.entries.filter((e) => e.ts !== '--' && e.acceptAt >= t0 - 5000).map((e) => {
      const req = observer.byPort.get(e.clientPort);
      const ws = wsPorts.get(e.clientPort);
      const what = ws ? `WebSocket of ${ws.label}` : req ? `${req.method} ${req.transport} of ${(ownerOfSid.get(req.sid) || {}).label || req.sid}: ${req.error || req.status}` : 'unknown';
      const r = restarts.find((x) => x.name === e.server);
      return [`${e.server} ${e.ts}`, `accepted ${rel(e.acceptAt)}, ended ${rel(e.acceptAt + e.Tt)}${r ? ` (${e.acceptAt + e.Tt - r.termAt} ms after ${e.server}'s SIGTERM)` : ''}`, `down ${e.bytesDown} B, up ${e.bytesUp} B`, what];
    });
    if (abnormal.length) table('rolling restart: HAProxy connections that did not end normally', short(abnormal, 15));
    const problems = [...A.problems(rel), ...B.problems(rel)];
    if (problems.length) table('rolling restart: sidpin WARN/ERROR lines (times after load start)', problems);
    if (diag.length) {
      console.log(`\n[faults] rolling restart: lost polling sessions (times after load start; SIGTERM A at ${rel(termA)}, B at ${rel(restarts[1] && restarts[1].termAt)})\n${diag.join('\n')}`);
    }
    const ctx = `\n${diag.join('\n')}\n${A.logs(25, /level=(WARN|ERROR)|shutting|stopped|listening/)}\n${B.logs(25, /level=(WARN|ERROR)|shutting|stopped|listening/)}`;

    // ---- requirements
    assert.equal(restarts.length, 2, 'both instances restarted');
    for (const r of restarts) {
      assert.ok(r.exit && r.exit.code === 0, `sidpin ${r.name} exits 0 after SIGTERM: ${JSON.stringify(r.exit)}`);
      assert.ok(r.hpUpOk, `HAProxy has ${r.name} UP again within 5 s of its restart`);
    }
    assert.equal(lostPolling.length, 0, `polling sessions lost during the rolling restart${ctx}`);
    assert.equal(observer.sessionUnknown + unknownTroubles.length, 0, `"Session ID unknown" answers seen by clients${ctx}`);
    assert.equal(dr.missingTotal, 0, `acked messages not delivered to a client connected over their window: ${JSON.stringify(dr.missing.slice(0, 10).map((m) => ({ id: m.id, from: m.from, to: m.to, sentAt: rel(m.sentAt), ackAt: rel(m.ackAt) })))}`);
    assert.ok(dr.acked > clients.length * 5, `messages acked: ${dr.acked}`);
    const notBack = defaults.filter((c) => !c.socket.connected).map((c) => `${c.label}: ${c.troubles().map((t) => t.what).join(' | ')}`);
    assert.deepEqual(notBack, [], `WebSocket clients connected again at the end (${tEnd - t0} ms after the load started)`);
    assert.deepEqual(stalled.map((c) => `${c.label}: probe answered (3probe) ${c.stalledProbes.map((u) => `${rel(u.at)}, then failed ${rel(u.error.at)}: ${u.error.detail}`).join('; ')}`), [],
      'no upgrade probe fails after the node\'s 3probe (engine.io-client then stalls the session)');
    assert.deepEqual([...final.silent.map((c) => `${c.label}: its last message reached no one`), ...final.incomplete.map((x) => `${x.c.label}: ${x.missing} of the others' last messages missing`)], [],
      'at the end every connected client sends and receives (everyone\'s last message reaches everyone)');
    const badWs = wsDisconnects.filter((x) => !/transport close|transport error/.test(x.d.reason) || x.backMs === null || x.backMs > 5000);
    assert.deepEqual(badWs.map((x) => `${x.c.label}: ${x.d.reason} ${x.d.detail} back after ${x.backMs} ms`), [],
      'WebSocket clients only lose their transport (closed by the stopping instance) and are back within 5 s');
  });
});

// backAt is when a client disturbed at `since` was chatting again: the earliest message it sent after its
// first reconnection that was acked and received by another client (the later of those two times).
function backAt(c, clients, since) {
  const reconnect = c.connects.find((x) => x.at > since);
  if (!reconnect) return null;
  let best = null;
  for (const m of c.sent || []) {
    if (m.sentAt < reconnect.at || m.ackAt === null) continue;
    let first = null;
    for (const o of clients) {
      if (o === c) continue;
      const at = o.received.get(m.id);
      if (at !== undefined && (first === null || at < first)) first = at;
    }
    if (first !== null && (best === null || Math.max(m.ackAt, first) < best)) best = Math.max(m.ackAt, first);
  }
  return best;
}

describe('SIGKILL of one of two sidpin instances under load', { skip: skipUnless('kill') }, () => {
  let rig = null;
  before(async () => {
    requireHaproxy();
    rig = await startRig({ tag: 'kill' });
  });
  after(async () => { if (rig) await rig.stop(); });

  it('its clients chat again through B within 3 s, pins stay intact, B\'s clients see nothing', { timeout: 120000 }, async () => {
    const { A, B, hp, observer } = rig;
    const run = unique('kill');
    const clients = await openClients(hp.url, { polling: 30, defaults: 30, run });
    rig.clients.push(...clients);
    const t0 = Date.now();
    const rel = relTo(t0);
    assertReady(rig, clients, rel);
    const load = new ChatLoad(clients, run, { minMs: SEND_MIN_MS, maxMs: SEND_MAX_MS, limitMs: 60000 });
    let tKill = null;
    let pinsBefore = new Set();
    let pinsAfter = new Set();
    const sidAtKill = new Map();
    let disturbed = [];
    try {
      await sleep(1500);
      // Which instance carries each WebSocket (HAProxy's sessions by client port), each client's sid and
      // the pins in Redis, just before the kill.
      const sess = await hp.sessions();
      for (const c of clients) {
        c.tunnelVia = c.kind === 'default' ? sess.get(c.wsLocalPort) || null : null;
        sidAtKill.set(c, c.sid);
      }
      pinsBefore = await pinnedSids(rig.redis.port, rig.prefix);
      for (const c of clients) c.onReconnect = (x) => { if (!x.backMsg) x.backMsg = load.send(x); }; // chat at once when back
      const k = await A.kill9();
      tKill = k.at;
      const stillDisturbed = () => clients.filter((c) => c.troubles(tKill).length > 0);
      await sleep(1000);
      await waitUntil(() => { disturbed = stillDisturbed(); return disturbed.every((c) => backAt(c, clients, tKill) !== null); }, 8000);
      await sleep(1000);
      disturbed = stillDisturbed();
    } finally {
      load.stop();
    }
    await load.settle(6000);
    await sleep(DELIVERY_WINDOW_MS + 300);
    pinsAfter = await pinnedSids(rig.redis.port, rig.prefix);
    const final = await finalRound(clients, run);
    const relK = relTo(tKill);

    // ---- figures
    rig.hp.sync();
    const backs = disturbed.map((c) => ({ c, at: backAt(c, clients, tKill) }));
    const backMs = summaryOf(backs.filter((b) => b.at !== null).map((b) => b.at - tKill));
    const viaA = clients.filter((c) => c.tunnelVia === 'A');
    const viaB = clients.filter((c) => c.tunnelVia === 'B');
    const polling = clients.filter((c) => c.kind === 'polling');
    const pollDisturbed = disturbed.filter((c) => c.kind === 'polling');
    const pollKept = polling.filter((c) => !disturbed.includes(c) && c.sid === sidAtKill.get(c) && c.connects.length === 1);
    // Pins from before the kill, through B's admin API.
    const apiAnswers = {};
    const keptSids = pollKept.map((c) => sidAtKill.get(c));
    for (const sid of [...pinsBefore].slice(0, 200)) {
      const r = await B.adminGet(`/api/pins/${encodeURIComponent(sid)}`);
      apiAnswers[r.status] = (apiAnswers[r.status] || 0) + 1;
    }
    const keptPinned = keptSids.filter((sid) => pinsAfter.has(sid)).length;
    const lostPins = [...pinsBefore].filter((sid) => !pinsAfter.has(sid));
    // Whose pins went: the session of an undisturbed client must keep its pin; a disturbed client's old
    // session may end (the node closes it when its transport is cut) and its pin with it.
    const ownerOf = new Map(clients.map((c) => [sidAtKill.get(c), c]));
    const lostOf = (pred) => lostPins.filter((sid) => { const c = ownerOf.get(sid); return c && pred(c); });
    const lostUndisturbed = lostOf((c) => !disturbed.includes(c));
    const unpinLines = (sid) => [A, B].flatMap((x) => x.sidLines(sid, relK));
    // The client requests that failed after the kill, and the server HAProxy sent each one to.
    const failed = observer.failuresIn(tKill - 2000).map((r) => {
      const e = rig.hp.connOf(r);
      return { r, server: e ? e.server : null, e };
    });
    // A session whose request was cut at A ends: its client's close packet (a POST through B) may then
    // meet the node's 400 (for the POST it still holds from A, or for the session it has closed). Only
    // failures of other sessions count.
    const cutAtA = new Set(failed.filter((f) => f.server === 'A').map((f) => f.r.sid));
    const unknownAfter = observer.failures.filter((r) => r.t0 >= tKill - 2000 && r.status === 400 && /Session ID unknown/.test(r.body || ''));
    const hpDown = hp.states.find((x) => x.server === 'A' && x.state === 'DOWN' && x.at >= tKill);
    const abnormalB = hp.entries.filter((e) => e.server === 'B' && e.ts !== '--' && e.acceptAt + e.Tt >= tKill - 500);
    const abnormalA = hp.entries.filter((e) => e.server === 'A' && e.ts !== '--' && e.acceptAt + e.Tt >= tKill - 500);
    const dr = deliveryReport(clients, load.messages, { windowMs: DELIVERY_WINDOW_MS });
    table(`SIGKILL of A: clients (HAProxy checks: ${rig.check})`, [
      ['group', 'clients', 'disturbed by the kill', 'back (chatting again)', 'time back after the kill'],
      ['WebSocket through A', viaA.length, viaA.filter((c) => disturbed.includes(c)).length, viaA.filter((c) => backs.some((b) => b.c === c && b.at !== null)).length, pct(summaryOf(backs.filter((b) => b.c.tunnelVia === 'A' && b.at !== null).map((b) => b.at - tKill)))],
      ['WebSocket through B', viaB.length, viaB.filter((c) => disturbed.includes(c)).length, '-', '-'],
      ['WebSocket, instance unknown', clients.filter((c) => c.kind === 'default' && !c.tunnelVia).length, clients.filter((c) => c.kind === 'default' && !c.tunnelVia && disturbed.includes(c)).length, '-', '-'],
      ['polling only', polling.length, pollDisturbed.length, pollDisturbed.filter((c) => backs.some((b) => b.c === c && b.at !== null)).length, pct(summaryOf(backs.filter((b) => b.c.kind === 'polling' && b.at !== null).map((b) => b.at - tKill)))],
      ['all disturbed', disturbed.length, '', backs.filter((b) => b.at !== null).length, pct(backMs)],
    ]);
    table('SIGKILL of A: pins and HAProxy', [
      ['pins in Redis before the kill', pinsBefore.size, 'still there after', pinsBefore.size - lostPins.length, 'B\'s GET /api/pins/{sid} answers', apiAnswers],
      ['pins gone: of disturbed polling', lostOf((c) => c.kind === 'polling' && disturbed.includes(c)).length, 'of disturbed WebSocket', lostOf((c) => c.kind === 'default' && disturbed.includes(c)).length, 'of undisturbed clients', lostUndisturbed.length],
      ['undisturbed polling clients', pollKept.length, 'with their sid of before the kill pinned', keptPinned],
      ['HAProxy marks A DOWN after', hpDown ? `${hpDown.at - tKill} ms` : 'never', 'connections through A ended abnormally', abnormalA.length, 'through B', abnormalB.length],
      ['"Session ID unknown" answers after the kill', unknownAfter.length, 'to sessions already cut at A', unknownAfter.filter((r) => cutAtA.has(r.sid)).length],
      ['client requests failed after the kill', failed.length, 'sent by HAProxy to', tally(failed, (f) => f.server || 'unknown'), 'errors', tally(failed, (f) => `${f.server}: ${f.r.method} ${f.r.error || f.r.status}`)],
      ['messages sent', load.messages.length, 'acked', dr.acked, 'deliveries expected', dr.expected, 'missing', dr.missingTotal],
      ['clients connected at the end', final.live, 'whose last message reached no one', final.silent.length, 'not receiving the others\' last messages', final.incomplete.length, 'stalled by a probe failed after 3probe', clients.filter((c) => c.stalledProbes.length).length],
    ]);
    const late = backs.filter((b) => b.at === null || b.at - tKill > 3000).map((b) => `${b.c.label} (${b.c.kind}${b.c.tunnelVia ? ` via ${b.c.tunnelVia}` : ''}): ` +
      `${b.c.troubles(tKill).map((t) => `${t.what} at ${relK(t.at)}`).join(' | ')}; reconnected at ${relK((b.c.connects.find((x) => x.at > tKill) || {}).at)}; ` +
      `back msg ${b.c.backMsg ? `sent ${relK(b.c.backMsg.sentAt)} acked ${relK(b.c.backMsg.ackAt)} ${b.c.backMsg.ackErr || ''}` : 'not sent'}; back ${relK(b.at)}`);
    const problemsK = [...A.problems(relK), ...B.problems(relK)];
    if (problemsK.length) table('SIGKILL of A: sidpin WARN/ERROR lines (times after the kill)', problemsK);
    if (late.length) console.log(`[faults] SIGKILL: clients not back within 3 s (times after the kill):\n  ${late.join('\n  ')}`);
    if (lostPins.length) {
      console.log(`[faults] SIGKILL: pins gone after the kill (sidpin's log lines of each sid, times after the kill):\n  ${short(lostPins.map((sid) => {
        const c = ownerOf.get(sid);
        return `${sid} (${c ? `${c.label}${c.tunnelVia ? ` via ${c.tunnelVia}` : ''}, ${disturbed.includes(c) ? `disturbed: ${c.troubles(tKill).map((t) => t.what.slice(0, 60)).join(' | ')}` : 'undisturbed'}` : 'no client of this test'}): ` +
          `${unpinLines(sid).slice(-3).join(' ;; ') || 'no log line'}`;
      }), 8).join('\n  ')}`);
    }
    if (dr.missingTotal) console.log(`[faults] SIGKILL: missing deliveries by recipient (times after the kill):\n  ${missingDiagnosis(dr, load.messages, relK).join('\n  ')}`);
    const ctx = `\n${B.logs(20, /level=(WARN|ERROR)/)}`;

    // ---- requirements
    assert.ok(viaA.length > 0 && viaB.length > 0, `WebSockets on both instances before the kill: A ${viaA.length}, B ${viaB.length}`);
    assert.ok(disturbed.length > 0, 'the kill disturbed some clients');
    assert.deepEqual(late, [], 'every client the kill disturbed is chatting again within 3 s');
    assert.deepEqual(viaB.filter((c) => c.troubles(tKill).length).map((c) => `${c.label}: ${c.troubles(tKill).map((t) => t.what).join(' | ')}`), [],
      'no WebSocket client tunnelled through B is disturbed');
    const failedElsewhere = failed.filter((f) => f.server !== 'A' && !cutAtA.has(f.r.sid));
    assert.deepEqual(failedElsewhere.map((f) => `${f.r.method} ${f.r.sid} port ${f.r.localPort} ${relK(f.r.t0)}: ${f.r.error || f.r.status} ${f.r.body || ''} via ${f.server}`), [],
      `every client request that failed after the kill went to A, or belongs to a session cut at A${ctx}`);
    assert.deepEqual(abnormalB.map((e) => `${e.clientPort} ${e.ts} ${e.Tw}/${e.Tc}/${e.Tt}`), [], 'no connection through B ended abnormally');
    assert.deepEqual(lostUndisturbed, [], 'every pin of a session whose client was not disturbed is still in Redis');
    assert.equal(keptPinned, pollKept.length, 'undisturbed polling clients kept their sid, still pinned');
    assert.equal(apiAnswers[200], pinsBefore.size - lostPins.length, 'B\'s admin API answers every pin still in Redis');
    assert.equal(pollKept.length + pollDisturbed.length, polling.length, 'every polling client either kept its sid or was disturbed (and came back)');
    assert.equal(dr.missingTotal, 0, `acked messages not delivered: ${JSON.stringify(dr.missing.slice(0, 10).map((m) => ({ id: m.id, from: m.from, to: m.to, sentAt: relK(m.sentAt), ackAt: relK(m.ackAt) })))}`);
    const unknownElsewhere = unknownAfter.filter((r) => !cutAtA.has(r.sid));
    assert.deepEqual(unknownElsewhere.map((r) => `${r.method} ${r.sid} ${relK(r.t0)}`), [], '"Session ID unknown" answers to sessions not cut at A');
    assert.deepEqual([...final.notConnected.map((c) => `${c.label}: not connected`), ...final.silent.map((c) => `${c.label}: its last message reached no one`),
      ...final.incomplete.map((x) => `${x.c.label}: ${x.missing} of the others' last messages missing`)], [],
      'at the end every client is connected, and everyone\'s last message reaches everyone');
  });
});

// probeSession opens one new client (reconnection off) and records whether it works: connected and
// welcomed, a message acked, and nothing going wrong for 1.5 s after the ack (its next requests go
// through both instances). Bounded: ≤ 6 s to connect, 3 s for the ack.
function probeSession(url, run, i) {
  const kind = i % 2 ? 'default' : 'polling';
  const c = new FaultClient(url, kind, 1000 + i, `${run}-probe`, { reconnection: false, timeout: 6000 });
  const p = { i, c, kind, startAt: Date.now(), welcomeAt: null, ackAt: null, ok: null, why: '' };
  p.done = (async () => {
    await waitUntil(() => c.ready || c.troubles().length > 0, 6000);
    if (c.ready) {
      p.welcomeAt = c.welcomes[0].at;
      await new Promise((resolve) => {
        c.socket.timeout(3000).emit('sendMessage', { run: `${run}-probe`, id: -i }, (err) => {
          if (!err) p.ackAt = Date.now();
          resolve();
        });
      });
      if (p.ackAt) await sleep(1500);
    }
    const t = c.troubles();
    p.ok = c.ready && p.ackAt !== null && t.length === 0;
    p.why = p.ok ? '' : t.length ? t.map((x) => x.what).join(' | ') : c.ready ? 'no ack within 3 s' : 'not connected within 6 s';
    p.endAt = Date.now();
    c.close();
  })();
  return p;
}

describe('Redis Sentinel failover under load (master killed with SIGKILL)', { skip: skipUnless('sentinel') }, () => {
  let rig = null;
  const MASTER = 'sidpinfaults';
  before(async () => {
    requireHaproxy();
    rig = await startRig({ tag: 'sentinel', sentinelName: MASTER });
  });
  after(async () => { if (rig) await rig.stop(); });

  it('established sessions see no failed request; new sessions work again within 3 s of +switch-master', { timeout: 150000 }, async () => {
    const { A, B, hp, observer } = rig;
    const set = rig.sentinels;
    const run = unique('sentinel');
    const clients = await openClients(hp.url, { polling: 20, defaults: 20, run });
    rig.clients.push(...clients);
    assertReady(rig, clients, relTo(Date.now()));
    const load = new ChatLoad(clients, run, { minMs: SEND_MIN_MS, maxMs: SEND_MAX_MS, limitMs: 60000 });
    const metrics = new MetricsWatch([A, B]);
    const probes = [];
    let looping = true;
    let tKill = null;
    let tSwitch = null;
    const loop = (async () => {
      for (let i = 0; i < 150 && looping; i++) {
        const p = probeSession(hp.url, run, i);
        probes.push(p);
        rig.clients.push(p.c);
        await sleep(200);
      }
    })();
    try {
      await sleep(3000);
      tKill = Date.now();
      set.master.proc.kill('SIGKILL');
      await set.master.proc.waitExit(3000);
      await waitUntil(() => set.events.some((e) => e.event === '+switch-master' && e.at >= tKill), 15000);
      const sw = set.events.find((e) => e.event === '+switch-master' && e.at >= tKill);
      tSwitch = sw ? sw.at : null;
      await sleep(6000);
    } finally {
      looping = false;
      await loop;
      await Promise.all(probes.map((p) => p.done));
      load.stop();
    }
    await load.settle(6000);
    await sleep(DELIVERY_WINDOW_MS + 300);
    await metrics.stop();
    const final = await finalRound(clients, run);
    const relK = relTo(tKill);

    // ---- figures
    rig.hp.sync();
    const ev = (name) => set.events.find((e) => e.event === name && e.at >= tKill);
    const estSids = new Set(clients.flatMap((c) => c.connects.map((x) => x.sid)));
    const estFailed = observer.failures.filter((r) => estSids.has(r.sid));
    const estTroubles = clients.flatMap((c) => c.troubles().map((t) => `${c.label} (sid ${(c.disconnects.find((d) => d.at === t.at) || {}).sid || '?'}): ${t.what} at ${relK(t.at)}${t.at < tKill ? ' (BEFORE the kill)' : ''}`));
    const dr = deliveryReport(clients, load.messages, { windowMs: DELIVERY_WINDOW_MS });
    // recoveredAt: the start of the first probe after which every probe worked.
    let recovered = null;
    for (let i = probes.length - 1; i >= 0 && probes[i].ok; i--) recovered = probes[i];
    const failedProbes = probes.filter((p) => !p.ok);
    const phase = (from, to) => {
      const ps = probes.filter((p) => p.startAt >= from && p.startAt < to);
      return `${ps.filter((p) => p.ok).length}/${ps.length}`;
    };
    const probeFailures = observer.failures.filter((r) => !estSids.has(r.sid));
    const sidpinRedisLines = [A, B].map((s) => `${s.name}: ${s.incarnations[0].proc.grep(/redis|store|level=(WARN|ERROR)/i, tKill).length} lines`).join(', ');
    table(`Sentinel failover: timeline (ms after SIGKILL of the master; HAProxy checks: ${rig.check})`, [
      ['+sdown master', ev('+sdown') ? relK(ev('+sdown').at) : '-', '+odown', ev('+odown') ? relK(ev('+odown').at) : '-',
        '+switch-master', tSwitch ? relK(tSwitch) : 'never', '+failover-end', ev('+failover-end') ? relK(ev('+failover-end').at) : '-'],
      ['new sessions working again from', recovered ? relK(recovered.startAt) : 'never', 'after +switch-master', recovered && tSwitch ? `${recovered.startAt - tSwitch} ms` : '-',
        'last failed new session started', failedProbes.length ? relK(failedProbes[failedProbes.length - 1].startAt) : '-'],
    ]);
    table('Sentinel failover: sessions and requests', [
      ['established clients', clients.length, 'troubles', estTroubles.length, 'failed requests', estFailed.length, 'messages sent/acked', `${load.messages.length}/${dr.acked}`, 'missing deliveries', dr.missingTotal],
      ['established clients connected at the end', final.live, 'whose last message reached no one', final.silent.length, 'not receiving the others\' last messages', final.incomplete.length],
      ['new sessions (every 200 ms)', probes.length, 'working', probes.length - failedProbes.length, 'before the kill', phase(0, tKill),
        'kill → switch', phase(tKill, tSwitch || Infinity), 'switch → +3 s', phase(tSwitch || Infinity, (tSwitch || Infinity) + 3000), 'later', phase((tSwitch || Infinity) + 3000, Infinity)],
      ['new sessions\' failed requests', probeFailures.length, 'by answer', tally(probeFailures, (r) => `${r.method} ${r.transport}: ${r.error ? r.error : `${r.status} ${String(r.body || '').slice(0, 50)}`}`)],
      ['failures of new sessions', tally(failedProbes, (p) => p.why.slice(0, 90))],
      ['sidpin pin store errors (metrics)', metrics.sum(/^sidpin_pin_store_errors_total/), 'sidpin log lines on redis/store/WARN since the kill', sidpinRedisLines],
      ...short(failedProbes.map((p) => [`new session #${p.i} (${p.kind})`, `started ${relK(p.startAt)}`, p.why.slice(0, 140)]), 12),
    ]);
    const sidLines = (sid) => [A, B].flatMap((x) => x.sidLines(sid, relK));
    const problemsS = [...A.problems(relK), ...B.problems(relK)];
    if (problemsS.length) table('Sentinel failover: sidpin WARN/ERROR lines (times after the kill)', problemsS);
    if (estTroubles.length || estFailed.length) {
      const sids = [...new Set([...estFailed.map((r) => r.sid), ...clients.flatMap((c) => c.disconnects.filter((d) => !d.closing).map((d) => d.sid))])].filter(Boolean);
      console.log(`[faults] Sentinel: established sessions that failed (times after the kill):\n  ${estTroubles.join('\n  ')}\n` +
        `${sids.slice(0, 6).map((sid) => `  ${sid}:\n${requestTrail(rig, sid, relK).map((x) => `    ${x}`).join('\n')}\n    sidpin: ${sidLines(sid).slice(-4).join('\n    sidpin: ')}`).join('\n')}`);
    }
    const ctx = `\nsentinel events: ${set.events.filter((e) => e.at >= tKill - 100).slice(0, 20).map((e) => `${relK(e.at)} s${e.sentinel} ${e.event} ${e.text}`).join('\n  ')}\n` +
      `${A.logs(30, /level=(WARN|ERROR)|redis/i)}\n${B.logs(30, /level=(WARN|ERROR)|redis/i)}`;

    // ---- requirements
    assert.ok(tSwitch !== null, `the sentinels switch the master within 15 s of its death${ctx}`);
    assert.deepEqual(estTroubles, [], `established clients see no disconnect or error${ctx}`);
    assert.deepEqual(estFailed.map((r) => `${r.method} ${r.sid} ${relK(r.t0)}: ${r.error || `${r.status} ${r.body}`}`), [], `established sessions' requests that failed${ctx}`);
    assert.equal(dr.missingTotal, 0, `acked messages not delivered: ${JSON.stringify(dr.missing.slice(0, 10).map((m) => ({ id: m.id, from: m.from, to: m.to, sentAt: relK(m.sentAt), ackAt: relK(m.ackAt) })))}`);
    assert.deepEqual([...final.notConnected.map((c) => `${c.label}: not connected`), ...final.silent.map((c) => `${c.label}: its last message reached no one`),
      ...final.incomplete.map((x) => `${x.c.label}: ${x.missing} missing`)], [],
      'at the end every established client is connected and receives every other one\'s last message');
    const lateProbes = probes.filter((p) => p.startAt >= tSwitch + 3000);
    assert.ok(lateProbes.length >= 5, `new sessions started 3 s after +switch-master: ${lateProbes.length}`);
    assert.deepEqual(lateProbes.filter((p) => !p.ok).map((p) => `#${p.i} (${p.kind}) started ${relK(p.startAt)}: ${p.why}`), [],
      `every new session started 3 s or more after +switch-master works${ctx}`);
    assert.ok(recovered && recovered.startAt - tSwitch <= 3000, `new sessions work again within 3 s of +switch-master: from ${recovered ? relK(recovered.startAt) : 'never'}, switch at ${relK(tSwitch)}${ctx}`);
  });
});
