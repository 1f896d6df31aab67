'use strict';
// Issue 7 end to end: the admin listener of two sidpin instances (A and B) sharing one Redis pin table
// (store.kind redis, a key prefix of this run), each with its own admin listener on a free loopback port
// and admin.token_env naming the variable that holds the bearer token, in front of three Go chatnodes
// (chat fan-out through the test Redis). 100 live socket.io-client v4 sessions, 50 through each instance:
// 20 on default transports (polling, then the upgrade), 15 polling only, 15 websocket only.
//   list      GET /api/pins, paged through its cursor, from A and from B lists exactly the 100 engine ids,
//             each with the node its chatnode's "welcome" named, pool chat, EIO 4 and the transport of its
//             kind (polling only -> polling, upgraded -> upgraded, websocket only -> websocket).
//   filters   pool, pool+node, transport, node+transport, eio list exactly the matching sessions on both
//             instances; bad filters and a bad cursor answer 400.
//   one pin   GET /api/pins/{sid} on both instances; 404 for an unknown sid.
//   metrics   /metrics with the token: sidpin_sessions (100 per instance's view of the shared table, per
//             node as the welcomes say) and sidpin_handshakes_total (50 per instance: 35 polling, 15 websocket).
//   auth      every route but /healthz answers 401 without the token and with wrong ones (wrong, longer,
//             shorter, Basic, no scheme, a forged cookie, the token as cookie), on both instances, with a
//             body naming no sid, no node, no node URL and not the token; nothing it asked for happened.
//   kick      DELETE /api/pins/{sid} on A of a polling-only, a websocket-only and an upgraded client of A:
//             each reconnects (new engine id, "welcome" again) within 5 s; A answers 404 for the old pin, and
//             so does B (which had read it before the kick) within 2 s.
//   drain     POST /api/nodes/chat/node1/drain on A: B shows node1 "draining" within 2.5 s, GET /api/nodes
//             on both shows it draining with its live sessions, new sessions through A and B avoid it;
//             undrain on B: A shows it "up" again and new sessions reach it.
//   end       no client other than the kicked ones saw any error or disconnect; the table lists exactly
//             the live sessions.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { redisAddr, startCluster, sleep } = require('../lib/chat-cluster');
const {
  TOKEN_ENV, unique, startAdminSidpin, adminRequest, api, listAllPins, nodesOf, parseMetrics, sumMetric, waitUntil,
  FollowedClient, PIN_TRANSPORT,
  tail, countBy,
} = require('../lib/admin-helpers');

const NAMES = ['node1', 'node2', 'node3'];
const PER_INSTANCE = { default: 20, polling: 15, websocket: 15 };
const TOTAL = 2 * (PER_INSTANCE.default + PER_INSTANCE.polling + PER_INSTANCE.websocket);

function report(line) {
  console.log(`[sidpin-admin] ${line}`);
}

// Without the test Redis this file fails, it is never skipped.
it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

