// The accuracy maths of a conversion: fixed random inputs, the error of the quantized matrix product against the
// float one, a tensor's metrics and products gathered over its chunks (the same sums as one call), and the per-layer
// aggregates. Plain functions over arrays (V8 optimises their loops; it does not inside async generators).
import type { Metrics, MetricsSums } from '../../../native/index';
import { mulberry32 } from '../common/random';
import { judge, type LayerReport, type WeightReport } from '../report';

export const EVAL_SEED = 1234;
/** Products per weight the output check aims for; rows of input are raised to reach it, at most EVAL_MAX_INPUTS. */
export const EVAL_MIN_OUTPUTS = 2048;
export const EVAL_MAX_INPUTS = 64;

/**
 * Σ‖f_j‖² (continuing `fSqFrom`: the chain of a tensor's earlier chunks) and y = x · fᵀ (n × m, input major) for the
 * sampled rows f (m × cols) and inputs x (n × cols): every product of two float32 values is exact in float64 and each
 * sum one float64 chain, as the native engine computes them (native/src/check.cc). A plain function, so V8 optimises
 * its loops (it does not inside the async generator); four inputs per pass over a row.
 */
export function floatProducts(
  x: Float32Array,
  n: number,
  f: Float32Array,
  m: number,
  cols: number,
  fSqFrom = 0,
): { fSq: number; y: Float64Array } {
  let fSq = fSqFrom;
  for (let i = 0; i < m * cols; i++) fSq += f[i] * f[i];
  const y = new Float64Array(n * m);
  for (let i = 0; i < n; i += 4) {
    const k = Math.min(4, n - i);
    const x0 = i * cols;
    const x1 = (i + Math.min(1, k - 1)) * cols;
    const x2 = (i + Math.min(2, k - 1)) * cols;
    const x3 = (i + Math.min(3, k - 1)) * cols;
    for (let j = 0; j < m; j++) {
      const fo = j * cols;
      let y0 = 0;
      let y1 = 0;
      let y2 = 0;
      let y3 = 0;
      for (let c = 0; c < cols; c++) {
        const v = f[fo + c];
        y0 += x[x0 + c] * v;
        y1 += x[x1 + c] * v;
        y2 += x[x2 + c] * v;
        y3 += x[x3 + c] * v;
      }
      y[i * m + j] = y0;
      if (k > 1) y[(i + 1) * m + j] = y1;
      if (k > 2) y[(i + 2) * m + j] = y2;
      if (k > 3) y[(i + 3) * m + j] = y3;
    }
  }
  return { fSq, y };
}

/** One chunk's output check: the Σ‖f‖² chain so far and the products of its m sampled rows (n × m, input major). */
export interface ChunkCheck {
  fSq: number;
  m: number;
  y: Float64Array;
  yq: Float32Array;
}

/**
 * Σ y² and Σ (y − ŷ)² over a tensor's products, given chunk by chunk: in the order of one call over all its sampled
 * rows (inputs in blocks of four, then the rows, then the block's inputs: native/src/check.cc finish), so a tensor
 * checked in chunks gets the sums of one call, to the last bit.
 */
export function productSums(parts: readonly ChunkCheck[], n: number): { ySq: number; dySq: number } {
  let ySq = 0;
  let dySq = 0;
  for (let i = 0; i < n; i += 4) {
    const k = Math.min(4, n - i);
    for (const p of parts) {
      for (let j = 0; j < p.m; j++) {
        for (let t = 0; t < k; t++) {
          const y = p.y[(i + t) * p.m + j];
          const d = y - p.yq[(i + t) * p.m + j];
          ySq += y * y;
          dySq += d * d;
        }
      }
    }
  }
  return { ySq, dySq };
}

const inputsCache = new Map<string, Float32Array>();

/** Fixed standard-normal inputs, n × cols, the same for every run (cached: read-only for callers). */
export function evalInputs(n: number, cols: number, seed = EVAL_SEED): Float32Array {
  const key = `${n}x${cols}x${seed}`;
  let x = inputsCache.get(key);
  if (!x) {
    if (inputsCache.size >= 16) inputsCache.clear();
    x = makeInputs(n, cols, seed);
    inputsCache.set(key, x);
  }
  return x;
}

