// The quantize stage's read-ahead (server/src/convert/read-ahead.ts) and the next tensor started across types: the
// chunks after the one asked for are read while it is quantized, one read at a time and in order, no further ahead
// than the byte budget and two chunks allow; a chunk asked out of order is left to the caller; a failed read fails
// only its own taker. The last chunk of a kquant tensor starts a groupwise successor's first chunk (and the other
// way round) through the stage's startFirst, and the pipeline's outputs do not change (scripts/output-hashes.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool, Prefetch } from '../../../server/src/convert/buffer-pool';
import type { QuantPlan } from '../../../server/src/convert/plan';
import { quantizeKquantTensor, startKqChunk } from '../../../server/src/convert/quantize-kquant';
import { quantizeTensor, readChunk, startChunk } from '../../../server/src/convert/quantize-tensor';
import { type ChunkRef, ReadAhead } from '../../../server/src/convert/read-ahead';
import type { Checkpoint } from '../../../server/src/formats/safetensors';
import { kqPlanOf, type MemTensor, memCheckpoint, memWriter, planOf, stageCtx, tensor } from './quantize-harness';

/** Lets promise chains move on (reads start a few microtasks after they are chained). */
async function settle() {
  for (let i = 0; i < 8; i++) await Promise.resolve();
}

/** A checkpoint whose reads wait until the test lets them finish (or fail), logging when each started. */
function gatedCheckpoint() {
  const started: string[] = [];
  const pending: { key: string; done: (b: Buffer) => void; fail: (e: Error) => void }[] = [];
  const ck = {
    readRows(name: string, r0: number, count: number, into?: Uint8Array) {
      const key = `${name}@${r0}+${count}`;
      started.push(key);
      return new Promise<Buffer>((done, fail) =>
        pending.push({ key, done: () => done(Buffer.from(into?.buffer ?? new ArrayBuffer(0))), fail }),
      );
    },
  } as unknown as Checkpoint;
  /** Finishes the oldest read in flight (failing it with `e` if given) and lets the chain move on. */
  const finish = async (e?: Error) => {
    await settle();
    const p = pending.shift();
    assert.ok(p, 'a read in flight');
    if (e) p.fail(e);
    else p.done(Buffer.alloc(0));
    await settle();
    return p.key;
  };
  return { ck, started, pending, finish };
}

const chunk = (name: string, r0: number, count: number, bytes: number): ChunkRef => ({ name, r0, count, bytes });

test('chunks are read ahead in order, one read at a time, at most two beyond the one asked for', async () => {
  const chunks = [chunk('a', 0, 4, 100), chunk('a', 4, 2, 50), chunk('b', 0, 8, 100), chunk('c', 0, 1, 10)];
  const { ck, started, pending, finish } = gatedCheckpoint();
  const taken: number[] = [];
  const ra = new ReadAhead(
    ck,
    chunks,
    (n) => {
      taken.push(n);
      return new Uint8Array(n);
    },
    1000,
  );
  const a0 = ra.readNow('a', 0, 4);
  assert.ok(a0, 'the expected chunk comes from the read-ahead');
  await settle();
  assert.deepEqual(started, ['a@0+4'], 'one read at a time');
  assert.deepEqual(taken, [100, 50, 100], 'buffers for a@0, a@4 and b@0 (two ahead), not c yet');
  assert.equal(await finish(), 'a@0+4');
  assert.deepEqual(started, ['a@0+4', 'a@4+2'], 'the next read starts when the one before it ended');
  await a0;
  await finish();
  assert.deepEqual(started, ['a@0+4', 'a@4+2', 'b@0+8']);
  const a1 = ra.readNow('a', 4, 2);
  assert.ok(a1);
  assert.deepEqual(taken, [100, 50, 100, 10], 'asking for a@4 lets c be read ahead');
  await finish();
  await finish();
  assert.deepEqual(started, ['a@0+4', 'a@4+2', 'b@0+8', 'c@0+1']);
  assert.equal(pending.length, 0);
  assert.ok(ra.readNow('b', 0, 8));
  assert.ok(ra.readNow('c', 0, 1));
  assert.equal(ra.readNow('c', 0, 1), undefined, 'past the last chunk: the caller reads');
});

