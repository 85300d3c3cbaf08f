// convert --eval (issue 12): the report's end_to_end section matches `apl-quant eval` on the same manifest, text,
// ctx and chunks; the schema accepts it, the one reader reads it (and older reports without it); the verdict states
// its basis; bad input is one line each and never takes the conversion's outputs away.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020';
import { errorCode } from '../../../server/src/convert/errors';
import { convertModel } from '../../../server/src/convert/pipeline';
import type { EvalResult } from '../../../server/src/protocol';
import { normalizeReport } from '../../../server/src/report/read';
import { root, tempDir } from './helpers';

const brown = join(root, 'test/fixtures/brown-tiny');
const heldout = join(brown, 'heldout.txt');
const schema = JSON.parse(readFileSync(join(root, 'schemas/accuracy-report.schema.json'), 'utf8'));
const compiled = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
const validate = Object.assign((x: unknown): boolean => compiled(x), {
  get errors() {
    return compiled.errors;
  },
});

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'server/src/cli.ts'), ...args], {
    cwd: root,
    env: { ...process.env, APL_CLI_MAIN: '1' },
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

test('convert --eval writes end_to_end equal to apl-quant eval; schema, reader and verdict basis agree', (t) => {
  const out = tempDir(t);
  const c = cli(['convert', brown, '--bits', '4', '--out', out, '--eval', '--eval-ctx', '64', '--eval-chunks', '3']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(
    c.stdout,
    /^end to end: PPL [\d.]+ vs float [\d.]+ .* over 93 tokens of heldout\.txt \(ctx 64, 3 chunks\) → pass$/m,
  );
  const report = readJson(join(out, 'brown-tiny_accuracy_q4.json'));
  const e = report.end_to_end;
  assert.ok(e, 'end_to_end written');
  const ev = cli([
    'eval',
    join(out, 'brown-tiny_manifest_q4.json'),
    '--text',
    heldout,
    '--ctx',
    '64',
    '--chunks',
    '3',
    '--json',
  ]);
  assert.equal(ev.status, 0, ev.stderr);
  const o = JSON.parse(ev.stdout) as EvalResult;
  for (const k of [
    'ppl',
    'ppl_float',
    'ppl_ratio',
    'kld_mean',
    'kld_median',
    'kld_p90',
    'kld_p99',
    'kld_p999',
    'kld_max',
    'same_top',
    'same_top_se',
    'dp_mean',
    'rms_dp',
  ] as const) {
    assert.equal(typeof e[k], 'number', k);
    assert.ok(Math.abs(e[k] - o[k]) <= 1e-9 * Math.max(1, Math.abs(o[k])), `${k}: report ${e[k]} vs eval ${o[k]}`);
  }
  assert.deepEqual(e.kld_histogram, o.kld_histogram);
  assert.equal(e.tokens_scored, 3 * 31);
  assert.equal(o.tokens_scored, 3 * 31);
  assert.equal(e.ctx, 64);
  assert.equal(e.chunks, 3);
  assert.equal(e.text.name, 'heldout.txt');
  assert.equal(e.text.sha256, o.text_sha256);
  const h = e.kld_histogram;
  assert.equal(h.counts.reduce((a: number, b: number) => a + b, 0) + h.below + h.above, e.tokens_scored);
  assert.deepEqual(e.thresholds, { kld_mean: 0.05, same_top: 0.9 });
  assert.equal(e.pass, e.kld_mean <= 0.05 && e.same_top >= 0.9);
  assert.equal(report.pass, e.pass && report.summary.failed === 0);
  assert.equal(readJson(join(out, 'brown-tiny_manifest_q4.json')).metadata.accuracy_pass, report.pass);
  // The verdict names its basis: the per-weight rule with its tolerances and the end-to-end thresholds.
  assert.match(
    report.verdict_basis,
    /^per weight: 30 of 30 weights have relative error and output error within tolerance \(2 % at 8 bits, 10 % at 4 bits\) — pass; /,
  );
  assert.match(
    report.verdict_basis,
    /end to end \(93 tokens of heldout\.txt, ctx 64, 3 chunks\): mean KLD [\d.e-]+ \(threshold ≤ 0\.05\) and same top [\d.]+ % \(threshold ≥ 90 %\) — pass$/,
  );
  // Schema and reader.
  assert.ok(validate(report), JSON.stringify(validate.errors));
  const m = normalizeReport(report);
  assert.equal(m.end_to_end?.kld_mean, e.kld_mean);
  assert.equal(m.end_to_end?.same_top, e.same_top);
  assert.equal(m.end_to_end?.text, 'heldout.txt');
  assert.equal(m.end_to_end?.histogram?.counts.length, 32);
  assert.equal(m.end_to_end?.error, null);
  assert.equal(m.verdict_basis, report.verdict_basis);
  // An older report (no end_to_end, no verdict_basis) still validates and reads.
  const { end_to_end: _e, verdict_basis: _v, ...old } = report;
  assert.ok(validate(old), JSON.stringify(validate.errors));
  const om = normalizeReport(old);
  assert.equal(om.end_to_end, null);
  assert.equal(om.verdict_basis, null);
  assert.equal(om.pass, report.pass);
  assert.deepEqual(om.warnings, []);
  // A broken section is a warning, not a throw; the schema refuses it.
  const broken = normalizeReport({ ...report, end_to_end: 3 });
  assert.equal(broken.end_to_end, null);
  assert.match(broken.warnings.join('\n'), /end_to_end is not an object/);
  assert.equal(validate({ ...report, end_to_end: { kld_mean: 'x' } }), false);
});

test('without --eval the basis says there is no end-to-end check; --eval-* need --eval', (t) => {
  const out = tempDir(t);
  const c = cli(['convert', brown, '--bits', '8', '--out', out]);
  assert.equal(c.status, 0, c.stderr);
  const report = readJson(join(out, 'brown-tiny_accuracy_q8.json'));
  assert.equal(report.end_to_end, undefined);
  assert.match(report.verdict_basis, /^per weight: .*; no end-to-end check \(convert --eval adds one\)$/);
  assert.ok(validate(report), JSON.stringify(validate.errors));
  const bad = cli(['convert', brown, '--bits', '8', '--out', out, '--eval-ctx', '64']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--eval-text, --eval-ctx and --eval-chunks need --eval/);
});

function assertOneLine(stderr: string, re: RegExp) {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], re);
}

