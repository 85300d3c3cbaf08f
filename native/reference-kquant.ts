// TypeScript port of the two-level-scale reference (native/src/kquant.h), bit for bit: every float32 operation is
// spelled out with Math.fround in the C++ order, the double ones in the same order. The fallback of native/kquant.ts
// when the addon cannot load, and the spec the tests compare the addon with. Layout and formula: docs/FORMAT.md.
//
// Per super-block (`super` elements of a row): float16 d and dmin. Per group (`group` elements): unsigned codes sc
// (scaleBits wide) and mc (minBits wide). Per element: q (bits wide). w = f32(f32(f32(d·sc)·q) − f32(dmin·mc)).
import { bf16ToF32, f16ToF32, f32ToF16 } from './dtypes';
import { MetricsAcc } from './reference-core';

export interface KqFormat {
  bits: 2 | 4 | 8;
  group: number;
  super: number;
  scaleBits: number;
  minBits: number;
}
export type KqInputDType = 'f32' | 'f16' | 'bf16';

export const KQ_STARTS = 2;
export const KQ_ITERS = 2;
export const KQ_ROUNDS = 1;
export const KQ_MAX_GROUPS = 64;
export const KQ_MAX_GROUP = 256;
export const KQ_MAX_SUPER = 4096;
const kqStep = (bits: number) => (bits === 2 ? 1 : bits === 4 ? 0.75 : 8);

const fr = Math.fround;
const roundF16 = (v: number) => f16ToF32(f32ToF16(v));
function rne(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
const clampq = (q: number, qmax: number) => (q < 0 ? 0 : Math.min(q, qmax));

export const packedRowBytes = (cols: number, bits: number) => Math.ceil((cols * bits) / 8);
export const groupsPerRow = (cols: number, f: KqFormat) => Math.ceil(cols / f.group);
export const supersPerRow = (cols: number, f: KqFormat) => Math.ceil(cols / f.super);
export const codeRowBytes = (cols: number, f: KqFormat) =>
  Math.ceil((groupsPerRow(cols, f) * (f.scaleBits + f.minBits)) / 8);

/** Thrown for NaN/±Inf input (flat index) and for a super-block whose f16 super-scales overflow (its start). */
export class KqNonFiniteError extends Error {
  constructor(
    readonly index: number,
    readonly value: number,
  ) {
    super(`non-finite value ${value} at index ${index}`);
  }
}
export class KqOverflowError extends Error {
  constructor(readonly index: number) {
    super(`the super-block at index ${index} has values too large for its f16 super-scales`);
  }
}

// Scratch, sized for the largest super-block.
const G = KQ_MAX_GROUPS;
const mn = new Float32Array(G);
const mx = new Float32Array(G);
const sx = new Float32Array(G);
const sxx = new Float32Array(G);
const inv = new Float32Array(G);
const off = new Float32Array(G);
const sq = new Float32Array(G);
const sqq = new Float32Array(G);
const sqx = new Float32Array(G);
const a = new Float64Array(G);
const b = new Float64Array(G);
const ca = new Float64Array(G);
const cb = new Float64Array(G);
const ce = new Float64Array(G);
const bestE = new Float64Array(G);
const dn = new Float64Array(G);
const alive = new Uint8Array(G);

/** The passes of kquant.h's KqScalarOps over groups of x[o, o+n). */
function pass(x: Float32Array, o: number, n: number, g: number, ng: number, qmax: number, qv?: Uint8Array, qo = 0) {
  for (let j = 0; j < ng; j++) {
    const base = o + j * g;
    const m = Math.min(g, n - j * g);
    const iv = inv[j];
    const of = off[j];
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < m; i++) {
      const v = x[base + i];
      const q = clampq(rne(fr(fr(v * iv) + of)), qmax);
      if (qv) {
        qv[qo + j * g + i] = q;
        continue;
      }
      s1 = fr(s1 + q);
      s2 = fr(s2 + q * q);
      s3 = fr(s3 + fr(q * v));
    }
    sq[j] = s1;
    sqq[j] = s2;
    sqx[j] = s3;
  }
}

