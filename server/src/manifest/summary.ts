// Sizes and the manifest summary (weights, bytes, bits per weight, verdict) that hover, code lens and the
// apl/manifestSummary request share.

import { bitsPerWeight } from '../common/format';
import { groupsPerRow, matrixView, packedRowBytes } from '../formats/manifest';
import type { EndToEndBrief, ManifestSummary } from '../protocol';
import { isObject, type ManifestDoc } from './document';
import { kquantFormatOf } from './kquant-checks';
import { isNpzProblem, type NpzState } from './npz-index';
import { isReportProblem, type LoadedReport, type ReportState } from './report';

export interface WeightSize {
  params: number;
  rows: number;
  cols: number;
  /** Bytes of q (packed values, or the float array for type none). */
  qBytes: number;
  /** Bytes of scales plus zero points. */
  metaBytes: number;
  bits: number;
  groupSize?: number;
  /** Type kquant: its format (metaBytes then counts the codes and the float16 super-scales). */
  kquant?: { super: number; scaleBits: number; minBits: number };
}

/** Sizes implied by a weight entry's shape and quantization; undefined when the entry is too broken to tell. */
export function weightSize(w: unknown): WeightSize | undefined {
  if (!isObject(w) || !Array.isArray(w.shape) || !w.shape.every((x) => typeof x === 'number' && x >= 0))
    return undefined;
  const shape = w.shape as number[];
  const q = isObject(w.quantization) ? w.quantization : {};
  const bits =
    typeof q.bits === 'number' ? q.bits : typeof w.bit_width === 'number' ? (w.bit_width as number) : undefined;
  if (bits === undefined || bits <= 0) return undefined;
  const { rows, cols } = matrixView(shape);
  const params = rows * cols;
  if (q.type === 'none' || bits >= 16) return { params, rows, cols, qBytes: (params * bits) / 8, metaBytes: 0, bits };
  if (q.type === 'kquant') {
    const f = kquantFormatOf(q);
    if (typeof f === 'string') return undefined;
    const codes = Math.ceil((groupsPerRow(cols, f.group) * (f.scaleBits + f.minBits)) / 8);
    const supers = Math.ceil(cols / f.super);
    const qBytes = rows * packedRowBytes(cols, bits);
    return { params, rows, cols, qBytes, metaBytes: rows * (codes + 4 * supers), bits, groupSize: f.group, kquant: f };
  }
  const groupSize = q.type === 'perrow_int' ? cols : typeof q.group_size === 'number' ? q.group_size : cols;
  const scaleBytes = q.scale_dtype === 'float32' ? 4 : 2;
  const groups = groupSize > 0 ? groupsPerRow(cols, groupSize) : 1;
  return {
    params,
    rows,
    cols,
    qBytes: rows * packedRowBytes(cols, bits),
    metaBytes: 2 * rows * groups * scaleBytes,
    bits,
    groupSize,
  };
}

export interface SummaryOptions {
  npz?: NpzState;
  report?: ReportState;
  npzPath?: string | null;
  reportPath?: string | null;
}

/** Per-weight verdicts: the report's when there is one, else the manifest's own accuracy blocks. */
export function verdictOf(doc: ManifestDoc, report: LoadedReport | undefined): ManifestSummary['verdict'] {
  if (report?.pass !== undefined) return report.pass ? 'pass' : 'fail';
  const v = doc.value;
  if (!isObject(v) || !Array.isArray(v.weights)) return 'unknown';
  let seen = false;
  for (const w of v.weights) {
    if (isObject(w) && isObject(w.accuracy) && typeof w.accuracy.pass === 'boolean') {
      seen = true;
      if (!w.accuracy.pass) return 'fail';
    }
  }
  return seen ? 'pass' : 'unknown';
}

export function summarize(doc: ManifestDoc, opts: SummaryOptions = {}): ManifestSummary {
  const v = doc.value;
  const weights = isObject(v) && Array.isArray(v.weights) ? v.weights : [];
  let quantized = 0;
  let bytes = 0;
  let params = 0;
  for (const w of weights) {
    const s = weightSize(w);
    if (!s) continue;
    if (s.bits < 16) quantized++;
    bytes += s.qBytes + s.metaBytes;
    params += s.params;
  }
  const npz = opts.npz && !isNpzProblem(opts.npz) ? opts.npz : undefined;
  const report = opts.report && !isReportProblem(opts.report) ? opts.report : undefined;
  return {
    weights: weights.length,
    quantized,
    totalBytes: npz?.size ?? bytes,
    // The one computation (common/format.ts): the NPZ's bytes when it is there, else what the entries imply.
    bitsPerWeight: bitsPerWeight(npz?.size ?? bytes, params),
    verdict: verdictOf(doc, report),
    npz: opts.npzPath ?? null,
    report: opts.reportPath ?? null,
    endToEnd: report?.endToEnd ?? null,
  };
}

/** The end-to-end figures in one short phrase (code lens, hover): "end to end: KLD 0.000111, same top 98.11 %". */
export function endToEndPhrase(e: EndToEndBrief | null | undefined): string {
  if (!e) return 'no end-to-end check';
  if (e.error) return 'end-to-end check failed to run';
  const kld = e.kld_mean === null ? '—' : e.kld_mean.toPrecision(3);
  const top = e.same_top === null ? '—' : `${(100 * e.same_top).toFixed(2)} %`;
  return `end to end: KLD ${kld}, same top ${top}${e.pass === false ? ' (over threshold)' : ''}`;
}
