import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkError, chunkTokens, planChunks } from '../../../server/src/eval/chunks';
import { evaluateTokens, type LogitsModel } from '../../../server/src/eval/evaluate';
import { EvalAccumulator, percentile, scoreToken } from '../../../server/src/eval/stats';

const close = (a: number, b: number, tol = 1e-12, what = '') =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

// Three tokens over a two-token vocabulary, distributions chosen so every figure has a closed form:
//   1: base (1/2, 1/2), quant (1/4, 3/4), right token 0 — tops differ (the base's tie goes to the first id)
//   2: base (3/4, 1/4), quant the same,  right token 1
//   3: base (1/10, 9/10), quant (1/5, 4/5), right token 1
const L = Math.log;
const rows = [
  { base: [0, 0], quant: [0, L(3)], target: 0 },
  { base: [L(3), 0], quant: [L(3), 0], target: 1 },
  { base: [0, L(9)], quant: [0, L(4)], target: 1 },
];
const kld = [0.5 * L(0.5 / 0.25) + 0.5 * L(0.5 / 0.75), 0, 0.1 * L(0.1 / 0.2) + 0.9 * L(0.9 / 0.8)];

test('per-token KLD, same top, Δp and NLL match the hand-computed values', () => {
  const s = rows.map((r) => scoreToken(r.base, r.quant, r.target, 2));
  for (let i = 0; i < 3; i++) close(s[i].kld, kld[i], 1e-12, `kld ${i}`);
  assert.deepEqual(
    s.map((x) => x.sameTop),
    [false, true, true],
  );
  close(s[0].dp, -0.25, 1e-12, 'dp 0');
  close(s[1].dp, 0, 1e-12, 'dp 1');
  close(s[2].dp, -0.1, 1e-12, 'dp 2');
  close(s[0].nllBase, L(2), 1e-12, 'nll base 0');
  close(s[0].nllQuant, L(4), 1e-12, 'nll quant 0');
  close(s[2].nllQuant, -L(0.8), 1e-12, 'nll quant 2');
  assert.throws(() => scoreToken([0, 0], [0, 0], 2, 2), /outside the vocabulary/);
});

test('the summary of the three tokens: PPLs, ratio, KLD mean/median/max, Δp, same-top rate and errors', () => {
  const acc = new EvalAccumulator();
  // Rows packed one after another, read with the row argument.
  const base = rows.flatMap((r) => r.base);
  const quant = rows.flatMap((r) => r.quant);
  for (const [i, r] of rows.entries()) acc.addRow(base, quant, r.target, 2, i);
  const s = acc.summary();
  assert.equal(s.tokens_scored, 3);
  const nllQ = [L(4), L(4), -L(0.8)];
  const nllB = [L(2), L(4), -L(0.9)];
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  close(s.ppl, Math.exp(mean(nllQ)), 1e-12, 'ppl');
  close(s.ppl_float, Math.exp(mean(nllB)), 1e-12, 'ppl_float');
  close(s.ppl_ratio, s.ppl / s.ppl_float, 1e-12, 'ratio');
  close(s.ln_ppl_ratio, mean(nllQ) - mean(nllB), 1e-12, 'ln ratio');
  close(s.kld_mean, mean(kld), 1e-12, 'kld mean');
  close(s.kld_median, kld[2], 1e-12, 'kld median');
  close(s.kld_max, kld[0], 1e-12, 'kld max');
  // Sample standard deviation / sqrt(n).
  const sd = Math.sqrt(kld.reduce((a, k) => a + (k - mean(kld)) ** 2, 0) / 2);
  close(s.kld_se, sd / Math.sqrt(3), 1e-9, 'kld se');
  close(s.same_top, 2 / 3, 1e-12, 'same top');
  close(s.same_top_se, Math.sqrt(((2 / 3) * (1 / 3)) / 2), 1e-12, 'same top se');
  close(s.dp_mean, -0.35 / 3, 1e-12, 'dp mean');
  close(s.rms_dp, Math.sqrt((0.0625 + 0.01) / 3), 1e-12, 'rms dp');
});

test('identical logits give KLD exactly 0, ratio 1 and every top the same', () => {
  const acc = new EvalAccumulator();
  const logits = Float32Array.from([0.5, -1, 3, 2.25, 0]);
  for (let t = 0; t < 5; t++) acc.addRow(logits, logits, t, 5);
  const s = acc.summary();
  assert.equal(s.kld_mean, 0);
  assert.equal(s.kld_max, 0);
  assert.equal(s.ppl_ratio, 1);
  assert.equal(s.same_top, 1);
  assert.equal(s.rms_dp, 0);
});

