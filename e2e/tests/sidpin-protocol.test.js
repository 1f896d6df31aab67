'use strict';
// sidpin at the HTTP level, in front of three official Node socket.io@4 servers (redis adapter) that
// compress every polling answer (httpCompression threshold 0):
//   gzip     a raw polling session asking for gzip: the handshake answer comes back gzip-encoded, and
//            POST 40 / GET / POST echo / GET with that sid all succeed — sidpin read the sid from the
//            gzip body. The same with deflate. socket.io-client v4 polling-only clients (XHR, and the
//            fetch() transport, which asks for gzip) work through sidpin.
//   unknown  an unknown or malformed sid gets sidpin's own 400 {"code":1,"message":"Session ID unknown"}
//            (application/json) on polling, and a WebSocket upgrade with an unknown sid is refused with 400.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('node:zlib');
const { WAIT_MS, redisAddr, Registry, ack, withTimeout, sleep } = require('../lib/chat-cluster');
const {
  SESSION_UNKNOWN, startSidpin, startBackends, trackedV4, rawRequest,
} = require('../lib/sidpin-helpers');
const { waitUntil } = require('../lib/sidpin-scenario');

const NAMES = ['node1', 'node2', 'node3'];
const T = { timeout: 20000 };

it('SIDPIN_TEST_REDIS names the test Redis (host:port)', () => {
  assert.match(redisAddr(), /^[^:\s]+:\d+$/);
});

// decode undoes the content-encoding of an answer (as sent on the wire).
function decode(res, what) {
  const enc = res.headers['content-encoding'];
  try {
    if (enc === 'gzip') return zlib.gunzipSync(res.body).toString('utf8');
    if (enc === 'deflate') return zlib.inflateSync(res.body).toString('utf8');
  } catch (err) {
    assert.fail(`${what}: content-encoding ${enc} but the body does not decode (${err.message}); first bytes ${res.body.subarray(0, 16).toString('hex')}`);
  }
  assert.equal(enc, undefined, `${what}: unexpected content-encoding ${enc}`);
  return res.body.toString('utf8');
}

