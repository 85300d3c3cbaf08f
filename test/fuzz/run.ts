// `npm run fuzz -- [--seconds N] [--jobs J] [--seed S] [--ci] [--coverage] [target…]`: runs each fuzz target in its
// own worker process for N seconds (default 10; --ci: the short bounded pass of about 20 s in all, run by
// `npm test`), J at a time (default 1), and prints per target the inputs tried, findings, the slowest input and the
// peak memory; with --coverage also the lines and functions covered in the target's modules (COVERS), from Node's
// V8 coverage (test/fuzz/lib/coverage.ts; per module in test-output/fuzz/<target>.json).
// A worker that dies (a crash of the native addon) or stops answering (a synchronous hang) is a finding too: the
// input it was on is read from its `.current` file. Findings are written to test-output/fuzz/; exit 1 when any.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CoverageSummary, coverageLine, summarizeCoverage } from './lib/coverage';
import { COVERS, TARGETS } from './targets';

/** Not a fast-check target: the language server under load has its own driver. */
const SCRIPTS: Record<string, string> = { 'lsp-load': 'lsp-load.ts' };
const ALL = [...Object.keys(TARGETS), ...Object.keys(SCRIPTS)];

const ROOT = join(__dirname, '../..');
const OUT = join(ROOT, 'test-output/fuzz');

interface Summary {
  target: string;
  inputs: number;
  findings: { kind: string; message: string; input: string; seed: number; path?: string }[];
  slowestMs?: number;
  slowestInput?: string;
  p50Ms?: number;
  p99Ms?: number;
  peakRssMB?: number;
  extra?: Record<string, unknown>;
  coverage?: CoverageSummary;
}

function parse(argv: string[]) {
  let seconds = 10;
  let jobs = 1;
  let seed = 1;
  let ci = false;
  let coverage = false;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') seconds = Number(argv[++i]);
    else if (a === '--jobs') jobs = Number(argv[++i]);
    else if (a === '--seed')
      seed = argv[i + 1] === 'random' ? (Date.now() ^ (process.pid << 8)) >>> 0 : Number(argv[++i]);
    else if (a === '--ci') ci = true;
    else if (a === '--coverage') coverage = true;
    else if (a === '--list') {
      for (const n of ALL) process.stdout.write(`${n}\n`);
      process.exit(0);
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else names.push(a);
    if (a === '--seed' && argv[i + 1] === 'random') i++;
  }
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('--seconds needs a positive number');
  const unknown = names.filter((n) => !ALL.includes(n));
  if (unknown.length) throw new Error(`unknown target(s): ${unknown.join(', ')} (known: ${ALL.join(', ')})`);
  // lsp-load is run by name: its server start-up alone takes half a minute on a loaded machine.
  const chosen = names.length ? names : Object.keys(TARGETS);
  // The CI pass: about 20 s of fuzzing in all, two workers at a time.
  if (ci) {
    jobs = 2;
    seconds = Math.max(1, Math.round((20 * jobs) / chosen.length));
  }
  return { seconds, jobs, seed, chosen, coverage };
}

function runOne(name: string, seconds: number, seed: number, coverage: boolean): Promise<Summary> {
  const out = join(OUT, `${name}.json`);
  const current = `${out}.current`;
  for (const f of [out, current]) if (existsSync(f)) writeFileSync(f, '');
  // Every process and thread of the worker writes its V8 coverage here when it exits.
  const covDir = join(OUT, 'coverage', name);
  if (coverage) {
    rmSync(covDir, { recursive: true, force: true });
    mkdirSync(covDir, { recursive: true });
  }
  const env = { ...process.env, APL_FUZZ: '1', ...(coverage ? { NODE_V8_COVERAGE: covDir } : {}) };
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      SCRIPTS[name]
        ? ['--import', 'tsx', join(__dirname, SCRIPTS[name]), String(seconds), String(seed), out]
        : [
            '--max-old-space-size=2048',
            '--import',
            'tsx',
            join(__dirname, 'worker.ts'),
            name,
            String(seconds),
            String(seed),
            out,
          ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    // Setup, the last input's time limit and shrinking get 300 s on top (a niced worker on a shared machine) (the language server's start-up under tsx,
    // 240 s: it took 35 s on a machine loaded 18 times over its cores); past that the worker is stuck.
    let killed = false;
    const watchdog = setTimeout(
      () => {
        killed = true;
        child.kill('SIGKILL');
      },
      (seconds + (SCRIPTS[name] ? 240 : 300)) * 1000,
    );
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      const last = existsSync(current) ? readFileSync(current, 'utf8') : '';
      let s: Summary | undefined;
      try {
        s = JSON.parse(readFileSync(out, 'utf8')) as Summary;
      } catch {}
      if (!s) {
        const kind = killed ? 'hang' : signal ? 'crash' : 'exit';
        const message = killed
          ? `worker stopped answering (synchronous hang) past ${seconds + (SCRIPTS[name] ? 240 : 300)} s`
          : `worker ended by ${signal ?? `exit code ${code}`}: ${stderr.trim()}`;
        s = { target: name, inputs: -1, findings: [{ kind, message, input: last, seed }] };
      }
      if (coverage) {
        const covers = COVERS[name] ?? ['server/src/'];
        s.coverage = summarizeCoverage(covDir, ROOT, (p) => covers.some((c) => p.startsWith(c)));
      }
      writeFileSync(out, JSON.stringify(s, null, 1));
      resolve(s);
    });
  });
}

async function main(): Promise<void> {
  const { seconds, jobs, seed, chosen, coverage } = parse(process.argv.slice(2));
  mkdirSync(OUT, { recursive: true });
  process.stdout.write(`fuzz: ${chosen.length} target(s), ${seconds} s each, ${jobs} at a time, seed ${seed}\n`);
  const queue = [...chosen];
  const results: Summary[] = [];
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: Math.min(jobs, queue.length) }, async () => {
      for (let n = queue.shift(); n; n = queue.shift()) {
        const s = await runOne(n, seconds, seed, coverage);
        results.push(s);
        const extra = s.extra
          ? ` ${Object.entries(s.extra)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`
          : '';
        process.stdout.write(
          `${n.padEnd(14)} inputs ${String(s.inputs).padStart(8)}  findings ${s.findings.length}  ` +
            `p50 ${(s.p50Ms ?? 0).toFixed(2)} ms  p99 ${(s.p99Ms ?? 0).toFixed(1)} ms  slowest ${(s.slowestMs ?? 0).toFixed(0)} ms  ` +
            `peak ${s.peakRssMB ?? '?'} MB${extra}\n`,
        );
        if (s.coverage) process.stdout.write(`  coverage: ${coverageLine(s.coverage)}\n`);
        for (const f of s.findings) {
          process.stdout.write(`  ${f.kind}: ${f.message.split('\n')[0]}\n    input: ${f.input.slice(0, 300)}\n`);
        }
      }
    }),
  );
  const total = results.reduce((a, s) => a + Math.max(0, s.inputs), 0);
  const found = results.reduce((a, s) => a + s.findings.length, 0);
  process.stdout.write(
    `fuzz: ${total} inputs in ${((Date.now() - t0) / 1000).toFixed(0)} s, ${found} finding(s); details in ${OUT}\n`,
  );
  process.exitCode = found ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${(e as Error).message}\n`);
  process.exitCode = 2;
});
