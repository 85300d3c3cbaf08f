// The shipped trained model (test/fixtures/brown-tiny, made by scripts/train-tiny-model.py): its files are
// consistent, small, and its tokenizer gives in @huggingface/tokenizers the ids the Python trainer committed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';

const dir = join(__dirname, '../../../test/fixtures/brown-tiny');
const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));

test('the held-out text tokenizes to the ids the Python trainer wrote, and decodes back to the text', () => {
  const tok = new Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
  const text = readFileSync(join(dir, 'heldout.txt'), 'utf8');
  const want: number[] = json('heldout.ids.json').ids;
  const got = tok.encode(text).ids;
  assert.equal(got.length, want.length);
  const first = got.findIndex((id, i) => id !== want[i]);
  assert.equal(first, -1, `first difference at token ${first}`);
  assert.equal(got[0], 1);
  assert.equal(tok.decode(got, { skip_special_tokens: true }), text);
  // Byte fallback for what the vocabulary lacks; Metaspace for spaces.
  const odd = tok.encode('naïve “x” 😀', { add_special_tokens: false });
  assert.ok(
    odd.tokens.some((t) => /^<0x[0-9A-F]{2}>$/.test(t)),
    odd.tokens.join(' '),
  );
  assert.equal(tok.decode(odd.ids), 'naïve “x” 😀');
  assert.ok(tok.encode('The jury said').tokens.includes('▁said'));
});

test('config, tokenizer and weights agree; bf16; HF tensor names; the folder is small', () => {
  const cfg = json('config.json');
  const tj = json('tokenizer.json');
  assert.equal(tj.model.type, 'BPE');
  assert.equal(tj.model.byte_fallback, true);
  assert.equal(Object.keys(tj.model.vocab).length, cfg.vocab_size);
  assert.deepEqual(
    tj.added_tokens.map((t: { content: string }) => t.content),
    ['<unk>', '<s>', '</s>'],
  );
  const buf = readFileSync(join(dir, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const h = cfg.hidden_size;
  const hd = cfg.head_dim;
  const shapes: Record<string, number[]> = {
    'model.embed_tokens.weight': [cfg.vocab_size, h],
    'model.norm.weight': [h],
    'lm_head.weight': [cfg.vocab_size, h],
  };
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    Object.assign(shapes, {
      [`${p}.input_layernorm.weight`]: [h],
      [`${p}.post_attention_layernorm.weight`]: [h],
      [`${p}.self_attn.q_proj.weight`]: [cfg.num_attention_heads * hd, h],
      [`${p}.self_attn.k_proj.weight`]: [cfg.num_key_value_heads * hd, h],
      [`${p}.self_attn.v_proj.weight`]: [cfg.num_key_value_heads * hd, h],
      [`${p}.self_attn.o_proj.weight`]: [h, cfg.num_attention_heads * hd],
      [`${p}.mlp.gate_proj.weight`]: [cfg.intermediate_size, h],
      [`${p}.mlp.up_proj.weight`]: [cfg.intermediate_size, h],
      [`${p}.mlp.down_proj.weight`]: [h, cfg.intermediate_size],
    });
  }
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  assert.deepEqual(names.sort(), Object.keys(shapes).sort());
  for (const k of names) {
    assert.equal(header[k].dtype, 'BF16', k);
    assert.deepEqual(header[k].shape, shapes[k], k);
  }
  let total = 0;
  for (const f of readdirSync(dir)) total += statSync(join(dir, f)).size;
  assert.ok(total < 8_000_000, `fixture is ${total} bytes`);
  const ref = json('reference-ppl.json');
  assert.equal(ref.chunk_nll_sum.length, ref.chunks);
  assert.ok(ref.ppl > 1 && ref.ppl < 1000, `held-out ppl ${ref.ppl}`);
});

test('the chat template renders, and its text tokenizes with a single BOS', () => {
  const cfg = json('tokenizer_config.json');
  const messages = [{ role: 'user', content: 'Who said it?' }];
  const s = new Template(cfg.chat_template).render({
    messages,
    bos_token: cfg.bos_token,
    eos_token: cfg.eos_token,
    add_generation_prompt: true,
  });
  assert.equal(s, '<s>Question: Who said it?\nAnswer:');
  const ids = new Tokenizer(json('tokenizer.json'), cfg).encode(s, { add_special_tokens: false }).ids;
  assert.equal(ids[0], 1);
  assert.equal(ids.filter((i) => i === 1).length, 1);
});
