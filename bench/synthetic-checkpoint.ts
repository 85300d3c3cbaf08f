// A synthetic checkpoint with TinyLlama's shapes (hidden 2048, intermediate 5632, 32 heads, 4 KV heads, vocab
// 32000, bf16; 22 layers ≈ 2.2 GB), deterministic: the same bytes every time. Used by the convert benchmark and by
// scripts/output-hashes.ts (the byte-identity check for refactors).
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** A model's shape; TinyLlama's by default. */
export interface Shape {
  hidden: number;
  inter: number;
  heads: number;
  kvHeads: number;
}
export const TINYLLAMA: Shape = { hidden: 2048, inter: 5632, heads: 32, kvHeads: 4 };
/** Llama 2 7B's layer shapes (with 2 layers: a 1.3 GB checkpoint whose tensors are a 7B model's). */
export const LLAMA2_7B: Shape = { hidden: 4096, inter: 11008, heads: 32, kvHeads: 32 };
/** Llama 2 70B's layer shapes (with 1 layer: 2.6 GB; the 470 MB MLP weights and 524 MB embeddings split in chunks). */
export const LLAMA2_70B: Shape = { hidden: 8192, inter: 28672, heads: 64, kvHeads: 8 };
const VOCAB = 32000;

interface T {
  name: string;
  shape: number[];
}

function tensorsFor(layers: number, vocab: number, shape: Shape): T[][] {
  const { hidden, inter } = shape;
  const kv = (hidden / shape.heads) * shape.kvHeads;
  const shards: T[][] = [[], []];
  shards[0].push({ name: 'model.embed_tokens.weight', shape: [vocab, hidden] });
  for (let l = 0; l < layers; l++) {
    const s = shards[l < layers / 2 ? 0 : 1];
    const p = `model.layers.${l}`;
    s.push({ name: `${p}.input_layernorm.weight`, shape: [hidden] });
    s.push({ name: `${p}.self_attn.q_proj.weight`, shape: [hidden, hidden] });
    s.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kv, hidden] });
    s.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kv, hidden] });
    s.push({ name: `${p}.self_attn.o_proj.weight`, shape: [hidden, hidden] });
    s.push({ name: `${p}.post_attention_layernorm.weight`, shape: [hidden] });
    s.push({ name: `${p}.mlp.gate_proj.weight`, shape: [inter, hidden] });
    s.push({ name: `${p}.mlp.up_proj.weight`, shape: [inter, hidden] });
    s.push({ name: `${p}.mlp.down_proj.weight`, shape: [hidden, inter] });
  }
  shards[1].push({ name: 'model.norm.weight', shape: [hidden] });
  shards[1].push({ name: 'lm_head.weight', shape: [vocab, hidden] });
  return shards;
}

/** A pool of N(0, 0.02²) bf16 values; tensors are filled from it at pseudo-random offsets (fast, deterministic). */
function pool(): Buffer {
  const n = 1 << 21;
  const b = Buffer.alloc(n * 2);
  let s = 0x9e3779b9;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    f[0] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) * 0.02;
    b.writeUInt16LE(u[0] >>> 16, i * 2);
  }
  return b;
}

/** `vocab` scales the embeddings (a smaller checkpoint of the same layer shapes); `shape` the layers. */
export function generate(dir: string, layers: number, vocab = VOCAB, shape = TINYLLAMA): string[] {
  const marker = join(dir, '.complete');
  const shards = tensorsFor(layers, vocab, shape);
  const names = shards.map((_, i) => `model-0000${i + 1}-of-0000${shards.length}.safetensors`);
  if (existsSync(marker)) return names.map((n) => join(dir, n));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const src = pool();
  let seed = 12345;
  const weightMap: Record<string, string> = {};
  shards.forEach((list, si) => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let off = 0;
    for (const t of list) {
      const bytes = t.shape.reduce((a, b) => a * b, 1) * 2;
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + bytes] };
      off += bytes;
      weightMap[t.name] = names[si];
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const fd = openSync(join(dir, names[si]), 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    for (const t of list) {
      let left = t.shape.reduce((a, b) => a * b, 1) * 2;
      const isNorm = t.shape.length === 1;
      while (left > 0) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        const start = (seed % (src.length / 2 - 65536)) * 2;
        const n = Math.min(left, src.length - start);
        const piece = isNorm ? Buffer.alloc(n, 0) : src.subarray(start, start + n);
        if (isNorm) for (let i = 0; i < n; i += 2) piece.writeUInt16LE(0x3f80, i); // 1.0
        writeSync(fd, piece);
        left -= n;
      }
    }
    closeSync(fd);
  });
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.hidden,
    intermediate_size: shape.inter,
    num_hidden_layers: layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    max_position_embeddings: 2048,
    vocab_size: vocab,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  writeFileSync(marker, '');
  return names.map((n) => join(dir, n));
}
