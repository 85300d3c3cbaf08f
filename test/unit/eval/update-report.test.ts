// `apl-quant eval --update-report` and `--json-progress` (what "APL: Evaluate Model…" runs): the figures go into the
// conversion's accuracy report as convert --eval writes them (end_to_end, the verdict restated, the manifest's
// accuracy_pass), the report is checked before any model runs, nothing is written when the evaluation fails, and
// a conversion holding the outputs' lock is refused rather than raced, and a signal mid-evaluation leaves no trace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { convertModel } from '../../../server/src/convert/pipeline';
import type { EvalEvent } from '../../../server/src/protocol';
import { evalCli, root } from './cli-helper';

let work = '';
let text = '';

const cli = evalCli;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'apl-eval-update-'));
  await convertModel({ source: join(root, 'test/fixtures/tiny-llama'), bits: 4, name: 'tiny', outDir: work }, () => {});
  const syl = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'zo', 'be', 'da', 'fu', 'go', 'hi', 'ja', 'pe', 'so'];
  text = join(work, 'text.txt');
  writeFileSync(text, Array.from({ length: 300 }, (_, i) => syl[(i * 7) % 16] + syl[(i * 11 + 3) % 16]).join(' '));
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A fresh copy of the converted outputs; its manifest, report paths and a reader of both. */
function outputs(name: string) {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const f of readdirSync(work, { withFileTypes: true })) {
    if (f.isFile() && f.name.startsWith('tiny_')) copyFileSync(join(work, f.name), join(dir, f.name));
  }
  const manifest = join(dir, 'tiny_manifest_q4.json');
  const report = join(dir, 'tiny_accuracy_q4.json');
  const read = () => ({
    manifest: JSON.parse(readFileSync(manifest, 'utf8')),
    report: JSON.parse(readFileSync(report, 'utf8')),
  });
  return { dir, manifest, report, read };
}

test('--update-report stores end_to_end and restates the verdict; the table says where', () => {
  const o = outputs('stored');
  const before = o.read();
  assert.equal(before.report.end_to_end, undefined);
  assert.equal(before.report.pass, true);
  const r = cli([o.manifest, '--text', text, '--ctx', '64', '--chunks', '2', '--update-report']);
  assert.equal(r.status, 0, r.stderr);
  const after = o.read();
  const e = after.report.end_to_end;
  assert.equal(e.tokens_scored, 2 * 31);
  assert.equal(e.ctx, 64);
  assert.deepEqual(e.text, { name: 'text.txt', sha256: e.text.sha256, tokens: e.text.tokens });
  assert.match(e.text.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(e.thresholds, { kld_mean: 0.05, same_top: 0.9 });
  assert.equal(e.pass, e.kld_mean <= 0.05 && e.same_top >= 0.9);
  assert.equal(after.report.pass, e.pass);
  assert.match(after.report.verdict_basis, /end to end \(62 tokens of text\.txt, ctx 64, 2 chunks\)/);
  assert.equal(after.manifest.metadata.accuracy_pass, e.pass);
  // The per-weight part of the report is kept as it was.
  assert.deepEqual(after.report.weights, before.report.weights);
  assert.match(r.stdout, new RegExp(`report {5}${o.report.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: end_to_end stored`));
  // No temporary or lock is left behind.
  assert.deepEqual(
    readdirSync(o.dir).filter((f) => f.startsWith('.')),
    [],
  );
});

test('a failing end-to-end verdict turns the report and the manifest to FAIL', () => {
  const o = outputs('fails');
  const { report, manifest } = o.read();
  // The 8-bit thresholds (mean KLD ≤ 0.005, same top ≥ 97 %) on a 4-bit random-weight model: not met. (The manifest
  // says 8 bits too: a report whose bits differ from the manifest's is refused as another conversion's.)
  writeFileSync(o.report, JSON.stringify({ ...report, bits: 8 }));
  writeFileSync(o.manifest, JSON.stringify({ ...manifest, metadata: { ...manifest.metadata, default_bits: 8 } }));
  const r = cli([o.manifest, '--text', text, '--ctx', '64', '--chunks', '2', '--update-report', '--json-progress']);
  assert.equal(r.status, 0, r.stderr);
  const after = o.read();
  assert.equal(after.report.end_to_end.pass, false, JSON.stringify(after.report.end_to_end).slice(0, 200));
  assert.equal(after.report.pass, false);
  assert.equal(after.manifest.metadata.accuracy_pass, false);
  // --json-progress: one progress event per chunk, then the result naming the report and the verdict.
  const events = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EvalEvent);
  assert.deepEqual(
    events.slice(0, -1),
    [1, 2].map((done) => ({ type: 'progress', done, total: 2 })),
  );
  const last = events.at(-1);
  assert.ok(last?.type === 'result');
  assert.equal(last.report, o.report);
  assert.equal(last.pass, false);
  assert.equal(last.result.tokens_scored, 62);
});

