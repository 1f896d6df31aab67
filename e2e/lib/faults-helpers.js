'use strict';
// Helpers of e2e/tests/sidpin-faults.test.js (issue 11, faults as tests with figures): real processes
// only — Debian's HAProxy (mode tcp, health checks) in front of two sidpin instances that share their pin
// table in Redis, three Go chatnodes, a throwaway redis-server (or a Sentinel set: master, replica, three
// sentinels), and many socket.io-client v4 clients whose whole life is recorded.
//
//   requireHaproxy()        fails with a clear message when /usr/sbin/haproxy is absent
//   LineProc                a child process whose output lines are kept with their arrival time
//   startHaproxy()          haproxy -f CONFIG -db on a free loopback port; stats socket; per-connection
//                           log (server, timers, termination state, retries) parsed as it comes
//   Instance                one sidpin instance on a fixed port and config: start, SIGTERM, SIGKILL, restart
//   startRedisPlain()       a redis-server of this file's own (free port, no persistence)
//   startSentinelSet()      master + replica (--replicaof) + three sentinels (own sentinel.conf each)
//   redisCommand()          one RESP command on a fresh connection (no npm client: sentinels included)
//   HttpObserver            every HTTP request this process makes to one port (diagnostics_channel): method,
//                           sid, local port, times, status or error, body of non-200 answers
//   FaultClient             socket.io-client v4 (reconnection on) recording connects (sid, transport),
//                           disconnects, connect_errors, upgrades (with the WebSocket's local port), and
//                           every chat message received
//   ChatLoad                every connected client sends a message with an ack every 200-500 ms
//   deliveryReport()        every acked message vs every other client connected over its window
//   table()                 prints figures as a short table
// Every wait and loop is bounded in count and time; every process is stopped by its own handle (PID).
const { spawn } = require('node:child_process');
const dc = require('node:diagnostics_channel');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { bin, freePort, REPO } = require('./procs');
const { sleep, httpGet } = require('./chat-cluster');
const { errText } = require('./sidpin-helpers');
const { summaryOf } = require('./sidpin-redis-helpers');
const { waitUntil } = require('./sidpin-scenario');

const HAPROXY = '/usr/sbin/haproxy';
const EIO_PATH = '/socket.io/';

// requireHaproxy throws unless Debian's haproxy binary is installed.
function requireHaproxy() {
  if (!fs.existsSync(HAPROXY)) {
    throw new Error(`${HAPROXY} is missing: the fault tests run Debian's HAProxy as the L4 balancer in front of two sidpin ` +
      'instances (apt-get install -y haproxy; `make test` installs it when run as root). The system haproxy service is never used.');
  }
}

function tmpDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sidpin-faults-${tag}-`));
}

function unique(tag) {
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

// ------------------------------------------------------------------------------------------- processes

// LineProc runs a command; every output line is kept (the last `keep` of them) with its arrival time
// and passed to the onLine hooks. stop() sends SIGTERM, then SIGKILL after ms; kill(sig) sends one signal.
class LineProc {
  constructor(name, command, args, { keep = 3000, cwd = REPO, stdoutFile = null } = {}) {
    this.name = name;
    this.command = command;
    this.args = args;
    this.keep = keep;
    this.lines = []; // {at, text, stream}
    this.hooks = [];
    this.startedAt = Date.now();
    this.exited = null; // {code, signal, at}
    this.spawnError = null;
    // stdoutFile: the child writes its stdout straight into that file (never blocked, nothing dropped
    // however busy this process is); read it with fs.
    const outFd = stdoutFile ? fs.openSync(stdoutFile, 'a') : null;
    this.child = spawn(command, args, { cwd, stdio: ['ignore', outFd === null ? 'pipe' : outFd, 'pipe'] });
    if (outFd !== null) fs.closeSync(outFd);
    this.pid = this.child.pid;
    this.exit = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => { this.exited = { code, signal, at: Date.now() }; resolve(this.exited); });
    });
    this.child.once('error', (e) => { this.spawnError = e; });
    for (const stream of ['stdout', 'stderr']) {
      if (!this.child[stream]) continue;
      let rest = '';
      this.child[stream].on('data', (d) => {
        const at = Date.now();
        const parts = (rest + d).split('\n');
        rest = parts.pop();
        for (const text of parts) this.line({ at, text, stream });
      });
      this.child[stream].on('end', () => { if (rest) this.line({ at: Date.now(), text: rest, stream }); rest = ''; });
    }
  }

  line(l) {
    this.lines.push(l);
    if (this.lines.length > this.keep * 1.5) this.lines.splice(0, this.lines.length - this.keep);
    for (const h of this.hooks) h(l);
  }

  onLine(fn) { this.hooks.push(fn); }

  alive() { return this.child.exitCode === null && this.child.signalCode === null && !this.spawnError; }

  kill(signal) { if (this.alive()) this.child.kill(signal); }

  async stop(ms = 5000) {
    if (!this.alive()) return this.exited;
    const timer = setTimeout(() => this.kill('SIGKILL'), ms);
    this.kill('SIGTERM');
    const r = await this.exit;
    clearTimeout(timer);
    return r;
  }

  // waitExit waits (≤ ms) for the exit; null if it is still running.
  async waitExit(ms) {
    let timer;
    const r = await Promise.race([this.exit, new Promise((resolve) => { timer = setTimeout(() => resolve(null), ms); })]);
    clearTimeout(timer);
    return r;
  }

  grep(re, since = 0) {
    return this.lines.filter((l) => l.at >= since && re.test(l.text));
  }

  tail(n = 40, since = 0) {
    return this.lines.filter((l) => l.at >= since).slice(-n).map((l) => l.text).join('\n');
  }
}

// tcpAccepts resolves true when a TCP connection to 127.0.0.1:port opens within ms.
function tcpAccepts(port, ms = 300) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (v) => { clearTimeout(timer); s.destroy(); resolve(v); };
    const timer = setTimeout(() => done(false), ms);
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

// --------------------------------------------------------------------------------------------- HAProxy

// The per-connection log line, parsed below: accept time (epoch s.ms), client ip:port, server,
// Tw/Tc/Tt, bytes to the client, bytes from the client, termination state, retries (+ when redispatched).
const HAPROXY_LOG_FORMAT = 'CONN %Ts.%ms %ci:%cp %s %Tw/%Tc/%Tt %B %U %ts %rc';
const LOG_RE = /^CONN (\d+)\.(\d+) [^ ]+:(\d+) (\S+) (-?\d+)\/(-?\d+)\/(-?\d+) (\d+) (\d+) (\S\S) (\+?\d+)/;

// startHaproxy runs `haproxy -f CONFIG -db` with its own config in a temp dir: mode tcp, one frontend on a
// free loopback port, backend `chat` with the servers [{name, port}], health checks every 200 ms
// (fall 2, rise 2), option redispatch, retries 3. It waits (≤ 5 s) until the frontend accepts and every
// server is UP.
//
// check 'tcp' (default): a health check is a TCP connect to the server's port. check 'readyz': an HTTP check
// `GET /readyz` on each server's checkPort (sidpin's admin listener), which answers 503 while sidpin
// drains (timeouts.shutdown_delay) — the setup the README recommends for rolling restarts.
async function startHaproxy({ servers, balance = 'roundrobin', label = 'haproxy', check = 'tcp' }) {
  requireHaproxy();
  const port = await freePort();
  const dir = tmpDir('haproxy');
  const sock = path.join(dir, 'admin.sock');
  const cfg = path.join(dir, 'haproxy.cfg');
  const text = [
    'global',
    '  maxconn 8000',
    '  nbthread 1',
    `  stats socket ${sock} mode 600 level admin`,
    '  log stdout format raw local0 info',
    'defaults',
    '  mode tcp',
    '  log global',
    `  log-format "${HAPROXY_LOG_FORMAT}"`,
    '  timeout connect 1s',
    '  timeout client 120s',
    '  timeout server 120s',
    '  timeout client-fin 5s',
    '  timeout server-fin 5s',
    '  retries 3',
    '  option redispatch',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend chat',
    'backend chat',
    `  balance ${balance}`,
    ...(check === 'readyz' ? ['  option httpchk GET /readyz'] : []),
    ...servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port} check${check === 'readyz' ? ` port ${s.checkPort}` : ''} inter 200ms fall 2 rise 2`),
    '',
  ].join('\n');
  fs.writeFileSync(cfg, text);
  // The per-connection log goes to a file: through a pipe, HAProxy drops log lines whenever this busy
  // process does not read them fast enough.
  const connLog = path.join(dir, 'connections.log');
  const proc = new LineProc(label, HAPROXY, ['-f', cfg, '-db'], { keep: 400, stdoutFile: connLog });
  const hp = {
    port, url: `http://127.0.0.1:${port}`, dir, sock, cfg, text, proc, check,
    states: [], // {at, server, state: 'UP'|'DOWN', text}
    conns: { total: 0, perServer: {}, retried: 0, redispatched: 0, abnormal: [], abnormalTotal: 0, byState: {} },
    byPort: new Map(), // client port -> last few log entries
    entries: [], // every logged connection (bounded: 300,000)
    retriedList: [],
  };
  let logOffset = 0;
  let logRest = '';
  // sync reads the connection log lines written since the last call.
  hp.sync = () => {
    let fd;
    try { fd = fs.openSync(connLog, 'r'); } catch { return; }
    try {
      for (let i = 0; i < 1000; i++) {
        const buf = Buffer.alloc(1 << 20);
        const n = fs.readSync(fd, buf, 0, buf.length, logOffset);
        if (n <= 0) break;
        logOffset += n;
        const parts = (logRest + buf.toString('utf8', 0, n)).split('\n');
        logRest = parts.pop();
        for (const text of parts) parseLine({ at: null, text, stream: 'stdout' });
      }
    } finally { fs.closeSync(fd); }
  };
  const parseLine = (l) => {
    const m = LOG_RE.exec(l.text);
    if (m) {
      const e = {
        acceptAt: Number(m[1]) * 1000 + Number(m[2]), loggedAt: l.at, clientPort: Number(m[3]), server: m[4],
        Tw: Number(m[5]), Tc: Number(m[6]), Tt: Number(m[7]), bytesDown: Number(m[8]), bytesUp: Number(m[9]), ts: m[10], rc: m[11],
      };
      const c = hp.conns;
      c.total += 1;
      c.perServer[e.server] = (c.perServer[e.server] || 0) + 1;
      c.byState[e.ts] = (c.byState[e.ts] || 0) + 1;
      if (e.rc !== '0') { c.retried += 1; if (e.rc.startsWith('+')) c.redispatched += 1; if (hp.retriedList.length < 200) hp.retriedList.push(e); }
      if (e.ts !== '--') { c.abnormalTotal += 1; if (c.abnormal.length < 500) c.abnormal.push(e); }
      if (hp.entries.length < 300000) hp.entries.push(e);
      const list = hp.byPort.get(e.clientPort) || [];
      list.push(e);
      if (list.length > 4) list.shift();
      hp.byPort.set(e.clientPort, list);
    }
  };
  // connOf finds the logged connection that carried an observed client request: accepted before the
  // request finished and not ended before it started (ms slack for log rounding). A client port freed
  // by a reset is often reused at once by the client's next connection, which must not be blamed.
  hp.connOf = (r, slackMs = 5) => {
    const end = r.t1 === null ? Date.now() : r.t1;
    const fits = (e) => e.acceptAt <= end + slackMs && e.acceptAt + e.Tt >= r.t0 - slackMs;
    return (hp.byPort.get(r.localPort) || []).filter(fits).pop() || null;
  };
  proc.onLine((l) => {
    const s = l.stream === 'stderr' && /Server chat\/(\S+) is (UP|DOWN)/.exec(l.text);
    if (s) hp.states.push({ at: l.at, server: s[1], state: s[2], text: l.text.trim() });
  });
  hp.admin = (cmd, ms = 2000) => haproxyAdmin(sock, cmd, ms);
  hp.serverStates = async () => {
    const csv = await hp.admin('show stat');
    const out = {};
    const lines = csv.split('\n');
    const head = (lines[0] || '').replace(/^# /, '').split(',');
    const iName = head.indexOf('svname');
    const iStatus = head.indexOf('status');
    for (const line of lines.slice(1)) {
      const f = line.split(',');
      if (f[0] === 'chat' && f[iName] !== 'BACKEND') out[f[iName]] = f[iStatus];
    }
    return out;
  };
  // sessions: client port -> server, for the connections HAProxy holds now (`show sess`).
  hp.sessions = async () => {
    const text = await hp.admin('show sess');
    const out = new Map();
    for (const line of text.split('\n')) {
      const m = /src=[^ ]*:(\d+) .*?srv=(\S+)/.exec(line);
      if (m) out.set(Number(m[1]), m[2]);
    }
    return out;
  };
  hp.waitStates = async (want, ms) => {
    let last = {};
    const deadline = Date.now() + ms;
    for (let i = 0; i < Math.ceil(ms / 50) + 1; i++) {
      try { last = await hp.serverStates(); } catch (e) { last = { error: e.message }; }
      if (Object.entries(want).every(([k, v]) => last[k] === v)) return { ok: true, at: Date.now(), states: last };
      if (Date.now() >= deadline) break;
      await sleep(50);
    }
    return { ok: false, at: Date.now(), states: last };
  };
  hp.stop = async () => {
    await proc.stop(3000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 100 && Date.now() < deadline; i++) {
    if (!proc.alive()) break;
    if (await tcpAccepts(port, 200)) break;
    await sleep(50);
  }
  if (!proc.alive() || !(await tcpAccepts(port, 300))) {
    const out = proc.tail(60);
    await hp.stop();
    throw new Error(`haproxy did not start (config ${cfg}):\n${text}\noutput:\n${out}${proc.spawnError ? `\nspawn error: ${proc.spawnError.message}` : ''}`);
  }
  const want = Object.fromEntries(servers.map((s) => [s.name, 'UP']));
  const st = await hp.waitStates(want, 5000);
  if (!st.ok) {
    const out = proc.tail(60);
    await hp.stop();
    throw new Error(`haproxy's servers did not all come UP within 5 s: ${JSON.stringify(st.states)}\noutput:\n${out}`);
  }
  return hp;
}

// haproxyAdmin sends one command on the stats socket and resolves with the whole answer (≤ ms).
function haproxyAdmin(sock, cmd, ms = 2000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let out = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`haproxy stats socket: "${cmd}" timed out after ${ms} ms`)); }, ms);
    s.on('connect', () => s.write(`${cmd}\n`));
    s.on('data', (d) => { out += d; });
    s.on('end', () => { clearTimeout(timer); resolve(out); });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// ---------------------------------------------------------------------------------------------- sidpin

