// The GPU forward's guard (native/gpu-selftest.ts). Everywhere: the row slices it multiplies are the weights' first
// rows (the CPU linear of a slice = those rows of the whole), the kinds it tells apart, its one-layer model. With a
// usable GPU (a real one, or the CPU emulation of CUDA: npm run test:cuda-emu): it passes on every family and kind
// of weight, and a GPU that answers differently (APL_GPU_SELFTEST_FAULT) is not used: 'auto' runs on the CPU and
// says why on stderr, 'gpu' refuses in one line, APL_GPU_SELFTEST=0 skips the guard.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, gpuUnavailable, inferInfo, linear, ropeFrequencies } from '../../../native/forward';
import type { LinearWeight, ModelConfig, ModelWeights } from '../../../native/forward-types';
import { firstRows, gpuSelfTest, SELFTEST_ROWS, selfTestModel, weightKind } from '../../../native/gpu-selftest';
import { nativeAddon } from '../../../native/index';
import { KQ_PRESETS, kquantize } from '../../../native/kquant';
import { captureStderr } from '../../helpers/stderr';
import { bytesOf, gaussian } from './data';
import { config, f32Weight, packedMaker, weights as tinyModel } from './forward-model';

const why = inferInfo() ? gpuUnavailable() : 'the native addon is not built';
const gpuSkip = why ? `skipped: no usable GPU (${why})` : false;
if (why) process.stdout.write(`# gpu-selftest: GPU tests skipped: no usable GPU (${why})\n`);

const kquantWeight = async (rows: number, cols: number, seed: number): Promise<LinearWeight> => {
  const data = bytesOf(gaussian(rows * cols, seed, 0.6 / Math.sqrt(cols)));
  const r = await kquantize({ ...KQ_PRESETS[4], group: 16, super: 64, data, dtype: 'f32', rows, cols });
  return { kind: 'kquant', ...r, bits: r.bits as 2 | 4 | 8 };
};

/** A model whose layers mix the kinds: float q/k, packed 4-bit v/o, kquant MLP, packed 8-bit head. */
async function mixed(c: ModelConfig): Promise<ModelWeights> {
  const f = await tinyModel(c, f32Weight);
  const p4 = packedMaker(4, 32);
  const h = c.hiddenSize;
  const kvd = c.numKvHeads * c.headDim;
  const qd = c.numHeads * c.headDim;
  const layers = [];
  for (const [i, l] of f.layers.entries())
    layers.push({
      ...l,
      v: await p4(kvd, h, 30 + i),
      o: await p4(h, qd, 40 + i),
      gate: await kquantWeight(c.intermediateSize, h, 50 + i),
      up: await kquantWeight(c.intermediateSize, h, 60 + i),
      down: await kquantWeight(h, c.intermediateSize, 70 + i),
    });
  const lmHead = c.tieWordEmbeddings ? f.embed : await packedMaker(8, 64)(c.vocabSize, h, 80);
  return { ...f, layers, lmHead };
}

