// Hover: on a key, the schema's description; anywhere inside a weight, the weight's card (source, shape,
// parameters, quantization, packed size against float16/float32, accuracy from the report beside the manifest).
import { findNodeAtOffset, getNodePath } from 'jsonc-parser';
import type { Hover } from 'vscode-languageserver-types';
import { formatBytes } from '../common/format';
import { isObject, type ManifestDoc, type Node } from './document';
import { isSideProblem, type SideState } from './files';
import { isNpzProblem, type NpzState } from './npz-index';
import { isReportProblem, type ReportState, type ReportWeight } from './report';
import { schemaAt } from './schema';
import { weightSize } from './summary';

export interface HoverOptions {
  npz?: NpzState;
  report?: ReportState;
  /** The tokenizer, its config and the generation config, as read (files.ts). */
  side?: SideState[];
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const int = (x: number) => x.toLocaleString('en-US');

/** The property path of a node inside the tree (numbers for array items). */
export function pathOf(node: Node): (string | number)[] {
  return getNodePath(node);
}

/** Key node → the path of the property it names. */
function keyPath(keyNode: Node): (string | number)[] {
  const prop = keyNode.parent!;
  const obj = prop.parent;
  const base = obj ? getNodePath(obj) : [];
  return [...base, String(keyNode.value)];
}

export function isKeyNode(node: Node): boolean {
  return node.parent?.type === 'property' && node.parent.children?.[0] === node;
}

function describeKey(path: (string | number)[]): string | undefined {
  const s = schemaAt(path);
  if (!s?.description) return undefined;
  const lines = [`**${path[path.length - 1]}**`, '', s.description];
  if (s.enum) lines.push('', `Allowed: ${s.enum.map((e) => `\`${JSON.stringify(e)}\``).join(', ')}`);
  return lines.join('\n');
}

function accuracyLines(a: Partial<ReportWeight>): string[] {
  const parts: string[] = [];
  if (a.rel_error != null) parts.push(`relative error ${pct(a.rel_error)}`);
  if (a.snr_db != null) parts.push(`SNR ${a.snr_db.toFixed(1)} dB`);
  if (a.cosine != null) parts.push(`cosine ${a.cosine.toFixed(5)}`);
  if (a.max_abs_error != null) parts.push(`max abs error ${a.max_abs_error.toPrecision(3)}`);
  if (a.output_rel_error != null) parts.push(`output relative error ${pct(a.output_rel_error)}`);
  const verdict = a.pass == null ? '' : a.pass ? ' — **PASS**' : ' — **FAIL**';
  return parts.length || verdict ? [`| accuracy | ${parts.join(', ')}${verdict} |`] : [];
}

/** Markdown card for weights[index]. */
export function weightCard(w: Record<string, unknown>, opts: HoverOptions): string {
  const name = typeof w.name === 'string' ? w.name : '(unnamed)';
  const q = isObject(w.quantization) ? w.quantization : {};
  const src = isObject(w.source) ? w.source : {};
  const rows: string[] = ['| | |', '|---|---|'];
  if (typeof src.tensor === 'string') {
    const extra = [src.dtype, src.file].filter((x) => typeof x === 'string').join(', ');
    rows.push(`| source | \`${src.tensor}\`${extra ? ` (${extra})` : ''} |`);
  }
  const size = weightSize(w);
  if (Array.isArray(w.shape))
    rows.push(`| shape | [${w.shape.join(', ')}]${size ? ` — ${int(size.params)} parameters` : ''} |`);
  const qParts = [q.type, typeof q.bits === 'number' ? `${q.bits} bits` : undefined, q.method].filter(
    (x) => typeof x === 'string',
  );
  if (size?.groupSize !== undefined && q.type !== 'none') qParts.push(`group size ${size.groupSize}`);
  if (size?.kquant)
    qParts.push(
      `super-blocks of ${size.kquant.super}`,
      `${size.kquant.scaleBits}+${size.kquant.minBits}-bit scale and min codes under float16 d and dmin`,
    );
  if (typeof q.scale_dtype === 'string') qParts.push(`scales ${q.scale_dtype}`);
  if (typeof q.rounding === 'string') qParts.push(`${q.rounding} rounding`);
  if (qParts.length) rows.push(`| quantization | ${qParts.join(', ')} |`);
  if (size) {
    const total = size.qBytes + size.metaBytes;
    const what = size.kquant ? 'codes and super-scales' : 'scales and zero points';
    const meta = size.metaBytes ? ` + ${formatBytes(size.metaBytes)} ${what}` : '';
    rows.push(`| stored | ${formatBytes(size.qBytes)}${meta} = **${formatBytes(total)}** |`);
    if (total > 0) {
      rows.push(
        `| vs float16 | ${formatBytes(size.params * 2)} → ${((size.params * 2) / total).toFixed(2)}× smaller |`,
      );
      rows.push(
        `| vs float32 | ${formatBytes(size.params * 4)} → ${((size.params * 4) / total).toFixed(2)}× smaller |`,
      );
      rows.push(`| bits/weight | ${((8 * total) / Math.max(1, size.params)).toFixed(3)} |`);
    }
  }
  const report = opts.report && !isReportProblem(opts.report) ? opts.report : undefined;
  const fromReport = report?.weights.get(name);
  if (fromReport) rows.push(...accuracyLines(fromReport));
  else if (isObject(w.accuracy)) rows.push(...accuracyLines(w.accuracy as Partial<ReportWeight>));
  const layer = typeof w.layer === 'number' ? ` — layer ${w.layer}` : '';
  return [`**${name}**${layer}`, '', ...rows].join('\n');
}

