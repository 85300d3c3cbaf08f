// The accuracy check computed in the engine (native/src/check.cc, for both quantization types, on its threads, as rows are quantized) against
// the TypeScript it replaced (accuracy.ts productError / sumSquares through qmatmul): the same sums to the last bit,
// for each input dtype, with Σw² (split tensors) and without, and for a tensor with more inputs than four.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineInfo, quantize } from '../../../native/index';
import { KQ_PRESETS, kquantize } from '../../../native/kquant';
import type { QuantPlan } from '../../../server/src/convert/plan';
import { benchKqChecks } from '../../../server/src/convert/quantize-kquant';
import { benchChecks } from '../../../server/src/convert/quantize-tensor';
import { gaussian } from '../../helpers/random';
import { bytesOf } from './quantize-harness';

/** Values exact in every dtype: multiples of 1/1024 below 0.1 (bytesOf's F16 rounding leaves them as they are). */
function exactValues(n: number, seed: number): Float32Array {
  const g = gaussian(n, seed, 0.02);
  for (let i = 0; i < n; i++) g[i] = Math.round(g[i] * 1024) / 1024;
  return g;
}

const cases: Array<[string, 'F32' | 'F16' | 'BF16', number, number, number]> = [
  ['bf16, many rows (4 inputs, sampled rows)', 'BF16', 700, 192, 1 << 30],
  ['bf16, split into chunks (Σw² in blocks of 65536)', 'BF16', 600, 256, 64 * 1024],
  ['f32, split (Σw² as one chain)', 'F32', 300, 128, 16 * 1024],
  ['f16, few rows (more inputs, every row)', 'F16', 20, 136, 1 << 30],
];

for (const [label, dtype, rows, cols, chunkBytes] of cases) {
  test(`engine output check equals the TypeScript one: ${label}`, async (t) => {
    if (!engineInfo().native) return t.skip('native addon not built: the TypeScript path is the only one');
    const x = exactValues(rows * cols, rows + cols);
    const raw = bytesOf(x, dtype);
    const p: QuantPlan = {
      kind: 'quantize',
      name: 'w',
      dtype,
      shape: [rows, cols],
      rows,
      cols,
      bits: 4,
      groupSize: 64,
      symmetric: false,
      mode: 'optimized',
    } as unknown as QuantPlan;
    const s = { nEval: 4, chunkBytes, scaleDtype: 'f16' as const };
    const o = {
      bits: 4 as const,
      groupSize: 64,
      symmetric: false,
      mode: 'optimized' as const,
      scaleDtype: 'f16' as const,
      data: raw,
      dtype: dtype.toLowerCase() as 'bf16',
      rows,
      cols,
    };
    const res = await quantize(o);
    const c = benchChecks(p, raw, res, s);
    assert.ok(c.request.rows.length > 0);
    assert.equal(c.request.sumSquares, Math.floor(chunkBytes / (raw.length / rows)) < rows);
    const engine = await quantize({ ...o, metrics: true, check: c.request, threads: 2 });
    assert.deepEqual(engine.q, res.q);
    assert.deepEqual(engine.check, c.inTs());
    assert.ok(engine.check!.ySq > 0 && engine.check!.dySq > 0);
  });
}

// The same for the two-level-scale type (the default at 2 and 4 bits): its engine check (kquant_engine.cc, rows
// dequantized by the selected kernel) against quantize-kquant.ts's TypeScript check, for both presets.
const kqCases: Array<[string, 'F32' | 'F16' | 'BF16', number, number, number, 2 | 4]> = [
  ['kquant 4-bit, bf16, many rows', 'BF16', 700, 1536, 1 << 30, 4],
  ['kquant 2-bit, bf16, split (Σw² in blocks of 65536)', 'BF16', 300, 512, 64 * 1024, 2],
  ['kquant 4-bit, f32, split, ragged super-block', 'F32', 150, 1600, 256 * 1024, 4],
  ['kquant 2-bit, f16, few rows', 'F16', 20, 272, 1 << 30, 2],
];

for (const [label, dtype, rows, cols, chunkBytes, bits] of kqCases) {
  test(`engine output check equals the TypeScript one: ${label}`, async (t) => {
    if (!engineInfo().native) return t.skip('native addon not built: the TypeScript path is the only one');
    const x = exactValues(rows * cols, rows + cols);
    const raw = bytesOf(x, dtype);
    const kq = KQ_PRESETS[bits];
    const p = { kind: 'quantize', name: 'w', dtype, shape: [rows, cols], rows, cols, bits, kq } as unknown as QuantPlan;
    const o = { ...kq, data: raw, dtype: dtype.toLowerCase() as 'bf16', rows, cols };
    const res = await kquantize(o);
    const c = benchKqChecks(p, raw, res, { nEval: 4, chunkBytes });
    assert.ok(c.request.rows.length > 0);
    assert.equal(c.request.sumSquares, Math.floor(chunkBytes / (raw.length / rows)) < rows);
    const qInto = new Uint8Array(res.q.length);
    const engine = await kquantize({ ...o, metrics: true, check: c.request, threads: 2, qInto });
    assert.equal(engine.q, qInto);
    assert.deepEqual(engine.q, res.q);
    assert.deepEqual(engine.check, c.inTs());
    assert.ok(engine.check!.ySq > 0 && engine.check!.dySq > 0);
  });
}

test('kquantize rejects a bad check request and a qInto of the wrong size, naming the tensor', async () => {
  const kq = KQ_PRESETS[4];
  const o = { ...kq, data: new Uint8Array(2 * 48 * 2), dtype: 'bf16' as const, rows: 2, cols: 48, name: 'w' };
  const x = new Float32Array(48);
  await assert.rejects(
    kquantize({ ...o, qInto: new Uint8Array(3) }),
    /^Error: w: qInto must be a Uint8Array of 48 bytes/,
  );
  await assert.rejects(
    kquantize({ ...o, check: { x, n: 1, rows: Int32Array.from([1, 0]), sumSquares: false } }),
    /w: check.rows must be ascending/,
  );
  await assert.rejects(
    kquantize({ ...o, check: { x, n: 2, rows: Int32Array.from([0]), sumSquares: false } }),
    /w: check.x must be a Float32Array of 2×48 values/,
  );
});