test('the byte budget bounds the read-ahead; a chunk over it is read when its turn comes', async () => {
  const chunks = [chunk('a', 0, 1, 60), chunk('b', 0, 1, 50), chunk('c', 0, 1, 200), chunk('d', 0, 1, 10)];
  const { ck, started, finish } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 120);
  ra.readNow('a', 0, 1);
  await finish();
  await finish().catch(() => {});
  assert.deepEqual(started, ['a@0+1', 'b@0+1'], 'a (60) + b (50) fit 120; c (200) does not');
  ra.readNow('b', 0, 1);
  assert.deepEqual(started, ['a@0+1', 'b@0+1'], 'b (50) + c (200) is over the budget: c waits');
  const c = ra.readNow('c', 0, 1);
  assert.ok(c, 'c is read when asked for, over the budget or not');
  await settle();
  assert.deepEqual(started, ['a@0+1', 'b@0+1', 'c@0+1'], 'only c: c (200) + d (10) is over the budget too');
  await finish();
  await c;
  ra.readNow('d', 0, 1);
  await settle();
  assert.deepEqual(started, ['a@0+1', 'b@0+1', 'c@0+1', 'd@0+1']);
});

/** A ReadAhead that takes its buffers from pool as the converter does; fresh lists the sizes no free buffer served. */
function pooledReadAhead(
  ck: ConstructorParameters<typeof ReadAhead>[0],
  chunks: ConstructorParameters<typeof ReadAhead>[1],
  pool: BufferPool,
  budget: number,
): { ra: ReadAhead; fresh: number[] } {
  const fresh: number[] = [];
  const take = (n: number) => {
    const r = pool.reuse(n);
    if (!r) fresh.push(n);
    return r ?? pool.take(n);
  };
  const ra = new ReadAhead(ck, chunks, take, budget, { reuse: (n) => pool.reuse(n), lends: BufferPool.lends });
  return { ra, fresh };
}

test('with the pool: a chunk two ahead waits for a buffer coming back rather than take a fresh one', async () => {
  // gate, up, down (23 each) after o (8): the shape of the small checkpoint's first layer.
  const chunks = [chunk('o', 0, 1, 8), chunk('gate', 0, 1, 23), chunk('up', 0, 1, 23), chunk('down', 0, 1, 23)];
  const { ck, started, finish } = gatedCheckpoint();
  const pool = new BufferPool();
  const { ra, fresh } = pooledReadAhead(ck, chunks, pool, 1000);
  const o = ra.readNow('o', 0, 1)!;
  // gate (next) fresh; up (two ahead): no free buffer, and o's 8 bytes would not be lent for 23: fresh as before.
  assert.deepEqual(fresh, [8, 23, 23]);
  await finish();
  const oRows = await o;
  await finish();
  await finish();
  assert.deepEqual(started, ['o@0+1', 'gate@0+1', 'up@0+1']);
  pool.give(oRows);
  const gate = ra.readNow('gate', 0, 1)!;
  const gateRows = await gate;
  await settle();
  // down (two ahead of gate): no free buffer of 23, but gate's rows (23) come back: it waits.
  assert.deepEqual(started, ['o@0+1', 'gate@0+1', 'up@0+1'], 'down waits');
  assert.deepEqual(fresh, [8, 23, 23]);
  pool.give(gateRows); // gate quantized: its rows given back
  const up = ra.readNow('up', 0, 1)!;
  await settle();
  assert.deepEqual(started, ['o@0+1', 'gate@0+1', 'up@0+1', 'down@0+1'], 'down is read when up is asked for');
  assert.deepEqual(fresh, [8, 23, 23], 'into gate’s buffer: no fresh one');
  await up;
  await finish();
  const down = await ra.readNow('down', 0, 1)!;
  assert.equal(down.buffer, gateRows.buffer);
});

