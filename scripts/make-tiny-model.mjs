// Writes test/fixtures/tiny-llama/: a small, deterministic Llama-architecture checkpoint in the Hugging Face layout
// (config.json, generation_config.json, bf16 weights sharded into two safetensors files with an index, and a tiny
// word-level tokenizer). Weights come from a seeded PRNG (no Math.random), so re-running reproduces the same bytes:
//   node scripts/make-tiny-model.mjs [--out DIR]
import { join } from 'node:path';
import { addedTokens, bf16, json, rng, safetensors, tensor as tensorOf, writeFolder } from './tiny-fixture-lib.mjs';

const root = new URL('..', import.meta.url).pathname;
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? process.argv[outArg + 1] : join(root, 'test/fixtures/tiny-llama');

export const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 128,
  intermediate_size: 352,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  vocab_size: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  hidden_act: 'silu',
  initializer_range: 0.02,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.0',
};

function tensor(name, shape, gen) {
  return tensorOf(name, shape, gen, bf16);
}

function weights() {
  const c = CONFIG;
  const r = rng(20240601);
  const h = c.hidden_size;
  const kv = (h / c.num_attention_heads) * c.num_key_value_heads;
  const std = c.initializer_range;
  // Every 17th output row has 4x the spread, as real checkpoints vary in scale from channel to channel.
  const w = (cols) => (i) => {
    const row = Math.floor(i / cols);
    const boost = row % 17 === 3 ? 4 : 1;
    return r.normal() * std * boost;
  };
  const norm = () => 1 + r.normal() * 0.05;
  const shards = [[], []];
  shards[0].push(tensor('model.embed_tokens.weight', [c.vocab_size, h], w(h)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const s = shards[l < c.num_hidden_layers / 2 ? 0 : 1];
    const p = `model.layers.${l}`;
    s.push(tensor(`${p}.input_layernorm.weight`, [h], norm));
    s.push(tensor(`${p}.self_attn.q_proj.weight`, [h, h], w(h)));
    s.push(tensor(`${p}.self_attn.k_proj.weight`, [kv, h], w(h)));
    s.push(tensor(`${p}.self_attn.v_proj.weight`, [kv, h], w(h)));
    s.push(tensor(`${p}.self_attn.o_proj.weight`, [h, h], w(h)));
    s.push(tensor(`${p}.post_attention_layernorm.weight`, [h], norm));
    s.push(tensor(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, h], w(h)));
    s.push(tensor(`${p}.mlp.up_proj.weight`, [c.intermediate_size, h], w(h)));
    s.push(tensor(`${p}.mlp.down_proj.weight`, [h, c.intermediate_size], w(c.intermediate_size)));
  }
  shards[1].push(tensor('model.norm.weight', [h], norm));
  shards[1].push(tensor('lm_head.weight', [c.vocab_size, h], w(h)));
  return shards;
}

function tokenizer() {
  const specials = ['<unk>', '<s>', '</s>'];
  const words = [];
  const syll = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'zo', 'be', 'da', 'fu', 'go', 'hi', 'ja', 'pe', 'so'];
  for (const a of syll) for (const b of syll) words.push(a + b);
  const vocab = {};
  let id = 0;
  for (const s of specials) vocab[s] = id++;
  for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789.,!?') vocab[ch] = id++;
  for (const w of words) {
    if (id >= CONFIG.vocab_size) break;
    vocab[w] = id++;
  }
  for (let i = 0; id < CONFIG.vocab_size; i++) vocab[`<extra_${i}>`] = id++;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(specials),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
}

function files() {
  const shards = weights();
  const names = shards.map((_, i) => `model-0000${i + 1}-of-0000${shards.length}.safetensors`);
  const weightMap = {};
  let total = 0;
  shards.forEach((s, i) => {
    for (const t of s) {
      weightMap[t.name] = names[i];
      total += t.data.length;
    }
  });
  return {
    'config.json': json(CONFIG),
    'generation_config.json': json({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2, max_length: 256 }),
    'model.safetensors.index.json': json({ metadata: { total_size: total }, weight_map: weightMap }),
    [names[0]]: safetensors(shards[0], 'BF16'),
    [names[1]]: safetensors(shards[1], 'BF16'),
    'tokenizer.json': json(tokenizer()),
    'tokenizer_config.json': json({
      add_bos_token: true,
      add_eos_token: false,
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      model_max_length: 256,
      tokenizer_class: 'PreTrainedTokenizerFast',
    }),
    'special_tokens_map.json': json({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' }),
  };
}

writeFolder(out, files());