// faultsConfigYAML is the config of one instance: pool "chat" with the nodes (http health checks), the
// store redis (one address, or the sentinels with masterName), an admin listener, per-client limits off
// (every client reaches sidpin from HAProxy's 127.0.0.1), and a shutdown grace.
function faultsConfigYAML({
  listenPort, adminPort, addrs, masterName = '', prefix, nodes, redisTimeout = '100ms', shutdownGrace = '15s', shutdownDelay = '0s', logLevel = 'debug',
}) {
  const lines = [
    `listen: 127.0.0.1:${listenPort}`,
    'admin:',
    `  listen: 127.0.0.1:${adminPort}`,
    'store:',
    '  kind: redis',
    '  redis:',
    `    addrs: [${addrs.map((a) => `"${a}"`).join(', ')}]`,
  ];
  if (masterName) lines.push(`    master_name: ${masterName}`);
  lines.push(
    `    key_prefix: "${prefix}"`,
    '    dial_timeout: 500ms',
    `    read_timeout: ${redisTimeout}`,
    `    write_timeout: ${redisTimeout}`,
    'pools:',
    '  - name: chat',
    '    health: {kind: http, path: /healthz, interval: 1s, timeout: 500ms, rise: 2, fall: 3}',
    '    nodes:',
    ...nodes.map((n) => `      - {name: ${n.name}, url: "${n.url}"}`),
    'limits:',
    '  per_client: {max_connections: 0, handshake_rate: 0}',
    'timeouts:',
    `  shutdown_grace: ${shutdownGrace}`,
    `  shutdown_delay: ${shutdownDelay}`,
    `log: {level: ${logLevel}}`,
    '',
  );
  return lines.join('\n');
}

// Instance is one sidpin instance on a fixed client port and admin port, with its own config file (the
// same file at every restart). incarnations records every run: start, serving, SIGTERM/SIGKILL, exit.
class Instance {
  constructor(name, { dir, listenPort, adminPort, ...cfg }) {
    this.name = name;
    this.port = listenPort;
    this.adminPort = adminPort;
    this.url = `http://127.0.0.1:${listenPort}`;
    this.admin = `http://127.0.0.1:${adminPort}`;
    this.file = path.join(dir, `sidpin-${name}.yaml`);
    fs.writeFileSync(this.file, faultsConfigYAML({ listenPort, adminPort, ...cfg }));
    this.proc = null;
    this.incarnations = [];
  }

  // start runs sidpin and waits (≤ 10 s) until GET /healthz through its client port answers 200 (proxied
  // to a node). Resolves with {startMs}.
  async start() {
    const t0 = Date.now();
    this.proc = new LineProc(`sidpin ${this.name}`, bin('sidpin'), ['-config', this.file]);
    const inc = { proc: this.proc, startAt: t0, servingAt: null, signalAt: null, signal: null, exitAt: null, exit: null };
    this.incarnations.push(inc);
    this.proc.exit.then((e) => { inc.exitAt = e.at; inc.exit = e; });
    let last = 'no answer';
    const deadline = t0 + 10000;
    for (let i = 0; i < 400 && Date.now() < deadline; i++) {
      if (!this.proc.alive()) break;
      try {
        const r = await httpGet(`${this.url}/healthz`, 1000);
        if (r.status === 200) { inc.servingAt = Date.now(); return { startMs: inc.servingAt - t0 }; }
        last = `${r.status} ${r.body.slice(0, 200)}`;
      } catch (e) { last = e.message; }
      await sleep(25);
    }
    const out = this.proc.tail(60);
    await this.proc.stop(2000);
    throw new Error(`sidpin ${this.name} did not proxy GET /healthz with 200 within 10 s (last: ${last}; exited: ${JSON.stringify(this.proc.exited)}); ` +
      `config:\n${fs.readFileSync(this.file, 'utf8')}\noutput:\n${out}`);
  }

  get current() { return this.incarnations[this.incarnations.length - 1]; }

  // term sends SIGTERM and waits (≤ ms) for the exit; resolves with {exitMs, exit} (exit null: still running).
  async term(ms = 20000) {
    const inc = this.current;
    inc.signalAt = Date.now();
    inc.signal = 'SIGTERM';
    this.proc.kill('SIGTERM');
    const exit = await this.proc.waitExit(ms);
    return { exitMs: exit ? exit.at - inc.signalAt : null, exit };
  }

  // kill9 sends SIGKILL and waits (≤ 3 s) for the exit.
  async kill9() {
    const inc = this.current;
    inc.signalAt = Date.now();
    inc.signal = 'SIGKILL';
    this.proc.kill('SIGKILL');
    const exit = await this.proc.waitExit(3000);
    return { at: inc.signalAt, exit };
  }

  async stop() {
    if (this.proc) await this.proc.stop(5000);
  }

