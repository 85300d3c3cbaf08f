// The accuracy maths of a conversion: fixed random inputs, the error of the quantized matrix product against the
// float one, Σw² of raw weights, the per-weight metrics combined over a tensor's chunks, and the per-layer
// aggregates. Plain functions over arrays (V8 optimises their loops; it does not inside async generators).
import type { Metrics } from '../../../native/index';
import { mulberry32 } from '../common/random';
import { toF32 } from '../formats/safetensors';
import { judge, type LayerReport, type WeightReport } from '../report';

export const EVAL_SEED = 1234;
/** Products per weight the output check aims for; rows of input are raised to reach it, at most EVAL_MAX_INPUTS. */
export const EVAL_MIN_OUTPUTS = 2048;
export const EVAL_MAX_INPUTS = 64;

/**
 * Σ‖f_j‖², Σ y² and Σ (y − ŷ)² for y = x · fᵀ (x: n × cols, f: m × cols, ŷ = yq: n × m). A plain function, so V8
 * optimises its loops (it does not inside the async generator); four inputs per pass over a row.
 */
export function productError(
  x: Float32Array,
  n: number,
  f: Float32Array,
  m: number,
  cols: number,
  yq: Float32Array,
): { fSq: number; ySq: number; dySq: number } {
  let fSq = 0;
  for (let i = 0; i < m * cols; i++) fSq += f[i] * f[i];
  let ySq = 0;
  let dySq = 0;
  const ys = new Float64Array(4);
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
      ys[0] = y0;
      ys[1] = y1;
      ys[2] = y2;
      ys[3] = y3;
      for (let t = 0; t < k; t++) {
        const d = ys[t] - yq[(i + t) * m + j];
        ySq += ys[t] * ys[t];
        dySq += d * d;
      }
    }
  }
  return { fSq, ySq, dySq };
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

/** Σ w² of raw F32/F16/BF16 bytes, in blocks (bf16 widened by a shift, no per-element conversion calls). */
export function sumSquares(raw: Uint8Array, dtype: 'F32' | 'F16' | 'BF16'): number {
  let sum = 0;
  if (dtype === 'BF16') {
    const aligned = raw.byteOffset % 2 === 0 ? raw : raw.slice();
    const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 1);
    const BLOCK = 1 << 16;
    const u32 = new Uint32Array(BLOCK);
    const f32 = new Float32Array(u32.buffer);
    for (let b = 0; b < u16.length; b += BLOCK) {
      const m = Math.min(BLOCK, u16.length - b);
      for (let i = 0; i < m; i++) u32[i] = u16[b + i] << 16;
      let s = 0;
      for (let i = 0; i < m; i++) s += f32[i] * f32[i];
      sum += s;
    }
    return sum;
  }
  const f = toF32(raw, dtype);
  for (let i = 0; i < f.length; i++) sum += f[i] * f[i];
  return sum;
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

export interface Accumulated {
  /** Σw² over all rows, summed exactly when the tensor is split into chunks. */
  refSq: number;
  /** Σw² over the sampled rows. */
  sampleSq: number;
  errSq: number;
  cosW: number;
  maxAbs: number;
  ySq: number;
  dySq: number;
  chunks: number;
  first?: Metrics;
}

export function emptyAccumulated(): Accumulated {
  return { refSq: 0, sampleSq: 0, errSq: 0, cosW: 0, maxAbs: 0, ySq: 0, dySq: 0, chunks: 0 };
}

/** Folds one chunk's engine metrics (over `refSq` = Σw² of its rows) into the tensor's sums. */
export function addChunkMetrics(acc: Accumulated, m: Metrics, refSq: number): void {
  acc.first ??= m;
  acc.refSq += refSq;
  acc.errSq += m.relError * m.relError * refSq;
  acc.cosW += m.cosine * refSq;
  acc.maxAbs = Math.max(acc.maxAbs, m.maxAbsError);
  acc.chunks++;
}

const finite = (v: number, dflt: number) => (Number.isFinite(v) ? v : dflt);

/** A weight's accuracy as the report and the manifest record it, judged against `tolerance`. */
export function weightAccuracy(a: Accumulated, tolerance: number) {
  const single = a.chunks === 1 && a.first;
  const zeroTensor = a.refSq === 0 && a.maxAbs === 0;
  const rel = zeroTensor ? 0 : single ? a.first!.relError : Math.sqrt(a.errSq / a.refSq);
  const snr = zeroTensor ? 999 : single ? a.first!.snrDb : -20 * Math.log10(rel);
  const cos = zeroTensor ? 1 : single ? a.first!.cosine : a.cosW / a.refSq;
  const outRel = a.ySq > 0 ? Math.sqrt(a.dySq / a.ySq) : a.dySq === 0 ? 0 : Number.POSITIVE_INFINITY;
  const pass = judge(rel, outRel, tolerance);
  return {
    rel_error: finite(rel, 1e9),
    snr_db: finite(snr, rel === 0 ? 999 : -999),
    cosine: finite(cos, 0),
    max_abs_error: finite(a.maxAbs, 1e9),
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
