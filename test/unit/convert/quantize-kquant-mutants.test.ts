// quantizeKquantTensor (the two-level-scale per-tensor stage) in process, with hand-made tensors and the engine, so
// mutation testing reaches it: a tensor read in chunks of any size gives the four arrays one whole-tensor kquantize
// call gives (q streamed; codes, d and dmin after it; each member's shape and CRC), progress on whole rows, each row
// read once, the next kquant tensor's first chunk prefetched and taken (a groupwise one not), refusals naming the
// file; the accuracy sums against an independent computation, with the addon and with the TypeScript engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { _kqForceReference, kqSizes, kquantize } from '../../../native/kquant';
import { evalSample } from '../../../server/src/convert/accuracy';
import { Prefetch } from '../../../server/src/convert/buffer-pool';
import { ConvertError } from '../../../server/src/convert/errors';
import type { QuantPlan } from '../../../server/src/convert/plan';
import { benchKqChecks, quantizeKquantTensor } from '../../../server/src/convert/quantize-kquant';
import { kquantMemberNames } from '../../../server/src/formats/manifest';
import {
  cancelledAfterFirstChunk,
  chunkedAsOneCall,
  errorOf,
  kqPlanOf,
  type MemTensor,
  memCheckpoint,
  memWriter,
  near,
  type RunOpts,
  readOnce,
  runPlans,
  sameRunSums,
  sameSums,
  stageCtx,
  sumSquaresOf,
  tensor,
} from './quantize-harness';

const FILE = '/models/m/model-00001-of-00002.safetensors';

async function reference(t: MemTensor, p: QuantPlan, nEval = 4) {
  const kq = p.kq!;
  const res = await kquantize({
    ...kq,
    data: t.raw,
    dtype: t.dtype.toLowerCase() as 'bf16',
    rows: t.rows,
    cols: t.cols,
    metrics: true,
  });
  const check = benchKqChecks(p, t.raw, res, { nEval, chunkBytes: 1 << 30 }).inTs();
  return { res, check, refSq: sumSquaresOf(t) };
}
type Ref = Awaited<ReturnType<typeof reference>>;

function runAll(tensors: MemTensor[], plans: QuantPlan[], o: RunOpts) {
  return runPlans(quantizeKquantTensor, FILE, tensors, plans, o);
}
type Result = Omit<Awaited<ReturnType<typeof runAll>>['results'][number], 'readsDuring'>;

/** The four members equal the whole-tensor call's arrays, with their shapes, dtypes and CRCs. */
function sameArrays(r: Result, arrays: ReturnType<typeof memWriter>['arrays'], p: QuantPlan, ref: Ref, chunks: number) {
  const kq = p.kq!;
  const names = kquantMemberNames(p.name, p.bits);
  const per = kqSizes(1, p.cols, kq);
  const supers = Math.ceil(p.cols / kq.super);
  const want = {
    q: { dtype: 'uint8', shape: [p.rows, per.q], bytes: ref.res.q, crc: r.crc.q },
    q_codes: {
      dtype: 'uint8',
      shape: [p.rows, Math.ceil((Math.ceil(p.cols / kq.group) * (kq.scaleBits + kq.minBits)) / 8)],
      bytes: ref.res.codes,
      crc: r.crc.q_codes,
    },
    q_d: { dtype: 'float16', shape: [p.rows, supers], bytes: ref.res.d, crc: r.crc.q_d },
    q_dmin: { dtype: 'float16', shape: [p.rows, supers], bytes: ref.res.dmin, crc: r.crc.q_dmin },
  };
  assert.equal(want.q_codes.shape[1], per.codes, 'codes per row as the engine sizes them');
  for (const [k, w] of Object.entries(want)) {
    const got = arrays.get(names[k as keyof typeof names]);
    assert.ok(got, `${p.name}: ${k} written`);
    assert.deepEqual(got.header, { dtype: w.dtype, shape: w.shape }, `${p.name}: ${k} header`);
    assert.ok(Buffer.from(w.bytes).equals(got.bytes), `${p.name}: ${k} equals the whole-tensor call's`);
    assert.equal(w.crc, got.crc32, `${p.name}: ${k}'s CRC-32`);
    assert.equal(got.chunks, chunks, `${p.name}: ${k} in one piece per chunk`);
  }
}

