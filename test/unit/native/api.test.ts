// The engine's public API (native/index.ts), run against whichever engine loads (addon or TypeScript reference)
// and, with APL_NO_NATIVE=1, against the reference alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as eng from '../../../native/index';
import { f16BitsToF32 } from '../../../native/reference';
import { bytesOf, decoded, encode, gaussian, relErr, studentT4 } from './data';

type Bits = 1 | 2 | 4 | 8;
const base = { groupSize: 64, symmetric: false, mode: 'minmax' as const, scaleDtype: 'f16' as const };

async function roundTrip(x: Float32Array, rows: number, cols: number, p: Partial<eng.QuantParams> & { bits: Bits }) {
  const params = { ...base, ...p };
  const r = await eng.quantize({ ...params, data: bytesOf(x), dtype: 'f32', rows, cols, metrics: true });
  const w = { ...params, q: r.q, scales: r.scales, zeros: r.zeros, rows, cols };
  return { r, w, deq: eng.dequantize(w) };
}

describe('native engine API', () => {
  it('reports which engine it uses', () => {
    const info = eng.engineInfo();
    assert.equal(typeof info.native, 'boolean');
    if (!info.native) assert.match(info.reason ?? '', /reference|APL_NO_NATIVE|forced/);
    assert.equal(typeof info.gpu.available, 'boolean');
    assert.ok(['optimized', 'minmax'].includes(eng.DEFAULT_MODE));
  });

  it('looks for the addon relative to its own folder (native/ under tsx, dist/ in bundles)', () => {
    const c = eng.addonCandidates('/x/dist');
    assert.ok(c.includes('/x/native/build/Release/apl_quant.node'));
    assert.ok(eng.addonCandidates('/x/native').includes('/x/native/build/Release/apl_quant.node'));
    if (!eng.engineInfo().native) assert.match(eng.loadNote ?? '', /TypeScript reference|APL_NO_NATIVE|forced/);
  });

  it('rejects a scale f16 cannot hold with code ERR_SCALE_OVERFLOW, and f32 scales take it', async () => {
    assert.equal(eng.ERR_SCALE_OVERFLOW, 'ERR_APL_SCALE_OVERFLOW');
    const x = new Float32Array(64);
    for (let i = 0; i < x.length; i++) x[i] = (i - 32) * 1e6;
    for (const bits of [1, 4] as Bits[]) {
      await assert.rejects(roundTrip(x, 1, 64, { bits }), (e: eng.NativeError) => {
        assert.equal(e.code, eng.ERR_SCALE_OVERFLOW);
        assert.match(e.message, /scaleDtype 'f32'/);
        return true;
      });
      const { r } = await roundTrip(x, 1, 64, { bits, scaleDtype: 'f32' });
      assert.ok(r.metrics && Number.isFinite(r.metrics.relError));
    }
    // Other errors carry no such code.
    const bad = new Float32Array(64).fill(Number.NaN);
    await assert.rejects(roundTrip(bad, 1, 64, { bits: 4 }), (e: eng.NativeError) => e.code === undefined);
  });

  it('dequantize unpacks low bits first and applies (q − zero) · scale per group (the inspector view)', () => {
    const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
    const w = { ...base, bits: 2 as const, groupSize: 4, scaleDtype: 'f32' as const, rows: 1, cols: 6 };
    // 1 row, 6 cols, 2 bits, groups of 4: values 0 1 2 3 | 3 2 → bytes 0b11100100, 0b00001011
    const q = Uint8Array.of(0b11100100, 0b00001011);
    assert.deepEqual([...eng.dequantize({ ...w, q, scales: f32(0.5, 2), zeros: f32(1, 2) })], [-0.5, 0, 0.5, 1, 2, 0]);
    // 1 bit, zero point 0.5: ±scale/2, first value in the lowest bit
    const w1 = { ...w, bits: 1 as const, groupSize: 2, cols: 2 };
    assert.deepEqual([...eng.dequantize({ ...w1, q: Uint8Array.of(0b01), scales: f32(4), zeros: f32(0.5) })], [2, -2]);
    assert.throws(() => eng.dequantize({ ...w, q, scales: f32(1), zeros: f32(1) }), /scales have 4 bytes, expected 8/);
  });

  it('produces the documented sizes and packing', async () => {
    const rows = 3;
    const cols = 10; // groups of 4: 4, 4, 2 (partial last group)
    const x = gaussian(rows * cols, 5);
    for (const bits of [1, 2, 4, 8] as Bits[]) {
      for (const scaleDtype of ['f16', 'f32'] as const) {
        const { r } = await roundTrip(x, rows, cols, { bits, groupSize: 4, scaleDtype });
        assert.equal(r.q.length, rows * Math.ceil((cols * bits) / 8));
        assert.equal(r.scales.length, rows * 3 * (scaleDtype === 'f16' ? 2 : 4));
        assert.equal(r.zeros.length, r.scales.length);
      }
    }
    // 4 bits: first value in the low nibble.
    const y = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const { r } = await roundTrip(y, 1, 16, { bits: 4, groupSize: 16 });
    assert.deepEqual([...r.q], [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    const sc = new Uint16Array(r.scales.buffer.slice(r.scales.byteOffset, r.scales.byteOffset + 2));
    assert.equal(f16BitsToF32(sc[0]), 1);
  });

  it('dequantizes as (q - zero) * scale with the stored f16 values', async () => {
    const rows = 4;
    const cols = 100;
    const x = gaussian(rows * cols, 9);
    const { r, deq } = await roundTrip(x, rows, cols, { bits: 4, groupSize: 32 });
    const s = new Uint16Array(r.scales.slice().buffer);
    const z = new Uint16Array(r.zeros.slice().buffer);
    const gpr = 4;
    for (let row = 0; row < rows; row++) {
      for (let j = 0; j < cols; j++) {
        const byte = r.q[row * 50 + (j >> 1)];
        const q = (byte >> ((j & 1) * 4)) & 15;
        const g = row * gpr + Math.floor(j / 32);
        const want = Math.fround(Math.fround(q - f16BitsToF32(z[g])) * f16BitsToF32(s[g]));
        assert.equal(deq[row * cols + j], want);
      }
    }
    // Metrics from the quantize pass equal errorMetrics and the direct computation.
    const m = eng.errorMetrics(
      { data: bytesOf(x), dtype: 'f32' },
      { ...base, bits: 4, groupSize: 32, ...r, rows, cols },
    );
    assert.ok(r.metrics);
    assert.ok(Math.abs(m.relError - r.metrics.relError) < 1e-9);
    assert.ok(Math.abs(m.relError - relErr(x, deq)) < 1e-6);
    assert.ok(m.cosine > 0.99 && m.cosine <= 1);
    // The same metrics from decoded values (what the inspector compares with the source weights).
    assert.deepEqual(eng.compareMetrics(x, deq), m);
    const same = eng.compareMetrics(Float32Array.of(1, -2), Float32Array.of(1, -2));
    assert.deepEqual([same.relError, same.maxAbsError, same.cosine], [0, 0, 1]);
    assert.throws(() => eng.compareMetrics(x, deq.subarray(1)), /one length/);
    assert.ok(m.snrDb > 15);
  });

  it('keeps round-trip error within limits per bit width (group 64)', async () => {
    const rows = 32;
    const cols = 512;
    const g = gaussian(rows * cols, 11);
    const t = studentT4(rows * cols, 12);
    // Limits: measured values plus margin; the 1-bit figure is the ~60 % inherent to sign·mean|w|.
    const limits: Record<Bits, [number, number]> = {
      8: [0.006, 0.008],
      4: [0.095, 0.125],
      2: [0.47, 0.62],
      1: [0.62, 0.72],
    };
    for (const bits of [8, 4, 2, 1] as Bits[]) {
      for (const [k, x] of [g, t].entries()) {
        const mm = await roundTrip(x, rows, cols, { bits, mode: 'minmax' });
        const op = await roundTrip(x, rows, cols, { bits, mode: 'optimized' });
        const e0 = relErr(x, mm.deq);
        const e1 = relErr(x, op.deq);
        assert.ok(e0 < limits[bits][k], `${bits}-bit ${k ? 't4' : 'gauss'} minmax ${e0}`);
        assert.ok(e1 <= e0 * 1.0001, `${bits}-bit optimized ${e1} > minmax ${e0}`);
        if (bits === 2) assert.ok(e1 < e0 * 0.85, `2-bit optimized should cut error by 15 %: ${e1} vs ${e0}`);
      }
    }
  });

  it('handles f16 and bf16 input like the same values given as f32', async () => {
    const rows = 5;
    const cols = 70;
    const x = studentT4(rows * cols, 3);
    for (const dtype of ['f16', 'bf16'] as const) {
      const p = { ...base, bits: 4 as const, mode: 'optimized' as const };
      const a = await eng.quantize({ ...p, data: encode(x, dtype), dtype, rows, cols });
      const b = await eng.quantize({ ...p, data: bytesOf(decoded(x, dtype)), dtype: 'f32', rows, cols });
      assert.deepEqual(a.q, b.q);
      assert.deepEqual(a.scales, b.scales);
      assert.deepEqual(a.zeros, b.zeros);
    }
  });

  it('handles edge cases: constant rows, zeros, one element, tiny and huge values, denormals', async () => {
    const cases: Array<[string, Float32Array, number]> = [
      ['zeros', new Float32Array(64), 64],
      ['constant', new Float32Array(64).fill(3.5), 64],
      ['negative constant', new Float32Array(64).fill(-0.25), 64],
      ['one element', new Float32Array([0.7]), 1],
      ['tiny', gaussian(64, 4, 1e-6), 64],
      ['denormal', new Float32Array(64).map((_, i) => (i % 2 ? 1e-40 : -3e-41)), 64],
      ['huge', gaussian(64, 4, 1000), 64],
      ['offset', gaussian(64, 4, 0.01).map((v) => v + 5), 64],
    ];
    for (const [label, x, cols] of cases) {
      for (const bits of [1, 2, 4, 8] as Bits[]) {
        for (const symmetric of [false, true]) {
          for (const mode of ['minmax', 'optimized'] as const) {
            const { deq } = await roundTrip(x, 1, cols, { bits, symmetric, mode });
            let max = 0;
            let maxErr = 0;
            for (let i = 0; i < cols; i++) {
              assert.ok(Number.isFinite(deq[i]), `${label} ${bits} ${symmetric}: non-finite output`);
              max = Math.max(max, Math.abs(x[i]));
              maxErr = Math.max(maxErr, Math.abs(x[i] - deq[i]));
            }
            if (bits === 8 && label !== 'denormal' && label !== 'tiny' && max > 0)
              assert.ok(maxErr <= max * 0.02, `${label} 8-bit ${symmetric} ${mode}: max err ${maxErr} of ${max}`);
            if (label === 'zeros') assert.equal(maxErr, 0);
            if ((label === 'constant' || label === 'negative constant') && bits > 1 && !symmetric)
              assert.ok(maxErr <= max * 2e-3, `${label} ${bits}: ${maxErr}`);
          }
        }
      }
    }
  });

  it('keeps tiny magnitudes with f32 scales (f16 scales underflow below ~6e-8)', async () => {
    const x = gaussian(64, 4, 1e-6);
    const { deq } = await roundTrip(x, 1, 64, { bits: 8, scaleDtype: 'f32' });
    assert.ok(relErr(x, deq) < 0.01);
  });

  it('rejects NaN and Inf naming the tensor and the first bad index', async () => {
    const x = gaussian(200, 1);
    x[137] = Number.NaN;
    x[150] = Infinity;
    await assert.rejects(
      eng.quantize({ ...base, bits: 4, data: bytesOf(x), dtype: 'f32', rows: 2, cols: 100, name: 'layers.0.w' }),
      /layers\.0\.w.*index 137/,
    );
  });

  it('rejects scales that f16 cannot store, suggesting f32', async () => {
    const x = new Float32Array([-3e9, 3e9, 1, 2]);
    const p = { ...base, bits: 4 as const, data: bytesOf(x), dtype: 'f32' as const, rows: 1, cols: 4, name: 'big' };
    await assert.rejects(eng.quantize(p), /big.*f32/);
    const r = await eng.quantize({ ...p, scaleDtype: 'f32' });
    assert.equal(r.scales.length, 4);
  });

  it('validates arguments', async () => {
    const data = new Uint8Array(16);
    const ok = { ...base, bits: 4 as const, data, dtype: 'f32' as const, rows: 2, cols: 2 };
    await assert.rejects(eng.quantize({ ...ok, rows: 3 }), /expected 24/);
    await assert.rejects(eng.quantize({ ...ok, bits: 3 as Bits }), /bits/);
    await assert.rejects(eng.quantize({ ...ok, groupSize: 0 }), /groupSize/);
    await assert.rejects(eng.quantize({ ...ok, dtype: 'f64' as 'f32' }), /dtype/);
    await assert.rejects(eng.quantize({ ...ok, threads: -1 }), /threads/);
    await assert.rejects(eng.quantize({ ...ok, threads: 1025 }), /threads/);
    assert.throws(() =>
      eng.dequantize({ ...base, bits: 4, q: new Uint8Array(3), scales: data, zeros: data, rows: 2, cols: 2 }),
    );
  });

  it('reports progress and honours cancellation', async () => {
    const rows = 64;
    const cols = 4096;
    const x = gaussian(rows * cols, 21);
    const seen: number[] = [];
    const r = await eng.quantize({
      ...base,
      bits: 4,
      data: bytesOf(x),
      dtype: 'f32',
      rows,
      cols,
      threads: 2,
      onProgress: (n) => seen.push(n),
    });
    assert.ok(r.q.length > 0);
    assert.ok(seen.length > 0);
    assert.equal(seen[seen.length - 1], rows);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1]);

    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      eng.quantize({ ...base, bits: 4, data: bytesOf(x), dtype: 'f32', rows, cols, signal: ac.signal }),
      {
        name: 'AbortError',
      },
    );
    const ac2 = new AbortController();
    const p = eng.quantize({
      ...base,
      bits: 4,
      mode: 'optimized',
      data: bytesOf(x),
      dtype: 'f32',
      rows,
      cols,
      threads: 1,
      signal: ac2.signal,
      onProgress: () => ac2.abort(),
    });
    await assert.rejects(p, { name: 'AbortError' });
  });

  it('rejects with the error an onProgress callback throws', async () => {
    const x = gaussian(64 * 4096, 23);
    const boom = new Error('boom');
    await assert.rejects(
      eng.quantize({
        ...base,
        bits: 4,
        data: bytesOf(x),
        dtype: 'f32',
        rows: 64,
        cols: 4096,
        onProgress: () => {
          throw boom;
        },
      }),
      (e) => e === boom,
    );
  });

  it('qmatmul equals x · dequantize(W)ᵀ', async () => {
    const rows = 7;
    const cols = 96;
    const w = gaussian(rows * cols, 31);
    const { w: qw, deq } = await roundTrip(w, rows, cols, { bits: 4, groupSize: 32 });
    const n = 3;
    const x = gaussian(n * cols, 32);
    const y = eng.qmatmul(x, n, qw);
    assert.equal(y.length, n * rows);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let j = 0; j < cols; j++) s += x[i * cols + j] * deq[r * cols + j];
        assert.ok(Math.abs(y[i * rows + r] - s) < 1e-4 * (1 + Math.abs(s)), `y[${i},${r}] ${y[i * rows + r]} vs ${s}`);
      }
    }
  });

  it('computes tensor statistics with NaN/Inf counts and a histogram', () => {
    const x = new Float32Array([1, 2, 3, 4, Number.NaN, Infinity, -Infinity, 0]);
    const s = eng.tensorStats(bytesOf(x), 'f32', 4);
    assert.equal(s.count, 5);
    assert.equal(s.nan, 1);
    assert.equal(s.inf, 2);
    assert.equal(s.min, 0);
    assert.equal(s.max, 4);
    assert.ok(Math.abs(s.mean - 2) < 1e-12);
    assert.ok(Math.abs(s.std - Math.sqrt(2)) < 1e-12);
    assert.deepEqual(s.histogram.counts, [1, 1, 1, 2]);
    const i8 = eng.tensorStats(new Uint8Array([0xff, 1, 2]), 'i8', 3);
    assert.equal(i8.min, -1);
    assert.equal(i8.max, 2);
    const h = eng.tensorStats(encode(new Float32Array([0.5, -0.5]), 'f16'), 'f16', 2);
    assert.deepEqual([h.min, h.max, h.mean], [-0.5, 0.5, 0]);
    assert.throws(() => eng.tensorStats(new Uint8Array(3), 'f32'), /whole number/);
  });
});