test('with the pool: the chunk right after the one asked for never waits for a buffer coming back', async () => {
  const chunks = [chunk('a', 0, 1, 10), chunk('b', 0, 1, 10), chunk('c', 0, 1, 10)];
  const { ck, started, finish } = gatedCheckpoint();
  const pool = new BufferPool();
  const { ra, fresh } = pooledReadAhead(ck, chunks, pool, 20);
  ra.readNow('a', 0, 1);
  await finish();
  await finish();
  assert.deepEqual(started, ['a@0+1', 'b@0+1'], 'the budget (20) holds a and b');
  ra.readNow('b', 0, 1); // a's rows not given back: c, next after b, takes a fresh buffer rather than wait
  await finish();
  assert.deepEqual(started, ['a@0+1', 'b@0+1', 'c@0+1']);
  assert.deepEqual(fresh, [10, 10, 10]);
});

test('with the pool: a chunk two ahead takes a free buffer when there is one', async () => {
  const MiB = 1024 * 1024;
  const chunks = [chunk('a', 0, 1, MiB), chunk('b', 0, 1, MiB), chunk('c', 0, 1, 40 * MiB)];
  const { ck, started } = gatedCheckpoint();
  const pool = new BufferPool();
  const spare = pool.take(64 * MiB); // not lent for 1 MiB, lent for 40 MiB
  pool.give(spare);
  const { ra, fresh } = pooledReadAhead(ck, chunks, pool, 1 << 30);
  ra.readNow('a', 0, 1);
  await settle();
  assert.deepEqual(started, ['a@0+1']);
  assert.deepEqual(fresh, [MiB, MiB], 'a and b through take; c two ahead from the free list');
  assert.equal(pool.reuse(40 * MiB), undefined, 'the spare went to c');
});

test('a chunk asked out of order is left to the caller and starts nothing', async () => {
  const chunks = [chunk('a', 0, 4, 100), chunk('b', 0, 8, 100)];
  const { ck, started } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 1000);
  assert.equal(ra.readNow('b', 0, 8), undefined, 'b is not next');
  assert.equal(ra.readNow('a', 0, 2), undefined, 'other rows of a are not the chunk');
  await settle();
  assert.deepEqual(started, []);
  assert.ok(ra.readNow('a', 0, 4));
});

test('a failed read fails its own taker only; the reads after it still run', async () => {
  const chunks = [chunk('a', 0, 1, 10), chunk('b', 0, 1, 10)];
  const { ck, started, finish } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 1000);
  const a = ra.readNow('a', 0, 1)!;
  await finish(new Error('disk says no'));
  assert.ok(a instanceof Promise, 'a: still being read');
  await assert.rejects(a, /disk says no/);
  assert.deepEqual(started, ['a@0+1', 'b@0+1']);
  const b = ra.readNow('b', 0, 1)!;
  await finish();
  await b;
});

test('a read with none before it is issued in the same turn; one behind another waits for it', async () => {
  const chunks = [chunk('a', 0, 1, 10), chunk('b', 0, 1, 10)];
  const { ck, started, finish } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 1000);
  ra.readNow('a', 0, 1);
  assert.deepEqual(started, ['a@0+1'], 'a at once: the caller prepares its call while the disk reads');
  await settle();
  assert.deepEqual(started, ['a@0+1'], 'b (read ahead) waits for a');
  await finish();
  assert.deepEqual(started, ['a@0+1', 'b@0+1']);
  await finish();
  const late = new ReadAhead(ck, [chunk('a', 0, 1, 10)], (n) => new Uint8Array(n), 1000);
  late.readNow('a', 0, 1);
  assert.equal(started.length, 3, 'nothing in flight again: at once');
  await finish();
});

