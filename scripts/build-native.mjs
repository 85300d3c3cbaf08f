// Builds the native addon with node-gyp. A failed build is not fatal for users (the engine falls back to the
// TypeScript reference and says why), but CI sets APL_REQUIRE_NATIVE=1 so a broken build fails the run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const nativeDir = join(root, 'native');
if (!existsSync(join(nativeDir, 'binding.gyp'))) {
  console.log('build-native: no native/binding.gyp yet, skipping');
  process.exit(0);
}
const require = createRequire(import.meta.url);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const jobs = String(Math.max(1, Math.min(4, (await import('node:os')).availableParallelism())));
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--jobs', jobs], { cwd: nativeDir, stdio: 'inherit' });
if (r.status !== 0) {
  const msg = 'build-native: the native addon failed to build; apl-quant will use the slower TypeScript reference.';
  if (process.env.APL_REQUIRE_NATIVE === '1') {
    console.error(`${msg} (APL_REQUIRE_NATIVE=1, so this is an error)`);
    process.exit(1);
  }
  console.warn(msg);
}
