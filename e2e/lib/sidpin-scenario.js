'use strict';
// The chat scenario of the sidpin tests, run the same way through sidpin (must pass) and through the
// round-robin control rr-front (must fail): many socket.io-client v4 clients on default transports
// (polling, then the upgrade to websocket), polling only and websocket only connect to one front URL;
// every connected client sends one message; every client must receive every message exactly once, with
// no connect_error / disconnect / engine error / upgradeError at all, and every default-transport client
// must end on websocket. Every wait is bounded; nothing here asserts: the report says what happened.
const { trackedV4 } = require('./sidpin-helpers');
const { sleep } = require('./chat-cluster');

const TICK_MS = 25;

// waitUntil polls cond() every TICK_MS until it is true or ms have passed; resolves with cond().
async function waitUntil(cond, ms) {
  const deadline = Date.now() + ms;
  for (let i = 0; i < Math.ceil(ms / TICK_MS) + 1; i++) {
    if (cond()) return true;
    if (Date.now() >= deadline) break;
    await sleep(TICK_MS);
  }
  return cond();
}

// runChatScenario connects defaults + pollingOnly + wsOnly clients to frontUrl and runs the broadcast.
// Returns a report; report.closeAll() closes every client (the tests also do it in `after`).
async function runChatScenario(frontUrl, {
  defaults, pollingOnly, wsOnly, tag, connectMs = 20000, messageMs = 30000, upgradeMs = 10000, settleMs = 300, registry,
}) {
  const specs = [
    ...Array.from({ length: defaults }, (_, i) => ({ kind: 'default', label: `d#${i} (default transports)`, opts: {} })),
    ...Array.from({ length: pollingOnly }, (_, i) => ({ kind: 'polling', label: `p#${i} (polling only)`, opts: { transports: ['polling'] } })),
    ...Array.from({ length: wsOnly }, (_, i) => ({ kind: 'websocket', label: `w#${i} (websocket only)`, opts: { transports: ['websocket'] } })),
  ];
  const t0 = Date.now();
  const meta = new Map(); // message index -> a few {node, from, ts, keys} as received
  const clients = specs.map((s) => {
    const c = trackedV4(frontUrl, s.opts, `${tag} ${s.label}`);
    c.kind = s.kind;
    c.got = new Map(); // message index -> times received
    c.socket.on('message', (m) => {
      if (m && m.msg && m.msg.tag === tag && Number.isInteger(m.msg.i)) {
        c.got.set(m.msg.i, (c.got.get(m.msg.i) || 0) + 1);
        if (!meta.has(m.msg.i)) meta.set(m.msg.i, []);
        const seen = meta.get(m.msg.i);
        if (seen.length < 3) seen.push({ node: m.node, from: m.from, ts: m.ts, keys: Object.keys(m).sort().join(',') });
      }
    });
    if (registry) registry.add(() => c.close());
    return c;
  });
  const closeAll = () => { for (const c of clients) c.close(); };

  // 1. Connect: every client either gets "welcome" or records an error (reconnection is off, so an
  // error is final).
  await waitUntil(() => clients.every((c) => c.welcomeNode !== null || c.errors.length > 0), connectMs);
  const connectDuration = Date.now() - t0;
  const connected = clients.filter((c) => c.welcomeNode !== null && c.errors.length === 0);
  const distribution = {};
  for (const c of clients) if (c.welcomeNode !== null) distribution[c.welcomeNode] = (distribution[c.welcomeNode] || 0) + 1;

  // 2. Every connected client sends one message {tag, i} (with an ack), right away: the default-transport
  // clients are typically in the middle of their upgrade.
  const t1 = Date.now();
  const senders = connected.map((c) => clients.indexOf(c));
  let acks = 0;
  const ackNodes = {};
  for (const i of senders) {
    clients[i].socket.emit('sendMessage', { tag, i }, (a) => {
      acks += 1;
      ackNodes[i] = a && a.node;
    });
  }
  const want = senders.length;
  const done = (c) => c.got.size >= want || c.errors.length > 0;
  await waitUntil(() => acks >= want && connected.every(done), messageMs);
  await sleep(settleMs); // duplicates would show up now
  const messageDuration = Date.now() - t1;

  // 3. Default-transport clients end on websocket.
  const t2 = Date.now();
  const defaultsConnected = connected.filter((c) => c.kind === 'default');
  await waitUntil(() => defaultsConnected.every((c) => c.socket.io.engine.transport.name === 'websocket' || c.errors.length > 0), upgradeMs);
  const upgradeDuration = Date.now() - t2;

  const wantSet = new Set(senders);
  const missing = [];
  const duplicates = [];
  const strays = [];
  for (const c of clients) {
    if (c.welcomeNode === null) continue;
    const absent = senders.filter((i) => !c.got.has(i));
    if (absent.length) missing.push(`${c.label}: ${c.got.size}/${want} (missing e.g. ${absent.slice(0, 5).join(',')})`);
    const dup = [...c.got.entries()].filter(([, n]) => n > 1);
    if (dup.length) duplicates.push(`${c.label}: ${dup.length} messages more than once (e.g. #${dup[0][0]} × ${dup[0][1]})`);
    const stray = [...c.got.keys()].filter((i) => !wantSet.has(i));
    if (stray.length) strays.push(`${c.label}: ${stray.length} messages from clients that did not send`);
  }
  // The payload of each message: node = the sender's node (its welcome), from = the sender's socket.id.
  const wrongMeta = [];
  for (const i of senders) {
    const s = clients[i];
    for (const m of meta.get(i) || []) {
      const bad = [];
      if (m.node !== s.welcomeNode) bad.push(`node ${m.node} != sender's welcome node ${s.welcomeNode}`);
      if (m.from !== s.socket.id) bad.push(`from ${m.from} != sender's socket.id ${s.socket.id}`);
      if (typeof m.ts !== 'number' || Math.abs(Date.now() - m.ts) > 120000) bad.push(`ts ${m.ts}`);
      if (m.keys !== 'from,msg,node,ts') bad.push(`keys ${m.keys}`);
      if (bad.length) { wrongMeta.push(`message #${i} of ${s.label}: ${bad.join('; ')}`); break; }
    }
    if (ackNodes[i] !== undefined && ackNodes[i] !== s.welcomeNode) {
      wrongMeta.push(`ack of ${s.label}: node ${ackNodes[i]} != its welcome node ${s.welcomeNode}`);
    }
  }
  const report = {
    tag,
    total: clients.length,
    clients,
    connected: connected.length,
    notConnected: clients.filter((c) => c.welcomeNode === null).map((c) => `${c.label}: ${c.errors.join(' | ') || 'no welcome, no error'}`),
    distribution,
    senders: want,
    acks,
    ackNodes,
    missing,
    duplicates,
    strays,
    wrongMeta,
    errors: clients.filter((c) => c.errors.length > 0).map((c) => `${c.label}: ${c.errors.join(' | ')}`),
    errorEvents: clients.reduce((n, c) => n + c.errors.length, 0),
    sessionUnknownErrors: clients.reduce((n, c) => n + c.errors.filter((e) => /Session ID unknown|status=400|\b400\b/.test(e)).length, 0),
    notUpgraded: defaultsConnected.filter((c) => c.socket.io.engine.transport.name !== 'websocket')
      .map((c) => `${c.label}: transport ${c.socket.io.engine.transport.name}`),
    upgradeEvents: defaultsConnected.filter((c) => c.upgradedTo === 'websocket').length,
    durations: { connect: connectDuration, messages: messageDuration, upgrade: upgradeDuration, total: Date.now() - t0 },
    closeAll,
  };
  report.summary = summarize(report);
  return report;
}

function list(items, n = 6) {
  if (!items.length) return '0';
  const cut = (s) => (s.length > 400 ? `${s.slice(0, 400)}…` : s);
  return `${items.length}: ${items.slice(0, n).map(cut).join('\n    ')}${items.length > n ? `\n    … ${items.length - n} more` : ''}`;
}

function summarize(r) {
  return [
    `scenario ${r.tag}: ${r.total} clients, ${r.connected} connected in ${r.durations.connect} ms, distribution ${JSON.stringify(r.distribution)}`,
    `  ${r.senders} senders, ${r.acks} acks, broadcast phase ${r.durations.messages} ms, upgrade wait ${r.durations.upgrade} ms`,
    `  not connected ${list(r.notConnected)}`,
    `  clients with error events (${r.errorEvents} events) ${list(r.errors)}`,
    `  clients missing messages ${list(r.missing)}`,
    `  clients with duplicates ${list(r.duplicates)}`,
    `  messages/acks with a wrong node/from/ts ${list(r.wrongMeta)}`,
    `  default-transport clients not on websocket ${list(r.notUpgraded)}`,
  ].join('\n');
}

module.exports = { runChatScenario, waitUntil };
