// "APL: Evaluate Model…" without `vscode` (unit-tested under plain node): which text to evaluate on, the CLI's
// arguments, its event lines, and the sentence that reports the result.
import { basename, join } from 'node:path';
import { DEFAULT_EVAL_CHUNKS, DEFAULT_EVAL_CTX, HELDOUT_TEXT } from '../../../server/src/eval/defaults';
import type { Backend, EvalEvent } from '../../../server/src/protocol';

/** What the command may be given after the target (the integration tests and other extensions pass it). */
export interface EvaluateRequest {
  /** The text file (default: the setting apl.convert.evalText, else the source folder's heldout.txt, else ask). */
  text?: string;
  ctx?: number;
  chunks?: number;
}

/**
 * The text to evaluate on without asking: the request's, else the setting's (already expanded), else the first
 * source folder that ships a heldout.txt; undefined when none applies (the command then asks for a file).
 */
export function textFor(
  request: EvaluateRequest | undefined,
  setting: string | undefined,
  sourceDirs: readonly string[],
  exists: (p: string) => boolean,
): string | undefined {
  if (request?.text) return request.text;
  if (setting?.trim()) return setting.trim();
  return sourceDirs.map((d) => join(d, HELDOUT_TEXT)).find(exists);
}

/** The CLI's arguments (after the script): the quick check convert --eval runs, stored in the report. */
export function evalArgs(
  cli: string,
  manifest: string,
  text: string,
  backend: Backend,
  request?: EvaluateRequest,
): string[] {
  return [
    cli,
    'eval',
    manifest,
    '--text',
    text,
    '--ctx',
    String(request?.ctx ?? DEFAULT_EVAL_CTX),
    '--chunks',
    String(request?.chunks ?? DEFAULT_EVAL_CHUNKS),
    '--backend',
    backend,
    '--update-report',
    '--json-progress',
  ];
}

/** One stdout line of `eval --json-progress` as an event; undefined for anything else. */
export function parseEvalLine(line: string): EvalEvent | undefined {
  const t = line.trim();
  if (!t.startsWith('{')) return undefined;
  try {
    const e = JSON.parse(t) as EvalEvent;
    if (e?.type === 'progress' && Number.isFinite(e.done) && Number.isFinite(e.total) && e.total > 0) return e;
    if (e?.type === 'result' && e.result && typeof e.result === 'object') return e;
  } catch {}
  return undefined;
}

/** The notification's sentence for a finished evaluation. */
export function describeEvalResult(e: Extract<EvalEvent, { type: 'result' }>): string {
  const r = e.result;
  const figures = `mean KLD ${r.kld_mean.toPrecision(3)}, same top ${(100 * r.same_top).toFixed(2)} %, PPL ${r.ppl.toFixed(2)} vs float ${r.ppl_float.toFixed(2)} (${r.tokens_scored} tokens)`;
  const verdict = e.pass === null ? '' : e.pass ? '; accuracy PASS' : '; accuracy FAIL';
  return `${basename(r.manifest)} end to end: ${figures}${verdict}.`;
}
