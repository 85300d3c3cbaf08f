// Storing an evaluation in the accuracy report: its `end_to_end` section, the overall verdict restated with its
// basis, and the manifest's metadata.accuracy_pass, each file rewritten atomically (temporary file, then rename).
// Shared by `convert --eval` (convert/eval-stage.ts, right after the conversion) and `apl-quant eval
// --update-report` (an existing conversion, the VS Code command "APL: Evaluate Model…"), which checks the report
// first and holds the outputs' lock while it runs, so that a conversion into the same outputs cannot replace the
// model being measured.
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { outputsLockPath, reportOfManifest } from '../convert/names';
import { FormatError, oneLine } from '../formats/errors';
import type { Manifest } from '../formats/manifest';
import { tryPidLock } from '../formats/pid-lock';
import { readRegularFileSync } from '../formats/source';
import type { EvalResult } from '../protocol';
import {
  type AccuracyReport,
  E2E_THRESHOLDS,
  type EndToEndFailure,
  type EndToEndReport,
  judgeEndToEnd,
  verdictBasis,
} from '../report';

const errMsg = (e: unknown) => oneLine((e as Error)?.message ?? String(e));

/** A report larger than this is not one of ours (a few hundred bytes per weight). */
const MAX_REPORT_BYTES = 64 * 1024 * 1024;

export class ReportUpdateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportUpdateError';
  }
}

/** The report's end_to_end section from an evaluation result, judged against the thresholds of its bit width. */
export function endToEndSection(r: EvalResult, bits: keyof typeof E2E_THRESHOLDS): EndToEndReport {
  const thresholds = { ...E2E_THRESHOLDS[bits] };
  const { manifest: _m, bits: _b, source: _s, text, text_sha256, text_tokens, ...figures } = r;
  return {
    ...figures,
    text: { name: basename(text), sha256: text_sha256, tokens: text_tokens },
    thresholds,
    pass: judgeEndToEnd(r, thresholds),
  };
}

/** Writes JSON (two-space indent) through a temporary file beside it; `onError` turns a failure into the caller's error. */
export function writeJsonAtomic(path: string, value: unknown, onError: (e: unknown) => Error): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw onError(e);
  }
}

/**
 * Records the section (or the failure) in the report, restates the verdict, rewrites the report and (when its
 * accuracy_pass changes) the manifest.
 */
export function recordEndToEnd(
  report: AccuracyReport,
  reportPath: string,
  manifestPath: string,
  e2e: EndToEndReport | EndToEndFailure | undefined,
  onError: (e: unknown, what: string) => Error,
): void {
  const weightsPass = report.summary.failed === 0;
  report.end_to_end = e2e;
  report.pass = weightsPass && (e2e === undefined || !('pass' in e2e) || e2e.pass);
  report.verdict_basis = verdictBasis(report);
  writeJsonAtomic(reportPath, report, (e) => onError(e, `writing ${reportPath}`));
  const manifest = JSON.parse(readRegularFileSync(manifestPath).toString('utf8'));
  if (manifest?.metadata && manifest.metadata.accuracy_pass !== report.pass) {
    manifest.metadata.accuracy_pass = report.pass;
    writeJsonAtomic(manifestPath, manifest, (e) => onError(e, `writing ${manifestPath}`));
  }
}

/**
 * The report of a conversion, read and checked before an evaluation is run to update it: one ReportUpdateError
 * line naming the file when it is missing, not JSON, not an accuracy report of a 1, 2, 4 or 8-bit conversion, or of
 * another bit width than the manifest (already read and checked by the caller).
 */
export function readReportForUpdate(
  manifestPath: string,
  manifest: Pick<Manifest, 'metadata'>,
): { path: string; report: AccuracyReport } {
  const metadata = manifest.metadata as unknown as Record<string, unknown>;
  const path = reportOfManifest(manifestPath, metadata);
  if (!path) {
    throw new ReportUpdateError(
      `${manifestPath}: no accuracy report to update (the manifest names none, and its file name is not <name>_manifest_q<bits>.json)`,
    );
  }
  let text: string;
  try {
    text = readRegularFileSync(path, MAX_REPORT_BYTES).toString('utf8');
  } catch (e) {
    const missing = e instanceof FormatError && e.problem === 'no such file';
    throw new ReportUpdateError(missing ? `${path}: the accuracy report is missing` : errMsg(e));
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ReportUpdateError(`${path}: not valid JSON (${errMsg(e)})`);
  }
  const r = value as Partial<AccuracyReport> | null;
  const ok =
    !!r &&
    typeof r === 'object' &&
    Array.isArray(r.weights) &&
    typeof r.summary?.failed === 'number' &&
    Object.hasOwn(E2E_THRESHOLDS, String(r.bits));
  if (!ok) {
    throw new ReportUpdateError(
      `${path}: not an accuracy report of a 1, 2, 4 or 8-bit conversion (weights, summary.failed and bits are needed)`,
    );
  }
  // A report of another conversion (a manifest edited to name the wrong one) would get this model's figures.
  const bits = metadata.default_bits;
  if (typeof bits === 'number' && bits !== r.bits) {
    throw new ReportUpdateError(
      `${path}: the report is of a ${r.bits}-bit conversion, but ${basename(manifestPath)} is ${bits}-bit: not this model's report`,
    );
  }
  return { path, report: r as AccuracyReport };
}

/**
 * Holds the outputs' lock (`.<manifest name>.apl-lock`, the one convert takes) while `work` runs: a conversion
 * into the same outputs is refused meanwhile, and this is refused while one runs. A SIGINT or SIGTERM meanwhile
 * (Ctrl+C, Cancel in VS Code) releases the lock and ends the process (status 130 / 143): the report is written only
 * at the end, atomically, so there is nothing else to undo.
 */
export async function withOutputsLock<T>(manifestPath: string, work: () => Promise<T>): Promise<T> {
  let got: ReturnType<typeof tryPidLock>;
  try {
    got = tryPidLock(outputsLockPath(manifestPath));
  } catch (e) {
    throw new ReportUpdateError(`cannot write in ${dirname(manifestPath)}: ${errMsg(e)}`);
  }
  if ('owner' in got) {
    throw new ReportUpdateError(
      `${manifestPath}: a conversion or another evaluation (process ${got.owner}) holds these outputs; evaluate when it has finished`,
    );
  }
  const release = got.release;
  const onSignal = (signal: NodeJS.Signals) => {
    release();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    release();
  }
}
