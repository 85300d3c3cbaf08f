// apl-quant convert: quantize a model (alias, Hub repo id or local folder) to NPZ + manifest + accuracy report.

import { errorCode } from '../convert/errors';
import { type ConvertHooks, parseTolerances } from '../convert/options';
import { type ConvertOptions, convertModel } from '../convert/pipeline';
import { oneLine } from '../formats/errors';
import {
  BIT_WIDTHS_TEXT,
  type BitWidth,
  isBitWidth,
  QUANT_FORMATS,
  type QuantFormat,
  type RoundingMode,
} from '../formats/manifest';
import { BACKENDS, type ConvertEvent } from '../protocol';
import { formatSummary } from '../report/summary';
import { CliError, parseArgs } from './common';

const HELP = `usage: apl-quant convert <alias | repo-id | local-folder> --bits 1|2|4|8 [options]

Quantizes every tensor of a Hugging Face checkpoint (safetensors) and writes, in --out:
  <name>_quantized_q<bits>.npz   packed weights, scales and zero points (plain numpy archive)
  <name>_manifest_q<bits>.json   the manifest describing them (format_version "2")
  <name>_accuracy_q<bits>.json   the accuracy report (per weight and per layer, pass/fail vs tolerance)

aliases: tinyllama, mistral-7b, mistral-7b-instruct, gemma-2b (gated), llama2-7b (gated)

options:
  --bits B              1, 2, 4 or 8 (default 4)
  --group-size N|row    elements per scale group along a row, or one group per row (default 64)
  --symmetric           zero point fixed at 2^(bits-1)
  --asymmetric          a free zero point per group (default)
  --mode minmax|optimized  rounding: plain min/max, or the error-minimising search (default optimized)
  --embeddings-bits B   bits for embed_tokens and lm_head (default 8)
  --scale-dtype f16|f32 dtype of scales and zero points (default f16)
  --format groupwise|kquant  kquant: two-level scales (integer codes under float16 super-scales), 2 and 4 bits
                        (the default there); groupwise: a float16 scale and zero point per group (the default at
                        1 and 8 bits and with --group-size, --symmetric or --scale-dtype f32); see docs/FORMAT.md
  --tolerance B=V,...   relative-error tolerance per bit width (default 1=0.5,2=0.2,4=0.1,8=0.02)
  --out DIR             output folder (default models)
  --name NAME           output name (default: the alias, or a slug of the repo id or folder)
  --backend auto|cpu|gpu  quantization engine (default auto)
  --threads T           CPU threads (default: all cores)
  --revision R          Hub branch, tag or commit (default main)
  --token T             Hugging Face token (default HF_TOKEN, then the huggingface-cli login token file)
  --offline             use the Hugging Face cache only, no network
  --force               replace an existing result
  --strict              exit with status 3 when the accuracy check fails
  --eval                after converting, run the quantized model beside the float checkpoint over a text
                        (llama.cpp's KLD protocol, as apl-quant eval) and add the figures (KLD, same top, PPL)
                        to the report's end_to_end section and its verdict; a failed evaluation keeps the outputs,
                        is noted in the report and exits 1
  --eval-text FILE      the text (default: heldout.txt in the model folder, if it ships one)
  --eval-ctx N          tokens per chunk (default 256, or the model's context when shorter)
  --eval-chunks N       chunks to score (default 16: a quick check; the report says ctx and chunks)
  --json-progress       one JSON event per line on stdout (for the VS Code task)
  -h, --help            this text`;

const VALUED = [
  'bits',
  'group-size',
  'mode',
  'embeddings-bits',
  'scale-dtype',
  'format',
  'tolerance',
  'out',
  'name',
  'backend',
  'threads',
  'revision',
  'token',
  'eval-text',
  'eval-ctx',
  'eval-chunks',
];
const BOOLEAN = ['symmetric', 'asymmetric', 'offline', 'force', 'strict', 'eval', 'json-progress', 'help'];

