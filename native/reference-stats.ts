// Element decoding and statistics of the reference (the spec of native/src/stats.h): every numpy dtype the readers
// name, in either byte order, decoded to float64; streaming statistics (count, min, max, mean, population std,
// NaN/Inf counts) fed one chunk at a time; a histogram of equal bins over [min, max].
//
// Chunks are combined with Chan et al.'s parallel update: each chunk's mean and squared deviations in float64 (two
// passes over the chunk), which stays accurate where a plain sum of squares would cancel. The C++ port does the
// same float64 operations in the same order, so both give the same bits.
import { bf16ToF32, f8Lut, f16Lut } from './dtypes';

/** Element types, spelled as numpy (and ml_dtypes) spell them. */
export type ElementDType =
  | 'bool'
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'uint32'
  | 'int32'
  | 'uint64'
  | 'int64'
  | 'float16'
  | 'bfloat16'
  | 'float32'
  | 'float64'
  | 'float8_e4m3fn'
  | 'float8_e5m2';

/** Bytes per element; the order is the addon's dtype code (native/src/stats.h ElemType). */
export const ELEMENT_SIZES: Readonly<Record<ElementDType, number>> = {
  bool: 1,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  uint64: 8,
  int64: 8,
  float16: 2,
  bfloat16: 2,
  float32: 4,
  float64: 8,
  float8_e4m3fn: 1,
  float8_e5m2: 1,
};

export function isElementDType(d: string): d is ElementDType {
  return Object.hasOwn(ELEMENT_SIZES, d);
}

/** Bytes per element of a numpy dtype name; undefined for dtypes the engine cannot decode. */
export function elementSize(d: string): number | undefined {
  return isElementDType(d) ? ELEMENT_SIZES[d] : undefined;
}

/**
 * Decodes the whole elements of `bytes` into out[outOffset, outOffset + n) and returns n. int64/uint64 beyond 2^53
 * become the nearest double (as numpy's float conversion does); a bool is 1 for any non-zero byte.
 */
export function decodeInto(
  bytes: Uint8Array,
  dtype: ElementDType,
  littleEndian: boolean,
  out: Float64Array | number[],
  outOffset = 0,
): number {
  const size = ELEMENT_SIZES[dtype];
  const n = Math.floor(bytes.byteLength / size);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * size);
  const le = littleEndian;
  const o = outOffset;
  switch (dtype) {
    case 'bool':
      for (let i = 0; i < n; i++) out[o + i] = dv.getUint8(i) ? 1 : 0;
      break;
    case 'uint8':
      for (let i = 0; i < n; i++) out[o + i] = dv.getUint8(i);
      break;
    case 'int8':
      for (let i = 0; i < n; i++) out[o + i] = dv.getInt8(i);
      break;
    case 'uint16':
      for (let i = 0; i < n; i++) out[o + i] = dv.getUint16(2 * i, le);
      break;
    case 'int16':
      for (let i = 0; i < n; i++) out[o + i] = dv.getInt16(2 * i, le);
      break;
    case 'uint32':
      for (let i = 0; i < n; i++) out[o + i] = dv.getUint32(4 * i, le);
      break;
    case 'int32':
      for (let i = 0; i < n; i++) out[o + i] = dv.getInt32(4 * i, le);
      break;
    case 'uint64':
      for (let i = 0; i < n; i++) out[o + i] = Number(dv.getBigUint64(8 * i, le));
      break;
    case 'int64':
      for (let i = 0; i < n; i++) out[o + i] = Number(dv.getBigInt64(8 * i, le));
      break;
    case 'float16': {
      const lut = f16Lut();
      for (let i = 0; i < n; i++) out[o + i] = lut[dv.getUint16(2 * i, le)];
      break;
    }
    case 'bfloat16':
      for (let i = 0; i < n; i++) out[o + i] = bf16ToF32(dv.getUint16(2 * i, le));
      break;
    case 'float32':
      for (let i = 0; i < n; i++) out[o + i] = dv.getFloat32(4 * i, le);
      break;
    case 'float64':
      for (let i = 0; i < n; i++) out[o + i] = dv.getFloat64(8 * i, le);
      break;
    case 'float8_e4m3fn':
    case 'float8_e5m2': {
      const lut = f8Lut(dtype === 'float8_e4m3fn' ? 'e4m3' : 'e5m2');
      for (let i = 0; i < n; i++) out[o + i] = lut[bytes[i]];
      break;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming statistics

/** The running state: [count, mean, m2, min, max, nan, inf] (float64; what the addon updates in place). */
export type StatsState = Float64Array;
export const STATS_STATE_LENGTH = 7;

export function newStatsState(): StatsState {
  return Float64Array.of(0, 0, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, 0);
}

/** Adds one chunk of decoded values to `s` (Chan's update; see the top of this file). */
export function statsAddValues(s: StatsState, v: ArrayLike<number>): void {
  let n = 0;
  let sum = 0;
  let min = s[3];
  let max = s[4];
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x - x === 0) {
      n++;
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
    } else if (Number.isNaN(x)) nan++;
    else inf++;
  }
  s[5] += nan;
  s[6] += inf;
  s[3] = min;
  s[4] = max;
  if (!n) return;
  const mean = sum / n;
  let m2 = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v[i] - mean;
    if (d - d === 0) m2 += d * d;
  }
  const count = s[0];
  const total = count + n;
  const delta = mean - s[1];
  s[1] += (delta * n) / total;
  s[2] += m2 + (delta * delta * count * n) / total;
  s[0] = total;
}

