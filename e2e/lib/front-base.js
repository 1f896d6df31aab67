'use strict';
// What the test fronts (rr-front, alt-front) share: tracking their sockets so stop() ends everything,
// tunnelling a WebSocket upgrade as raw bytes to a chosen backend, and listening.
const net = require('node:net');

// trackSockets returns a set-like tracker whose destroyAll ends every socket still open.
function trackSockets() {
  const sockets = new Set();
  return {
    add(s) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    },
    destroyAll() {
      for (const s of sockets) s.destroy();
    },
  };
}

// tunnelUpgrade replays the client's upgrade request to target ({host, port}) and pipes both ways.
// onAnswer(firstBytes) sees the start of the backend's answer (to count refusals); onError(connected, err)
// sees a failure of the backend connection.
function tunnelUpgrade({ req, client, head, target, tracker, onAnswer, onError }) {
  tracker.add(client);
  const upstream = net.connect({ host: target.host, port: target.port });
  tracker.add(upstream);
  let connected = false;
  const kill = () => { client.destroy(); upstream.destroy(); };
  client.on('error', kill);
  upstream.on('error', (err) => {
    if (onError) onError(connected, err);
    kill();
  });
  upstream.on('connect', () => {
    connected = true;
    let raw = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    upstream.write(`${raw}\r\n`);
    if (head && head.length) upstream.write(head);
    upstream.once('data', (first) => {
      if (onAnswer) onAnswer(first);
      client.write(first);
      upstream.pipe(client);
      client.pipe(upstream);
    });
  });
}

// listen starts server on host:port (0 = any free port) with its connections tracked; it resolves with
// the port and a stop() that closes the server and every socket (extra() runs first, e.g. agent.destroy).
async function listen(server, host, port, tracker, extra = () => {}) {
  server.on('connection', (s) => tracker.add(s));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    port: server.address().port,
    stop: () => new Promise((resolve) => {
      server.close(() => resolve());
      tracker.destroyAll();
      extra();
      setTimeout(resolve, 2000).unref();
    }),
  };
}

module.exports = { trackSockets, tunnelUpgrade, listen };
