// Builds and runs the plain C++ kernel test program (test/native/), then the addon's JavaScript tests.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const script = join(root, 'test/native/run.sh');
if (!existsSync(script)) {
  console.log('test:native: no native tests yet');
  process.exit(0);
}
const r = spawnSync('bash', [script], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
