// The two-level-scale ("k-quant") type's public API: validates arguments, then runs the native addon's kernels
// (native/src/kquant*.cc) or, when the addon cannot load (or predates this type), the bit-exact TypeScript port
// (native/reference-kquant.ts). Layout and numpy formula: docs/FORMAT.md.
import { existsSync } from 'node:fs';
import {
  addonPaths,
  checkJob,
  checkShape,
  fail,
  failNonFinite,
  inputBytes,
  jobResult,
  type MetricsSums,
  type OutputCheck,
  type OutputCheckRequest,
  outputInto,
  referenceRows,
  runJob,
  seededAcc,
  sumsOf,
} from './load';
import * as ref from './reference-kquant';

export type KqFormat = ref.KqFormat;
export type KqInputDType = ref.KqInputDType;
export interface KqMetrics {
  relError: number;
  snrDb: number;
  cosine: number;
  maxAbsError: number;
}

/**
 * The chosen formats (measured by `npm run bench -- kquant`): 4 bits with groups of 24 under super-blocks of 1536,
 * 2 bits like llama.cpp's Q2_K (groups of 16, super-blocks of 256, 4-bit codes). Bits per weight: see bitsPerWeight.
 */
export const KQ_PRESETS: Readonly<Record<2 | 4, Readonly<KqFormat>>> = {
  4: { bits: 4, group: 24, super: 1536, scaleBits: 5, minBits: 6 },
  2: { bits: 2, group: 16, super: 256, scaleBits: 4, minBits: 4 },
};

export interface KqQuantizeOptions extends KqFormat {
  /** Raw little-endian input bytes: rows × cols elements of `dtype`. */
  data: Uint8Array;
  dtype: KqInputDType;
  rows: number;
  cols: number;
  backend?: 'auto' | 'cpu' | 'gpu';
  /** 0 (default): all cores. */
  threads?: number;
  /** Tensor name for error messages. */
  name?: string;
  metrics?: boolean;
  /** The metricsSums of the call before for the same tensor (load.ts MetricsSums): the metrics continue from them. */
  metricsFrom?: MetricsSums;
  /**
   * The converter's output check (native/index.ts OutputCheckRequest), computed by the engine on its threads as
   * rows are quantized; the TypeScript reference leaves it out of its result (the caller computes it then).
   */
  check?: OutputCheckRequest;
  /** Where to write q (exactly rows × packed row bytes), e.g. a reused buffer; a new one when absent. */
  qInto?: Uint8Array;
  /** Where to write codes, d and dmin (exactly their kqSizes), e.g. parts of one reused buffer; new ones when absent. */
  codesInto?: Uint8Array;
  dInto?: Uint8Array;
  dminInto?: Uint8Array;
  signal?: AbortSignal;
  onProgress?: (rowsDone: number) => void;
}

/** A quantized tensor: the four arrays (see docs/FORMAT.md) and its format. */
export interface KqQuantized extends KqFormat {
  rows: number;
  cols: number;
  /** rows × ceil(cols·bits/8), first value in the lowest bits. */
  q: Uint8Array;
  /** rows × ceil(groups·(scaleBits+minBits)/8): per group the scale code then the min code, a little-endian bit stream. */
  codes: Uint8Array;
  /** rows × superBlocks float16 (raw little-endian bytes). */
  d: Uint8Array;
  dmin: Uint8Array;
}

export interface KqQuantizeResult extends KqQuantized {
  metrics?: KqMetrics;
  /** The metrics' sums (metricsFrom included), for the next call of the same tensor. */
  metricsSums?: MetricsSums;
  /** The output check, when asked and the native engine ran. */
  check?: OutputCheck;
  /** 'cpu-avx2', 'cpu-scalar', 'cuda:<name>' or 'ts-reference'. */
  backend: string;
}

interface KqAddon {
  kqQuantize(
    o: Record<string, unknown>,
    onProgress?: (n: number) => void,
  ): {
    promise: Promise<{
      backend: string;
      metrics?: KqMetrics;
      metricsSums?: MetricsSums;
      check?: OutputCheck;
      error?: string;
    }>;
    cancel(): void;
  };
  kqDequantize(w: Record<string, unknown>, out: Float32Array): void;
  kqErrorMetrics(data: Uint8Array, dtype: KqInputDType, w: Record<string, unknown>): KqMetrics;
  kqKernel(): string;
}