export function hover(doc: ManifestDoc, offset: number, opts: HoverOptions = {}): Hover | null {
  if (!doc.root) return null;
  const node = findNodeAtOffset(doc.root, offset, true);
  if (!node) return null;
  const range = doc.lines.range(node.offset, node.length);
  if (isKeyNode(node)) {
    const md = describeKey(keyPath(node));
    return md ? { contents: { kind: 'markdown', value: md }, range } : null;
  }
  const path = getNodePath(node);
  const root = doc.value;
  if (path[0] === 'weights' && typeof path[1] === 'number' && isObject(root) && Array.isArray(root.weights)) {
    const w = root.weights[path[1]];
    if (isObject(w)) return { contents: { kind: 'markdown', value: weightCard(w, opts) }, range };
  }
  if (path[0] === 'metadata' && (path[1] === 'accuracy_report' || path[1] === 'accuracy_pass') && path.length === 2) {
    const md = verdictCard(opts.report);
    if (md) return { contents: { kind: 'markdown', value: md }, range };
  }
  if (path[0] === 'metadata' && path[1] === 'npz' && path.length === 2 && opts.npz) {
    const md = isNpzProblem(opts.npz)
      ? opts.npz.message
      : `**${opts.npz.file ?? 'NPZ'}**\n\n${int(opts.npz.members.size)} members${opts.npz.size !== undefined ? `, ${formatBytes(opts.npz.size)}` : ''}`;
    return { contents: { kind: 'markdown', value: md }, range };
  }
  const side = path[0] === 'metadata' && path.length === 2 ? opts.side?.find((s) => s.key === path[1]) : undefined;
  if (side) {
    const md = isSideProblem(side) ? side.message : `**${side.file}**\n\n${side.about}`;
    return { contents: { kind: 'markdown', value: md }, range };
  }
  return null;
}

/** The report's verdict, its basis and the end-to-end figures (on metadata.accuracy_report / accuracy_pass). */
export function verdictCard(report: ReportState | undefined): string | undefined {
  if (!report) return undefined;
  if (isReportProblem(report)) return report.message;
  const lines = [`**Accuracy: ${report.pass === undefined ? 'no verdict' : report.pass ? 'PASS' : 'FAIL'}**`];
  if (report.basis) lines.push('', `Based on ${report.basis}.`);
  const e = report.endToEnd;
  if (!e) {
    lines.push(
      '',
      'No end-to-end figures: **APL: Evaluate Model…** (`apl-quant eval … --update-report`) or `apl-quant convert … --eval` adds them (KLD, same top, perplexity).',
    );
  } else if (e.error) {
    lines.push('', `End-to-end check failed to run: ${e.error}`);
  } else {
    const f = (x: number | null, d = 3) => (x === null ? '—' : x.toPrecision(d));
    lines.push(
      '',
      '| end to end | |',
      '|---|---|',
      `| mean KLD | ${f(e.kld_mean)} |`,
      `| same top | ${e.same_top === null ? '—' : pct(e.same_top)} |`,
      `| perplexity | ${f(e.ppl, 5)} quantized vs ${f(e.ppl_float, 5)} float (ratio ${f(e.ppl_ratio, 5)}) |`,
      `| measured | ctx ${e.ctx ?? '—'}, ${e.chunks ?? '—'} chunks — ${e.pass === null ? 'no verdict' : e.pass ? 'pass' : 'FAIL'} |`,
    );
  }
  return lines.join('\n');
}