test('percentiles interpolate linearly between closest ranks', () => {
  const v = [1, 2, 3, 4, 5];
  assert.equal(percentile(v, 0), 1);
  assert.equal(percentile(v, 1), 5);
  assert.equal(percentile(v, 0.5), 3);
  close(percentile(v, 0.9), 4.6);
  close(percentile(v, 0.99), 4.96);
  close(percentile([0, 10], 0.25), 2.5);
  assert.equal(percentile([7], 0.999), 7);
  assert.ok(Number.isNaN(percentile([], 0.5)));
  // The accumulator sorts before taking them (values arrive unsorted), growing past its first buffer.
  const acc = new EvalAccumulator();
  for (let i = 2000; i >= 1; i--) acc.add({ nllBase: 1, nllQuant: 1, kld: i, sameTop: true, dp: 0 });
  const s = acc.summary();
  close(s.kld_median, 1000.5);
  close(s.kld_p90, 1800.1);
  close(s.kld_p99, 1980.01);
  close(s.kld_p999, 1998.001);
  assert.equal(s.kld_max, 2000);
});

test('chunking: full chunks only, BOS replaces each first token, the second half scored', () => {
  const p = planChunks(1000, 256);
  assert.deepEqual(p, { ctx: 256, chunks: 3, available: 3, first: 128, scoredPerChunk: 127, tokensScored: 381 });
  assert.equal(planChunks(1000, 256, 2).chunks, 2);
  assert.equal(planChunks(1000, 256, 9).chunks, 3);
  assert.equal(planChunks(512, 512).tokensScored, 255); // llama.cpp scores 255 of each 512-token chunk
  const toks = Array.from({ length: 10 }, (_, i) => 100 + i);
  const q = planChunks(toks.length, 4);
  assert.equal(q.chunks, 2);
  assert.deepEqual([...chunkTokens(toks, q, 0, 1)], [1, 101, 102, 103]);
  assert.deepEqual([...chunkTokens(toks, q, 1, 1)], [1, 105, 106, 107]);
  assert.deepEqual([...chunkTokens(toks, q, 1, null)], [104, 105, 106, 107]);
  assert.throws(() => chunkTokens(toks, q, 2, 1), RangeError);
  assert.throws(
    () => planChunks(255, 256),
    (e: Error) => e instanceof ChunkError && /255 tokens, shorter/.test(e.message),
  );
  assert.throws(() => planChunks(1, 256), /the text is 1 token, shorter/); // an empty text: BOS alone
  assert.throws(() => planChunks(1000, 255), /even integer/);
  assert.throws(() => planChunks(1000, 256, 0), /positive integer/);
});

/** A model whose logits at a position put 8 nats on (token there + 1) mod V; records its calls. */
function successorModel(V: number, calls: string[]): LogitsModel {
  return {
    reset: () => calls.push('reset'),
    forward(tokens, pos, all) {
      calls.push(`${pos}+${tokens.length}${all ? '*' : ''}`);
      const n = all ? tokens.length : 1;
      const out = new Float32Array(n * V);
      for (let r = 0; r < n; r++) {
        const t = tokens[all ? r : tokens.length - 1];
        out[r * V + ((t + 1) % V)] = 8;
      }
      return out;
    },
  };
}

test('evaluateTokens scores each position against the next token, the float model against itself gives 0', async () => {
  const V = 16;
  const tokens = Array.from({ length: 70 }, (_, i) => i % V);
  const calls: string[] = [];
  const m = successorModel(V, calls);
  const r = await evaluateTokens(m, m, tokens, { ctx: 16, bosId: 1, vocab: V });
  assert.equal(r.plan.chunks, 4);
  assert.equal(r.summary.tokens_scored, 4 * 7);
  assert.deepEqual(calls.slice(0, 6), ['reset', '0+8', '8+8*', 'reset', '0+8', '8+8*']);
  // Every scored token is the successor the model predicts: p = e^8 / (e^8 + 15).
  close(r.summary.ppl_float, (Math.exp(8) + 15) / Math.exp(8), 1e-6, 'ppl');
  assert.equal(r.summary.kld_max, 0);
  assert.equal(r.summary.ppl_ratio, 1);
  assert.equal(r.summary.same_top, 1);
  // A model that predicts the token after next is wrong everywhere and disagrees on every top.
  const skip: LogitsModel = {
    reset() {},
    forward(toks, _pos, all) {
      const out = m.forward(toks, 0, all);
      const o2 = new Float32Array(out.length);
      for (let i = 0; i < out.length; i++) o2[i - (i % V) + (((i % V) + 1) % V)] = out[i];
      return o2;
    },
  };
  const w = await evaluateTokens(skip, m, tokens, { ctx: 16, bosId: 1, vocab: V, maxChunks: 2 });
  assert.equal(w.summary.tokens_scored, 14);
  assert.equal(w.summary.same_top, 0);
  assert.ok(w.summary.kld_mean > 7 && w.summary.ppl > 1000, JSON.stringify(w.summary));
  await assert.rejects(
    evaluateTokens(m, m, [1, 2, 99, 3], { ctx: 4, bosId: 1, vocab: V }),
    /outside the model's vocab/,
  );
});
