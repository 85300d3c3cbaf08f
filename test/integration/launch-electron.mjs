#!/usr/bin/env node
// Launcher for machines with internet or a local VS Code: runs the same suite (test/integration/suite) inside
// desktop VS Code through @vscode/test-electron. VSCODE_EXECUTABLE_PATH names a local VS Code; otherwise
// test-electron downloads one (VSCODE_VERSION, default 'stable') into .vscode-test/. The offline launcher
// (launch.mjs, code-server + Chromium) is the one `npm run test:integration` runs.
// Options: --grep <text>; APL_SKIP_BUILD=1 skips the build.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSuite, prepareWorkspace } from './prepare.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const outDir = join(root, 'test-output', 'integration-electron');
const args = process.argv.slice(2);
const grepIdx = args.indexOf('--grep');
const grep = grepIdx >= 0 ? args[grepIdx + 1] : process.env.APL_ITEST_GREP;

async function main() {
  if (process.env.APL_SKIP_BUILD !== '1') {
    for (const s of ['build.mjs', 'build-native.mjs']) {
      const r = spawnSync(process.execPath, [join(root, 'scripts', s)], { cwd: root, stdio: 'inherit' });
      if (r.status !== 0) return r.status ?? 1;
    }
  }
  mkdirSync(outDir, { recursive: true });
  const suite = await bundleSuite(root, join(outDir, 'suite'));
  const workspace = prepareWorkspace(root, join(outDir, 'workspace'));
  const { runTests } = await import('@vscode/test-electron');
  try {
    return await runTests({
      vscodeExecutablePath: process.env.VSCODE_EXECUTABLE_PATH || undefined,
      version: process.env.VSCODE_VERSION || undefined,
      extensionDevelopmentPath: root,
      extensionTestsPath: suite,
      extensionTestsEnv: { APL_ITEST_GREP: grep ?? '', APL_ITEST_LAUNCHER: 'electron' },
      launchArgs: [
        workspace,
        '--disable-extensions',
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        `--user-data-dir=${join(outDir, 'user-data')}`,
      ],
    });
  } catch (e) {
    console.error(`integration (electron): ${e?.message ?? e}`);
    return 1;
  }
}

main().then((code) => process.exit(code));