describe('admin API of two sidpin instances on one Redis pin table', { timeout: 90000 }, () => {
  const token = crypto.randomBytes(24).toString('base64url');
  const prefix = `${unique('sidpin-e2e-admin')}:`;
  let nodes = [];
  let A;
  let B;
  const clients = []; // the 100 of the main set
  const extra = []; // opened by the drain test
  const kicked = new Set(); // clients whose session was kicked (they may have seen a disconnect)
  const kickedSids = new Set(); // engine ids whose pin was deleted
  const kickedOn = []; // {sid, label} of every DELETE sent to A
  const t0 = Date.now();

  const ctx = () => `\nsidpin A output (tail):\n${A ? tail(A.proc) : '-'}\nsidpin B output (tail):\n${B ? tail(B.proc) : '-'}`;
  // live: the clients whose session must be in the pin table: open, and not still on a session whose pin
  // was deleted (a kicked client that did not reconnect: the kick tests fail for it; here it is left out
  // so that the other checks stay about what they test).
  const zombies = () => [...clients, ...extra].filter((c) => !c.closing && kickedSids.has(c.engineId()));
  const live = () => [...clients, ...extra].filter((c) => !c.closing && !kickedSids.has(c.engineId()));
  const byId = () => new Map(live().map((c) => [c.engineId(), c]));

  before(async () => {
    redisAddr();
    nodes = await startCluster(NAMES, 'sidpin-admin');
    A = await startAdminSidpin('A', { nodes, token, store: 'redis', redisAddr: redisAddr(), prefix });
    B = await startAdminSidpin('B', { nodes, token, store: 'redis', redisAddr: redisAddr(), prefix });
    for (const [inst, sp] of [['A', A], ['B', B]]) {
      for (const kind of ['default', 'polling', 'websocket']) {
        for (let i = 0; i < PER_INSTANCE[kind]; i++) {
          const c = new FollowedClient(sp.url, { kind, label: `${inst} ${kind}#${i}`, reconnect: true });
          c.instance = inst;
          clients.push(c);
        }
      }
    }
    const tc = Date.now();
    const ok = await waitUntil(() => clients.every((c) => (c.node !== null && (c.kind !== 'default' || c.transport() === 'websocket')) ||
      c.errors.length > 0), 20000);
    const notReady = clients.filter((c) => c.node === null || c.errors.length > 0 || (c.kind === 'default' && c.transport() !== 'websocket'));
    report(`${clients.length} clients welcomed${ok ? '' : ' (not all)'} in ${Date.now() - tc} ms; per node ` +
      `${JSON.stringify(countBy(clients, (c) => c.node))}; setup ${Date.now() - t0} ms`);
    assert.deepEqual(notReady.map((c) => `${c.label}: node ${c.node} transport ${c.transport()} errors ${c.errors.join(' | ')}`), [],
      `clients not welcomed (or default clients not upgraded) within 20 s${ctx()}`);
    // The pin's transport is rewritten ("upgraded") once the client's upgrade completed, on its own round
    // trip: wait (≤ 5 s) until A lists every session with its settled transport before the tests compare.
    const ts = Date.now();
    const settled = await waitUntil(async () => {
      const { pins } = await listAllPins(A.admin, token, {}, { limit: 1000 });
      const ids = byId();
      return pins.length === TOTAL && pins.every((p) => ids.has(p.sid) && p.transport === PIN_TRANSPORT[ids.get(p.sid).kind]);
    }, 5000, 100);
    report(`pins settled${settled ? '' : ' (NOT within 5 s)'} in ${Date.now() - ts} ms`);
  });

  after(async () => {
    for (const c of [...clients, ...extra]) c.close();
    await sleep(100);
    await Promise.all([A, B].filter(Boolean).map((sp) => sp.proc.stop()));
    await Promise.all(nodes.map((n) => n.proc.stop()));
    for (const sp of [A, B]) if (sp) sp.remove();
    report(`whole file ${Date.now() - t0} ms`);
  });

  // checkPins asserts that pins are exactly the sessions of want (clients), each with its node and transport.
  function checkPins(pins, want, what) {
    const sids = pins.map((p) => p.sid);
    const dups = sids.filter((s, i) => sids.indexOf(s) !== i);
    assert.deepEqual(dups, [], `${what}: sids listed twice${ctx()}`);
    const wantIds = new Set(want.map((c) => c.engineId()));
    const extraSids = sids.filter((s) => !wantIds.has(s));
    const missing = want.filter((c) => !sids.includes(c.engineId())).map((c) => `${c.label} ${c.engineId()}`);
    const eg = (list) => `(${list.length}), e.g. ${list.slice(0, 3).join('; ')}`;
    assert.deepEqual(missing, [], `${what}: sessions not listed ${eg(missing)}${ctx()}`);
    assert.deepEqual(extraSids, [], `${what}: sids listed that are not the expected sessions ${eg(extraSids)}${ctx()}`);
    const ids = byId();
    const wrong = [];
    for (const p of pins) {
      const c = ids.get(p.sid);
      const bad = [];
      if (p.pool !== 'chat') bad.push(`pool ${p.pool}`);
      if (p.node !== c.node) bad.push(`node ${JSON.stringify(p.node)} != welcome node ${c.node}`);
      if (p.transport !== PIN_TRANSPORT[c.kind]) bad.push(`transport ${p.transport} != ${PIN_TRANSPORT[c.kind]}`);
      if (p.eio !== 4) bad.push(`eio ${p.eio}`);
      // The clients come from 127.0.1.x (e2e/lib/source-addr.js), as real clients from many addresses.
      if (!/^127\.\d+\.\d+\.\d+(:\d+)?$/.test(String(p.client_addr))) bad.push(`client_addr ${p.client_addr}`);
      const created = Date.parse(p.created);
      if (Number.isNaN(created) || created < t0 - 60000 || created > Date.now() + 60000) bad.push(`created ${p.created}`);
      if (Number.isNaN(Date.parse(p.last_seen))) bad.push(`last_seen ${p.last_seen}`);
      if (typeof p.expires_in !== 'string' || !/^\d/.test(p.expires_in)) bad.push(`expires_in ${p.expires_in}`);
      if (bad.length) wrong.push(`${c.label} ${p.sid}: ${bad.join('; ')}`);
    }
    assert.deepEqual(wrong.slice(0, 10), [], `${what}: pins with wrong fields ${eg(wrong)}${ctx()}`);
  }

  it(`list: GET /api/pins paged through its cursor lists exactly the ${TOTAL} sessions, from either instance, each with its node and transport`, async () => {
    // Each check runs on both instances; every failure is collected, then reported together.
    const failures = [];
    const check = async (what, fn) => {
      try { await fn(); } catch (err) { failures.push(`${what}: ${err.message.split('\nsidpin A output')[0]}`); }
    };
    for (const sp of [A, B]) {
      await check(`instance ${sp.name}, one page of limit 1000`, async () => {
        const one = await listAllPins(sp.admin, token, {}, { limit: 1000, maxPages: 2 });
        assert.equal(one.pages, 1, `limit 1000 over ${TOTAL} pins: pages`);
        checkPins(one.pins, clients, `instance ${sp.name}, limit 1000`);
      });
      await check(`instance ${sp.name}, pages of limit 17 through the cursor`, async () => {
        const t = Date.now();
        const r = await listAllPins(sp.admin, token, {}, { limit: 17 });
        report(`instance ${sp.name}: ${r.pins.length} pins in ${r.pages} pages of ≤ 17 in ${Date.now() - t} ms`);
        assert.ok(r.pages >= Math.ceil(TOTAL / 17), `pages ${r.pages}: the cursor paging was not used`);
        checkPins(r.pins, clients, `instance ${sp.name}, limit 17`);
      });
      await check(`instance ${sp.name}, default page`, async () => {
        const first = await api(sp.admin, 'GET', '/api/pins', token);
        assert.ok(first.pins.length <= 100, `default page: ${first.pins.length} pins`);
      });
    }
    assert.deepEqual(failures, [], `GET /api/pins${ctx()}`);
  });

  it('filters: pool, pool+node, transport, node+transport and eio list exactly the matching sessions; bad ones answer 400', async () => {
    const cases = [
      { q: { pool: 'chat' }, want: clients },
      { q: { pool: 'nosuchpool' }, want: [] },
      ...NAMES.map((n) => ({ q: { pool: 'chat', node: n }, want: clients.filter((c) => c.node === n) })),
      { q: { pool: 'chat', node: 'node9' }, want: [] },
      ...Object.entries(PIN_TRANSPORT).map(([kind, tr]) => ({ q: { transport: tr }, want: clients.filter((c) => c.kind === kind) })),
      { q: { pool: 'chat', node: 'node2', transport: 'websocket' }, want: clients.filter((c) => c.node === 'node2' && c.kind === 'websocket') },
      { q: { pool: 'chat', node: 'node3', transport: 'upgraded' }, want: clients.filter((c) => c.node === 'node3' && c.kind === 'default') },
      { q: { eio: '4' }, want: clients },
      { q: { eio: '3' }, want: [] },
    ];
    for (const sp of [A, B]) {
      for (const k of cases) {
        const r = await listAllPins(sp.admin, token, k.q, { limit: 13 });
        assert.equal(r.pins.length, k.want.length, `instance ${sp.name} ${JSON.stringify(k.q)}: pins${ctx()}`);
        checkPins(r.pins, k.want, `instance ${sp.name} ${JSON.stringify(k.q)}`);
      }
      for (const q of ['node=node1', 'transport=carrier-pigeon', 'eio=5', 'limit=-1', 'limit=x', 'cursor=not-a-cursor%00']) {
        const r = await adminRequest(sp.admin, 'GET', `/api/pins?${q}`, { token });
        assert.equal(r.status, 400, `instance ${sp.name} GET /api/pins?${q}: ${r.status} ${r.body}`);
        assert.ok(r.json && typeof r.json.error === 'string', `instance ${sp.name} GET /api/pins?${q}: error body ${r.body}`);
      }
    }
    report(`filters: ${cases.length} filter cases × 2 instances, 6 bad queries × 2 instances`);
  });

  it('one pin: GET /api/pins/{sid} on both instances; 404 for an unknown sid', async () => {
    const picks = ['A', 'B'].flatMap((inst) => ['default', 'polling', 'websocket']
      .map((kind) => clients.find((c) => c.instance === inst && c.kind === kind)));
    for (const sp of [A, B]) {
      for (const c of picks) {
        const p = await api(sp.admin, 'GET', `/api/pins/${encodeURIComponent(c.engineId())}`, token);
        assert.equal(p.sid, c.engineId());
        assert.equal(p.pool, 'chat');
        assert.equal(p.node, c.node, `instance ${sp.name}, ${c.label} (through ${c.instance}): node; the pin: ${JSON.stringify(p)}`);
        assert.equal(p.transport, PIN_TRANSPORT[c.kind], `instance ${sp.name}, ${c.label}: transport`);
        assert.equal(p.eio, 4);
      }
      for (const sid of ['AAAAAAAAAAAAAAAAAAAA', 'no-such-sid']) {
        const r = await adminRequest(sp.admin, 'GET', `/api/pins/${sid}`, { token });
        assert.equal(r.status, 404, `instance ${sp.name} GET /api/pins/${sid}: ${r.status} ${r.body}`);
      }
    }
  });

  it('metrics: /metrics with the token shows sidpin_sessions per node and sidpin_handshakes_total per instance', async () => {
    const perNode = countBy(clients, (c) => c.node);
    for (const sp of [A, B]) {
      // The per-node counts are reused for 250 ms (the store's CountsTTL): scrape (≤ 2 s) until they agree.
      const t = Date.now();
      let r;
      await waitUntil(async () => {
        r = await adminRequest(sp.admin, 'GET', '/metrics', { token });
        if (r.status !== 200) return true;
        const m = parseMetrics(r.body);
        return NAMES.every((n) => sumMetric(m, 'sidpin_sessions', { pool: 'chat', node: n }) === (perNode[n] || 0));
      }, 2000, 100);
      const waited = Date.now() - t;
      assert.equal(r.status, 200, `instance ${sp.name} /metrics: ${r.status} ${r.body.slice(0, 300)}`);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
      assert.match(r.body, /^# TYPE sidpin_sessions gauge$/m);
      assert.match(r.body, /^# TYPE sidpin_handshakes_total counter$/m);
      const m = parseMetrics(r.body);
      const sessions = Object.fromEntries(NAMES.map((n) => [n, sumMetric(m, 'sidpin_sessions', { pool: 'chat', node: n })]));
      const hs = {
        polling: sumMetric(m, 'sidpin_handshakes_total', { pool: 'chat', transport: 'polling' }),
        websocket: sumMetric(m, 'sidpin_handshakes_total', { pool: 'chat', transport: 'websocket' }),
        all: sumMetric(m, 'sidpin_handshakes_total'),
      };
      const scrapeErr = sumMetric(m, 'sidpin_scrape_pin_store_errors');
      const storeErrs = m.filter((x) => x.name === 'sidpin_pin_store_errors_total' && x.value > 0).map((x) => `${x.labels.op}=${x.value}`);
      report(`instance ${sp.name} /metrics (after ${waited} ms): sidpin_sessions ${JSON.stringify(sessions)}, sidpin_handshakes_total ${JSON.stringify(hs)}, ` +
        `sidpin_scrape_pin_store_errors ${scrapeErr}, sidpin_pin_store_errors_total ${storeErrs.join(' ') || '0'}`);
      const mctx = () => `\n/metrics sidpin_* lines:\n${r.body.split('\n').filter((l) => /^sidpin_(sessions|scrape|pin_store_errors|handshakes)/.test(l)).join('\n')}${ctx()}`;
      assert.equal(scrapeErr, 0, `instance ${sp.name}: sidpin_scrape_pin_store_errors${mctx()}`);
      for (const n of NAMES) assert.equal(sessions[n], perNode[n] || 0, `instance ${sp.name}: sidpin_sessions{node="${n}"}${mctx()}`);
      assert.equal(hs.polling, PER_INSTANCE.default + PER_INSTANCE.polling, `instance ${sp.name}: polling handshakes`);
      assert.equal(hs.websocket, PER_INSTANCE.websocket, `instance ${sp.name}: websocket handshakes`);
      assert.equal(hs.all, TOTAL / 2, `instance ${sp.name}: all handshakes`);
    }
  });

  it('auth: every route but /healthz and /readyz answers 401 without the token or with a wrong one, naming no sid and no node; nothing happens', async () => {
    const victim = clients.find((c) => c.instance === 'A' && c.kind === 'polling');
    const sid = victim.engineId();
    const routes = [
      ['GET', '/'], ['GET', '/metrics'], ['GET', '/api/nodes'], ['GET', '/api/pins'],
      ['GET', '/api/pins?pool=chat&node=node1'], ['GET', `/api/pins/${sid}`], ['DELETE', `/api/pins/${sid}`],
      ['POST', '/api/nodes/chat/node1/drain'], ['POST', '/api/nodes/chat/node2/undrain'], ['POST', '/ui/nodes/chat/node1/drain'],
      ['GET', '/?sid=' + sid], ['GET', '/no/such/route'],
    ];
    const variants = [
      ['no Authorization', {}],
      ['wrong bearer', { authorization: 'Bearer wrong-token' }],
      ['token + 1 char', { authorization: `Bearer ${token}x` }],
      ['token - 1 char', { authorization: `Bearer ${token.slice(0, -1)}` }],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['token without scheme', { authorization: token }],
      ['Basic with the token', { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` }],
      ['forged cookie', { cookie: 'sidpin_admin=00ff00ff' }],
      ['the token as cookie', { cookie: `sidpin_admin=${token}` }],
    ];
    const secrets = [...clients.map((c) => c.engineId()), ...NAMES, ...nodes.map((n) => `127.0.0.1:${n.port}`), token];
    const problems = [];
    let n = 0;
    for (const sp of [A, B]) {
      for (const [method, path] of routes) {
        for (const [vname, headers] of variants) {
          const r = await adminRequest(sp.admin, method, path, { headers });
          n += 1;
          const leaked = secrets.filter((s) => String(r.body).includes(s));
          if (r.status !== 401 || leaked.length) {
            problems.push(`${sp.name} ${method} ${path} [${vname}]: ${r.status}${leaked.length ? ` body names ${leaked.slice(0, 3).join(', ')}` : ''} ${String(r.body).slice(0, 160)}`);
          }
          if (path.startsWith('/api/') && r.status === 401 && !/^Bearer/.test(String(r.headers['www-authenticate']))) {
            problems.push(`${sp.name} ${method} ${path} [${vname}]: 401 without WWW-Authenticate: Bearer`);
          }
        }
      }
      // The sign-in form with a wrong or empty token: 401, the form again, nothing named.
      for (const body of ['token=wrong', 'token=', `token=${encodeURIComponent(token)}x`, '']) {
        const r = await adminRequest(sp.admin, 'POST', '/login', { body });
        n += 1;
        const leaked = secrets.filter((s) => String(r.body).includes(s));
        if (r.status !== 401 || leaked.length || /set-cookie/i.test(Object.keys(r.headers).join(' '))) {
          problems.push(`${sp.name} POST /login ${JSON.stringify(body)}: ${r.status} set-cookie ${r.headers['set-cookie']} leaked ${leaked.slice(0, 3)}`);
        }
      }
      for (const probe of ['/healthz', '/readyz']) { // a supervisor's and a balancer's checks: no token, nothing private
        const h = await adminRequest(sp.admin, 'GET', probe);
        assert.equal(h.status, 200, `${sp.name} ${probe} without a token: ${h.status} ${h.body}`);
        assert.ok(!secrets.some((s) => h.body.includes(s)), `${sp.name} ${probe} names a secret: ${h.body}`);
      }
    }
    report(`auth: ${n} unauthorized requests, ${problems.length} problems`);
    assert.deepEqual(problems.slice(0, 20), [], `unauthorized requests not refused with 401, or leaking (${problems.length})${ctx()}`);
    // Nothing that was asked without the token happened: the session is pinned and connected, no node drains.
    const p = await api(A.admin, 'GET', `/api/pins/${sid}`, token);
    assert.equal(p.sid, sid);
    assert.equal(victim.engineId(), sid, 'the victim of the unauthorized DELETE kept its session');
    for (const sp of [A, B]) {
      const { map } = await nodesOf(sp.admin, token);
      for (const name of NAMES) assert.equal(map[`chat/${name}`].state, 'up', `${sp.name}: ${name} after unauthorized drains`);
    }
  });

  // kickAndWait deletes the pin of c on A and waits (≤ 5 s) for c to be connected again on a new session.
  // B reads the pin first (so that B holds it, as an instance that served the session would), to check
  // afterwards that B stops showing it.
  async function kickAndWait(c) {
    const old = c.engineId();
    const welcomesBefore = c.welcomes.items.length;
    const seenByB = await adminRequest(B.admin, 'GET', `/api/pins/${encodeURIComponent(old)}`, { token });
    assert.equal(seenByB.status, 200, `B: GET /api/pins/${old} before the kick: ${seenByB.status} ${seenByB.body}`);
    kickedOn.push({ sid: old, label: c.label });
    const t = Date.now();
    const r = await adminRequest(A.admin, 'DELETE', `/api/pins/${encodeURIComponent(old)}`, { token });
    kicked.add(c);
    kickedSids.add(old);
    assert.equal(r.status, 200, `DELETE /api/pins/${old} (${c.label}) on A: ${r.status} ${r.body}${ctx()}`);
    assert.equal(r.json.kicked.sid, old);
    assert.equal(r.json.kicked.node, c.node);
    assert.equal(r.json.kicked.transport, PIN_TRANSPORT[c.kind]);
    const back = await waitUntil(() => c.engineId() && c.engineId() !== old && c.socket.connected &&
      c.welcomes.items.length > welcomesBefore, 5000);
    const ms = Date.now() - t;
    report(`kick ${c.label} (${PIN_TRANSPORT[c.kind]}): ${back ? `reconnected in ${ms} ms on ${c.node} as ${c.engineId()}` : `NOT reconnected within ${ms} ms`}; ` +
      `events ${c.events.filter((e) => e.t >= t).map((e) => `+${e.t - t}ms ${e.what}`).join(', ')}`);
    assert.ok(back, `${c.label}: not connected on a new session within 5 s of DELETE /api/pins/${old} on A ` +
      `(engine id ${c.engineId()}, connected ${c.socket.connected}, transport ${c.transport()}, welcomes ${c.welcomes.items.length}); ` +
      `events: ${c.events.map((e) => e.what).join(', ')}${ctx()}`);
    const g = await adminRequest(A.admin, 'GET', `/api/pins/${encodeURIComponent(old)}`, { token });
    assert.equal(g.status, 404, `A: GET /api/pins/${old} after the kick on A: ${g.status} ${g.body}`);
    const again = await adminRequest(A.admin, 'DELETE', `/api/pins/${encodeURIComponent(old)}`, { token });
    assert.equal(again.status, 404, `second DELETE /api/pins/${old}: ${again.status} ${again.body}`);
    const now = await api(A.admin, 'GET', `/api/pins/${encodeURIComponent(c.engineId())}`, token);
    assert.equal(now.node, c.node, `${c.label}: the new session's pin names the new welcome node`);
  }

  it('kick: DELETE /api/pins/{sid} on A of a polling-only client of A makes it reconnect within 5 s', async () => {
    await kickAndWait(clients.find((c) => c.instance === 'A' && c.kind === 'polling' && !kicked.has(c)));
  });

  it('kick: DELETE /api/pins/{sid} on A of a websocket-only client of A makes it reconnect within 5 s', async () => {
    await kickAndWait(clients.find((c) => c.instance === 'A' && c.kind === 'websocket' && !kicked.has(c)));
  });

  it('kick: DELETE /api/pins/{sid} on A of an upgraded (polling then websocket) client of A makes it reconnect within 5 s', async () => {
    await kickAndWait(clients.find((c) => c.instance === 'A' && c.kind === 'default' && !kicked.has(c)));
  });

  it('kick: after the DELETEs on A, instance B no longer shows the kicked pins (GET /api/pins/{sid} 404 within 2 s, not in its list)', async () => {
    assert.ok(kickedOn.length > 0, 'no kick happened');
    const stale = [];
    const t = Date.now();
    await waitUntil(async () => {
      stale.length = 0;
      for (const k of kickedOn) {
        const g = await adminRequest(B.admin, 'GET', `/api/pins/${encodeURIComponent(k.sid)}`, { token });
        if (g.status !== 404) stale.push(`${k.label} ${k.sid}: ${g.status} ${g.json ? `node ${g.json.node} transport ${g.json.transport}` : g.body.slice(0, 120)}`);
      }
      return stale.length === 0;
    }, 2000, 200);
    report(`B after the kicks on A: ${stale.length ? `${stale.length} kicked pin(s) still answered after ${Date.now() - t} ms` : 'every kicked pin 404'}`);
    const { pins } = await listAllPins(B.admin, token, {}, { limit: 1000, maxPages: 2 }).catch((err) => ({ pins: [], err }));
    const listed = kickedOn.filter((k) => pins.some((p) => p.sid === k.sid)).map((k) => k.label);
    assert.deepEqual(listed, [], 'kicked pins still in B\'s GET /api/pins');
    assert.deepEqual(stale, [], `B: GET /api/pins/{sid} of sessions kicked on A still answers the pin 2 s later${ctx()}`);
  });

  // openExtra opens n clients of each kind through sp and waits until they are welcomed (≤ 10 s).
  async function openExtra(sp, perKind, tag) {
    const opened = [];
    for (const kind of ['default', 'polling', 'websocket']) {
      for (let i = 0; i < perKind; i++) {
        const c = new FollowedClient(sp.url, { kind, label: `${tag} ${sp.name} ${kind}#${i}`, reconnect: false });
        c.instance = sp.name;
        opened.push(c);
        extra.push(c);
      }
    }
    const ready = (c) => c.node !== null && (c.kind !== 'default' || c.transport() === 'websocket');
    await waitUntil(() => opened.every((c) => ready(c) || c.errors.length > 0), 10000);
    const bad = opened.filter((c) => !ready(c) || c.errors.length > 0);
    assert.deepEqual(bad.map((c) => `${c.label}: node ${c.node} transport ${c.transport()} ${c.errors.join(' | ')}`), [],
      `new clients through ${sp.name} not welcomed (default ones: not upgraded) within 10 s${ctx()}`);
    return opened;
  }

  // expectNodes checks GET /api/nodes of sp: node1 in state1, the others up, sessions = live clients per node.
  async function expectNodes(sp, state1) {
    const perNode = countBy(live(), (c) => c.node);
    // Session counts are read from Redis at most every 250 ms (CountsTTL): wait (≤ 2 s) until they agree.
    let last;
    await waitUntil(async () => {
      last = await nodesOf(sp.admin, token);
      return NAMES.every((n) => last.map[`chat/${n}`] && last.map[`chat/${n}`].sessions === (perNode[n] || 0) &&
        last.map[`chat/${n}`].state === (n === 'node1' ? state1 : 'up'));
    }, 2000, 100);
    const { map, raw } = last;
    assert.equal(raw.sessions_error, undefined, `${sp.name}: sessions_error ${raw.sessions_error}`);
    assert.deepEqual(Object.keys(map).sort(), NAMES.map((n) => `chat/${n}`));
    for (const name of NAMES) {
      const v = map[`chat/${name}`];
      const want = name === 'node1' ? state1 : 'up';
      assert.equal(v.state, want, `${sp.name}: ${name} state (${JSON.stringify(v)})`);
      assert.equal(v.draining, want === 'draining', `${sp.name}: ${name} draining`);
      assert.equal(v.healthy, true, `${sp.name}: ${name} healthy`);
      assert.equal(v.sessions, perNode[name] || 0, `${sp.name}: ${name} sessions (clients per node ${JSON.stringify(perNode)})`);
      assert.equal(v.url, nodes.find((n) => n.name === name).url);
    }
    return map;
  }

  it('drain: drain node1 on A, B follows within 2.5 s, new sessions on both avoid node1, GET /api/nodes shows it draining with its sessions; undrain on B restores', async () => {
    const t = Date.now();
    const d = await api(A.admin, 'POST', '/api/nodes/chat/node1/drain', token);
    assert.equal(d.name, 'node1');
    assert.equal(d.state, 'draining', `drain answer ${JSON.stringify(d)}`);
    assert.equal(d.draining, true);
    const seen = await waitUntil(async () => (await nodesOf(B.admin, token)).map['chat/node1'].state === 'draining', 2500, 50);
    const followMs = Date.now() - t;
    report(`drain: B shows node1 draining ${seen ? `after ${followMs} ms` : `NOT within ${followMs} ms`}`);
    assert.ok(seen, `instance B did not show node1 "draining" within 2.5 s of the drain on A${ctx()}`);
    const node1Before = live().filter((c) => c.node === 'node1');
    await expectNodes(A, 'draining');
    await expectNodes(B, 'draining');

    const fresh = [...await openExtra(A, 3, 'drained'), ...await openExtra(B, 3, 'drained')];
    const dist = countBy(fresh, (c) => c.node);
    report(`drain: ${fresh.length} new sessions while node1 drains: ${JSON.stringify(dist)}`);
    assert.deepEqual(fresh.filter((c) => c.node === 'node1').map((c) => c.label), [], `new sessions on the draining node1${ctx()}`);
    // node1 keeps its sessions.
    assert.deepEqual(node1Before.filter((c) => !c.socket.connected).map((c) => c.label), [], 'node1 sessions disconnected by the drain');
    const map = await expectNodes(A, 'draining');
    assert.equal(map['chat/node1'].sessions, node1Before.length);
    await expectNodes(B, 'draining');

    const t2 = Date.now();
    const u = await api(B.admin, 'POST', '/api/nodes/chat/node1/undrain', token);
    assert.equal(u.state, 'up', `undrain answer ${JSON.stringify(u)}`);
    const back = await waitUntil(async () => (await nodesOf(A.admin, token)).map['chat/node1'].state === 'up', 2500, 50);
    report(`undrain on B: A shows node1 up ${back ? `after ${Date.now() - t2} ms` : 'NOT within 2.5 s'}`);
    assert.ok(back, `instance A did not show node1 "up" within 2.5 s of the undrain on B${ctx()}`);
    await expectNodes(A, 'up');
    await expectNodes(B, 'up');
    const after = [...await openExtra(A, 1, 'undrained'), ...await openExtra(B, 1, 'undrained')];
    const dist2 = countBy(after, (c) => c.node);
    report(`undrain: ${after.length} new sessions: ${JSON.stringify(dist2)} (node1 had the fewest sessions)`);
    assert.ok((dist2.node1 || 0) >= 1, `no new session reached node1 after the undrain: ${JSON.stringify(dist2)}${ctx()}`);
    await expectNodes(A, 'up');
  });

  it('end: only the kicked clients saw errors, and both instances list exactly the live sessions', async () => {
    const z = zombies();
    if (z.length) report(`end: ${z.length} kicked client(s) still on their deleted session (left out here): ${z.map((c) => c.label).join(', ')}`);
    const errs = [...clients, ...extra].filter((c) => !kicked.has(c) && c.errors.length > 0)
      .map((c) => `${c.label}: ${c.errors.join(' | ')}`);
    assert.deepEqual(errs.slice(0, 10), [], `error events of clients that were not kicked (${errs.length})${ctx()}`);
    for (const sp of [A, B]) {
      const r = await listAllPins(sp.admin, token, {}, { limit: 50 });
      checkPins(r.pins, live(), `instance ${sp.name} at the end`);
    }
    report(`end: ${live().length} live sessions listed by both instances`);
  });
});
