// The reference kernels' shared ground: parameter and result types, the scheme's constants, sizes, the
// float16 rounding of stored scales, the f32/f16/bf16 row reader and the float64 error-metrics accumulator.
// Part of the TypeScript port of native/src/quant.h (see reference.ts).
import { bf16ToF32, f16Lut, f16ToF32, f32ToF16 } from './dtypes';

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
export const OPT_SYM_FACTORS = [1, 0.92, 0.84, 0.76];

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
export function roundStored(v: number, f16: boolean): number {
  return f16 ? f16BitsToF32(f32ToF16Bits(v)) : v;
}
// ---------------------------------------------------------------------------------------------------------------
// Views and sizes

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
// Error metrics

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
