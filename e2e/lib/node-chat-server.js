'use strict';
// The reference Node chat node: the OFFICIAL socket.io@4 Server with @socket.io/redis-adapter, running the
// same chat as the Go chatnode (welcome / sendMessage incl. {room, msg} / join / leave / echo, same payload
// shapes). Run as a child process:
//
//   node e2e/lib/node-chat-server.js --port P --name N --redis host:port --channel-prefix X
//        [--eio3] [--compress-threshold N] [--path /socket.io/]
//
// Prints one line "ready port=P name=N" on stdout once it listens; GET /healthz answers 200 "ok N sessions=K";
// SIGTERM (or SIGINT) closes Socket.IO and the Redis clients and exits 0.
const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

function parseArgs(argv) {
  const out = { port: 0, name: '', redis: '', channelPrefix: 'socket.io', eio3: false, compressThreshold: null, path: '/socket.io/' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    switch (a) {
      case '--port': out.port = Number(val()); break;
      case '--name': out.name = val(); break;
      case '--redis': out.redis = val(); break;
      case '--channel-prefix': out.channelPrefix = val(); break;
      case '--eio3': out.eio3 = true; break;
      case '--compress-threshold': out.compressThreshold = Number(val()); break;
      case '--path': out.path = val(); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!Number.isInteger(out.port) || out.port <= 0) throw new Error('--port P is required');
  if (!out.name) out.name = `127.0.0.1:${out.port}`;
  if (!out.redis) throw new Error('--redis host:port is required');
  if (out.compressThreshold !== null && !(out.compressThreshold >= 0)) throw new Error('--compress-threshold must be >= 0');
  return out;
}

// roomOf recognises {room: "non-empty string", msg}, as the Go chatnode's splitRoom does.
function roomOf(msg) {
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || Buffer.isBuffer(msg) || ArrayBuffer.isView(msg)) return null;
  if (typeof msg.room !== 'string' || msg.room === '') return null;
  return { room: msg.room, msg: msg.msg === undefined ? null : msg.msg };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (...a) => process.stderr.write(`[node-chat-server ${opts.name}] ${a.join(' ')}\n`);

  const pub = createClient({ url: `redis://${opts.redis}`, socket: { connectTimeout: 5000, reconnectStrategy: (n) => Math.min(n * 100, 1000) } });
  const sub = pub.duplicate();
  pub.on('error', (e) => log('redis pub error:', e.message));
  sub.on('error', (e) => log('redis sub error:', e.message));
  // Fail fast (exit 1 with a message) when the Redis cannot be reached, instead of retrying forever.
  let connectTimer;
  await Promise.race([
    Promise.all([pub.connect(), sub.connect()]),
    new Promise((_, reject) => {
      connectTimer = setTimeout(() => reject(new Error(`cannot connect to redis ${opts.redis} within 5 s`)), 5000);
    }),
  ]);
  clearTimeout(connectTimer);

  let stopping = false;
  const httpServer = http.createServer((req, res) => {
    // Socket.IO takes the requests of its path; everything else lands here.
    const path = (req.url || '').split('?')[0];
    if (path === '/healthz') {
      if (stopping) {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('shutting down\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`ok ${opts.name} sessions=${io.engine ? io.engine.clientsCount : 0}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  });

  const serverOpts = { path: opts.path, allowEIO3: opts.eio3, serveClient: false };
  if (opts.compressThreshold !== null) serverOpts.httpCompression = { threshold: opts.compressThreshold };
  const io = new Server(httpServer, serverOpts);
  io.adapter(createAdapter(pub, sub, { key: opts.channelPrefix }));

  io.on('connection', (socket) => {
    socket.emit('welcome', { node: opts.name });

    socket.on('sendMessage', (...args) => {
      const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      let msg = args.length > 0 && args[0] !== undefined ? args[0] : null;
      const r = roomOf(msg);
      if (r) msg = r.msg;
      const payload = { node: opts.name, from: socket.id, msg, ts: Date.now() };
      if (r) io.to(r.room).emit('message', payload);
      else io.emit('message', payload);
      if (cb) cb({ node: opts.name });
    });

    for (const ev of ['join', 'leave']) {
      socket.on(ev, (...args) => {
        const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        const room = args[0];
        if (typeof room !== 'string' || room === '') {
          if (cb) cb({ error: 'room must be a non-empty string' });
          return;
        }
        if (ev === 'join') socket.join(room);
        else socket.leave(room);
        if (cb) cb({ node: opts.name, room });
      });
    }

    socket.on('echo', (...args) => {
      const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      if (cb) cb(...args);
    });
  });

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, '127.0.0.1', resolve);
  });
  process.stdout.write(`ready port=${opts.port} name=${opts.name}\n`);

  let closing = null;
  const shutdown = (sig) => {
    if (closing) return;
    stopping = true;
    log(`${sig}: shutting down`);
    const hard = setTimeout(() => process.exit(1), 4000);
    hard.unref();
    closing = (async () => {
      try {
        await new Promise((resolve) => io.close(() => resolve()));
      } catch { /* already closed */ }
      await Promise.allSettled([pub.quit(), sub.quit()]);
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`node-chat-server: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
