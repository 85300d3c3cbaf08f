// The inference interface (INFER-API.md): the types shared by the native forward pass (native/forward.ts), the
// TypeScript reference forward (native/forward-reference.ts) and the model loader (server/src/run/load.ts).
// `native/` imports nothing above it.

/** One linear weight as stored in the NPZ: packed codes, not dequantized. y = x · Ŵᵀ, Ŵ[r, c] = (q − zero) · scale. */
export interface PackedWeight {
  kind: 'packed';
  rows: number; // out features
  cols: number; // in features
  bits: 1 | 2 | 4 | 8;
  groupSize: number; // elements of a row per scale/zero; equals cols for the per-row layout
  q: Uint8Array; // rows * ceil(cols * bits / 8) bytes, first value in the lowest bits, rows byte-padded
  scales: Uint8Array; // rows * ceil(cols / groupSize) little-endian values of scaleDtype
  zeros: Uint8Array; // same layout as scales
  scaleDtype: 'f16' | 'f32';
}
/** A float weight (source checkpoint or a tensor kept as float), row-major [rows, cols]. */
export interface FloatWeight {
  kind: 'float';
  rows: number;
  cols: number;
  dtype: 'f32' | 'f16' | 'bf16';
  data: Uint8Array; // little-endian
}
/**
 * A two-level-scale weight (quantization type kquant, docs/FORMAT.md): Ŵ[r, c] = d·sc·q − dmin·mc, the group codes
 * under one float16 pair (d, dmin) per super-block. Arrays as native/kquant.ts's KqQuantized.
 */
export interface KquantWeight {
  kind: 'kquant';
  rows: number;
  cols: number;
  bits: 2 | 4 | 8;
  group: number;
  super: number;
  scaleBits: number;
  minBits: number;
  q: Uint8Array; // rows * ceil(cols * bits / 8), first value in the lowest bits
  codes: Uint8Array; // rows * ceil(groups * (scaleBits + minBits) / 8): a little-endian bit stream per row
  d: Uint8Array; // rows * supers float16, little-endian
  dmin: Uint8Array; // same layout as d
}
export type LinearWeight = PackedWeight | FloatWeight | KquantWeight;

export type Family = 'llama' | 'mistral' | 'gemma';
export interface ModelConfig {
  family: Family;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: { type: 'linear' | 'dynamic' | 'llama3' | string; factor: number; [k: string]: unknown } | null;
  slidingWindow?: number | null; // mistral v0.1: attend only to the last `slidingWindow` positions
  hiddenAct: 'silu' | 'gelu_tanh';
  embedScale: boolean; // gemma: embeddings × sqrt(hiddenSize)
  normAddOne: boolean; // gemma: RMSNorm x̂ · (1 + w)
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  bosTokenId?: number | null;
  eosTokenId?: number | number[] | null;
}
export interface LayerWeights {
  inputNorm: Float32Array; // [hidden]
  q: LinearWeight;
  k: LinearWeight;
  v: LinearWeight;
  o: LinearWeight;
  postAttnNorm: Float32Array; // [hidden]
  gate: LinearWeight;
  up: LinearWeight;
  down: LinearWeight;
}
export interface ModelWeights {
  embed: LinearWeight; // [vocab, hidden]; a token's row is dequantized on lookup
  layers: LayerWeights[];
  finalNorm: Float32Array; // [hidden]
  lmHead: LinearWeight; // === embed when tied
}
export interface RunOptions {
  contextLength: number;
  threads?: number;
  /** 'gpu': CUDA (an error naming why when no GPU is usable); 'auto': the GPU when usable, else the CPU; 'cpu' or
   *  omitted: the CPU. */
  backend?: 'auto' | 'cpu' | 'gpu';
  /** The native forward's KV cache: float16 (default; attention reads it in float32) or float32. The TypeScript
   *  reference keeps float32. */
  kvCache?: 'f16' | 'f32';
  /** On the GPU, a prompt is run in pieces of at most this many tokens (default GPU_PREFILL_CHUNK, 512): the device's
   *  scratch, the attention scores above all (tokens × heads × context floats), grows with the tokens of one call.
   *  The logits are the same bit for bit (every kernel computes each token alone). */
  prefillChunk?: number;
}
/** A loaded model with its own KV cache. */
export interface ForwardModel {
  /** Runs `tokens` at positions pos..pos+n-1 (appending to the KV cache) and returns logits:
   *  [n, vocab] float32 when allLogits, else [vocab] for the last token only. */
  forward(tokens: ArrayLike<number>, pos: number, allLogits: boolean): Float32Array;
  /** Drop the KV cache (next forward starts at pos 0). */
  reset(): void;
  /** What runs: 'cpu-avx2', 'cpu-avx512', 'cuda:<name>', 'ts-reference', … */
  readonly backend: string;
  /** Bytes held by the KV cache (the native forward; absent on the TypeScript reference). */
  readonly kvBytes?: number;
  dispose(): void;
}
