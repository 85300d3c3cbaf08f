// The native forward pass (native/forward.ts createModel) on small random models whose linear weights are kquant
// (two-level scales, the layouts convert writes): native kernels, not the TypeScript reference; within the
// int8-activation error of the float64 forward on the dequantized weights (forward-model.ts); prompt and decode
// agree bit for bit; every CPU variant gives the same logits up to attention's float32 rounding.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, inferInfo } from '../../../native/forward';
import type { ModelConfig, ModelWeights } from '../../../native/forward-types';
import { KQ_PRESETS, kquantize } from '../../../native/kquant';
import { relMax } from '../../helpers/rel-error';
import { bytesOf, gaussian } from './data';
import { config, reference64, weights } from './forward-model';

const info = inferInfo();
const skip = info ? false : 'the native addon is not built (npm run build:native): native kquant forward not tested';
const TOKENS = [3, 17, 42, 0, 60, 5, 5, 29, 11, 38];

function kquantMaker(bits: 2 | 4) {
  return async (rows: number, cols: number, seed: number) => {
    const x = gaussian(rows * cols, seed, 0.6 / Math.sqrt(cols));
    const k = await kquantize({ ...KQ_PRESETS[bits], data: bytesOf(x), dtype: 'f32', rows, cols });
    return { kind: 'kquant' as const, ...k };
  };
}

function run(c: ModelConfig, w: ModelWeights, variant?: string): { all: Float32Array; decoded: Float32Array } {
  const prev = process.env.APL_INFER_VARIANT;
  if (variant) process.env.APL_INFER_VARIANT = variant;
  try {
    const m = createModel(c, w, { contextLength: 16, threads: 2, kvCache: 'f32' });
    assert.match(m.backend, /^cpu-/);
    const all = m.forward(TOKENS, 0, true);
    m.reset();
    const decoded = new Float32Array(all.length);
    for (let i = 0; i < TOKENS.length; i++) decoded.set(m.forward([TOKENS[i]], i, false), i * c.vocabSize);
    m.dispose();
    return { all, decoded };
  } finally {
    if (prev === undefined) delete process.env.APL_INFER_VARIANT;
    else process.env.APL_INFER_VARIANT = prev;
  }
}

describe('native forward pass on kquant weights', { skip }, () => {
  for (const bits of [4, 2] as const)
    it(`${bits}-bit kquant (${KQ_PRESETS[bits].group}/${KQ_PRESETS[bits].super}): native, within 0.03 of the float64 forward on the dequantized weights, prompt = decode, variants agree`, async () => {
      for (const fam of ['llama', 'gemma'] as const) {
        const c = config(fam);
        const w = await weights(c, kquantMaker(bits));
        assert.equal(w.layers[0].q.kind, 'kquant');
        const { all, decoded } = run(c, w);
        assert.deepEqual(decoded, all, `${fam}: prompt vs decode`);
        const err = relMax(all, reference64(c, w, TOKENS));
        assert.ok(err < 0.03 && err > 0, `${fam}: relative error ${err}`);
        // The kquant matmuls are bit-exact across variants (infer-kquant.test.ts); attention's float dot products
        // are not (other summation orders), hence a float32-rounding tolerance here, with the float32 KV cache (a float16
        // cache turns those roundings into int8 activation flips; forward.test.ts bounds f16 against f32).
        for (const v of info?.variants ?? []) assert.ok(relMax(run(c, w, v).all, all) < 1e-4, `${fam}: variant ${v}`);
      }
    });
});
