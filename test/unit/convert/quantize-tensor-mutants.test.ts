// quantizeTensor (the groupwise per-tensor stage) in process, with hand-made tensors and the engine, so mutation
// testing reaches it: a tensor read in chunks of any size gives the bytes one whole-tensor quantize call gives (q
// streamed, scales and zero points, q's CRC), progress on whole rows, each row read once, the next tensor's first
// chunk prefetched and taken, scales that overflow float16 switching the tensor to float32 scales, refusals naming
// the file; the accuracy sums against an independent computation; the buffer pool's contract.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { _forceReference, nativeAddon, type QuantizeResult, quantize } from '../../../native/index';
import type { Addon } from '../../../native/load';
import { evalSample } from '../../../server/src/convert/accuracy';
import { BufferPool, Prefetch } from '../../../server/src/convert/buffer-pool';
import { ConvertError } from '../../../server/src/convert/errors';
import type { QuantPlan } from '../../../server/src/convert/plan';
import { benchChecks, quantizeTensor, rowsPerChunkFor } from '../../../server/src/convert/quantize-tensor';
import { memberNames } from '../../../server/src/formats/manifest';
import {
  cancelledAfterFirstChunk,
  chunkedAsOneCall,
  errorOf,
  type MemTensor,
  memCheckpoint,
  memWriter,
  near,
  planOf,
  type RunOpts,
  readOnce,
  runPlans,
  sameRunSums,
  sameSums,
  stageCtx,
  sumSquaresOf,
  tensor,
} from './quantize-harness';

const FILE = '/models/m/model.safetensors';

/** The whole tensor quantized in one call, with its output check and Σw² computed independently. */
async function reference(t: MemTensor, p: QuantPlan, scaleDtype: 'f16' | 'f32', nEval = 4) {
  const res = await quantize({
    data: t.raw,
    dtype: t.dtype.toLowerCase() as 'bf16',
    rows: t.rows,
    cols: t.cols,
    bits: p.bits as 4,
    groupSize: p.groupSize,
    symmetric: p.symmetric,
    mode: p.mode,
    scaleDtype,
    metrics: true,
  });
  const check = benchChecks(p, t.raw, res, { nEval, chunkBytes: 1 << 30, scaleDtype }).inTs();
  return { res, check, refSq: sumSquaresOf(t) };
}

/** Runs plans in order through one prefetch slot, one checkpoint and one writer, as the quantize stage does. */
function runAll(tensors: MemTensor[], plans: QuantPlan[], o: RunOpts & { scaleDtype?: 'f16' | 'f32' }) {
  return runPlans(
    (p, ctx) => quantizeTensor(p, { ...ctx, scaleDtype: o.scaleDtype ?? 'f16' }),
    FILE,
    tensors,
    plans,
    o,
  );
}

type Result = Omit<Awaited<ReturnType<typeof runAll>>['results'][number], 'readsDuring'>;

/** The tensor's streamed q, scales and zero points equal the whole-tensor call's, byte for byte. */
function sameBytes(r: Result, arrays: ReturnType<typeof memWriter>['arrays'], p: QuantPlan, ref: QuantizeResult) {
  const q = arrays.get(memberNames(p.name, p.bits).q);
  assert.ok(q, `${p.name}: q written`);
  assert.deepEqual(q.header, { dtype: 'uint8', shape: [p.rows, Math.ceil((p.cols * p.bits) / 8)] });
  assert.ok(Buffer.from(ref.q).equals(q.bytes), `${p.name}: q equals the whole-tensor q`);
  assert.equal(r.crcQ, q.crc32, `${p.name}: crcQ is q's CRC-32`);
  assert.ok(Buffer.from(ref.scales).equals(Buffer.concat(r.scales)), `${p.name}: scales`);
  assert.ok(Buffer.from(ref.zeros).equals(Buffer.concat(r.zeros)), `${p.name}: zero points`);
}

// Rows × cols 7 × 96 bf16: a row is 192 bytes.
const ROW = 96 * 2;
const sizes: Array<[string, number, number[]]> = [
  ['a chunk smaller than one row (1 row a chunk)', 100, [1, 2, 3, 4, 5, 6, 7]],
  ['exactly one row', ROW, [1, 2, 3, 4, 5, 6, 7]],
  ['3 rows, 7 not a multiple', 3 * ROW, [3, 6, 7]],
  ['a byte short of 3 rows (2 rows a chunk)', 3 * ROW - 1, [2, 4, 6, 7]],
  ['a byte short of the tensor (6 rows, then 1)', 7 * ROW - 1, [6, 7]],
  ['the whole tensor exactly (one chunk)', 7 * ROW, [7]],
  ['more than the tensor (one chunk)', 100 * ROW, [7]],
];

