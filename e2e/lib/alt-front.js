'use strict';
// alt-front: an ALTERNATING front for several sidpin instances (node `http` and `net` only), used by the
// tests of the shared Redis pin table. Every HTTP request and every WebSocket upgrade goes to the next
// instance in turn (A, B, A, B…), and the turn is kept PER SESSION: a request that carries a sid goes to
// the instance after the one that served the previous request of that session, so consecutive requests
// of one session always change instance — the first poll after the handshake included (the front reads
// the sid from the handshake answer before passing it on). Requests without a sid (handshakes,
// WebSocket-first upgrades, plain requests) and sids the front never saw take the global turn.
//
// Nothing is ever retried or rewritten: method, path, headers and body are forwarded, the answer is
// passed back. The front counts what came back (statuses per instance, "Session ID unknown" 400 bodies
// and refused upgrades with that text, proxy errors) and keeps a bounded log of every failed request.
//
//   const front = await startAltFront({ backends: [sidpinA.url, sidpinB.url] }); … front.stats … await front.stop();
const http = require('node:http');
const { trackSockets, tunnelUpgrade, listen } = require('./front-base');
const zlib = require('node:zlib');

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const FAILURE_LOG_MAX = 2000;

function parseBackend(u) {
  const url = new URL(u);
  if (url.protocol !== 'http:') throw new Error(`alt-front: only http:// backends, got ${u}`);
  return { host: url.hostname, port: Number(url.port || 80), url: u.replace(/\/$/, '') };
}

function queryOf(rawUrl) {
  const q = rawUrl.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
}

// decodeBody undoes a gzip / deflate / br content-encoding (for reading the sid only).
function decodeBody(buf, encoding) {
  try {
    switch ((encoding || '').toLowerCase()) {
      case 'gzip': return zlib.gunzipSync(buf);
      case 'deflate': return zlib.inflateSync(buf);
      case 'br': return zlib.brotliDecompressSync(buf);
      default: return buf;
    }
  } catch {
    return buf;
  }
}

