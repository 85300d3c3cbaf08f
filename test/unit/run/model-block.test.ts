// The model block of a manifest as the forward pass reads it: values that would run wrong (a text rope_theta, a
// negative epsilon) or cost a crash (a huge num_layers) are one RunError naming the file, before any weight is read;
// every weight's shape is checked against the block with the tensor's name and the values that size it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FloatWeight, LinearWeight } from '../../../native/forward-types';
import { runConfigFields } from '../../../server/src/convert/carry';
import { modelInfoFromConfig } from '../../../server/src/convert/families';
import type { ModelInfo } from '../../../server/src/formats/manifest';
import { modelConfigFromManifest, RunError } from '../../../server/src/run/config';
import { assembleWeights } from '../../../server/src/run/load';
import { checkpointModel, fixture } from './helpers';

const FILE = '/models/x_manifest_q4.json';

function tinyInfo(): ModelInfo {
  const cfg = JSON.parse(readFileSync(join(fixture('tiny-llama'), 'config.json'), 'utf8'));
  return { ...modelInfoFromConfig(cfg, 'tiny-llama'), ...runConfigFields(cfg, cfg.model_type) };
}

const refused = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof RunError && re.test(e.message) && e.message.startsWith(`${FILE}: `));

test('optional numbers: absent gives the default, present must be a positive number', () => {
  const info = tinyInfo();
  const { rope_theta: _t, rms_norm_eps: _e, ...bare } = info;
  const c = modelConfigFromManifest({ ...bare, family: 'llama' }, FILE);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(modelConfigFromManifest({ ...info, rope_theta: 5e5 }, FILE).ropeTheta, 5e5);
  for (const v of ['abc', -5, 0, Number.NaN, Number.POSITIVE_INFINITY]) {
    refused(
      () => modelConfigFromManifest({ ...info, rope_theta: v as number }, FILE),
      /model\.rope_theta must be a positive number/,
    );
    refused(
      () => modelConfigFromManifest({ ...info, rms_norm_eps: v as number }, FILE),
      /model\.rms_norm_eps must be a positive number/,
    );
  }
});

test('sliding_window: a positive integer or null; mistral defaults to 4096, the others to none', () => {
  const info = tinyInfo();
  assert.equal(modelConfigFromManifest({ ...info, sliding_window: 64 }, FILE).slidingWindow, 64);
  assert.equal(modelConfigFromManifest({ ...info, sliding_window: null }, FILE).slidingWindow, null);
  const { sliding_window: _w, ...bare } = info;
  assert.equal(modelConfigFromManifest({ ...bare, family: 'mistral' }, FILE).slidingWindow, 4096);
  assert.equal(modelConfigFromManifest({ ...bare, family: 'llama' }, FILE).slidingWindow, null);
  for (const v of ['x', 0, 2.5, -1]) {
    refused(
      () => modelConfigFromManifest({ ...info, sliding_window: v as number }, FILE),
      /model\.sliding_window must be a positive integer or null/,
    );
  }
});

/** The tiny llama's weights behind a reader that counts its reads. */
async function reader() {
  const { config, weights } = await checkpointModel('tiny-llama');
  const byName = new Map<string, LinearWeight>();
  const n = weights.layers.length;
  const vec = (v: Float32Array): FloatWeight => ({
    kind: 'float',
    rows: 1,
    cols: v.length,
    dtype: 'f32',
    data: new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
  });
  byName.set('model.embed_tokens.weight', weights.embed);
  byName.set('model.norm.weight', vec(weights.finalNorm));
  byName.set('lm_head.weight', weights.lmHead);
  for (let l = 0; l < n; l++) {
    const w = weights.layers[l];
    const p = `model.layers.${l}`;
    byName.set(`${p}.input_layernorm.weight`, vec(w.inputNorm));
    byName.set(`${p}.post_attention_layernorm.weight`, vec(w.postAttnNorm));
    byName.set(`${p}.self_attn.q_proj.weight`, w.q);
    byName.set(`${p}.self_attn.k_proj.weight`, w.k);
    byName.set(`${p}.self_attn.v_proj.weight`, w.v);
    byName.set(`${p}.self_attn.o_proj.weight`, w.o);
    byName.set(`${p}.mlp.gate_proj.weight`, w.gate);
    byName.set(`${p}.mlp.up_proj.weight`, w.up);
    byName.set(`${p}.mlp.down_proj.weight`, w.down);
  }
  const reads: string[] = [];
  const get = async (name: string) => {
    reads.push(name);
    const w = byName.get(name);
    if (!w) throw new Error(`no ${name}`);
    return w;
  };
  return { config, get, has: (name: string) => byName.has(name), reads };
}

test('a num_layers past the weights is refused before any read (no out-of-memory on a huge count)', async () => {
  const { config, get, has, reads } = await reader();
  const ok = await assembleWeights(config, get, has, FILE);
  assert.equal(ok.layers.length, config.numLayers);
  reads.length = 0;
  await assert.rejects(
    assembleWeights({ ...config, numLayers: 1_000_000_000 }, get, has, FILE),
    (e: unknown) =>
      e instanceof RunError &&
      e.message ===
        `${FILE}: model.num_layers is 1000000000, but there is no model.layers.999999999.input_layernorm.weight`,
  );
  assert.deepEqual(reads, []);
});

test('shapes against the model block: the tensor and the values that size it are named', async () => {
  const { config, get, has } = await reader();
  const cases: Array<[Partial<typeof config>, RegExp]> = [
    [
      { numKvHeads: config.numKvHeads + 1 },
      /model\.layers\.0\.self_attn\.k_proj\.weight has shape \[\d+, \d+\], but the model block asks for \[\d+, \d+\] \(num_kv_heads × head_dim, hidden_dim\)$/,
    ],
    [{ vocabSize: 10 }, /model\.embed_tokens\.weight has shape .* \(vocab_size, hidden_dim\)$/],
    [
      { intermediateSize: 3 },
      /model\.layers\.0\.mlp\.gate_proj\.weight has shape .*\[3, \d+\] \(intermediate_size, hidden_dim\)$/,
    ],
    [{ hiddenSize: config.hiddenSize * 2 }, /model\.embed_tokens\.weight has shape .* \(vocab_size, hidden_dim\)$/],
  ];
  for (const [change, re] of cases) {
    await assert.rejects(
      assembleWeights({ ...config, ...change }, get, has, FILE),
      (e: unknown) => e instanceof RunError && e.message.startsWith(`${FILE}: `) && re.test(e.message),
      JSON.stringify(change),
    );
  }
});