  // logs is every incarnation's output (tail), for failure messages and diagnosis.
  logs(n = 40, re = null) {
    return this.incarnations.map((inc, i) => {
      const lines = re ? inc.proc.grep(re).map((l) => l.text).slice(-n).join('\n') : inc.proc.tail(n);
      return `--- sidpin ${this.name} run #${i + 1} (pid ${inc.proc.pid}, exit ${JSON.stringify(inc.exit)}):\n${lines}`;
    }).join('\n');
  }

  // problems counts the WARN/ERROR lines of every incarnation by message (with an example of each), and
  // lists the lines that name sid when sid is given.
  problems(rel, since = 0) {
    const out = [];
    this.incarnations.forEach((inc, i) => {
      const by = new Map();
      for (const l of inc.proc.grep(/level=(WARN|ERROR)|^redis: /, since)) {
        const m = /msg="([^"]*)"/.exec(l.text) || /^redis: \S+ \S+ (\S+: [^:]*)/.exec(l.text);
        const key = m ? m[1] : l.text.slice(0, 60);
        const g = by.get(key) || { n: 0, first: l, last: l };
        g.n += 1;
        g.last = l;
        by.set(key, g);
      }
      for (const [msg, g] of by) out.push([`${this.name} run #${i + 1}`, `${g.n} × ${msg}`, `${rel(g.first.at)} … ${rel(g.last.at)}`, g.first.text.replace(/^time=\S+ /, '').slice(0, 230)]);
    });
    return out;
  }

  sidLines(sid, rel) {
    const re = new RegExp(`sid=${sid.replace(/[^A-Za-z0-9_-]/g, '.')}`);
    return this.incarnations.flatMap((inc, i) => inc.proc.grep(re).map((l) => `${this.name}#${i + 1} ${rel(l.at)} ${l.text.replace(/^time=\S+ /, '')}`));
  }

  async adminGet(p, ms = 2000) {
    try {
      const r = await httpGet(`${this.admin}${p}`, ms);
      let json = null;
      try { json = JSON.parse(r.body); } catch { /* not JSON */ }
      return { status: r.status, body: r.body, json };
    } catch (e) {
      return { status: 'error', body: e.message, json: null };
    }
  }

  // metrics scrapes /metrics and returns {name{labels}: value} for the sidpin_ series of interest.
  async metrics() {
    const r = await this.adminGet('/metrics', 2000);
    const out = {};
    if (r.status !== 200) return null;
    for (const line of r.body.split('\n')) {
      if (!/^sidpin_(requests_total|session_unknown_total|pin_store_errors_total|websocket_tunnels|handshakes_total)/.test(line)) continue;
      const i = line.lastIndexOf(' ');
      out[line.slice(0, i)] = Number(line.slice(i + 1));
    }
    return out;
  }
}

// MetricsWatch scrapes every instance's /metrics every 300 ms and keeps the last scrape of each
// incarnation, so that counters of an instance that restarted are summed over its runs.
class MetricsWatch {
  constructor(instances) {
    this.instances = instances;
    this.last = new Map(); // incarnation -> metrics
    this.running = true;
    this.loop = (async () => {
      for (let i = 0; i < 2000 && this.running; i++) {
        await Promise.all(instances.map(async (s) => {
          const inc = s.current;
          if (!inc || !inc.proc.alive()) return;
          const m = await s.metrics().catch(() => null);
          if (m) this.last.set(inc, m);
        }));
        await sleep(300);
      }
    })();
  }

  async stop() {
    this.running = false;
    await this.loop;
  }

  // sum adds the series matching re over every incarnation's last scrape.
  sum(re) {
    let n = 0;
    for (const m of this.last.values()) for (const [k, v] of Object.entries(m)) if (re.test(k)) n += v;
    return n;
  }
}

// ----------------------------------------------------------------------------------------------- Redis

// startRedisPlain starts a redis-server of this file's own on a free port (no persistence) with extra
// arguments; waits (≤ 5 s) until it answers PING.
async function startRedisPlain(label, extra = []) {
  const port = await freePort();
  const dir = tmpDir('redis');
  const proc = new LineProc(label, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--dir', dir, ...extra], { keep: 500 });
  const r = {
    label, port, addr: `127.0.0.1:${port}`, proc, dir,
    stop: async () => { await proc.stop(3000); fs.rmSync(dir, { recursive: true, force: true }); },
  };
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    if (proc.spawnError) throw new Error(`cannot run redis-server: ${proc.spawnError.message}`);
    if (!proc.alive()) break;
    try { if (await redisCommand(port, ['PING'], 300) === 'PONG') return r; } catch { /* not yet */ }
    await sleep(25);
  }
  const out = proc.tail(30);
  await r.stop();
  throw new Error(`${label} (redis-server on port ${port}) did not answer PING within 5 s:\n${out}`);
}

// redisCommand sends one command on a fresh connection and resolves with the parsed RESP reply (errors
// reject). Bounded by ms.
function redisCommand(port, args, ms = 1000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const done = (err, v) => { clearTimeout(timer); s.destroy(); if (err) reject(err); else resolve(v); };
    const timer = setTimeout(() => done(new Error(`redis ${port} ${args[0]}: timed out after ${ms} ms`)), ms);
    s.on('error', (e) => done(e));
    s.on('connect', () => {
      s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseRESP(buf, 0);
      if (r) done(r.value instanceof Error ? r.value : null, r.value);
    });
  });
}

// parseRESP parses one reply at offset; null when incomplete.
function parseRESP(buf, off) {
  const eol = buf.indexOf('\r\n', off);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[off]);
  const line = buf.toString('utf8', off + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+': return { value: line, end: next };
    case '-': return { value: new Error(line), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseRESP(buf, p);
        if (!r) return null;
        out.push(r.value);
        p = r.end;
      }
      return { value: out, end: p };
    }
    default: return { value: new Error(`unexpected RESP type ${type}`), end: buf.length };
  }
}

// pairs turns a flat [k, v, k, v] reply into an object.
function pairs(arr) {
  const o = {};
  for (let i = 0; i + 1 < (arr || []).length; i += 2) o[arr[i]] = arr[i + 1];
  return o;
}

