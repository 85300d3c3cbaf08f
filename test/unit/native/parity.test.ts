// The TypeScript reference (native/reference.ts) against the C++ engine over a table of every scheme: q, scales and
// zeros must be identical bytes, for the scalar reference (APL_FORCE_SCALAR=1) and the SIMD kernel this CPU runs.
// Skipped, saying so, when the addon is not built; under CI=true or APL_REQUIRE_NATIVE=1 a missing or unloadable
// addon is a failure instead.
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import * as eng from '../../../native/index';
import * as ref from '../../../native/reference';
import { encode, gaussian, studentT4 } from './data';

const info = eng.engineInfo();
const required = process.env.CI === 'true' || process.env.APL_REQUIRE_NATIVE === '1';
const skip = info.native ? false : `native addon not loaded (${info.reason}); TypeScript-vs-C++ parity not checked`;
if (skip && !required) console.log(`# SKIPPED: ${skip}`);

test('the native addon loads (required under CI=true or APL_REQUIRE_NATIVE=1)', {
  skip: required ? false : skip,
}, () => {
  assert.ok(info.native, `CI=true or APL_REQUIRE_NATIVE=1, and the ${skip}`);
});

type Bits = 1 | 2 | 4 | 8;

function tsQuantize(data: Uint8Array, dtype: ref.InputDType, rows: number, cols: number, p: ref.QuantParams) {
  const sb = p.scaleDtype === 'f16' ? 2 : 4;
  const g = ref.groupsPerRow(cols, p.groupSize);
  const out = {
    q: new Uint8Array(rows * ref.packedRowBytes(cols, p.bits)),
    scales: new Uint8Array(rows * g * sb),
    zeros: new Uint8Array(rows * g * sb),
  };
  ref.quantizeRows(ref.rowReader(data, dtype, cols), cols, p, 0, rows, out);
  return out;
}

function sample(rows: number, cols: number): Float32Array {
  const x = gaussian(rows * cols, 77);
  const t = studentT4(cols, 78);
  for (let i = 0; i < cols; i++) {
    x[cols + i] = t[i] * 2; // heavy tails
    x[2 * cols + i] = -1.25; // constant
    x[3 * cols + i] = i % 4 ? 0 : 3e-6 * i; // sparse, tiny
    if (rows > 4) x[4 * cols + i] = 7 + 0.02 * x[i]; // far from zero
  }
  return x;
}

