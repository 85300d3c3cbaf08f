// The native engine's public API. Loads the node-addon-api addon (native/build/Release/apl_quant.node) when it can,
// otherwise falls back to the TypeScript port of the reference kernels (same results, slower) and says why once
// (`loadNote`, and one line on stderr the first time the fallback is used).
//
// Arguments are validated here, in TypeScript, and passed to the addon as one plain options object. This is the
// only module callers import: quantize / dequantize / errorMetrics / qmatmul live here; addon loading and error codes
// in load.ts; element decoding and statistics in elements.ts; the reference (spec and fallback) in reference*.ts.
import { constants } from 'node:buffer';
import * as ref from './reference';

export type InputDType = ref.InputDType;
export type Backend = 'auto' | 'cpu' | 'gpu';
export type QuantParams = ref.QuantParams;
export type Metrics = ref.Metrics;
export type TensorStats = ref.TensorStats;
export type StatsDType = ref.StatsDType;
export type ElementDType = ref.ElementDType;
export type StatsSummary = ref.StatsSummary;
export {
  decode,
  decodeInto,
  histogram,
  StatsAccumulator,
  tensorStats,
  valueStats,
} from './elements';
export {
  _forceReference,
  type Addon,
  addonCandidates,
  ENGINE_CHUNK_ELEMS,
  type EngineInfo,
  ERR_SCALE_OVERFLOW,
  engineChunkRows,
  engineInfo,
  loadNote,
  type MetricsSums,
  type NativeError,
  type OutputCheck,
  type OutputCheckRequest,
  validateCheck,
} from './load';
/** Element sizes and names (pure tables of the format, shared by the engine and its callers). */
export { ELEMENT_SIZES, elementSize, isElementDType } from './reference-stats';

import {
  type AddonDirectFile,
  type AddonQuantized,
  checkJob,
  checkShape,
  ERR_SCALE_OVERFLOW,
  fail,
  failNonFinite,
  fallbackNotice,
  inputBytes,
  jobResult,
  loadAddon,
  loadNote,
  type MetricsSums,
  type OutputCheck,
  type OutputCheckRequest,
  outputInto,
  referenceRows,
  runJob,
  seededAcc,
  sumsOf,
} from './load';

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
  /** The metricsSums of the call before for the same tensor (load.ts MetricsSums): the metrics continue from them. */
  metricsFrom?: MetricsSums;
  signal?: AbortSignal;
  onProgress?: (rowsDone: number) => void;
  /**
   * The converter's output check, computed by the native engine on its threads as rows are quantized (the
   * TypeScript reference leaves it out of its result; the caller computes it then): x (n × cols float32) against
   * the sampled rows (ascending, within this call's rows).
   */
  check?: OutputCheckRequest;
  /** Where to write q (exactly rows × packed row bytes), e.g. a reused buffer; a new one when absent. */
  qInto?: Uint8Array;
  /** Where to write the scales and the zero points (rows × groups × 2 or 4 bytes each); new ones when absent. */
  scalesInto?: Uint8Array;
  zerosInto?: Uint8Array;
}

export interface QuantizeResult {
  /** rows * ceil(cols*bits/8) packed bytes, first value in the lowest bits. */
  q: Uint8Array;
  /** Raw f16/f32 little-endian bytes, rows*groups. */
  scales: Uint8Array;
  zeros: Uint8Array;
  metrics?: Metrics;
  /** The metrics' sums (metricsFrom included), for the next call of the same tensor. */
  metricsSums?: MetricsSums;
  /** The output check, when asked and the native engine ran. */
  check?: OutputCheck;
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

/** The rounding mode the converter uses unless told otherwise: 'optimized' lowers error at the same size. */
export const DEFAULT_MODE: QuantParams['mode'] = 'optimized';
export const DEFAULT_GROUP_SIZE = 64;

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

// ---------------------------------------------------------------------------------------------------------------
// API

export async function quantize(o: QuantizeOptions): Promise<QuantizeResult> {
  const name = o.name;
  checkParams(o, name);
  const { backend, gpu, threads } = checkJob(o, name);

  const sb = o.scaleDtype === 'f16' ? 2 : 4;
  const gpr = ref.groupsPerRow(o.cols, o.groupSize);
  const qBytes = o.rows * ref.packedRowBytes(o.cols, o.bits);
  const out = {
    q: outputInto(o.qInto, qBytes, 'qInto', name),
    scales: outputInto(o.scalesInto, o.rows * gpr * sb, 'scalesInto', name),
    zeros: outputInto(o.zerosInto, o.rows * gpr * sb, 'zerosInto', name),
  };
  const a = loadAddon();
  if (a) {
    const r = await runJob(
      (onProgress) =>
        a.quantize(
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
            gpu,
            threads,
            metrics: !!o.metrics,
            ...(o.metricsFrom ? { metricsFrom: o.metricsFrom } : {}),
            ...(o.check ? { check: o.check } : {}),
            ...out,
          },
          onProgress,
        ),
      o.onProgress,
      o.signal,
    );
    return { ...out, ...jobResult(r, name) };
  }
  if (backend === 'gpu') fail(name, `backend 'gpu' is not available: ${loadNote}`);
  fallbackNotice();
  const read = ref.rowReader(o.data, o.dtype, o.cols);
  const acc = o.metrics ? seededAcc(() => new ref.MetricsAcc(), o.metricsFrom) : undefined;
  await referenceRows(
    o,
    (r0, r1) => ref.quantizeRows(read, o.cols, o, r0, r1, out, acc),
    (e) => {
      if (e instanceof ref.NonFiniteError) failNonFinite(name, e, o.cols);
      if (e instanceof ref.RangeForDtypeError)
        fail(name ?? 'tensor', `${e.message}; use scaleDtype 'f32'`, ERR_SCALE_OVERFLOW);
    },
  );
  return { ...out, backend: 'ts-reference', ...(acc ? { metrics: acc.result(), metricsSums: sumsOf(acc) } : {}) };
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
  const bpe = inputBytes(r.dtype, 'reference tensor');
  if (r.data.byteLength !== w.rows * w.cols * bpe)
    fail('reference tensor', `has ${r.data.byteLength} bytes, expected ${w.rows * w.cols * bpe}`);
  const a = loadAddon();
  if (a) return a.errorMetrics(r.data, r.dtype, toAddonQ(w));
  fallbackNotice();
  return ref.errorMetrics(r, w);
}

