// What a conversion fetches from a repository: config, generation config, tokenizer files and the safetensors
// weights (the index's shards when sharded); pickle weights are named in the refusal, never fetched.

import { oneLine } from '../formats/errors';
import { invalidRepoPath } from './cache';
import { HubError } from './errors';

export const CONFIG_FILES = ['config.json', 'generation_config.json'] as const;
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer.model',
  'tokenizer_config.json',
  'special_tokens_map.json',
] as const;
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
const PICKLE_RE = /\.(bin|pt|pth|ckpt|pkl)$/i;

export interface FileSelection {
  /** The files to fetch (before the index's shards are known). */
  files: string[];
  /** Present when the weights are sharded: the index to read for the shard names. */
  index?: string;
  /** Pickle weights seen (never loaded), for the refusal message. */
  pickle: string[];
}

/**
 * Picks what a conversion needs from a repository's top-level file names: config, generation config, tokenizer
 * files, and the safetensors weights (the index alone when there is one, its shards being added after reading it;
 * else model.safetensors; else every top-level *.safetensors). Files in sub-folders are never needed.
 */
export function selectFiles(paths: readonly string[]): FileSelection {
  const top = new Set(paths.filter((p) => !p.includes('/')));
  const files = [...CONFIG_FILES, ...TOKENIZER_FILES].filter((f) => top.has(f)) as string[];
  const pickle = [...top].filter((p) => PICKLE_RE.test(p)).sort();
  if (top.has(SAFETENSORS_INDEX)) return { files: [...files, SAFETENSORS_INDEX], index: SAFETENSORS_INDEX, pickle };
  if (top.has('model.safetensors')) return { files: [...files, 'model.safetensors'], pickle };
  const st = [...top].filter((p) => p.endsWith('.safetensors')).sort();
  return { files: [...files, ...st], pickle };
}

/** The shard names a `model.safetensors.index.json` lists, checked to be safe relative paths. */
export function shardsFromIndex(text: string, where: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HubError('unsupported', oneLine(`${where}: not valid JSON (${(e as Error).message})`));
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) {
    throw new HubError('unsupported', `${where}: has no "weight_map" object naming the safetensors shards`);
  }
  const shards = new Set<string>();
  for (const v of Object.values(map as Record<string, unknown>)) {
    if (typeof v !== 'string' || invalidRepoPath(v) || !v.endsWith('.safetensors')) {
      throw new HubError('unsupported', `${where}: weight_map names an invalid shard ${JSON.stringify(v)}`);
    }
    shards.add(v);
  }
  if (shards.size === 0) throw new HubError('unsupported', `${where}: weight_map is empty`);
  return [...shards].sort();
}

export function hasWeights(files: readonly string[]): boolean {
  return files.some((f) => f.endsWith('.safetensors') || f === SAFETENSORS_INDEX);
}

export function noWeightsError(repo: string, endpoint: string, revision: string, sel: FileSelection): HubError {
  if (sel.pickle.length > 0) {
    return new HubError(
      'unsupported',
      `${repo}@${revision} has only PyTorch pickle weights (${sel.pickle.slice(0, 4).join(', ')}${
        sel.pickle.length > 4 ? ', …' : ''
      }) and no *.safetensors. Pickle files are never loaded: unpickling can run arbitrary code. ` +
        'Use a revision or repository that has safetensors weights: many repositories have a safetensors ' +
        `conversion pull request (see ${endpoint}/${repo}/discussions), usable as --revision refs/pr/<N>; or convert ` +
        "it yourself with transformers' save_pretrained(..., safe_serialization=True).",
    );
  }
  return new HubError(
    'unsupported',
    `${repo}@${revision} has no *.safetensors weights at its top level; APL Quantizer converts safetensors checkpoints only.`,
  );
}
