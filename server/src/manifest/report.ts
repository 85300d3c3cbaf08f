// The accuracy report beside a manifest (`<name>_accuracy_q<bits>.json`, metadata.accuracy_report): its per-weight
// metrics and overall verdict, read leniently (a report from an older tool still gives what it has).

export interface ReportWeight {
  name: string;
  bits?: number;
  rel_error?: number;
  snr_db?: number;
  cosine?: number;
  max_abs_error?: number;
  output_rel_error?: number;
  pass?: boolean;
}

export interface AccuracyReport {
  file?: string;
  pass?: boolean;
  weights: Map<string, ReportWeight>;
}

/** The report could not be read: missing, or not a report. */
export interface ReportProblem {
  problem: 'missing' | 'unreadable';
  file: string;
  message: string;
}

export type ReportState = AccuracyReport | ReportProblem;

export function isReportProblem(r: unknown): r is ReportProblem {
  return typeof r === 'object' && r !== null && 'problem' in r;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Turns a parsed report JSON into an AccuracyReport; undefined when it has no `weights` array. */
export function toAccuracyReport(value: unknown, file?: string): AccuracyReport | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (!Array.isArray(v.weights)) return undefined;
  const weights = new Map<string, ReportWeight>();
  for (const w of v.weights) {
    if (typeof w !== 'object' || w === null) continue;
    const o = w as Record<string, unknown>;
    if (typeof o.name !== 'string') continue;
    weights.set(o.name, {
      name: o.name,
      bits: num(o.bits),
      rel_error: num(o.rel_error),
      snr_db: num(o.snr_db),
      cosine: num(o.cosine),
      max_abs_error: num(o.max_abs_error),
      output_rel_error: num(o.output_rel_error),
      pass: typeof o.pass === 'boolean' ? o.pass : undefined,
    });
  }
  return { file, pass: typeof v.pass === 'boolean' ? v.pass : undefined, weights };
}

/** Normalises whatever the caller passes as `report` (a parsed JSON, an AccuracyReport, a problem). */
export function asReportState(report: unknown): ReportState | undefined {
  if (report === undefined || report === null) return undefined;
  if (isReportProblem(report)) return report;
  if (typeof report === 'object' && (report as AccuracyReport).weights instanceof Map) return report as AccuracyReport;
  return toAccuracyReport(report);
}
