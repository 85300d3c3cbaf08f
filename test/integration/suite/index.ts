// The suite's entry (extensionTestsPath): both launchers load the bundled index.js and call run(). It discovers
// the *.itest.js files bundled beside it, runs their tests in file order with a bounded timeout each, prints
// `ok <name>` / `not ok <name>` and a closing `N passed, N failed, N skipped`, and throws when a test failed, so the
// extension host exits non-zero. APL_ITEST_GREP selects tests by name.
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { out, registry, screenshot, withTimeout } from './harness';

function findTests(dir: string): string[] {
  const found: string[] = [];
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) found.push(...findTests(p));
    else if (f.endsWith('.itest.js')) found.push(p);
  }
  return found;
}

export async function run(): Promise<void> {
  const load = createRequire(__filename);
  const grep = process.env.APL_ITEST_GREP || '';
  let passed = 0;
  let skipped = 0;
  const failed: string[] = [];
  const t0 = Date.now();
  out(
    `suite: running in VS Code ${(await import('vscode')).version} (${process.env.APL_ITEST_LAUNCHER ?? 'electron'})`,
  );
  for (const file of findTests(__dirname)) {
    const before = registry().length;
    try {
      load(file);
    } catch (e) {
      failed.push(relative(__dirname, file));
      out(`not ok ${relative(__dirname, file)} (failed to load)\n  ${String((e as Error)?.stack ?? e)}`);
      continue;
    }
    for (const t of registry().slice(before)) {
      if (grep && !t.name.includes(grep)) continue;
      if (t.skip) {
        skipped++;
        out(`ok ${t.name} # SKIP ${t.skip}`);
        continue;
      }
      const start = Date.now();
      try {
        await withTimeout(Promise.resolve().then(t.fn), t.timeoutMs, `test "${t.name}"`);
        passed++;
        out(`ok ${t.name} (${Date.now() - start} ms)`);
      } catch (e) {
        failed.push(t.name);
        const err = e as Error;
        out(`not ok ${t.name} (${Date.now() - start} ms)`);
        out(
          `  ${String(err?.stack ?? err)
            .split('\n')
            .slice(0, 12)
            .join('\n  ')}`,
        );
      }
    }
  }
  // The workbench as the suite leaves it (the launcher cannot take it after the extension host has exited).
  await screenshot('zz-final').catch((e) => out(`(final screenshot failed: ${(e as Error).message})`));
  out(
    `${passed} passed, ${failed.length} failed${skipped ? `, ${skipped} skipped` : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  );
  if (failed.length) throw new Error(`integration tests failed: ${failed.join('; ')}`);
}
