// "APL: Evaluate Model…" without an editor: the manifest a target means, the text chosen without asking, the CLI's
// arguments (the quick check convert --eval runs, stored in the report), its event lines and the result sentence.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeEvalResult, evalArgs, parseEvalLine, textFor } from '../../../client/src/evaluate/args';
import { manifestOfOutput } from '../../../server/src/convert/names';
import type { EvalResult } from '../../../server/src/protocol';

test('manifestOfOutput: a manifest stays; an NPZ output means the manifest beside it; another NPZ is refused', () => {
  assert.equal(manifestOfOutput('/m/tiny_manifest_q4.json'), '/m/tiny_manifest_q4.json');
  assert.equal(manifestOfOutput('/m/tiny_quantized_q2.npz'), join('/m', 'tiny_manifest_q2.json'));
  assert.throws(() => manifestOfOutput('/m/weights.npz'), /weights\.npz: not a converter output/);
  assert.throws(() => manifestOfOutput('/m/tiny_accuracy_q2.npz'), /not a converter output/);
});

test('textFor: the request, else the setting, else the first source folder with a heldout.txt, else none', () => {
  const has = new Set([join('/src/b', 'heldout.txt'), join('/src/c', 'heldout.txt')]);
  const exists = (p: string) => has.has(p);
  assert.equal(textFor({ text: '/t.txt' }, '/s.txt', ['/src/b'], exists), '/t.txt');
  assert.equal(textFor(undefined, '  /s.txt ', ['/src/b'], exists), '/s.txt');
  assert.equal(textFor({}, '', ['/src/a', '/src/b', '/src/c'], exists), join('/src/b', 'heldout.txt'));
  assert.equal(textFor(undefined, undefined, ['/src/a'], exists), undefined);
});

test('evalArgs: the quick check by default, stored in the report, as JSON events', () => {
  const a = evalArgs('/ext/dist/cli.js', '/m/x_manifest_q4.json', '/t.txt', 'cpu');
  assert.deepEqual(a, [
    '/ext/dist/cli.js',
    'eval',
    '/m/x_manifest_q4.json',
    '--text',
    '/t.txt',
    '--ctx',
    '256',
    '--chunks',
    '16',
    '--backend',
    'cpu',
    '--update-report',
    '--json-progress',
  ]);
  const b = evalArgs('c', 'm', 't', 'auto', { ctx: 64, chunks: 2 });
  assert.deepEqual(b.slice(5, 9), ['--ctx', '64', '--chunks', '2']);
});

test('parseEvalLine: progress and result events; anything else is not an event', () => {
  assert.deepEqual(parseEvalLine('{"type":"progress","done":1,"total":4}\r'), { type: 'progress', done: 1, total: 4 });
  assert.equal(parseEvalLine('{"type":"progress","done":1,"total":0}'), undefined);
  assert.equal(parseEvalLine('{"type":"result"}'), undefined);
  assert.equal(parseEvalLine('chunk 1/4'), undefined);
  assert.equal(parseEvalLine('{"type":'), undefined);
  const r = parseEvalLine('{"type":"result","result":{"kld_mean":0.1},"report":"/r.json","pass":false}');
  assert.equal(r?.type, 'result');
});

test('describeEvalResult: the figures and the verdict when the report was updated', () => {
  const result = {
    manifest: '/m/x_manifest_q4.json',
    kld_mean: 0.0012345,
    same_top: 0.98765,
    ppl: 63.81,
    ppl_float: 63.8,
    tokens_scored: 2032,
  } as EvalResult;
  assert.equal(
    describeEvalResult({ type: 'result', result, report: '/m/r.json', pass: true }),
    'x_manifest_q4.json end to end: mean KLD 0.00123, same top 98.77 %, PPL 63.81 vs float 63.80 (2032 tokens); accuracy PASS.',
  );
  assert.match(describeEvalResult({ type: 'result', result, report: '/m/r.json', pass: false }), /; accuracy FAIL\.$/);
  assert.match(describeEvalResult({ type: 'result', result, report: null, pass: null }), /\(2032 tokens\)\.$/);
});
