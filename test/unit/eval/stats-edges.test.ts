// The evaluation statistics at their edges, where `npm run mutate -- eval-stats` found figures no test pinned:
// the standard errors `apl-quant eval` prints beside PPL and ln(PPL ratio), a summary of one token or none, the
// neighbouring row of packed logits, and the refusals of a target token, a --ctx or a --chunks out of range.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkError, chunkTokens, planChunks } from '../../../server/src/eval/chunks';
import { EvalAccumulator, scoreToken } from '../../../server/src/eval/stats';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

/** llama.cpp's standard error of the mean: sqrt((mean(x²) − mean(x)²) / (n − 1)). */
function se(x: number[]): number {
  const n = x.length;
  const m = x.reduce((a, b) => a + b, 0) / n;
  const m2 = x.reduce((a, b) => a + b * b, 0) / n;
  return Math.sqrt((m2 - m * m) / (n - 1));
}

test('the standard errors of PPL, float PPL and ln(PPL ratio) follow from the per-token NLLs', () => {
  const acc = new EvalAccumulator();
  const nllB = [0.5, 1.25, 2];
  const nllQ = [0.75, 1, 3];
  for (let i = 0; i < 3; i++) acc.add({ nllBase: nllB[i], nllQuant: nllQ[i], kld: 0, sameTop: true, dp: 0 });
  assert.equal(acc.count, 3);
  const s = acc.summary();
  const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
  close(s.ppl_se, Math.exp(mean(nllQ)) * se(nllQ), 'ppl_se');
  close(s.ppl_float_se, Math.exp(mean(nllB)) * se(nllB), 'ppl_float_se');
  close(s.ln_ppl_ratio_se, se(nllQ.map((q, i) => q - nllB[i])), 'ln_ppl_ratio_se');
});

test('one scored token: every standard error is 0, not NaN; no token: the figures are NaN', () => {
  const one = new EvalAccumulator();
  one.add({ nllBase: 1, nllQuant: 2, kld: 0.5, sameTop: false, dp: -0.1 });
  const s = one.summary();
  for (const k of ['ppl_se', 'ppl_float_se', 'ln_ppl_ratio_se', 'kld_se', 'dp_se', 'same_top_se'] as const)
    assert.equal(s[k], 0, k);
  const none = new EvalAccumulator().summary();
  assert.equal(none.tokens_scored, 0);
  for (const k of ['ppl', 'ppl_se', 'ln_ppl_ratio_se', 'kld_mean', 'kld_se', 'dp_se', 'same_top', 'kld_max'] as const)
    assert.ok(Number.isNaN(none[k]), `${k}: ${none[k]}`);
});

test('scoreToken reads only its own row of packed logits: a larger logit in the next row changes nothing', () => {
  // Row 0 of [0, 1 | 9 …] against [0, 1 | 0 …]: both tops are id 1.
  const s = scoreToken([0, 1, 9, 0], [0, 1, 0, 0], 0, 2);
  assert.equal(s.sameTop, true);
  close(s.kld, 0, 'kld');
});

test('a target token outside [0, vocab) or not an integer is refused', () => {
  for (const t of [-1, 2, 0.5, Number.NaN])
    assert.throws(() => scoreToken([0, 0], [0, 0], t, 2), /outside the vocabulary/, String(t));
});

test('chunk plan edges: ctx 2 is refused (at least 4), --chunks 1 is one chunk, chunk −1 does not exist', () => {
  assert.throws(
    () => planChunks(1000, 2),
    (e: Error) => e instanceof ChunkError && /at least 4/.test(e.message),
  );
  const p = planChunks(1000, 256, 1);
  assert.deepEqual([p.chunks, p.available, p.tokensScored], [1, 3, 127]);
  assert.throws(() => chunkTokens([1, 2, 3, 4], planChunks(4, 4), -1, null), RangeError);
});
