// test/helpers/tmp.ts: the folders tempDir makes are gone once the process that made them has ended — on a normal
// exit (the end of a test file), after the caller removed one itself, and when the process is killed by SIGTERM.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/tmp';

const helper = join(__dirname, '..', 'helpers', 'tmp.ts');
/** The helper's folders under `root` (tsx keeps its own cache folder under TMPDIR too). */
const ours = (root: string) => readdirSync(root).filter((n) => n.startsWith('apl-'));

/** Node source for a child that makes folders with the helper (under TMPDIR) and prints their paths. */
function childScript(tail: string): string {
  return [
    `const { tempDir } = require(${JSON.stringify(helper)});`,
    "const { existsSync, mkdirSync, rmSync, writeFileSync } = require('node:fs');",
    "const { join } = require('node:path');",
    "const a = tempDir('apl-tmptest-a-');",
    "mkdirSync(join(a, 'sub', 'deeper'), { recursive: true });",
    "writeFileSync(join(a, 'sub', 'deeper', 'f.bin'), Buffer.alloc(4096, 7));",
    "const b = tempDir('apl-tmptest-b-');",
    'rmSync(b, { recursive: true });', // removed by the caller first: removal at exit must not throw
    "if (!existsSync(join(a, 'sub', 'deeper', 'f.bin'))) process.exit(3);",
    'console.log(JSON.stringify([a, b]));',
    tail,
  ].join('\n');
}

test('tempDir folders are removed when the process exits normally', () => {
  const root = tempDir('apl-tmptest-root-');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', childScript('process.exitCode = 0;')], {
    env: { ...process.env, TMPDIR: root },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const [a, b] = JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as string[];
  assert.ok(a.startsWith(join(root, 'apl-tmptest-a-')), a); // made under os.tmpdir(), i.e. TMPDIR
  assert.ok(b.startsWith(join(root, 'apl-tmptest-b-')), b);
  assert.equal(existsSync(a), false, `${a} left behind`);
  assert.equal(existsSync(b), false);
  assert.deepEqual(ours(root), []);
  assert.match(r.stderr, /^$/); // the double removal of b raised nothing
});

test('tempDir folders are removed when the process is killed by SIGTERM, which still ends it', async () => {
  const root = tempDir('apl-tmptest-root-');
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', childScript('setInterval(() => {}, 1000);')], {
    env: { ...process.env, TMPDIR: root },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const paths = await new Promise<string[]>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.trim()) as string[]);
    });
    child.on('exit', () => reject(new Error(`child ended before printing its folders: ${err}`)));
  });
  assert.equal(existsSync(paths[0]), true, 'the folder lives while its process runs');
  const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (code, sig) => resolve([code, sig])),
  );
  child.kill('SIGTERM');
  const [code, sig] = await ended;
  assert.deepEqual([code, sig], [null, 'SIGTERM'], err);
  assert.equal(existsSync(paths[0]), false, `${paths[0]} left behind`);
  assert.deepEqual(ours(root), []);
});
