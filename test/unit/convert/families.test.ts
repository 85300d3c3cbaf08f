import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findAlias, isRepoId, MODEL_ALIASES, slugify } from '../../../server/src/convert/aliases';
import { ConvertError, errorCode } from '../../../server/src/convert/errors';
import { layerIndex, modelInfoFromConfig, supportedSummary } from '../../../server/src/convert/families';
import { tempDir } from '../../helpers/tmp';

const root = join(__dirname, '../../..');

test('aliases: the guide names map to their repos, with sizes and gated flags', () => {
  assert.deepEqual(Object.fromEntries(MODEL_ALIASES.map((a) => [a.alias, a.repo])), {
    tinyllama: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    'mistral-7b': 'mistralai/Mistral-7B-v0.1',
    'mistral-7b-instruct': 'mistralai/Mistral-7B-Instruct-v0.2',
    'gemma-2b': 'google/gemma-2b',
    'llama2-7b': 'meta-llama/Llama-2-7b-hf',
  });
  assert.equal(findAlias('TinyLlama')?.gated, false);
  assert.equal(findAlias('gemma-2b')?.gated, true);
  assert.equal(findAlias('llama2-7b')?.gated, true);
  assert.equal(findAlias('gpt2'), undefined);
  for (const a of MODEL_ALIASES) assert.ok(a.downloadBytes > 1e9 && a.downloadBytes < 2e10, a.alias);
});

test('repo ids and slugs', () => {
  assert.ok(isRepoId('TinyLlama/TinyLlama-1.1B-Chat-v1.0'));
  assert.ok(!isRepoId('./models/x'));
  assert.ok(!isRepoId('a/../b'));
  assert.ok(!isRepoId('/abs/path'));
  assert.equal(slugify('TinyLlama/TinyLlama-1.1B-Chat-v1.0'), 'tinyllama-1.1b-chat-v1.0');
  assert.equal(slugify('/some/dir/My Model/'), 'my-model');
  assert.equal(slugify('///'), 'model');
});

test('llama config (the tiny fixture) → model block', () => {
  const cfg = JSON.parse(readFileSync(join(root, 'test/fixtures/tiny-llama/config.json'), 'utf8'));
  assert.deepEqual(modelInfoFromConfig(cfg, 'tiny'), {
    name: 'tiny',
    family: 'llama',
    architecture: 'LlamaForCausalLM',
    context_length: 256,
    hidden_dim: 128,
    intermediate_size: 352,
    num_layers: 2,
    num_heads: 4,
    num_kv_heads: 2,
    vocab_size: 512,
    tie_word_embeddings: false,
  });
});

test('mistral and gemma configs; gemma ties embeddings by default; KV heads default to heads', () => {
  const m = modelInfoFromConfig(
    {
      architectures: ['MistralForCausalLM'],
      model_type: 'mistral',
      hidden_size: 4096,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      max_position_embeddings: 32768,
      vocab_size: 32000,
      intermediate_size: 14336,
    },
    'mistral-7b',
  );
  assert.equal(m.family, 'mistral');
  assert.equal(m.num_kv_heads, 8);
  assert.equal(m.tie_word_embeddings, false);
  const g = modelInfoFromConfig(
    { architectures: ['GemmaForCausalLM'], model_type: 'gemma', hidden_size: 2048, num_attention_heads: 8 },
    'gemma-2b',
  );
  assert.equal(g.family, 'gemma');
  assert.equal(g.tie_word_embeddings, true);
  assert.equal(g.num_kv_heads, 8);
  assert.equal(g.num_layers, undefined);
});

test('unknown architecture: says what was found and what is supported', () => {
  assert.throws(
    () => modelInfoFromConfig({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }, 'x', '/m/config.json'),
    (e: unknown) => {
      assert.ok(e instanceof ConvertError);
      assert.equal(e.code, 'unsupported');
      assert.match(e.message, /^\/m\/config\.json: No quantized data extracted/);
      assert.match(e.message, /"gpt2"/);
      assert.match(e.message, /GPT2LMHeadModel/);
      assert.match(e.message, /llama.*mistral.*gemma/);
      return true;
    },
  );
  assert.throws(() => modelInfoFromConfig([], 'x'), /expected a JSON object/);
  assert.throws(() => modelInfoFromConfig({}, 'x'), /model_type \(missing\), architectures \(missing\)/);
});

test('layer index and error codes', () => {
  assert.equal(layerIndex('model.layers.17.mlp.up_proj.weight'), 17);
  assert.equal(layerIndex('model.embed_tokens.weight'), undefined);
  assert.equal(errorCode(new ConvertError('exists', 'x')), 'exists');
  assert.equal(errorCode(Object.assign(new Error('x'), { code: 'ENOSPC' })), 'io');
  assert.equal(errorCode(Object.assign(new Error('x'), { name: 'AbortError' })), 'cancelled');
  assert.equal(errorCode(new Error('x')), 'internal');
});

