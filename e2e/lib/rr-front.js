'use strict';
// rr-front: the CONTROL of the sidpin tests. A plain round-robin reverse proxy with NO stickiness, on the
// node `http` module only: every HTTP request goes to the next backend in turn (method, path, headers and
// body forwarded, the answer piped back), and every WebSocket upgrade is piped, as raw bytes, to the next
// backend too. In front of a Socket.IO cluster it must break sessions ("Session ID unknown"), which proves
// that the sidpin tests can fail.
//
// In-process:  const front = await startRRFront({ backends: ['http://127.0.0.1:P1', ...] }); … await front.stop();
// As a child:  node e2e/lib/rr-front.js --listen 127.0.0.1:PORT --to http://127.0.0.1:P1,http://127.0.0.1:P2
//              (prints "ready port=PORT" on stdout, SIGTERM stops it)
const http = require('node:http');
const { trackSockets, tunnelUpgrade, listen } = require('./front-base');

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function parseBackend(u) {
  const url = new URL(u);
  if (url.protocol !== 'http:') throw new Error(`rr-front: only http:// backends, got ${u}`);
  return { host: url.hostname, port: Number(url.port || 80), url: u.replace(/\/$/, '') };
}

// startRRFront listens on host:port (port 0 = any free port) and resolves with
// {port, url, stats, stop()}. stats counts requests and upgrades per backend, answers per status, and the
// "Session ID unknown" answers seen (HTTP 400 bodies and refused upgrades).
async function startRRFront({ backends, host = '127.0.0.1', port = 0 }) {
  if (!Array.isArray(backends) || backends.length === 0) throw new Error('rr-front: no backends');
  const targets = backends.map(parseBackend);
  let next = 0;
  const pick = () => {
    const t = targets[next % targets.length];
    next += 1;
    return t;
  };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const stats = {
    requests: 0, upgrades: 0, perBackend: targets.map(() => 0), statuses: {}, sessionUnknown: 0,
    upgradeRefused: 0, proxyErrors: 0,
  };
  const tracker = trackSockets();

  const server = http.createServer((req, res) => {
    const t = pick();
    stats.requests += 1;
    stats.perBackend[targets.indexOf(t)] += 1;
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    const preq = http.request({ host: t.host, port: t.port, method: req.method, path: req.url, headers, agent }, (pres) => {
      stats.statuses[pres.statusCode] = (stats.statuses[pres.statusCode] || 0) + 1;
      const out = {};
      for (const [k, v] of Object.entries(pres.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(pres.statusCode, out);
      if (pres.statusCode === 400) {
        // Look at the error body on its way through (it is tiny) to count "Session ID unknown".
        let seen = '';
        pres.on('data', (d) => { if (seen.length < 512) seen += d.toString('latin1'); });
        pres.on('end', () => { if (seen.includes('Session ID unknown')) stats.sessionUnknown += 1; });
      }
      pres.pipe(res);
    });
    preq.on('error', (err) => {
      stats.proxyErrors += 1;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`rr-front: ${err.message}\n`);
      } else {
        res.destroy();
      }
    });
    req.on('aborted', () => preq.destroy());
    req.pipe(preq);
  });

  server.on('upgrade', (req, client, head) => {
    const t = pick();
    stats.upgrades += 1;
    stats.perBackend[targets.indexOf(t)] += 1;
    tunnelUpgrade({
      req, client, head, target: t, tracker,
      // A refused upgrade is counted, then everything is piped.
      onAnswer: (first) => {
        if (!/^HTTP\/1\.1 101/.test(first.toString('latin1', 0, Math.min(first.length, 64)))) {
          stats.upgradeRefused += 1;
          if (first.toString('latin1').includes('Session ID unknown')) stats.sessionUnknown += 1;
        }
      },
      onError: () => { stats.proxyErrors += 1; },
    });
  });

  const { port: actual, stop } = await listen(server, host, port, tracker, () => agent.destroy());
  return { port: actual, url: `http://${host}:${actual}`, stats, stop };
}

module.exports = { startRRFront };

if (require.main === module) {
  const argv = process.argv.slice(2);
  let listen = '127.0.0.1:0';
  let to = '';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--listen') listen = argv[++i];
    else if (argv[i] === '--to') to = argv[++i];
    else { process.stderr.write(`rr-front: unknown argument ${argv[i]}\n`); process.exit(2); }
  }
  const idx = listen.lastIndexOf(':');
  startRRFront({ backends: to.split(',').filter(Boolean), host: listen.slice(0, idx), port: Number(listen.slice(idx + 1)) })
    .then((front) => {
      process.stdout.write(`ready port=${front.port}\n`);
      const bye = () => front.stop().then(() => process.exit(0));
      process.on('SIGTERM', bye);
      process.on('SIGINT', bye);
    })
    .catch((err) => { process.stderr.write(`rr-front: ${err.message}\n`); process.exit(1); });
}