// startAltFront listens on host:port (0 = any free port) and resolves with {port, url, stats, failures,
// snapshot(), sessionsOnAll(), stop()}. engineioPath is where handshakes are recognised.
async function startAltFront({ backends, host = '127.0.0.1', port = 0, engineioPath = '/socket.io/' }) {
  if (!Array.isArray(backends) || backends.length < 2) throw new Error('alt-front: give at least two backends');
  const targets = backends.map(parseBackend);
  const n = targets.length;
  let next = 0;
  // sid -> {last: index of the instance that served its previous request, seen: Set of indexes}
  const sessions = new Map();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });
  const stats = {
    requests: 0,
    upgrades: 0,
    perInstance: targets.map((t) => ({ url: t.url, requests: 0, upgrades: 0, statuses: {} })),
    statuses: {},
    sessionUnknown: 0, // 400 answers whose body says "Session ID unknown", refused upgrades included
    upgradeRefused: 0,
    proxyErrors: 0,
    handshakesSeen: 0, // sid-less Engine.IO polling requests whose answer carried a sid
    sidRequests: 0, // requests and upgrades carrying a sid the front knew
    sidRequestsSwitched: 0, // … of which went to another instance than the session's previous request
    sidRequestsUnknownToFront: 0,
    failuresTotal: 0, // every failure, also those past the log's bound
  };
  const failures = []; // {t, instance, sid, method, path, status, body} of answers that are not 2xx / 101 (bounded)
  const tracker = trackSockets();

  const recordFailure = (f) => {
    stats.failuresTotal += 1;
    if (failures.length < FAILURE_LOG_MAX) failures.push({ t: Date.now(), sid: queryOf(f.path).get('sid'), ...f });
  };

  // route picks the instance of a request: the session's turn when it carries a known sid, else the
  // global turn. Returns {index, sid}.
  const route = (rawUrl) => {
    const sid = queryOf(rawUrl).get('sid');
    if (sid && sessions.has(sid)) {
      const s = sessions.get(sid);
      const index = (s.last + 1) % n;
      stats.sidRequests += 1;
      if (index !== s.last) stats.sidRequestsSwitched += 1;
      s.last = index;
      s.seen.add(index);
      return { index, sid };
    }
    const index = next % n;
    next += 1;
    if (sid) {
      stats.sidRequestsUnknownToFront += 1;
      sessions.set(sid, { last: index, seen: new Set([index]) });
    }
    return { index, sid };
  };

  const isHandshake = (req) => {
    const path = req.url.split('?')[0];
    const q = queryOf(req.url);
    return path.startsWith(engineioPath) && q.has('EIO') && !q.get('sid') && q.get('transport') === 'polling';
  };

  const server = http.createServer((req, res) => {
    const { index } = route(req.url);
    const t = targets[index];
    const inst = stats.perInstance[index];
    stats.requests += 1;
    inst.requests += 1;
    const handshake = isHandshake(req);
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    let clientGone = false;
    const preq = http.request({ host: t.host, port: t.port, method: req.method, path: req.url, headers, agent }, (pres) => {
      const status = pres.statusCode;
      stats.statuses[status] = (stats.statuses[status] || 0) + 1;
      inst.statuses[status] = (inst.statuses[status] || 0) + 1;
      const out = {};
      for (const [k, v] of Object.entries(pres.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      const failed = status < 200 || status >= 300;
      if (handshake || failed) {
        // Small answers: read them whole, learn the sid of a handshake (before the client can send its
        // next request) or keep the error body, then pass them on unchanged.
        const chunks = [];
        pres.on('data', (d) => chunks.push(d));
        pres.on('end', () => {
          const body = Buffer.concat(chunks);
          if (handshake && status === 200) {
            const text = decodeBody(body, pres.headers['content-encoding']).toString('latin1');
            const m = /"sid":"([^"]+)"/.exec(text);
            if (m) {
              stats.handshakesSeen += 1;
              sessions.set(m[1], { last: index, seen: new Set([index]) });
            }
          }
          if (failed) {
            const text = body.toString('latin1', 0, Math.min(body.length, 512));
            if (status === 400 && text.includes('Session ID unknown')) stats.sessionUnknown += 1;
            recordFailure({ instance: index, method: req.method, path: req.url, status, body: text.slice(0, 200) });
          }
          res.writeHead(status, out);
          res.end(body);
        });
        pres.on('error', () => res.destroy());
        return;
      }
      res.writeHead(status, out);
      pres.pipe(res);
    });
    preq.on('error', (err) => {
      if (clientGone) return; // the client went away first: not a failure of the instance
      stats.proxyErrors += 1;
      recordFailure({ instance: index, method: req.method, path: req.url, status: 'proxy-error', body: err.message });
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`alt-front: ${err.message}\n`);
      } else {
        res.destroy();
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        clientGone = true;
        preq.destroy();
      }
    });
    req.pipe(preq);
  });

  server.on('upgrade', (req, client, head) => {
    const { index } = route(req.url);
    stats.upgrades += 1;
    stats.perInstance[index].upgrades += 1;
    tunnelUpgrade({
      req, client, head, target: targets[index], tracker,
      onAnswer: (first) => {
        const text = first.toString('latin1', 0, Math.min(first.length, 1024));
        const status = (/^HTTP\/1\.[01] (\d{3})/.exec(text) || [])[1] || '???';
        const inst = stats.perInstance[index];
        inst.statuses[`upgrade-${status}`] = (inst.statuses[`upgrade-${status}`] || 0) + 1;
        stats.statuses[`upgrade-${status}`] = (stats.statuses[`upgrade-${status}`] || 0) + 1;
        if (status !== '101') {
          stats.upgradeRefused += 1;
          if (text.includes('Session ID unknown')) stats.sessionUnknown += 1;
          recordFailure({ instance: index, method: 'UPGRADE', path: req.url, status: Number(status) || status, body: text.slice(0, 300) });
        }
      },
      onError: (connected, err) => {
        if (!connected) {
          stats.proxyErrors += 1;
          recordFailure({ instance: index, method: 'UPGRADE', path: req.url, status: 'proxy-error', body: err.message });
        }
      },
    });
  });

  const { port: actual, stop } = await listen(server, host, port, tracker, () => agent.destroy());
  return {
    port: actual,
    url: `http://${host}:${actual}`,
    stats,
    failures,
    // snapshot is a deep copy of the counters, to diff two moments.
    snapshot: () => JSON.parse(JSON.stringify(stats)),
    // sessionsOnAll: how many sessions the front saw, and how many of them reached every instance.
    sessionsOnAll: () => {
      let all = 0;
      for (const s of sessions.values()) if (s.seen.size === n) all += 1;
      return { sessions: sessions.size, onAllInstances: all };
    },
    // sessionInstances: the instances (indexes) that served requests of sid.
    sessionInstances: (sid) => (sessions.has(sid) ? [...sessions.get(sid).seen].sort() : []),
    stop,
  };
}

module.exports = { startAltFront };