/** The error metrics (relError, snrDb, cosine, maxAbsError) of w against the reference x, both float32 values. */
export function compareMetrics(x: Float32Array, w: Float32Array): Metrics {
  if (!(x instanceof Float32Array) || !(w instanceof Float32Array) || x.length !== w.length)
    fail('compareMetrics', 'x and w must be Float32Arrays of one length');
  const a = loadAddon();
  if (a) return a.compareMetrics(x, w);
  fallbackNotice();
  return ref.compareMetrics(x, w);
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

/**
 * `bytes` bytes not yet touched that start at a 2 MiB boundary, whose whole 2 MiB pages are advised MADV_HUGEPAGE
 * (Linux, with the addon): their first touch takes one fault per 2 MiB instead of one per 4 KiB, ends included. The
 * buffer behind them is 2 MiB larger; its slack is never touched, so it costs address space, not memory. In this
 * project's VMs a 4 KiB fault costs ≈ 12 µs (docs/PERFORMANCE.md, "Fresh pages"): a 24 MiB buffer advised only on
 * its aligned interior, as before, still took 512 of them. APL_HUGE=0 (A/B runs), no addon, or a size past one
 * Buffer's limit: a plain buffer.
 */
export function hugePageBytes(bytes: number): Uint8Array {
  const a = loadAddon();
  if (process.env.APL_HUGE !== '0' && a?.inferArena && bytes + HUGE_BYTES <= constants.MAX_LENGTH) {
    const buf = Buffer.allocUnsafeSlow(bytes + HUGE_BYTES);
    const { offset } = a.inferArena(buf);
    if (offset + bytes <= buf.length) return new Uint8Array(buf.buffer, buf.byteOffset + offset, bytes);
  }
  const b = Buffer.allocUnsafeSlow(bytes);
  return new Uint8Array(b.buffer, b.byteOffset, bytes);
}
const HUGE_BYTES = 2 * 1024 * 1024;

/**
 * CRC-32 of the zip format (zlib's crc32) continuing from `crc`, folded with PCLMULQDQ in the addon (≈ 5× the
 * table-driven zlib some Node builds link); undefined without the addon or where the CPU lacks the instruction.
 */
export function crc32Native(bytes: Uint8Array, crc = 0): number | undefined {
  const a = loadAddon();
  return a?.crc32 ? a.crc32(bytes, crc) : undefined;
}

/** An append-only output file in native code: O_DIRECT from aligned staging buffers (native/src/io.cc). */
export type DirectFile = AddonDirectFile;

/**
 * Creates (truncates) `path` as a DirectFile: written with O_DIRECT where the file system takes it (`direct()` says
 * whether it did; one that refuses it gets ordinary writes of the same bytes), by a writer thread of its own.
 * Returns null without the addon (or an addon without it): the caller writes the file itself. Throws an Error with
 * the errno name as `code` and a message naming the file when the file cannot be created.
 */
export function openDirectFile(path: string, o: { bufferBytes?: number; buffers?: number } = {}): DirectFile | null {
  const a = loadAddon();
  if (!a?.DirectFile) return null;
  return new a.DirectFile(path, { direct: true, ...o });
}

/** The loaded addon (null when the TypeScript reference is in use), for native/forward.ts. */
export const nativeAddon = (): unknown => loadAddon();
