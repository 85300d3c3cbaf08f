// Builds the native addon with node-gyp (incrementally: configure once, then build). A failed build is not fatal
// for users (the engine falls back to the TypeScript reference and says why), but CI sets APL_REQUIRE_NATIVE=1 so a
// broken build fails the run. `--rebuild` forces a clean build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const nativeDir = join(root, 'native');
if (!existsSync(join(nativeDir, 'binding.gyp'))) {
  console.log('build-native: no native/binding.gyp yet, skipping');
  process.exit(0);
}
const require = createRequire(import.meta.url);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const jobs = String(Math.max(1, Math.min(4, availableParallelism())));
const gypRun = (...args) => spawnSync(process.execPath, [gyp, ...args], { cwd: nativeDir, stdio: 'inherit' }).status;
let status = 0;
if (process.argv.includes('--rebuild') || !existsSync(join(nativeDir, 'build', 'config.gypi'))) {
  status = gypRun('configure');
}
if (status === 0) status = gypRun('build', '--jobs', jobs);
if (status !== 0) {
  const msg = 'build-native: the native addon failed to build; apl-quant will use the slower TypeScript reference.';
  if (process.env.APL_REQUIRE_NATIVE === '1') {
    console.error(`${msg} (APL_REQUIRE_NATIVE=1, so this is an error)`);
    process.exit(1);
  }
  console.warn(msg);
}
