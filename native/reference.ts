// TypeScript port of the scalar reference kernels in native/src/quant.h. It is the fallback when the addon cannot
// load, and the tests compare it with the C++ reference bit for bit (q exactly; scales and zeros exactly too, since
// every float32 operation is spelled out with Math.fround in the same order as the C++).
//
// The scheme (see native/README.md): w ≈ (q − zero) · scale per group of `groupSize` consecutive elements of a row.
//  - asymmetric:   scale = (max − min) / (2^bits − 1), zero = −min / scale (a float zero point);
//  - symmetric:    zero = 2^(bits−1), scale = m / −2^(bits−1) where m is the element of largest magnitude (so the
//                  scale may be negative, like llama.cpp's Q4_0: all 2^bits levels are used);
//  - 1 bit:        zero = 0.5, scale = 2 · mean|w|, q = w > 0 (the `symmetric` flag makes no difference);
//  - 'optimized':  for 2, 4 and 8 bits, a few starting grids (the min/max grid and a finer one) each refined by alternating
//                  least squares (assign q by rounding, then refit scale and zero in closed form); the candidate with the
//                  least squared error wins.
// Scale and zero are rounded to the stored dtype (f16 by default) BEFORE q is computed, so dequantizing what is stored
// reproduces exactly what was measured.

export type InputDType = 'f32' | 'f16' | 'bf16';

export interface QuantParams {
  bits: 1 | 2 | 4 | 8;
  groupSize: number;
  symmetric: boolean;
  mode: 'minmax' | 'optimized';
  scaleDtype: 'f16' | 'f32';
}

export interface Metrics {
  relError: number;
  snrDb: number;
  cosine: number;
  maxAbsError: number;
}

/** |zero| is kept near or below this many steps by raising the scale of groups far from 0 (keeps f16 zeros exact). */
export const ZERO_LIMIT = 512;
/** 'optimized': starting grids and least-squares refinements per start. */
export const OPT_STARTS = 2;
export const OPT_ITERS = 2;
/** Grid shrink step (in levels) per start for asymmetric 2/4/8 bits, and the scale factors of symmetric starts. */
export const OPT_ASYM_STEP: Record<number, number> = { 2: 1, 4: 1.5, 8: 8 };

import { bf16ToF32, f16Lut, f16ToF32, f32ToF16 } from '../server/src/formats/dtypes';

export const OPT_SYM_FACTORS = [1, 0.92, 0.84, 0.76];

const fr = Math.fround;

// ---------------------------------------------------------------------------------------------------------------
// float16 / bfloat16

// The conversions are the formats layer's (one implementation, round to nearest even), under the names the
// kernels' spec uses.
/** float32 value → float16 bits, round to nearest even (overflow → ±Inf). */
export const f32ToF16Bits = f32ToF16;
/** float16 bits → float32 value. */
export const f16BitsToF32 = f16ToF32;
/** bfloat16 bits → float32 value. */
export const bf16BitsToF32 = bf16ToF32;
/** Rounds a float32 value to what the scale dtype stores. */
function roundStored(v: number, f16: boolean): number {
  return f16 ? f16BitsToF32(f32ToF16Bits(v)) : v;
}

// ---------------------------------------------------------------------------------------------------------------
// Views and sizes

export function bytesPerElement(dtype: string): number {
  switch (dtype) {
    case 'f64':
      return 8;
    case 'f32':
    case 'i32':
    case 'u32':
      return 4;
    case 'f16':
    case 'bf16':
    case 'i16':
    case 'u16':
      return 2;
    case 'i8':
    case 'u8':
      return 1;
    default:
      throw new Error(`unsupported dtype '${dtype}'`);
  }
}

export function packedRowBytes(cols: number, bits: number): number {
  return Math.ceil((cols * bits) / 8);
}
export function groupsPerRow(cols: number, groupSize: number): number {
  return Math.ceil(cols / groupSize);
}

/** An aligned typed view of raw little-endian bytes (copies the raw bytes only when they are misaligned). */
function typedView<T>(data: Uint8Array, bpe: number, make: (b: ArrayBufferLike, o: number, n: number) => T): T {
  const n = Math.floor(data.byteLength / bpe);
  if (data.byteOffset % bpe === 0) return make(data.buffer, data.byteOffset, n);
  const c = new Uint8Array(n * bpe);
  c.set(data.subarray(0, n * bpe));
  return make(c.buffer, 0, n);
}

