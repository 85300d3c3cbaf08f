// A GPU that runs out of memory (the CUDA emulation's APL_CUDA_EMU_MEM cap: cudaMalloc fails past it as on a full
// device; npm run test:cuda-emu): 'auto' runs on the CPU and says why, 'gpu' is an error naming it, and nothing
// leaks: after each failure, work that fits the same cap runs on the GPU. The model upload, a KV cache longer than
// the device holds, a prompt whose scratch does not fit (the model stays usable; in pieces it fits; 'auto' moves
// the model to the CPU mid-run), and quantization of both types.
// Elsewhere (no GPU, or a real one, which ignores the cap) it says that it is skipped.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createModel, gpuUnavailable, inferInfo } from '../../../native/forward';
import type { ModelConfig } from '../../../native/forward-types';
import * as eng from '../../../native/index';
import { kquantize } from '../../../native/kquant';
import { captureStderr } from '../../helpers/stderr';
import { config, f32Weight, weights as tinyModel } from './forward-model';
import { f32Tensor, fallsBackToCpu } from './gpu-fallback';

const why = inferInfo() ? gpuUnavailable() : 'the native addon is not built';
const emulated = !why && /^emulated GPU/.test(eng.engineInfo().gpu.name ?? '');
const skip = emulated ? false : `skipped: needs the CUDA emulation's memory cap (${why || 'a real GPU ignores it'})`;
if (skip) process.stdout.write(`# gpu-memory: ${skip}\n`);

const CAP = 4 * 1024 * 1024;
/** About 9.4 MB of float32 weights: more than the cap. */
const big: ModelConfig = config('llama', {
  hiddenSize: 256,
  intermediateSize: 512,
  numLayers: 4,
  numHeads: 8,
  numKvHeads: 4,
  headDim: 32,
  maxPositionEmbeddings: 1 << 20,
});
/** About 0.3 MB: fits. */
const small: ModelConfig = config('llama', { maxPositionEmbeddings: 1 << 20 });

