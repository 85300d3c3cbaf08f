// apl-quant eval as a child process on the tiny random-weight fixture (plumbing, --json shape, bad input). The
// accuracy figures on a trained model are in brown.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tokenizerIdCount } from '../../../server/src/cli/eval';
import { convertModel } from '../../../server/src/convert/pipeline';
import type { EvalResult } from '../../../server/src/protocol';
import { evalCli, root } from './cli-helper';

const tiny = join(root, 'test/fixtures/tiny-llama');
let work = '';
let manifest = '';
let text = '';

const cli = evalCli;

// biome-ignore lint/suspicious/noExplicitAny: free-form JSON edits in a test
type Json = any;

/** A copy of the manifest (and its side files) with `edit` applied to the manifest or the tokenizer. */
function variant(name: string, edit: { manifest?: (m: Json) => void; tokenizer?: (t: Json) => void }): string {
  const m = JSON.parse(readFileSync(manifest, 'utf8'));
  edit.manifest?.(m);
  if (edit.tokenizer) {
    const t = JSON.parse(readFileSync(join(work, m.metadata.tokenizer), 'utf8'));
    edit.tokenizer(t);
    m.metadata.tokenizer = `${name}_tokenizer.json`;
    writeFileSync(join(work, m.metadata.tokenizer), JSON.stringify(t));
  }
  const p = join(work, `${name}_manifest_q4.json`);
  writeFileSync(p, JSON.stringify(m));
  return p;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'apl-eval-cli-'));
  const r = await convertModel({ source: tiny, bits: 4, name: 'tiny', outDir: work }, () => {});
  manifest = r.manifest;
  // Words of the fixture's word-level vocabulary, deterministic.
  const syl = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'zo', 'be', 'da', 'fu', 'go', 'hi', 'ja', 'pe', 'so'];
  const words = Array.from({ length: 300 }, (_, i) => syl[(i * 7) % 16] + syl[(i * 11 + 3) % 16]);
  text = join(work, 'text.txt');
  writeFileSync(text, words.join(' '));
  writeFileSync(join(work, 'short.txt'), words.slice(0, 200).join(' '));
});

after(() => rmSync(work, { recursive: true, force: true }));

test('--json prints one object with the agreed keys; the table names the figures', () => {
  const r = cli([manifest, '--text', text, '--ctx', '64', '--chunks', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const o = JSON.parse(lines[0]) as EvalResult;
  for (const k of ['ppl', 'ppl_float', 'kld_mean', 'kld_median', 'kld_p99', 'kld_max', 'same_top', 'rms_dp']) {
    assert.equal(typeof (o as unknown as Record<string, unknown>)[k], 'number', k);
  }
  assert.equal(o.tokens_scored, 2 * 31);
  assert.equal(o.ctx, 64);
  assert.equal(o.chunks, 2);
  assert.equal(o.chunks_available, 4);
  assert.equal(o.bits, 4);
  assert.ok(o.kld_mean > 0 && o.kld_max >= o.kld_p99 && o.kld_p99 >= o.kld_median, JSON.stringify(o));
  assert.ok(o.same_top > 0 && o.same_top <= 1);
  const t = cli([manifest, '--text', text, '--ctx', '64', '--chunks', '1']);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /KLD\s+mean [\d.]+ ± [\d.]+\s+median/);
  assert.match(t.stdout, /same top/);
});

test('bad input: one clear line each', () => {
  const cases: [string[], RegExp, number][] = [
    [[manifest], /--text FILE is required/, 2],
    [[manifest, '--text', join(work, 'nope.txt')], /nope\.txt: no such file/, 1],
    [[manifest, '--text', text, '--ctx', '4096'], /exceeds the model's context length 256/, 2],
    [[manifest, '--text', text, '--ctx', 'x'], /--ctx must be a positive integer/, 2],
    [
      [manifest, '--text', join(work, 'short.txt'), '--ctx', '256'],
      /short\.txt: the text is 200 tokens, shorter than one chunk of 256/,
      1,
    ],
    [
      [variant('nosrc', { manifest: (m) => (m.model.source = join(work, 'gone')) }), '--text', text],
      /the float source checkpoint is missing \(looked in .*gone\)/,
      1,
    ],
    [
      [
        variant('bigtok', { tokenizer: (t) => t.added_tokens.push({ ...t.added_tokens[0], id: 600, content: '<x>' }) }),
        '--text',
        text,
      ],
      /bigtok_tokenizer\.json: the tokenizer defines 601 ids but the model's vocabulary has 512/,
      1,
    ],
  ];
  for (const [args, re, code] of cases) {
    const r = cli(args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0], re);
    if (code === 1) assert.equal(lines.length, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
});

test('tokenizerIdCount: the largest id of vocab or added tokens, plus one', () => {
  assert.equal(tokenizerIdCount({ model: { vocab: { a: 0, b: 5 } }, added_tokens: [{ id: 2 }] }), 6);
  assert.equal(tokenizerIdCount({ model: { vocab: { a: 0 } }, added_tokens: [{ id: 9 }] }), 10);
  assert.equal(
    tokenizerIdCount({
      model: {
        vocab: [
          ['a', 0],
          ['b', -1],
        ],
      },
    }),
    2,
  );
});
