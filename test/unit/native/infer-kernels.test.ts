// The inference kernels (native/forward.ts linear → native/src/infer/): every CPU variant against the scalar
// reference (bit-exact for packed weights: integer dot products and the reference's float order), the scalar
// reference against float64 maths on the dequantized weights (activation rounding bounded), threads, float
// weights, and the CUDA kernels when a GPU is present.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inferInfo, linear } from '../../../native/forward';
import type { LinearWeight } from '../../../native/forward-types';
import { engineInfo } from '../../../native/index';
import {
  assertThreadsAndTokensAgree,
  type Bits,
  dequant,
  exactLinear,
  floatWeight,
  gaussian,
  randomPacked,
} from './infer-data';

const info = inferInfo();
const skipNative = info ? false : 'the native addon is not built (npm run build:native): inference kernels not tested';
const gpu = engineInfo().gpu;
const skipGpu = !info?.cuda
  ? 'GPU tests skipped: this build has no CUDA kernels'
  : !gpu.available
    ? `GPU tests skipped: no usable GPU (${gpu.reason ?? 'unknown'})`
    : false;

/** float64 y = x · Ŵᵀ and, per output, the bound of the int8 activation rounding + float32 arithmetic. */
function exact(w: LinearWeight, x: Float32Array, n: number) {
  const W = dequant(w);
  const M = w.kind === 'packed' ? dequant(w, true) : W;
  const G = w.kind === 'packed' ? w.groupSize : w.cols;
  const gpr = Math.ceil(w.cols / G);
  return exactLinear(W, M, w.rows, w.cols, G, x, n, (act, mag) =>
    w.kind === 'packed' ? act * 1.001 + (gpr + 16) * 2 ** -22 * mag : (w.cols + 8) * 2 ** -23 * mag + 1e-30,
  );
}

const SHAPES: [number, number][] = [
  [1, 1],
  [3, 31],
  [17, 64],
  [5, 100],
  [13, 203],
  [37, 256],
  [9, 320],
  [4, 1088],
  [6, 2112], // several blocks of 8 groups for the AVX-512 wide path at every group size, then tail groups
  [3, 4673], // decode in memory order (wide_rows_seq): 18 blocks of groups of 32 (its runs of 16 + 2), odd rows, tails
];
const GROUPS = [7, 32, 64, 96, 128, 0]; // 0: per row (groupSize = cols)