/** Adds one chunk of raw bytes (whole elements) of `dtype` to `s`. */
export function statsAdd(s: StatsState, bytes: Uint8Array, dtype: ElementDType, littleEndian = true): void {
  const v = new Float64Array(Math.floor(bytes.byteLength / ELEMENT_SIZES[dtype]));
  decodeInto(bytes, dtype, littleEndian, v);
  statsAddValues(s, v);
}

export interface StatsSummary {
  /** Finite elements counted. */
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nan: number;
  inf: number;
}

/** The statistics of a state; min/max/mean/std are null when no finite value was seen. */
export function statsResult(s: StatsState): StatsSummary {
  const n = s[0];
  const has = n > 0;
  return {
    count: n,
    min: has ? s[3] : null,
    max: has ? s[4] : null,
    mean: has ? s[1] : null,
    std: has ? Math.sqrt(Math.max(0, s[2] / n)) : null,
    nan: s[5],
    inf: s[6],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Histogram

/**
 * Counts of the finite values of `bytes` in `bins` equal bins over [min, max]: bin ⌊(v − min) · (bins / (max − min))⌋,
 * the last bin including max, values outside [min, max] clamped to the end bins; everything in bin 0 when max = min.
 */
export function histogram(
  bytes: Uint8Array,
  dtype: ElementDType,
  littleEndian: boolean,
  min: number,
  max: number,
  bins: number,
): number[] {
  const v = new Float64Array(Math.floor(bytes.byteLength / ELEMENT_SIZES[dtype]));
  decodeInto(bytes, dtype, littleEndian, v);
  const counts = new Array<number>(Math.max(1, bins)).fill(0);
  const nb = counts.length;
  const scale = max > min ? nb / (max - min) : 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x - x !== 0) continue;
    let b = Math.trunc((x - min) * scale);
    if (!(b >= 0)) b = 0;
    else if (b >= nb) b = nb - 1;
    counts[b]++;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------------------------
// Whole-tensor statistics

export interface TensorStats {
  /** Finite elements counted. */
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  nan: number;
  inf: number;
  histogram: { min: number; max: number; counts: number[] };
}

/** Short names of the common element types (the addon's original tensorStats spelling). */
export type StatsDType = 'f32' | 'f16' | 'bf16' | 'f64' | 'i32' | 'u32' | 'i16' | 'u16' | 'i8' | 'u8';
export const SHORT_DTYPES: Readonly<Record<StatsDType, ElementDType>> = {
  f32: 'float32',
  f16: 'float16',
  bf16: 'bfloat16',
  f64: 'float64',
  i32: 'int32',
  u32: 'uint32',
  i16: 'int16',
  u16: 'uint16',
  i8: 'int8',
  u8: 'uint8',
};

/** Statistics of one block of values taken as one chunk, and its histogram over [min, max] (zeros when empty). */
export function finishTensorStats(s: StatsSummary, counts: number[]): TensorStats {
  const has = s.count > 0;
  const min = has ? (s.min as number) : 0;
  const max = has ? (s.max as number) : 0;
  return {
    count: s.count,
    min,
    max,
    mean: has ? (s.mean as number) : 0,
    std: has ? (s.std as number) : 0,
    nan: s.nan,
    inf: s.inf,
    histogram: { min, max, counts },
  };
}

/** Statistics of the finite values of `bytes` (NaN and ±Inf counted, not included) and a `bins`-bin histogram. */
export function tensorStats(bytes: Uint8Array, dtype: ElementDType, bins = 64, littleEndian = true): TensorStats {
  const st = newStatsState();
  statsAdd(st, bytes, dtype, littleEndian);
  const s = statsResult(st);
  const counts = s.count
    ? histogram(bytes, dtype, littleEndian, s.min as number, s.max as number, bins)
    : new Array<number>(Math.max(1, bins)).fill(0);
  return finishTensorStats(s, counts);
}
