// The CUDA path from Node: backend 'gpu' refuses with one line where no GPU is usable and 'auto' then runs on the
// CPU (these run everywhere); with a usable GPU, createModel on the GPU against the CPU model (scalar kernel) on
// the tiny llama / mistral (sliding window) / gemma models and their torch golden logits, and quantize with the
// output check on 'gpu' against 'cpu' (same q/scales/zeros bytes, the same check to the last digit). Without a
// GPU those say "skipped: no usable GPU (reason)".
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createModel, gpuUnavailable, inferInfo } from '../../../native/forward';
import type { LinearWeight, ModelWeights } from '../../../native/forward-types';
import * as eng from '../../../native/index';
import { KQ_PRESETS, kdequantize, kquantize } from '../../../native/kquant';
import { encode, gaussian } from './data';
import { config, f32Weight, packedMaker, weights as tinyModel } from './forward-model';

const why = inferInfo() ? gpuUnavailable() : 'the native addon is not built';
const gpuSkip = why ? `skipped: no usable GPU (${why})` : false;
if (why) process.stdout.write(`# forward-gpu: GPU tests skipped: no usable GPU (${why})\n`);

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    s += b[i] ** 2;
  }
  return Math.sqrt(d / (s || 1));
}

describe('GPU forward: refusal and fallback', () => {
  it("backend 'gpu' without a usable GPU is one line naming why; 'auto' runs on the CPU", {
    skip: !why ? 'a GPU is usable here' : false,
  }, async () => {
    if (!inferInfo()) return;
    const c = config('llama');
    const w = await tinyModel(c, f32Weight);
    assert.throws(
      () => createModel(c, w, { contextLength: 16, backend: 'gpu' }),
      (e: Error) => e.message.startsWith("backend 'gpu' is not available: ") && !e.message.includes('\n'),
    );
    const m = createModel(c, w, { contextLength: 16, backend: 'auto' });
    assert.match(m.backend, /^cpu-/);
    assert.equal(m.forward([1, 2, 3], 0, false).length, c.vocabSize);
    m.dispose();
  });
});