/** Row reader: decodes row r of an f32/f16/bf16 matrix into dst (float32), on the fly. */
export function rowReader(data: Uint8Array, dtype: InputDType, cols: number): (r: number, dst: Float32Array) => void {
  if (dtype === 'f32') {
    const v = typedView(data, 4, (b, o, n) => new Float32Array(b, o, n));
    return (r, dst) => dst.set(v.subarray(r * cols, r * cols + cols));
  }
  const v = typedView(data, 2, (b, o, n) => new Uint16Array(b, o, n));
  if (dtype === 'f16') {
    const lut = f16Lut();
    return (r, dst) => {
      const base = r * cols;
      for (let i = 0; i < cols; i++) dst[i] = lut[v[base + i]];
    };
  }
  const u = new Uint32Array(dst0Size(cols));
  const f = new Float32Array(u.buffer);
  return (r, dst) => {
    const base = r * cols;
    for (let i = 0; i < cols; i++) u[i] = v[base + i] << 16;
    dst.set(f.subarray(0, cols));
  };
}
function dst0Size(cols: number): number {
  return Math.max(1, cols);
}

// ---------------------------------------------------------------------------------------------------------------
// The group kernel

/** Round half to even of a float32 value (what nearbyint / cvtps do). */
function rne(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Sums in the reference order: element i of a group goes to float32 lane i % 8; lanes reduce as
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) — the order of an 8-wide SIMD horizontal sum.
const lanesA = new Float32Array(8);
const lanesB = new Float32Array(8);
const lanesC = new Float32Array(8);
function reduce8(l: Float32Array): number {
  return fr(fr(fr(l[0] + l[4]) + fr(l[2] + l[6])) + fr(fr(l[1] + l[5]) + fr(l[3] + l[7])));
}

export interface GroupResult {
  scale: number; // as stored (already rounded to the scale dtype)
  zero: number; // as stored
}

/** Error thrown by the kernels when a scale cannot be stored; the caller adds the tensor name. */
export class RangeForDtypeError extends Error {}

/**
 * Quantizes x[off, off+n) into qv (one value per element, unpacked) and returns the stored scale and zero.
 * All inputs must be finite float32 values.
 */
