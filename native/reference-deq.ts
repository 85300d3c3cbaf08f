// Dequantization of the reference: (q − zero) · scale per element, both operations rounded to float32 as
// docs/FORMAT.md's numpy dequantize does, and what is built on it: error metrics against the float weights and
// x · Ŵᵀ. Part of the TypeScript port of native/src/quant.h (see reference.ts).
import {
  f16BitsToF32,
  groupsPerRow,
  type InputDType,
  type Metrics,
  MetricsAcc,
  packedRowBytes,
  type QuantParams,
  rowReader,
} from './reference-core';

const fr = Math.fround;

// ---------------------------------------------------------------------------------------------------------------
// Dequantize, qmatmul, stats

export interface QuantizedRef extends QuantParams {
  q: Uint8Array;
  scales: Uint8Array;
  zeros: Uint8Array;
  rows: number;
  cols: number;
}

/** Reads the stored scale/zero of group gi. */
function paramReader(w: QuantizedRef): (gi: number) => [number, number] {
  const sv = new DataView(w.scales.buffer, w.scales.byteOffset, w.scales.byteLength);
  const zv = new DataView(w.zeros.buffer, w.zeros.byteOffset, w.zeros.byteLength);
  if (w.scaleDtype === 'f16')
    return (gi) => [f16BitsToF32(sv.getUint16(gi * 2, true)), f16BitsToF32(zv.getUint16(gi * 2, true))];
  return (gi) => [sv.getFloat32(gi * 4, true), zv.getFloat32(gi * 4, true)];
}

/** Dequantizes row r into dst (float32): dst[j] = (q − zero) · scale, both products rounded to float32. */
export function dequantizeRow(w: QuantizedRef, r: number, dst: Float32Array, params = paramReader(w)): void {
  const rowBytes = packedRowBytes(w.cols, w.bits);
  const gpr = groupsPerRow(w.cols, w.groupSize);
  const perByte = 8 / w.bits;
  const mask = (1 << w.bits) - 1;
  const base = r * rowBytes;
  for (let g = 0; g < gpr; g++) {
    const [s, z] = params(r * gpr + g);
    const end = Math.min(w.cols, (g + 1) * w.groupSize);
    for (let j = g * w.groupSize; j < end; j++) {
      const q = (w.q[base + Math.floor(j / perByte)] >> ((j % perByte) * w.bits)) & mask;
      dst[j] = fr(fr(q - z) * s);
    }
  }
}

export function dequantize(w: QuantizedRef): Float32Array {
  const out = new Float32Array(w.rows * w.cols);
  const params = paramReader(w);
  for (let r = 0; r < w.rows; r++) dequantizeRow(w, r, out.subarray(r * w.cols, (r + 1) * w.cols), params);
  return out;
}

export function errorMetrics(ref: { data: Uint8Array; dtype: InputDType }, w: QuantizedRef): Metrics {
  const read = rowReader(ref.data, ref.dtype, w.cols);
  const x = new Float32Array(Math.max(1, w.cols));
  const d = new Float32Array(Math.max(1, w.cols));
  const params = paramReader(w);
  const acc = new MetricsAcc();
  for (let r = 0; r < w.rows; r++) {
    read(r, x);
    dequantizeRow(w, r, d, params);
    for (let i = 0; i < w.cols; i++) acc.add(x[i], d[i]);
  }
  return acc.result();
}

/** y = x · Ŵᵀ (n × rows), one dequantized row of W at a time; sums in float64. */
export function qmatmul(x: Float32Array, n: number, w: QuantizedRef): Float32Array {
  const y = new Float32Array(n * w.rows);
  const d = new Float32Array(Math.max(1, w.cols));
  const params = paramReader(w);
  for (let r = 0; r < w.rows; r++) {
    dequantizeRow(w, r, d, params);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      const xo = i * w.cols;
      for (let j = 0; j < w.cols; j++) acc += x[xo + j] * d[j];
      y[i * w.rows + r] = acc;
    }
  }
  return y;
}

/** The error metrics of w against the reference x, both already decoded to float32 values. */
export function compareMetrics(x: Float32Array, w: Float32Array): Metrics {
  const acc = new MetricsAcc();
  for (let i = 0; i < x.length; i++) acc.add(x[i], w[i]);
  return acc.result();
}