describe('a GPU out of memory', { skip }, () => {
  const quiet = process.env.APL_QUIET_NATIVE;
  delete process.env.APL_QUIET_NATIVE;
  process.env.APL_CUDA_EMU_MEM = String(CAP);
  after(() => {
    delete process.env.APL_CUDA_EMU_MEM;
    if (quiet !== undefined) process.env.APL_QUIET_NATIVE = quiet;
  });

  /** The small model runs on the GPU under the cap: nothing the failure before it allocated is still held. */
  async function fitsAfter(what: string) {
    const m = createModel(small, await tinyModel(small, f32Weight), { contextLength: 64, backend: 'gpu' });
    assert.match(m.backend, /^cuda:/, `after ${what}`);
    assert.equal(m.forward([1, 2, 3], 0, false).length, small.vocabSize);
    m.dispose();
  }

  it("a model larger than the device: 'auto' on the CPU with the reason, 'gpu' an error; no leak", async () => {
    const w = await tinyModel(big, f32Weight);
    for (let round = 0; round < 3; round++) {
      const { value: m, err } = captureStderr(() => createModel(big, w, { contextLength: 64, backend: 'auto' }));
      assert.match(m.backend, /^cpu-/);
      assert.equal(m.forward([1, 2, 3], 0, false).length, big.vocabSize);
      m.dispose();
      assert.match(
        err,
        /^apl-quant: the GPU forward failed \((backend 'gpu': )?uploading the model: out of memory\); running on the CPU\n$/,
      );
      assert.throws(
        () => createModel(big, w, { contextLength: 64, backend: 'gpu' }),
        (e: Error) => /uploading the model: out of memory/.test(e.message) && !e.message.includes('\n'),
      );
      await fitsAfter(`a failed upload (round ${round})`);
    }
  });

  it('a KV cache longer than the device holds: the same, and no leak', async () => {
    const w = await tinyModel(small, f32Weight);
    // 2 layers × 2 KV heads × 16 × 2 bytes × 2 (K and V) = 256 bytes a position: 32768 positions are 8 MiB
    assert.throws(
      () => createModel(small, w, { contextLength: 32768, backend: 'gpu' }),
      /uploading the model: out of memory/,
    );
    const { value: m } = captureStderr(() => createModel(small, w, { contextLength: 32768, backend: 'auto' }));
    assert.match(m.backend, /^cpu-/);
    m.dispose();
    await fitsAfter('a KV cache that did not fit');
  });

  it('a prompt whose scratch does not fit: that forward is an error, the model goes on with shorter ones', async () => {
    const w = await tinyModel(small, f32Weight);
    const m = createModel(small, w, { contextLength: 8192, backend: 'gpu' });
    assert.match(m.backend, /^cuda:/);
    const a = m.forward([1, 2, 3], 0, false); // the scratch now holds 3 tokens
    m.reset();
    const long = Array.from({ length: 8000 }, (_, i) => (i * 7) % small.vocabSize);
    assert.throws(() => m.forward(long, 0, true), /out of memory/);
    // the failed growth left no scratch behind to be used (a shorter prompt sets it up again), and no error
    const b = m.forward([1, 2, 3], 0, false);
    assert.deepEqual(b, a);
    m.dispose();
    await fitsAfter('a forward whose scratch did not fit');
  });

  it('a long prompt runs on the GPU in pieces where it whole does not fit; the pieces give the same logits', async () => {
    const w = await tinyModel(small, f32Weight);
    const prompt = Array.from({ length: 600 }, (_, i) => (i * 7 + 3) % small.vocabSize);
    // whole: 600 tokens × 4 heads × 640 positions of scores alone are 6.1 MB, past the 4 MiB device
    const whole = createModel(small, w, { contextLength: 640, backend: 'gpu', prefillChunk: 600 });
    assert.throws(() => whole.forward(prompt, 0, false), /out of memory/);
    whole.dispose();
    const pieces = createModel(small, w, { contextLength: 640, backend: 'gpu', prefillChunk: 32 });
    const last = pieces.forward(prompt, 0, false);
    const next = pieces.forward([5], prompt.length, false);
    pieces.dispose();
    delete process.env.APL_CUDA_EMU_MEM;
    try {
      const ref = createModel(small, w, { contextLength: 640, backend: 'gpu', prefillChunk: 600 });
      assert.deepEqual(last, ref.forward(prompt, 0, false));
      assert.deepEqual(next, ref.forward([5], prompt.length, false));
      ref.dispose();
    } finally {
      process.env.APL_CUDA_EMU_MEM = String(CAP);
    }
    await fitsAfter('a prompt run in pieces');
  });

  it("'auto': a forward the GPU cannot run moves the model to the CPU, which recomputes the cache: the CPU's logits", async () => {
    const w = await tinyModel(small, f32Weight);
    const prompt = Array.from({ length: 600 }, (_, i) => (i * 5 + 1) % small.vocabSize);
    const cpu = createModel(small, w, { contextLength: 640, backend: 'cpu' });
    const want = [cpu.forward(prompt.slice(0, 10), 0, false), cpu.forward(prompt.slice(10), 10, true)];
    const wantNext = cpu.forward([9], 600, false);
    cpu.dispose();
    // pieces of 600: the second call does not fit the 4 MiB device
    const m = createModel(small, w, { contextLength: 640, backend: 'auto', prefillChunk: 600 });
    assert.match(m.backend, /^cuda:/);
    m.forward(prompt.slice(0, 10), 0, false);
    const { value: got, err } = captureStderr(() => m.forward(prompt.slice(10), 10, true));
    assert.match(m.backend, /^cpu-/);
    assert.match(
      err,
      /^apl-quant: the GPU forward failed \(CUDA: out of memory\); running on the CPU from here \(10 cached positions recomputed\)\n$/,
    );
    assert.deepEqual(got, want[1]);
    assert.deepEqual(m.forward([9], 600, false), wantNext);
    m.dispose();
    // 'gpu' does not move: the error is the caller's
    const g = createModel(small, w, { contextLength: 640, backend: 'gpu', prefillChunk: 600 });
    assert.throws(() => g.forward(prompt, 0, false), /^Error: CUDA: out of memory$/);
    assert.match(g.backend, /^cuda:/);
    g.dispose();
    await fitsAfter('a model moved to the CPU');
  });

  it("quantize and kquantize of a tensor larger than the device: 'auto' on the CPU (same bytes), 'gpu' an error", async () => {
    const cols = 2048;
    const t = f32Tensor(1024, cols, 3); // 8 MiB of float32
    await fallsBackToCpu(t, /out of memory/);
    // what fits still runs on the GPU
    const part = { ...t.opts, data: t.data.subarray(0, 64 * cols * 4), rows: 64 };
    assert.match((await eng.quantize({ ...part, backend: 'gpu' })).backend, /^cuda:/);
    assert.match((await kquantize({ ...t.k, data: part.data, rows: 64, backend: 'gpu' })).backend, /^cuda:/);
    await fitsAfter('quantizations that did not fit');
  });
});
