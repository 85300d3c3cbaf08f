// Element decoding and statistics: native/src/stats.h through the addon, else the reference
// (native/reference-stats.ts, its spec). Part of the public API; import it from native/index.ts.
import { fail, fallbackNotice, loadAddon } from './load';
import * as ref from './reference';

type ElementDType = ref.ElementDType;
type StatsDType = ref.StatsDType;

const ELEMENT_CODES = new Map(Object.keys(ref.ELEMENT_SIZES).map((d, i) => [d, i]));

function elementCode(fn: string, dtype: string): number {
  const c = ELEMENT_CODES.get(dtype);
  if (c === undefined) fail(fn, `unsupported dtype '${dtype}'`);
  return c;
}

/**
 * Decodes the whole elements of `bytes` (numpy dtype `dtype`, either byte order) into out[outOffset, …) as float64;
 * returns how many. int64/uint64 beyond 2^53 become the nearest double; a bool is 1 for any non-zero byte.
 */
export function decodeInto(
  bytes: Uint8Array,
  dtype: ElementDType,
  littleEndian: boolean,
  out: Float64Array,
  outOffset = 0,
): number {
  const code = elementCode('decode', dtype);
  const n = Math.floor(bytes.byteLength / ref.ELEMENT_SIZES[dtype]);
  if (!Number.isSafeInteger(outOffset) || outOffset < 0 || outOffset + n > out.length)
    fail('decode', `${n} values do not fit at ${outOffset} in an array of ${out.length}`);
  const a = loadAddon();
  if (a) return a.decode(bytes, code, littleEndian, out, outOffset);
  fallbackNotice();
  return ref.decodeInto(bytes, dtype, littleEndian, out, outOffset);
}

/** The whole elements of `bytes` as a new Float64Array. */
export function decode(bytes: Uint8Array, dtype: ElementDType, littleEndian = true): Float64Array {
  const size = ref.elementSize(dtype);
  if (size === undefined) fail('decode', `unsupported dtype '${dtype}'`);
  const out = new Float64Array(Math.floor(bytes.byteLength / size));
  decodeInto(bytes, dtype, littleEndian, out);
  return out;
}

function wholeElements(fn: string, bytes: Uint8Array, dtype: ElementDType): number {
  const code = elementCode(fn, dtype);
  if (bytes.byteLength % ref.ELEMENT_SIZES[dtype])
    fail(fn, `${bytes.byteLength} bytes is not a whole number of ${dtype} values`);
  return code;
}

/**
 * Streaming statistics of the finite values (count, min, max, mean, population std) and NaN/Inf counts, fed one
 * chunk of raw bytes at a time; memory stays bounded by the chunk. The same chunks give the same bits on the addon
 * and on the reference.
 */
export class StatsAccumulator {
  private readonly state = ref.newStatsState();

  /** Adds a chunk of raw bytes of `dtype` (whole elements). */
  add(bytes: Uint8Array, dtype: ElementDType, littleEndian = true): void {
    const code = wholeElements('statsAdd', bytes, dtype);
    const a = loadAddon();
    if (a) {
      a.statsAdd(this.state, bytes, code, littleEndian);
      return;
    }
    fallbackNotice();
    ref.statsAdd(this.state, bytes, dtype, littleEndian);
  }

  /** Adds decoded values (one chunk). */
  addValues(v: Float64Array): void {
    this.add(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 'float64');
  }

  result(): ref.StatsSummary {
    return ref.statsResult(this.state);
  }
}

/** Counts of the finite elements of `bytes` in `bins` equal bins over [min, max] (see reference-stats.ts). */
export function histogram(
  bytes: Uint8Array,
  dtype: ElementDType,
  littleEndian: boolean,
  min: number,
  max: number,
  bins = 64,
): number[] {
  const code = wholeElements('histogram', bytes, dtype);
  if (!Number.isInteger(bins) || bins < 1 || bins > 1 << 20) fail('histogram', `bins must be 1..1048576 (got ${bins})`);
  const a = loadAddon();
  if (a) {
    const counts = new Float64Array(bins);
    a.histogram(bytes, code, littleEndian, min, max, counts);
    return Array.from(counts);
  }
  fallbackNotice();
  return ref.histogram(bytes, dtype, littleEndian, min, max, bins);
}

/**
 * Min, max, mean, std of the finite values, NaN/Inf counts and a histogram (`bins` equal bins over [min, max]) of
 * one block of raw bytes. `dtype` is a numpy name or one of the short names ('f32', 'bf16', 'i8', …).
 */
export function tensorStats(
  data: Uint8Array,
  dtype: StatsDType | ElementDType,
  bins = 64,
  littleEndian = true,
): ref.TensorStats {
  const d = Object.hasOwn(ref.SHORT_DTYPES, dtype) ? ref.SHORT_DTYPES[dtype as StatsDType] : (dtype as ElementDType);
  wholeElements('tensorStats', data, d);
  if (!Number.isInteger(bins) || bins < 1 || bins > 1 << 20)
    fail('tensorStats', `bins must be 1..1048576 (got ${bins})`);
  const acc = new StatsAccumulator();
  acc.add(data, d, littleEndian);
  const s = acc.result();
  const counts = s.count
    ? histogram(data, d, littleEndian, s.min as number, s.max as number, bins)
    : new Array<number>(bins).fill(0);
  return ref.finishTensorStats(s, counts);
}

/** tensorStats of decoded values. */
export function valueStats(values: Float64Array, bins = 64): ref.TensorStats {
  return tensorStats(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 'float64', bins);
}
