// The two-level-scale type (native/kquant.ts): the addon's kernels against the TypeScript port bit for bit (q,
// codes, d, dmin and the dequantized values), error limits of the chosen formats, sizes, validation messages,
// NaN/overflow errors, cancellation, and the GPU path when there is a GPU (skipped, saying so, otherwise).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as eng from '../../../native/index';
import * as kq from '../../../native/kquant';
import { bytesOf, decoded, encode, gaussian, relErr, studentT4 } from './data';

const FORMATS: kq.KqFormat[] = [
  kq.KQ_PRESETS[4],
  kq.KQ_PRESETS[2],
  { bits: 8, group: 32, super: 256, scaleBits: 6, minBits: 6 },
  { bits: 4, group: 32, super: 256, scaleBits: 6, minBits: 6 },
  { bits: 2, group: 24, super: 96, scaleBits: 3, minBits: 5 },
  { bits: 4, group: 5, super: 15, scaleBits: 2, minBits: 3 },
];

function mixed(rows: number, cols: number, seed: number): Float32Array {
  const x = studentT4(rows * cols, seed);
  for (let i = 2 * cols; i < Math.min(3 * cols, x.length); i++) x[i] = 5 + 0.001 * x[i]; // far from zero
  for (let i = 3 * cols; i < Math.min(4 * cols, x.length); i++) if (i % 7) x[i] = 0; // sparse
  return x;
}

async function both(o: kq.KqQuantizeOptions): Promise<[kq.KqQuantizeResult, kq.KqQuantizeResult]> {
  kq._kqForceReference(true);
  try {
    const r = await kq.kquantize({ ...o, metrics: true });
    kq._kqForceReference(false);
    const n = await kq.kquantize({ ...o, metrics: true, threads: 2 });
    return [r, n];
  } finally {
    kq._kqForceReference(false);
  }
}

const native = kq.kqKernel() !== 'ts-reference';

test('the addon has the two-level-scale kernels (or the test says why not)', (t) => {
  if (!native) t.diagnostic(`addon not in use for kquant: ${kq.kqLoadNote}; parity tests run the reference twice`);
  else t.diagnostic(`kquant kernel: ${kq.kqKernel()}`);
  assert.ok(['avx2', 'scalar', 'ts-reference'].includes(kq.kqKernel()));
});

for (const f of FORMATS)
  test(`addon and TypeScript port agree bit for bit: ${f.bits} bits, group ${f.group}, super ${f.super}`, async () => {
    for (const [rows, cols] of [
      [4, 1536],
      [5, 333],
      [1, 1],
      [2, 3100],
    ] as const)
      for (const dtype of ['f32', 'f16', 'bf16'] as const) {
        const x = mixed(rows, cols, rows * 31 + cols);
        const [r, n] = await both({ ...f, data: encode(x, dtype), dtype, rows, cols });
        const where = `${rows}×${cols} ${dtype}`;
        assert.deepEqual(n.q, r.q, `q (${where})`);
        assert.deepEqual(n.codes, r.codes, `codes (${where})`);
        assert.deepEqual(n.d, r.d, `d (${where})`);
        assert.deepEqual(n.dmin, r.dmin, `dmin (${where})`);
        assert.ok(Math.abs((n.metrics?.relError ?? 0) - (r.metrics?.relError ?? 1)) <= 1e-9, `metrics (${where})`);
        const a = kq.kdequantize(n);
        kq._kqForceReference(true);
        const b = kq.kdequantize(n);
        const m = kq.kerrorMetrics({ data: encode(x, dtype), dtype }, n);
        kq._kqForceReference(false);
        assert.deepEqual(a, b, `dequantize (${where})`);
        assert.ok(Math.abs(m.relError - relErr(decoded(x, dtype), a)) < 1e-9, `errorMetrics (${where})`);
      }
  });

test('chosen formats: bits per weight and error on Gaussian and Student-t(4) weights', async () => {
  const rows = 32;
  const cols = 4096;
  assert.ok(kq.bitsPerWeight(cols, kq.KQ_PRESETS[4]) <= 4.5);
  assert.equal(kq.bitsPerWeight(cols, kq.KQ_PRESETS[2]), 2.625);
  for (const [bits, gmax, tmax] of [
    [4, 0.0715, 0.087],
    [2, 0.275, 0.305],
  ] as const) {
    for (const [x, lim] of [
      [gaussian(rows * cols, 5), gmax],
      [studentT4(rows * cols, 6), tmax],
    ] as const) {
      const r = await kq.kquantize({
        ...kq.KQ_PRESETS[bits],
        data: bytesOf(x),
        dtype: 'f32',
        rows,
        cols,
        metrics: true,
      });
      const e = relErr(x, kq.kdequantize(r));
      assert.ok(e < lim, `${bits}-bit error ${e}`);
      assert.ok(Math.abs((r.metrics?.relError ?? 0) - e) < 1e-6);
    }
  }
});