// 7 × 96 bf16 (4-bit: 4 groups, one ragged super-block); a row is 192 bytes.
const ROW = 96 * 2;
const sizes: Array<[string, number, number[]]> = [
  ['a chunk smaller than one row', 50, [1, 2, 3, 4, 5, 6, 7]],
  ['exactly one row', ROW, [1, 2, 3, 4, 5, 6, 7]],
  ['3 rows, 7 not a multiple', 3 * ROW, [3, 6, 7]],
  ['a byte short of 3 rows', 3 * ROW - 1, [2, 4, 6, 7]],
  ['the whole tensor exactly', 7 * ROW, [7]],
  ['more than the tensor', 1 << 20, [7]],
];

for (const [label, chunkBytes, expectRows] of sizes) {
  test(`kquant chunk size: ${label}: the same four arrays and sums as one call`, async () => {
    const t = tensor('w', 'BF16', 7, 96, 211);
    const p = kqPlanOf(t);
    const ref = await reference(t, p);
    const run = await runAll([t], [p], { chunkBytes });
    sameArrays(run.results[0], run.arrays, p, ref, expectRows.length);
    chunkedAsOneCall(run, t, p, ref, expectRows);
  });
}

test('kquant 2-bit, f32 and f16 sources, ragged groups and super-blocks', async () => {
  const a = tensor('a', 'F32', 5, 272, 221);
  const b = tensor('b', 'F16', 1, 40, 222);
  const pa = kqPlanOf(a, 2);
  const pb = kqPlanOf(b, 2);
  const refA = await reference(a, pa);
  const refB = await reference(b, pb);
  const { results, arrays, rows, reads } = await runAll([a, b], [pa, pb], { chunkBytes: 2 * 272 * 4 });
  assert.deepEqual(rows.get('a'), [2, 4, 5]);
  assert.deepEqual(rows.get('b'), [1]);
  sameArrays(results[0], arrays, pa, refA, 3);
  sameArrays(results[1], arrays, pb, refB, 1);
  sameSums(results[0], refA, pa, 3);
  sameSums(results[1], refB, pb, 1);
  readOnce(reads, a, 2);
  readOnce(reads, b, 1);
});

test("the next kquant tensor's first chunk is started early and taken; a groupwise next is left alone", async () => {
  const a = tensor('a', 'BF16', 6, 96, 231);
  const b = tensor('b', 'BF16', 9, 48, 232);
  const g = tensor('g', 'BF16', 4, 96, 233);
  const pa = kqPlanOf(a);
  const pb = kqPlanOf(b);
  const pg = { ...kqPlanOf(g), kq: undefined } as QuantPlan;
  const refA = await reference(a, pa);
  const refB = await reference(b, pb);
  const { ck, reads } = memCheckpoint([a, b, g]);
  const { writer, arrays } = memWriter();
  const prefetch = new Prefetch();
  const rowsSeen: number[] = [];
  const ctx = stageCtx(FILE, ck, writer, {
    chunkBytes: 4 * 96 * 2, // a: 4 rows a chunk; b: 8
    onRows: (n: number) => rowsSeen.push(n),
    prefetch,
  });
  const ra = await quantizeKquantTensor(pa, { ...ctx, next: pb });
  assert.deepEqual(
    reads.map((r) => [r.name, r.r0, r.count]),
    [
      ['a', 0, 4],
      ['a', 4, 2],
      ['b', 0, 8],
    ],
    "b's first chunk read during a's run",
  );
  const rb = await quantizeKquantTensor(pb, { ...ctx, next: pg });
  assert.deepEqual(
    reads.slice(3).map((r) => [r.name, r.r0, r.count]),
    [['b', 8, 1]],
    "b's first chunk taken from the slot; the groupwise g not started",
  );
  assert.deepEqual(rowsSeen, [4, 6, 8, 9]);
  sameArrays(ra, arrays, pa, refA, 2);
  sameArrays(rb, arrays, pb, refB, 2);
  sameSums(ra, refA, pa, 2);
  sameSums(rb, refB, pb, 2);
  assert.equal(prefetch.take('g'), undefined);
});

test('a plan without a kquant format is refused as an internal error', async () => {
  const t = tensor('w', 'BF16', 2, 48, 241);
  const { ck } = memCheckpoint([t]);
  const { writer } = memWriter();
  await assert.rejects(
    quantizeKquantTensor({ ...kqPlanOf(t), kq: undefined } as QuantPlan, stageCtx(FILE, ck, writer)),
    (e) => e instanceof ConvertError && e.code === 'internal' && e.message === 'w: not a kquant plan',
  );
});

for (const [label, at, chunkBytes] of [
  ['in the first chunk', 70, 1 << 20],
  ['in a later chunk', 3 * 96 + 5, 2 * 96 * 2],
] as const) {
  test(`kquant: a NaN ${label} is refused as invalid input naming the file`, async () => {
    const t = tensor('nan', 'BF16', 4, 96, 251, (x) => {
      x[at] = Number.NaN;
    });
    const err = await errorOf(runAll([t], [kqPlanOf(t)], { chunkBytes }));
    assert.ok(err instanceof ConvertError, String(err));
    assert.equal(err.code, 'invalid-input');
    assert.match(err.message, new RegExp(`^${FILE}: nan: .*NaN`));
  });
}

