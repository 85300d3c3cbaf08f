// Checks (or with --fix, applies) clang-format on the C++ and CUDA sources under native/ and test/native/.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const require = createRequire(import.meta.url);
const files = [];
const walk = (d) => {
  let names = [];
  try {
    names = readdirSync(d);
  } catch {
    return;
  }
  for (const f of names) {
    const p = join(d, f);
    if (f === 'build' || f === 'node_modules') continue;
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(cc|cpp|h|hpp|cu|cuh)$/.test(f)) files.push(relative(root, p));
  }
};
walk(join(root, 'native'));
walk(join(root, 'test/native'));
if (!files.length) process.exit(0);
const bin = join(require.resolve('clang-format/package.json'), '..', 'bin', 'linux_x64', 'clang-format');
const fix = process.argv.includes('--fix');
const args = fix ? ['-i', '--style=file', ...files] : ['--dry-run', '--Werror', '--style=file', ...files];
const r = spawnSync(bin, args, { cwd: root, stdio: 'inherit' });
if (r.error) {
  console.error(`clang-format could not run (${r.error.message})`);
  process.exit(1);
}
if (r.status !== 0 && !fix) console.error('clang-format: run `npm run format` to fix the C++ formatting above');
process.exit(r.status ?? 1);
