'use strict';
// Issue 7 end to end: the admin page at / in a real browser. Headless Debian Chromium (/usr/bin/chromium),
// driven by playwright-core, in front of one sidpin (memory store, admin listener on a free loopback port,
// admin.token_env set) and three Go chatnodes with 9 live socket.io-client v4 sessions (3 on default
// transports, then upgraded; 3 polling only; 3 websocket only). Without Chromium the test FAILS (it never
// skips): `apt-get install chromium`.
//   sign in   / shows the sign-in form (401) and nothing of the nodes or pins; a wrong token shows "Wrong
//             token."; the right one signs in: an HttpOnly SameSite=Strict cookie that is not the token.
//   nodes     the nodes table has one row per node, "up", with its live sessions.
//   pins      the pins table lists the 9 sessions with their node and transport; a search by sid shows
//             that pin only; the node and transport filters show exactly the matching pins.
//   drain     the Drain button of node1 brings the page back with node1 "draining" (and an Undrain
//             button); GET /api/nodes agrees; a new session avoids node1; Undrain restores "up".
//   artifact  a full-page screenshot with node1 draining: e2e/artifacts/admin-page.png.
//   cross-origin  (issue 11) a page of another local server (127.0.0.1, another port: same-site, so the
//             browser sends it the sign-in cookie too) auto-submits a drain form to the admin listener and
//             fires a no-cors fetch at the API's drain: both answer 403 and no node drains; a page that frames
//             the admin page gets nothing (X-Frame-Options / frame-ancestors).
//   kick      the Kick button of a polling session (searched by sid) removes its pin and ends the session.
//   sign out  the Sign out button ends the session: the sign-in form again, the cookie gone, and the old
//             cookie with its CSRF token drives nothing; signing in again gives another cookie.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { startNode, sleep } = require('../lib/chat-cluster');
const {
  startAdminSidpin, adminRequest, nodesOf, waitUntil, FollowedClient, PIN_TRANSPORT, tail, countBy,
} = require('../lib/admin-helpers');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACT = path.join(__dirname, '..', 'artifacts', 'admin-page.png');
const NAMES = ['node1', 'node2', 'node3'];

function report(line) {
  console.log(`[admin-page] ${line}`);
}

// chromiumOrFail loads playwright-core and checks that Debian's Chromium is there; both missing things
// fail the test with what to do.
function chromiumOrFail() {
  let playwright;
  try {
    playwright = require('playwright-core');
  } catch (err) {
    throw new Error(`playwright-core is not installed (${err.message}): run \`npm ci\` in e2e/ (it is in e2e/package-lock.json)`);
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the admin page test needs Debian's Chromium (apt-get install chromium; ` +
      'scripts/test.sh installs it when it runs as root)');
  }
  return playwright.chromium;
}

it(`Debian's Chromium is installed at ${CHROMIUM} and playwright-core can be loaded`, () => {
  chromiumOrFail();
});

