// Extension activation cost outside VS Code: fresh `node` processes load dist/client.js with a stand-in `vscode`
// module and call activate(); the baseline, measured in the same run, is loading vscode-languageclient/node alone
// (the biggest library the client bundles). Prints medians and ratios; asserts nothing. Needs `npm run build`.
// The real figure inside VS Code is logged by the extension ("activated in … ms") and printed by the integration
// suite ("activation took … ms").
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');
const bundle = join(root, 'dist', 'client.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 9);

// Runs in each child: a deep stand-in for `vscode` (every property a callable, constructible proxy), then the
// measured work; prints {requireMs, activateMs}.
const prelude = `
const Module = require('module');
const fake = () => {
  const store = {};
  return new Proxy(function () {}, {
    get: (t, p) => (p in store ? store[p] : p === 'then' ? undefined : p === 'prototype' ? t.prototype
      : p === Symbol.toPrimitive ? () => '' : fake()),
    set: (t, p, v) => { store[p] = v; return true; },
    apply: () => fake(),
    construct: () => fake(),
  });
};
// A plain object with the namespaces as own keys: esbuild's __toESM copies own keys only.
const names = Object.fromEntries(['window', 'workspace', 'commands', 'languages', 'tasks', 'extensions', 'env', 'Uri',
  'EventEmitter', 'Disposable', 'StatusBarAlignment', 'ConfigurationTarget', 'ProgressLocation', 'TaskScope',
  'TaskRevealKind', 'TaskPanelKind', 'CustomExecution', 'Task', 'ViewColumn', 'QuickPickItemKind', 'TabInputWebview',
  'TabInputText', 'DiagnosticSeverity', 'Range', 'Position', 'ThemeColor', 'ThemeIcon', 'l10n'].map((k) => [k, fake()]));
// __esModule: TypeScript's __importStar (vscode-languageclient) then uses the proxy itself, not a copy of its keys.
names.__esModule = true;
const vscode = new Proxy(names, {
  get: (t, p) => (p in t || p === 'then' || p === '__esModule' ? t[p] : (t[p] = fake())),
});
const load = Module._load;
Module._load = function (req, ...rest) { return req === 'vscode' ? vscode : load.call(this, req, ...rest); };
`;

function child(body: string): { requireMs: number; activateMs: number } {
  const r = spawnSync(process.execPath, ['-e', prelude + body], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (!existsSync(bundle)) {
  console.log('client bench: dist/client.js missing (run npm run build); skipped');
  process.exit(0);
}
const clientBody = `
const path = require('path');
const t0 = performance.now();
const ext = require(${JSON.stringify(bundle)});
const t1 = performance.now();
const ctx = { subscriptions: [], asAbsolutePath: (p) => path.join(${JSON.stringify(root)}, p),
  extension: { packageJSON: require(${JSON.stringify(join(root, 'package.json'))}) },
  extensionUri: vscode.Uri.file(${JSON.stringify(root)}), extensionPath: ${JSON.stringify(root)},
  secrets: vscode, globalState: vscode, workspaceState: vscode };
ext.activate(ctx);
const t2 = performance.now();
console.log(JSON.stringify({ requireMs: t1 - t0, activateMs: t2 - t1 }));
process.exit(0);
`;
const baseBody = `
const t0 = performance.now();
require('vscode-languageclient/node');
const t1 = performance.now();
console.log(JSON.stringify({ requireMs: t1 - t0, activateMs: 0 }));
process.exit(0);
`;

const base: number[] = [];
const req: number[] = [];
const act: number[] = [];
for (let i = 0; i < RUNS; i++) {
  base.push(child(baseBody).requireMs);
  const c = child(clientBody);
  req.push(c.requireMs);
  act.push(c.activateMs);
}
const b = median(base);
const r = median(req);
const a = median(act);
console.log(`client bundle: ${(statSync(bundle).size / 1e6).toFixed(2)} MB, ${RUNS} fresh processes each`);
console.log(`baseline  require vscode-languageclient/node : ${b.toFixed(1)} ms (1.00x)`);
console.log(`client    require dist/client.js            : ${r.toFixed(1)} ms (${(r / b).toFixed(2)}x)`);
console.log(`client    activate() (synchronous part)     : ${a.toFixed(1)} ms (${(a / b).toFixed(2)}x)`);
console.log(`client    require + activate                : ${(r + a).toFixed(1)} ms (${((r + a) / b).toFixed(2)}x)`);