test('the report is checked before the models run; a refusal writes nothing', () => {
  const missing = outputs('missing');
  rmSync(missing.report);
  const bad = outputs('bad');
  writeFileSync(bad.report, '{"weights": 3}');
  const other = outputs('other');
  writeFileSync(other.report, JSON.stringify({ ...other.read().report, bits: 2 }));
  const locked = outputs('locked');
  // A live process (this test's) holds the outputs' lock, as a conversion into them would.
  writeFileSync(join(locked.dir, '.tiny_manifest_q4.json.apl-lock'), `${process.pid}\n`);
  const cases: [typeof missing, RegExp][] = [
    [missing, /tiny_accuracy_q4\.json: the accuracy report is missing$/],
    [bad, /tiny_accuracy_q4\.json: not an accuracy report of a 1, 2, 4 or 8-bit conversion/],
    [other, /tiny_accuracy_q4\.json: the report is of a 2-bit conversion, but tiny_manifest_q4\.json is 4-bit/],
    [
      locked,
      /tiny_manifest_q4\.json: a conversion or another evaluation \(process \d+\) holds these outputs; evaluate when/,
    ],
  ];
  for (const [o, re] of cases) {
    const before = readdirSync(o.dir).map((f) => [f, readFileSync(join(o.dir, f), 'utf8')]);
    const r = cli([o.manifest, '--text', text, '--ctx', '64', '--chunks', '2', '--update-report']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.deepEqual(
      readdirSync(o.dir).map((f) => [f, readFileSync(join(o.dir, f), 'utf8')]),
      before,
    );
  }
  // A failed evaluation (a text shorter than one chunk) leaves the report as it was, and releases the lock.
  const o = outputs('short');
  writeFileSync(join(o.dir, 'short.txt'), 'ka lo mi');
  const before = readFileSync(o.report, 'utf8');
  const r = cli([o.manifest, '--text', join(o.dir, 'short.txt'), '--ctx', '64', '--update-report']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /shorter than one chunk of 64/);
  assert.equal(readFileSync(o.report, 'utf8'), before);
  assert.deepEqual(
    readdirSync(o.dir).filter((f) => f.startsWith('.')),
    [],
  );
  // --json and --json-progress together is a usage error.
  assert.equal(cli([o.manifest, '--text', text, '--json', '--json-progress']).status, 2);
});

test('SIGTERM (Cancel in VS Code) mid-evaluation: status 143, the lock released, the report as it was', async () => {
  const o = outputs('cancelled');
  const long = join(o.dir, 'long.txt');
  const words = readFileSync(text, 'utf8');
  writeFileSync(long, Array.from({ length: 60 }, () => words).join(' '));
  const before = readFileSync(o.report, 'utf8');
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', join(root, 'server/src/cli.ts'), 'eval', o.manifest, '--text', long, '--ctx', '16'],
      ...['--update-report', '--json-progress'],
    ],
    { cwd: root, env: { ...process.env, APL_CLI_MAIN: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lock = join(o.dir, '.tiny_manifest_q4.json.apl-lock');
  let sawLock = false;
  const code = await new Promise<number | null>((resolve) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('"type":"progress"') && !child.killed) {
        sawLock = readdirSync(o.dir).includes(basename(lock));
        child.kill('SIGTERM');
      }
    });
    child.on('close', (c) => resolve(c));
  });
  assert.ok(sawLock, 'the lock is held while the evaluation runs');
  assert.equal(code, 143);
  assert.deepEqual(
    readdirSync(o.dir).filter((f) => f.startsWith('.')),
    [],
  );
  assert.equal(readFileSync(o.report, 'utf8'), before);
});