// startSentinelSet starts a master, one replica (--replicaof the master) and three sentinels, each with
// its own sentinel.conf in a temp dir (monitor NAME 127.0.0.1 PORT 2, down-after 1000 ms, failover-timeout
// 5000 ms, parallel-syncs 1), and waits (≤ 15 s) until the replica's link is up and every sentinel knows
// the replica and the two other sentinels. events: {at, sentinel, text} of every "+…"/"-…" sentinel event.
async function startSentinelSet(name) {
  const set = { name, master: null, replica: null, sentinels: [], events: [], dir: tmpDir('sentinel') };
  set.stop = async () => {
    await Promise.all([...set.sentinels.map((s) => s.proc.stop(3000)), set.master && set.master.stop(), set.replica && set.replica.stop()]);
    fs.rmSync(set.dir, { recursive: true, force: true });
  };
  try {
    set.master = await startRedisPlain('redis master');
    set.replica = await startRedisPlain('redis replica', ['--replicaof', '127.0.0.1', String(set.master.port)]);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = path.join(set.dir, `s${i}`);
      fs.mkdirSync(dir);
      const conf = path.join(dir, 'sentinel.conf');
      fs.writeFileSync(conf, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${set.master.port} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'));
      const proc = new LineProc(`sentinel ${i}`, 'redis-server', [conf, '--sentinel'], { keep: 500 });
      const s = { i, port, addr: `127.0.0.1:${port}`, conf, proc };
      proc.onLine((l) => {
        const m = /# ([+-][a-z-]+) (.*)$/.exec(l.text);
        if (m) set.events.push({ at: l.at, sentinel: i, event: m[1], text: m[2] });
      });
      set.sentinels.push(s);
    }
    const deadline = Date.now() + 15000;
    let last = '';
    for (let i = 0; i < 300 && Date.now() < deadline; i++) {
      try {
        const info = await redisCommand(set.replica.port, ['INFO', 'replication'], 500);
        const linkUp = /master_link_status:up/.test(info);
        const views = await Promise.all(set.sentinels.map((s) => redisCommand(s.port, ['SENTINEL', 'MASTER', name], 500).then(pairs)));
        last = `replica link up: ${linkUp}; sentinels: ${views.map((v) => `slaves=${v['num-slaves']} others=${v['num-other-sentinels']} flags=${v.flags}`).join(' | ')}`;
        if (linkUp && views.every((v) => v['num-slaves'] === '1' && v['num-other-sentinels'] === '2' && v.flags === 'master')) return set;
      } catch (e) { last = e.message; }
      await sleep(100);
    }
    throw new Error(`the Sentinel set did not settle within 15 s: ${last}\n${set.sentinels.map((s) => `${s.proc.name}:\n${s.proc.tail(20)}`).join('\n')}`);
  } catch (e) {
    await set.stop();
    throw e;
  }
}

// -------------------------------------------------------------------------------------- HTTP observer

// HttpObserver sees every HTTP request this process makes to 127.0.0.1:port under /socket.io/ (the
// clients' polling requests and WebSocket upgrades, through node:http): for each one, method, sid,
// local port, start and end times, status (101 for an upgrade) or error, and the body of a non-200
// answer. Counters are kept for all; the last 40 requests of each sid and every failure are kept whole.
class HttpObserver {
  constructor(port) {
    this.port = port;
    this.total = 0;
    this.byStatus = {};
    this.failures = []; // requests that got no answer (error), or a non-200/101 status
    this.bySid = new Map();
    this.sessionUnknown = 0;
    this.byPort = new Map(); // local port -> the last request that used it
    this.onStart = ({ request }) => this.track(request);
    dc.subscribe('http.client.request.start', this.onStart);
  }

  close() {
    dc.unsubscribe('http.client.request.start', this.onStart);
  }

  track(req) {
    const host = String(req.getHeader('host') || '');
    if (host !== `127.0.0.1:${this.port}` || !String(req.path).startsWith(EIO_PATH)) return;
    const q = new URLSearchParams(req.path.slice(req.path.indexOf('?') + 1));
    const r = { method: req.method, sid: q.get('sid'), transport: q.get('transport'), t0: Date.now(), localPort: null, t1: null, status: null, error: null, body: null };
    this.total += 1;
    if (r.sid) {
      const list = this.bySid.get(r.sid) || [];
      list.push(r);
      if (list.length > 40) list.shift();
      this.bySid.set(r.sid, list);
    }
    const finish = (status, error) => {
      if (r.t1 !== null) return;
      r.t1 = Date.now();
      r.status = status;
      r.error = error;
      const key = error ? `error ${error}` : String(status);
      this.byStatus[key] = (this.byStatus[key] || 0) + 1;
      if (error || (status !== 200 && status !== 101)) {
        if (this.failures.length < 500) this.failures.push(r);
      }
    };
    // The start is published when the request is finished (headers written), so the socket is often
    // there already.
    const onSocket = (s) => {
      const note = () => { r.localPort = s.localPort; this.byPort.set(s.localPort, r); };
      if (s.localPort) note(); else s.once('connect', note);
    };
    if (req.socket) onSocket(req.socket); else req.once('socket', onSocket);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        const chunks = [];
        res.on('data', (d) => { if (chunks.length < 4) chunks.push(d); });
        res.on('end', () => {
          r.body = Buffer.concat(chunks).toString('utf8').slice(0, 200);
          if (res.statusCode === 400 && /Session ID unknown/.test(r.body)) this.sessionUnknown += 1;
          finish(res.statusCode, null);
        });
        res.on('error', (e) => finish(res.statusCode, `${e.code || ''} ${e.message} (mid-answer)`.trim()));
      } else {
        res.on('end', () => finish(200, null));
        res.on('error', (e) => finish(200, `${e.code || ''} ${e.message} (mid-answer)`.trim()));
        res.on('aborted', () => finish(200, 'aborted mid-answer'));
      }
    });
    req.on('upgrade', () => finish(101, null));
    req.on('error', (e) => finish(null, `${e.code || ''} ${e.message}`.trim()));
  }

  // failuresOf lists the failed requests in [from, to] (start time).
  failuresIn(from, to = Infinity) {
    return this.failures.filter((r) => r.t0 >= from && r.t0 <= to);
  }
}

// ---------------------------------------------------------------------------------------------- clients