function withEnv(env: Record<string, string | undefined>, f: () => void): void {
  const old = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  try {
    f();
  } finally {
    for (const [k, v] of Object.entries(old))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

describe('GPU self-test: its pieces', { skip: inferInfo() ? false : 'the native addon is not built' }, () => {
  it('the first rows of every kind of weight: their CPU linear = those rows of the whole weight', async () => {
    const c = config('llama');
    const w = await mixed(c);
    const picks: LinearWeight[] = [w.layers[0].q, w.layers[0].v, w.layers[0].gate, w.layers[0].down, w.lmHead];
    for (const lw of picks) {
      const n = 3;
      const x = gaussian(n * lw.cols, 7, 1);
      const all = linear(lw, x, n, { variant: 'scalar' });
      for (const k of [1, 5, SELFTEST_ROWS, lw.rows + 3]) {
        const part = firstRows(lw, k);
        const rows = Math.min(k, lw.rows);
        assert.equal(part.rows, rows);
        const y = linear(part, x, n, { variant: 'scalar' });
        assert.equal(y.length, n * rows);
        for (let t = 0; t < n; t++)
          for (let r = 0; r < rows; r++)
            assert.equal(y[t * rows + r], all[t * lw.rows + r], `${weightKind(lw)} k=${k} token ${t} row ${r}`);
      }
    }
  });

  it('weightKind tells apart what selects another kernel or layout', async () => {
    const c = config('llama');
    const w = await mixed(c);
    const l = w.layers[0];
    assert.equal(weightKind(l.q), weightKind(l.k)); // both float32 with the hidden size's columns
    assert.notEqual(weightKind(l.q), weightKind(l.v));
    assert.notEqual(weightKind(l.gate), weightKind(l.down)); // kquant, other column counts
    assert.match(weightKind(l.v), /^packed:4:g32:f16:c64$/);
    assert.match(weightKind(l.gate), /^kquant:4:g16:s64:/);
  });

  it("the one-layer model keeps the family's attention shape, norms, activation and window", () => {
    for (const family of ['llama', 'mistral', 'gemma'] as const) {
      const c = config(family, { numHeads: 8, numKvHeads: family === 'gemma' ? 1 : 2 });
      const { config: t, weights } = selfTestModel(c);
      assert.equal(t.numLayers, 1);
      assert.equal(weights.layers.length, 1);
      assert.equal(t.headDim, c.headDim);
      assert.equal(t.numHeads % t.numKvHeads, 0);
      assert.equal(t.numKvHeads, Math.min(c.numKvHeads, 2));
      assert.equal(t.hiddenAct, c.hiddenAct);
      assert.equal(t.normAddOne, c.normAddOne);
      assert.equal(t.embedScale, c.embedScale);
      assert.equal(Boolean(t.slidingWindow), Boolean(c.slidingWindow));
      assert.equal(weights.lmHead === weights.embed, c.tieWordEmbeddings);
      assert.equal(weights.layers[0].q.rows, t.numHeads * t.headDim);
      assert.equal(weights.layers[0].k.rows, t.numKvHeads * t.headDim);
    }
  });
});

describe('GPU self-test on a usable GPU', { skip: gpuSkip }, () => {
  it('passes for every family and kind of weight, with both KV caches; the model then runs on the GPU', async () => {
    for (const family of ['llama', 'mistral', 'gemma'] as const) {
      const c = config(family);
      const w = await mixed(c);
      for (const kv of ['f16', 'f32'] as const)
        assert.equal(gpuSelfTest(nativeAddon() as never, c, w, ropeFrequencies, kv), '', `${family} ${kv}`);
      const m = createModel(c, w, { contextLength: 16, backend: 'auto' });
      assert.match(m.backend, /^cuda:/);
      m.dispose();
    }
  });

  for (const fault of ['linear', 'forward'] as const)
    it(`a GPU whose ${fault} answers differently is not used: 'auto' runs on the CPU and says why, 'gpu' refuses`, async () => {
      const c = config('llama');
      const w = await mixed(c);
      withEnv({ APL_GPU_SELFTEST_FAULT: fault, APL_QUIET_NATIVE: undefined }, () => {
        const bad = gpuSelfTest(nativeAddon() as never, c, w, ropeFrequencies, 'f16');
        assert.match(
          bad,
          fault === 'linear'
            ? /^the GPU's linear on layer 0 q \(float:f32:c64\) differs/
            : /^the GPU forward differs from the CPU on a one-layer llama model at position 0/,
        );
        const { value: m, err } = captureStderr(() => createModel(c, w, { contextLength: 16, backend: 'auto' }));
        assert.match(m.backend, /^cpu-/);
        assert.equal(m.forward([1, 2, 3], 0, false).length, c.vocabSize);
        m.dispose();
        assert.ok(err.startsWith(`apl-quant: the GPU is not used: ${bad}`), err);
        assert.match(err, /APL_GPU_SELFTEST=0 skips this check\); running on the CPU\n$/);
        assert.throws(
          () => createModel(c, w, { contextLength: 16, backend: 'gpu' }),
          (e: Error) => e.message.startsWith(`backend 'gpu' is not used: ${bad}`) && !e.message.includes('\n'),
        );
      });
      withEnv({ APL_GPU_SELFTEST_FAULT: fault, APL_GPU_SELFTEST: '0' }, () => {
        const m = createModel(c, w, { contextLength: 16, backend: 'gpu' });
        assert.match(m.backend, /^cuda:/);
        m.dispose();
      });
    });
});
