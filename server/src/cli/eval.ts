// `apl-quant eval <manifest> --text FILE [--ctx N] [--chunks N] [--offline] [--json]`: end-to-end accuracy of a
// converted model against its float source over a text, with llama.cpp's protocol (server/src/eval/chunks.ts) and
// statistics (server/src/eval/stats.ts). Both models run side by side, chunk by chunk (see eval/evaluate.ts).
// The text is required: no default text suits every model, so the choice is the user's (the shipped test model's
// held-out text is test/fixtures/brown-tiny/heldout.txt).
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ForwardModel } from '../../../native/forward-types';
import { ChunkError, planChunks } from '../eval/chunks';
import { evaluateTokens } from '../eval/evaluate';
import type { EvalResult } from '../protocol';
import { RunError } from '../run/config';
import { createForward } from '../run/engine';
import { type LoadedModel, loadModel, readManifest, sourceCandidates } from '../run/load';
import { CliError, parseArgs } from './common';

const USAGE = `usage: apl-quant eval <manifest.json> --text FILE [--ctx N] [--chunks N] [--offline] [--json]

Runs the quantized model and its float source checkpoint (the local folder or Hugging Face cache snapshot the
manifest names) over a text and compares them with llama.cpp's protocol: the text is tokenized once and cut into
chunks of N tokens, BOS starts each chunk, and the second half of each chunk is scored.
  --text FILE    plain UTF-8 text to evaluate on (required)
  --ctx N        tokens per chunk (default 512, or the model's context length when shorter)
  --chunks N     evaluate at most N chunks (default: all full chunks of the text)
  --threads N    threads for the forward pass
  --backend B    auto | cpu | gpu (default auto)
  --offline      never touch the network (eval reads local files only; the flag is accepted for symmetry)
  --json         print one JSON object (ppl, ppl_float, kld_mean, kld_median, kld_p99, kld_max, same_top,
                 rms_dp, tokens_scored, …) instead of the table`;

const DEFAULT_CTX = 512;

function intFlag(flags: Map<string, string | true>, name: string): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw new CliError(`--${name} must be a positive integer (got ${v})`, 2);
  }
  return n;
}

/** The number of ids a tokenizer.json defines (its largest id + 1). */
export function tokenizerIdCount(json: unknown): number {
  const j = json as { model?: { vocab?: unknown }; added_tokens?: { id?: unknown }[] };
  let max = -1;
  const v = j?.model?.vocab;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const id of Object.values(v as Record<string, unknown>)) if (typeof id === 'number' && id > max) max = id;
  } else if (Array.isArray(v)) max = v.length - 1; // Unigram: [[piece, score], …]
  for (const t of j?.added_tokens ?? []) if (typeof t?.id === 'number' && t.id > max) max = t.id;
  return max + 1;
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

export interface EvalOptions {
  text: string;
  ctx?: number;
  chunks?: number;
  threads?: number;
  backend?: 'auto' | 'cpu' | 'gpu';
  onChunk?: (done: number, total: number) => void;
}

/** Loads both models, evaluates, and returns the result object; every bad input is a one-line CliError. */
export async function evaluateManifest(manifestPath: string, o: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  let textBytes: Buffer;
  try {
    if (!statSync(o.text).isFile()) throw new CliError(`${o.text}: not a file`);
    textBytes = readFileSync(o.text);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`${o.text}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const text = textBytes.toString('utf8');
  const path = resolve(manifestPath);
  const manifest = readManifest(path);
  // The float source is checked before anything heavy is loaded.
  const candidates = sourceCandidates(path, manifest);
  if (!candidates.some((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory())) {
    throw new CliError(
      `${manifestPath}: the float source checkpoint is missing (looked in ${candidates.join(', ') || 'nothing: the manifest names no model.source'}); eval compares against it`,
    );
  }
  const quant = await loadModel(path);
  const tok = quant.tokenizer;
  if (!tok) {
    throw new CliError(
      `${manifestPath}: no tokenizer beside the manifest (metadata.tokenizer); convert keeps one when the checkpoint has it`,
    );
  }
  const V = quant.config.vocabSize;
  const tokFile = join(dirname(path), String(manifest.metadata.tokenizer));
  const ids = tokenizerIdCount(JSON.parse(readFileSync(tokFile, 'utf8')));
  if (ids > V) {
    throw new CliError(
      `${tokFile}: the tokenizer defines ${ids} ids but the model's vocabulary has ${V}: they do not match`,
    );
  }
  const tokens = tok.encode(text, true);
  const ctx = o.ctx ?? Math.min(DEFAULT_CTX, quant.config.maxPositionEmbeddings);
  if (ctx > quant.config.maxPositionEmbeddings) {
    throw new CliError(`--ctx ${ctx} exceeds the model's context length ${quant.config.maxPositionEmbeddings}`, 2);
  }
  try {
    planChunks(tokens.length, ctx, o.chunks);
  } catch (e) {
    if (e instanceof ChunkError) throw new CliError(`${o.text}: ${e.message}`);
    throw e;
  }
  const bos = quant.config.bosTokenId ?? null;
  const bosId = bos !== null && tokens[0] === bos ? bos : null;
  let float: LoadedModel;
  try {
    float = await loadModel(path, { float: true, offline: true });
  } catch (e) {
    if (e instanceof RunError) throw new CliError(`float source: ${e.message}`);
    throw e;
  }
  if (float.config.vocabSize !== V) {
    throw new CliError(
      `${float.weightsFrom}: the float model's vocabulary (${float.config.vocabSize}) differs from ${V}`,
    );
  }
  const run = { contextLength: ctx, threads: o.threads, backend: o.backend };
  const models: ForwardModel[] = [];
  try {
    const qm = createForward(quant.config, quant.weights, run);
    models.push(qm);
    const fm = createForward(float.config, float.weights, run);
    models.push(fm);
    const { plan, summary } = evaluateTokens(qm, fm, tokens, {
      ctx,
      maxChunks: o.chunks,
      bosId,
      vocab: V,
      onChunk: o.onChunk,
    });
    return {
      ...summary,
      manifest: manifestPath,
      bits: manifest.metadata.default_bits ?? null,
      source: float.weightsFrom,
      text: o.text,
      text_sha256: createHash('sha256').update(textBytes).digest('hex'),
      text_tokens: tokens.length,
      ctx,
      chunks: plan.chunks,
      chunks_available: plan.available,
      backend: qm.backend,
      backend_float: fm.backend,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    for (const m of models) m.dispose();
  }
}

export async function run(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(
    argv,
    ['text', 'ctx', 'chunks', 'threads', 'backend'],
    ['json', 'offline', 'help'],
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
  const json = flags.has('json');
  const tty = process.stderr.isTTY && !json;
  try {
    const r = await evaluateManifest(positionals[0], {
      text,
      ctx: intFlag(flags, 'ctx'),
      chunks: intFlag(flags, 'chunks'),
      threads: intFlag(flags, 'threads'),
      backend,
      onChunk: tty ? (d, n) => process.stderr.write(`\rchunk ${d}/${n}${d === n ? '\n' : ''}`) : undefined,
    });
    process.stdout.write(json ? `${JSON.stringify(r)}\n` : `${formatResult(r)}\n`);
    return 0;
  } catch (e) {
    if (e instanceof RunError) throw new CliError(e.message);
    throw e;
  }
}