describe('GPU forward against the CPU model', { skip: gpuSkip }, () => {
  for (const family of ['llama', 'mistral', 'gemma'] as const) {
    it(`${family}: float and 8/4/2/1-bit weights, prompt then decode, GPU within the stated bound of the CPU`, async () => {
      const c = config(family);
      const sets: [string, ModelWeights, number][] = [['f32', await tinyModel(c, f32Weight), 1e-5]];
      for (const bits of [8, 4, 2, 1] as const)
        sets.push([`${bits}-bit`, await tinyModel(c, packedMaker(bits, 32)), 2e-3]);
      const prompt = [3, 17, 42, 5, 60, 0, 11, 29, 8];
      for (const [what, w, bound] of sets) {
        process.env.APL_INFER_VARIANT = 'scalar';
        const cpu = createModel(c, w, { contextLength: 32, backend: 'cpu' });
        delete process.env.APL_INFER_VARIANT;
        const gpu = createModel(c, w, { contextLength: 32, backend: 'gpu' });
        assert.match(gpu.backend, /^cuda:/);
        let worst = relL2(gpu.forward(prompt, 0, true), cpu.forward(prompt, 0, true));
        for (let s = 0; s < 4; s++) {
          const tok = [(7 * s + 2) % c.vocabSize];
          worst = Math.max(
            worst,
            relL2(gpu.forward(tok, prompt.length + s, false), cpu.forward(tok, prompt.length + s, false)),
          );
        }
        assert.ok(worst <= bound, `${family} ${what}: GPU vs CPU relative L2 ${worst} > ${bound}`);
        // reset and a bad position behave as on the CPU
        gpu.reset();
        assert.throws(() => gpu.forward([1], 5, false), /past the cached length/);
        cpu.dispose();
        gpu.dispose();
      }
    });
  }

  it('a prompt in pieces (prefillChunk) gives the logits of the whole prompt, bit for bit', async () => {
    const c = config('mistral'); // a prompt longer than its window of 5
    const w = await tinyModel(c, packedMaker(4, 32));
    const prompt = [3, 17, 42, 5, 60, 0, 11, 29, 8];
    const whole = createModel(c, w, { contextLength: 32, backend: 'gpu' });
    const pieces = createModel(c, w, { contextLength: 32, backend: 'gpu', prefillChunk: 4 });
    assert.deepEqual(pieces.forward(prompt, 0, true), whole.forward(prompt, 0, true));
    assert.deepEqual(pieces.forward([7, 1, 2], 9, false), whole.forward([7, 1, 2], 9, false));
    whole.reset();
    pieces.reset();
    assert.deepEqual(pieces.forward(prompt, 0, false), whole.forward(prompt, 0, false));
    whole.dispose();
    pieces.dispose();
  });

  it('kquant weights (int8 activations, as on the CPU): GPU within 2e-3 of the CPU scalar model; the dequantized float model differs by the int8 error', async () => {
    for (const family of ['llama', 'gemma'] as const) {
      const c = config(family);
      const deq = new Map<LinearWeight, LinearWeight>();
      const kw = await tinyModel(c, async (rows, cols, seed) => {
        const f = (await f32Weight(rows, cols, seed)) as Extract<LinearWeight, { kind: 'float' }>;
        const r = await kquantize({ ...KQ_PRESETS[4], group: 16, super: 64, data: f.data, dtype: 'f32', rows, cols });
        const w: LinearWeight = { kind: 'kquant', ...r, bits: r.bits as 2 | 4 | 8 };
        const d = kdequantize(r);
        deq.set(w, {
          kind: 'float',
          rows,
          cols,
          dtype: 'f32',
          data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
        });
        return w;
      });
      const D = (w: LinearWeight) => deq.get(w) ?? w;
      const fw: ModelWeights = {
        embed: D(kw.embed),
        lmHead: D(kw.lmHead),
        finalNorm: kw.finalNorm,
        layers: kw.layers.map((l) => ({
          ...l,
          q: D(l.q),
          k: D(l.k),
          v: D(l.v),
          o: D(l.o),
          gate: D(l.gate),
          up: D(l.up),
          down: D(l.down),
        })),
      };
      process.env.APL_INFER_VARIANT = 'scalar';
      const cpu = createModel(c, kw, { contextLength: 32, backend: 'cpu' });
      const cpuFloat = createModel(c, fw, { contextLength: 32, backend: 'cpu' });
      delete process.env.APL_INFER_VARIANT;
      const gpu = createModel(c, kw, { contextLength: 32, backend: 'gpu' });
      const ids = [3, 17, 42, 5, 60, 0, 11];
      const g = gpu.forward(ids, 0, true);
      const rel = relL2(g, cpu.forward(ids, 0, true));
      assert.ok(rel <= 2e-3, `${family} kquant: GPU vs CPU relative L2 ${rel}`);
      // the int8 activations are there: the float model on the dequantized weights is further away
      const relFloat = relL2(g, cpuFloat.forward(ids, 0, true));
      assert.ok(relFloat > 10 * rel && relFloat < 5e-2, `${family} kquant: ${relFloat} from the float model`);
      for (const m of [cpu, cpuFloat, gpu]) m.dispose();
    }
  });

  const goldenHelpers = join(__dirname, '../run/helpers.ts');
  it('tiny checkpoints: GPU logits within 1e-5 of torch golden logits, same argmax', {
    skip: !existsSync(goldenHelpers),
  }, async () => {
    // biome-ignore lint/suspicious/noExplicitAny: test helpers of the run feature
    const h = (require as any)(goldenHelpers);
    for (const name of h.TINY as string[]) {
      const { config: c, weights } = await h.checkpointModel(name);
      const ids = h.goldenPrompt(name) as number[];
      const golden = await h.readNpyF32(h.fixture(`golden/${name}.npy`));
      // float32 K/V as the CPU golden tests pin (a float16 cache moves these logits by ~4e-4)
      const m = createModel(c, weights, { contextLength: 64, backend: 'gpu', kvCache: 'f32' });
      const logits = m.forward(ids, 0, true);
      assert.ok(h.relError(logits, golden.data) <= 1e-5, `${name}: ${h.relError(logits, golden.data)}`);
      assert.deepEqual(h.argmaxRows(logits, ids.length), h.argmaxRows(golden.data, ids.length));
      m.dispose();
    }
  });
});

describe('quantize and the output check on the GPU', { skip: gpuSkip }, () => {
  it("backend 'gpu' = 'cpu': the same q/scales/zeros bytes and the same check, bits × groups × dtypes", async () => {
    const rows = 301;
    const cols = 517;
    const n = 7;
    const x = gaussian(n * cols, 99, 1);
    const sampled = Int32Array.from({ length: 40 }, (_, k) => Math.floor((k * rows) / 40));
    for (const dtype of ['f32', 'bf16'] as const) {
      const f = gaussian(rows * cols, 5, 0.05);
      const data = encode(f, dtype);
      const dt = dtype;
      for (const bits of [1, 2, 4, 8] as const)
        for (const groupSize of [32, 128, cols]) {
          const o = {
            data,
            dtype: dt as 'f32' | 'bf16',
            rows,
            cols,
            bits,
            groupSize,
            symmetric: false,
            mode: 'optimized' as const,
            scaleDtype: 'f16' as const,
            metrics: true,
          };
          const check = { x, n, rows: sampled };
          const a = await eng.quantize({ ...o, backend: 'cpu', check });
          const b = await eng.quantize({ ...o, backend: 'gpu', check });
          assert.match(b.backend, /^cuda:/);
          assert.ok(!b.backend.includes('output check on the CPU'), b.backend);
          const tag = `${dt} ${bits}-bit group ${groupSize}`;
          assert.deepEqual(Buffer.from(b.q), Buffer.from(a.q), `${tag}: q`);
          assert.deepEqual(Buffer.from(b.scales), Buffer.from(a.scales), `${tag}: scales`);
          assert.deepEqual(Buffer.from(b.zeros), Buffer.from(a.zeros), `${tag}: zeros`);
          assert.deepEqual(b.check, a.check, `${tag}: output check`);
        }
    }
  });
});
