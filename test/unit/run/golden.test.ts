// The TypeScript reference forward against golden logits computed independently with torch
// (scripts/golden-logits.py) on the tiny llama, mistral (prompt longer than its sliding window, linear rope scaling)
// and gemma checkpoints. Tolerance: ‖logits − golden‖₂ / ‖golden‖₂ ≤ 1e-4 over all positions and the vocabulary
// (both run float32 maths on the same float weights), and the same argmax at every position.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createReferenceModel } from '../../../native/forward-reference';
import { argmaxRows, checkpointModel, fixture, goldenPrompt, readNpyF32, relError, TINY } from './helpers';

for (const name of TINY) {
  test(`${name}: reference forward matches torch golden logits to 1e-4 relative`, async () => {
    const { config, weights } = await checkpointModel(name);
    const ids = goldenPrompt(name);
    const golden = await readNpyF32(fixture(`golden/${name}.npy`));
    assert.deepEqual(golden.shape, [ids.length, config.vocabSize]);
    const model = createReferenceModel(config, weights, { contextLength: config.maxPositionEmbeddings });
    const logits = model.forward(ids, 0, true);
    const rel = relError(logits, golden.data);
    assert.ok(rel <= 1e-4, `${name}: relative error ${rel}`);
    assert.deepEqual(argmaxRows(logits, ids.length), argmaxRows(golden.data, ids.length));
  });

  test(`${name}: prefill then token-by-token decode gives the same logits as one pass (KV cache)`, async () => {
    const { config, weights } = await checkpointModel(name);
    const ids = goldenPrompt(name);
    const model = createReferenceModel(config, weights, { contextLength: 64 });
    const full = model.forward(ids, 0, true);
    model.reset();
    const split = 5;
    const parts = [model.forward(ids.slice(0, split), 0, true)];
    for (let i = split; i < ids.length; i++) parts.push(model.forward([ids[i]], i, false));
    const joined = new Float32Array(full.length);
    let off = 0;
    for (const p of parts) {
      joined.set(p, off);
      off += p.length;
    }
    assert.ok(relError(joined, full) < 1e-6, `incremental differs: ${relError(joined, full)}`);
    assert.throws(() => model.forward([1], 3, false), /position 3 but the KV cache holds/);
  });
}

test('the sliding window matters for tiny-mistral (golden would catch a missing mask)', async () => {
  const { config, weights } = await checkpointModel('tiny-mistral');
  const ids = goldenPrompt('tiny-mistral');
  assert.ok(ids.length > (config.slidingWindow ?? 0));
  const golden = await readNpyF32(fixture('golden/tiny-mistral.npy'));
  const noWindow = createReferenceModel({ ...config, slidingWindow: null }, weights, { contextLength: 64 });
  assert.ok(relError(noWindow.forward(ids, 0, true), golden.data) > 1e-2);
});

test('context longer than the model is refused; token ids outside the vocabulary too', async () => {
  const { config, weights } = await checkpointModel('tiny-gemma');
  const model = createReferenceModel(config, weights, { contextLength: 4 });
  assert.throws(() => model.forward([2, 3, 4, 5, 6], 0, false), /exceeds the limit of 4/);
  assert.throws(() => model.forward([config.vocabSize], 0, false), /outside the vocabulary/);
});
