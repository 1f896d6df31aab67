'use strict';
// Helpers to start the Go binaries (built by scripts/test.sh into SIDPIN_BIN_DIR) and to find free ports.
const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

const BIN_DIR = path.resolve(process.env.SIDPIN_BIN_DIR || path.join(__dirname, '..', '..', 'bin'));
const REPO = path.join(__dirname, '..', '..');

function bin(name) {
  return path.join(BIN_DIR, name);
}

// runSync runs a binary to completion and returns {status, stdout, stderr}.
function runSync(name, args) {
  const r = spawnSync(bin(name), args, { cwd: REPO, encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  return r;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// start launches a long-running binary of the project; stop it with proc.stop().
function start(name, args) {
  return startCommand(bin(name), args);
}

// startCommand launches any long-running command; stop it with proc.stop() (SIGTERM, then SIGKILL
// after 5 s). Output is kept for failure messages; alive() tells whether it still runs.
function startCommand(command, args) {
  const child = spawn(command, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  return {
    child,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }),
  };
}

module.exports = { bin, runSync, start, startCommand, freePort, REPO };