// FaultClient is a socket.io-client v4 socket (forceNew, reconnection on) through the balancer that
// records its whole life. kind: 'polling' (transports ['polling']) or 'default' (polling, then upgrade).
class FaultClient {
  constructor(url, kind, index, run, opts = {}) {
    const { io } = require('socket.io-client');
    this.kind = kind;
    this.index = index;
    this.run = run;
    // An http.Agent with keepAlive (opts.agent) makes the polling requests share keep-alive connections, as
    // a browser's do; socket.io-client's own default (agent: false) opens one connection per request.
    this.keepAlive = Boolean(opts.agent && opts.agent.keepAlive);
    this.label = `${kind === 'polling' ? (this.keepAlive ? 'k' : 'p') : 'd'}#${index}`;
    this.connects = []; // {at, sid, transport}
    this.disconnects = []; // {at, reason, detail, code, sid, transport}
    this.connectErrors = []; // {at, detail}
    this.upgrades = []; // {at, sid, localPort}
    this.welcomes = []; // {at, node}
    this.received = new Map(); // message id -> first receipt time
    this.duplicates = 0;
    this.closing = false;
    this.onReconnect = null;
    this.socket = io(url, {
      forceNew: true, reconnection: true, ...(kind === 'polling' ? { transports: ['polling'] } : {}), ...opts,
    });
    const s = this.socket;
    this.upgradeErrors = []; // {at, sid, detail}
    this.upgrading = []; // {at, sid}: probe answered, polling paused
    s.io.on('open', () => {
      const engine = s.io.engine;
      engine.on('upgradeError', (e) => this.upgradeErrors.push({ at: Date.now(), sid: engine.id, detail: errText(e) }));
      engine.on('upgrading', () => this.upgrading.push({ at: Date.now(), sid: engine.id }));
      engine.on('upgrade', (t) => {
        let localPort = null;
        try { localPort = t.ws && t.ws._socket ? t.ws._socket.localPort : null; } catch { /* unknown */ }
        this.upgrades.push({ at: Date.now(), sid: engine.id, localPort });
      });
    });
    s.on('connect', () => {
      const e = s.io.engine;
      this.connects.push({ at: Date.now(), sid: e && e.id, transport: e && e.transport ? e.transport.name : null });
      if (this.connects.length > 1 && this.onReconnect) this.onReconnect(this);
    });
    s.on('disconnect', (reason, details) => {
      const ctx = details && details.context;
      const code = ctx && typeof ctx.code === 'number' ? ctx.code : null;
      let detail = '';
      if (details) detail = typeof details.description === 'string' ? details.description : errText(details);
      const last = this.connects[this.connects.length - 1];
      this.disconnects.push({ at: Date.now(), reason, detail, code, sid: last && last.sid, transport: this.transportNow, closing: this.closing });
    });
    s.on('connect_error', (e) => this.connectErrors.push({ at: Date.now(), detail: errText(e), closing: this.closing }));
    s.on('welcome', (w) => this.welcomes.push({ at: Date.now(), node: w && w.node }));
    s.on('message', (m) => {
      const msg = m && m.msg;
      if (!msg || msg.run !== this.run) return;
      if (this.received.has(msg.id)) this.duplicates += 1;
      else this.received.set(msg.id, Date.now());
    });
  }

  get transportNow() {
    const e = this.socket.io.engine;
    return e && e.transport ? e.transport.name : null;
  }

  get sid() {
    const e = this.socket.io.engine;
    return e ? e.id : null;
  }

  // wsLocalPort is the local port of the current WebSocket (null on polling).
  get wsLocalPort() {
    const e = this.socket.io.engine;
    try { return e && e.transport && e.transport.ws && e.transport.ws._socket ? e.transport.ws._socket.localPort : null; } catch { return null; }
  }

  // stalledProbes are the probes that failed after the node's 3probe, once this client had begun to pause
  // polling: engine.io-client (6.6.8, Socket._probe) then leaves polling paused and `upgrading` set, so
  // the session sends and receives nothing until a heartbeat times out.
  get stalledProbes() {
    return this.upgrading.filter((u) => this.upgradeErrors.some((e) => e.sid === u.sid && e.at >= u.at) &&
      !this.upgrades.some((x) => x.sid === u.sid && x.at >= u.at))
      .map((u) => ({ ...u, error: this.upgradeErrors.find((e) => e.sid === u.sid && e.at >= u.at) }));
  }

  get ready() {
    return this.socket.connected && this.welcomes.length > 0;
  }

  troubles(since = 0) {
    return [
      ...this.disconnects.filter((d) => !d.closing && d.at >= since).map((d) => ({ at: d.at, what: `disconnect ${d.reason}${d.code !== null ? ` code ${d.code}` : ''}${d.detail ? ` (${d.detail})` : ''}` })),
      ...this.connectErrors.filter((d) => !d.closing && d.at >= since).map((d) => ({ at: d.at, what: `connect_error ${d.detail}` })),
    ].sort((a, b) => a.at - b.at);
  }

  // connectedOver is true when one connection of this client spans [from, to]: a connect at or before
  // from and no disconnect after that connect until to.
  connectedOver(from, to) {
    let c = null;
    for (const x of this.connects) if (x.at <= from) c = x;
    if (!c) return false;
    return !this.disconnects.some((d) => d.at >= c.at && d.at <= to);
  }

  close() {
    this.closing = true;
    this.socket.disconnect();
  }
}

// openClients opens the clients, 10 every 100 ms (polling-only and default ones interleaved: clients
// arrive over a second, not all in the same millisecond), and waits (≤ ms) until each is connected and
// welcomed (and, for the default ones, upgraded to websocket when upgrade is true).
// keepAlive more polling-only clients share keepAliveAgent (an http.Agent with keepAlive: true).
async function openClients(url, { polling, defaults, run, upgrade = true, ms = 15000, keepAlive = 0, keepAliveAgent = null }) {
  const clients = [];
  const specs = [];
  for (let i = 0; i < Math.max(polling, defaults, keepAlive); i++) {
    if (i < polling) specs.push(['polling', i, {}]);
    if (i < defaults) specs.push(['default', i, {}]);
    if (i < keepAlive) specs.push(['polling', i, { agent: keepAliveAgent }]);
  }
  for (let k = 0; k < specs.length; k++) {
    clients.push(new FaultClient(url, specs[k][0], specs[k][1], run, specs[k][2]));
    if (k % 10 === 9) await sleep(100);
  }
  await waitUntil(() => clients.every((c) => c.ready && (!upgrade || c.kind === 'polling' || c.transportNow === 'websocket')), ms);
  return clients;
}

// ChatLoad: each client sends {run, id, c} with an ack (timeout 5 s) every 200-500 ms (random) while it is
// connected. Bounded by maxMs and by 10,000 messages per client. messages: {id, client, sentAt, sid,
// transport, ackAt, ackErr}.
class ChatLoad {
  constructor(clients, run, { minMs = 200, maxMs = 500, limitMs = 120000 } = {}) {
    this.clients = clients;
    this.run = run;
    this.messages = [];
    this.skipped = 0; // ticks of a client that was not connected
    this.running = true;
    this.timers = new Set();
    this.nextId = 1;
    this.startedAt = Date.now();
    const stopAt = this.startedAt + limitMs;
    for (const c of clients) {
      let n = 0;
      const tick = () => {
        if (!this.running || Date.now() > stopAt || n >= 10000) return;
        n += 1;
        this.send(c);
        schedule();
      };
      const schedule = () => {
        const t = setTimeout(() => { this.timers.delete(t); tick(); }, minMs + Math.random() * (maxMs - minMs));
        this.timers.add(t);
      };
      schedule();
    }
  }