for (const [label, chunkBytes, expectRows] of sizes) {
  test(`chunk size: ${label}: the same bytes and sums as one call, progress on whole rows`, async () => {
    const t = tensor('w', 'BF16', 7, 96, 11);
    const p = planOf(t);
    const ref = await reference(t, p, 'f16');
    const run = await runAll([t], [p], { chunkBytes });
    assert.equal(run.results[0].scaleDtype, 'f16');
    sameBytes(run.results[0], run.arrays, p, ref.res);
    assert.equal(run.arrays.get('w_q4.npy')?.chunks, expectRows.length, 'q streamed one chunk at a time');
    chunkedAsOneCall(run, t, p, ref, expectRows);
  });
}

test('a one-row tensor, and an f32 source with symmetric 8-bit minmax and float32 scales', async () => {
  const one = tensor('one', 'BF16', 1, 40, 3);
  const f = tensor('f', 'F32', 5, 72, 4);
  const pOne = planOf(one, { bits: 2, groupSize: 16 } as Partial<QuantPlan>);
  const pF = planOf(f, { bits: 8, groupSize: 24, symmetric: true, mode: 'minmax' } as Partial<QuantPlan>);
  const refOne = await reference(one, pOne, 'f32');
  const refF = await reference(f, pF, 'f32');
  const { results, arrays, rows, reads } = await runAll([one, f], [pOne, pF], {
    chunkBytes: 2 * 72 * 4,
    scaleDtype: 'f32',
  });
  assert.deepEqual(rows.get('one'), [1]);
  assert.deepEqual(rows.get('f'), [2, 4, 5]);
  for (const r of results) assert.equal(r.scaleDtype, 'f32');
  assert.equal(results[0].scales[0].length, 3 * 4, 'float32 scales: 4 bytes a group');
  sameBytes(results[0], arrays, pOne, refOne.res);
  sameBytes(results[1], arrays, pF, refF.res);
  sameSums(results[0], refOne, pOne, 1);
  sameSums(results[1], refF, pF, 3);
  readOnce(reads, one, 1);
  readOnce(reads, f, 2);
});

test("the next tensor's first chunk is started while this one is written, and taken (not read again)", async () => {
  // Different widths, so the next tensor's chunk has its own row count (rows per chunk from its own row size).
  const a = tensor('a', 'BF16', 6, 64, 21);
  const b = tensor('b', 'BF16', 9, 32, 22);
  const c = tensor('c', 'F32', 4, 64, 23);
  const plans = [planOf(a), planOf(b), planOf(c)];
  const refs = [
    await reference(a, plans[0], 'f16'),
    await reference(b, plans[1], 'f16'),
    await reference(c, plans[2], 'f16'),
  ];
  const chunkBytes = 4 * 64 * 2; // a: 4 rows a chunk; b: 8; c: 2
  const { results, arrays, rows, reads } = await runAll([a, b, c], plans, { chunkBytes });
  assert.deepEqual(rows.get('a'), [4, 6]);
  assert.deepEqual(rows.get('b'), [8, 9]);
  assert.deepEqual(rows.get('c'), [2, 4]);
  for (let i = 0; i < 3; i++) {
    sameBytes(results[i], arrays, plans[i], refs[i].res);
    sameSums(results[i], refs[i], plans[i], 2);
  }
  readOnce(reads, a, 4);
  readOnce(reads, b, 8);
  readOnce(reads, c, 2);
  // b's first chunk (8 rows) was read during a's run; c's during b's; nothing after c.
  assert.deepEqual(
    results[0].readsDuring.filter((r) => r.name === 'b').map((r) => [r.r0, r.count]),
    [[0, 8]],
  );
  assert.deepEqual(
    results[1].readsDuring.filter((r) => r.name === 'c').map((r) => [r.r0, r.count]),
    [[0, 2]],
  );
  assert.deepEqual(
    results[2].readsDuring.map((r) => r.name),
    ['c'],
  );
});

