// A bundle loaded with V8's code cache (issue 13, process start): `node scripts/build.mjs` writes
// `<bundle>.v8cache` beside dist/cli-convert.js (this file's `write`, run by a plain `node`), and bin/apl-quant.js
// loads the bundle through `load`, so V8 deserializes the compiled top level instead of parsing 0.5 MB again at every
// start. The cache begins with the SHA-1 of the source it was made from and that of V8's data: a bundle rebuilt
// without its cache (esbuild alone, a watch) is loaded as before, and so is one whose cache is damaged or that V8
// refuses (another Node version or V8 flags).
// Loaded as a CommonJS module with the same module object, require, __filename and __dirname as `require` gives.

const { createHash } = require('node:crypto');
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname } = require('node:path');
const vm = require('node:vm');

const HASH_BYTES = 20;
const hashOf = (src) => createHash('sha1').update(src).digest();

function compile(file, src, cachedData) {
  return new vm.Script(Module.wrap(src), { filename: file, cachedData });
}

/**
 * Loads `file` (absolute) as `require(file)` would, from its code cache where one made from the same source exists.
 * Returns how: 'cache' (V8 took it), 'rejected' (V8 refused it: compiled from source), 'none' (no cache for this
 * source: plain require). Source maps (--enable-source-maps) need Node's own loader: plain require then.
 */
function load(file, parent) {
  let cache;
  const maps = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`.includes('--enable-source-maps');
  try {
    if (!maps && !require.cache[file]) cache = readFileSync(`${file}.v8cache`);
  } catch {}
  const src = cache && cache.length > 2 * HASH_BYTES ? readFileSync(file, 'utf8') : undefined;
  const data = cache?.subarray(2 * HASH_BYTES);
  if (
    !src ||
    !hashOf(src).equals(cache.subarray(0, HASH_BYTES)) ||
    !hashOf(data).equals(cache.subarray(HASH_BYTES, 2 * HASH_BYTES))
  ) {
    require(file);
    return 'none';
  }
  const script = compile(file, src, data);
  const m = new Module(file, parent);
  m.filename = file;
  m.paths = Module._nodeModulePaths(dirname(file));
  require.cache[file] = m;
  try {
    script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, dirname(file));
  } catch (e) {
    delete require.cache[file];
    throw e;
  }
  m.loaded = true;
  return script.cachedDataRejected ? 'rejected' : 'cache';
}

/** Writes `<file>.v8cache` (the source's SHA-1, the data's, then V8's cached data for its top level), atomically. */
function write(file) {
  const src = readFileSync(file, 'utf8');
  const data = compile(file, src).createCachedData();
  const tmp = `${file}.v8cache.tmp-${process.pid}`;
  writeFileSync(tmp, Buffer.concat([hashOf(src), hashOf(data), data]));
  renameSync(tmp, `${file}.v8cache`);
}

module.exports = { load, write };

if (require.main === module && process.argv[2] === '--write') for (const f of process.argv.slice(3)) write(f);