  send(c, extra = {}) {
    if (!c.socket.connected) { this.skipped += 1; return null; }
    const m = { id: this.nextId++, client: c, sentAt: Date.now(), sid: c.sid, transport: c.transportNow, ackAt: null, ackErr: null, ...extra };
    this.messages.push(m);
    (c.sent || (c.sent = [])).push(m);
    c.socket.timeout(5000).emit('sendMessage', { run: this.run, id: m.id, c: c.label }, (err) => {
      if (err) m.ackErr = err.message || String(err);
      else m.ackAt = Date.now();
    });
    return m;
  }

  stop() {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.stoppedAt = Date.now();
  }

  // settle waits (≤ ms) until every message has its ack or its ack timeout.
  async settle(ms = 6000) {
    await waitUntil(() => this.messages.every((m) => m.ackAt !== null || m.ackErr !== null), ms);
  }
}

// finalRound: every connected client sends one last message; resolves (≤ ms) with the clients that are
// not connected, and those that did not receive every other connected client's last message.
async function finalRound(clients, run, ms = 8000) {
  const live = clients.filter((c) => c.socket.connected);
  const ids = live.map((c, i) => `final-${i}`);
  live.forEach((c, i) => c.socket.emit('sendMessage', { run, id: ids[i], c: c.label }));
  const missingOf = (c) => ids.filter((id, i) => live[i] !== c && !c.received.has(id)).length;
  await waitUntil(() => live.every((c) => missingOf(c) === 0), ms);
  // A sender whose last message reached nobody (a stalled session) makes every other client miss one:
  // name the senders, and count for the receivers only what the others did receive.
  const silent = live.filter((c, i) => !live.some((o) => o !== c && o.received.has(ids[i])));
  const heard = ids.filter((id, i) => !silent.includes(live[i]));
  const missingHeard = (c) => heard.filter((id) => live[ids.indexOf(id)] !== c && !c.received.has(id)).length;
  return {
    live: live.length,
    notConnected: clients.filter((c) => !c.socket.connected),
    silent, // connected, but their last message reached no one
    incomplete: live.filter((c) => missingHeard(c) > 0 || (silent.includes(c) && heard.length > 1 && heard.every((id) => !c.received.has(id))))
      .map((c) => ({ c, missing: missingHeard(c) })),
  };
}

// deliveryReport: an acked message m (sent at sentAt, acked at ackAt) must reach every OTHER client c
// that was connected over [m.sentAt, m.ackAt + windowMs] on one connection (c's connect before the send,
// no disconnect of c until the window's end). Clients that disconnected in that window are excluded
// (they may miss it: the node dropped their session's queue) and counted as such.
function deliveryReport(clients, messages, { windowMs = 2000 } = {}) {
  const r = { acked: 0, unacked: 0, expected: 0, delivered: 0, excluded: 0, missing: [], missingTotal: 0, ackLatency: [] };
  for (const m of messages) {
    if (m.ackAt === null) { r.unacked += 1; continue; }
    r.acked += 1;
    r.ackLatency.push(m.ackAt - m.sentAt);
    for (const c of clients) {
      if (c === m.client) continue;
      if (!c.connectedOver(m.sentAt, m.ackAt + windowMs)) {
        // Not a recipient: either not connected when it was sent, or disconnected within the window.
        if (c.connects.length && c.connects[0].at <= m.sentAt) r.excluded += 1;
        continue;
      }
      r.expected += 1;
      if (c.received.has(m.id)) r.delivered += 1;
      else {
        r.missingTotal += 1;
        if (r.missing.length < 100000) r.missing.push({ id: m.id, from: m.client.label, to: c.label, sentAt: m.sentAt, ackAt: m.ackAt, m, c });
      }
    }
  }
  r.ackLatency = summaryOf(r.ackLatency);
  // How long acked messages took to reach each recipient after their ack.
  const lag = [];
  for (const m of messages) {
    if (m.ackAt === null || m.id % 7) continue; // a sample
    for (const c of clients) { const at = c.received.get(m.id); if (at !== undefined && c !== m.client) lag.push(at - m.ackAt); }
  }
  r.receiptAfterAck = summaryOf(lag);
  return r;
}

// missingDiagnosis groups missing deliveries by recipient: how many, the span of their send times, the
// recipient's connects / upgrades / disconnects, and whether it received messages sent after the gap.
function missingDiagnosis(rep, messages, rel, max = 10) {
  const by = new Map();
  for (const x of rep.missing) {
    const g = by.get(x.c) || { c: x.c, n: 0, first: Infinity, last: 0, senders: new Set() };
    g.n += 1;
    g.first = Math.min(g.first, x.sentAt);
    g.last = Math.max(g.last, x.sentAt);
    g.senders.add(x.from);
    by.set(x.c, g);
  }
  const groups = [...by.values()].sort((a, b) => b.n - a.n);
  missingDiagnosis.groups = groups;
  return groups.slice(0, max).map((g) => {
    const c = g.c;
    const later = messages.filter((m) => m.client !== c && m.ackAt !== null && m.sentAt > g.last);
    const gotLater = later.filter((m) => c.received.has(m.id)).length;
    const within = messages.filter((m) => m.client !== c && m.sentAt >= g.first && m.sentAt <= g.last);
    const gotWithin = within.filter((m) => c.received.has(m.id)).length;
    return `${c.label}: ${g.n} missing, sent ${rel(g.first)} … ${rel(g.last)} by ${g.senders.size} clients; of all messages sent in that span it got ${gotWithin}/${within.length}; ` +
      `of the later ones ${gotLater}/${later.length}; connects ${c.connects.map((x) => `${rel(x.at)} ${x.transport} ${x.sid}`).join(', ')}; ` +
      `upgrading (probe answered) ${c.upgrading.map((u) => rel(u.at)).join(', ') || 'none'}; upgrades ${c.upgrades.map((u) => `${rel(u.at)} port ${u.localPort}`).join(', ') || 'none'}; ` +
      `upgrade errors ${c.upgradeErrors.map((u) => `${rel(u.at)} ${u.detail}`).join(', ') || 'none'}; disconnects ${c.disconnects.map((d) => `${rel(d.at)} ${d.reason}`).join(', ') || 'none'}; ` +
      `connect errors ${c.connectErrors.map((d) => `${rel(d.at)} ${d.detail.slice(0, 60)}`).join(', ') || 'none'}; ` +
      `last receipt ${rel(Math.max(0, ...c.received.values()))}`;
  });
}

