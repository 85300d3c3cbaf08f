import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planModel, planTensor } from '../../../server/src/convert/plan';

const opts = { bits: 4 as const, groupSize: 64, symmetric: false, mode: 'minmax' as const };

test('2-D weights are quantized group-wise; embeddings and lm_head at 8 bits', () => {
  const p = planModel(
    [
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [512, 128] },
      { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'BF16', shape: [128, 352] },
      { name: 'lm_head.weight', dtype: 'F16', shape: [512, 128] },
    ],
    opts,
  );
  assert.deepEqual(
    p.map((x) => (x.kind === 'quantize' ? [x.bits, x.groupSize, x.type, x.method, x.rows, x.cols] : null)),
    [
      [8, 64, 'groupwise_int', 'asymmetric', 512, 128],
      [4, 64, 'groupwise_int', 'asymmetric', 128, 352],
      [8, 64, 'groupwise_int', 'asymmetric', 512, 128],
    ],
  );
  const e = planTensor(
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [4, 8] },
    { ...opts, embeddingsBits: 2 },
  );
  assert.equal(e.kind === 'quantize' && e.bits, 2);
});

test('row groups, 1-bit sign, symmetric, >2-D tensors', () => {
  const r = planTensor({ name: 'w', dtype: 'F32', shape: [3, 100] }, { ...opts, groupSize: 'row' });
  assert.ok(r.kind === 'quantize' && r.groupSize === 100 && r.type === 'perrow_int');
  const big = planTensor({ name: 'w', dtype: 'F32', shape: [3, 40] }, opts);
  assert.ok(big.kind === 'quantize' && big.groupSize === 40 && big.type === 'perrow_int');
  const s = planTensor({ name: 'w', dtype: 'F32', shape: [2, 3, 64] }, { ...opts, bits: 1 });
  assert.ok(s.kind === 'quantize' && s.method === 'sign' && s.rows === 6 && s.cols === 64);
  const y = planTensor({ name: 'w', dtype: 'F32', shape: [2, 64] }, { ...opts, symmetric: true });
  assert.ok(y.kind === 'quantize' && y.method === 'symmetric');
});

test('1-D norms and non-float tensors are kept; bf16 widened to float32', () => {
  const n = planTensor({ name: 'model.norm.weight', dtype: 'BF16', shape: [128] }, opts);
  assert.deepEqual(n.kind === 'keep' && [n.storeDtype, n.bits], ['float32', 32]);
  const h = planTensor({ name: 'b', dtype: 'F16', shape: [8] }, opts);
  assert.deepEqual(h.kind === 'keep' && [h.storeDtype, h.bits], ['float16', 16]);
  const i = planTensor({ name: 'ids', dtype: 'I64', shape: [2, 8] }, opts);
  assert.deepEqual(i.kind === 'keep' && i.storeDtype, 'int64');
  assert.throws(() => planTensor({ name: 'odd', dtype: 'F8_E4M3', shape: [4] }, opts), /odd: dtype F8_E4M3/);
});