describe('inference kernels (packed weights)', { skip: skipNative }, () => {
  const variants = info?.variants ?? [];
  it('offers the scalar reference and the SIMD variants this CPU runs', () => {
    assert.equal(variants[0], 'scalar');
    assert.ok(variants.includes(info!.selected));
  });

  for (const bits of [1, 2, 4, 8] as Bits[])
    it(`${bits}-bit: every variant equals the scalar reference bit for bit; the reference is within the int8 bound`, () => {
      let seed = bits * 1000;
      let cases = 0;
      for (const [rows, cols] of SHAPES)
        for (const g0 of GROUPS) {
          const group = g0 || cols;
          if (group > cols && g0 !== 96) continue;
          for (const scaleDtype of ['f16', 'f32'] as const) {
            const w = randomPacked(rows, cols, bits, group, scaleDtype, ++seed);
            for (const n of [1, 3, 19]) {
              const x = gaussian(n * cols, ++seed, 1);
              if (n === 3) for (let i = 0; i < cols; i++) x[cols + i] = 0; // an all-zero token
              const ref = linear(w, x, n, { variant: 'scalar', threads: 1 });
              const { y, tol } = exact(w, x, n);
              for (let i = 0; i < ref.length; i++)
                assert.ok(
                  Math.abs(ref[i] - y[i]) <= tol[i],
                  `scalar ${rows}x${cols} g${group} ${scaleDtype} n${n} [${i}]: ${ref[i]} vs ${y[i]} (bound ${tol[i]})`,
                );
              for (const v of variants.slice(1)) {
                const out = linear(w, x, n, { variant: v, threads: 1 });
                assert.deepEqual(out, ref, `${v} ${rows}x${cols} g${group} ${scaleDtype} n${n}`);
              }
              cases++;
            }
          }
        }
      assert.ok(cases > 100);
    });

  it('prompt shapes (8 tokens or more: the row-interleaved path) equal the scalar reference bit for bit', () => {
    // rows not a multiple of 16, groups of 32/64/96/128 and per row, a short last group, token counts around the
    // tiles of 8 and the blocks of 128; extreme activations (a huge value, tiny values) and an all-zero token
    let seed = 77;
    let cases = 0;
    const shapes: [number, number][] = [
      [16, 64],
      [17, 128],
      [33, 200],
      [40, 1088],
      [5, 2112],
    ];
    for (const bits of [1, 2, 4, 8] as Bits[])
      for (const [rows, cols] of shapes)
        for (const g0 of [32, 64, 96, 128, 0]) {
          const group = g0 || cols;
          if (group > cols) continue;
          const w = randomPacked(rows, cols, bits, group, seed % 2 ? 'f16' : 'f32', ++seed);
          for (const n of cols > 1000 ? [8, 17, 70] : [8, 16, 17, 33, 65, 131]) {
            const x = gaussian(n * cols, ++seed, 1);
            for (let i = 0; i < cols; i++) x[2 * cols + i] = 0;
            x[3 * cols + 5] = 1e6;
            for (let i = 0; i < cols; i++) x[4 * cols + i] *= 1e-30;
            const ref = linear(w, x, n, { variant: 'scalar', threads: 1 });
            for (const v of variants.slice(1)) {
              const out = linear(w, x, n, { variant: v, threads: 1 });
              assert.deepEqual(out, ref, `${v} ${bits}-bit ${rows}x${cols} g${group} n${n}`);
            }
            cases++;
          }
        }
    assert.ok(cases > 80);
  });

  it('gives the same result with 1 and 2 threads, and for each token alone', () => {
    assertThreadsAndTokensAgree(randomPacked(301, 512, 4, 64, 'f16', 7));
  });

  it('rejects bad input with one clear message', () => {
    const w = randomPacked(4, 64, 4, 32, 'f16', 1);
    assert.throws(() => linear(w, new Float32Array(63), 1), /x must be a Float32Array of 1×64/);
    assert.throws(
      () => linear({ ...w, q: w.q.subarray(1) }, new Float32Array(64), 1),
      /weight\.q has 127 bytes, expected 128/,
    );
    assert.throws(() => linear(w, new Float32Array(64), 1, { variant: 'nope' }), /kernel variant 'nope'/);
  });
});

describe('inference kernels (float weights)', { skip: skipNative }, () => {
  for (const dtype of ['f32', 'f16', 'bf16'] as const)
    it(`${dtype}: every variant within float32 rounding of float64 maths`, () => {
      let seed = 77;
      for (const [rows, cols] of SHAPES) {
        const w = floatWeight(rows, cols, dtype, ++seed);
        for (const n of [1, 5, 18]) {
          const x = gaussian(n * cols, ++seed, 1);
          const { y, tol } = exact(w, x, n);
          for (const v of info?.variants ?? []) {
            const out = linear(w, x, n, { variant: v });
            for (let i = 0; i < out.length; i++)
              assert.ok(
                Math.abs(out[i] - y[i]) <= tol[i],
                `${v} ${dtype} ${rows}x${cols} n${n} [${i}]: ${out[i]} vs ${y[i]}`,
              );
          }
        }
      }
    });
});

describe('inference kernels on the GPU', { skip: skipNative || skipGpu }, () => {
  it('CUDA equals the scalar reference (packed, bit for bit) and float maths (float weights)', () => {
    let seed = 5;
    for (const bits of [1, 2, 4, 8] as Bits[])
      for (const [rows, cols] of SHAPES)
        for (const group of [7, 64, cols]) {
          const w = randomPacked(rows, cols, bits, group, 'f16', ++seed);
          const x = gaussian(3 * cols, ++seed, 1);
          assert.deepEqual(linear(w, x, 3, { backend: 'gpu' }), linear(w, x, 3, { variant: 'scalar' }));
        }
    const w = floatWeight(37, 256, 'bf16', 3);
    const x = gaussian(2 * 256, 4, 1);
    const { y, tol } = exact(w, x, 2);
    const out = linear(w, x, 2, { backend: 'gpu' });
    for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i] - y[i]) <= tol[i]);
  });
});
