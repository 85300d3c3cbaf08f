// The accuracy report beside a manifest (`<name>_accuracy_q<bits>.json`, metadata.accuracy_report) as the language
// server holds it: read by the one report reader (server/src/report), indexed by weight name, or the problem that
// kept it from being read.
import type { EndToEndBrief } from '../protocol';
import { looksLikeReport, normalizeReport, type ReportWeight } from '../report';

export type { ReportWeight } from '../report';

export interface LoadedReport {
  file?: string;
  /** The report's own verdict, when it states one. */
  pass?: boolean;
  weights: Map<string, ReportWeight>;
  /** What the verdict rests on (the report's verdict_basis), when stated. */
  basis?: string;
  /** The end-to-end figures (convert --eval), when the report has them. */
  endToEnd?: EndToEndBrief;
}

/** The report could not be read: missing, or not a report. */
export interface ReportProblem {
  problem: 'missing' | 'unreadable';
  file: string;
  message: string;
}

export type ReportState = LoadedReport | ReportProblem;

export function isReportProblem(r: unknown): r is ReportProblem {
  return typeof r === 'object' && r !== null && 'problem' in r;
}

/** A parsed report JSON as a LoadedReport; undefined when it has no `weights` array. */
export function toLoadedReport(value: unknown, file?: string): LoadedReport | undefined {
  if (!looksLikeReport(value)) return undefined;
  const r = normalizeReport(value);
  const e = r.end_to_end;
  return {
    file,
    pass: r.verdict ?? undefined,
    weights: new Map(r.weights.map((w) => [w.name, w])),
    basis: r.verdict_basis ?? undefined,
    endToEnd: e
      ? {
          kld_mean: e.kld_mean,
          same_top: e.same_top,
          ppl: e.ppl,
          ppl_float: e.ppl_float,
          ppl_ratio: e.ppl_ratio,
          ctx: e.ctx,
          chunks: e.chunks,
          pass: e.pass,
          error: e.error,
        }
      : undefined,
  };
}

/** Normalises whatever the caller passes as `report` (a parsed JSON, a LoadedReport, a problem). */
export function asReportState(report: unknown): ReportState | undefined {
  if (report === undefined || report === null) return undefined;
  if (isReportProblem(report)) return report;
  if (typeof report === 'object' && (report as LoadedReport).weights instanceof Map) return report as LoadedReport;
  return toLoadedReport(report);
}