function bitsArg(v: string | true | undefined, flag: string, dflt: BitWidth): BitWidth {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!isBitWidth(n)) throw new CliError(`--${flag} must be ${BIT_WIDTHS_TEXT} (got ${v})`, 2);
  return n;
}

/** Parses the command line into ConvertOptions (exported for tests). */
export function parseConvertArgs(argv: string[]): { opts: ConvertOptions; json: boolean; strict: boolean } | 'help' {
  if (argv.includes('-h')) return 'help';
  const { positionals, flags } = parseArgs(argv, VALUED, [...VALUED, ...BOOLEAN]);
  if (flags.has('help')) return 'help';
  if (positionals.length !== 1) {
    throw new CliError(
      positionals.length ? `expected one model, got ${positionals.join(' ')}` : 'which model? (see --help)',
      2,
    );
  }
  const str = (k: string) => {
    const v = flags.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  if (flags.has('symmetric') && flags.has('asymmetric')) throw new CliError('--symmetric and --asymmetric conflict', 2);
  const gs = str('group-size');
  let groupSize: number | 'row' | undefined;
  if (gs !== undefined) {
    if (gs === 'row') groupSize = 'row';
    else if (/^\d+$/.test(gs) && Number(gs) >= 1) groupSize = Number(gs);
    else throw new CliError(`--group-size must be a positive integer or 'row' (got ${gs})`, 2);
  }
  const mode = str('mode');
  if (mode !== undefined && mode !== 'minmax' && mode !== 'optimized') {
    throw new CliError(`--mode must be minmax or optimized (got ${mode})`, 2);
  }
  const scaleDtype = str('scale-dtype');
  if (scaleDtype !== undefined && scaleDtype !== 'f16' && scaleDtype !== 'f32') {
    throw new CliError(`--scale-dtype must be f16 or f32 (got ${scaleDtype})`, 2);
  }
  const format = str('format');
  if (format !== undefined && !(QUANT_FORMATS as readonly string[]).includes(format)) {
    throw new CliError(`--format must be ${QUANT_FORMATS.join(' or ')} (got ${format})`, 2);
  }
  const backend = str('backend');
  if (backend !== undefined && !(BACKENDS as readonly string[]).includes(backend)) {
    throw new CliError(`--backend must be ${BACKENDS.join(', ').replace(/, (?=[^,]*$)/, ' or ')} (got ${backend})`, 2);
  }
  const th = str('threads');
  if (th !== undefined && !(/^\d+$/.test(th) && Number(th) >= 1)) {
    throw new CliError(`--threads must be a positive integer (got ${th})`, 2);
  }
  let tolerance: ConvertOptions['tolerance'];
  try {
    tolerance = parseTolerances(str('tolerance'));
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  const evalInt = (k: string) => {
    const v = str(k);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`--${k} must be a positive integer (got ${v})`, 2);
    return Number(v);
  };
  const evalText = str('eval-text');
  const evalCtx = evalInt('eval-ctx');
  const evalChunks = evalInt('eval-chunks');
  if (!flags.has('eval') && (evalText !== undefined || evalCtx !== undefined || evalChunks !== undefined)) {
    throw new CliError('--eval-text, --eval-ctx and --eval-chunks need --eval', 2);
  }
  const opts: ConvertOptions = {
    source: positionals[0],
    bits: bitsArg(flags.get('bits'), 'bits', 4),
    groupSize,
    symmetric: flags.has('symmetric'),
    mode: mode as RoundingMode | undefined,
    embeddingsBits: bitsArg(flags.get('embeddings-bits'), 'embeddings-bits', 8),
    scaleDtype: scaleDtype as ConvertOptions['scaleDtype'],
    format: format as QuantFormat | undefined,
    tolerance,
    outDir: str('out'),
    name: str('name'),
    backend: backend as ConvertOptions['backend'],
    threads: th === undefined ? undefined : Number(th),
    revision: str('revision'),
    token: str('token'),
    offline: flags.has('offline') || undefined,
    force: flags.has('force'),
    eval: flags.has('eval') ? { text: evalText, ctx: evalCtx, chunks: evalChunks } : undefined,
  };
  if (opts.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(opts.name)) {
    throw new CliError(`--name may hold letters, digits, '.', '_' and '-' only (got ${opts.name})`, 2);
  }
  return { opts, json: flags.has('json-progress'), strict: flags.has('strict') };
}

/** A one-line progress bar on a terminal; plain stage lines otherwise. */
function humanReporter(tty: boolean) {
  let last = 0;
  let lastStage = '';
  let drawn = false;
  const clear = () => {
    if (drawn) process.stderr.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    event(e: ConvertEvent) {
      if (e.type === 'stage') {
        clear();
        if (e.stage !== 'done') process.stderr.write(`${e.stage}${e.message ? `: ${e.message}` : ''}\n`);
        lastStage = e.stage;
      } else if (e.type === 'log') {
        clear();
        process.stderr.write(`${e.level}: ${e.message}\n`);
      } else if (e.type === 'progress' && tty) {
        const now = Date.now();
        if (now - last < 100 && e.bytesDone < e.bytesTotal) return;
        last = now;
        const frac = e.bytesTotal > 0 ? Math.min(1, e.bytesDone / e.bytesTotal) : 0;
        const width = 30;
        const fill = Math.round(frac * width);
        const count = e.tensor !== undefined && e.tensors ? ` ${e.tensor + 1}/${e.tensors}` : '';
        const cols = process.stderr.columns || 100;
        const line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${e.stage || lastStage}${count} ${e.name ?? ''}`;
        process.stderr.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
        drawn = true;
      }
    },
    done: clear,
  };
}

/**
 * Multi-line messages (the hub's "how to authenticate" help) folded into the one line the CLI prints; any other
 * control character left (a carriage return in a name the user typed) is escaped.
 */
export function foldLines(message: string): string {
  const lines = message
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  let out = lines[0] ?? '';
  for (let i = 1; i < lines.length; i++) out += /[:.]$/.test(out) ? ` ${lines[i]}` : `; ${lines[i]}`;
  return oneLine(out);
}

/** `hooks`: the converter's test seam (ConvertHooks), passed through; the command line never sets it. */
export async function run(argv: string[], hooks?: ConvertHooks): Promise<number> {
  const parsed = parseConvertArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const { json, strict } = parsed;
  const opts = hooks ? { ...parsed.opts, hooks } : parsed.opts;
  const human = json ? undefined : humanReporter(Boolean(process.stderr.isTTY));
  const emit = (e: ConvertEvent) => {
    if (json) process.stdout.write(`${JSON.stringify(e)}\n`);
    else human?.event(e);
  };
  const ac = new AbortController();
  let signals = 0;
  // A signal cancels through `ac` in every stage. During the end-to-end stage (after the commit) the evaluation stops
  // after its chunk under way: the committed outputs and their report stay as they were, the lock is released, and
  // the status is 130 (cancelled). A second signal ends the process at once.
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    emit({ type: 'log', level: 'warn', message: `${sig}: cancelling, removing temporary files` });
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await convertModel(opts, emit, ac.signal);
    human?.done();
    if (!json) process.stdout.write(`${formatSummary(r.accuracy, r)}\n`);
    return strict && !r.pass ? 3 : 0;
  } catch (e) {
    human?.done();
    const code = ac.signal.aborted ? 'cancelled' : errorCode(e);
    const message = (e as Error)?.message ?? String(e);
    if (json) emit({ type: 'error', code, message });
    if (code === 'internal' && process.env.APL_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    throw new CliError(foldLines(message), code === 'cancelled' ? 130 : 1);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
