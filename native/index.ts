// The native engine's public API. Loads the node-addon-api addon (native/build/Release/apl_quant.node) when it can,
// otherwise falls back to the TypeScript port of the reference kernels (same results, slower) and says why once
// (`loadNote`, and one line on stderr the first time the fallback is used).
//
// Arguments are validated here, in TypeScript, and passed to the addon as one plain options object.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ref from './reference';

export type InputDType = ref.InputDType;
export type Backend = 'auto' | 'cpu' | 'gpu';
export type QuantParams = ref.QuantParams;
export type Metrics = ref.Metrics;
export type TensorStats = ref.TensorStats;
export type StatsDType = ref.StatsDType;
export type ElementDType = ref.ElementDType;
export type StatsSummary = ref.StatsSummary;
/** Element sizes and names (pure tables of the format, shared by the engine and its callers). */
export { ELEMENT_SIZES, elementSize, isElementDType } from './reference-stats';

export interface QuantizeOptions extends QuantParams {
  /** Raw little-endian input bytes: rows*cols elements of `dtype`. */
  data: Uint8Array;
  dtype: InputDType;
  rows: number;
  cols: number;
  backend?: Backend;
  threads?: number;
  /** Tensor name for error messages. */
  name?: string;
  /** Also compute error metrics in the same pass. */
  metrics?: boolean;
  signal?: AbortSignal;
  onProgress?: (rowsDone: number) => void;
}

export interface QuantizeResult {
  /** rows * ceil(cols*bits/8) packed bytes, first value in the lowest bits. */
  q: Uint8Array;
  /** Raw f16/f32 little-endian bytes, rows*groups. */
  scales: Uint8Array;
  zeros: Uint8Array;
  metrics?: Metrics;
  /** What ran: 'cpu-avx2', 'cpu-avx512', 'cpu-neon', 'cpu-scalar', 'cuda:<gpu name>' or 'ts-reference'. */
  backend: string;
}

export interface Quantized extends QuantParams {
  q: Uint8Array;
  scales: Uint8Array;
  zeros: Uint8Array;
  rows: number;
  cols: number;
}

export interface EngineInfo {
  native: boolean;
  reason?: string;
  simd: string;
  threads: number;
  gpu: { available: boolean; name?: string; reason?: string };
}

/** The rounding mode the converter uses unless told otherwise: 'optimized' lowers error at the same size. */
export const DEFAULT_MODE: QuantParams['mode'] = 'optimized';
export const DEFAULT_GROUP_SIZE = 64;

// ---------------------------------------------------------------------------------------------------------------
// Addon loading

/** The addon's surface (native/src/addon.cc). Options objects are validated before they get here. */
export interface Addon {
  engineInfo(): EngineInfo;
  quantize(
    o: {
      data: Uint8Array;
      dtype: InputDType;
      rows: number;
      cols: number;
      bits: number;
      groupSize: number;
      symmetric: boolean;
      optimized: boolean;
      f16: boolean;
      gpu: number; // 0 cpu, 1 gpu, 2 auto
      threads: number;
      metrics: boolean;
      q: Uint8Array;
      scales: Uint8Array;
      zeros: Uint8Array;
    },
    onProgress: ((rowsDone: number) => void) | undefined,
  ): {
    promise: Promise<{ backend: string; metrics?: Metrics; error?: string; code?: string; badIndex?: number }>;
    cancel(): void;
  };
  dequantize(w: AddonQuantized, out: Float32Array): void;
  errorMetrics(data: Uint8Array, dtype: InputDType, w: AddonQuantized): Metrics;
  qmatmul(x: Float32Array, n: number, w: AddonQuantized, out: Float32Array): void;
  /** dtype: the ElementDType's index in ELEMENT_SIZES (native/src/stats.h ElemType). */
  decode(bytes: Uint8Array, dtype: number, littleEndian: boolean, out: Float64Array, outOffset: number): number;
  statsAdd(state: Float64Array, bytes: Uint8Array, dtype: number, littleEndian: boolean): void;
  histogram(
    bytes: Uint8Array,
    dtype: number,
    littleEndian: boolean,
    min: number,
    max: number,
    counts: Float64Array,
  ): void;
}
interface AddonQuantized {
  q: Uint8Array;
  scales: Uint8Array;
  zeros: Uint8Array;
  rows: number;
  cols: number;
  bits: number;
  groupSize: number;
  f16: boolean;
}

