// Evaluates a converted model (its manifest) against its float source over a text: loads both, checks the inputs
// (text, tokenizer against the model's vocabulary, source checkpoint), runs evaluate.ts and returns the result
// object `apl-quant eval --json` prints and `convert --eval` stores as the report's `end_to_end` section. Every bad
// input is a one-line EvalInputError naming the file (`usage` marks a bad option rather than a bad file).
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ForwardModel } from '../../../native/forward-types';
import { readRegularFileSync } from '../formats/source';
import type { EvalResult } from '../protocol';
import { RunError } from '../run/config';
import { createForward } from '../run/engine';
import { type LoadedModel, loadModel, readManifest, sourceCandidates } from '../run/load';
import { ChunkError, planChunks } from './chunks';
import { evaluateTokens } from './evaluate';

export class EvalInputError extends Error {
  constructor(
    message: string,
    /** A bad option (exit status 2) rather than a bad file. */
    readonly usage = false,
  ) {
    super(message);
    this.name = 'EvalInputError';
  }
}

export const DEFAULT_CTX = 512;

export { tokenizerIdCount } from '../formats/tokenizer-json';

export interface EvalOptions {
  text: string;
  ctx?: number;
  /** The ctx used when `ctx` is not given (capped at the model's context length). Default 512. */
  defaultCtx?: number;
  chunks?: number;
  threads?: number;
  backend?: 'auto' | 'cpu' | 'gpu';
  /** KV cache storage of both forwards (default f16). */
  kv?: 'f16' | 'f32';
  /** The float source checkpoint folder (default: the one the manifest names). */
  sourceDir?: string;
  onChunk?: (done: number, total: number) => void;
  /** Stops the evaluation after the chunk under way (EvalCancelled). */
  signal?: AbortSignal;
}

/** Reads the text file; a missing or unreadable file is one EvalInputError line. */
export function readText(file: string): Buffer {
  try {
    return readRegularFileSync(file);
  } catch (e) {
    throw new EvalInputError((e as Error).message);
  }
}

/** Loads both models, evaluates, and returns the result object. */
export async function evaluateManifest(manifestPath: string, o: EvalOptions): Promise<EvalResult> {
  try {
    return await evaluate(manifestPath, o);
  } catch (e) {
    if (e instanceof RunError) throw new EvalInputError(e.message);
    throw e;
  }
}

async function evaluate(manifestPath: string, o: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const textBytes = readText(o.text);
  const text = textBytes.toString('utf8');
  const path = resolve(manifestPath);
  const manifest = readManifest(path);
  // The float source is checked before anything heavy is loaded.
  const candidates = o.sourceDir ? [o.sourceDir] : sourceCandidates(path, manifest);
  if (!candidates.some((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory())) {
    throw new EvalInputError(
      `${manifestPath}: the float source checkpoint is missing (looked in ${candidates.join(', ') || 'nothing: the manifest names no model.source'}); eval compares against it`,
    );
  }
  const quant = await loadModel(path);
  const tok = quant.tokenizer;
  if (!tok) {
    throw new EvalInputError(
      `${manifestPath}: no tokenizer beside the manifest (metadata.tokenizer); convert keeps one when the checkpoint has it`,
    );
  }
  // loadModel checked the tokenizer's ids against the model's vocabulary.
  const V = quant.config.vocabSize;
  const tokens = tok.encode(text, true);
  const ctx = o.ctx ?? Math.min(o.defaultCtx ?? DEFAULT_CTX, quant.config.maxPositionEmbeddings);
  if (ctx > quant.config.maxPositionEmbeddings) {
    throw new EvalInputError(
      `--ctx ${ctx} exceeds the model's context length ${quant.config.maxPositionEmbeddings}`,
      true,
    );
  }
  try {
    planChunks(tokens.length, ctx, o.chunks);
  } catch (e) {
    if (e instanceof ChunkError) throw new EvalInputError(`${o.text}: ${e.message}`);
    throw e;
  }
  const bos = quant.config.bosTokenId ?? null;
  const bosId = bos !== null && tokens[0] === bos ? bos : null;
  let float: LoadedModel;
  try {
    // The text is tokenized once, with the quantized model's tokenizer (the same files): the float model needs none.
    float = await loadModel(path, { float: true, offline: true, sourceDir: o.sourceDir, tokenizer: false });
  } catch (e) {
    if (e instanceof RunError) throw new EvalInputError(`float source: ${e.message}`);
    throw e;
  }
  if (float.config.vocabSize !== V) {
    throw new EvalInputError(
      `${float.weightsFrom}: the float model's vocabulary (${float.config.vocabSize}) differs from ${V}`,
    );
  }
  const run = { contextLength: ctx, threads: o.threads, backend: o.backend, kvCache: o.kv };
  const models: ForwardModel[] = [];
  try {
    const qm = createForward(quant.config, quant.weights, run);
    models.push(qm);
    const fm = createForward(float.config, float.weights, run);
    models.push(fm);
    const { plan, summary } = await evaluateTokens(qm, fm, tokens, {
      ctx,
      maxChunks: o.chunks,
      bosId,
      vocab: V,
      onChunk: o.onChunk,
      signal: o.signal,
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