function setInvOff(j: number, s: number, z: number) {
  let i = s === 0 ? 0 : fr(1 / s);
  if (!Number.isFinite(i)) i = 0;
  inv[j] = i;
  off[j] = fr(z * i);
}

/**
 * Quantizes the super-block x[o, o+n) into qv[qo…] (one q per element) and sc/mc[go…] (one code per group); returns
 * the f16 bits of d and dmin, or undefined when they overflow.
 */
export function quantizeSuper(
  x: Float32Array,
  o: number,
  n: number,
  f: KqFormat,
  qv: Uint8Array,
  qo: number,
  sc: Uint8Array,
  mc: Uint8Array,
  go: number,
): [number, number] | undefined {
  const g = f.group;
  const ng = Math.ceil(n / g);
  const qmax = (1 << f.bits) - 1;
  const smax = (1 << f.scaleBits) - 1;
  const mmax = (1 << f.minBits) - 1;
  for (let j = 0; j < ng; j++) {
    const base = o + j * g;
    const m = Math.min(g, n - j * g);
    let lo = x[base];
    let hi = x[base];
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < m; i++) {
      const t = x[base + i];
      if (t < lo) lo = t;
      if (t > hi) hi = t;
      s1 = fr(s1 + t);
      s2 = fr(s2 + fr(t * t));
    }
    mn[j] = lo;
    mx[j] = hi;
    sx[j] = s1;
    sxx[j] = s2;
    dn[j] = m;
    a[j] = (mx[j] - mn[j]) / qmax;
    b[j] = mn[j];
    bestE[j] = Infinity;
  }
  // 1. Float fit per group.
  const step = kqStep(f.bits);
  for (let k = 0; k < KQ_STARTS; k++) {
    for (let j = 0; j < ng; j++) {
      const r = mx[j] - mn[j];
      ca[j] = r / (qmax + k * step);
      cb[j] = mn[j] + (r - ca[j] * qmax) / 2;
      ce[j] = Infinity;
      alive[j] = mx[j] !== mn[j] ? 1 : 0;
    }
    for (let it = 0; it < KQ_ITERS; it++) {
      for (let j = 0; j < ng; j++) {
        const iv = fr(1 / fr(ca[j]));
        const oo = fr(0 - fr(fr(cb[j]) * iv));
        if (!Number.isFinite(iv) || !Number.isFinite(oo)) alive[j] = 0;
        inv[j] = alive[j] ? iv : 0;
        off[j] = alive[j] ? oo : 0;
      }
      pass(x, o, n, g, ng, qmax);
      for (let j = 0; j < ng; j++) {
        if (!alive[j]) continue;
        const det = dn[j] * sqq[j] - sq[j] * sq[j];
        const na = (dn[j] * sqx[j] - sq[j] * sx[j]) / det;
        const nb = (sqq[j] * sx[j] - sq[j] * sqx[j]) / det;
        if (!(det > 0) || !(na > 0) || !(na < Infinity)) {
          alive[j] = 0;
          continue;
        }
        ca[j] = na;
        cb[j] = nb;
        ce[j] = sxx[j] - na * sqx[j] - nb * sx[j];
      }
    }
    for (let j = 0; j < ng; j++)
      if (ce[j] < bestE[j]) {
        bestE[j] = ce[j];
        a[j] = ca[j];
        b[j] = cb[j];
      }
  }
  // 2. Super-block scales.
  let amax = 0;
  let zmax = 0;
  let zmin = 0;
  for (let j = 0; j < ng; j++) {
    const af = fr(a[j]);
    const zf = fr(-b[j]);
    if (af > amax) amax = af;
    if (zf > zmax) zmax = zf;
    if (zf < zmin) zmin = zf;
  }
  const d = roundF16(fr(amax / smax));
  const dm = roundF16(fr((zmax > 0 ? zmax : zmin) / mmax));
  if (!Number.isFinite(d) || !Number.isFinite(dm)) return undefined;
  const id = d === 0 ? 0 : fr(1 / d);
  const im = dm === 0 ? 0 : fr(1 / dm);
  // 3. Codes, then rounds of assignment and the 3×3 neighbour search.
  for (let j = 0; j < ng; j++) {
    sc[go + j] = clampq(rne(fr(fr(a[j]) * id)), smax);
    mc[go + j] = clampq(rne(fr(fr(-b[j]) * im)), mmax);
  }
  const vs = [0, 0, 0];
  const vz = [0, 0, 0];
  const es = [0, 0, 0];
  const ez = [0, 0, 0];
  for (let round = 0; round < KQ_ROUNDS; round++) {
    for (let j = 0; j < ng; j++) setInvOff(j, fr(d * sc[go + j]), fr(dm * mc[go + j]));
    pass(x, o, n, g, ng, qmax);
    let changed = false;
    for (let j = 0; j < ng; j++) {
      const c0 = sc[go + j];
      const m0 = mc[go + j];
      let bs = c0;
      let bz = m0;
      let be = Infinity;
      for (let k = 0; k < 3; k++) {
        const s = fr(d * (c0 + k - 1));
        const z = fr(dm * (m0 + k - 1));
        vs[k] = s;
        vz[k] = z;
        es[k] = s * (sqq[j] * s - 2 * sqx[j]);
        ez[k] = z * (dn[j] * z + 2 * sx[j]);
      }
      const m2 = -2 * sq[j];
      for (let ks = 0; ks < 3; ks++)
        for (let kz = 0; kz < 3; kz++) {
          const cs = c0 + ks - 1;
          const cz = m0 + kz - 1;
          if (cs < 0 || cs > smax || cz < 0 || cz > mmax) continue;
          const e = es[ks] + ez[kz] + m2 * vs[ks] * vz[kz];
          if (e < be) {
            be = e;
            bs = cs;
            bz = cz;
          }
        }
      if (bs !== c0 || bz !== m0) changed = true;
      sc[go + j] = bs;
      mc[go + j] = bz;
    }
    if (!changed) break;
  }
  // 4. q under the final codes.
  for (let j = 0; j < ng; j++) setInvOff(j, fr(d * sc[go + j]), fr(dm * mc[go + j]));
  pass(x, o, n, g, ng, qmax, qv, qo);
  return [f32ToF16(d), f32ToF16(dm)];
}