test('the bytes of the reads in flight count against the budget, up to it exactly', async () => {
  const chunks = [chunk('a', 0, 1, 60), chunk('b', 0, 1, 50), chunk('c', 0, 1, 60), chunk('d', 0, 1, 10)];
  const { ck, started, finish } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 120);
  ra.readNow('a', 0, 1);
  await settle();
  assert.deepEqual(started, ['a@0+1'], 'b waits for a on the chain');
  await finish();
  await finish();
  assert.deepEqual(started, ['a@0+1', 'b@0+1'], 'a (60) + b (50) fit 120; c (60) more would not');
  ra.readNow('b', 0, 1); // b (50) + c (60) = 110 fit; + d (10) = 120: exactly the budget, fits too
  await finish();
  await finish();
  assert.deepEqual(started, ['a@0+1', 'b@0+1', 'c@0+1', 'd@0+1']);
});

test('a read asked again, or with the rows of another chunk, is left to the caller', async () => {
  const chunks = [chunk('a', 0, 2, 10), chunk('a', 2, 2, 10)];
  const { ck, finish } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 1000);
  assert.equal(ra.readNow('a', 2, 2), undefined, 'the second chunk first: not the one expected');
  assert.equal(ra.readNow('x', 0, 2), undefined, 'another tensor with the same rows');
  assert.ok(ra.readNow('a', 0, 2));
  assert.equal(ra.readNow('a', 0, 2), undefined, 'taken once');
  await finish();
  await finish();
  assert.equal(ra.held, 1, 'the second chunk, read ahead, is held until taken');
  assert.ok(ra.readNow('a', 2, 2) instanceof Buffer);
  assert.equal(ra.held, 0, 'nothing held once every chunk is taken');
});

test('after the reads in flight end, the next read is issued at once again', async () => {
  const chunks = [chunk('a', 0, 1, 10), chunk('b', 0, 1, 10), chunk('c', 0, 1, 200)];
  const { ck, started, finish } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 100);
  ra.readNow('a', 0, 1);
  await finish();
  await finish();
  assert.deepEqual(started, ['a@0+1', 'b@0+1'], 'c (200) is over the budget: read when asked for');
  ra.readNow('b', 0, 1);
  ra.readNow('c', 0, 1);
  assert.deepEqual(started, ['a@0+1', 'b@0+1', 'c@0+1'], 'nothing in flight: c at once');
  await finish();
  assert.equal(ra.held, 0);
});

test('readNow hands over the rows of a read that has ended, and the promise of one still in flight', async () => {
  const chunks = [chunk('a', 0, 1, 10), chunk('b', 0, 1, 10), chunk('c', 0, 1, 10)];
  const { ck, finish } = gatedCheckpoint();
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(n), 1000);
  const a = ra.readNow('a', 0, 1);
  assert.ok(a instanceof Promise, 'a: still being read');
  await finish();
  await finish(); // b read ahead, not yet asked for
  assert.ok((await a) instanceof Buffer);
  const b = ra.readNow('b', 0, 1);
  assert.ok(b instanceof Buffer, 'b: read before it was asked for, so the rows themselves');
  await finish();
  assert.ok(ra.readNow('c', 0, 1) instanceof Buffer);
  assert.equal(ra.readNow('c', 0, 1), undefined, 'taken once');
});

