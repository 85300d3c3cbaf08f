// The native forward pass (native/forward.ts createModel) on small random llama / mistral / gemma models
// against a float64 forward written in the test (forward-model.ts): float weights within float32 rounding,
// packed weights within the int8-activation error; prompt and token-by-token decode agree exactly; KV cache,
// sliding window, tied head, rope scaling and bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, inferInfo } from '../../../native/forward';
import type { ModelConfig, ModelWeights } from '../../../native/forward-types';
import { relMax } from '../../helpers/rel-error';
import { config, f32Weight, packedMaker, reference64, weights } from './forward-model';

const skip = inferInfo() ? false : 'the native addon is not built (npm run build:native): native forward not tested';
const TOKENS = [3, 17, 42, 0, 60, 5, 5, 29, 11, 38];

function argmax(a: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}

function decode(c: ModelConfig, w: ModelWeights, tokens: number[], threads = 1): Float32Array {
  const m = createModel(c, w, { contextLength: 16, threads });
  const out = new Float32Array(tokens.length * c.vocabSize);
  for (let i = 0; i < tokens.length; i++) out.set(m.forward([tokens[i]], i, false), i * c.vocabSize);
  m.dispose();
  return out;
}

describe('native forward pass', { skip }, () => {
  const cases: [string, ModelConfig][] = [
    ['llama', config('llama')],
    ['mistral (sliding window 5)', config('mistral')],
    ['gemma (√hidden, 1 + w, GeGLU, tied)', config('gemma')],
    ['llama with linear rope scaling', config('llama', { ropeScaling: { type: 'linear', factor: 2 } })],
  ];
  for (const [name, c] of cases)
    it(`${name}: float32 weights match the float64 forward (rel. 1e-5)`, async () => {
      const w = await weights(c, f32Weight);
      // float32 KV cache: 1e-5 is below float16's rounding (the float16 default: forward-golden.test.ts)
      const m = createModel(c, w, { contextLength: 16, kvCache: 'f32' });
      assert.match(m.backend, /^cpu-/);
      const got = m.forward(TOKENS, 0, true);
      const want = reference64(c, w, TOKENS);
      assert.equal(got.length, TOKENS.length * c.vocabSize);
      assert.ok(relMax(got, want) < 1e-5, `relative error ${relMax(got, want)}`);
      m.dispose();
    });

  for (const [bits, group, bound] of [
    [8, 32, 0.03],
    [4, 64, 0.03],
    [2, 16, 0.03],
    [1, 64, 0.03],
  ] as const)
    it(`${bits}-bit g${group} weights: within ${bound} (rel.) of the float64 forward on the dequantized weights`, async () => {
      for (const fam of ['llama', 'gemma'] as const) {
        const c = config(fam);
        const w = await weights(c, packedMaker(bits, group));
        const m = createModel(c, w, { contextLength: 16 });
        const got = m.forward(TOKENS, 0, true);
        const want = reference64(c, w, TOKENS);
        const err = relMax(got, want);
        assert.ok(err < bound, `${fam}: relative error ${err}`);
        m.dispose();
      }
    });

  it('prompt in one call = token-by-token decode through the KV cache (bit for bit), any thread count', async () => {
    for (const fam of ['mistral', 'gemma'] as const) {
      const c = config(fam);
      const w = await weights(c, packedMaker(4, 32), 3);
      const m = createModel(c, w, { contextLength: 16, threads: 2 });
      const all = m.forward(TOKENS, 0, true);
      assert.deepEqual(decode(c, w, TOKENS, 1), all);
      // last-token logits only, then continue after reset and from the middle
      m.reset();
      assert.deepEqual(m.forward(TOKENS.slice(0, 6), 0, false), all.subarray(5 * c.vocabSize, 6 * c.vocabSize));
      assert.deepEqual(m.forward(TOKENS.slice(6), 6, true), all.subarray(6 * c.vocabSize));
      // rewinding to an earlier position recomputes from there
      assert.deepEqual(m.forward([TOKENS[3]], 3, false), all.subarray(3 * c.vocabSize, 4 * c.vocabSize));
      assert.equal(argmax(all, 0, c.vocabSize), argmax(reference64(c, w, TOKENS), 0, c.vocabSize));
      m.dispose();
    }
  });

  it('refuses bad calls with one clear message', async () => {
    const c = config('llama');
    const w = await weights(c, f32Weight);
    const m = createModel(c, w, { contextLength: 4 });
    assert.throws(() => m.forward([1, 2, 3, 4, 5], 0, false), /exceed contextLength 4/);
    assert.throws(() => m.forward([61], 0, false), /outside the vocabulary/);
    assert.throws(() => m.forward([1], 2, false), /past the cached length 0/);
    assert.throws(() => m.forward([], 0, false), /no tokens/);
    m.dispose();
    assert.throws(() => m.forward([1], 0, false), /disposed/);
    assert.throws(() => createModel(c, { ...w, layers: w.layers.slice(1) }, { contextLength: 4 }), /layers/);
    assert.throws(() => createModel(c, w, { contextLength: 2 ** 40 }), /KV cache for contextLength .* does not fit/);
    const bad = { ...w, layers: [{ ...w.layers[0], q: w.layers[0].k }, w.layers[1]] };
    assert.throws(
      () => createModel(c, bad, { contextLength: 4 }),
      /layers\[0\]\.q: shape \[32, 64\], expected \[64, 64\]/,
    );
    assert.throws(
      () => createModel({ ...c, ropeScaling: { type: 'yarn', factor: 4 } }, w, { contextLength: 4 }),
      /rope_scaling type 'yarn' is not supported/,
    );
    for (const prefillChunk of [0, -1, 1.5, Number.NaN])
      assert.throws(
        () => createModel(c, w, { contextLength: 4, prefillChunk }),
        /prefillChunk must be a positive integer/,
      );
  });
});