test('bad input, one line each: a text shorter than one chunk; the outputs stay and the report notes it', (t) => {
  const out = tempDir(t);
  const short = join(out, 'short.txt');
  writeFileSync(short, 'The jury said it did find that the city was well run.');
  const c = cli([
    'convert',
    brown,
    '--bits',
    '4',
    '--out',
    out,
    '--eval',
    '--eval-text',
    short,
    '--eval-ctx',
    '64',
    '--json-progress',
  ]);
  assert.equal(c.status, 1, c.stderr);
  assertOneLine(
    c.stderr,
    /end-to-end check: .*short\.txt: the text is \d+ tokens, shorter than one chunk of 64 \(use a longer text or a smaller --eval-ctx\) \(the conversion's outputs are kept/,
  );
  for (const f of ['brown-tiny_quantized_q4.npz', 'brown-tiny_manifest_q4.json', 'brown-tiny_accuracy_q4.json']) {
    assert.ok(existsSync(join(out, f)), f);
  }
  const report = readJson(join(out, 'brown-tiny_accuracy_q4.json'));
  assert.match(report.end_to_end.error, /shorter than one chunk of 64/);
  assert.equal(report.pass, true, 'the weights alone decide');
  assert.match(
    report.verdict_basis,
    /the end-to-end check failed to run \(.*\), so the verdict rests on the weights alone$/,
  );
  assert.ok(validate(report), JSON.stringify(validate.errors));
  assert.match(normalizeReport(report).end_to_end?.error ?? '', /shorter than one chunk/);
  assert.equal(readdirSync(out).filter((f) => f.startsWith('.')).length, 0, 'no temporaries left');
});

test('bad input, one line each: a tokenizer that does not match the model', (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'model');
  cpSync(brown, src, { recursive: true });
  const tok = readJson(join(src, 'tokenizer.json'));
  tok.added_tokens.push({ ...tok.added_tokens[0], id: 4999, content: '<extra>' });
  writeFileSync(join(src, 'tokenizer.json'), JSON.stringify(tok));
  const out = join(dir, 'out');
  const c = cli([
    'convert',
    src,
    '--bits',
    '4',
    '--out',
    out,
    '--eval',
    '--eval-ctx',
    '64',
    '--eval-chunks',
    '1',
    '--json-progress',
  ]);
  assert.equal(c.status, 1, c.stderr);
  assertOneLine(
    c.stderr,
    /end-to-end check: .*tokenizer_q4\.json: the tokenizer defines 5000 ids but the model's vocabulary has 2048: they do not match/,
  );
  assert.ok(existsSync(join(out, 'model_manifest_q4.json')));
});

