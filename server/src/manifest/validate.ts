// validateManifest: every check of a manifest as one pure function, shared by the language server and
// `apl-quant validate`. Syntax → schema → cross-checks with the NPZ index and the accuracy report.
import { type Diagnostic, DiagnosticSeverity } from 'vscode-languageserver-types';
import { crossCheckSteps } from './checks';
import { DIAGNOSTIC_SOURCE, DiagnosticCodes, MAX_DIAGNOSTICS } from './codes';
import { type ManifestDoc, parseManifest } from './document';
import type { SideState } from './files';
import type { NpzState } from './npz-index';
import { asReportState } from './report';
import { schemaDiagnosticsSteps } from './schema';
import { drain, type Steps } from './steps';

export interface ValidateOptions {
  /** The manifest's path, for messages; the caller resolves and loads the NPZ and report. */
  manifestPath?: string;
  /** The NPZ index (or why there is none); without it the NPZ checks are skipped. */
  npz?: NpzState;
  /** The accuracy report: parsed JSON, an AccuracyReport, or a ReportProblem. */
  report?: unknown;
  /** The side files (tokenizer, its config, the generation config) as read; without them their checks are skipped. */
  side?: SideState[];
  /** At most this many diagnostics (default MAX_DIAGNOSTICS); one more says how many were left out. */
  maxDiagnostics?: number;
}

/** Validates a parsed manifest. */
export function validateDoc(doc: ManifestDoc, opts: ValidateOptions = {}): Diagnostic[] {
  return drain(validateDocSteps(doc, opts));
}

/** validateDoc as steps (one per weight checked, per diagnostic placed). */
export function* validateDocSteps(doc: ManifestDoc, opts: ValidateOptions = {}): Steps<Diagnostic[]> {
  const max = opts.maxDiagnostics ?? MAX_DIAGNOSTICS;
  const out: Diagnostic[] = [...doc.syntax];
  if (doc.unparsable || doc.value === undefined) {
    if (!doc.unparsable && out.length === 0)
      out.push({
        range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
        severity: DiagnosticSeverity.Error,
        code: DiagnosticCodes.syntax,
        source: DIAGNOSTIC_SOURCE,
        message: 'Empty document: a manifest is a JSON object',
      });
    return out;
  }
  out.push(...(yield* schemaDiagnosticsSteps(doc, max + 1)));
  out.push(...(yield* crossCheckSteps(doc, { npz: opts.npz, report: asReportState(opts.report), side: opts.side })));
  out.sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
  if (out.length > max) {
    out.length = max;
    out.push({
      range: { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } },
      severity: DiagnosticSeverity.Warning,
      code: DiagnosticCodes.syntax,
      source: DIAGNOSTIC_SOURCE,
      message: `More problems not shown: only the first ${max} are listed`,
    });
  }
  return out;
}

/** Validates a manifest's text: syntax, schema, and the checks against `opts.npz` and `opts.report`. Pure. */
export function validateManifest(text: string, opts: ValidateOptions = {}): Diagnostic[] {
  return validateDoc(parseManifest(text), opts);
}