/** One dequantized element (kq_value). */
export function kqValue(d: number, dm: number, sc: number, mc: number, q: number): number {
  return fr(fr(fr(d * sc) * q) - fr(dm * mc));
}

export interface KqArrays {
  q: Uint8Array;
  codes: Uint8Array;
  d: Uint8Array;
  dmin: Uint8Array;
}

/** Reads row r of an f32/f16/bf16 matrix as float32 into dst. */
export function kqRowReader(
  data: Uint8Array,
  dtype: KqInputDType,
  cols: number,
): (r: number, dst: Float32Array) => void {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dtype === 'f32')
    return (r, dst) => {
      for (let i = 0; i < cols; i++) dst[i] = dv.getFloat32((r * cols + i) * 4, true);
    };
  const dec = dtype === 'f16' ? f16ToF32 : bf16ToF32;
  return (r, dst) => {
    for (let i = 0; i < cols; i++) dst[i] = dec(dv.getUint16((r * cols + i) * 2, true));
  };
}

/** The error metrics' float64 sums: the groupwise reference's accumulator, shared. */
export { MetricsAcc as KqMetricsAcc };

/** Quantizes rows [r0, r1) into out (whole-tensor arrays); metrics, when given, accumulate over them. */
export function quantizeRows(
  read: (r: number, dst: Float32Array) => void,
  cols: number,
  f: KqFormat,
  r0: number,
  r1: number,
  out: KqArrays,
  metrics?: MetricsAcc,
): void {
  const row = new Float32Array(cols);
  const qv = new Uint8Array(cols);
  const gpr = groupsPerRow(cols, f);
  const nsb = supersPerRow(cols, f);
  const sc = new Uint8Array(gpr);
  const mc = new Uint8Array(gpr);
  const rb = packedRowBytes(cols, f.bits);
  const cb = codeRowBytes(cols, f);
  const dv = new DataView(out.d.buffer, out.d.byteOffset, out.d.byteLength);
  const mv = new DataView(out.dmin.buffer, out.dmin.byteOffset, out.dmin.byteLength);
  for (let r = r0; r < r1; r++) {
    read(r, row);
    for (let i = 0; i < cols; i++) if (!Number.isFinite(row[i])) throw new KqNonFiniteError(r * cols + i, row[i]);
    for (let sb = 0; sb < nsb; sb++) {
      const o = sb * f.super;
      const n = Math.min(f.super, cols - o);
      const dd = quantizeSuper(row, o, n, f, qv, o, sc, mc, o / f.group);
      if (!dd) throw new KqOverflowError(r * cols + o);
      dv.setUint16((r * nsb + sb) * 2, dd[0], true);
      mv.setUint16((r * nsb + sb) * 2, dd[1], true);
      if (metrics) {
        const d = f16ToF32(dd[0]);
        const dm = f16ToF32(dd[1]);
        for (let i = o; i < o + n; i++) {
          const gi = Math.floor(i / f.group);
          metrics.add(row[i], kqValue(d, dm, sc[gi], mc[gi], qv[i]));
        }
      }
    }
    const qr = out.q.subarray(r * rb, (r + 1) * rb);
    qr.fill(0);
    for (let i = 0; i < cols; i++) {
      const bit = i * f.bits;
      qr[bit >>> 3] |= qv[i] << (bit & 7);
    }
    const cr = out.codes.subarray(r * cb, (r + 1) * cb);
    cr.fill(0);
    const w = f.scaleBits + f.minBits;
    for (let gi = 0; gi < gpr; gi++) {
      const v = sc[gi] | (mc[gi] << f.scaleBits);
      for (let k = 0; k < w; k++) if ((v >>> k) & 1) cr[(gi * w + k) >>> 3] |= 1 << ((gi * w + k) & 7);
    }
  }
}

