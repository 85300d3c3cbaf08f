// The inference kernels on kquant weights (two-level scales; spec native/src/infer/kquant_ref.h): every CPU variant
// against the scalar reference bit for bit, over bits {2, 4, 8} × the layouts convert writes (KQ_PRESETS) and
// others (groups not a multiple of 4, 32, one super-block per row, the 512-bit path's shapes) × odd shapes × 1, 3, 17
// and 19 tokens (17: a last tile of one token); prompt shapes (8..131 tokens: avx512-gemm's row-interleaved GEMM,
// cpu/infer_kquant_gemm.h) with odd row counts, short last groups, an all-zero token, 1e6 and tiny values; the scalar
// reference within the int8-activation bound of float64 maths on the dequantized weights; threads; bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gpuUnavailable, inferInfo, linear } from '../../../native/forward';
import type { KquantWeight } from '../../../native/forward-types';
import { KQ_PRESETS, kquantize } from '../../../native/kquant';
import { bytesOf, rng } from './data';
import { assertThreadsAndTokensAgree, exactLinear, gaussian } from './infer-data';

const info = inferInfo();
const skip = info ? false : 'the native addon is not built (npm run build:native): kquant inference kernels not tested';

type Layout = Pick<KquantWeight, 'bits' | 'group' | 'super' | 'scaleBits' | 'minBits'>;

const LAYOUTS: Layout[] = [
  { ...KQ_PRESETS[4] }, // g24 / 1536, codes 5+6: what convert writes at 4 bits
  { ...KQ_PRESETS[2] }, // g16 / 256, codes 4+4: what convert writes at 2 bits
  { bits: 4, group: 32, super: 256, scaleBits: 6, minBits: 6 },
  { bits: 2, group: 24, super: 96, scaleBits: 4, minBits: 5 },
  { bits: 4, group: 7, super: 63, scaleBits: 5, minBits: 3 }, // groups not a multiple of 4: scalar in every variant
  // the 512-bit path (infer_kquant_wide.h; infer_kquant_wide2.h on AVX2, blocks of 8 groups) takes groups of 1-4 whole 4-byte lanes of codes: 2 lanes a group, a
  // super-block change inside a block of 16 groups (g24/192: 8 groups a super-block), 16-bit code fields, 3 and 4
  // lanes at 2 bits, and super-blocks of a group count not a multiple of 8 (s and z decoded by the scalar code)
  { bits: 4, group: 16, super: 512, scaleBits: 6, minBits: 4 },
  { bits: 4, group: 24, super: 192, scaleBits: 8, minBits: 8 },
  { bits: 2, group: 48, super: 384, scaleBits: 3, minBits: 7 },
  { bits: 2, group: 64, super: 1024, scaleBits: 5, minBits: 5 },
  { bits: 4, group: 8, super: 40, scaleBits: 4, minBits: 4 },
  { bits: 8, group: 16, super: 128, scaleBits: 6, minBits: 6 },
  { bits: 8, group: 64, super: 256, scaleBits: 8, minBits: 8 },
];
const SHAPES: [number, number][] = [
  [1, 1],
  [3, 31],
  [17, 64],
  [5, 100],
  [13, 203],
  [9, 320],
  [4, 1088],
  [3, 1600],
  [7, 384], // whole blocks of 16 groups at g24
  [2, 4096], // TinyLlama's hidden size: several super-blocks, a partial last block at g24
  [3, 13000], // decode in memory order: 16 blocks of a row at a time, so several chunks and a partial last one
];

/** f16 bits of a positive value v (normal range), rounded down. */
function f16(v: number): number {
  const e = Math.floor(Math.log2(v));
  return ((e + 15) << 10) | Math.floor((v / 2 ** e - 1) * 1024);
}

/** A kquant weight with random q and codes (every code, random padding bits) and random positive d, dmin. */
function randomKquant(rows: number, cols: number, f: Layout, seed: number): KquantWeight {
  const r = rng(seed);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  const supers = Math.ceil(cols / f.super);
  const halfs = (scale: number) => {
    const h = new Uint16Array(rows * supers);
    for (let i = 0; i < h.length; i++) h[i] = f16(scale * (0.2 + r()));
    return new Uint8Array(h.buffer);
  };
  const groups = Math.ceil(cols / f.group);
  return {
    kind: 'kquant',
    rows,
    cols,
    ...f,
    q: bytes(rows * Math.ceil((cols * f.bits) / 8)),
    codes: bytes(rows * Math.ceil((groups * (f.scaleBits + f.minBits)) / 8)),
    d: halfs(0.05 / 2 ** f.scaleBits),
    dmin: halfs((0.05 * 2 ** f.bits) / 2 ** f.minBits),
  };
}