// --------------------------------------------------------------------------------------------------- rig

const NODE_NAMES = ['node1', 'node2', 'node3'];

// startRig starts what every fault test needs: a redis-server of its own (chat fan-out of the three Go
// chatnodes, and the pin table unless sentinel), optionally a Sentinel set for the pin table, sidpin A and
// B (store redis, one config file each, fixed ports), and HAProxy in front of them; plus an HttpObserver
// of HAProxy's port. Fields are set as they start, so rig.stop() stops whatever started, each process by
// its own handle, even after a failure half-way.
//
// check: HAProxy's health check, 'tcp' or 'readyz' (GET /readyz on the admin port, with sidpin's
// timeouts.shutdown_delay set to shutdownDelay); SIDPIN_FAULTS_CHECK=tcp|readyz overrides it.
async function startRig({ tag, sentinelName = null, check = 'tcp', shutdownDelay = '1s' }) {
  check = process.env.SIDPIN_FAULTS_CHECK || check;
  if (!['tcp', 'readyz'].includes(check)) throw new Error(`SIDPIN_FAULTS_CHECK must be tcp or readyz, got ${JSON.stringify(check)}`);
  const rig = { tag, check, nodes: [], clients: [], dir: tmpDir(tag), prefix: `${unique(`sidpin-faults-${tag}`)}:` };
  rig.stop = async () => {
    for (const c of rig.clients) { try { c.close(); } catch { /* closed */ } }
    if (rig.observer) rig.observer.close();
    await sleep(50);
    await Promise.all([
      rig.hp && rig.hp.stop(),
      rig.A && rig.A.stop(),
      rig.B && rig.B.stop(),
      ...rig.nodes.map((n) => n.proc.stop()),
    ]);
    await Promise.all([rig.sentinels && rig.sentinels.stop(), rig.redis && rig.redis.stop()]);
    fs.rmSync(rig.dir, { recursive: true, force: true });
  };
  const { startNode } = require('./chat-cluster');
  try {
    rig.redis = await startRedisPlain(sentinelName ? 'redis (chat fan-out)' : 'redis (pins + chat fan-out)');
    let addrs = [rig.redis.addr];
    if (sentinelName) {
      rig.sentinels = await startSentinelSet(sentinelName);
      addrs = rig.sentinels.sentinels.map((x) => x.addr);
    }
    const channel = unique(`faults-${tag}`);
    for (const name of NODE_NAMES) {
      rig.nodes.push(await startNode(name, { redis: rig.redis.addr, channel }));
    }
    // SIDPIN_FAULTS_REDIS_TIMEOUT overrides store.redis.read_timeout/write_timeout (default 100ms, sidpin's
    // own default), to tell apart what a loaded machine's slow Redis round trips cause.
    const redisTimeout = process.env.SIDPIN_FAULTS_REDIS_TIMEOUT || '100ms';
    const common = {
      dir: rig.dir, addrs, masterName: sentinelName || '', prefix: rig.prefix, nodes: rig.nodes, redisTimeout,
      shutdownDelay: check === 'readyz' ? shutdownDelay : '0s',
    };
    rig.A = new Instance('A', { ...common, listenPort: await freePort(), adminPort: await freePort() });
    rig.B = new Instance('B', { ...common, listenPort: await freePort(), adminPort: await freePort() });
    await rig.A.start();
    await rig.B.start();
    rig.hp = await startHaproxy({
      check, servers: [{ name: 'A', port: rig.A.port, checkPort: rig.A.adminPort }, { name: 'B', port: rig.B.port, checkPort: rig.B.adminPort }],
    });
    rig.observer = new HttpObserver(rig.hp.port);
  } catch (e) {
    await rig.stop();
    throw e;
  }
  return rig;
}

// pinnedSids lists the sids that have a pin key (PREFIX p:<sid>) in the Redis on port (SCAN, bounded).
async function pinnedSids(port, prefix) {
  const out = new Set();
  let cursor = '0';
  for (let i = 0; i < 1000; i++) {
    const [next, keys] = await redisCommand(port, ['SCAN', cursor, 'MATCH', `${prefix}p:*`, 'COUNT', '1000'], 2000);
    for (const k of keys) out.add(k.slice(prefix.length + 2));
    cursor = next;
    if (cursor === '0') break;
  }
  return out;
}

// relTo formats a time relative to t0 as "+123 ms".
function relTo(t0) {
  return (t) => (t === null || t === undefined ? '-' : `${t - t0 >= 0 ? '+' : ''}${t - t0} ms`);
}

// loopDelay measures this process's event loop delay (the clients all live in it) until stop().
function loopDelay() {
  const { monitorEventLoopDelay } = require('node:perf_hooks');
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return { stop: () => { h.disable(); return { p50: Math.round(h.percentile(50) / 1e6), p99: Math.round(h.percentile(99) / 1e6), max: Math.round(h.max / 1e6) }; } };
}

// loadAverage is /proc/loadavg's first three fields (the box is shared: figures drift with it).
function loadAverage() {
  try { return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return '?'; }
}

// --------------------------------------------------------------------------------------------- figures

// table prints rows ([label, value, …]) under a title, columns padded.
function table(title, rows) {
  const cells = rows.map((r) => (Array.isArray(r) ? r : [r]).map((x) => (x === null || x === undefined ? '-' : typeof x === 'object' ? JSON.stringify(x) : String(x))));
  const widths = [];
  for (const r of cells) if (r.length > 1) r.forEach((x, i) => { widths[i] = Math.max(widths[i] || 0, Math.min(x.length, 60)); });
  const lines = cells.map((r) => `  ${r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(widths[i]))).join('  ')}`);
  console.log(`\n[faults] ${title}\n${lines.join('\n')}`);
}

function pct(s) {
  return s && s.n ? `p50 ${s.p50} / max ${s.max} (n ${s.n})` : 'n 0';
}

module.exports = {
  HAPROXY, requireHaproxy, tmpDir, unique, LineProc, tcpAccepts, startHaproxy, faultsConfigYAML, Instance, MetricsWatch,
  startRedisPlain, redisCommand, pairs, startSentinelSet, HttpObserver, FaultClient, openClients, ChatLoad, deliveryReport,
  table, pct, summaryOf, sleep, waitUntil, errText, startRig, pinnedSids, relTo, NODE_NAMES, missingDiagnosis, loopDelay, loadAverage, finalRound,
};
