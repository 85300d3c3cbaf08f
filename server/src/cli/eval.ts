// `apl-quant eval <manifest> --text FILE [--ctx N] [--chunks N] [--update-report] [--json | --json-progress]`:
// end-to-end accuracy of a converted model against its float source over a text, with llama.cpp's protocol
// (server/src/eval/chunks.ts) and statistics (server/src/eval/stats.ts). Both models run side by side, chunk by chunk
// (see eval/evaluate.ts); --update-report stores the figures in the conversion's report (eval/report-update.ts).
// The text is required: no default text suits every model, so the choice is the user's (the shipped test model's
// held-out text is test/fixtures/brown-tiny/heldout.txt).
import { resolve } from 'node:path';
import { ioError } from '../convert/errors';
import { EvalInputError, evaluateManifest } from '../eval/manifest';
import {
  endToEndSection,
  ReportUpdateError,
  readReportForUpdate,
  recordEndToEnd,
  withOutputsLock,
} from '../eval/report-update';
import type { EvalEvent, EvalResult } from '../protocol';
import { RunError } from '../run/config';
import { readManifest } from '../run/load';
import { CliError, parseArgs } from './common';

export { tokenizerIdCount } from '../eval/manifest';

const USAGE = `usage: apl-quant eval <manifest.json> --text FILE [--ctx N] [--chunks N] [--update-report]
                      [--json | --json-progress]

Runs the quantized model and its float source checkpoint (the local folder or Hugging Face cache snapshot the
manifest names) over a text and compares them with llama.cpp's protocol: the text is tokenized once and cut into
chunks of N tokens, BOS starts each chunk, and the second half of each chunk is scored.
  --text FILE    plain UTF-8 text to evaluate on (required)
  --ctx N        tokens per chunk (default 512, or the model's context length when shorter)
  --chunks N     evaluate at most N chunks (default: all full chunks of the text)
  --threads N    threads for the forward pass
  --backend B    auto | cpu | gpu (default auto)
  --kv f16|f32   KV cache storage of both models (default f16: half the memory; attention reads it in float32)
  --offline      never touch the network (eval reads local files only; the flag is accepted for symmetry)
  --update-report
                 store the figures in the conversion's accuracy report, as convert --eval does: its end_to_end
                 section, the overall verdict against the bit width's thresholds, the manifest's accuracy_pass
                 (each file rewritten atomically; the report is checked before the models run)
  --json         print one JSON object (ppl, ppl_float, kld_mean, kld_median, kld_p99, kld_max, same_top,
                 rms_dp, tokens_scored, …) instead of the table
  --json-progress
                 one JSON event per line on stdout: {"type":"progress","done":…,"total":…} per chunk, then
                 {"type":"result","result":{…as --json},"report":path or null,"pass":true/false or null}`;

function intFlag(flags: Map<string, string | true>, name: string): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw new CliError(`--${name} must be a positive integer (got ${v})`, 2);
  }
  return n;
}

const fmt = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const pct = (x: number, d = 3) => `${fmt(100 * x, d)} %`;

export function formatResult(r: EvalResult): string {
  const lines = [
    `model      ${r.manifest} (${r.bits ?? '?'} bits, ${r.backend}) vs float ${r.source} (${r.backend_float})`,
    `text       ${r.text}: ${r.text_tokens} tokens; ${r.chunks} of ${r.chunks_available} chunks of ${r.ctx}, ${r.tokens_scored} tokens scored`,
    `PPL        quantized ${fmt(r.ppl)} ± ${fmt(r.ppl_se)}   float ${fmt(r.ppl_float)} ± ${fmt(r.ppl_float_se)}`,
    `PPL ratio  ${fmt(r.ppl_ratio, 5)}   ln ratio ${fmt(r.ln_ppl_ratio, 5)} ± ${fmt(r.ln_ppl_ratio_se, 5)}`,
    `KLD        mean ${fmt(r.kld_mean, 6)} ± ${fmt(r.kld_se, 6)}   median ${fmt(r.kld_median, 6)}   90 % ${fmt(r.kld_p90, 6)}   99 % ${fmt(r.kld_p99, 6)}   99.9 % ${fmt(r.kld_p999, 6)}   max ${fmt(r.kld_max, 6)}`,
    `Δp         mean ${pct(r.dp_mean)} ± ${pct(r.dp_se)}   RMS ${pct(r.rms_dp)}`,
    `same top   ${pct(r.same_top)} ± ${pct(r.same_top_se)}`,
    `time       ${fmt(r.seconds, 1)} s`,
  ];
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(
    argv,
    ['text', 'ctx', 'chunks', 'threads', 'backend', 'kv'],
    ['json', 'json-progress', 'update-report', 'offline', 'help'],
  );
  if (flags.has('help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`expected one manifest file\n${USAGE}`, 2);
  const text = flags.get('text');
  if (typeof text !== 'string') throw new CliError('--text FILE is required (the text to evaluate on)', 2);
  const backend = flags.get('backend') ?? 'auto';
  if (backend !== 'auto' && backend !== 'cpu' && backend !== 'gpu') {
    throw new CliError(`--backend must be auto, cpu or gpu (got ${backend})`, 2);
  }
  const kv = flags.get('kv') ?? 'f16';
  if (kv !== 'f16' && kv !== 'f32') throw new CliError(`--kv must be f16 or f32 (got ${kv})`, 2);
  const json = flags.has('json');
  const events = flags.has('json-progress');
  if (json && events) throw new CliError('--json and --json-progress cannot be combined', 2);
  const emit = (e: EvalEvent) => process.stdout.write(`${JSON.stringify(e)}\n`);
  const tty = process.stderr.isTTY && !json && !events;
  const manifest = positionals[0];
  const evaluate = () =>
    evaluateManifest(manifest, {
      text,
      ctx: intFlag(flags, 'ctx'),
      chunks: intFlag(flags, 'chunks'),
      threads: intFlag(flags, 'threads'),
      backend,
      kv,
      onChunk: events
        ? (done, total) => emit({ type: 'progress', done, total })
        : tty
          ? (d, n) => process.stderr.write(`\rchunk ${d}/${n}${d === n ? '\n' : ''}`)
          : undefined,
    });
  try {
    let r: EvalResult;
    let stored: { path: string; pass: boolean } | undefined;
    if (flags.has('update-report')) {
      // Checked before the models run; the outputs' lock keeps a conversion from replacing them meanwhile.
      const m = readManifest(resolve(manifest));
      ({ r, stored } = await withOutputsLock(manifest, async () => {
        const { path, report } = readReportForUpdate(manifest, m);
        const r = await evaluate();
        recordEndToEnd(
          report,
          path,
          manifest,
          endToEndSection(r, report.bits),
          (e, what) => new ReportUpdateError(ioError(e, what).message),
        );
        return { r, stored: { path, pass: report.pass } };
      }));
    } else r = await evaluate();
    if (events) emit({ type: 'result', result: r, report: stored?.path ?? null, pass: stored?.pass ?? null });
    else if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      const verdict = stored
        ? `\nreport     ${stored.path}: end_to_end stored, verdict ${stored.pass ? 'PASS' : 'FAIL'}`
        : '';
      process.stdout.write(`${formatResult(r)}${verdict}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof RunError || e instanceof ReportUpdateError) throw new CliError(e.message);
    if (e instanceof EvalInputError) throw new CliError(e.message, e.usage ? 2 : 1);
    throw e;
  }
}