test('readChunk gives rows already read with their options at once (the engine starts in the same turn)', async () => {
  const t = tensor('w', 'BF16', 4, 64, 311);
  const u = tensor('u', 'BF16', 2, 64, 312);
  const p = planOf(t);
  const half = t.raw.length / 2;
  const { ck } = memCheckpoint([t, u]);
  const { writer } = memWriter();
  const prefetch = new Prefetch();
  const ctx = stageCtx('/m/model.safetensors', ck, writer, { prefetch });
  const chunks = [chunk('w', 0, 2, half), chunk('w', 2, 2, half)];
  prefetch.readAhead = new ReadAhead(ck, chunks, (n) => prefetch.buffers.take(n), 1 << 20);
  const first = readChunk(ctx, p, 0, 2);
  assert.ok(first instanceof Promise, 'w@0 asked for before its read ended: a promise');
  assert.deepEqual((await first).raw, t.raw.subarray(0, half));
  await settle(); // w@2 read ahead meanwhile
  const second = readChunk(ctx, p, 2, 2, { fSq: 5 });
  assert.ok(!(second instanceof Promise), 'w@2 already read: rows and options now');
  assert.deepEqual(second.raw, t.raw.subarray(half));
  assert.equal(second.options.rows, 2);
  assert.equal(second.options.check.fSqFrom, 5, 'the check continues the chain it was given');
  const direct = readChunk(ctx, planOf(u), 0, 2);
  assert.ok(direct instanceof Promise, 'u is no read-ahead chunk: read by the caller, a promise');
  assert.deepEqual((await direct).raw, u.raw);
});

test('ReadAhead.chunksOf lists each plan in chunks of its rows, with their bytes', () => {
  const p = (name: string, rows: number, cols: number) => ({ name, rows, cols, dtype: 'BF16' }) as QuantPlan;
  const chunks = ReadAhead.chunksOf(
    [p('a', 5, 4), p('b', 2, 8), p('c', 4, 1)],
    (x) => (x.name === 'a' ? 2 : x.name === 'b' ? 8 : 2),
    () => 2,
  );
  assert.deepEqual(chunks, [
    chunk('a', 0, 2, 16),
    chunk('a', 2, 2, 16),
    chunk('a', 4, 1, 8),
    chunk('b', 0, 2, 32),
    chunk('c', 0, 2, 4),
    chunk('c', 2, 2, 4),
  ]);
});

const kqPlan = (t: MemTensor) => kqPlanOf(t);
const gwPlan = (t: MemTensor) => planOf(t, { bits: 8 } as Partial<QuantPlan>);

test("a tensor's last chunk starts the following tensor of the other type through startFirst, and it is taken", async () => {
  const k = tensor('k', 'BF16', 6, 96, 301);
  const g = tensor('g', 'BF16', 4, 64, 302);
  const k2 = tensor('k2', 'BF16', 3, 96, 303);
  const pk = kqPlan(k);
  const pg = gwPlan(g);
  const pk2 = kqPlan(k2);
  const { ck, reads } = memCheckpoint([k, g, k2]);
  const { writer } = memWriter();
  const prefetch = new Prefetch();
  const asked: string[] = [];
  const ctx = stageCtx('/m/model.safetensors', ck, writer, { chunkBytes: 4 * 96 * 2, prefetch });
  prefetch.startFirst = (p) => {
    asked.push(p.name);
    return p.kq ? startKqChunk(ctx, p, 0, p.rows) : startChunk(ctx, p, 0, p.rows, 'f16');
  };
  await quantizeKquantTensor(pk, { ...ctx, following: pg });
  assert.deepEqual(asked, ['g'], "k's last chunk started g");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(
    reads.map((r) => `${r.name}@${r.r0}`),
    ['k@0', 'k@4', 'g@0'],
    "g's rows read during k's run",
  );
  await quantizeTensor(pg, { ...ctx, scaleDtype: 'f16', following: pk2 });
  assert.deepEqual(asked, ['g', 'k2'], "g's last chunk started k2");
  assert.deepEqual(
    reads.map((r) => `${r.name}@${r.r0}`),
    ['k@0', 'k@4', 'g@0', 'k2@0'],
    'g taken from the slot (not read again)',
  );
  await quantizeKquantTensor(pk2, ctx);
  assert.equal(reads.length, 4, 'k2 taken from the slot');
});