function f16value(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
}
function bitsAt(b: Uint8Array, off: number, pos: number, width: number): number {
  let v = 0;
  for (let i = 0; i < width; i++) v |= ((b[off + ((pos + i) >> 3)] >> ((pos + i) & 7)) & 1) << i;
  return v;
}

/** Ŵ (float64 of the stored float32 values) and the magnitude |s|·q + |z| per element. */
function decodeAll(w: KquantWeight): { W: Float64Array; M: Float64Array } {
  const fr = Math.fround;
  const W = new Float64Array(w.rows * w.cols);
  const M = new Float64Array(w.rows * w.cols);
  const rb = Math.ceil((w.cols * w.bits) / 8);
  const cb = Math.ceil((Math.ceil(w.cols / w.group) * (w.scaleBits + w.minBits)) / 8);
  const supers = Math.ceil(w.cols / w.super);
  const d16 = new Uint16Array(w.d.slice().buffer);
  const m16 = new Uint16Array(w.dmin.slice().buffer);
  for (let r = 0; r < w.rows; r++)
    for (let c = 0; c < w.cols; c++) {
      const g = Math.floor(c / w.group);
      const b = Math.floor(c / w.super);
      const pos = g * (w.scaleBits + w.minBits);
      const s = fr(f16value(d16[r * supers + b]) * bitsAt(w.codes, r * cb, pos, w.scaleBits));
      const z = fr(f16value(m16[r * supers + b]) * bitsAt(w.codes, r * cb, pos + w.scaleBits, w.minBits));
      const q = bitsAt(w.q, r * rb, c * w.bits, w.bits);
      W[r * w.cols + c] = fr(fr(s * q) - z);
      M[r * w.cols + c] = Math.abs(s) * q + Math.abs(z);
    }
  return { W, M };
}

/** float64 y = x · Ŵᵀ and the bound of int8 activation rounding (half a step per group) + float32 arithmetic. */
function exact(w: KquantWeight, x: Float32Array, n: number) {
  const { W, M } = decodeAll(w);
  const gpr = Math.ceil(w.cols / w.group);
  return exactLinear(W, M, w.rows, w.cols, w.group, x, n, (act, mag) => act * 1.001 + (gpr + 16) * 2 ** -22 * mag);
}

