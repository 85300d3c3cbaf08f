// bin/apl-quant.js loads the convert-only bundle (dist/cli-convert.js, server/src/cli-convert.ts) for `convert` and
// dist/cli.js for every other command; `convert` through either prints the same and exits the same. Needs the
// bundles (`npm run build`): skipped with the reason without them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { root, tempDir } from './helpers';

const bundles = existsSync(join(root, 'dist/cli-convert.js')) && existsSync(join(root, 'dist/cli.js'));
const skip = bundles ? false : 'dist/cli-convert.js or dist/cli.js not built (npm run build)';

/** Runs node with a preload that lists the dist bundles it loaded. */
function run(dir: string, args: string[]) {
  const hook = join(dir, 'hook.js');
  const out = join(dir, `loaded-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    hook,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache).filter((f) => f.includes('/dist/')).map((f) => f.slice(f.indexOf('/dist/') + 1)))));`,
  );
  const r = spawnSync(process.execPath, ['--require', hook, ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded: JSON.parse(readFileSync(out, 'utf8')) };
}

test('convert runs from its own bundle, with the same output and status as through dist/cli.js', { skip }, (t) => {
  const dir = tempDir(t);
  for (const args of [
    ['--help'],
    ['/no/such/model', '--bits', '4', '--out', join(dir, 'out')],
    ['/no/such/model', '--bits', '3'],
  ]) {
    const own = run(dir, [join(root, 'bin/apl-quant.js'), 'convert', ...args]);
    const all = run(dir, [join(root, 'dist/cli.js'), 'convert', ...args]);
    assert.deepEqual(own.loaded, ['dist/cli-convert.js'], `${args.join(' ')}: only the convert bundle loaded`);
    assert.deepEqual(all.loaded, ['dist/cli.js']);
    assert.equal(own.status, all.status, args.join(' '));
    assert.equal(own.stdout, all.stdout, args.join(' '));
    assert.equal(own.stderr, all.stderr, args.join(' '));
  }
});

test('every other command still runs from dist/cli.js', { skip }, (t) => {
  const dir = tempDir(t);
  const r = run(dir, [join(root, 'bin/apl-quant.js'), '--version']);
  assert.equal(r.status, 0);
  assert.deepEqual(r.loaded, ['dist/cli.js']);
  const inspect = run(dir, [join(root, 'bin/apl-quant.js'), 'inspect']);
  assert.deepEqual(inspect.loaded, ['dist/cli.js']);
  assert.match(inspect.stderr, /apl-quant inspect: /);
});
