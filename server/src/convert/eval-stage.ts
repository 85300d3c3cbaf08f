// The end-to-end stage of `convert --eval`: after the conversion is committed, the quantized model runs beside the
// float checkpoint the conversion just read (server/src/eval/manifest.ts, the code behind `apl-quant eval`) and the
// figures become the report's `end_to_end` section; the overall verdict and its basis are restated, and the report
// (and the manifest's metadata.accuracy_pass) are rewritten atomically. A failing evaluation never touches the
// conversion's outputs: the report records the error and the command ends with status 1 (see docs/REPORT.md). A
// cancel stops it after the chunk under way and leaves the committed outputs and their report as they were.
import { basename, join } from 'node:path';
import { DEFAULT_EVAL_CHUNKS, DEFAULT_EVAL_CTX, HELDOUT_TEXT } from '../eval/defaults';
import { EvalCancelled } from '../eval/evaluate';
import { EvalInputError, evaluateManifest, readText } from '../eval/manifest';
import { endToEndSection, recordEndToEnd } from '../eval/report-update';
import type { ConvertEvent, EvalResult } from '../protocol';
import type { AccuracyReport } from '../report';
import { ConvertError, cancelledError, ioError } from './errors';
import type { OutputPaths } from './names';

export { DEFAULT_EVAL_CHUNKS, DEFAULT_EVAL_CTX, HELDOUT_TEXT };

export interface EvalRequest {
  /** The text file; default: the source folder's heldout.txt. */
  text?: string;
  ctx?: number;
  chunks?: number;
}

/**
 * The text `convert --eval` will use, checked before any conversion work: --eval-text, else the source folder's
 * heldout.txt, else a one-line error asking for --eval-text.
 */
export function evalTextFor(req: EvalRequest, sourceDir: string): string {
  const text = req.text ?? join(sourceDir, HELDOUT_TEXT);
  try {
    readText(text);
  } catch (e) {
    if (req.text === undefined) {
      throw new ConvertError(
        'invalid-input',
        `--eval needs a text: pass --eval-text FILE (${sourceDir} ships no ${HELDOUT_TEXT} to use by default)`,
      );
    }
    throw new ConvertError('invalid-input', `--eval-text ${(e as Error).message}`);
  }
  return text;
}

/** Records the section (or the failure) in the report and the manifest (eval/report-update.ts). */
function record(report: AccuracyReport, paths: OutputPaths, e2e: AccuracyReport['end_to_end']): void {
  recordEndToEnd(report, paths.report, paths.manifest, e2e, (e, what) => ioError(e, what));
}

export interface EvalStageInput {
  report: AccuracyReport;
  paths: OutputPaths;
  /** The source checkpoint folder the conversion read. */
  sourceDir: string;
  text: string;
  req: EvalRequest;
  threads?: number;
  backend?: 'auto' | 'cpu' | 'gpu';
  emit: (e: ConvertEvent) => void;
  /** The conversion's cancel: stops the evaluation after its chunk under way; the report is left without it. */
  signal?: AbortSignal;
}

/**
 * Runs the evaluation and records it. Returns the report, updated; a failed evaluation is recorded and then thrown
 * as one invalid-input ConvertError line (the outputs stay).
 */
export async function evalStage(i: EvalStageInput): Promise<AccuracyReport> {
  const ctxText = i.req.ctx ?? `${DEFAULT_EVAL_CTX} (or the model's context)`;
  const chunks = i.req.chunks ?? DEFAULT_EVAL_CHUNKS;
  i.emit({ type: 'stage', stage: 'evaluate', message: `${basename(i.text)}, ctx ${ctxText}, up to ${chunks} chunks` });
  let result: EvalResult;
  try {
    result = await evaluateManifest(i.paths.manifest, {
      text: i.text,
      ctx: i.req.ctx,
      defaultCtx: DEFAULT_EVAL_CTX,
      chunks,
      threads: i.threads,
      backend: i.backend,
      sourceDir: i.sourceDir,
      signal: i.signal,
      onChunk: (done, total) =>
        i.emit({
          type: 'progress',
          stage: 'evaluate',
          name: `chunk ${done}/${total}`,
          bytesDone: done,
          bytesTotal: total,
        }),
    });
  } catch (e) {
    if (e instanceof EvalCancelled) throw cancelledError();
    if (!(e instanceof EvalInputError)) throw e;
    const message = e.message.replace(/--ctx\b/g, '--eval-ctx');
    record(i.report, i.paths, { error: message });
    throw new ConvertError(
      'invalid-input',
      `end-to-end check: ${message} (the conversion's outputs are kept; the report notes the failure)`,
    );
  }
  const section = endToEndSection(result, i.report.bits);
  record(i.report, i.paths, section);
  i.emit({
    type: 'log',
    level: section.pass ? 'info' : 'warn',
    message: `end to end: mean KLD ${section.kld_mean.toPrecision(3)}, same top ${(100 * section.same_top).toFixed(2)} %, PPL ${section.ppl.toFixed(2)} vs float ${section.ppl_float.toFixed(2)} (${section.tokens_scored} tokens)${section.pass ? '' : ' — over the thresholds'}`,
  });
  return i.report;
}