export function quantizeGroup(x: Float32Array, off: number, n: number, p: QuantParams, qv: Uint8Array): GroupResult {
  const f16 = p.scaleDtype === 'f16';
  const bits = p.bits;
  if (bits === 1) {
    lanesA.fill(0);
    for (let i = 0; i < n; i++) lanesA[i & 7] += Math.abs(x[off + i]);
    const s = fr(fr(2 * reduce8(lanesA)) / n);
    const ss = roundStored(s, f16);
    if (!Number.isFinite(ss)) throw new RangeForDtypeError(`scale ${s} overflows ${p.scaleDtype}`);
    for (let i = 0; i < n; i++) qv[i] = x[off + i] > 0 ? 1 : 0;
    return { scale: ss, zero: 0.5 };
  }
  const qmax = (1 << bits) - 1;
  let mn = x[off];
  let mx = x[off];
  for (let i = 1; i < n; i++) {
    const v = x[off + i];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  let s: number;
  let z: number;
  if (p.symmetric) {
    const half = 1 << (bits - 1);
    const m = -mn > mx ? mn : mx;
    s = m === 0 ? 0 : fr(m / -half);
    if (p.mode === 'optimized' && m !== 0) s = fr(optimizeSym(x, off, n, half, qmax, s));
    z = half;
    let ss = roundStored(s, f16);
    if (!Number.isFinite(ss)) throw new RangeForDtypeError(`scale ${s} overflows ${p.scaleDtype}`);
    let inv = ss === 0 ? 0 : fr(1 / ss);
    if (!Number.isFinite(inv)) ss = inv = 0; // a subnormal f32 scale: store 0
    assignQ(x, off, n, inv, z, qmax, qv);
    return { scale: ss, zero: z };
  }
  let b0 = mn; // the value of level 0
  s = fr(fr(mx - mn) / qmax);
  if (p.mode === 'optimized' && mx !== mn) {
    const r = optimizeAsym(x, off, n, qmax, OPT_ASYM_STEP[bits], mn, mx);
    if (r) {
      s = fr(r.a);
      b0 = fr(r.b);
    }
  }
  const far = Math.max(mn, -mx, 0);
  const guard = fr(far / ZERO_LIMIT);
  if (guard > s) s = guard;
  let ss = roundStored(s, f16);
  if (!Number.isFinite(ss)) throw new RangeForDtypeError(`scale ${s} overflows ${p.scaleDtype}`);
  if (ss !== 0 && !Number.isFinite(fr(1 / ss))) ss = 0; // a subnormal f32 scale: store 0
  let inv = 0;
  z = 0;
  if (ss !== 0) {
    inv = fr(1 / ss);
    z = roundStored(fr(0 - fr(b0 * inv)), f16);
  }
  assignQ(x, off, n, inv, z, qmax, qv);
  return { scale: ss, zero: z };
}

function assignQ(x: Float32Array, off: number, n: number, inv: number, z: number, qmax: number, qv: Uint8Array) {
  for (let i = 0; i < n; i++) {
    let q = rne(fr(fr(x[off + i] * inv) + z));
    if (q < 0) q = 0;
    else if (q > qmax) q = qmax;
    qv[i] = q;
  }
}

/** Σx and Σx² of a group in the reference lane order. */
function sumsX(x: Float32Array, off: number, n: number): [number, number] {
  lanesA.fill(0);
  lanesB.fill(0);
  for (let i = 0; i < n; i++) {
    const v = x[off + i];
    lanesA[i & 7] += v;
    lanesB[i & 7] += fr(v * v);
  }
  return [reduce8(lanesA), reduce8(lanesB)];
}

function optimizeAsym(
  x: Float32Array,
  off: number,
  n: number,
  qmax: number,
  step: number,
  mn: number,
  mx: number,
): { a: number; b: number } | undefined {
  const [sx, sxx] = sumsX(x, off, n);
  const r = mx - mn;
  let bestE = Infinity;
  let bestA = 0;
  let bestB = 0;
  for (let k = 0; k < OPT_STARTS; k++) {
    let a = r / (qmax + k * step);
    let b = mn + (r - a * qmax) / 2;
    let e = Infinity;
    for (let it = 0; it < OPT_ITERS; it++) {
      const af = fr(a);
      const inv = fr(1 / af);
      const o = fr(0 - fr(fr(b) * inv));
      if (!Number.isFinite(inv) || !Number.isFinite(o)) break;
      lanesA.fill(0);
      lanesB.fill(0);
      lanesC.fill(0);
      for (let i = 0; i < n; i++) {
        const v = x[off + i];
        let q = rne(fr(fr(v * inv) + o));
        if (q < 0) q = 0;
        else if (q > qmax) q = qmax;
        const l = i & 7;
        lanesA[l] += q;
        lanesB[l] += q * q;
        lanesC[l] += fr(q * v);
      }
      const sq = reduce8(lanesA);
      const sqq = reduce8(lanesB);
      const sqx = reduce8(lanesC);
      const det = n * sqq - sq * sq;
      if (!(det > 0)) break;
      const na = (n * sqx - sq * sx) / det;
      if (!(na > 0) || !Number.isFinite(na)) break;
      const nb = (sqq * sx - sq * sqx) / det;
      a = na;
      b = nb;
      e = sxx - na * sqx - nb * sx;
    }
    if (e < bestE) {
      bestE = e;
      bestA = a;
      bestB = b;
    }
  }
  return bestE < Infinity ? { a: bestA, b: bestB } : undefined;
}

function optimizeSym(x: Float32Array, off: number, n: number, half: number, qmax: number, s0: number): number {
  const [, sxx] = sumsX(x, off, n);
  let bestE = Infinity;
  let bestA = s0;
  for (let k = 0; k < OPT_STARTS; k++) {
    let a = s0 * OPT_SYM_FACTORS[k];
    let e = Infinity;
    for (let it = 0; it < OPT_ITERS; it++) {
      const inv = fr(1 / fr(a));
      if (!Number.isFinite(inv)) break;
      lanesA.fill(0);
      lanesB.fill(0);
      for (let i = 0; i < n; i++) {
        const v = x[off + i];
        let q = rne(fr(fr(v * inv) + half));
        if (q < 0) q = 0;
        else if (q > qmax) q = qmax;
        const c = q - half;
        const l = i & 7;
        lanesA[l] += c * c;
        lanesB[l] += fr(c * v);
      }
      const scc = reduce8(lanesA);
      const scx = reduce8(lanesB);
      if (!(scc > 0)) break;
      const na = scx / scc;
      if (na === 0 || !Number.isFinite(na)) break;
      a = na;
      e = sxx - na * scx;
    }
    if (e < bestE) {
      bestE = e;
      bestA = a;
    }
  }
  return bestA;
}

// ---------------------------------------------------------------------------------------------------------------
// Rows

export interface RefQuantizeOut {
  q: Uint8Array;
  scales: Uint8Array;
  zeros: Uint8Array;
}

/** Accumulates the one-pass metrics in float64. */
export class MetricsAcc {
  sdd = 0;
  sxx = 0;
  sww = 0;
  sxw = 0;
  maxAbs = 0;
  add(x: number, w: number) {
    const d = x - w;
    this.sdd += d * d;
    this.sxx += x * x;
    this.sww += w * w;
    this.sxw += x * w;
    const a = Math.abs(d);
    if (a > this.maxAbs) this.maxAbs = a;
  }
  merge(o: MetricsAcc) {
    this.sdd += o.sdd;
    this.sxx += o.sxx;
    this.sww += o.sww;
    this.sxw += o.sxw;
    if (o.maxAbs > this.maxAbs) this.maxAbs = o.maxAbs;
  }
  result(): Metrics {
    return finishMetrics(this.sdd, this.sxx, this.sww, this.sxw, this.maxAbs);
  }
}

export function finishMetrics(sdd: number, sxx: number, sww: number, sxw: number, maxAbs: number): Metrics {
  const relError = sxx > 0 ? Math.sqrt(sdd / sxx) : sdd > 0 ? Infinity : 0;
  const snrDb = sdd > 0 ? (sxx > 0 ? 10 * Math.log10(sxx / sdd) : -Infinity) : Infinity;
  const cosine = sxx > 0 && sww > 0 ? sxw / Math.sqrt(sxx * sww) : sxx === 0 && sww === 0 ? 1 : 0;
  return { relError, snrDb, cosine, maxAbsError: maxAbs };
}

/** Thrown for NaN/Inf input; `index` is the flat element index. */
export class NonFiniteError extends Error {
  constructor(
    readonly index: number,
    readonly value: number,
  ) {
    super(`non-finite value ${value} at index ${index}`);
  }
}

/**
 * Quantizes rows [r0, r1) of a matrix into `out` (whole-tensor buffers). `read` decodes one row to float32.
 * `metrics`, when given, accumulates reconstruction error over those rows.
 */
export function quantizeRows(
  read: (r: number, dst: Float32Array) => void,
  cols: number,
  p: QuantParams,
  r0: number,
  r1: number,
  out: RefQuantizeOut,
  metrics?: MetricsAcc,
): void {
  const rowBytes = packedRowBytes(cols, p.bits);
  const gpr = groupsPerRow(cols, p.groupSize);
  const f16 = p.scaleDtype === 'f16';
  const sv = new DataView(out.scales.buffer, out.scales.byteOffset, out.scales.byteLength);
  const zv = new DataView(out.zeros.buffer, out.zeros.byteOffset, out.zeros.byteLength);
  const row = new Float32Array(Math.max(1, cols));
  const qv = new Uint8Array(Math.max(1, p.groupSize));
  const perByte = 8 / p.bits;
  for (let r = r0; r < r1; r++) {
    read(r, row);
    for (let i = 0; i < cols; i++) {
      if (!Number.isFinite(row[i])) throw new NonFiniteError(r * cols + i, row[i]);
    }
    const qrow = out.q.subarray(r * rowBytes, (r + 1) * rowBytes);
    qrow.fill(0);
    for (let g = 0; g < gpr; g++) {
      const off = g * p.groupSize;
      const n = Math.min(p.groupSize, cols - off);
      const { scale, zero } = quantizeGroup(row, off, n, p, qv);
      const gi = r * gpr + g;
      if (f16) {
        sv.setUint16(gi * 2, f32ToF16Bits(scale), true);
        zv.setUint16(gi * 2, f32ToF16Bits(zero), true);
      } else {
        sv.setFloat32(gi * 4, scale, true);
        zv.setFloat32(gi * 4, zero, true);
      }
      const bits = p.bits;
      const shift = bits === 8 ? 0 : bits === 4 ? 1 : bits === 2 ? 2 : 3; // log2(values per byte)
      const lowMask = perByte - 1;
      for (let i = 0; i < n; i++) {
        const j = off + i;
        qrow[j >>> shift] |= qv[i] << ((j & lowMask) * bits);
      }
      if (metrics) {
        let sdd = 0;
        let sxx = 0;
        let sww = 0;
        let sxw = 0;
        let mx = metrics.maxAbs;
        for (let i = 0; i < n; i++) {
          const x = row[off + i];
          const w = fr(fr(qv[i] - zero) * scale);
          const d = x - w;
          sdd += d * d;
          sxx += x * x;
          sww += w * w;
          sxw += x * w;
          const a = d < 0 ? -d : d;
          if (a > mx) mx = a;
        }
        metrics.sdd += sdd;
        metrics.sxx += sxx;
        metrics.sww += sww;
        metrics.sxw += sxw;
        metrics.maxAbs = mx;
      }
    }
  }
}

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

export interface TensorStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  nan: number;
  inf: number;
  histogram: { min: number; max: number; counts: number[] };
}

