// Shared by both launchers: bundles the suite for the extension host and prepares the test workspace.
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

/** Lines the suite logs with this prefix are the suite's own output (see suite/harness.ts, same constant). */
export const SUITE_PREFIX = '[apl-itest] ';

function findTests(dir) {
  const out = [];
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (f.endsWith('.itest.ts')) out.push(p);
  }
  return out;
}

/**
 * Bundles test/integration/suite/index.ts and every *.itest.ts beside it (one CommonJS file each, `vscode`
 * external) into `outDir`; index.js discovers the *.itest.js files next to it at run time. Returns the path of
 * index.js (the extensionTestsPath).
 */
export async function bundleSuite(root, outDir) {
  const suiteDir = join(root, 'test', 'integration', 'suite');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const entries = [join(suiteDir, 'index.ts'), ...findTests(suiteDir)].map((p) => relative(root, p));
  await build({
    absWorkingDir: root,
    entryPoints: entries,
    outbase: 'test/integration/suite',
    outdir: outDir,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    external: ['vscode', '*.node'],
    logLevel: 'warning',
  });
  return join(outDir, 'index.js');
}

/** Copies the committed test workspace (test/integration/workspace) to a fresh folder and returns its path. */
export function prepareWorkspace(root, dest) {
  rmSync(dest, { recursive: true, force: true });
  const src = join(root, 'test', 'integration', 'workspace');
  if (existsSync(src)) cpSync(src, dest, { recursive: true });
  else mkdirSync(dest, { recursive: true });
  return dest;
}
