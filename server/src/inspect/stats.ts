// Statistics, histogram and heat-map downsampling of decoded tensor values. Pure; the inspector host feeds it
// either a whole tensor (when small enough) or an even sample of it (see samplePlan), never more than a cap.
import type { InspectorHistogram, InspectorPreview, InspectorStats } from '../protocol';

export const DEFAULT_BINS = 64;

/** Count, min, max, mean, std (population), NaN/Inf counts and a histogram of the finite values. */
export function computeStats(
  values: ArrayLike<number>,
  bins = DEFAULT_BINS,
  sampled = false,
): { stats: InspectorStats; histogram: InspectorHistogram } {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let nan = 0;
  let inf = 0;
  let n = 0;
  // Sums shifted by the first finite value, so the variance does not cancel catastrophically for data far from 0.
  let shift = Number.NaN;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) {
      // NaN or ±Infinity
      if (Number.isNaN(v)) nan++;
      else inf++;
      continue;
    }
    if (n === 0) shift = v;
    if (v < min) min = v;
    if (v > max) max = v;
    n++;
    const d = v - shift;
    sum += d;
    sumSq += d * d;
  }
  const meanD = n ? sum / n : 0;
  const mean = n ? shift + meanD : 0;
  const m2 = n ? Math.max(0, sumSq / n - meanD * meanD) * n : 0;
  const counts = new Array<number>(Math.max(1, bins)).fill(0);
  if (n === 0) {
    return {
      stats: { count: values.length, min: 0, max: 0, mean: 0, std: 0, nan, inf, sampled },
      histogram: { min: 0, max: 0, counts },
    };
  }
  const bins1 = counts.length;
  const scale = max > min ? bins1 / (max - min) : 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) continue;
    let b = ((v - min) * scale) | 0;
    if (b >= bins1) b = bins1 - 1;
    counts[b]++;
  }
  return {
    stats: { count: values.length, min, max, mean, std: Math.sqrt(m2 / n), nan, inf, sampled },
    histogram: { min, max, counts },
  };
}

/**
 * Downsamples a row-major rows × cols matrix to at most maxRows × maxCols cells, each the mean |value| of
 * the finite values in the block it covers (0 for a block with none).
 */
export function downsample2d(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  maxRows = 128,
  maxCols = 128,
): InspectorPreview {
  if (values.length < rows * cols) throw new Error(`need ${rows * cols} values, have ${values.length}`);
  const outRows = Math.max(1, Math.min(rows, maxRows));
  const outCols = Math.max(1, Math.min(cols, maxCols));
  const sums = new Float64Array(outRows * outCols);
  const counts = new Float64Array(outRows * outCols);
  for (let r = 0; r < rows; r++) {
    const orow = Math.floor((r * outRows) / rows) * outCols;
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = values[base + c];
      if (!Number.isFinite(v)) continue;
      const k = orow + Math.floor((c * outCols) / cols);
      sums[k] += Math.abs(v);
      counts[k]++;
    }
  }
  const out = new Array<number>(outRows * outCols);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < out.length; k++) {
    const v = counts[k] ? sums[k] / counts[k] : 0;
    out[k] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { rows: outRows, cols: outCols, values: out, min, max };
}

/**
 * Which rows to read for statistics and a preview of a rows × cols tensor without reading more than
 * `maxElements` values in at most `maxRanges` reads: every row when it fits, else evenly spaced runs of
 * consecutive rows. A row longer than the cap is cut to its first `colsRead` values.
 */
export function samplePlan(
  rows: number,
  cols: number,
  maxElements: number,
  maxRanges = 256,
): { ranges: [start: number, count: number][]; colsRead: number; rowsRead: number; sampled: boolean } {
  if (rows <= 0 || cols <= 0) return { ranges: [], colsRead: Math.max(0, cols), rowsRead: 0, sampled: false };
  const colsRead = Math.min(cols, maxElements);
  const fit = Math.max(1, Math.floor(maxElements / colsRead));
  if (fit >= rows) return { ranges: [[0, rows]], colsRead, rowsRead: rows, sampled: colsRead < cols };
  const nRanges = Math.min(maxRanges, fit);
  const per = Math.floor(fit / nRanges);
  const ranges: [number, number][] = [];
  for (let i = 0; i < nRanges; i++) {
    const start = Math.min(Math.floor((i * rows) / nRanges), rows - per);
    ranges.push([start, per]);
  }
  return { ranges, colsRead, rowsRead: nRanges * per, sampled: true };
}
