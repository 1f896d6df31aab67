'use strict';
// The built sidpin binary validates every example config and reports every problem of a broken one.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { runSync, REPO } = require('../lib/procs');

for (const name of ['demo', 'redis', 'reference']) {
  test(`sidpin -check accepts configs/${name}.yaml`, () => {
    const r = runSync('sidpin', ['-check', '-config', `configs/${name}.yaml`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`configs/${name}\\.yaml: ok: `));
  });
}

test('sidpin -check lists every problem of a broken config with its field path', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidpin-e2e-'));
  const file = path.join(dir, 'broken.yaml');
  fs.writeFileSync(file, [
    'listen: 127.0.0.1:99999',
    'store: {kind: etcd}',
    'pools:',
    '  - name: chat',
    '    nodes:',
    '      - {name: n1, url: "htp://127.0.0.1:3101", weight: 0}',
    '',
  ].join('\n'));
  const r = runSync('sidpin', ['-check', '-config', file]);
  fs.rmSync(dir, { recursive: true });
  assert.equal(r.status, 1);
  for (const want of ['broken.yaml:1: listen:', 'broken.yaml:2: store.kind:',
    'broken.yaml:6: pools[0].nodes[0].url:', 'broken.yaml:6: pools[0].nodes[0].weight:']) {
    assert.ok(r.stderr.includes(want), `stderr lacks ${want}:\n${r.stderr}`);
  }
  assert.ok(fs.existsSync(path.join(REPO, 'configs', 'reference.yaml')));
});
