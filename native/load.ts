// Loading the native addon (native/build/Release/apl_quant.node) and its surface; when it cannot load, the
// TypeScript reference is used and says why once (`loadNote`, and one stderr line on first use). Also how errors
// cross the native boundary: a one-line message, and a `code` for errors a caller may act on.
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
  /** Optional: an addon built before it lacks it. */
  adviseHugePages?(bytes: Uint8Array): boolean;
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
      check?: { x: Float32Array; n: number; rows: Int32Array; sumSquares: boolean };
      q: Uint8Array;
      scales: Uint8Array;
      zeros: Uint8Array;
    },
    onProgress: ((rowsDone: number) => void) | undefined,
  ): {
    promise: Promise<{
      backend: string;
      metrics?: Metrics;
      check?: { fSq: number; ySq: number; dySq: number; refSq: number };
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

export function loadAddon(): Addon | null {
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
