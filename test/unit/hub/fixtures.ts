// Shared fixtures for the hub tests: a tiny sharded repo with files a conversion needs and files it must skip.
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tempDir as processTempDir } from '../../helpers/tmp';

/** Deterministic pseudo-random bytes (sha256 counter stream). */
export function bytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const h = createHash('sha256').update(`${seed}:${i}`).digest();
    off += h.copy(out, off);
  }
  return out;
}

export const TOKEN = 'hf_validTokenForTests';

export function shardedRepo(): Record<string, Buffer | string> {
  return {
    'config.json': JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: 64 }),
    'generation_config.json': '{"max_length": 32}',
    'tokenizer.json': '{"version": "1.0"}',
    'tokenizer_config.json': '{}',
    'special_tokens_map.json': '{}',
    'tokenizer.model': bytes(3000, 'spm'),
    'model.safetensors.index.json': JSON.stringify({
      metadata: { total_size: 0 },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    }),
    'model-00001-of-00002.safetensors': bytes(200_000, 'shard1'),
    'model-00002-of-00002.safetensors': bytes(120_000, 'shard2'),
    // Present in the repo, never needed:
    'consolidated.safetensors': bytes(5000, 'consolidated'),
    'pytorch_model.bin': bytes(4000, 'pickle'),
    'README.md': '# tiny',
    'onnx/model.onnx': bytes(100, 'onnx'),
  };
}

export const SHARDED_NEEDED = [
  'config.json',
  'generation_config.json',
  'model-00001-of-00002.safetensors',
  'model-00002-of-00002.safetensors',
  'model.safetensors.index.json',
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer.model',
  'tokenizer_config.json',
];

export function tempDir(prefix = 'apl-hub-'): { dir: string; cleanup: () => void } {
  const dir = processTempDir(prefix); // also removed at exit when a test fails before its cleanup
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