let addon: KqAddon | null | undefined;
/** Why the TypeScript reference is in use (undefined while the addon is). */
export let kqLoadNote: string | undefined;

function loadAddon(): KqAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.APL_NO_NATIVE === '1') {
    kqLoadNote = 'APL_NO_NATIVE=1 is set';
    return addon;
  }
  for (const p of addonPaths(__dirname)) {
    if (!existsSync(p)) continue;
    try {
      // biome-ignore lint/suspicious/noExplicitAny: dynamic addon load
      const a = (require as any)(p);
      if (typeof a.kqQuantize === 'function') {
        addon = a as KqAddon;
        kqLoadNote = undefined;
        return addon;
      }
      kqLoadNote = `the native addon at ${p} predates the two-level-scale type (rebuild with npm run build:native)`;
    } catch (e) {
      kqLoadNote = `the native addon failed to load (${(e as Error).message.split('\n')[0]})`;
    }
  }
  kqLoadNote ??= 'the native addon is not built (run `npm run build:native`)';
  return addon;
}

/** For tests: use the TypeScript reference (true) or reload the addon (false). */
export function _kqForceReference(on: boolean): void {
  addon = on ? null : undefined;
  kqLoadNote = on ? 'forced by a test' : undefined;
}

/** The kernel in use: 'avx2', 'scalar' or 'ts-reference'. */
export function kqKernel(): string {
  const a = loadAddon();
  return a ? a.kqKernel() : 'ts-reference';
}

const int = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Throws a one-line error when f is not a valid format (the limits of native/src/kquant.h). */
export function checkFormat(f: KqFormat, name?: string): void {
  if (f.bits !== 2 && f.bits !== 4 && f.bits !== 8) fail(name, `bits must be 2, 4 or 8 (got ${f.bits})`);
  if (!int(f.group, 1, ref.KQ_MAX_GROUP))
    fail(name, `group must be an integer 1..${ref.KQ_MAX_GROUP} (got ${f.group})`);
  if (!int(f.super, f.group, ref.KQ_MAX_SUPER) || f.super % f.group || f.super / f.group > ref.KQ_MAX_GROUPS)
    fail(
      name,
      `super must be a multiple of group, at most ${ref.KQ_MAX_SUPER} elements and ${ref.KQ_MAX_GROUPS} groups (got ${f.super})`,
    );
  if (!int(f.scaleBits, 1, 8) || !int(f.minBits, 1, 8))
    fail(name, `scaleBits and minBits must be integers 1..8 (got ${f.scaleBits} and ${f.minBits})`);
}

/** Byte sizes of the four arrays of a rows × cols tensor. */
export function kqSizes(
  rows: number,
  cols: number,
  f: KqFormat,
): { q: number; codes: number; d: number; dmin: number } {
  const sb = rows * ref.supersPerRow(cols, f) * 2;
  return { q: rows * ref.packedRowBytes(cols, f.bits), codes: rows * ref.codeRowBytes(cols, f), d: sb, dmin: sb };
}

/** Bits per weight with every array counted (q, codes, d, dmin), for rows of `cols` elements. */
export function bitsPerWeight(cols: number, f: KqFormat): number {
  const s = kqSizes(1, cols, f);
  return ((s.q + s.codes + s.d + s.dmin) * 8) / cols;
}

function formatOf(f: KqFormat): KqFormat {
  return { bits: f.bits, group: f.group, super: f.super, scaleBits: f.scaleBits, minBits: f.minBits };
}

function addonTensor(w: KqQuantized): Record<string, unknown> {
  return {
    q: w.q,
    codes: w.codes,
    d: w.d,
    dmin: w.dmin,
    rows: w.rows,
    cols: w.cols,
    bits: w.bits,
    group: w.group,
    super: w.super,
    sbits: w.scaleBits,
    mbits: w.minBits,
  };
}

