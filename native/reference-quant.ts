// The quantizer of the reference: the group kernel (min/max and optimized grids, both symmetric and asymmetric, and
// 1 bit) and the row loop that packs q and stores scales and zeros. Part of the TypeScript port of
// native/src/quant.h (see reference.ts); every float32 operation is spelled out with Math.fround in the C++ order.
import {
  f32ToF16Bits,
  groupsPerRow,
  type MetricsAcc,
  OPT_ASYM_STEP,
  OPT_ITERS,
  OPT_STARTS,
  OPT_SYM_FACTORS,
  packedRowBytes,
  type QuantParams,
  roundStored,
  ZERO_LIMIT,
} from './reference-core';

const fr = Math.fround;

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
export class RangeForDtypeError extends Error {
  /** The same code the addon's error carries (ERR_SCALE_OVERFLOW in native/index.ts). */
  readonly code = 'ERR_APL_SCALE_OVERFLOW';
}

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