export type StatsDType = InputDType | 'f64' | 'i32' | 'u32' | 'i16' | 'u16' | 'i8' | 'u8';

/** Element accessor for any stats dtype. */
export function elementGetter(data: Uint8Array, dtype: StatsDType): { n: number; get: (i: number) => number } {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = Math.floor(data.byteLength / bytesPerElement(dtype));
  const lut = dtype === 'f16' ? f16Lut() : undefined;
  const get: Record<StatsDType, (i: number) => number> = {
    f64: (i) => dv.getFloat64(i * 8, true),
    f32: (i) => dv.getFloat32(i * 4, true),
    f16: (i) => (lut as Float32Array)[dv.getUint16(i * 2, true)],
    bf16: (i) => bf16BitsToF32(dv.getUint16(i * 2, true)),
    i32: (i) => dv.getInt32(i * 4, true),
    u32: (i) => dv.getUint32(i * 4, true),
    i16: (i) => dv.getInt16(i * 2, true),
    u16: (i) => dv.getUint16(i * 2, true),
    i8: (i) => dv.getInt8(i),
    u8: (i) => dv.getUint8(i),
  };
  return { n, get: get[dtype] };
}

/**
 * Statistics of the finite values (NaN and ±Inf are counted, not included) and a histogram of `bins` equal bins
 * over [min, max] (the last bin includes max).
 */
