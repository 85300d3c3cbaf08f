// Runs the quantized model and its float base side by side, chunk by chunk, over one tokenized text and gathers the
// statistics (see chunks.ts for the protocol, stats.ts for the figures).
//
// Memory: both models are loaded at once and only one chunk's logits of each are alive ([ctx/2, vocab] float32
// each, 65 MB for a 32,000-token vocabulary at ctx 512), plus 8 bytes per scored token. Nothing proportional to
// text × vocabulary is stored. The price is the float model's weights next to the quantized ones (a 7B model:
// ~13.5 GB bf16 + 3.8 GB at 4 bits, ~20.5 GB at 8 bits, under 24 GB) and re-running the float pass for every
// quantized model evaluated; llama.cpp's alternative (`--kl-divergence-base`: the float log-probabilities stored
// once as uint16 per vocabulary entry) needs only one model in memory but ~2 bytes × vocab per scored token on disk
// (10 GB for Wikitext-2 with a 32,000-token vocabulary) and adds its own ~0.0005 KLD of storage noise.
import type { EvalSummary } from '../protocol';
import { type ChunkPlan, chunkTokens, planChunks } from './chunks';
import { EvalAccumulator } from './stats';

/** What evaluation needs of a model: native/forward-types.ts's ForwardModel satisfies it. */
export interface LogitsModel {
  forward(tokens: ArrayLike<number>, pos: number, allLogits: boolean): Float32Array;
  reset(): void;
}

export interface EvaluateOptions {
  ctx: number;
  /** Evaluate at most this many chunks (default: every full chunk of the text). */
  maxChunks?: number;
  /** BOS id that replaces each chunk's first token; null when the vocabulary adds none. */
  bosId: number | null;
  vocab: number;
  /** Called after each chunk with the chunks done and the total. */
  onChunk?: (done: number, total: number) => void;
  /** Checked after each chunk: once aborted, the evaluation stops with EvalCancelled. */
  signal?: AbortSignal;
}

/** The evaluation was stopped through its signal. */
export class EvalCancelled extends Error {
  constructor() {
    super('the evaluation was cancelled');
    this.name = 'EvalCancelled';
  }
}

export interface EvaluateResult {
  plan: ChunkPlan;
  summary: EvalSummary;
}

/** The logits of the second half of a chunk: rows for positions first .. ctx-1 ([ctx - first, vocab]). */
function secondHalfLogits(m: LogitsModel, chunk: Int32Array, first: number, vocab: number): Float32Array {
  m.reset();
  m.forward(chunk.subarray(0, first), 0, false);
  const rows = chunk.length - first;
  const out = m.forward(chunk.subarray(first), first, true);
  if (out.length !== rows * vocab) {
    throw new Error(`the model returned ${out.length} logits for ${rows} positions of a ${vocab}-token vocabulary`);
  }
  return out.slice();
}

/**
 * Evaluates `quant` against `base` (the float model) over `tokens` (the whole text, tokenized once). The two may be
 * the same object (the float model against itself): each chunk runs one model to the end before the other starts.
 * The event loop gets a turn after each chunk (the forward passes are synchronous), so that signal handlers (Ctrl+C,
 * Cancel) and progress output run while a long text is evaluated.
 */
export async function evaluateTokens(
  quant: LogitsModel,
  base: LogitsModel,
  tokens: ArrayLike<number>,
  opts: EvaluateOptions,
): Promise<EvaluateResult> {
  const plan = planChunks(tokens.length, opts.ctx, opts.maxChunks);
  const acc = new EvalAccumulator();
  const { first, ctx } = plan;
  const V = opts.vocab;
  for (let c = 0; c < plan.chunks; c++) {
    const chunk = chunkTokens(tokens, plan, c, opts.bosId);
    for (const t of chunk) {
      if (t < 0 || t >= V) throw new RangeError(`token id ${t} is outside the model's vocabulary of ${V}`);
    }
    const lb = secondHalfLogits(base, chunk, first, V);
    const lq = secondHalfLogits(quant, chunk, first, V);
    // Row r holds the logits at position first + r, which predict the token at first + r + 1.
    for (let r = 0; r < ctx - 1 - first; r++) acc.addRow(lb, lq, chunk[first + r + 1], V, r);
    opts.onChunk?.(c + 1, plan.chunks);
    await new Promise<void>((r) => setImmediate(r));
    if (opts.signal?.aborted) throw new EvalCancelled();
  }
  return { plan, summary: acc.summary() };
}
