// Model families: config.json → the manifest's model block. Supported: llama (TinyLlama, Llama 2), mistral, gemma.
// Anything else is the guide's "No quantized data extracted" case, reported with what was found and what is supported.
import type { ModelInfo } from '../formats/manifest';
import { ConvertError } from './errors';

export interface FamilySpec {
  family: string;
  modelTypes: string[];
  architectures: string[];
  /** tie_word_embeddings when config.json does not say (the transformers default for the family). */
  tiedByDefault: boolean;
  /** Default context length when config.json lacks max_position_embeddings. */
  defaultContext?: number;
}

export const FAMILIES: readonly FamilySpec[] = [
  { family: 'llama', modelTypes: ['llama'], architectures: ['LlamaForCausalLM'], tiedByDefault: false },
  { family: 'mistral', modelTypes: ['mistral'], architectures: ['MistralForCausalLM'], tiedByDefault: false },
  { family: 'gemma', modelTypes: ['gemma'], architectures: ['GemmaForCausalLM'], tiedByDefault: true },
];

export function supportedSummary(): string {
  return FAMILIES.map((f) => `${f.family} (${f.architectures.join(', ')})`).join(', ');
}

function num(cfg: Record<string, unknown>, key: string): number | undefined {
  const v = cfg[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * Reads a parsed config.json. `file` names it in errors. Throws ConvertError('unsupported') for an unknown
 * architecture and ConvertError('invalid-input') for a config that is not an object.
 */
export function modelInfoFromConfig(config: unknown, name: string, file = 'config.json'): ModelInfo {
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new ConvertError('invalid-input', `${file}: expected a JSON object`);
  }
  const cfg = config as Record<string, unknown>;
  const modelType = typeof cfg.model_type === 'string' ? cfg.model_type : undefined;
  const archs = Array.isArray(cfg.architectures) ? cfg.architectures.filter((a) => typeof a === 'string') : [];
  const spec =
    FAMILIES.find((f) => modelType !== undefined && f.modelTypes.includes(modelType)) ??
    FAMILIES.find((f) => archs.some((a) => f.architectures.includes(a)));
  if (!spec) {
    const found = [
      `model_type ${modelType === undefined ? '(missing)' : JSON.stringify(modelType)}`,
      `architectures ${archs.length ? archs.join(', ') : '(missing)'}`,
    ].join(', ');
    throw new ConvertError(
      'unsupported',
      `${file}: No quantized data extracted: architecture not recognized (found ${found}); supported: ${supportedSummary()}`,
    );
  }
  const hidden = num(cfg, 'hidden_size');
  const heads = num(cfg, 'num_attention_heads');
  const info: ModelInfo = {
    name,
    family: spec.family,
    architecture: archs[0] ?? spec.architectures[0],
    context_length: num(cfg, 'max_position_embeddings') ?? spec.defaultContext,
    hidden_dim: hidden,
    intermediate_size: num(cfg, 'intermediate_size'),
    num_layers: num(cfg, 'num_hidden_layers'),
    num_heads: heads,
    num_kv_heads: num(cfg, 'num_key_value_heads') ?? heads,
    vocab_size: num(cfg, 'vocab_size'),
    tie_word_embeddings: typeof cfg.tie_word_embeddings === 'boolean' ? cfg.tie_word_embeddings : spec.tiedByDefault,
  };
  for (const k of Object.keys(info) as (keyof ModelInfo)[]) if (info[k] === undefined) delete info[k];
  return info;
}

/** The transformer layer a tensor belongs to (`model.layers.7.mlp.up_proj.weight` → 7), or undefined. */
export function layerIndex(tensorName: string): number | undefined {
  const m = /(?:^|\.)layers\.(\d+)\./.exec(tensorName);
  return m ? Number(m[1]) : undefined;
}