function checkQuantized(w: KqQuantized): void {
  const what = 'quantized tensor';
  checkFormat(w, what);
  checkShape(w.rows, w.cols, what);
  const s = kqSizes(w.rows, w.cols, w);
  for (const k of ['q', 'codes', 'd', 'dmin'] as const) {
    if (!(w[k] instanceof Uint8Array)) fail(what, `${k} must be a Uint8Array`);
    if (w[k].byteLength !== s[k]) fail(what, `${k} has ${w[k].byteLength} bytes, expected ${s[k]}`);
  }
}

/** Quantizes a rows × cols matrix (f32/f16/bf16 bytes) to the two-level-scale type. */
export async function kquantize(o: KqQuantizeOptions): Promise<KqQuantizeResult> {
  const name = o.name;
  checkFormat(o, name);
  const { backend, gpu, threads } = checkJob(o, name);
  const f = formatOf(o);
  const s = kqSizes(o.rows, o.cols, f);
  const out = {
    q: outputInto(o.qInto, s.q, 'qInto', name),
    codes: outputInto(o.codesInto, s.codes, 'codesInto', name),
    d: outputInto(o.dInto, s.d, 'dInto', name),
    dmin: outputInto(o.dminInto, s.dmin, 'dminInto', name),
  };
  const base = { ...f, rows: o.rows, cols: o.cols, ...out };
  const a = loadAddon();
  if (a) {
    const r = await runJob(
      (onProgress) =>
        a.kqQuantize(
          {
            ...addonTensor(base),
            data: o.data,
            dtype: o.dtype,
            gpu,
            threads,
            metrics: !!o.metrics,
            ...(o.metricsFrom ? { metricsFrom: o.metricsFrom } : {}),
            ...(o.check ? { check: o.check } : {}),
          },
          onProgress,
        ),
      o.onProgress,
      o.signal,
    );
    return { ...base, ...jobResult(r, name) };
  }
  if (backend === 'gpu') fail(name, `backend 'gpu' is not available: ${kqLoadNote}`);
  const read = ref.kqRowReader(o.data, o.dtype, o.cols);
  const acc = o.metrics ? seededAcc(() => new ref.KqMetricsAcc(), o.metricsFrom) : undefined;
  await referenceRows(
    o,
    (r0, r1) => ref.quantizeRows(read, o.cols, f, r0, r1, out, acc),
    (e) => {
      if (e instanceof ref.KqNonFiniteError) failNonFinite(name, e, o.cols);
      if (e instanceof ref.KqOverflowError) fail(name ?? 'tensor', e.message);
    },
  );
  return { ...base, backend: 'ts-reference', ...(acc ? { metrics: acc.result(), metricsSums: sumsOf(acc) } : {}) };
}

/** The float32 values a quantized tensor stands for (rows × cols, row-major). */
export function kdequantize(w: KqQuantized): Float32Array {
  checkQuantized(w);
  const out = new Float32Array(w.rows * w.cols);
  const a = loadAddon();
  if (a) {
    a.kqDequantize(addonTensor(w), out);
    return out;
  }
  for (let r = 0; r < w.rows; r++) ref.dequantizeRow(w, r, out.subarray(r * w.cols, (r + 1) * w.cols));
  return out;
}

/** Error of a quantized tensor against the original (f32/f16/bf16 bytes): relError, snrDb, cosine, maxAbsError. */
export function kerrorMetrics(orig: { data: Uint8Array; dtype: KqInputDType }, w: KqQuantized): KqMetrics {
  checkQuantized(w);
  const bpe = inputBytes(orig.dtype, 'reference tensor');
  if (orig.data.byteLength !== w.rows * w.cols * bpe)
    fail('reference tensor', `has ${orig.data.byteLength} bytes, expected ${w.rows * w.cols * bpe}`);
  const a = loadAddon();
  if (a) return a.kqErrorMetrics(orig.data, orig.dtype, addonTensor(w));
  const read = ref.kqRowReader(orig.data, orig.dtype, w.cols);
  const x = new Float32Array(w.cols);
  const d = new Float32Array(w.cols);
  const acc = new ref.KqMetricsAcc();
  for (let r = 0; r < w.rows; r++) {
    read(r, x);
    ref.dequantizeRow(w, r, d);
    for (let i = 0; i < w.cols; i++) acc.add(x[i], d[i]);
  }
  return acc.result();
}
