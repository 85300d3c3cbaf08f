import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isEmbeddingOrHead, planModel, planTensor } from '../../../server/src/convert/plan';

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
  assert.throws(
    () => planTensor({ name: 'odd', dtype: 'F8_E4M3', shape: [4] }, opts),
    /^ConvertError: tensor odd: dtype F8_E4M3 is not supported \(weights are read as F32, F16 or BF16/,
  );
  // A 2-D FP8 weight is refused too, naming the file that holds it.
  assert.throws(
    () => planTensor({ name: 'w', dtype: 'F8_E4M3', shape: [4, 4], file: 'model-00002-of-00002.safetensors' }, opts),
    /model-00002-of-00002\.safetensors: tensor w: dtype F8_E4M3 is not supported .*needs its float original/,
  );
});

test('embeddings and head are recognised by whole name parts only', () => {
  const heads = ['model.embed_tokens.weight', 'lm_head.weight', 'transformer.wte.weight', 'gpt_neox.embed_in.weight'];
  const others = ['embed_out', 'model.embed_tokens_extra.weight', 'model.my_lm_head.weight', 'wte2.weight'];
  for (const n of heads) assert.ok(isEmbeddingOrHead(n), n);
  assert.ok(isEmbeddingOrHead(others[0]), 'a bare part counts');
  for (const n of others.slice(1)) assert.ok(!isEmbeddingOrHead(n), n);
  const p = planTensor({ name: 'transformer.wte.weight', dtype: 'F32', shape: [8, 8] }, opts);
  assert.equal(p.kind === 'quantize' && p.bits, 8);
});

test('a quantize plan carries the name, shape, dtype, mode and symmetry it was given', () => {
  const p = planTensor(
    { name: 'model.layers.1.mlp.up_proj.weight', dtype: 'F16', shape: [4, 65] },
    { ...opts, symmetric: true, mode: 'optimized', bits: 2 },
  );
  assert.deepEqual(p, {
    kind: 'quantize',
    name: 'model.layers.1.mlp.up_proj.weight',
    dtype: 'F16',
    shape: [4, 65],
    rows: 4,
    cols: 65,
    bits: 2,
    groupSize: 64,
    type: 'groupwise_int',
    method: 'symmetric',
    symmetric: true,
    mode: 'optimized',
  });
  // 1 bit is the sign method whatever the symmetry asked for.
  const s = planTensor({ name: 'w', dtype: 'F32', shape: [2, 8] }, { ...opts, bits: 1, symmetric: true });
  assert.equal(s.kind === 'quantize' && s.method, 'sign');
});

test('empty matrices and float64 are kept; every kept dtype has its numpy dtype and width', () => {
  const empty = planTensor({ name: 'w', dtype: 'BF16', shape: [0, 64] }, opts);
  assert.deepEqual(empty, { kind: 'keep', name: 'w', dtype: 'BF16', shape: [0, 64], storeDtype: 'float32', bits: 32 });
  const noCols = planTensor({ name: 'w', dtype: 'F32', shape: [4, 0] }, opts);
  assert.equal(noCols.kind, 'keep');
  const expected: Record<string, [string, number]> = {
    F64: ['float64', 32],
    F32: ['float32', 32],
    F16: ['float16', 16],
    BF16: ['float32', 32],
    I8: ['int8', 32],
    U8: ['uint8', 32],
    I16: ['int16', 16],
    U16: ['uint16', 16],
    I32: ['int32', 32],
    U32: ['uint32', 32],
    I64: ['int64', 32],
    U64: ['uint64', 32],
    BOOL: ['bool', 32],
  };
  for (const [dtype, [store, bits]] of Object.entries(expected)) {
    const k = planTensor({ name: 't', dtype, shape: [3] }, opts);
    assert.deepEqual(k.kind === 'keep' && [k.storeDtype, k.bits], [store, bits], dtype);
  }
  const f64 = planTensor({ name: 'w', dtype: 'F64', shape: [4, 4] }, opts);
  assert.equal(f64.kind, 'keep');
});
