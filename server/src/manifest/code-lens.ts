// Code lenses at the top of a manifest: weights, size, bits per weight, the accuracy verdict, and the actions that
// open the accuracy report and the NPZ inspector, try the model and evaluate it end to end (command ids from
// protocol.ts; the argument is the file's URI).
import type { CodeLens } from 'vscode-languageserver-types';
import { formatBitsPerWeight, formatBytes } from '../common/format';
import { CommandIds, type ManifestSummary } from '../protocol';
import { endToEndPhrase } from './summary';

export interface CodeLensOptions {
  /** URI of the NPZ file, when it exists. */
  npzUri?: string;
  /** URI of the accuracy report, when it exists. */
  reportUri?: string;
}

export function codeLenses(summary: ManifestSummary, opts: CodeLensOptions = {}): CodeLens[] {
  const range = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
  const lenses: CodeLens[] = [];
  const inspect = opts.npzUri ? { command: CommandIds.inspectNpz, arguments: [opts.npzUri] } : { command: '' };
  const open = opts.reportUri
    ? { command: CommandIds.openAccuracyReport, arguments: [opts.reportUri] }
    : { command: '' };
  const bpw = summary.bitsPerWeight === null ? '' : ` · ${formatBitsPerWeight(summary.bitsPerWeight)} bits/weight`;
  lenses.push({
    range,
    command: {
      title: `${summary.weights} weights (${summary.quantized} quantized) · ${formatBytes(summary.totalBytes)}${bpw}`,
      ...inspect,
    },
  });
  const verdict =
    summary.verdict === 'pass'
      ? '✓ accuracy: pass'
      : summary.verdict === 'fail'
        ? '✗ accuracy: FAIL'
        : 'accuracy: no report';
  // The verdict's basis in brief: the end-to-end figures when the report has them (convert --eval).
  const basis = summary.verdict === 'unknown' ? '' : ` · ${endToEndPhrase(summary.endToEnd)}`;
  lenses.push({ range, command: { title: verdict + basis, ...open } });
  if (opts.reportUri) lenses.push({ range, command: { title: 'Open accuracy report', ...open } });
  if (opts.npzUri) lenses.push({ range, command: { title: 'Inspect NPZ', ...inspect } });
  if (opts.npzUri)
    lenses.push({ range, command: { title: '▶ Try model', command: CommandIds.tryModel, arguments: [opts.npzUri] } });
  // The end-to-end check stores its figures in the report: offered where there is one to store them in.
  if (opts.npzUri && opts.reportUri) {
    const title = summary.endToEnd && !summary.endToEnd.error ? 'Re-evaluate end to end' : 'Evaluate end to end';
    lenses.push({ range, command: { title, command: CommandIds.evaluateModel, arguments: [opts.npzUri] } });
  }
  return lenses;
}