test('model_type wins over architectures; non-string architectures and non-numbers are ignored', () => {
  const m = modelInfoFromConfig(
    { model_type: 'mistral', architectures: [7, 'LlamaForCausalLM'], hidden_size: '4096', vocab_size: 32000 },
    'm',
  );
  assert.deepEqual(m, {
    name: 'm',
    family: 'mistral',
    architecture: 'LlamaForCausalLM',
    vocab_size: 32000,
    tie_word_embeddings: false,
  });
  // Found by architecture alone; the family's architecture when config.json names none.
  const g = modelInfoFromConfig({ architectures: [null, 'GemmaForCausalLM'] }, 'g');
  assert.equal(g.family, 'gemma');
  assert.equal(g.architecture, 'GemmaForCausalLM');
  const l = modelInfoFromConfig({ model_type: 'llama', architectures: 'LlamaForCausalLM' }, 'l');
  assert.equal(l.architecture, 'LlamaForCausalLM');
  // An explicit tie_word_embeddings wins over the family default; a non-boolean does not.
  assert.equal(modelInfoFromConfig({ model_type: 'llama', tie_word_embeddings: true }, 'x').tie_word_embeddings, true);
  assert.equal(
    modelInfoFromConfig({ model_type: 'gemma', tie_word_embeddings: false }, 'x').tie_word_embeddings,
    false,
  );
  assert.equal(modelInfoFromConfig({ model_type: 'gemma', tie_word_embeddings: 'no' }, 'x').tie_word_embeddings, true);
  // Each family by model_type alone and by architecture alone; llama and mistral do not tie by default.
  for (const [family, arch, tied] of [
    ['llama', 'LlamaForCausalLM', false],
    ['mistral', 'MistralForCausalLM', false],
    ['gemma', 'GemmaForCausalLM', true],
  ] as const) {
    const byType = modelInfoFromConfig({ model_type: family }, 'x');
    assert.deepEqual([byType.family, byType.architecture, byType.tie_word_embeddings], [family, arch, tied]);
    const byArch = modelInfoFromConfig({ architectures: [arch] }, 'x');
    assert.deepEqual([byArch.family, byArch.architecture, byArch.tie_word_embeddings], [family, arch, tied]);
  }
  // A number that is not finite is no size (configs built in code, not only parsed JSON).
  assert.equal(
    modelInfoFromConfig({ model_type: 'llama', hidden_size: Number.POSITIVE_INFINITY }, 'x').hidden_dim,
    undefined,
  );
  assert.throws(() => modelInfoFromConfig(null, 'x'), /expected a JSON object/);
  assert.throws(() => modelInfoFromConfig('llama', 'x'), /expected a JSON object/);
});

test('the supported list names each family and its architectures', () => {
  assert.equal(supportedSummary(), 'llama (LlamaForCausalLM), mistral (MistralForCausalLM), gemma (GemmaForCausalLM)');
});

test('layer index: only a whole `layers.N.` part', () => {
  assert.equal(layerIndex('layers.3.mlp.up_proj.weight'), 3);
  assert.equal(layerIndex('model.xlayers.3.mlp.weight'), undefined);
  assert.equal(layerIndex('model.layers.3'), undefined);
  assert.equal(layerIndex('model.layers.x.mlp'), undefined);
});

// Same pattern as the fuzzer's report finding: a config.json that is not JSON is refused on one line.
test('fuzz regression: a config.json that is not JSON gives a one-line error', async () => {
  const { writeFileSync } = await import('node:fs');
  const { describeSource } = await import('../../../server/src/convert/source');
  const dir = tempDir('apl-fuzzreg-');
  writeFileSync(join(dir, 'config.json'), ':{\n  "model_type": "llama"\n}\n');
  assert.throws(
    () => describeSource({ dir, name: 'x', source: dir, revision: null }),
    (e: Error) => e instanceof ConvertError && /not valid JSON/.test(e.message) && !/[\r\n]/.test(e.message),
  );
});

test('a config.json that is a FIFO is refused at once, not read (the read would wait for a writer forever)', async (t) => {
  if (process.platform === 'win32') {
    t.skip('no FIFOs here');
    return;
  }
  const { execFileSync } = await import('node:child_process');
  const { describeSource } = await import('../../../server/src/convert/source');
  const dir = tempDir('apl-fifo-');
  execFileSync('mkfifo', [join(dir, 'config.json')]);
  assert.throws(
    () => describeSource({ dir, name: 'x', source: dir, revision: null }),
    (e: Error) =>
      e instanceof ConvertError &&
      e.message === `${join(dir, 'config.json')}: not a regular file (a pipe, socket or device)`,
  );
});

test('describeSource reads config.json once and appends the run fields after the source', async () => {
  const { describeSource } = await import('../../../server/src/convert/source');
  const dir = join(root, 'test/fixtures/tiny-mistral');
  const m = describeSource({ dir, name: 'x', source: 'org/x', revision: 'abc' });
  const keys = Object.keys(m);
  assert.ok(keys.indexOf('revision') < keys.indexOf('rope_theta'), keys.join(','));
  assert.equal(m.sliding_window, JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).sliding_window);
});
