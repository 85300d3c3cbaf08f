// mkdirpSync (server/src/formats/mkdirp.ts): Node 20's `recursive: true` never returns under /proc; ours makes each
// missing folder once and throws the first refusal.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { mkdirpSync } from '../../../server/src/formats/mkdirp';

const root = mkdtempSync(join(tmpdir(), 'apl-mkdirp-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('nested folders made, an existing one left as it is, a file in the way refused', () => {
  const deep = join(root, 'a', 'b', 'c');
  mkdirpSync(deep);
  assert.ok(statSync(deep).isDirectory());
  mkdirpSync(deep); // again: nothing to do
  mkdirpSync(join(root, 'a'));
  const file = join(root, 'file');
  writeFileSync(file, 'x');
  assert.throws(() => mkdirpSync(join(file, 'sub')), /ENOTDIR|EEXIST/);
  assert.ok(statSync(file).isFile());
});

test('a path where mkdir answers ENOENT under an existing parent (/proc) fails at once', (t) => {
  if (process.platform !== 'linux' || !existsSync('/proc/self')) {
    t.skip('needs Linux /proc');
    return;
  }
  // In a child with a time limit: Node's own recursive mkdir would spin there forever, blocking its event loop.
  const mod = join(__dirname, '../../../server/src/formats/mkdirp.ts');
  const code = `const m = require(${JSON.stringify(mod)});
    try { m.mkdirpSync('/proc/apl-mkdirp-test/x'); console.log('made'); } catch (e) { console.log('refused', e.code); }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.signal, null, 'still running after 20 s');
  assert.match(r.stdout, /^refused (ENOENT|EACCES|EPERM)$/m, `${r.stdout}${r.stderr}`);
});
