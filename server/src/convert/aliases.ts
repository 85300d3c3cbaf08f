// Model aliases: the short names the guide documents, with what the VS Code quick pick shows beside them.
// Sizes are the approximate download (safetensors, bf16) in bytes; `gated` repos need a Hugging Face token.

export interface ModelAlias {
  alias: string;
  repo: string;
  label: string;
  family: 'llama' | 'mistral' | 'gemma';
  /** Approximate download size in bytes (the safetensors files). */
  downloadBytes: number;
  /** The repo needs an accepted licence and a token. */
  gated: boolean;
}

const GB = 1e9;

export const MODEL_ALIASES: readonly ModelAlias[] = [
  {
    alias: 'tinyllama',
    repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    label: 'TinyLlama 1.1B Chat',
    family: 'llama',
    downloadBytes: 2.2 * GB,
    gated: false,
  },
  {
    alias: 'mistral-7b',
    repo: 'mistralai/Mistral-7B-v0.1',
    label: 'Mistral 7B',
    family: 'mistral',
    downloadBytes: 14.5 * GB,
    gated: false,
  },
  {
    alias: 'mistral-7b-instruct',
    repo: 'mistralai/Mistral-7B-Instruct-v0.2',
    label: 'Mistral 7B Instruct v0.2',
    family: 'mistral',
    downloadBytes: 14.5 * GB,
    gated: false,
  },
  {
    alias: 'gemma-2b',
    repo: 'google/gemma-2b',
    label: 'Gemma 2B',
    family: 'gemma',
    downloadBytes: 5.0 * GB,
    gated: true,
  },
  {
    alias: 'llama2-7b',
    repo: 'meta-llama/Llama-2-7b-hf',
    label: 'Llama 2 7B',
    family: 'llama',
    downloadBytes: 13.5 * GB,
    gated: true,
  },
];

/** The alias entry for a name (case-insensitive), or undefined. */
export function findAlias(name: string): ModelAlias | undefined {
  const n = name.trim().toLowerCase();
  return MODEL_ALIASES.find((a) => a.alias === n);
}

/** A Hub repo id: `owner/name`, each part of letters, digits, '-', '_' and '.', not starting with '.' or '-'. */
export function isRepoId(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/.test(s) && !s.includes('..');
}

/** A file-name-safe slug for output names: `TinyLlama/TinyLlama-1.1B-Chat-v1.0` → `tinyllama-1.1b-chat-v1.0`. */
export function slugify(s: string): string {
  const last =
    s
      .replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .pop() ?? s;
  const slug = last
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  return slug || 'model';
}
