// Statistics, histogram and heat-map downsampling of decoded tensor values. The inspector host feeds them either a
// whole tensor (when small enough) or an even sample of it (see samplePlan), never more than a cap. The statistics
// and the histogram are the engine's (native/index.ts valueStats); this module shapes them for the webview.
import { valueStats } from '../../../native/index';
import type { InspectorHistogram, InspectorPreview, InspectorStats } from '../protocol';

export const DEFAULT_BINS = 64;

/**
 * Count (all values, NaN/Inf included), min, max, mean, std (population) of the finite values, NaN/Inf counts and a
 * histogram of the finite values in `bins` equal bins over [min, max].
 */
export function computeStats(
  values: ArrayLike<number>,
  bins = DEFAULT_BINS,
  sampled = false,
): { stats: InspectorStats; histogram: InspectorHistogram } {
  const v = values instanceof Float64Array ? values : Float64Array.from(values);
  const t = valueStats(v, Math.max(1, bins));
  return {
    stats: { count: v.length, min: t.min, max: t.max, mean: t.mean, std: t.std, nan: t.nan, inf: t.inf, sampled },
    histogram: t.histogram,
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