let addon: Addon | null | undefined;
/** Why the TypeScript reference is in use (undefined while the addon is in use or before the first call). */
export let loadNote: string | undefined;
let noteShown = false;

/** Where the addon may be, relative to this file: native/ under tsx, dist/ in the esbuild bundles. */
export function addonCandidates(dir = __dirname): string[] {
  const names = ['build/Release/apl_quant.node', 'build/Debug/apl_quant.node'];
  const bases = [dir, join(dir, '..', 'native'), join(dir, '..', '..', 'native')];
  const out: string[] = [];
  for (const b of bases) for (const n of names) out.push(join(b, n));
  return [...new Set(out)];
}

function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.APL_NO_NATIVE === '1') {
    loadNote = 'APL_NO_NATIVE=1 is set, so the TypeScript reference engine is used';
    return addon;
  }
  const tried: string[] = [];
  for (const p of addonCandidates()) {
    if (!existsSync(p)) continue;
    try {
      // biome-ignore lint/suspicious/noExplicitAny: dynamic addon load
      addon = (require as any)(p) as Addon;
      loadNote = undefined;
      return addon;
    } catch (e) {
      tried.push(`${p}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  loadNote = tried.length
    ? `the native addon failed to load (${tried.join('; ')}); using the slower TypeScript reference engine`
    : 'the native addon is not built (run `npm run build:native`); using the slower TypeScript reference engine';
  return addon;
}

function fallbackNotice(): void {
  if (noteShown || !loadNote) return;
  noteShown = true;
  if (process.env.APL_QUIET_NATIVE !== '1') process.stderr.write(`apl-quant: ${loadNote}\n`);
}

/** For tests: use the TypeScript reference (true) or reload the addon (false). */
export function _forceReference(on: boolean): void {
  if (on) {
    addon = null;
    loadNote = 'forced by a test';
    noteShown = true;
  } else {
    addon = undefined;
    loadNote = undefined;
  }
}

export function engineInfo(): EngineInfo {
  const a = loadAddon();
  if (a) return a.engineInfo();
  return {
    native: false,
    reason: loadNote,
    simd: 'none',
    threads: 1,
    gpu: { available: false, reason: 'the native addon is not loaded' },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

/**
 * The `code` of the error quantize() raises when a scale cannot be stored in the asked scale dtype (f16 overflow):
 * the caller may retry with scaleDtype 'f32'. Addon and TypeScript reference alike; match the code, not the text.
 */
export const ERR_SCALE_OVERFLOW: ref.RangeForDtypeError['code'] = 'ERR_APL_SCALE_OVERFLOW';

/** An Error from the native engine; `code` is set for errors a caller may act on (ERR_SCALE_OVERFLOW). */
export interface NativeError extends Error {
  code?: string;
}

function fail(name: string | undefined, msg: string, code?: string): never {
  const e: NativeError = new Error(name ? `${name}: ${msg}` : msg);
  if (code) e.code = code;
  throw e;
}

const BITS = [1, 2, 4, 8];
function checkParams(p: QuantParams, name?: string): void {
  if (!BITS.includes(p.bits)) fail(name, `bits must be 1, 2, 4 or 8 (got ${p.bits})`);
  if (!Number.isInteger(p.groupSize) || p.groupSize < 1)
    fail(name, `groupSize must be a positive integer (got ${p.groupSize})`);
  if (p.mode !== 'minmax' && p.mode !== 'optimized') fail(name, `mode must be 'minmax' or 'optimized' (got ${p.mode})`);
  if (p.scaleDtype !== 'f16' && p.scaleDtype !== 'f32')
    fail(name, `scaleDtype must be 'f16' or 'f32' (got ${p.scaleDtype})`);
  if (typeof p.symmetric !== 'boolean') fail(name, 'symmetric must be a boolean');
}
function checkShape(rows: number, cols: number, name?: string): void {
  if (!Number.isSafeInteger(rows) || rows < 0) fail(name, `rows must be a non-negative integer (got ${rows})`);
  if (!Number.isSafeInteger(cols) || cols < 1) fail(name, `cols must be a positive integer (got ${cols})`);
}
function dtypeSize(d: string, name?: string): number {
  if (d !== 'f32' && d !== 'f16' && d !== 'bf16') fail(name, `dtype must be 'f32', 'f16' or 'bf16' (got ${d})`);
  return d === 'f32' ? 4 : 2;
}
function checkQuantized(w: Quantized): void {
  checkParams(w, 'quantized tensor');
  checkShape(w.rows, w.cols, 'quantized tensor');
  const sb = w.scaleDtype === 'f16' ? 2 : 4;
  const g = ref.groupsPerRow(w.cols, w.groupSize);
  const qb = w.rows * ref.packedRowBytes(w.cols, w.bits);
  if (w.q.byteLength !== qb) fail('quantized tensor', `q has ${w.q.byteLength} bytes, expected ${qb}`);
  if (w.scales.byteLength !== w.rows * g * sb)
    fail('quantized tensor', `scales have ${w.scales.byteLength} bytes, expected ${w.rows * g * sb}`);
  if (w.zeros.byteLength !== w.rows * g * sb)
    fail('quantized tensor', `zeros have ${w.zeros.byteLength} bytes, expected ${w.rows * g * sb}`);
}
function toAddonQ(w: Quantized): AddonQuantized {
  return {
    q: w.q,
    scales: w.scales,
    zeros: w.zeros,
    rows: w.rows,
    cols: w.cols,
    bits: w.bits,
    groupSize: w.groupSize,
    f16: w.scaleDtype === 'f16',
  };
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

// ---------------------------------------------------------------------------------------------------------------
// API

export async function quantize(o: QuantizeOptions): Promise<QuantizeResult> {
  const name = o.name;
  checkParams(o, name);
  checkShape(o.rows, o.cols, name);
  const bpe = dtypeSize(o.dtype, name);
  if (!(o.data instanceof Uint8Array)) fail(name, 'data must be a Uint8Array of raw little-endian bytes');
  const expect = o.rows * o.cols * bpe;
  if (o.data.byteLength !== expect)
    fail(name, `data has ${o.data.byteLength} bytes, expected ${expect} (${o.rows}×${o.cols} ${o.dtype})`);
  const backend = o.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'cpu' && backend !== 'gpu')
    fail(name, `backend must be 'auto', 'cpu' or 'gpu' (got ${backend})`);
  const threads = o.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0 || threads > 1024)
    fail(name, `threads must be an integer from 0 (all cores) to 1024 (got ${threads})`);
  o.signal?.throwIfAborted();

  const sb = o.scaleDtype === 'f16' ? 2 : 4;
  const gpr = ref.groupsPerRow(o.cols, o.groupSize);
  const out = {
    q: new Uint8Array(o.rows * ref.packedRowBytes(o.cols, o.bits)),
    scales: new Uint8Array(o.rows * gpr * sb),
    zeros: new Uint8Array(o.rows * gpr * sb),
  };
  const a = loadAddon();
  if (a) {
    // A throwing onProgress must not escape into the addon's callback: keep the first error, cancel, rethrow.
    let progressError: unknown;
    let cancel = () => {};
    const user = o.onProgress;
    const onProgress = user
      ? (n: number) => {
          if (progressError !== undefined) return;
          try {
            user(n);
          } catch (e) {
            progressError = e ?? new Error('onProgress threw');
            cancel();
          }
        }
      : undefined;
    const job = a.quantize(
      {
        data: o.data,
        dtype: o.dtype,
        rows: o.rows,
        cols: o.cols,
        bits: o.bits,
        groupSize: o.groupSize,
        symmetric: o.symmetric,
        optimized: o.mode === 'optimized',
        f16: o.scaleDtype === 'f16',
        gpu: backend === 'cpu' ? 0 : backend === 'gpu' ? 1 : 2,
        threads,
        metrics: !!o.metrics,
        ...out,
      },
      onProgress,
    );
    cancel = () => job.cancel();
    const onAbort = () => job.cancel();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await job.promise;
      if (progressError !== undefined) throw progressError;
      if (o.signal?.aborted) throw abortError(o.signal);
      if (r.error) fail(name ?? 'tensor', r.error, r.code);
      return { ...out, backend: r.backend, ...(r.metrics ? { metrics: r.metrics } : {}) };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  }
  if (backend === 'gpu') fail(name, `backend 'gpu' is not available: ${loadNote}`);
  fallbackNotice();
  const read = ref.rowReader(o.data, o.dtype, o.cols);
  const acc = o.metrics ? new ref.MetricsAcc() : undefined;
  // Rows in chunks of ~64K elements, yielding to the event loop between chunks (progress, cancellation).
  const chunk = Math.max(1, Math.floor((1 << 16) / o.cols));
  for (let r0 = 0; r0 < o.rows; r0 += chunk) {
    const r1 = Math.min(o.rows, r0 + chunk);
    try {
      ref.quantizeRows(read, o.cols, o, r0, r1, out, acc);
    } catch (e) {
      if (e instanceof ref.NonFiniteError) {
        const row = Math.floor(e.index / o.cols);
        fail(name ?? 'tensor', `${e.value} at index ${e.index} (row ${row}, column ${e.index % o.cols})`);
      }
      if (e instanceof ref.RangeForDtypeError)
        fail(name ?? 'tensor', `${e.message}; use scaleDtype 'f32'`, ERR_SCALE_OVERFLOW);
      throw e;
    }
    o.onProgress?.(r1);
    if (r1 < o.rows) {
      await new Promise<void>((res) => setImmediate(res));
      if (o.signal?.aborted) throw abortError(o.signal);
    }
  }
  return { ...out, backend: 'ts-reference', ...(acc ? { metrics: acc.result() } : {}) };
}

export function dequantize(w: Quantized): Float32Array {
  checkQuantized(w);
  const a = loadAddon();
  if (a) {
    const out = new Float32Array(w.rows * w.cols);
    a.dequantize(toAddonQ(w), out);
    return out;
  }
  fallbackNotice();
  return ref.dequantize(w);
}

export function errorMetrics(r: { data: Uint8Array; dtype: InputDType }, w: Quantized): Metrics {
  checkQuantized(w);
  const bpe = dtypeSize(r.dtype, 'reference tensor');
  if (r.data.byteLength !== w.rows * w.cols * bpe)
    fail('reference tensor', `has ${r.data.byteLength} bytes, expected ${w.rows * w.cols * bpe}`);
  const a = loadAddon();
  if (a) return a.errorMetrics(r.data, r.dtype, toAddonQ(w));
  fallbackNotice();
  return ref.errorMetrics(r, w);
}

/** x · Ŵᵀ: x is n × cols (row-major float32), the result n × rows. Never materialises Ŵ. */
export function qmatmul(x: Float32Array, n: number, w: Quantized): Float32Array {
  checkQuantized(w);
  if (!Number.isSafeInteger(n) || n < 0) fail('qmatmul', `n must be a non-negative integer (got ${n})`);
  if (x.length !== n * w.cols) fail('qmatmul', `x has ${x.length} elements, expected ${n}×${w.cols}`);
  const a = loadAddon();
  if (a) {
    const out = new Float32Array(n * w.rows);
    a.qmatmul(x, n, toAddonQ(w), out);
    return out;
  }
  fallbackNotice();
  return ref.qmatmul(x, n, w);
}

// ---------------------------------------------------------------------------------------------------------------
// Element decoding and statistics (native/src/stats.h; spec and fallback: native/reference-stats.ts)

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

  result(): StatsSummary {
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
): TensorStats {
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
export function valueStats(values: Float64Array, bins = 64): TensorStats {
  return tensorStats(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 'float64', bins);
}
