// bin/v8-cache.js: a bundle loaded from V8's code cache as `require` would load it (module object, require,
// __filename, __dirname, require.cache), and loaded from source whenever the cache is not the source's own.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { root, tempDir } from './helpers';

const req = createRequire(__filename);
const { load } = req(join(root, 'bin/v8-cache.js')) as {
  load: (file: string, parent?: unknown) => 'cache' | 'rejected' | 'none';
};

/** Writes the cache in another process, as the build does (compiling here would fill V8's in-process cache). */
function write(file: string): void {
  const r = spawnSync(process.execPath, [join(root, 'bin/v8-cache.js'), '--write', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** A module that reports how it was loaded, and requires a sibling through its own require. */
function makeModule(dir: string, name: string, value: number): string {
  writeFileSync(join(dir, 'sibling.js'), 'module.exports = 40;\n');
  const file = join(dir, name);
  writeFileSync(
    file,
    `exports.value = ${value} + require('./sibling');\nexports.self = module;\nexports.where = [__filename, __dirname];\n`,
  );
  return file;
}

test('a module with its cache: loaded from it, as require would load it', (t) => {
  const dir = tempDir(t);
  const file = makeModule(dir, 'a.js', 2);
  write(file);
  assert.equal(load(file), 'cache');
  const m = req.cache[file];
  assert.ok(m, 'in require.cache');
  assert.equal(m.exports.value, 42);
  assert.equal(m.exports.self, m, 'module is the cached module');
  assert.deepEqual(m.exports.where, [file, dir]);
  assert.ok(m.loaded);
  assert.equal(req(file), m.exports, 'a later require gets the same exports');
});

test('no cache, or a cache made from other source: loaded from the source', (t) => {
  const dir = tempDir(t);
  const none = makeModule(dir, 'none.js', 1);
  assert.equal(load(none), 'none');
  assert.equal(req(none).value, 41);
  // The same length, other source (a rebuilt bundle beside its old cache): the hash differs, the cache is not used.
  const file = makeModule(dir, 'b.js', 3);
  write(file);
  makeModule(dir, 'b.js', 4);
  assert.equal(load(file), 'none');
  assert.equal(req(file).value, 44, 'the new source ran');
});

test("a cache V8 refuses (its header not this V8's): compiled from source, runs the same", (t) => {
  const dir = tempDir(t);
  const file = makeModule(dir, 'c.js', 5);
  write(file);
  const cache = readFileSync(`${file}.v8cache`);
  // V8's header damaged (as another V8 version's would not match), the data's hash made again to match.
  const data = cache.subarray(40);
  data.fill(7, 0, 8);
  createHash('sha1').update(data).digest().copy(cache, 20);
  writeFileSync(`${file}.v8cache`, cache);
  assert.equal(load(file), 'rejected');
  assert.equal(req(file).value, 45);
});

test('a damaged cache (its data not what was written): loaded from the source', (t) => {
  const dir = tempDir(t);
  const file = makeModule(dir, 'd.js', 6);
  write(file);
  const cache = readFileSync(`${file}.v8cache`);
  cache[cache.length - 1] ^= 1;
  writeFileSync(`${file}.v8cache`, cache);
  assert.equal(load(file), 'none');
  assert.equal(req(file).value, 46);
});

test('the build wrote dist/cli-convert.js.v8cache, and apl-quant convert takes it (or says no bundle)', () => {
  const bundle = join(root, 'dist/cli-convert.js');
  const script = `const how = require(${JSON.stringify(join(root, 'bin/v8-cache.js'))}).load(${JSON.stringify(bundle)}, module); process.stdout.write(how);`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'cache', 'the built cache is the bundle’s own and V8 takes it');
});
