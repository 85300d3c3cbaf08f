// Bundles the extension client, the language server, the CLI and the webview scripts with esbuild.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const production = process.argv.includes('--production');
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', absWorkingDir: root };

const node = [
  { entry: 'client/src/extension.ts', out: 'dist/client.js', external: ['vscode'] },
  { entry: 'server/src/server.ts', out: 'dist/server.js', external: [] },
  { entry: 'server/src/cli.ts', out: 'dist/cli.js', external: [] },
  // `apl-quant convert` alone (bin/apl-quant.js loads it for convert): a third of cli.js to compile at start.
  { entry: 'server/src/cli-convert.ts', out: 'dist/cli-convert.js', external: [] },
];
mkdirSync(join(root, 'dist'), { recursive: true });
const jobs = [];
for (const n of node) {
  if (!existsSync(join(root, n.entry))) continue;
  jobs.push(
    build({
      ...common,
      entryPoints: [n.entry],
      outfile: n.out,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      // Prefer ESM builds: jsonc-parser's UMD main uses dynamic requires esbuild cannot follow.
      mainFields: ['module', 'main'],
      external: [...n.external, '*.node'],
    }),
  );
}
// Browser-side webview bundles: every client/webview/*.ts file with no Node APIs.
const webDir = join(root, 'client/webview');
if (existsSync(webDir)) {
  const entries = readdirSync(webDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .map((f) => `client/webview/${f}`);
  if (entries.length) {
    jobs.push(
      build({
        ...common,
        entryPoints: entries,
        outdir: 'dist/webview',
        platform: 'browser',
        format: 'iife',
        target: 'es2022',
      }),
    );
  }
}
await Promise.all(jobs);
// V8's code cache of the convert bundle (bin/v8-cache.js), made by a plain `node` as bin/apl-quant.js runs it: the
// start of `apl-quant convert` deserializes the compiled top level instead of parsing the bundle.
const convertBundle = join(root, 'dist/cli-convert.js');
if (existsSync(convertBundle)) {
  const r = spawnSync(process.execPath, [join(root, 'bin/v8-cache.js'), '--write', convertBundle], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error(`bin/v8-cache.js --write ${convertBundle} failed`);
}