describe('sidpin in front of three Node socket.io servers with httpCompression threshold 0', () => {
  let nodes = [];
  let sp = null;
  const reg = new Registry();

  before(async () => {
    nodes = await startBackends('node', 'sidpin-gzip', { compressThreshold: 0 });
    sp = await startSidpin(nodes);
  });

  after(async () => {
    reg.closeAll();
    await Promise.all([sp ? sp.proc.stop() : null, ...nodes.map((n) => n.proc.stop())]);
  });

  // pollingSession runs one raw Engine.IO v4 polling session through sidpin asking for `encoding`:
  // handshake (must come back encoded), POST 40, GETs until the welcome, 3 × (POST echo, GET its ack),
  // POST close. Every request must be answered 200. Returns {sid, node, log}.
  async function pollingSession(encoding) {
    const base = `${sp.url}/socket.io/?EIO=4&transport=polling`;
    const log = [];
    const call = async (what, url, opts = {}) => {
      const res = await rawRequest(url, { ms: WAIT_MS, ...opts, headers: { 'accept-encoding': encoding, ...(opts.headers || {}) } });
      const text = decode(res, what);
      log.push(`${what}: ${res.status} ${res.headers['content-encoding'] || 'identity'} ${JSON.stringify(text.slice(0, 100))}`);
      assert.equal(res.status, 200, `${what} through sidpin answered ${res.status} ${text}\nsession so far:\n${log.join('\n')}`);
      return { res, text };
    };

    const hs = await call('handshake GET', base);
    assert.equal(hs.res.headers['content-encoding'], encoding, `the handshake answer is not ${encoding}-encoded on the wire: ${JSON.stringify(hs.res.headers)}`);
    if (encoding === 'gzip') assert.equal(hs.res.body.subarray(0, 2).toString('hex'), '1f8b', 'gzip magic of the handshake body');
    assert.match(hs.text, /^0\{/, 'the handshake answer is an open packet');
    const open = JSON.parse(hs.text.slice(1));
    assert.equal(typeof open.sid, 'string');
    assert.deepEqual(open.upgrades, ['websocket']);
    const url = `${base}&sid=${encodeURIComponent(open.sid)}`;

    const post = (what, body) => call(what, url, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    await post('POST 40', '40');
    const frames = [];
    for (let i = 0; i < 4 && !frames.some((f) => f.startsWith('42["welcome"')); i++) {
      const r = await call(`GET #${i + 1}`, url);
      frames.push(...r.text.split('\x1e').filter((f) => f !== '' && f !== '2' && f !== '6'));
    }
    assert.match(frames[0] || '', /^40\{"sid":"[A-Za-z0-9_-]+"\}$/, `first frame after POST 40: ${JSON.stringify(frames)}`);
    const welcome = frames.find((f) => f.startsWith('42["welcome"'));
    assert.ok(welcome, `no welcome frame: ${JSON.stringify(frames)}\n${log.join('\n')}`);
    const node = JSON.parse(welcome.slice(2))[1].node;
    assert.ok(NAMES.includes(node), `welcome node ${node}`);

    for (let k = 1; k <= 3; k++) {
      const payload = `${encoding}-${k}-${open.sid}`;
      await post(`POST echo ${k}`, `42${k}["echo",${JSON.stringify(payload)}]`);
      const r = await call(`GET echo ack ${k}`, url);
      assert.ok(r.text.split('\x1e').includes(`43${k}[${JSON.stringify(payload)}]`), `echo ack ${k}: ${JSON.stringify(r.text)}\n${log.join('\n')}`);
    }
    await post('POST close', '1');
    return { sid: open.sid, node, log };
  }

  it('gzip: the handshake answer is gzip on the wire, and every later request of the session succeeds through sidpin', T, async () => {
    const nodesSeen = [];
    for (let s = 0; s < 3; s++) {
      const r = await pollingSession('gzip');
      nodesSeen.push(r.node);
    }
    process.stdout.write(`gzip sessions through sidpin landed on ${nodesSeen.join(', ')}\n`);
  });

  it('deflate: the same with Accept-Encoding: deflate', T, async () => {
    for (let s = 0; s < 2; s++) await pollingSession('deflate');
  });

  it('socket.io-client v4 polling only (XHR transport) works through sidpin', T, async () => {
    const c = trackedV4(sp.url, { transports: ['polling'] }, 'v4 polling-only (XHR) through sidpin');
    reg.add(() => c.close());
    const w = await withTimeout(Promise.race([c.welcome, waitUntil(() => c.errors.length > 0, WAIT_MS).then(() => { throw new Error(c.errors.join(' | ')); })]),
      WAIT_MS, 'the welcome of the XHR polling client');
    assert.ok(NAMES.includes(w.node));
    for (let k = 0; k < 5; k++) {
      assert.deepEqual(await ack(c.socket, 'echo', [{ k, s: 'x'.repeat(200 * k) }]), [{ k, s: 'x'.repeat(200 * k) }], `echo ${k}`);
    }
    const text = `xhr-${Date.now()}`;
    assert.deepEqual(await ack(c.socket, 'sendMessage', [text]), [{ node: w.node }]);
    const m = await c.messages.waitFor((x) => x.msg === text, WAIT_MS, 'its own message');
    assert.equal(m.from, c.socket.id);
    assert.equal(c.socket.io.engine.transport.name, 'polling');
    assert.deepEqual(c.errors, [], 'error events');
    c.close();
  });

  it('socket.io-client v4 polling only with the fetch() transport (asks for gzip) works through sidpin, answers gzip-encoded', T, async () => {
    const { Fetch } = require('engine.io-client');
    const encodings = [];
    const origFetch = globalThis.fetch;
    globalThis.fetch = async (...args) => {
      const res = await origFetch(...args);
      encodings.push(`${res.status} ${res.headers.get('content-encoding') || 'identity'}`);
      return res;
    };
    let c;
    try {
      c = trackedV4(sp.url, { transports: [Fetch] }, 'v4 polling-only (fetch) through sidpin');
      reg.add(() => c.close());
      const w = await withTimeout(Promise.race([c.welcome, waitUntil(() => c.errors.length > 0, WAIT_MS).then(() => { throw new Error(c.errors.join(' | ')); })]),
        WAIT_MS, 'the welcome of the fetch polling client');
      assert.ok(NAMES.includes(w.node));
      for (let k = 0; k < 5; k++) {
        assert.deepEqual(await ack(c.socket, 'echo', [{ k, s: 'y'.repeat(300 * k) }]), [{ k, s: 'y'.repeat(300 * k) }], `echo ${k}`);
      }
      assert.equal(c.socket.io.engine.transport.name, 'polling');
      assert.deepEqual(c.errors, [], 'error events');
      assert.ok(encodings.length >= 3, `fetch answers: ${encodings.join(', ')}`);
      assert.equal(encodings[0], '200 gzip', `the handshake answer the fetch client got: ${encodings.join(', ')}`);
      assert.ok(encodings.every((e) => e.startsWith('200 ')), `every answer 200: ${encodings.join(', ')}`);
    } finally {
      if (c) c.close();
      globalThis.fetch = origFetch;
    }
  });

  describe('unknown and malformed sids get sidpin\'s own 400 "Session ID unknown"', () => {
    const cases = [
      ['unknown sid, EIO=4 GET', 'GET', '/socket.io/?EIO=4&transport=polling&sid=doesnotexist'],
      ['unknown sid, EIO=4 POST', 'POST', '/socket.io/?EIO=4&transport=polling&sid=doesnotexist'],
      ['unknown sid, EIO=3 GET', 'GET', '/socket.io/?EIO=3&transport=polling&sid=doesnotexist'],
      ['malformed sid with spaces and punctuation', 'GET', `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent('not a sid!*()\'"<>')}`],
      ['malformed sid: path traversal', 'GET', `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent('../../etc/passwd')}`],
      ['malformed sid: non-ASCII', 'GET', `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent('sïd✓')}`],
      ['malformed sid: 300 characters', 'GET', `/socket.io/?EIO=4&transport=polling&sid=${'A'.repeat(300)}`],
    ];
    for (const [label, method, path] of cases) {
      it(`${label}: ${method} → 400 ${SESSION_UNKNOWN}, application/json`, T, async () => {
        const opts = method === 'POST' ? { method, body: '40', headers: { 'content-type': 'text/plain;charset=UTF-8' } } : { method };
        const res = await rawRequest(`${sp.url}${path}`, opts);
        const body = decode(res, `${method} ${path}`);
        const direct = await rawRequest(`${nodes[0].url}${path}`, opts).then((d) => `${d.status} ${d.body}`, (e) => e.message);
        const ctx = `\nrequest: ${method} ${path}\nsidpin answered ${res.status} ${JSON.stringify(res.headers)} ${JSON.stringify(body)}\n` +
          `(a node answers the same request with: ${direct})`;
        assert.equal(res.status, 400, `status${ctx}`);
        assert.equal(body, SESSION_UNKNOWN, `body${ctx}`);
        assert.match(res.headers['content-type'] || '', /^application\/json\b/, `content-type${ctx}`);
      });
    }

    it('a live sid sidpin never saw (handshake made directly on node1) is answered by sidpin itself: 400, never forwarded', T, async () => {
      // A proxy that forwarded unknown sids to some node would reach node1 (where the session is alive)
      // in some of these tries and get 200 / 101.
      const direct = await rawRequest(`${nodes[0].url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(direct.status, 200, 'direct handshake on node1');
      const sid = JSON.parse(decode(direct, 'direct handshake').slice(1)).sid;
      const path = `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
      try {
        const answers = [];
        for (let i = 0; i < 6; i++) {
          const post = i % 2 === 0;
          const res = await rawRequest(`${sp.url}${path}`, post
            ? { method: 'POST', body: '40', headers: { 'content-type': 'text/plain;charset=UTF-8' } }
            : { method: 'GET' });
          answers.push(`${post ? 'POST 40' : 'GET'} -> ${res.status} ${decode(res, 'answer').slice(0, 80)}`);
        }
        const WebSocket = require('ws');
        const ws = await withTimeout(new Promise((resolve) => {
          const sock = new WebSocket(`${sp.url.replace('http:', 'ws:')}/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}`);
          sock.on('unexpected-response', (req, res) => { resolve(`upgrade -> ${res.statusCode}`); res.resume(); sock.terminate(); });
          sock.on('open', () => { resolve('upgrade -> 101'); sock.terminate(); });
          sock.on('error', (e) => resolve(`upgrade -> error ${e.message}`));
        }), WAIT_MS, 'the answer to the upgrade');
        answers.push(ws);
        const wrong = answers.filter((a) => !/ -> 400( \{"code":1,"message":"Session ID unknown"\})?$/.test(a));
        assert.deepEqual(wrong, [], `sid ${sid} (alive on node1, never seen by sidpin) through sidpin:\n${answers.join('\n')}`);
      } finally {
        const bye = await rawRequest(`${nodes[0].url}${path}`, { method: 'POST', body: '1' }).catch(() => null);
        assert.ok(bye, 'closing the direct session on node1');
      }
    });

    it('a closed session\'s sid answers 400 Session ID unknown too', T, async () => {
      const base = `${sp.url}/socket.io/?EIO=4&transport=polling`;
      const hs = await rawRequest(base);
      assert.equal(hs.status, 200);
      const sid = JSON.parse(decode(hs, 'handshake').slice(1)).sid;
      const url = `${base}&sid=${encodeURIComponent(sid)}`;
      const bye = await rawRequest(url, { method: 'POST', body: '1', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      assert.equal(bye.status, 200, 'POST 1 (close)');
      // The node ends the session as it reads the close packet; give it a bounded moment.
      let last = null;
      for (let i = 0; i < 20; i++) {
        last = await rawRequest(url);
        if (last.status === 400) break;
        await sleep(50);
      }
      assert.equal(last.status, 400, `GET after close: ${last.status} ${last.body}`);
      assert.equal(decode(last, 'GET after close'), SESSION_UNKNOWN);
    });

    it('a WebSocket upgrade with an unknown sid is refused with HTTP 400', T, async () => {
      const WebSocket = require('ws');
      for (const eio of [4, 3]) {
        const url = `${sp.url.replace('http:', 'ws:')}/socket.io/?EIO=${eio}&transport=websocket&sid=doesnotexist`;
        const outcome = await withTimeout(new Promise((resolve) => {
          const ws = new WebSocket(url);
          ws.on('unexpected-response', (req, res) => {
            let body = '';
            res.on('data', (d) => { body += d; });
            res.on('end', () => { resolve({ status: res.statusCode, headers: res.headers, body }); ws.terminate(); });
            res.on('error', () => resolve({ status: res.statusCode, headers: res.headers, body }));
          });
          ws.on('open', () => { resolve({ status: 101, body: 'the upgrade was accepted' }); ws.terminate(); });
          ws.on('error', (e) => resolve({ status: null, body: `error: ${e.message}` }));
        }), WAIT_MS, `the answer to the WebSocket upgrade ${url}`);
        assert.equal(outcome.status, 400, `WebSocket upgrade with an unknown sid (EIO=${eio}): ${JSON.stringify(outcome)}`);
        // Engine.IO servers (engine.io's abortUpgrade, and the Go chatnode) refuse such an upgrade with the
        // text body "Session ID unknown"; the JSON of the polling answer is fine too.
        assert.ok(['Session ID unknown', SESSION_UNKNOWN].includes(outcome.body),
          `body of the refused upgrade (EIO=${eio}): ${JSON.stringify(outcome.body)}`);
      }
    });
  });
});