test('a prefetch for another tensor is not taken: the tensor asked for is read itself', async () => {
  const a = tensor('a', 'BF16', 3, 64, 31);
  const b = tensor('b', 'BF16', 3, 64, 32);
  const pa = planOf(a);
  const pb = planOf(b);
  const ref = await reference(b, pb, 'f16');
  const { ck, reads } = memCheckpoint([a, b]);
  const { writer, arrays } = memWriter();
  const prefetch = new Prefetch();
  const ctx = { ...stageCtx(FILE, ck, writer, { prefetch }), scaleDtype: 'f16' as const };
  await quantizeTensor(pa, { ...ctx, next: pa }); // announces "a" as next (a rerun): the slot holds a's chunk
  const r = await quantizeTensor(pb, ctx);
  sameBytes(r, arrays, pb, ref.res);
  assert.deepEqual(
    reads.map((x) => x.name),
    ['a', 'a', 'b'],
  );
  assert.ok(prefetch.take('a'), "a's prefetched chunk is still in the slot");
});

// 4-bit asymmetric scales are (max − min) / 15: values of ±2e6 give scales past float16's 65504.
const huge = (x: Float32Array, from = 0, to = x.length) => {
  for (let i = from; i < to; i++) x[i] = (i % 2 ? 2e6 : -2e6) * (1 + (i % 7) / 7);
};

test('scales that overflow float16 switch the tensor to float32 scales (its values right), chunked', async () => {
  const t = tensor('big', 'F32', 5, 64, 41, (x) => huge(x));
  const p = planOf(t);
  const ref = await reference(t, p, 'f32');
  await assert.rejects(reference(t, p, 'f16'), /scaleDtype 'f32'/, 'these scales do overflow float16');
  const { results, arrays, rows, reads } = await runAll([t], [p], { chunkBytes: 2 * 64 * 4 });
  const r = results[0];
  assert.equal(r.scaleDtype, 'f32');
  assert.deepEqual(rows.get('big'), [2, 4, 5]);
  assert.deepEqual(
    r.scales.map((s) => s.length),
    [2 * 2 * 4, 2 * 2 * 4, 2 * 4],
    'float32 scales in every chunk',
  );
  sameBytes(r, arrays, p, ref.res);
  sameSums(r, ref, p, 3);
  // The first chunk is read twice (float16 refused, then float32); the rest once.
  assert.deepEqual(
    reads.map((x) => [x.r0, x.count]),
    [
      [0, 2],
      [0, 2],
      [2, 2],
      [4, 1],
    ],
  );
});

test('an overflowing tensor after a normal one: its prefetched float16 chunk is redone in float32; the next is float16 again', async () => {
  const a = tensor('a', 'BF16', 2, 64, 51);
  const big = tensor('big', 'F32', 2, 64, 52, (x) => huge(x));
  const c = tensor('c', 'BF16', 2, 64, 53);
  const plans = [planOf(a), planOf(big), planOf(c)];
  const refs = [
    await reference(a, plans[0], 'f16'),
    await reference(big, plans[1], 'f32'),
    await reference(c, plans[2], 'f16'),
  ];
  const { results, arrays } = await runAll([a, big, c], plans, { chunkBytes: 1 << 20 });
  assert.deepEqual(
    results.map((r) => r.scaleDtype),
    ['f16', 'f32', 'f16'],
  );
  for (let i = 0; i < 3; i++) {
    sameBytes(results[i], arrays, plans[i], refs[i].res);
    sameSums(results[i], refs[i], plans[i], 1);
  }
});

test('scales overflowing float16 after a chunk was written: an invalid-input error naming the file', async () => {
  const t = tensor('late', 'F32', 4, 64, 61, (x) => huge(x, 2 * 64));
  const p = planOf(t);
  const err = await errorOf(runAll([t], [p], { chunkBytes: 2 * 64 * 4 }));
  assert.ok(err instanceof ConvertError, String(err));
  assert.equal(err.code, 'invalid-input');
  assert.match(err.message, new RegExp(`^${FILE}: late: .*scaleDtype 'f32'`));
});

