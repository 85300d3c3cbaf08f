// llama.cpp's perplexity protocol (tools/perplexity/perplexity.cpp), the part that decides which tokens are scored:
// the text is tokenized once (with BOS when the vocabulary adds one), cut into floor(n / ctx) chunks of ctx tokens
// (the tail is dropped), the first token of every chunk is replaced by BOS, and only the second half is scored:
// logits at positions first .. ctx-2 (first = ctx/2) predict the tokens at first+1 .. ctx-1, so each chunk scores
// ctx - 1 - first tokens and every scored token has at least ctx/2 tokens of context.

export interface ChunkPlan {
  ctx: number;
  /** Chunks evaluated (the text's full chunks, or fewer when capped). */
  chunks: number;
  /** Full chunks the text holds. */
  available: number;
  /** First position whose logits are scored (ctx / 2). */
  first: number;
  scoredPerChunk: number;
  tokensScored: number;
}

export class ChunkError extends Error {}

/** The chunks of a text of `nTokens` tokens; throws a one-line ChunkError when it holds no full chunk. */
export function planChunks(nTokens: number, ctx: number, maxChunks?: number): ChunkPlan {
  if (!Number.isInteger(ctx) || ctx < 4 || ctx % 2 !== 0) {
    throw new ChunkError(`ctx must be an even integer of at least 4 (got ${ctx})`);
  }
  if (maxChunks !== undefined && (!Number.isInteger(maxChunks) || maxChunks < 1)) {
    throw new ChunkError(`chunks must be a positive integer (got ${maxChunks})`);
  }
  const available = Math.floor(nTokens / ctx);
  if (available < 1) {
    throw new ChunkError(
      `the text is ${nTokens} token${nTokens === 1 ? '' : 's'}, shorter than one chunk of ${ctx} (use a longer text or a smaller --ctx)`,
    );
  }
  const chunks = maxChunks === undefined ? available : Math.min(available, maxChunks);
  const first = ctx / 2;
  const scoredPerChunk = ctx - 1 - first;
  return { ctx, chunks, available, first, scoredPerChunk, tokensScored: chunks * scoredPerChunk };
}

/** Chunk `index`'s tokens, its first replaced by `bosId` when the vocabulary has one (null: kept as is). */
export function chunkTokens(
  tokens: ArrayLike<number>,
  plan: ChunkPlan,
  index: number,
  bosId: number | null,
): Int32Array {
  if (index < 0 || index >= plan.chunks) throw new RangeError(`chunk ${index} of ${plan.chunks}`);
  const out = new Int32Array(plan.ctx);
  const start = index * plan.ctx;
  for (let i = 0; i < plan.ctx; i++) out[i] = tokens[start + i];
  if (bosId !== null) out[0] = bosId;
  return out;
}