test('bad input, one line each: no text to use, before any work', (t) => {
  const out = tempDir(t);
  const c = cli([
    'convert',
    join(root, 'test/fixtures/tiny-llama'),
    '--bits',
    '4',
    '--out',
    out,
    '--eval',
    '--json-progress',
  ]);
  assert.equal(c.status, 1, c.stderr);
  assertOneLine(
    c.stderr,
    /--eval needs a text: pass --eval-text FILE \(.*tiny-llama ships no heldout\.txt to use by default\)/,
  );
  assert.deepEqual(readdirSync(out), []);
  const m = cli([
    'convert',
    brown,
    '--bits',
    '4',
    '--out',
    out,
    '--eval',
    '--eval-text',
    join(out, 'nope.txt'),
    '--json-progress',
  ]);
  assert.equal(m.status, 1);
  assertOneLine(m.stderr, /--eval-text .*nope\.txt: no such file/);
  assert.deepEqual(readdirSync(out), []);
});

test('bad input, one line each: the source checkpoint gone by the time the evaluation starts', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'model');
  cpSync(brown, src, { recursive: true });
  const out = join(dir, 'out');
  let err: Error | undefined;
  try {
    await convertModel(
      {
        source: src,
        bits: 4,
        outDir: out,
        eval: { text: heldout, ctx: 64, chunks: 1 },
        hooks: { beforeCommit: () => renameSync(src, join(dir, 'moved')) },
      },
      () => {},
    );
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err, 'the conversion reports the failed evaluation');
  assert.equal(errorCode(err), 'invalid-input');
  assert.doesNotMatch(err.message, /\n/);
  assert.match(
    err.message,
    /^end-to-end check: .*the float source checkpoint is missing \(looked in .*model\); eval compares against it/,
  );
  assert.ok(existsSync(join(out, 'model_quantized_q4.npz')));
  const report = readJson(join(out, 'model_accuracy_q4.json'));
  assert.match(report.end_to_end.error, /float source checkpoint is missing/);
});

test('a signal during the end-to-end stage stops it: status 130, the committed outputs and report kept, no lock left', async (t) => {
  const out = tempDir(t);
  const long = join(out, 'long.txt');
  writeFileSync(long, readFileSync(heldout, 'utf8').repeat(4));
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', join(root, 'server/src/cli.ts'), 'convert', brown, '--bits', '4', '--out', out],
      ...['--eval', '--eval-text', long, '--eval-ctx', '32', '--eval-chunks', '100000', '--json-progress'],
    ],
    { cwd: root, env: { ...process.env, APL_CLI_MAIN: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out1 = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out1 += d;
      // The second chunk scored: the stage is under way and its loop is where the signal must be seen.
      if (out1.includes('"name":"chunk 2/') && !child.killed) child.kill('SIGTERM');
    });
    child.on('close', (c) => resolve(c));
  });
  assert.equal(code, 130, err);
  assert.ok(out1.includes('"code":"cancelled"'), 'an error event with code cancelled');
  const report = readJson(join(out, 'brown-tiny_accuracy_q4.json'));
  assert.equal(report.end_to_end, undefined, 'the report is as the conversion committed it');
  assert.ok(existsSync(join(out, 'brown-tiny_quantized_q4.npz')));
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('.')),
    [],
  );
});
