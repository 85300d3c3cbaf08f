// Test weights for the inference kernels: random packed weights (every code, random padding bits, f16/f32
// scales and zero points) and their exact dequantization, built without the quantizer.
import assert from 'node:assert/strict';
import { linear } from '../../../native/forward';
import type { FloatWeight, LinearWeight, PackedWeight } from '../../../native/forward-types';
import { kdequantize } from '../../../native/kquant';
import { decoded, encode, gaussian, rng } from './data';

export type Bits = 1 | 2 | 4 | 8;

/** A packed weight with random codes; scales ~ ±N(0, 0.05²), zero points anywhere in [0, 2^bits − 1]. */
export function randomPacked(
  rows: number,
  cols: number,
  bits: Bits,
  groupSize: number,
  scaleDtype: 'f16' | 'f32',
  seed: number,
): PackedWeight {
  const r = rng(seed);
  const q = new Uint8Array(rows * Math.ceil((cols * bits) / 8));
  for (let i = 0; i < q.length; i++) q[i] = Math.floor(r() * 256);
  const g = rows * Math.ceil(cols / groupSize);
  const s = gaussian(g, seed + 1, 0.05);
  const z = new Float32Array(g);
  const qmax = 2 ** bits - 1;
  for (let i = 0; i < g; i++) z[i] = bits === 1 ? 0.5 : Math.round(r() * qmax * 4) / 4;
  return {
    kind: 'packed',
    rows,
    cols,
    bits,
    groupSize,
    q,
    scales: encode(s, scaleDtype),
    zeros: encode(z, scaleDtype),
    scaleDtype,
  };
}

export function floatWeight(rows: number, cols: number, dtype: 'f32' | 'f16' | 'bf16', seed: number): FloatWeight {
  return { kind: 'float', rows, cols, dtype, data: encode(gaussian(rows * cols, seed, 0.05), dtype) };
}

function paramValues(b: Uint8Array, dtype: 'f16' | 'f32' | 'bf16'): Float32Array {
  if (dtype === 'f32') return new Float32Array(b.slice().buffer);
  const h = new Uint16Array(b.slice().buffer);
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = f16or_bf16(h[i], dtype);
  return out;
}
function f16or_bf16(h: number, dtype: 'f16' | 'bf16'): number {
  if (dtype === 'bf16') return new Float32Array(new Uint32Array([h << 16]).buffer)[0];
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Ŵ as float64 (row-major), exactly what the weight stores; with `magnitude`, (q + |zero|)·|scale| instead. */
export function dequant(w: LinearWeight, magnitude = false): Float64Array {
  if (w.kind === 'kquant') {
    if (magnitude) throw new Error('dequant: no magnitude bound for kquant weights');
    return Float64Array.from(kdequantize(w));
  }
  const out = new Float64Array(w.rows * w.cols);
  if (w.kind === 'float') {
    const v = w.dtype === 'f32' ? new Float32Array(w.data.slice().buffer) : paramValues(w.data, w.dtype);
    out.set(v);
    return out;
  }
  const s = paramValues(w.scales, w.scaleDtype);
  const z = paramValues(w.zeros, w.scaleDtype);
  const rb = Math.ceil((w.cols * w.bits) / 8);
  const per = 8 / w.bits;
  const gpr = Math.ceil(w.cols / w.groupSize);
  for (let r = 0; r < w.rows; r++)
    for (let c = 0; c < w.cols; c++) {
      const q = (w.q[r * rb + Math.floor(c / per)] >> ((c % per) * w.bits)) & ((1 << w.bits) - 1);
      const g = r * gpr + Math.floor(c / w.groupSize);
      out[r * w.cols + c] = magnitude
        ? (q + Math.abs(z[g])) * Math.abs(s[g])
        : Math.fround(Math.fround(q - z[g]) * s[g]);
    }
  return out;
}

/**
 * float64 y = x · Ŵᵀ for n tokens (W: Ŵ row-major, rows × cols) and, per output, tol(act, mag): act bounds the
 * int8 activation rounding (half a step of each group of G), mag = Σ |M|·(|x| + step) scales the float32
 * arithmetic's bound (M: the magnitudes of the kernel's products).
 */
export function exactLinear(
  W: Float64Array,
  M: Float64Array,
  rows: number,
  cols: number,
  G: number,
  x: Float32Array,
  n: number,
  tol: (act: number, mag: number) => number,
) {
  const gpr = Math.ceil(cols / G);
  const y = new Float64Array(n * rows);
  const bound = new Float64Array(n * rows);
  for (let t = 0; t < n; t++) {
    const dx: number[] = [];
    for (let g = 0; g < gpr; g++) {
      let m = 0;
      for (let c = g * G; c < Math.min(cols, (g + 1) * G); c++) m = Math.max(m, Math.abs(x[t * cols + c]));
      dx.push(m / 127);
    }
    for (let r = 0; r < rows; r++) {
      let s = 0;
      let act = 0;
      let mag = 0;
      for (let c = 0; c < cols; c++) {
        const wc = W[r * cols + c];
        const xc = x[t * cols + c];
        const h = dx[Math.floor(c / G)];
        s += wc * xc;
        act += Math.abs(wc) * (h / 2);
        mag += Math.abs(M[r * cols + c]) * (Math.abs(xc) + h);
      }
      y[t * rows + r] = s;
      bound[t * rows + r] = tol(act, mag);
    }
  }
  return { y, tol: bound };
}

/** linear of a 301 × 512 weight on 40 tokens: the same with 1 and 2 threads, and for tokens 0, 17, 39 alone. */
export function assertThreadsAndTokensAgree(w: LinearWeight) {
  const x = gaussian(40 * 512, 8, 1);
  const a = linear(w, x, 40, { threads: 1 });
  assert.deepEqual(linear(w, x, 40, { threads: 2 }), a);
  for (const t of [0, 17, 39])
    assert.deepEqual(linear(w, x.subarray(t * 512, (t + 1) * 512), 1), a.subarray(t * 301, (t + 1) * 301));
}

export { decoded, gaussian };