test('kquant: cancelled between chunks gives the cancelled error', async () => {
  const t = tensor('w', 'BF16', 6, 96, 261);
  await cancelledAfterFirstChunk((o) => runAll([t], [kqPlanOf(t)], o), 2 * ROW);
});

test('kquant with the TypeScript engine (no addon): the check computed in TypeScript, the same sums', async (t) => {
  _kqForceReference(true);
  t.after(() => _kqForceReference(false));
  const w = tensor('w', 'BF16', 9, 96, 271);
  const pw = kqPlanOf(w);
  const refW = await reference(w, pw);
  assert.equal(refW.res.backend, 'ts-reference');
  assert.equal(refW.res.check, undefined);
  const split = await runAll([w], [pw], { chunkBytes: 4 * ROW });
  assert.deepEqual([...split.backends], ['ts-reference']);
  sameArrays(split.results[0], split.arrays, pw, refW, 3);
  sameSums(split.results[0], refW, pw, 3);
  const f = tensor('f', 'F16', 3, 40, 272);
  const pf = kqPlanOf(f, 2);
  const refF = await reference(f, pf);
  const whole = await runAll([f], [pf], { chunkBytes: 1 << 20 });
  sameArrays(whole.results[0], whole.arrays, pf, refF, 1);
  sameSums(whole.results[0], refF, pf, 1);
  near(whole.results[0].acc.refSq, refF.refSq, 1e-6, 'refSq of a fully sampled tensor');
});

for (const engine of ['native', 'TypeScript'] as const) {
  test(`kquant, ${engine} engine: 32 of 700 rows sampled (64 inputs), chunks with no sampled row, and one chunk`, async (t) => {
    if (engine === 'TypeScript') {
      _kqForceReference(true);
      t.after(() => _kqForceReference(false));
    }
    const big = tensor('big', 'BF16', 700, 16, 273);
    const pbig = kqPlanOf(big, 2);
    const refB = await reference(big, pbig, 64);
    assert.equal(evalSample(700, 64).sampleRows, 32);
    const split = await runAll([big], [pbig], { chunkBytes: 10 * 16 * 2, nEval: 64 });
    sameArrays(split.results[0], split.arrays, pbig, refB, 70);
    sameSums(split.results[0], refB, pbig, 70, 64);
    const whole = await runAll([big], [pbig], { chunkBytes: 1 << 20, nEval: 64 });
    sameSums(whole.results[0], refB, pbig, 1, 64);
  });
}

test("kquant: a tensor split on the engine's chunks of rows has the whole tensor's accuracy, bit for bit", async () => {
  const t = tensor('w', 'BF16', 150, 1024, 312);
  const p = kqPlanOf(t);
  const split = await runAll([t], [p], { chunkBytes: 100 * 1024 * 2 });
  assert.equal(split.results[0].acc.chunks, 3, "chunks of 64 rows (the engine's), not 100");
  const whole = await runAll([t], [p], { chunkBytes: 1 << 30 });
  sameRunSums(split.results[0], whole.results[0], 'kquant');
});

test('kquant: codes, d and dmin are views of reused buffers (one per chunk in flight), every byte written', async () => {
  const ts = [1, 2, 3].map((i) => tensor(`t${i}`, 'BF16', 6, 96, 240 + i));
  const ps = ts.map((t) => kqPlanOf(t));
  const refs = await Promise.all(ts.map((t, i) => reference(t, ps[i])));
  const run = await runAll(ts, ps, { chunkBytes: 2 * 96 * 2 });
  const behind = new Set<ArrayBufferLike>();
  for (let i = 0; i < 3; i++) {
    // A reused buffer holds the last tensor's bytes: the arrays equal one call's only if every byte is rewritten.
    sameArrays(run.results[i], run.arrays, ps[i], refs[i], 3);
    const names = kquantMemberNames(ps[i].name, ps[i].bits);
    const codes = run.arrays.get(names.q_codes)!.buffers;
    for (const m of [names.q_d, names.q_dmin])
      for (const b of run.arrays.get(m)!.buffers) assert.ok(codes.has(b), `${m}: in its chunk's codes buffer`);
    for (const b of codes) behind.add(b);
  }
  assert.ok(behind.size <= 5, `9 chunks' side arrays in ${behind.size} buffers (fresh ones would be 9)`);
});
