// Writes test/fixtures/tiny-mistral/ and test/fixtures/tiny-gemma/: small, deterministic checkpoints of the two other
// families the forward pass runs, in the Hugging Face layout (config.json, generation_config.json, one safetensors
// file, a word-level tokenizer with a chat template). Chosen to exercise what differs from Llama:
//  - tiny-mistral: float16 weights, a sliding window of 8 (the golden prompt is longer), linear rope scaling, GQA;
//  - tiny-gemma: bfloat16 weights, head_dim 48 with heads × head_dim ≠ hidden, one KV head, norms stored as w in
//    x̂·(1 + w), GeGLU (config says "gelu"; transformers forces the tanh GELU), tied output head (no lm_head tensor).
// Weights come from a seeded PRNG, so re-running reproduces the same bytes:  node scripts/make-tiny-families.mjs
import { join } from 'node:path';
import { addedTokens, bf16, f16, json, rng, safetensors, tensor, writeFolder } from './tiny-fixture-lib.mjs';

const root = new URL('..', import.meta.url).pathname;

export const MODELS = {
  'tiny-mistral': {
    dtype: 'F16',
    seed: 7001,
    normCenter: 1,
    config: {
      architectures: ['MistralForCausalLM'],
      model_type: 'mistral',
      hidden_size: 64,
      intermediate_size: 160,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 16,
      max_position_embeddings: 128,
      sliding_window: 8,
      vocab_size: 256,
      rms_norm_eps: 1e-5,
      rope_theta: 1000000.0,
      rope_scaling: { type: 'linear', factor: 2.0 },
      hidden_act: 'silu',
      initializer_range: 0.05,
      tie_word_embeddings: false,
      bos_token_id: 1,
      eos_token_id: 2,
      torch_dtype: 'float16',
      transformers_version: '4.40.0',
    },
    chat: {
      specials: ['[INST]', '[/INST]'],
      template:
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}",
    },
  },
  'tiny-gemma': {
    dtype: 'BF16',
    seed: 7002,
    normCenter: 0,
    config: {
      architectures: ['GemmaForCausalLM'],
      model_type: 'gemma',
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: 48,
      max_position_embeddings: 128,
      vocab_size: 256,
      rms_norm_eps: 1e-6,
      rope_theta: 10000.0,
      hidden_act: 'gelu',
      hidden_activation: 'gelu_pytorch_tanh',
      initializer_range: 0.12,
      tie_word_embeddings: true,
      bos_token_id: 2,
      eos_token_id: 1,
      pad_token_id: 0,
      torch_dtype: 'bfloat16',
      transformers_version: '4.40.0',
    },
    chat: {
      specials: ['<start_of_turn>', '<end_of_turn>'],
      template:
        "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + (message['role'] == 'assistant' and 'model' or message['role']) + ' ' + message['content'] + ' <end_of_turn> ' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model ' }}{% endif %}",
    },
  },
};

function weights(spec) {
  const c = spec.config;
  const normal = rng(spec.seed).normal;
  const enc = spec.dtype === 'F16' ? f16 : bf16;
  const list = [];
  const t = (name, shape, gen) => list.push(tensor(name, shape, gen, enc));
  const h = c.hidden_size;
  const hd = c.head_dim;
  const w = () => normal() * c.initializer_range;
  const norm = () => spec.normCenter + normal() * 0.1;
  t('model.embed_tokens.weight', [c.vocab_size, h], () => normal() * (c.model_type === 'gemma' ? 0.03 : 0.5));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    t(`${p}.input_layernorm.weight`, [h], norm);
    t(`${p}.self_attn.q_proj.weight`, [c.num_attention_heads * hd, h], () => normal() * 0.15);
    t(`${p}.self_attn.k_proj.weight`, [c.num_key_value_heads * hd, h], () => normal() * 0.15);
    t(`${p}.self_attn.v_proj.weight`, [c.num_key_value_heads * hd, h], w);
    t(`${p}.self_attn.o_proj.weight`, [h, c.num_attention_heads * hd], w);
    t(`${p}.post_attention_layernorm.weight`, [h], norm);
    t(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, h], () => normal() * 0.15);
    t(`${p}.mlp.up_proj.weight`, [c.intermediate_size, h], w);
    t(`${p}.mlp.down_proj.weight`, [h, c.intermediate_size], w);
  }
  t('model.norm.weight', [h], norm);
  if (!c.tie_word_embeddings) t('lm_head.weight', [c.vocab_size, h], () => normal() * 0.1);
  return list;
}

/** Word-level vocabulary: specials at the ids the config names, letters, then two-syllable words. */
function tokenizer(spec) {
  const c = spec.config;
  const gemma = c.model_type === 'gemma';
  const specials = gemma ? ['<pad>', '<eos>', '<bos>', '<unk>'] : ['<unk>', '<s>', '</s>'];
  specials.push(...spec.chat.specials);
  const bos = specials[c.bos_token_id];
  const vocab = {};
  let id = 0;
  for (const s of specials) vocab[s] = id++;
  for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789.,!?') vocab[ch] = id++;
  const syll = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'zo', 'be', 'da', 'fu', 'go', 'hi', 'ja', 'pe', 'so'];
  for (const a of syll) for (const b of syll) if (id < c.vocab_size) vocab[a + b] = id++;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(specials),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    // Adds BOS in front, as Llama's and Gemma's tokenizers do.
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [c.bos_token_id], tokens: [bos] } },
    },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
}

function files(spec) {
  const c = spec.config;
  const tok = tokenizer(spec);
  const byId = Object.fromEntries(Object.entries(tok.model.vocab).map(([k, v]) => [v, k]));
  return {
    'config.json': json(c),
    'generation_config.json': json({
      _from_model_config: true,
      bos_token_id: c.bos_token_id,
      eos_token_id: c.eos_token_id,
      max_length: c.max_position_embeddings,
    }),
    'model.safetensors': safetensors(weights(spec), spec.dtype),
    'tokenizer.json': json(tok),
    'tokenizer_config.json': json({
      add_bos_token: true,
      add_eos_token: false,
      bos_token: byId[c.bos_token_id],
      eos_token: byId[c.eos_token_id],
      unk_token: '<unk>',
      ...(c.model_type === 'gemma' ? { pad_token: '<pad>' } : {}),
      model_max_length: c.max_position_embeddings,
      tokenizer_class: 'PreTrainedTokenizerFast',
      chat_template: spec.chat.template,
    }),
  };
}

for (const [name, spec] of Object.entries(MODELS)) writeFolder(join(root, 'test/fixtures', name), files(spec));