test('with float32 scales asked, an overflow is not retried: values that overflow even float32 are refused', async () => {
  const t = tensor('inf', 'F32', 2, 64, 71, (x) => {
    x[5] = 3e38;
    x[6] = -3e38;
  });
  const p = planOf(t);
  for (const scaleDtype of ['f16', 'f32'] as const) {
    const { ck, reads } = memCheckpoint([t]);
    const { writer } = memWriter();
    const err = await errorOf(quantizeTensor(p, { ...stageCtx(FILE, ck, writer), scaleDtype }));
    assert.ok(err instanceof ConvertError, String(err));
    assert.equal(err.code, 'invalid-input');
    assert.match(err.message, new RegExp(`^${FILE}: inf: `));
    // f16: refused, retried once in f32 (refused again); f32: refused, no retry.
    assert.equal(reads.length, scaleDtype === 'f16' ? 2 : 1, scaleDtype);
  }
});

test('a NaN is refused with the file named, and not retried as a scale overflow', async () => {
  const t = tensor('nan', 'BF16', 3, 64, 81, (x) => {
    x[70] = Number.NaN;
  });
  const p = planOf(t);
  const { ck, reads } = memCheckpoint([t]);
  const { writer } = memWriter();
  const err = await errorOf(quantizeTensor(p, { ...stageCtx(FILE, ck, writer), scaleDtype: 'f16' }));
  assert.ok(err instanceof ConvertError, String(err));
  assert.equal(err.code, 'invalid-input');
  assert.match(err.message, new RegExp(`^${FILE}: nan: NaN at index 70 \\(row 1, column 6\\)`));
  assert.equal(reads.length, 1, 'read once: not retried');
});

test('cancelled between chunks: the cancelled error, no further chunk written', async () => {
  const t = tensor('w', 'BF16', 6, 64, 91);
  await cancelledAfterFirstChunk((o) => runAll([t], [planOf(t)], o), 2 * 64 * 2);
});

test('the TypeScript reference engine (no addon): the output check is computed in TypeScript, with the same sums', async (t) => {
  _forceReference(true);
  t.after(() => _forceReference(false));
  const w = tensor('w', 'BF16', 9, 96, 101);
  const f = tensor('f', 'F16', 4, 48, 102);
  const pw = planOf(w);
  const pf = planOf(f, { groupSize: 16 } as Partial<QuantPlan>);
  const refW = await reference(w, pw, 'f16');
  const refF = await reference(f, pf, 'f32');
  assert.equal(refW.res.backend, 'ts-reference');
  assert.equal(refW.res.check, undefined);
  const split = await runAll([w], [pw], { chunkBytes: 4 * ROW });
  assert.deepEqual(split.rows.get('w'), [4, 8, 9]);
  assert.deepEqual([...split.backends], ['ts-reference']);
  sameBytes(split.results[0], split.arrays, pw, refW.res);
  sameSums(split.results[0], refW, pw, 3);
  const whole = await runAll([f], [pf], { chunkBytes: 1 << 20, scaleDtype: 'f32' });
  sameBytes(whole.results[0], whole.arrays, pf, refF.res);
  sameSums(whole.results[0], refF, pf, 1);
  near(whole.results[0].acc.refSq, refF.refSq, 1e-6, 'refSq of a fully sampled tensor');
  // Scales past float16: the switch to float32 scales also reaches the TypeScript check (4 bytes a group).
  const big = tensor('big', 'F32', 5, 64, 104, (x) => huge(x));
  const pb = planOf(big);
  const refB = await reference(big, pb, 'f32');
  const over = await runAll([big], [pb], { chunkBytes: 2 * 64 * 4 });
  assert.equal(over.results[0].scaleDtype, 'f32');
  sameBytes(over.results[0], over.arrays, pb, refB.res);
  sameSums(over.results[0], refB, pb, 3);
});

for (const engine of ['native', 'TypeScript'] as const) {
  test(`${engine} engine: 32 of 700 rows sampled (64 inputs), chunks with no sampled row, and one chunk`, async (t) => {
    if (engine === 'TypeScript') {
      _forceReference(true);
      t.after(() => _forceReference(false));
    }
    const big = tensor('big', 'BF16', 700, 16, 103);
    const pb = planOf(big, { groupSize: 16 } as Partial<QuantPlan>);
    const refB = await reference(big, pb, 'f16', 64);
    assert.equal(evalSample(700, 64).sampleRows, 32);
    const split = await runAll([big], [pb], { chunkBytes: 10 * 16 * 2, nEval: 64 });
    sameBytes(split.results[0], split.arrays, pb, refB.res);
    sameSums(split.results[0], refB, pb, 70, 64);
    const whole = await runAll([big], [pb], { chunkBytes: 1 << 20, nEval: 64 });
    sameSums(whole.results[0], refB, pb, 1, 64);
  });
}

