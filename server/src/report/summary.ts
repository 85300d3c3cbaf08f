// The accuracy report as text: the table and verdict the CLI prints at the end of a run (no --json-progress).

import { failureAdvice } from '../common/advice';
import { formatBitsPerWeight, formatBytes } from '../common/format';
import type { OutputPaths } from '../convert/names';
import { type AccuracyReport, isEndToEndFailure } from './report';

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;

/** The human summary printed at the end of a CLI run (no --json-progress). */
export function formatSummary(r: AccuracyReport, paths: OutputPaths): string {
  const rows: string[][] = [['weight', 'bits', 'rel err', 'out err', 'SNR dB', 'tol', '']];
  for (const w of r.weights) {
    rows.push([
      w.name,
      String(w.bits),
      pct(w.rel_error),
      pct(w.output_rel_error),
      w.snr_db.toFixed(1),
      pct(w.tolerance),
      w.pass ? 'ok' : 'FAIL',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const lines = rows.map((row) =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  lines.push(
    '',
    `model ${r.model} (${r.source}${r.revision ? ` @ ${r.revision.slice(0, 12)}` : ''}), ${r.bits} bits, group ${r.group_size}, ${r.mode}, backend ${r.backend}`,
    `size ${formatBytes(r.sizes.source_bytes)} → ${formatBytes(r.sizes.output_bytes)} (${formatBitsPerWeight(r.sizes.bits_per_weight)} bits/weight, ${(r.sizes.source_bytes / Math.max(1, r.sizes.output_bytes)).toFixed(2)}x smaller) in ${r.seconds.toFixed(2)} s`,
    `accuracy: ${r.summary.passed}/${r.summary.weights} weights within tolerance${r.summary.kept_float ? `, ${r.summary.kept_float} tensors kept as float` : ''} → ${r.pass ? 'PASS' : `FAIL (worst: ${r.summary.worst})`}`,
    ...endToEndLines(r),
    ...adviceLines(r),
    `wrote ${paths.npz}`,
    `      ${paths.manifest}`,
    `      ${paths.report}`,
  );
  return lines.join('\n');
}

/** The failed verdict's advice (what to try instead), as lines of the summary. */
function adviceLines(r: AccuracyReport): string[] {
  const a = failureAdvice({
    bits: r.bits,
    pass: r.pass,
    group_size: r.group_size,
    mode: r.mode,
    tolerance: r.tolerance[r.bits] ?? null,
  });
  return a ? [a] : [];
}

/** The end-to-end figures (convert --eval), when the report has them. */
function endToEndLines(r: AccuracyReport): string[] {
  const e = r.end_to_end;
  if (!e) return [];
  if (isEndToEndFailure(e)) return [`end to end: not measured (${e.error})`];
  return [
    `end to end: PPL ${e.ppl.toFixed(3)} vs float ${e.ppl_float.toFixed(3)} (ratio ${e.ppl_ratio.toFixed(4)}), mean KLD ${e.kld_mean.toPrecision(3)} (≤ ${e.thresholds.kld_mean}), same top ${(100 * e.same_top).toFixed(2)}% (≥ ${(100 * e.thresholds.same_top).toFixed(0)}%) over ${e.tokens_scored} tokens of ${e.text.name} (ctx ${e.ctx}, ${e.chunks} chunks) → ${e.pass ? 'pass' : 'FAIL'}`,
    `verdict ${r.pass ? 'PASS' : 'FAIL'}, based on: ${r.verdict_basis}`,
  ];
}
