// Comparing two tensors of one shape (two members of a file, or the same tensor in two files: source against
// dequantized, before against after a change). A quantized member stands for its dequantized weight. The
// difference's statistics and histogram are the engine's (valueStats), the relative error, cosine and SNR its
// conversion-accuracy measure (compareMetrics); both sides are read on the same bounded sample of rows.
import { compareMetrics } from '../../../native/index';
import type { InspectorComparison } from '../protocol';
import { clampPage } from './backing';
import { MAX_SAMPLE_ELEMENTS } from './quantized';
import type { InspectorSession } from './session';
import { computeStats, downsample2d, samplePlan } from './stats';

const shapeText = (s: number[]) => `(${s.join(', ')}${s.length === 1 ? ',' : ''})`;

async function operands(sa: InspectorSession, a: string, sb: InspectorSession, b: string) {
  const [ma, mb] = await Promise.all([sa.matrix(a), sb.matrix(b)]);
  if (ma.shape.length !== mb.shape.length || ma.shape.some((n, i) => n !== mb.shape[i])) {
    throw new Error(`cannot compare ${a} ${shapeText(ma.shape)} with ${b} ${shapeText(mb.shape)}: the shapes differ`);
  }
  return { ma, mb };
}

/** Compares `a` of session `sa` with `b` of session `sb` (d = b − a). Shapes that differ are refused. */
export async function compareTensors(
  sa: InspectorSession,
  a: string,
  sb: InspectorSession,
  b: string,
  files: { a?: string; b?: string } = {},
): Promise<InspectorComparison> {
  const { ma, mb } = await operands(sa, a, sb, b);
  const plan = samplePlan(ma.rows, ma.cols, MAX_SAMPLE_ELEMENTS, ma.deflated || mb.deflated ? 1 : undefined);
  const n = plan.rowsRead * plan.colsRead;
  const va = new Float64Array(n);
  const vb = new Float64Array(n);
  let at = 0;
  for (const [start, count] of plan.ranges) {
    const [pa, pb] = await Promise.all([
      sa.matrixRows(a, start, count, 0, plan.colsRead),
      sb.matrixRows(b, start, count, 0, plan.colsRead),
    ]);
    va.set(pa, at);
    vb.set(pb, at);
    at += pa.length;
  }
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = vb[i] - va[i];
  const diff = computeStats(d, undefined, plan.sampled);
  const m = compareMetrics(Float32Array.from(va), Float32Array.from(vb));
  const { mean, std, min, max } = diff.stats;
  return {
    a: { name: a, ...(files.a ? { file: files.a } : {}), dtype: ma.dtype, shape: ma.shape },
    b: { name: b, ...(files.b ? { file: files.b } : {}), dtype: mb.dtype, shape: mb.shape },
    rows: ma.rows,
    cols: ma.cols,
    sampled: plan.sampled,
    count: n,
    maxAbs: n ? Math.max(Math.abs(min), Math.abs(max)) : 0,
    rms: Math.sqrt(std * std + mean * mean),
    relError: m.relError,
    cosine: m.cosine,
    snrDb: m.snrDb,
    diff: { ...diff, preview: n ? downsample2d(d, plan.rowsRead, plan.colsRead) : null },
  };
}

/** A page of the difference b − a (clamped to the grid, at most MAX_PAGE_ELEMENTS values). */
export async function diffPage(
  sa: InspectorSession,
  a: string,
  sb: InspectorSession,
  b: string,
  row: number,
  rowCount: number,
  col: number,
  colCount: number,
) {
  const { ma } = await operands(sa, a, sb, b);
  const p = clampPage(ma.rows, ma.cols, row, rowCount, col, colCount);
  if (!p.rowCount || !p.colCount) return { ...p, values: new Float64Array(0) };
  const [pa, pb] = await Promise.all([
    sa.matrixRows(a, p.row, p.rowCount, p.col, p.colCount),
    sb.matrixRows(b, p.row, p.rowCount, p.col, p.colCount),
  ]);
  for (let i = 0; i < pb.length; i++) pb[i] -= pa[i];
  return { ...p, values: pb };
}

/**
 * The member of `other` that is "the same tensor" as `name` of `self`: the same name (with or without `.npy`),
 * else the source tensor a quantized member was made from, else the quantized member made from tensor `name`.
 */
export function sameTensorIn(self: InspectorSession, name: string, other: InspectorSession): string | undefined {
  const have = new Set(other.names);
  const stem = name.replace(/\.npy$/, '');
  const candidates = [name, stem, `${stem}.npy`];
  const src = self.quantized.sourceName(name);
  if (src) candidates.push(src, `${src}.npy`);
  const direct = candidates.find((c) => have.has(c));
  if (direct) return direct;
  return other.names.find((m) => {
    const s = other.quantized.sourceName(m);
    return s !== undefined && (s === name || s === stem || (src !== undefined && s === src));
  });
}