test('the buffer pool: a buffer of the size asked, never one in use, the smallest free one that fits', () => {
  const pool = new BufferPool();
  const a = pool.take(100);
  const b = pool.take(100);
  assert.equal(a.byteLength, 100);
  assert.equal(a.byteOffset, 0);
  assert.notEqual(a.buffer, b.buffer, 'two live buffers are distinct');
  const z = pool.take(0);
  assert.equal(z.byteLength, 0);
  pool.give(a);
  const big = pool.take(101);
  assert.notEqual(big.buffer, a.buffer, 'a free buffer too small is not handed out');
  assert.equal(big.byteLength, 101);
  const a2 = pool.take(60);
  assert.equal(a2.buffer, a.buffer, 'a free buffer that fits is reused');
  assert.equal(a2.byteLength, 60);
  assert.notEqual(pool.take(60).buffer, a.buffer, 'and then it is in use');
  // Of the free ones that fit, the smallest.
  pool.give(big);
  pool.give(b);
  const c = pool.take(90);
  assert.equal(c.buffer, b.buffer);
  const d = pool.take(90);
  assert.equal(d.buffer, big.buffer);
  // An exact fit is taken.
  pool.give(d);
  assert.equal(pool.take(101).buffer, big.buffer);
});

test('the buffer pool: large buffers rounded up to whole 2 MiB, so a slightly larger request reuses them', () => {
  const HUGE = 2 * 1024 * 1024;
  const pool = new BufferPool();
  const small = pool.take(5000);
  assert.equal(small.buffer.byteLength, 5000, 'small buffers are not rounded');
  const x = pool.take(HUGE + 1);
  assert.equal(x.byteLength, HUGE + 1);
  pool.give(x);
  const y = pool.take(2 * HUGE);
  assert.equal(y.buffer, x.buffer, 'the rounded-up buffer serves 4 MiB');
  assert.equal(y.byteOffset, x.byteOffset, 'from the same start');
  assert.equal(pool.take(1).buffer.byteLength, 1);
  pool.give(y);
  const z = pool.take(2 * HUGE + 1);
  assert.notEqual(z.buffer, x.buffer, 'but not a byte more');
});

test('the buffer pool: a large buffer starts at a 2 MiB boundary, whole 2 MiB pages advised (none with APL_HUGE=0)', (t) => {
  const arena = (nativeAddon() as { inferArena?: Addon['inferArena'] } | null)?.inferArena;
  if (!arena) {
    t.skip('the native addon has no inferArena (npm run build:native): the pool falls back to plain buffers');
    return;
  }
  const HUGE = 2 * 1024 * 1024;
  // inferArena answers for a view: its first 2 MiB boundary (0: the view starts on one) and the whole pages from there
  const x = new BufferPool().take(3 * HUGE - 7);
  const a = arena(x.subarray(0, 3 * HUGE - 7));
  assert.equal(a.offset, 0, 'the view starts at a 2 MiB boundary');
  assert.equal(a.bytes, 2 * HUGE, 'its whole 2 MiB pages');
  const full = arena(new BufferPool().take(3 * HUGE));
  assert.deepEqual([full.offset, full.bytes], [0, 3 * HUGE], 'a request of whole pages: every page whole');
  const side = new BufferPool().take(HUGE / 4);
  const a4 = arena(new Uint8Array(side.buffer, side.byteOffset, HUGE));
  assert.deepEqual([a4.offset, a4.bytes], [0, HUGE], 'from 512 KiB: a whole 2 MiB page');
  assert.equal(new BufferPool().take(HUGE / 4 - 1).buffer.byteLength, HUGE / 4 - 1, 'below 512 KiB: not rounded');
  const before = process.env.APL_HUGE;
  process.env.APL_HUGE = '0';
  try {
    const plain = new BufferPool().take(3 * HUGE);
    assert.equal(plain.byteOffset, 0, 'APL_HUGE=0: a plain buffer');
    assert.equal(plain.buffer.byteLength, 3 * HUGE);
  } finally {
    if (before === undefined) delete process.env.APL_HUGE;
    else process.env.APL_HUGE = before;
  }
});