describe('the admin page at / in headless Chromium', { timeout: 90000 }, () => {
  const token = crypto.randomBytes(24).toString('base64url');
  const nodes = [];
  let sp;
  let browser;
  let page;
  let attacker; // the other local site of the cross-origin test
  const clients = [];
  const pageErrors = [];
  const t0 = Date.now();
  const ctx = () => `\nsidpin output (tail):\n${sp ? tail(sp.proc) : '-'}`;

  before(async () => {
    const chromium = chromiumOrFail();
    for (const name of NAMES) nodes.push(await startNode(name, {}));
    sp = await startAdminSidpin('page', { nodes, token, store: 'memory' });
    for (const kind of ['default', 'polling', 'websocket']) {
      for (let i = 0; i < 3; i++) clients.push(new FollowedClient(sp.url, { kind, label: `${kind}#${i}` }));
    }
    const ready = (c) => c.node !== null && (c.kind !== 'default' || c.transport() === 'websocket');
    await waitUntil(() => clients.every((c) => ready(c) || c.errors.length > 0), 10000);
    assert.deepEqual(clients.filter((c) => !ready(c) || c.errors.length).map((c) => `${c.label}: ${c.errors.join(' | ') || 'not ready'}`), [],
      `clients not welcomed (default ones: not upgraded) within 10 s${ctx()}`);
    // The pins have their settled transport before the page is read.
    await waitUntil(async () => {
      const r = await adminRequest(sp.admin, 'GET', '/api/pins?limit=1000', { token });
      return r.status === 200 && r.json.pins.length === clients.length &&
        r.json.pins.every((p) => p.transport === PIN_TRANSPORT[clients.find((c) => c.engineId() === p.sid)?.kind]);
    }, 5000, 100);
    const tb = Date.now();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
    const context = await browser.newContext({ viewport: { width: 1500, height: 1000 } });
    page = await context.newPage();
    page.setDefaultTimeout(10000);
    page.setDefaultNavigationTimeout(15000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    report(`${clients.length} sessions ${JSON.stringify(countBy(clients, (c) => c.node))}; Chromium ${browser.version()} launched in ${Date.now() - tb} ms; setup ${Date.now() - t0} ms`);
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (attacker) attacker.server.close();
    for (const c of clients) c.close();
    await sleep(100);
    if (sp) { await sp.proc.stop(); sp.remove(); }
    await Promise.all(nodes.map((n) => n.proc.stop()));
    report(`whole file ${Date.now() - t0} ms`);
  });

  // submit clicks a submit button and waits for the page it leads to (after redirects) to load.
  async function submit(locator) {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: 15000 }), locator.click()]);
  }

  // rowsOf reads a table body as arrays of cell texts.
  async function rowsOf(tableId) {
    return page.$$eval(`#${tableId} tbody tr`, (trs) => trs.map((tr) => ({
      node: tr.getAttribute('data-node'),
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
    })));
  }

  // nodeRows is the nodes table as "pool/name" -> {state, sessions, button}.
  async function nodeRows() {
    const rows = await page.$$eval('#nodes tbody tr[data-node]', (trs) => trs.map((tr) => ({
      key: tr.getAttribute('data-node'),
      state: tr.querySelector('.state')?.textContent.trim(),
      sessions: Number(tr.querySelector('.sessions')?.textContent.trim()),
      button: tr.querySelector('form.drain button')?.textContent.trim(),
    })));
    return Object.fromEntries(rows.map((r) => [r.key, r]));
  }

  // pinRows is the pins table as [{sid, pool, node, transport, eio}] (the "no pins match" row excluded).
  async function pinRows() {
    return (await rowsOf('pins')).filter((r) => r.cells.length >= 5)
      .map((r) => ({ sid: r.cells[0], pool: r.cells[1], node: r.cells[2], transport: r.cells[3], eio: r.cells[4] }));
  }

  it('sign in: the form first (401, nothing shown), "Wrong token." for a wrong token, then the page with an HttpOnly cookie that is not the token', async () => {
    const resp = await page.goto(`${sp.admin}/`);
    assert.equal(resp.status(), 401, 'GET / without the cookie');
    assert.equal(await page.locator('form[action="/login"] input[name="token"]').count(), 1, 'the sign-in form');
    const html = await page.content();
    const leaked = [...NAMES, ...clients.map((c) => c.engineId())].filter((s) => html.includes(s));
    assert.deepEqual(leaked, [], 'the sign-in page names nodes or sids');

    await page.fill('input[name="token"]', 'not-the-token');
    await submit(page.locator('form[action="/login"] button[type="submit"]'));
    assert.match(await page.locator('body').innerText(), /Wrong token\./, 'the answer to a wrong token');
    assert.equal(await page.locator('#nodes').count(), 0, 'nodes table after a wrong token');

    await page.fill('input[name="token"]', token);
    await submit(page.locator('form[action="/login"] button[type="submit"]'));
    assert.equal(new URL(page.url()).pathname, '/', `after signing in: ${page.url()}`);
    assert.equal(await page.locator('#nodes').count(), 1, `the nodes table after signing in; page: ${(await page.locator('body').innerText()).slice(0, 300)}${ctx()}`);
    const cookies = await page.context().cookies(sp.admin);
    const c = cookies.find((x) => x.name === 'sidpin_admin');
    assert.ok(c, `sidpin_admin cookie: ${JSON.stringify(cookies)}`);
    assert.equal(c.httpOnly, true, 'cookie HttpOnly');
    assert.equal(c.sameSite, 'Strict', 'cookie SameSite');
    assert.ok(!c.value.includes(token), 'the cookie holds the token itself');
    assert.equal(c.path, '/', 'cookie Path');
    assert.equal(c.secure, false, 'cookie Secure over plain HTTP');
    assert.ok(c.expires > Date.now() / 1000 && c.expires <= Date.now() / 1000 + 12 * 3600 + 60, `cookie expiry ${c.expires}: within 12 h`);
    report(`signed in; cookie ${c.name} HttpOnly=${c.httpOnly} SameSite=${c.sameSite}, ${c.value.length} chars, not the token`);
  });

  it('nodes: one row per node, "up", with its live sessions', async () => {
    const perNode = countBy(clients, (c) => c.node);
    const rows = await nodeRows();
    assert.deepEqual(Object.keys(rows).sort(), NAMES.map((n) => `chat/${n}`), 'node rows');
    for (const n of NAMES) {
      assert.equal(rows[`chat/${n}`].state, 'up', `${n} state`);
      assert.equal(rows[`chat/${n}`].sessions, perNode[n] || 0, `${n} sessions`);
      assert.equal(rows[`chat/${n}`].button, 'Drain', `${n} button`);
    }
    const urls = (await rowsOf('nodes')).map((r) => r.cells[2]);
    assert.deepEqual(urls.sort(), nodes.map((n) => n.url).sort(), 'node URLs');
    report(`nodes table: ${JSON.stringify(rows)}`);
  });

  it('pins: the table lists the sessions; a search by sid shows that pin only; node and transport filters match', async () => {
    const pins = await pinRows();
    const want = (list) => list.map((c) => c.engineId()).sort();
    assert.deepEqual(pins.map((p) => p.sid).sort(), want(clients), 'sids in the pins table');
    for (const p of pins) {
      const c = clients.find((x) => x.engineId() === p.sid);
      assert.deepEqual([p.pool, p.node, p.transport, p.eio], ['chat', c.node, PIN_TRANSPORT[c.kind], '4'], `${c.label}: row ${JSON.stringify(p)}`);
    }

    const target = clients.find((c) => c.kind === 'websocket');
    await page.fill('form.search input[name="sid"]', target.engineId());
    await submit(page.locator('form.search button[type="submit"]'));
    assert.equal(new URL(page.url()).searchParams.get('sid'), target.engineId(), `search URL ${page.url()}`);
    const found = await pinRows();
    assert.deepEqual(found.map((p) => [p.sid, p.node, p.transport]), [[target.engineId(), target.node, 'websocket']], 'search by sid');

    await page.fill('form.search input[name="sid"]', 'no-such-sid');
    await submit(page.locator('form.search button[type="submit"]'));
    assert.equal((await pinRows()).length, 0, 'search by an unknown sid');
    assert.match(await page.locator('#pins').innerText(), /no pins match/);

    const node = target.node;
    await page.fill('form.search input[name="sid"]', '');
    await page.selectOption('form.search select[name="node"]', `chat/${node}`);
    await submit(page.locator('form.search button[type="submit"]'));
    assert.deepEqual((await pinRows()).map((p) => p.sid).sort(), want(clients.filter((c) => c.node === node)), `node filter chat/${node}`);

    await page.selectOption('form.search select[name="node"]', '');
    await page.selectOption('form.search select[name="transport"]', 'upgraded');
    await submit(page.locator('form.search button[type="submit"]'));
    assert.deepEqual((await pinRows()).map((p) => p.sid).sort(), want(clients.filter((c) => c.kind === 'default')), 'transport filter upgraded');
    report(`pins table: ${pins.length} rows; sid search, node filter (${node}) and transport filter (upgraded) matched`);
  });

  it('drain: the Drain button of node1 shows it "draining", GET /api/nodes agrees, a new session avoids it; Undrain restores', async () => {
    await page.goto(`${sp.admin}/`);
    const row = page.locator('#nodes tr[data-node="chat/node1"]');
    await submit(row.locator('form.drain button[type="submit"]'));
    assert.equal(new URL(page.url()).pathname, '/', `after Drain: ${page.url()}`);
    const rows = await nodeRows();
    assert.equal(rows['chat/node1'].state, 'draining', `node1 on the page after Drain: ${JSON.stringify(rows)}${ctx()}`);
    assert.equal(rows['chat/node1'].button, 'Undrain');
    assert.equal(await row.locator('.state-draining').count(), 1, 'node1 state badge class');
    for (const n of ['node2', 'node3']) assert.equal(rows[`chat/${n}`].state, 'up');
    const { map } = await nodesOf(sp.admin, token);
    assert.equal(map['chat/node1'].state, 'draining', `GET /api/nodes: ${JSON.stringify(map['chat/node1'])}`);
    assert.equal(map['chat/node1'].draining, true);
    assert.equal(map['chat/node1'].sessions, rows['chat/node1'].sessions, 'sessions on the page and in the API');

    // The charts are drawn from real samples (one every 5 s): wait (≤ 20 s) for three, on the paused page.
    let samples = 0;
    await waitUntil(async () => {
      await page.goto(`${sp.admin}/?pause=1`);
      samples = Number(await page.locator('#chart-sessions').getAttribute('data-samples'));
      return samples >= 3;
    }, 20000, 1000);
    assert.ok(samples >= 3, `the sessions chart has ${samples} samples after 20 s`);
    assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 0, 'the paused page refreshes itself');
    const lines = await page.locator('#chart-sessions polyline').evaluateAll((ls) => ls.map((l) => ({
      node: l.getAttribute('data-series'), points: l.getAttribute('points').trim().split(/\s+/).length,
    })));
    assert.ok(lines.length >= 3 && lines.every((l) => l.points === samples), `sessions lines ${JSON.stringify(lines)} for ${samples} samples`);
    const caption = await page.locator('#chart-sessions figcaption').textContent();
    assert.match(caption, /top ([1-9]|\d{2,})/, `the sessions chart is drawn from the live sessions: ${caption}`);
    const bars = await page.$$eval('#nodes rect.share-bar', (rs) => rs.map((r) => Number(r.getAttribute('width'))));
    assert.ok(Math.abs(bars.reduce((a, b) => a + b, 0) - 100) < 1, `the share bars add up to ${bars}`);
    report(`charts: ${samples} samples; sessions lines ${JSON.stringify(lines)}; caption "${caption.trim()}"; bars ${bars}`);

    fs.mkdirSync(path.dirname(ARTIFACT), { recursive: true });
    await page.screenshot({ path: ARTIFACT, fullPage: true });
    const size = fs.statSync(ARTIFACT).size;
    assert.ok(size > 5000, `screenshot ${ARTIFACT}: ${size} bytes`);
    report(`screenshot of the page with node1 draining: ${ARTIFACT} (${size} bytes)`);

    const extra = [];
    for (let i = 0; i < 3; i++) {
      const c = new FollowedClient(sp.url, { kind: 'polling', label: `after-drain#${i}` });
      extra.push(c);
      clients.push(c);
    }
    await waitUntil(() => extra.every((c) => c.node !== null || c.errors.length > 0), 8000);
    assert.deepEqual(extra.map((c) => c.node).filter((n) => n === 'node1' || n === null), [],
      `new sessions while node1 drains: ${extra.map((c) => `${c.label} ${c.node} ${c.errors.join(' | ')}`).join('; ')}`);

    await submit(page.locator('#nodes tr[data-node="chat/node1"] form.drain button[type="submit"]'));
    const back = await nodeRows();
    assert.equal(back['chat/node1'].state, 'up', `node1 after Undrain: ${JSON.stringify(back)}`);
    assert.equal(back['chat/node1'].button, 'Drain');
    assert.equal((await nodesOf(sp.admin, token)).map['chat/node1'].state, 'up', 'GET /api/nodes after Undrain');
    assert.deepEqual(pageErrors, [], 'page errors');
  });

  // startAttackerSite serves, on another loopback port, a site the operator happens to open: /attack
  // fires a no-cors fetch at the API's drain of node2, then auto-submits a drain form of node1 (with a
  // guessed CSRF token) to the admin listener; /frame frames the admin page. It notes whether the browser
  // sent it the admin sign-in cookie (cookies do not separate ports).
  function startAttackerSite(admin) {
    const seen = { cookie: false, requests: [] };
    const pages = {
      '/attack': '<!doctype html><title>attacker</title>' +
        `<form method="post" action="${admin}/ui/nodes/chat/node1/drain"><input type="hidden" name="csrf" value="guessed"></form>` +
        `<script>fetch(${JSON.stringify(`${admin}/api/nodes/chat/node2/drain`)}, { method: 'POST', mode: 'no-cors', credentials: 'include' })` +
        '.catch(() => {}).finally(() => document.forms[0].submit());</script>',
      '/frame': `<!doctype html><title>framer</title><iframe src="${admin}/" width="900" height="600"></iframe>`,
    };
    const server = http.createServer((req, res) => {
      seen.requests.push(req.url);
      if (/(^|;\s*)sidpin_admin=/.test(req.headers.cookie || '')) seen.cookie = true;
      const body = pages[req.url];
      res.writeHead(body ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
      res.end(body || 'no such page');
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve({ server, seen, url: `http://127.0.0.1:${server.address().port}` }));
    });
  }

  async function nodeStates() {
    const { map } = await nodesOf(sp.admin, token);
    return Object.fromEntries(NAMES.map((n) => [n, map[`chat/${n}`].state]));
  }

  it('cross-origin: a page on another 127.0.0.1 port posts drains with the sign-in cookie: 403, nothing drains; framing the page shows nothing', async () => {
    const allUp = Object.fromEntries(NAMES.map((n) => [n, 'up']));
    assert.deepEqual(await nodeStates(), allUp, 'nodes before the attack');
    attacker = await startAttackerSite(sp.admin);
    const tab = await page.context().newPage(); // the operator's browser: same cookies
    tab.setDefaultTimeout(10000);
    const answers = [];
    tab.on('response', (r) => {
      if (r.url().startsWith(sp.admin)) answers.push({ method: r.request().method(), url: r.url().slice(sp.admin.length), status: r.status() });
    });
    try {
      const formAnswer = tab.waitForResponse((r) => r.url() === `${sp.admin}/ui/nodes/chat/node1/drain`, { timeout: 15000 });
      await tab.goto(`${attacker.url}/attack`);
      const resp = await formAnswer;
      await tab.waitForLoadState('load');
      await waitUntil(() => answers.some((a) => a.url === '/api/nodes/chat/node2/drain'), 5000);
      const text = await tab.locator('body').innerText();
      report(`attack from ${attacker.url}: cookie sent to the attacker's port too: ${attacker.seen.cookie}; admin answers ${JSON.stringify(answers)}; page: ${text.slice(0, 160)}`);
      assert.ok(attacker.seen.cookie, 'premise: the browser sends the admin sign-in cookie to another port of 127.0.0.1 (same site)');
      assert.equal(resp.status(), 403, `the auto-submitted drain form: ${resp.status()} ${text.slice(0, 300)}${ctx()}`);
      assert.match(text, /cross-origin request refused/, 'the refusal says why');
      assert.deepEqual(answers.filter((a) => a.method === 'POST' && a.status !== 403), [], 'every cross-origin POST refused with 403');
      assert.deepEqual(await nodeStates(), allUp, 'nodes after the attack');

      const framed = tab.waitForResponse((r) => r.url() === `${sp.admin}/`, { timeout: 15000 });
      await tab.goto(`${attacker.url}/frame`);
      const frameResp = await framed;
      assert.equal(frameResp.headers()['x-frame-options'], 'DENY', 'X-Frame-Options of the admin page');
      await sleep(300);
      const shown = [];
      for (const f of tab.frames().filter((x) => x !== tab.mainFrame())) {
        shown.push(await f.locator('#nodes, form[action="/logout"]').count().catch(() => 0));
      }
      report(`framed: ${tab.frames().length - 1} frame(s) at ${tab.frames().slice(1).map((f) => f.url()).join(' ')}; admin elements shown ${JSON.stringify(shown)}`);
      assert.equal(shown.reduce((a, b) => a + b, 0), 0, 'the framed admin page rendered its nodes table or buttons');
    } finally {
      await tab.close();
    }
  });

  it('kick: the Kick button of a polling session (searched by sid) removes its pin and ends the session', async () => {
    const victim = clients.find((c) => c.kind === 'polling' && c.node !== null && c.errors.length === 0);
    const sid = victim.engineId();
    await page.goto(`${sp.admin}/?sid=${encodeURIComponent(sid)}`);
    assert.deepEqual((await pinRows()).map((p) => p.sid), [sid], 'the search by sid');
    const form = page.locator('#pins form');
    assert.equal(await form.getAttribute('action'), `/ui/pins/${encodeURIComponent(sid)}/kick`, 'the Kick form action');
    assert.equal(await form.locator('input[type="hidden"][name="csrf"]').count(), 1, 'the Kick form carries the CSRF token');
    await submit(form.locator('button[type="submit"]'));
    assert.equal(new URL(page.url()).pathname, '/', `after Kick: ${page.url()} ${(await page.locator('body').innerText()).slice(0, 200)}`);
    const r = await adminRequest(sp.admin, 'GET', `/api/pins/${encodeURIComponent(sid)}`, { token });
    assert.equal(r.status, 404, `the kicked pin: ${r.status} ${r.body.slice(0, 200)}`);
    const ended = await waitUntil(() => victim.errors.some((e) => e.startsWith('disconnect')), 5000);
    assert.ok(ended, `the kicked session did not end: ${victim.events.map((e) => e.what).join(', ')}`);
    report(`kicked ${sid}: pin gone, client saw ${victim.errors.join(' | ')}`);
  });

  it('sign out: the sign-in form again, the cookie gone; the old cookie and its CSRF token drive nothing; a new sign-in gives another cookie', async () => {
    await page.goto(`${sp.admin}/`);
    const old = (await page.context().cookies(sp.admin)).find((x) => x.name === 'sidpin_admin');
    const csrf = await page.locator('#nodes tr[data-node="chat/node1"] form.drain input[name="csrf"]').getAttribute('value');
    assert.ok(old && csrf, `signed in with a CSRF token before Sign out: cookie ${JSON.stringify(old)}, csrf ${csrf}`);
    await submit(page.locator('form[action="/logout"] button[type="submit"]'));
    assert.equal(await page.locator('form[action="/login"] input[name="token"]').count(), 1, 'the sign-in form after Sign out');
    assert.equal(await page.locator('#nodes').count(), 0, 'nodes table after Sign out');
    assert.deepEqual((await page.context().cookies(sp.admin)).filter((x) => x.name === 'sidpin_admin'), [], 'the cookie after Sign out');

    const headers = { cookie: `sidpin_admin=${old.value}`, origin: sp.admin, 'sec-fetch-site': 'same-origin' };
    const g = await adminRequest(sp.admin, 'GET', '/', { headers });
    assert.equal(g.status, 401, `GET / with the signed-out cookie: ${g.status}`);
    const d = await adminRequest(sp.admin, 'POST', '/ui/nodes/chat/node1/drain', { headers, body: `csrf=${encodeURIComponent(csrf)}` });
    assert.equal(d.status, 401, `drain with the signed-out cookie and its CSRF token: ${d.status} ${d.body.slice(0, 200)}`);
    assert.equal((await nodeStates()).node1, 'up', 'node1 after a drain with the signed-out cookie');

    await page.fill('input[name="token"]', token);
    await submit(page.locator('form[action="/login"] button[type="submit"]'));
    assert.equal(await page.locator('#nodes').count(), 1, 'the page after signing in again');
    const again = (await page.context().cookies(sp.admin)).find((x) => x.name === 'sidpin_admin');
    assert.ok(again && again.value !== old.value, 'signing in again gives another cookie');
    assert.deepEqual(pageErrors, [], 'page errors');
    report(`signed out (old cookie: GET / ${g.status}, drain ${d.status}); signed in again with another cookie`);
  });
});
