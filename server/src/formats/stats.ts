// Streaming tensor statistics: min, max, mean, std (population, like numpy's default), NaN and Inf counts, fed one
// chunk at a time so memory stays bounded by the chunk. Chunks are combined with Chan et al.'s parallel update
// (each chunk's mean and squared deviations in float64, two passes over the chunk), which stays accurate where a
// plain sum of squares would cancel.
import { byteswapInPlace, f8Lut, f16BytesToF32 } from './dtypes';
import type { NpDtype } from './npy';

export interface TensorStatsResult {
  /** Finite elements counted. */
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nan: number;
  inf: number;
}

/** Element kinds the accumulator can decode, spelled as numpy (and ml_dtypes) spell them. */
export type StatsDtype = NpDtype | 'bfloat16' | 'float8_e4m3fn' | 'float8_e5m2';

const ITEM: Record<StatsDtype, number> = {
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

export function isStatsDtype(d: string): d is StatsDtype {
  return Object.hasOwn(ITEM, d);
}

export function statsItemSize(d: StatsDtype): number {
  return ITEM[d];
}

let f16: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!f16) {
    f16 = new Float32Array(65536);
    const u = new Uint16Array(65536).map((_, i) => i);
    f16BytesToF32(new Uint8Array(u.buffer), f16);
  }
  return f16;
}

/** Decodes little-endian (or big-endian) raw bytes of `dtype` into numbers. Copies; the input is untouched. */
export function decodeToNumbers(raw: Uint8Array, dtype: StatsDtype, littleEndian = true): ArrayLike<number> {
  const item = ITEM[dtype];
  const n = Math.floor(raw.byteLength / item);
  let bytes = raw.subarray(0, n * item);
  if (!littleEndian && item > 1) bytes = byteswapInPlace(Uint8Array.from(bytes), item);
  else if (bytes.byteOffset % item !== 0) bytes = Uint8Array.from(bytes);
  const b = bytes.buffer;
  const o = bytes.byteOffset;
  switch (dtype) {
    case 'bool':
    case 'uint8':
      return bytes;
    case 'int8':
      return new Int8Array(b, o, n);
    case 'uint16':
      return new Uint16Array(b, o, n);
    case 'int16':
      return new Int16Array(b, o, n);
    case 'uint32':
      return new Uint32Array(b, o, n);
    case 'int32':
      return new Int32Array(b, o, n);
    case 'float32':
      return new Float32Array(b, o, n);
    case 'float64':
      return new Float64Array(b, o, n);
    case 'uint64': {
      const s = new BigUint64Array(b, o, n);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(s[i]);
      return out;
    }
    case 'int64': {
      const s = new BigInt64Array(b, o, n);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(s[i]);
      return out;
    }
    case 'float16': {
      const s = new Uint16Array(b, o, n);
      const t = f16Table();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[s[i]];
      return out;
    }
    case 'bfloat16': {
      const s = new Uint16Array(b, o, n);
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = s[i] << 16;
      return out;
    }
    case 'float8_e4m3fn':
    case 'float8_e5m2': {
      const t = f8Lut(dtype === 'float8_e4m3fn' ? 'e4m3' : 'e5m2');
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[bytes[i]];
      return out;
    }
  }
}

export class StatsAccumulator {
  private n = 0;
  private mean = 0;
  private m2 = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;
  private nan = 0;
  private inf = 0;

  /** Adds a chunk of values. */
  addValues(v: ArrayLike<number>): void {
    let n = 0;
    let sum = 0;
    let min = this.min;
    let max = this.max;
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
    this.nan += nan;
    this.inf += inf;
    this.min = min;
    this.max = max;
    if (!n) return;
    const mean = sum / n;
    let m2 = 0;
    for (let i = 0; i < v.length; i++) {
      const d = v[i] - mean;
      if (d - d === 0) m2 += d * d;
    }
    const total = this.n + n;
    const delta = mean - this.mean;
    this.mean += (delta * n) / total;
    this.m2 += m2 + (delta * delta * this.n * n) / total;
    this.n = total;
  }

  /** Adds raw bytes of `dtype` (whole elements). */
  addBytes(raw: Uint8Array, dtype: StatsDtype, littleEndian = true): void {
    this.addValues(decodeToNumbers(raw, dtype, littleEndian));
  }

  result(): TensorStatsResult {
    const has = this.n > 0;
    return {
      count: this.n,
      min: has ? this.min : null,
      max: has ? this.max : null,
      mean: has ? this.mean : null,
      std: has ? Math.sqrt(Math.max(0, this.m2 / this.n)) : null,
      nan: this.nan,
      inf: this.inf,
    };
  }
}

/** Statistics over a stream of raw chunks (each a whole number of elements). */
export async function streamStats(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  dtype: StatsDtype,
  littleEndian = true,
): Promise<TensorStatsResult> {
  const acc = new StatsAccumulator();
  for await (const c of chunks) acc.addBytes(c, dtype, littleEndian);
  return acc.result();
}