test('the buffer pool keeps six free buffers, dropping the smallest', () => {
  const pool = new BufferPool();
  const bufs = [10, 20, 30, 40, 50, 60, 70].map((n) => pool.take(n));
  for (const b of bufs) pool.give(b);
  // 10 was dropped: six takes of 1 byte get 20…70, smallest first, and the seventh a new buffer.
  const got = Array.from({ length: 7 }, () => pool.take(1).buffer);
  assert.deepEqual(
    got.slice(0, 6),
    bufs.slice(1).map((b) => b.buffer),
  );
  assert.ok(!bufs.some((b) => b.buffer === got[6]));
});

test('the buffer pool lends a free buffer at most twice the size asked, or 32 MiB more', () => {
  const MiB = 1024 * 1024;
  const pool = new BufferPool();
  const head = pool.take(132 * MiB); // an embedding's rows, say
  const mid = pool.take(23 * MiB);
  pool.give(head);
  pool.give(mid);
  const q = pool.take(2 * MiB);
  assert.equal(q.buffer, mid.buffer, '23 MiB is within 2 MiB + 32 MiB: lent');
  const other = pool.take(2 * MiB);
  assert.notEqual(other.buffer, head.buffer, '132 MiB is kept for a large request: a fresh one instead');
  assert.equal(pool.take(70 * MiB).buffer, head.buffer, 'twice 70 MiB covers it');
});

test('the buffer pool: twice the rounded size, so a 64 MiB buffer serves a request just under 32 MiB', () => {
  const MiB = 1024 * 1024;
  const pool = new BufferPool();
  const q8 = pool.take(64 * MiB); // an 8-bit q chunk, say
  pool.give(q8);
  // A 70B-shaped down projection's kquant q: 33546240 bytes, 16 KiB under 32 MiB (twice it is under 64 MiB).
  assert.equal(pool.take(33546240).buffer, q8.buffer, 'lent: a fresh one would be 32 MiB, twice that is 64 MiB');
  const b = pool.take(64 * MiB + 1); // rounded to 66 MiB
  pool.give(b);
  assert.notEqual(pool.take(31 * MiB + 1).buffer, b.buffer, 'over twice 32 MiB (and 32 MiB more): not lent');
});

test('the buffer pool keeps free buffers within maxFreeBytes, dropping the smallest', () => {
  const pool = new BufferPool(100);
  assert.equal(pool.maxFreeBytes, 100);
  const [a, b, c] = [30, 40, 50].map((n) => pool.take(n));
  for (const x of [a, b, c]) pool.give(x); // 120 bytes free: 30 is dropped
  assert.equal(pool.take(50).buffer, c.buffer);
  assert.equal(pool.take(40).buffer, b.buffer);
  assert.notEqual(pool.take(30).buffer, a.buffer, 'the smallest was dropped');
  // A buffer larger than the bound alone is not kept, and takes the others with it.
  const big = pool.take(150);
  const d = pool.take(20);
  pool.give(d);
  pool.give(big);
  assert.notEqual(pool.take(150).buffer, big.buffer);
  assert.notEqual(pool.take(20).buffer, d.buffer);
  // Unbounded by default (the six-buffer rule alone).
  const free = new BufferPool();
  const e = free.take(1 << 20);
  free.give(e);
  assert.equal(free.take(1 << 20).buffer, e.buffer);
});

test('the prefetch slot hands a job only to the tensor it was started for, once', () => {
  const s = new Prefetch();
  const j = Promise.resolve(1);
  assert.equal(s.take('a'), undefined);
  s.put('a', j);
  assert.equal(s.take('b'), undefined);
  assert.equal(s.take('a'), j);
  assert.equal(s.take('a'), undefined);
});

test("a tensor split on the engine's chunks of rows has the whole tensor's accuracy, bit for bit", async () => {
  const t = tensor('w', 'BF16', 150, 1024, 311);
  const p = planOf(t);
  assert.equal(rowsPerChunkFor(p, 100 * 1024 * 2), 64, "100 rows' bytes: rounded down to the engine's 64 rows");
  assert.equal(rowsPerChunkFor(p, 40 * 1024 * 2), 40, 'fewer than 64 rows fit: as many as fit');
  const split = await runAll([t], [p], { chunkBytes: 100 * 1024 * 2 });
  assert.deepEqual(split.rows.get('w'), [64, 128, 150]);
  const whole = await runAll([t], [p], { chunkBytes: 1 << 30 });
  assert.equal(whole.results[0].acc.chunks, 1);
  sameRunSums(split.results[0], whole.results[0], 'groupwise');
});
