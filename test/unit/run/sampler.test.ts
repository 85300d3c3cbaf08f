// The sampler: greedy at temperature 0, top-p keeps the smallest most-likely set, seeds reproduce runs, and the
// sampled frequencies follow softmax(logits / T).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmax, createSampler, samplingDistribution } from '../../../server/src/run/sampler';

const logits = Float32Array.from([1, 3, 2, 3.5, -1]);

test('temperature 0 is greedy (argmax, lowest id on ties)', () => {
  const s = createSampler({ temperature: 0, topP: 0.5, seed: 1 });
  for (let i = 0; i < 5; i++) assert.equal(s(logits), 3);
  assert.equal(argmax([2, 5, 5, 1]), 1);
});

test('top-p keeps the smallest set reaching p, renormalised', () => {
  const full = samplingDistribution(logits, 1, 1);
  const sum = full.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-12);
  // p(3) ≈ 0.52, p(1) ≈ 0.32: top-p 0.6 keeps ids 3 and 1 only.
  const cut = samplingDistribution(logits, 1, 0.6);
  assert.deepEqual(
    [...cut].map((p, i) => (p > 0 ? i : -1)).filter((i) => i >= 0),
    [1, 3],
  );
  assert.ok(Math.abs(cut[3] - full[3] / (full[3] + full[1])) < 1e-12);
});

test('a seed reproduces the draws; frequencies follow the distribution', () => {
  const draw = (seed: number) => {
    const s = createSampler({ temperature: 0.7, topP: 1, seed });
    return Array.from({ length: 4000 }, () => s(logits));
  };
  const a = draw(42);
  assert.deepEqual(a, draw(42));
  assert.notDeepEqual(a, draw(43));
  const p = samplingDistribution(logits, 0.7, 1);
  for (let i = 0; i < logits.length; i++) {
    const f = a.filter((x) => x === i).length / a.length;
    assert.ok(Math.abs(f - p[i]) < 0.03, `id ${i}: ${f} vs ${p[i]}`);
  }
});

test('bad settings are refused', () => {
  assert.throws(() => createSampler({ temperature: -1, topP: 1, seed: 0 }), /temperature/);
  assert.throws(() => createSampler({ temperature: 1, topP: 0, seed: 0 }), /top_p/);
});