export function tensorStats(data: Uint8Array, dtype: StatsDType, bins = 64): TensorStats {
  const { n, get } = elementGetter(data, dtype);
  let min = Infinity;
  let max = -Infinity;
  let nan = 0;
  let inf = 0;
  let count = 0;
  let mean = 0;
  let m2 = 0;
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (Number.isNaN(v)) nan++;
    else if (!Number.isFinite(v)) inf++;
    else {
      count++;
      if (v < min) min = v;
      if (v > max) max = v;
      const d = v - mean;
      mean += d / count;
      m2 += d * (v - mean);
    }
  }
  const counts = new Array<number>(Math.max(1, bins)).fill(0);
  if (count) {
    const width = max - min;
    for (let i = 0; i < n; i++) {
      const v = get(i);
      if (!Number.isFinite(v)) continue;
      let b = width > 0 ? Math.floor(((v - min) / width) * counts.length) : 0;
      if (b >= counts.length) b = counts.length - 1;
      counts[b]++;
    }
  }
  return {
    count,
    min: count ? min : 0,
    max: count ? max : 0,
    mean: count ? mean : 0,
    std: count ? Math.sqrt(m2 / count) : 0,
    nan,
    inf,
    histogram: { min: count ? min : 0, max: count ? max : 0, counts },
  };
}