function makeInputs(n: number, cols: number, seed: number): Float32Array {
  const r = mulberry32(seed ^ cols);
  const x = new Float32Array(n * cols);
  for (let i = 0; i < x.length; i += 2) {
    const u = 1 - r();
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    x[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < x.length) x[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return x;
}

/**
 * The output check's size for a weight of `rows` rows: n fixed random inputs against an evenly spaced sample of
 * rows, enough for EVAL_MIN_OUTPUTS products per weight (all rows of small weights, with more inputs, at most
 * EVAL_MAX_INPUTS), so its cost is bounded per weight instead of growing with the model.
 */
export function evalSample(
  rows: number,
  nEval: number,
): { n: number; sampleRows: number; sampled: (r: number) => boolean } {
  const n = Math.max(nEval, Math.min(EVAL_MAX_INPUTS, Math.ceil(EVAL_MIN_OUTPUTS / rows)));
  const sampleRows = Math.min(rows, Math.ceil(EVAL_MIN_OUTPUTS / n));
  const sampled = (r: number) => {
    // Row r is sampled when it is floor(k · rows / sampleRows) for some k.
    const k = Math.ceil((r * sampleRows) / rows);
    return Math.floor((k * rows) / sampleRows) === r;
  };
  return { n, sampleRows, sampled };
}

/** A tensor's accuracy, gathered chunk by chunk (addChunk) and finished once its last chunk is in (finishAccumulated). */
export interface Accumulated {
  /** Σ‖f‖² over the sampled rows: the last chunk's fSq (each chunk continues the chain of the one before). */
  sampleSq: number;
  /** The tensor's metrics and their sums: the last chunk's (each chunk's engine call continues the sums before it). */
  metrics?: Metrics;
  sums?: MetricsSums;
  /** The chunks' output checks, in row order. */
  parts: ChunkCheck[];
  /** Σ y², Σ (y − ŷ)² over every chunk's products (finishAccumulated). */
  ySq: number;
  dySq: number;
  /** ‖W‖² for the layer aggregates, estimated from the sampled rows (exact when every row is sampled). */
  refSq: number;
  chunks: number;
}

export function emptyAccumulated(): Accumulated {
  return { sampleSq: 0, parts: [], ySq: 0, dySq: 0, refSq: 0, chunks: 0 };
}

/** Folds one chunk's engine metrics (already continued from the chunks before) and output check into the tensor's. */
export function addChunk(acc: Accumulated, m: Metrics, sums: MetricsSums | undefined, check: ChunkCheck): void {
  acc.metrics = m;
  acc.sums = sums;
  acc.sampleSq = check.fSq;
  if (check.m > 0) acc.parts.push(check);
  acc.chunks++;
}

/** After the last chunk: the product sums over all chunks and ‖W‖² from the sample (`sampleRows` of `rows`). */
export function finishAccumulated(acc: Accumulated, n: number, rows: number, sampleRows: number): Accumulated {
  const { ySq, dySq } = productSums(acc.parts, n);
  acc.ySq = ySq;
  acc.dySq = dySq;
  acc.refSq = sampleRows > 0 ? (acc.sampleSq * rows) / sampleRows : 0;
  acc.parts = [];
  return acc;
}

const finite = (v: number, dflt: number) => (Number.isFinite(v) ? v : dflt);

/** A weight's accuracy as the report and the manifest record it, judged against `tolerance`. */
export function weightAccuracy(a: Accumulated, tolerance: number) {
  const m = a.metrics ?? { relError: 0, snrDb: Number.POSITIVE_INFINITY, cosine: 1, maxAbsError: 0 };
  const zeroTensor = a.refSq === 0 && m.maxAbsError === 0;
  const rel = zeroTensor ? 0 : m.relError;
  const snr = zeroTensor ? 999 : m.snrDb;
  const cos = zeroTensor ? 1 : m.cosine;
  const outRel = a.ySq > 0 ? Math.sqrt(a.dySq / a.ySq) : a.dySq === 0 ? 0 : Number.POSITIVE_INFINITY;
  const pass = judge(rel, outRel, tolerance);
  return {
    rel_error: finite(rel, 1e9),
    snr_db: finite(snr, rel === 0 ? 999 : -999),
    cosine: finite(cos, 0),
    max_abs_error: finite(m.maxAbsError, 1e9),
    output_rel_error: finite(outRel, 1e9),
    pass,
  };
}

/** Per-weight sums that let layers aggregate exactly: ‖W‖² with the weight's own relative error. */
export interface WeightSums {
  refSq: number;
}

export function layerAggregates(
  weights: readonly WeightReport[],
  sums: ReadonlyMap<string, WeightSums>,
): LayerReport[] {
  const by = new Map<number, WeightReport[]>();
  for (const w of weights) {
    if (w.layer === null) continue;
    const list = by.get(w.layer) ?? [];
    list.push(w);
    by.set(w.layer, list);
  }
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([layer, ws]) => {
      let ref = 0;
      let err = 0;
      for (const w of ws) {
        const r = sums.get(w.name)?.refSq ?? 0;
        ref += r;
        err += r * w.rel_error * w.rel_error;
      }
      return {
        layer,
        weights: ws.length,
        params: ws.reduce((a, w) => a + w.params, 0),
        rel_error: ref > 0 ? Math.sqrt(err / ref) : 0,
        max_rel_error: Math.max(...ws.map((w) => w.rel_error)),
        max_output_rel_error: Math.max(...ws.map((w) => w.output_rel_error)),
        pass: ws.every((w) => w.pass),
      };
    });
}