describe('inference kernels (kquant weights)', { skip }, () => {
  const variants = info?.variants ?? [];
  for (const f of LAYOUTS)
    it(`${f.bits}-bit g${f.group}/${f.super} codes ${f.scaleBits}+${f.minBits}: every variant = scalar bit for bit; scalar within the int8 bound`, () => {
      let seed = f.bits * 1000 + f.group;
      let cases = 0;
      for (const [rows, cols] of SHAPES) {
        const w = randomKquant(rows, cols, f, ++seed);
        for (const n of [1, 3, 17, 19]) {
          const x = gaussian(n * cols, ++seed, 1);
          if (n === 3) for (let i = 0; i < cols; i++) x[cols + i] = 0; // an all-zero token
          const ref = linear(w, x, n, { variant: 'scalar', threads: 1 });
          const { y, tol } = exact(w, x, n);
          for (let i = 0; i < ref.length; i++)
            assert.ok(
              Math.abs(ref[i] - y[i]) <= tol[i],
              `scalar ${rows}x${cols} n${n} [${i}]: ${ref[i]} vs ${y[i]} (bound ${tol[i]})`,
            );
          for (const v of variants.slice(1))
            assert.deepEqual(linear(w, x, n, { variant: v, threads: 1 }), ref, `${v} ${rows}x${cols} n${n}`);
          cases++;
        }
      }
      assert.equal(cases, SHAPES.length * 4);
    });

  it('prompt shapes (8 tokens or more: the row-interleaved path of avx512-gemm) equal the scalar reference bit for bit', () => {
    // rows not a multiple of 16, short last groups, a partial last block of 16 groups, token counts around the tiles
    // of 8 and the blocks of 128; extreme activations (a huge value, tiny values) and an all-zero token
    const layouts: Layout[] = [
      KQ_PRESETS[4],
      KQ_PRESETS[2],
      { bits: 4, group: 32, super: 256, scaleBits: 6, minBits: 6 },
      { bits: 2, group: 24, super: 96, scaleBits: 4, minBits: 5 }, // s and z by the scalar decode
      { bits: 4, group: 8, super: 40, scaleBits: 4, minBits: 4 },
      { bits: 8, group: 64, super: 256, scaleBits: 8, minBits: 8 },
      { bits: 4, group: 7, super: 63, scaleBits: 5, minBits: 3 }, // not a multiple of 4: qrows
    ];
    const shapes: [number, number][] = [
      [16, 96],
      [17, 200],
      [33, 390],
      [5, 1600],
      [40, 1088],
    ];
    let seed = 91;
    let cases = 0;
    for (const f of layouts)
      for (const [rows, cols] of shapes) {
        const w = randomKquant(rows, cols, f, ++seed);
        for (const n of cols > 1000 ? [8, 17, 70] : [8, 9, 16, 17, 33, 65, 131]) {
          const x = gaussian(n * cols, ++seed, 1);
          for (let i = 0; i < cols; i++) x[2 * cols + i] = 0;
          x[3 * cols + 5] = 1e6;
          for (let i = 0; i < cols; i++) x[4 * cols + i] *= 1e-30;
          const ref = linear(w, x, n, { variant: 'scalar', threads: 1 });
          for (const v of variants.slice(1))
            assert.deepEqual(
              linear(w, x, n, { variant: v, threads: 1 }),
              ref,
              `${v} ${f.bits}-bit g${f.group}/${f.super} ${rows}x${cols} n${n}`,
            );
          cases++;
        }
      }
    assert.equal(cases, layouts.length * (3 * 7 + 2 * 3));
  });

  it('quantized by the engine (both presets): variants = scalar, and close to the float product', async () => {
    for (const bits of [2, 4] as const) {
      const rows = 21;
      const cols = 1600;
      const data = gaussian(rows * cols, bits, 0.05);
      const k = await kquantize({ ...KQ_PRESETS[bits], data: bytesOf(data), dtype: 'f32', rows, cols });
      const w: KquantWeight = { kind: 'kquant', ...k };
      const x = gaussian(5 * cols, 9, 1);
      const ref = linear(w, x, 5, { variant: 'scalar' });
      for (const v of variants.slice(1)) assert.deepEqual(linear(w, x, 5, { variant: v }), ref, v);
      const { y, tol } = exact(w, x, 5);
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - y[i]) <= tol[i], `${bits}-bit [${i}]`);
    }
  });

  it('gives the same result with 1 and 2 threads, and for each token alone', () => {
    assertThreadsAndTokensAgree(randomKquant(301, 512, KQ_PRESETS[4], 7));
  });

  it('rejects bad input with one clear message', () => {
    const w = randomKquant(4, 64, KQ_PRESETS[2], 1);
    const x = new Float32Array(64);
    assert.throws(() => linear({ ...w, codes: w.codes.subarray(1) }, x, 1), /weight\.codes has 15 bytes, expected 16/);
    assert.throws(() => linear({ ...w, d: w.d.subarray(2) }, x, 1), /weight\.d has 6 bytes, expected 8/);
    assert.throws(() => linear({ ...w, super: 40 }, x, 1), /kquant super must be a multiple of group/);
    assert.throws(() => linear({ ...w, bits: 1 } as unknown as KquantWeight, x, 1), /kquant bits must be 2, 4 or 8/);
  });
});

const noGpu = inferInfo() ? gpuUnavailable() : 'the native addon is not built';
describe('kquant linear on the GPU', { skip: noGpu ? `skipped: no usable GPU (${noGpu})` : false }, () => {
  it("backend 'gpu' equals the scalar reference bit for bit: convert's presets and tails, 1 to 17 tokens", () => {
    let seed = 40;
    for (const f of [KQ_PRESETS[4], KQ_PRESETS[2], { ...KQ_PRESETS[4], group: 16, super: 48 }])
      for (const [rows, cols] of [
        [3, 7],
        [33, 100],
        [17, 257],
      ])
        for (const n of [1, 8, 17]) {
          const w = randomKquant(rows, cols, f, seed++);
          const x = gaussian(n * cols, seed++);
          assert.deepEqual(
            linear(w, x, n, { backend: 'gpu' }),
            linear(w, x, n, { variant: 'scalar', threads: 1 }),
            `${f.bits}-bit g${f.group}/${f.super} ${rows}x${cols} n${n}`,
          );
        }
  });
});
