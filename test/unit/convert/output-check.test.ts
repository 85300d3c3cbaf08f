// The accuracy check computed in the engine (native/src/check.cc, for both quantization types, on its threads, as rows
// are quantized) against the TypeScript it replaced (accuracy.ts floatProducts through qmatmul): the same Σ‖f‖² chain,
// products and sums to the last bit, for each input dtype, for a tensor with more inputs than four; and a tensor
// checked in two calls (the chain continued, the products summed in one call's order) against one call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineChunkRows, engineInfo, quantize } from '../../../native/index';
import { KQ_PRESETS, kquantize } from '../../../native/kquant';
import { type ChunkCheck, evalSample, productSums } from '../../../server/src/convert/accuracy';
import type { QuantPlan } from '../../../server/src/convert/plan';
import { benchKqChecks } from '../../../server/src/convert/quantize-kquant';
import { benchChecks, checkFor, engineCheck } from '../../../server/src/convert/quantize-tensor';
import { gaussian } from '../../helpers/random';
import { bytesOf } from './quantize-harness';

/** Values exact in every dtype: multiples of 1/1024 below 0.1 (bytesOf's F16 rounding leaves them as they are). */
function exactValues(n: number, seed: number): Float32Array {
  const g = gaussian(n, seed, 0.02);
  for (let i = 0; i < n; i++) g[i] = Math.round(g[i] * 1024) / 1024;
  return g;
}

/**
 * The engine's check of a call (its products in the request's arrays, its sums) equals the TypeScript one: the Σ‖f‖²
 * chain, every product, and Σ y², Σ (y − ŷ)² as productSums gives them.
 */
function sameCheck(
  e: ChunkCheck | undefined,
  ts: ChunkCheck,
  n: number,
  sums?: { fSq: number; ySq: number; dySq: number },
): void {
  assert.ok(e && sums, 'the engine filled the check');
  assert.equal(e.fSq, ts.fSq, 'Σ‖f‖²');
  assert.equal(e.m, ts.m);
  assert.deepEqual(e.y, ts.y, 'float products');
  assert.deepEqual(e.yq, ts.yq, 'quantized products');
  const want = productSums([ts], n);
  assert.equal(sums.ySq, want.ySq, 'Σ y²');
  assert.equal(sums.dySq, want.dySq, 'Σ (y − ŷ)²');
  assert.ok(sums.ySq > 0 && sums.dySq > 0);
}

const cases: Array<[string, 'F32' | 'F16' | 'BF16', number, number, number]> = [
  ['bf16, many rows (4 inputs, sampled rows)', 'BF16', 700, 192, 1 << 30],
  ['bf16, 600 rows', 'BF16', 600, 256, 64 * 1024],
  ['f32', 'F32', 300, 128, 16 * 1024],
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
    const engine = await quantize({ ...o, metrics: true, check: c.request, threads: 2 });
    assert.deepEqual(engine.q, res.q);
    sameCheck(engineCheck(engine, c.request), c.inTs(), c.request.n, engine.check);
  });
}

// The same for the two-level-scale type (the default at 2 and 4 bits): its engine check (kquant_engine.cc, rows
// dequantized by the selected kernel) against quantize-kquant.ts's TypeScript check, for both presets.
const kqCases: Array<[string, 'F32' | 'F16' | 'BF16', number, number, number, 2 | 4]> = [
  ['kquant 4-bit, bf16, many rows', 'BF16', 700, 1536, 1 << 30, 4],
  ['kquant 2-bit, bf16', 'BF16', 300, 512, 64 * 1024, 2],
  ['kquant 4-bit, f32, ragged super-block', 'F32', 150, 1600, 256 * 1024, 4],
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
    const qInto = new Uint8Array(res.q.length);
    const engine = await kquantize({ ...o, metrics: true, check: c.request, threads: 2, qInto });
    assert.equal(engine.q, qInto);
    assert.deepEqual(engine.q, res.q);
    sameCheck(engineCheck(engine, c.request), c.inTs(), c.request.n, engine.check);
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
    kquantize({ ...o, check: { x, n: 1, rows: Int32Array.from([1, 0]) } }),
    /w: check.rows must be ascending/,
  );
  await assert.rejects(
    kquantize({ ...o, check: { x, n: 2, rows: Int32Array.from([0]) } }),
    /w: check.x must be a Float32Array of 2×48 values/,
  );
});

// A tensor checked in two calls (rows [0, k) and [k, rows)), the second continuing the first's Σ‖f‖² chain, gives one
// call's Σ‖f‖², and its products summed in one call's order (productSums) one call's Σ y² and Σ (y − ŷ)²: for any k.
for (const [label, k] of [
  ['split on an engine chunk', engineChunkRows(256)],
  ['split mid engine chunk', 77],
] as const) {
  test(`a tensor checked in two calls has one call's check sums: ${label}`, async (t) => {
    if (!engineInfo().native) return t.skip('native addon not built');
    const rows = 300; // 7 inputs (two blocks of four), 293 rows sampled
    const cols = 256;
    const raw = bytesOf(exactValues(rows * cols, 5), 'BF16');
    const p = { name: 'w', dtype: 'BF16', rows, cols } as unknown as QuantPlan;
    const q = {
      bits: 4 as const,
      groupSize: 64,
      symmetric: false,
      mode: 'optimized' as const,
      scaleDtype: 'f16' as const,
    };
    const call = (r0: number, count: number, fSqFrom?: number) => {
      const check = checkFor(p, r0, count, 4, fSqFrom);
      const data = raw.subarray(r0 * cols * 2, (r0 + count) * cols * 2);
      return quantize({ ...q, data, dtype: 'bf16', rows: count, cols, check }).then((res) => ({ res, check }));
    };
    const whole = await call(0, rows);
    const a = await call(0, k);
    const b = await call(k, rows - k, a.res.check!.fSq);
    const n = whole.check.n;
    assert.equal(n, evalSample(rows, 4).n);
    assert.equal(n, 7);
    const parts = [engineCheck(a.res, a.check)!, engineCheck(b.res, b.check)!];
    assert.ok(parts[0].m > 0 && parts[1].m > 0, 'both calls hold sampled rows');
    assert.equal(b.res.check!.fSq, whole.res.check!.fSq, 'Σ‖f‖² continued');
    const s = productSums(parts, n);
    assert.equal(s.ySq, whole.res.check!.ySq);
    assert.equal(s.dySq, whole.res.check!.dySq);
    // Not continued (the second call from 0), the chain is only the second part's.
    const alone = await call(k, rows - k);
    assert.notEqual(alone.res.check!.fSq, whole.res.check!.fSq);
  });
}