function getBits(a: Uint8Array, base: number, pos: number, width: number): number {
  let v = 0;
  for (let k = 0; k < width; k++) v |= ((a[base + ((pos + k) >>> 3)] >>> ((pos + k) & 7)) & 1) << k;
  return v;
}

/** Dequantizes row r into dst (kq_dequantize_row). */
export function dequantizeRow(w: KqArrays & KqFormat & { cols: number }, r: number, dst: Float32Array): void {
  const { cols } = w;
  const rb = packedRowBytes(cols, w.bits);
  const cb = codeRowBytes(cols, w);
  const nsb = supersPerRow(cols, w);
  const dv = new DataView(w.d.buffer, w.d.byteOffset, w.d.byteLength);
  const mv = new DataView(w.dmin.buffer, w.dmin.byteOffset, w.dmin.byteLength);
  const cw = w.scaleBits + w.minBits;
  const mask = (1 << w.bits) - 1;
  for (let c0 = 0; c0 < cols; c0 += w.group) {
    const g = c0 / w.group;
    const sb = Math.floor(c0 / w.super);
    const d = f16ToF32(dv.getUint16((r * nsb + sb) * 2, true));
    const dm = f16ToF32(mv.getUint16((r * nsb + sb) * 2, true));
    const sc = getBits(w.codes, r * cb, g * cw, w.scaleBits);
    const mc = getBits(w.codes, r * cb, g * cw + w.scaleBits, w.minBits);
    const s = fr(d * sc);
    const z = fr(dm * mc);
    const end = Math.min(cols, c0 + w.group);
    for (let c = c0; c < end; c++) {
      const bit = c * w.bits;
      const q = (w.q[r * rb + (bit >>> 3)] >>> (bit & 7)) & mask;
      dst[c] = fr(fr(s * q) - z);
    }
  }
}
