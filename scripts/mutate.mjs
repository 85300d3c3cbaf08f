// `npm run mutate [-- GROUP...]`: Stryker over the module groups of stryker.config.mjs (all of them, or those named),
// one group at a time, then a table of mutation scores per module. Slow (minutes per group on two cores); never part
// of `npm test` or CI. Reports land in reports/mutation/ (ignored); Stryker's sandbox is .stryker-tmp/ (ignored).
//   APL_MUTATE_CONCURRENCY=2   test processes at once (default 1)
//   --summary                  print the table from the existing reports only
//   --survivors                also list each surviving (and uncovered) mutant: file:line, mutator, replacement
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { GROUPS } = await import(join(root, 'stryker.config.mjs'));
const args = process.argv.slice(2);
const summaryOnly = args.includes('--summary');
const listSurvivors = args.includes('--survivors');
const names = args.filter((a) => !a.startsWith('--'));
for (const n of names) {
  if (!GROUPS[n]) {
    console.error(`mutate: no group '${n}' (groups: ${Object.keys(GROUPS).join(', ')})`);
    process.exit(2);
  }
}
const chosen = names.length ? names : Object.keys(GROUPS);
const STRYKER = join(root, 'node_modules/@stryker-mutator/core/dist/src/stryker.js');
const reportOf = (g) => join(root, 'reports', 'mutation', `${g}.json`);

let failed = false;
if (!summaryOnly) {
  for (const g of chosen) {
    console.log(`\n=== mutate ${g}: ${GROUPS[g].about}`);
    const t0 = Date.now();
    // Stryker's API, not its CLI: the CLI refuses Node 20 by a version guard, and the API runs fine on it.
    const code = `const { Stryker } = await import(${JSON.stringify(STRYKER)});
const results = await new Stryker({ configFile: 'stryker.config.mjs' }).runMutationTest();
if (!results.length) process.exit(1);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, APL_MUTATE_GROUP: g },
    });
    console.log(`=== ${g}: ${((Date.now() - t0) / 60000).toFixed(1)} min, exit ${r.status}`);
    if (r.status !== 0) failed = true;
  }
}

// Score = (killed + timeout) / (killed + timeout + survived + no coverage), as Stryker counts it.
const rows = [['group', 'module', 'mutants', 'killed', 'timeout', 'survived', 'no cov', 'errors', 'score']];
for (const g of chosen) {
  if (!existsSync(reportOf(g))) {
    rows.push([g, '(no report)', '', '', '', '', '', '', '']);
    continue;
  }
  const report = JSON.parse(readFileSync(reportOf(g), 'utf8'));
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const c = (s) => mutants.filter((m) => m.status === s).length;
    const [k, t, s, n] = [c('Killed'), c('Timeout'), c('Survived'), c('NoCoverage')];
    const errors = c('CompileError') + c('RuntimeError');
    const den = k + t + s + n;
    rows.push([
      g,
      file,
      String(mutants.length),
      String(k),
      String(t),
      String(s),
      String(n),
      String(errors),
      den ? `${((100 * (k + t)) / den).toFixed(1)} %` : 'n/a',
    ]);
  }
}
if (listSurvivors) {
  for (const g of chosen) {
    if (!existsSync(reportOf(g))) continue;
    const report = JSON.parse(readFileSync(reportOf(g), 'utf8'));
    for (const [file, { mutants }] of Object.entries(report.files)) {
      for (const m of mutants.filter((x) => x.status === 'Survived' || x.status === 'NoCoverage')) {
        const at = `${file}:${m.location.start.line}:${m.location.start.column}`;
        const repl = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 100);
        console.log(`${g}  ${m.status === 'Survived' ? 'survived' : 'no cover'}  ${at}  ${m.mutatorName}: ${repl}`);
      }
    }
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const table = rows.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
table.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
console.log(`\n${table.join('\n')}`);
if (existsSync(join(root, 'reports', 'mutation'))) {
  writeFileSync(join(root, 'reports', 'mutation', 'summary.txt'), `${table.join('\n')}\n`);
}
process.exit(failed ? 1 : 0);