describe('TypeScript reference = C++ engine', { skip }, () => {
  const rows = 5;
  const cols = 77;
  const x = sample(rows, cols);
  for (const forceScalar of [true, false]) {
    it(`matches the ${forceScalar ? 'scalar C++ reference' : `${info.simd} kernel`} on every scheme`, async () => {
      const saved = process.env.APL_FORCE_SCALAR;
      if (forceScalar) process.env.APL_FORCE_SCALAR = '1';
      else delete process.env.APL_FORCE_SCALAR;
      try {
        let n = 0;
        for (const dtype of ['f32', 'f16', 'bf16'] as const) {
          const data = encode(x, dtype);
          for (const bits of [1, 2, 4, 8] as Bits[]) {
            for (const groupSize of [1, 8, 13, 32, 64, cols, 128]) {
              for (const symmetric of [false, true]) {
                for (const mode of ['minmax', 'optimized'] as const) {
                  for (const scaleDtype of ['f16', 'f32'] as const) {
                    const p = { bits, groupSize, symmetric, mode, scaleDtype };
                    const c = await eng.quantize({ ...p, data, dtype, rows, cols, backend: 'cpu', threads: 2 });
                    if (forceScalar) assert.equal(c.backend, 'cpu-scalar');
                    const t = tsQuantize(data, dtype, rows, cols, p);
                    const what = JSON.stringify({ dtype, ...p });
                    assert.deepEqual(c.q, t.q, `q ${what}`);
                    assert.deepEqual(c.scales, t.scales, `scales ${what}`);
                    assert.deepEqual(c.zeros, t.zeros, `zeros ${what}`);
                    n++;
                  }
                }
              }
            }
          }
        }
        assert.equal(n, 3 * 4 * 7 * 2 * 2 * 2);
      } finally {
        if (saved === undefined) delete process.env.APL_FORCE_SCALAR;
        else process.env.APL_FORCE_SCALAR = saved;
      }
    });
  }

  it('APL_FORCE_SCALAR=1 switches engineInfo().simd to scalar', () => {
    const saved = process.env.APL_FORCE_SCALAR;
    process.env.APL_FORCE_SCALAR = '1';
    try {
      assert.equal(eng.engineInfo().simd, 'scalar');
    } finally {
      if (saved === undefined) delete process.env.APL_FORCE_SCALAR;
      else process.env.APL_FORCE_SCALAR = saved;
    }
  });

  it('dequantize, metrics, qmatmul and stats agree with the reference', async () => {
    const p = {
      bits: 4 as const,
      groupSize: 16,
      symmetric: false,
      mode: 'optimized' as const,
      scaleDtype: 'f16' as const,
    };
    const data = encode(x, 'bf16');
    const r = await eng.quantize({ ...p, data, dtype: 'bf16', rows, cols, metrics: true });
    const w = { ...p, q: r.q, scales: r.scales, zeros: r.zeros, rows, cols };
    assert.deepEqual(eng.dequantize(w), ref.dequantize(w));
    const m1 = eng.errorMetrics({ data, dtype: 'bf16' }, w);
    const m2 = ref.errorMetrics({ data, dtype: 'bf16' }, w);
    assert.ok(r.metrics);
    for (const k of ['relError', 'snrDb', 'cosine', 'maxAbsError'] as const) {
      assert.ok(Math.abs(m1[k] - m2[k]) <= 1e-9 * Math.max(1, Math.abs(m2[k])), `${k} ${m1[k]} ${m2[k]}`);
      assert.ok(Math.abs(r.metrics[k] - m2[k]) <= 1e-9 * Math.max(1, Math.abs(m2[k])), `${k} ${r.metrics[k]} ${m2[k]}`);
    }
    const xs = gaussian(3 * cols, 5);
    const y1 = eng.qmatmul(xs, 3, w);
    const y2 = ref.qmatmul(xs, 3, w);
    for (let i = 0; i < y1.length; i++) assert.ok(Math.abs(y1[i] - y2[i]) < 1e-4 * (1 + Math.abs(y2[i])));
    for (const dt of ['f32', 'f16', 'bf16', 'u8', 'i16'] as const) {
      const bytes = dt === 'f32' || dt === 'f16' || dt === 'bf16' ? encode(x, dt) : new Uint8Array(encode(x, 'f32'));
      // One implementation of the float64 operations, in one order: the addon and the reference agree exactly.
      assert.deepEqual(eng.tensorStats(bytes, dt, 10), ref.tensorStats(bytes, ref.SHORT_DTYPES[dt], 10), dt);
    }
  });

  it('decodes and streams statistics like the reference, bit for bit, for every dtype and byte order', () => {
    const raw = new Uint8Array(4096 + 5);
    let seed = 12345;
    for (let i = 0; i < raw.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      raw[i] = seed >>> 24;
    }
    for (const dtype of Object.keys(eng.ELEMENT_SIZES) as eng.ElementDType[]) {
      const size = eng.ELEMENT_SIZES[dtype];
      const whole = raw.subarray(1, 1 + Math.floor(4096 / size) * size); // misaligned on purpose
      for (const le of [true, false]) {
        const a = new Float64Array(whole.byteLength / size + 2);
        const b = new Float64Array(a.length);
        assert.equal(eng.decodeInto(whole, dtype, le, a, 2), ref.decodeInto(whole, dtype, le, b, 2));
        assert.deepEqual(a, b, `${dtype} ${le ? 'LE' : 'BE'} decode`);
        // Three uneven chunks, as a stream would feed them.
        const acc = new eng.StatsAccumulator();
        const st = ref.newStatsState();
        for (const [from, to] of [
          [0, 7 * size],
          [7 * size, 300 * size],
          [300 * size, whole.byteLength],
        ]) {
          acc.add(whole.subarray(from, to), dtype, le);
          ref.statsAdd(st, whole.subarray(from, to), dtype, le);
        }
        assert.deepEqual(acc.result(), ref.statsResult(st), `${dtype} ${le ? 'LE' : 'BE'} stats`);
        const r = acc.result();
        if (r.count) {
          const h1 = eng.histogram(whole, dtype, le, r.min as number, r.max as number, 17);
          assert.deepEqual(h1, ref.histogram(whole, dtype, le, r.min as number, r.max as number, 17));
          assert.equal(
            h1.reduce((s, c) => s + c, 0),
            r.count,
          );
        }
      }
    }
  });

  it("backend 'gpu' without a GPU is a clear error; 'auto' falls back to the CPU", async () => {
    const p = {
      bits: 4 as const,
      groupSize: 64,
      symmetric: false,
      mode: 'minmax' as const,
      scaleDtype: 'f16' as const,
    };
    const data = encode(x, 'f32');
    if (info.gpu.available) {
      const r = await eng.quantize({ ...p, data, dtype: 'f32', rows, cols, backend: 'gpu' });
      assert.match(r.backend, /^cuda:/);
      const c = await eng.quantize({ ...p, data, dtype: 'f32', rows, cols, backend: 'cpu' });
      assert.deepEqual(r.q, c.q);
      assert.deepEqual(r.scales, c.scales);
      return;
    }
    console.log(`# GPU tests SKIPPED: ${info.gpu.reason}`);
    await assert.rejects(
      eng.quantize({ ...p, data, dtype: 'f32', rows, cols, backend: 'gpu', name: 'w' }),
      /w: .*gpu.*no GPU/,
    );
    const r = await eng.quantize({ ...p, data, dtype: 'f32', rows, cols, backend: 'auto' });
    assert.match(r.backend, /^cpu-/);
  });
});
