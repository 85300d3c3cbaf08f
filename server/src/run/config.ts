// The manifest's model block → the forward pass's ModelConfig (native/forward-types.ts). The family decides what
// config.json does not spell out: gemma scales the embeddings by √hidden, adds one to its norm weights, uses the tanh
// GELU and ties the head.
import type { Family, ModelConfig } from '../../../native/forward-types';
import type { ModelInfo } from '../formats/manifest';

export const FAMILIES: readonly Family[] = ['llama', 'mistral', 'gemma'];

/** A bad model or input, reported as one line naming the file (the CLI prints it and exits 1). */
export class RunError extends Error {}

const SILU = new Set(['silu', 'swish']);
const GELU_TANH = new Set(['gelu_pytorch_tanh', 'gelu_new', 'gelu_fast', 'gelu_tanh']);

/** Reads a manifest's model block (or a config.json turned into one); `file` names it in errors. */
export function modelConfigFromManifest(m: ModelInfo, file: string): ModelConfig {
  const family = m.family as Family;
  if (!FAMILIES.includes(family)) {
    throw new RunError(
      `${file}: model family '${m.family}' is not one the forward pass knows (${FAMILIES.join(', ')})`,
    );
  }
  const need = (k: keyof ModelInfo): number => {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new RunError(`${file}: model.${k} is missing or not a positive integer; it is needed to run the model`);
    }
    return v;
  };
  /** An optional positive number: absent (or null) gives `dflt`. */
  const positive = (k: 'rms_norm_eps' | 'rope_theta', dflt: number): number => {
    const v: unknown = m[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new RunError(`${file}: model.${k} must be a positive number (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  const sw: unknown = m.sliding_window;
  if (sw !== undefined && sw !== null && !(typeof sw === 'number' && Number.isInteger(sw) && sw >= 1)) {
    throw new RunError(`${file}: model.sliding_window must be a positive integer or null (got ${JSON.stringify(sw)})`);
  }
  const hiddenSize = need('hidden_dim');
  const numHeads = need('num_heads');
  const numKvHeads = typeof m.num_kv_heads === 'number' ? need('num_kv_heads') : numHeads;
  const headDim = typeof m.head_dim === 'number' ? need('head_dim') : hiddenSize / numHeads;
  if (!Number.isInteger(headDim)) throw new RunError(`${file}: hidden_dim ${hiddenSize} / num_heads ${numHeads}`);
  const gemma = family === 'gemma';
  const actName = gemma ? 'gelu_pytorch_tanh' : (m.hidden_act ?? 'silu');
  let hiddenAct: ModelConfig['hiddenAct'];
  if (SILU.has(actName)) hiddenAct = 'silu';
  else if (GELU_TANH.has(actName)) hiddenAct = 'gelu_tanh';
  else throw new RunError(`${file}: activation '${actName}' is not supported (silu, gelu_pytorch_tanh)`);
  const rs = m.rope_scaling;
  let ropeScaling: ModelConfig['ropeScaling'] = null;
  if (rs && typeof rs === 'object') {
    const type = String(rs.type ?? rs.rope_type ?? '');
    if (type && type !== 'default') {
      if (type !== 'linear' && type !== 'llama3') {
        throw new RunError(`${file}: rope_scaling type '${type}' is not supported (linear, llama3)`);
      }
      const factor = Number(rs.factor);
      if (!(factor > 0)) throw new RunError(`${file}: rope_scaling.factor must be a positive number`);
      ropeScaling = { ...rs, type, factor };
    }
  }
  return {
    family,
    hiddenSize,
    intermediateSize: need('intermediate_size'),
    numLayers: need('num_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: need('vocab_size'),
    rmsNormEps: positive('rms_norm_eps', 1e-6),
    ropeTheta: positive('rope_theta', 10000),
    ropeScaling,
    slidingWindow: sw === undefined ? (family === 'mistral' ? 4096 : null) : ((sw as number | null) ?? null),
    hiddenAct,
    embedScale: gemma,
    normAddOne: gemma,
    tieWordEmbeddings: m.tie_word_embeddings ?? gemma,
    maxPositionEmbeddings: need('context_length'),
    bosTokenId: m.bos_token_id ?? null,
    eosTokenId: m.eos_token_id ?? null,
  };
}
