'use strict';
// One chat node on the test Redis: /healthz names the node and counts sessions; SIGTERM ends the
// process (and its clients' sessions) within 5 s with exit status 0.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startNode, redisAddr, uniqueChannel, httpGet, Registry, connectV4, once, withTimeout, sleep } = require('../lib/chat-cluster');

// Without the test Redis this file fails (here, and in the before hook), it is never skipped.
it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

describe('chatnode /healthz and SIGTERM', () => {
  let node = null;
  const reg = new Registry();

  before(async () => {
    node = await startNode('health1', { redis: redisAddr(), channel: uniqueChannel('health') });
  });

  after(async () => {
    reg.closeAll();
    if (node) await node.proc.stop();
  });

  it('/healthz answers 200 "ok NAME sessions=N" and counts a connected client', { timeout: 15000 }, async () => {
    const r = await httpGet(`${node.url}/healthz`);
    assert.equal(r.status, 200, `GET /healthz: ${r.status} ${r.body}`);
    assert.match(r.body, /^ok health1 sessions=0\n?$/, `GET /healthz body: ${JSON.stringify(r.body)}`);

    const c = await connectV4(reg, node, { transports: ['websocket'] });
    const r1 = await httpGet(`${node.url}/healthz`);
    assert.equal(r1.status, 200);
    assert.match(r1.body, /^ok health1 sessions=1\n?$/, `GET /healthz with one client: ${JSON.stringify(r1.body)}`);

    c.socket.disconnect();
    let body = '';
    for (let i = 0; i < 50; i++) { // ≤ 5 s for the server to notice the close
      body = (await httpGet(`${node.url}/healthz`)).body;
      if (/sessions=0/.test(body)) break;
      await sleep(100);
    }
    assert.match(body, /^ok health1 sessions=0\n?$/, `GET /healthz after the client left: ${JSON.stringify(body)}`);
  });

  it('an unknown path answers 404', async () => {
    const r = await httpGet(`${node.url}/no-such-page`);
    assert.equal(r.status, 404);
  });

  it('SIGTERM: the connected client is disconnected and the process exits 0 within 5 s', { timeout: 15000 }, async () => {
    const c = await connectV4(reg, node, {});
    const child = node.proc.child;
    assert.equal(child.exitCode, null, 'the node is not running');
    const exited = withTimeout(new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
      5000, 'chatnode to exit after SIGTERM');
    const disconnected = once(c.socket, 'disconnect', 5000, 'the client to be disconnected by the shutdown');
    const t0 = Date.now();
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    const took = Date.now() - t0;
    assert.equal(signal, null, `chatnode died of ${signal} instead of exiting; output:\n${node.proc.output()}`);
    assert.equal(code, 0, `chatnode exit status after SIGTERM; output:\n${node.proc.output()}`);
    assert.ok(took < 5000, `took ${took} ms`);
    await disconnected;
    await assert.rejects(httpGet(`${node.url}/healthz`, 1000), 'the port still answers after the exit');
  });
});
