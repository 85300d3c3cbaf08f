// Loading the native addon (native/build/Release/apl_quant.node) and its surface; when it cannot load, the
// TypeScript reference is used and says why once (`loadNote`, and one stderr line on first use). Also how errors
// cross the native boundary: a one-line message, and a `code` for errors a caller may act on. Last, what both
// quantize types (index.ts, kquant.ts) share: argument checks, the addon job's result, the reference's row loop.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as ref from './reference';

type InputDType = ref.InputDType;
type Metrics = ref.Metrics;

export interface EngineInfo {
  native: boolean;
  reason?: string;
  simd: string;
  threads: number;
  gpu: { available: boolean; name?: string; reason?: string };
}

// ---------------------------------------------------------------------------------------------------------------
// Addon loading

/** The addon's surface (native/src/addon.cc). Options objects are validated before they get here. */
export interface Addon {
  engineInfo(): EngineInfo;
  /** The 2 MiB-page advice of native/src/infer/hugepages.h (advise_arena); optional: an addon built before it lacks it. */
  inferArena?(bytes: Uint8Array): { offset: number; bytes: number; advised: boolean };
  /** zlib's crc32 with PCLMULQDQ (native/src/crc32.h); undefined where the CPU lacks it. Optional, as above. */
  crc32?(bytes: Uint8Array, crc: number): number | undefined;
  /** The O_DIRECT output file (native/src/io.cc); optional: an addon built before it, or on Windows, lacks it. */
  DirectFile?: new (
    path: string,
    o: { direct: boolean; bufferBytes?: number; buffers?: number },
  ) => AddonDirectFile;
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
      metricsFrom?: MetricsSums;
      check?: OutputCheckRequest;
      q: Uint8Array;
      scales: Uint8Array;
      zeros: Uint8Array;
    },
    onProgress: ((rowsDone: number) => void) | undefined,
  ): {
    promise: Promise<{
      backend: string;
      metrics?: Metrics;
      metricsSums?: MetricsSums;
      check?: OutputCheck;
      error?: string;
      code?: string;
      badIndex?: number;
    }>;
    cancel(): void;
  };
  dequantize(w: AddonQuantized, out: Float32Array): void;
  errorMetrics(data: Uint8Array, dtype: InputDType, w: AddonQuantized): Metrics;
  compareMetrics(x: Float32Array, w: Float32Array): Metrics;
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
/** See native/src/io.cc. Errors carry `code` (the errno name) and a message naming the file. */
export interface AddonDirectFile {
  write(bytes: Uint8Array): Promise<void>;
  patch(at: number, bytes: Uint8Array): void;
  close(): Promise<void>;
  abort(): void;
  direct(): boolean;
}
export interface AddonQuantized {
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

/**
 * The paths to try, in order: APL_ADDON=<path> alone when it is set (a build of the addon elsewhere, such as the one
 * on the CUDA emulation that test/native/cuda-emu/build-addon.sh makes for the GPU tests), else addonCandidates.
 */
export function addonPaths(dir = __dirname): string[] {
  const only = process.env.APL_ADDON;
  return only ? [only] : addonCandidates(dir);
}

export function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.APL_NO_NATIVE === '1') {
    loadNote = 'APL_NO_NATIVE=1 is set, so the TypeScript reference engine is used';
    return addon;
  }
  const tried: string[] = [];
  const only = process.env.APL_ADDON;
  if (only && !existsSync(only)) tried.push(`${only}: no such file (APL_ADDON)`);
  for (const p of addonPaths()) {
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

export function fallbackNotice(): void {
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

export function fail(name: string | undefined, msg: string, code?: string): never {
  const e: NativeError = new Error(name ? `${name}: ${msg}` : msg);
  if (code) e.code = code;
  throw e;
}

/** What a signal's abort rejects with: its reason, or an AbortError. */
export function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** A quantize job as the addon starts it (both quantization types). */
export interface AddonJob<R> {
  promise: Promise<R>;
  cancel(): void;
}

/**
 * Runs an addon job with the caller's progress callback and abort signal (both quantization types): a throwing
 * onProgress must not escape into the addon's callback, so its first error cancels the job and is rethrown; an
 * abort cancels the job and rejects with the signal's reason.
 */
export async function runJob<R>(
  start: (onProgress?: (rowsDone: number) => void) => AddonJob<R>,
  user: ((rowsDone: number) => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<R> {
  let progressError: unknown;
  let cancel = () => {};
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
  const job = start(onProgress);
  cancel = () => job.cancel();
  const onAbort = () => job.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const r = await job.promise;
    if (progressError !== undefined) throw progressError;
    if (signal?.aborted) throw abortError(signal);
    return r;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// What both quantization types share (native/index.ts quantize, native/kquant.ts kquantize)

/** The converter's output check request: see native/index.ts QuantizeOptions.check. */
export interface OutputCheckRequest {
  x: Float32Array;
  n: number;
  rows: Int32Array;
  /**
   * A tensor checked in several calls: the fSq of the call before (its Σ‖f‖² chain is continued, so the last call's
   * fSq is the whole tensor's, as one call would give it).
   */
  fSqFrom?: number;
  /** Filled with this call's products when given (both or neither): y = x · fᵀ and ŷ, n × rows.length, input major. */
  y?: Float64Array;
  yq?: Float32Array;
}

/**
 * The metrics' float64 sums over the rows quantized so far: Σ(x − ŵ)², Σx², Σŵ², Σxŵ and max |x − ŵ|. A tensor
 * quantized in several calls passes each call's `metricsSums` to the next as `metricsFrom`; the last call's
 * metrics are then the whole tensor's, the same bits as one call (calls starting on multiples of
 * ENGINE_CHUNK_ELEMS / cols rows: see engineChunkRows).
 */
export interface MetricsSums {
  sdd: number;
  sxx: number;
  sww: number;
  sxw: number;
  maxAbs: number;
}

/**
 * The native engine hands rows to its threads in chunks of ⌊ENGINE_CHUNK_ELEMS / cols⌋ rows (at least one) and adds
 * their metrics in chunk order (native/src/engine.h rows_per_chunk): a tensor split into calls whose first rows are
 * multiples of that gets the same sums as one call.
 */
export const ENGINE_CHUNK_ELEMS = 64 * 1024;
export function engineChunkRows(cols: number): number {
  return Math.max(1, Math.floor(ENGINE_CHUNK_ELEMS / Math.max(1, cols)));
}

/** Σ‖f_j‖², Σ y², Σ (y − ŷ)² of y = x · Wᵀ over the sampled rows, and Σw² (0 unless asked): see accuracy.ts. */
export interface OutputCheck {
  fSq: number;
  ySq: number;
  dySq: number;
}

/** Throws a one-line error when an output check request does not fit a rows × cols call (both quantize types). */
export function validateCheck(c: OutputCheckRequest, rows: number, cols: number, name?: string): void {
  if (!Number.isSafeInteger(c.n) || c.n < 0) fail(name, `check.n must be a non-negative integer (got ${c.n})`);
  if (!(c.x instanceof Float32Array) || c.x.length !== c.n * cols)
    fail(name, `check.x must be a Float32Array of ${c.n}×${cols} values`);
  if (!(c.rows instanceof Int32Array)) fail(name, 'check.rows must be an Int32Array');
  for (let i = 0; i < c.rows.length; i++)
    if (c.rows[i] < 0 || c.rows[i] >= rows || (i > 0 && c.rows[i] <= c.rows[i - 1]))
      fail(name, 'check.rows must be ascending row indices within the tensor');
  if (c.fSqFrom !== undefined && !(typeof c.fSqFrom === 'number' && c.fSqFrom >= 0))
    fail(name, `check.fSqFrom must be a number ≥ 0 (got ${c.fSqFrom})`);
  if (c.y !== undefined || c.yq !== undefined) {
    const len = c.n * c.rows.length;
    if (!(c.y instanceof Float64Array) || c.y.length !== len || !(c.yq instanceof Float32Array) || c.yq.length !== len)
      fail(name, `check.y and check.yq must be a Float64Array and a Float32Array of ${c.n}×${c.rows.length} values`);
  }
}

/** Throws a one-line error unless s holds the five sums of MetricsSums as numbers. */
export function validateSums(s: MetricsSums, name?: string): void {
  for (const k of ['sdd', 'sxx', 'sww', 'sxw', 'maxAbs'] as const)
    if (typeof s?.[k] !== 'number') fail(name, `metricsFrom.${k} must be a number`);
}

export function checkShape(rows: number, cols: number, name?: string): void {
  if (!Number.isSafeInteger(rows) || rows < 0) fail(name, `rows must be a non-negative integer (got ${rows})`);
  if (!Number.isSafeInteger(cols) || cols < 1) fail(name, `cols must be a positive integer (got ${cols})`);
}

/** Bytes of one input element: 4 for f32, 2 for f16 and bf16; any other dtype throws. */
export function inputBytes(d: string, name?: string): number {
  if (d !== 'f32' && d !== 'f16' && d !== 'bf16') fail(name, `dtype must be 'f32', 'f16' or 'bf16' (got ${d})`);
  return d === 'f32' ? 4 : 2;
}

/** The options both quantize calls take besides their format. */
export interface JobOptions {
  data: Uint8Array;
  dtype: string;
  rows: number;
  cols: number;
  backend?: 'auto' | 'cpu' | 'gpu';
  threads?: number;
  check?: OutputCheckRequest;
  metricsFrom?: MetricsSums;
  signal?: AbortSignal;
  onProgress?: (rowsDone: number) => void;
}

/**
 * Checks what both quantize calls take besides their format (shape, dtype, the input's bytes, backend, threads,
 * the output check, the signal), in that order; returns the backend, its addon code (0 cpu, 1 gpu, 2 auto) and
 * the thread count.
 */
export function checkJob(o: JobOptions, name?: string): { backend: string; gpu: number; threads: number } {
  checkShape(o.rows, o.cols, name);
  const bpe = inputBytes(o.dtype, name);
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
  if (o.check) validateCheck(o.check, o.rows, o.cols, name);
  if (o.metricsFrom !== undefined) validateSums(o.metricsFrom, name);
  o.signal?.throwIfAborted();
  return { backend, gpu: backend === 'cpu' ? 0 : backend === 'gpu' ? 1 : 2, threads };
}

/** What a finished addon job adds to the arrays: backend, metrics and check when present; its error thrown. */
export function jobResult<M>(
  r: { backend: string; metrics?: M; metricsSums?: MetricsSums; check?: OutputCheck; error?: string; code?: string },
  name?: string,
): { backend: string; metrics?: M; metricsSums?: MetricsSums; check?: OutputCheck } {
  if (r.error) fail(name ?? 'tensor', r.error, r.code);
  return {
    backend: r.backend,
    ...(r.metrics ? { metrics: r.metrics } : {}),
    ...(r.metricsSums ? { metricsSums: r.metricsSums } : {}),
    ...(r.check ? { check: r.check } : {}),
  };
}

/**
 * An output array of `bytes` bytes: the caller's (`given`, e.g. a reused buffer; every byte is written, whatever it
 * held) or a new one. A given array of another size or type throws, naming the option.
 */
export function outputInto(given: Uint8Array | undefined, bytes: number, option: string, name?: string): Uint8Array {
  if (given === undefined) return new Uint8Array(bytes);
  if (!(given instanceof Uint8Array) || given.byteLength !== bytes)
    fail(name, `${option} must be a Uint8Array of ${bytes} bytes`);
  return given;
}

/** The reference engine's metrics accumulator, started from `from` (the sums of a tensor's earlier calls). */
export function seededAcc<A extends MetricsSums>(make: () => A, from?: MetricsSums): A {
  const a = make();
  if (from) {
    a.sdd = from.sdd;
    a.sxx = from.sxx;
    a.sww = from.sww;
    a.sxw = from.sxw;
    a.maxAbs = from.maxAbs;
  }
  return a;
}

/** The reference accumulator's sums, as the addon returns them. */
export function sumsOf(a: MetricsSums): MetricsSums {
  return { sdd: a.sdd, sxx: a.sxx, sww: a.sww, sxw: a.sxw, maxAbs: a.maxAbs };
}

/** The one-line error for a non-finite input element (both reference ports throw its flat index and value). */
export function failNonFinite(name: string | undefined, e: { index: number; value: number }, cols: number): never {
  const row = Math.floor(e.index / cols);
  fail(name ?? 'tensor', `${e.value} at index ${e.index} (row ${row}, column ${e.index % cols})`);
}

/**
 * The TypeScript reference's row loop (both quantize types): `step(r0, r1)` over chunks of ~64K elements, progress
 * after each, yielding to the event loop between chunks (progress, cancellation). An error from `step` goes to
 * `known` first, which throws the one-line form of the errors it knows; any other is rethrown as it is.
 */
export async function referenceRows(
  o: JobOptions,
  step: (r0: number, r1: number) => void,
  known: (e: unknown) => void,
): Promise<void> {
  const chunk = Math.max(1, Math.floor((1 << 16) / o.cols));
  for (let r0 = 0; r0 < o.rows; r0 += chunk) {
    const r1 = Math.min(o.rows, r0 + chunk);
    try {
      step(r0, r1);
    } catch (e) {
      known(e);
      throw e;
    }
    o.onProgress?.(r1);
    if (r1 < o.rows) {
      await new Promise<void>((res) => setImmediate(res));
      if (o.signal?.aborted) throw abortError(o.signal);
    }
  }
}