test('sizes of the four arrays', () => {
  const s = kq.kqSizes(3, 100, { bits: 4, group: 24, super: 48, scaleBits: 5, minBits: 6 });
  // 5 groups × 11 bits = 55 bits → 7 bytes; 3 super-blocks.
  assert.deepEqual(s, { q: 150, codes: 21, d: 18, dmin: 18 });
});

test('constant and zero rows dequantize close to themselves', async () => {
  for (const c of [0, -2.5, 7, 0.01]) {
    const x = new Float32Array(300).fill(c);
    for (const f of FORMATS) {
      const r = await kq.kquantize({ ...f, data: bytesOf(x), dtype: 'f32', rows: 1, cols: 300 });
      for (const v of kq.kdequantize(r)) assert.ok(Math.abs(v - c) <= Math.abs(c) * 2e-3, `${c} → ${v}`);
    }
  }
});

test('bad arguments and bad values: one-line errors naming the tensor', async () => {
  const x = gaussian(64, 1);
  const base = { ...kq.KQ_PRESETS[4], data: bytesOf(x), dtype: 'f32' as const, rows: 2, cols: 32, name: 'w' };
  await assert.rejects(kq.kquantize({ ...base, bits: 3 as 4 }), /^Error: w: bits must be 2, 4 or 8 \(got 3\)$/);
  await assert.rejects(kq.kquantize({ ...base, super: 1000 }), /w: super must be a multiple of group/);
  await assert.rejects(kq.kquantize({ ...base, scaleBits: 9 }), /w: scaleBits and minBits must be integers 1\.\.8/);
  await assert.rejects(kq.kquantize({ ...base, rows: 3 }), /w: data has 256 bytes, expected 384/);
  await assert.rejects(kq.kquantize({ ...base, threads: -1 }), /w: threads must be/);
  await assert.rejects(kq.kquantize({ ...base, threads: 1025 }), /w: threads must be/);
  await assert.rejects(kq.kquantize({ ...base, backend: 'tpu' as 'cpu' }), /w: backend must be 'auto', 'cpu' or 'gpu'/);
  const bad = x.slice();
  bad[37] = Number.NaN;
  for (const force of [false, true]) {
    kq._kqForceReference(force);
    try {
      await assert.rejects(
        kq.kquantize({ ...base, data: bytesOf(bad) }),
        /^Error: w: NaN at index 37 \(row 1, column 5\)$/,
      );
      const big = new Float32Array(32).fill(3e9);
      await assert.rejects(
        kq.kquantize({ ...base, rows: 1, data: bytesOf(big) }),
        /w: the super-block at index 0 has values too large for its f16 super-scales/,
      );
    } finally {
      kq._kqForceReference(false);
    }
  }
  const r = await kq.kquantize(base);
  assert.throws(() => kq.kdequantize({ ...r, codes: r.codes.subarray(1) }), /quantized tensor: codes has/);
  assert.throws(() => kq.kerrorMetrics({ data: new Uint8Array(8), dtype: 'f32' }, r), /reference tensor: has 8 bytes/);
});

test('an aborted signal cancels, progress reaches every row', async () => {
  const rows = 64;
  const cols = 2048;
  const x = gaussian(rows * cols, 3);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(
    kq.kquantize({ ...kq.KQ_PRESETS[4], data: bytesOf(x), dtype: 'f32', rows, cols, signal: ac.signal }),
  );
  let last = 0;
  await kq.kquantize({
    ...kq.KQ_PRESETS[4],
    data: bytesOf(x),
    dtype: 'f32',
    rows,
    cols,
    onProgress: (n) => {
      last = n;
    },
  });
  assert.equal(last, rows);
});

test('GPU path matches the CPU bit for bit (skipped without a GPU)', async (t) => {
  const gpu = eng.engineInfo().gpu;
  if (!native || !gpu.available) {
    t.skip(`GPU test SKIPPED: no usable GPU here (${gpu.reason ?? kq.kqLoadNote})`);
    return;
  }
  for (const f of FORMATS) {
    const x = mixed(37, 3100, 9);
    const o = { ...f, data: bytesOf(x), dtype: 'f32' as const, rows: 37, cols: 3100 };
    const c = await kq.kquantize({ ...o, backend: 'cpu' });
    const g = await kq.kquantize({ ...o, backend: 'gpu' });
    assert.match(g.backend, /^cuda:/);
    assert.deepEqual([g.q, g.codes, g.d, g.dmin], [c.q, c.codes, c.d, c.dmin]);
  }
});
