// Source rows mapped instead of read (server/src/convert/mapped-rows.ts, native mapFile / unmapFile in io.cc): a
// mapping holds the file's exact bytes at any offset, is unmapped (detached) once given back, and is never kept by the
// buffer pool; the read-ahead maps instead of taking pooled buffers, and reads when a chunk cannot be mapped; a
// conversion writes the same bytes mapped (APL_CONVERT_MMAP=1, opt-in) and read (the default).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { engineInfo, mapFile, unmapFile } from '../../../native/index';
import { rowMapper, unmapRows } from '../../../server/src/convert/mapped-rows';
import { convertModel } from '../../../server/src/convert/pipeline';
import { BufferPool } from '../../../server/src/convert/quantize-tensor';
import { type ChunkRef, ReadAhead } from '../../../server/src/convert/read-ahead';
import { encodeSafetensors, openCheckpoint } from '../../../server/src/formats/safetensors';
import { tempDir, tinyModel } from './helpers';

const native = engineInfo().native;
const skip = native ? false : 'the addon is not built';

/** bytes 0..n-1 with a pattern that differs at every offset mod 251. */
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) % 251);

/** A setter of APL_CONVERT_MMAP (undefined: unset) for the rest of the test; the old value comes back after it. */
function mmapEnv(t: { after(fn: () => void): void }): (v?: string) => void {
  const set = (v?: string) => {
    if (v === undefined) delete process.env.APL_CONVERT_MMAP;
    else process.env.APL_CONVERT_MMAP = v;
  };
  const before = process.env.APL_CONVERT_MMAP;
  t.after(() => set(before));
  return set;
}

test('mapFile gives the file bytes at any offset and length; unmapFile detaches them once', { skip }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'bytes.bin');
  const data = pattern(3 * 4096 + 123);
  writeFileSync(file, data);
  for (const [off, len] of [
    [0, data.length],
    [1, 10],
    [4095, 2],
    [4096, 4096],
    [5000, data.length - 5000],
    [data.length, 0],
  ]) {
    const v = await mapFile(file, off, len);
    assert.ok(v, 'mapped');
    assert.deepEqual(Buffer.from(v), Buffer.from(data.subarray(off, off + len)), `bytes at ${off}+${len}`);
    if (len === 0) continue;
    assert.equal(unmapFile(v), true, 'a mapping is unmapped');
    assert.equal(v.length, 0, 'its view is detached');
    assert.equal(unmapFile(v), false, 'only once');
  }
  const view = await mapFile(file, 100, 1000);
  assert.ok(view);
  const other = Buffer.from(view!.buffer, view!.byteOffset + 10, 20);
  assert.equal(unmapFile(other), true, 'any view of the mapping unmaps it');
  assert.equal(view!.length, 0);
  assert.equal(unmapFile(new Uint8Array(4096)), false, 'a plain buffer is not a mapping');
  await assert.rejects(mapFile(file, data.length - 10, 11), /EINVAL/, 'past the end of the file');
  await assert.rejects(mapFile(join(dir, 'missing'), 0, 1), /ENOENT/);
});

/** A checkpoint of two files with 2-D bf16 tensors at odd offsets (the headers' lengths are not page multiples). */
async function twoFileCheckpoint(dir: string) {
  const t = (name: string, rows: number, cols: number, seed: number) => ({
    name,
    dtype: 'BF16' as const,
    shape: [rows, cols],
    data: pattern(rows * cols * 2 + seed).subarray(seed),
  });
  writeFileSync(join(dir, 'a.safetensors'), encodeSafetensors([t('x', 7, 33, 1), t('y', 300, 40, 5)]));
  writeFileSync(join(dir, 'b.safetensors'), encodeSafetensors([t('z', 5, 2048, 3)], { note: 'odd header' }));
  return openCheckpoint(dir);
}

test('rowMapper maps the rows readRows reads, and maps nothing it cannot', { skip }, async (t) => {
  const ck = await twoFileCheckpoint(tempDir(t));
  t.after(() => ck.close());
  const env = mmapEnv(t);
  env(undefined);
  assert.equal(rowMapper(ck), undefined, 'off by default');
  env('0');
  assert.equal(rowMapper(ck), undefined, 'APL_CONVERT_MMAP=0: off');
  env('1');
  const map = rowMapper(ck);
  assert.ok(map, 'APL_CONVERT_MMAP=1: on');
  for (const [name, r0, count, cols] of [
    ['x', 0, 7, 33],
    ['x', 3, 2, 33],
    ['y', 129, 171, 40],
    ['z', 1, 4, 2048],
  ] as const) {
    const c: ChunkRef = { name, r0, count, bytes: count * cols * 2 };
    const v = await map(c);
    assert.ok(v, `${name}@${r0} mapped`);
    assert.deepEqual(v, await ck.readRows(name, r0, count), `${name}@${r0}+${count}: the same bytes`);
    assert.equal(unmapRows(v!), true);
  }
  assert.equal(await map({ name: 'x', r0: 6, count: 2, bytes: 2 * 66 }), undefined, 'rows past the tensor');
  assert.equal(await map({ name: 'nope', r0: 0, count: 1, bytes: 2 }), undefined, 'an unknown tensor');
});

test('the buffer pool unmaps mapped rows given back and never lends them', { skip }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'rows.bin');
  writeFileSync(file, pattern(1 << 16));
  const pool = new BufferPool();
  const mapped = await mapFile(file, 0, 1 << 16);
  assert.ok(mapped);
  pool.give(mapped!);
  assert.equal(mapped!.length, 0, 'unmapped when given back');
  const plain = pool.take(1000);
  pool.give(plain);
  assert.equal(pool.take(1000).buffer, plain.buffer, 'a plain buffer is still kept and lent again');
  assert.notEqual(pool.reuse(1000)?.buffer, mapped!.buffer, 'the mapping is not in the pool');
});

test('the read-ahead maps chunks instead of taking buffers, and reads those it cannot map', async () => {
  const chunks: ChunkRef[] = [
    { name: 'a', r0: 0, count: 2, bytes: 8 },
    { name: 'a', r0: 2, count: 2, bytes: 8 },
    { name: 'b', r0: 0, count: 1, bytes: 4 },
  ];
  const reads: string[] = [];
  const ck = {
    async readRows(name: string, r0: number, count: number, into?: Uint8Array) {
      reads.push(`${name}@${r0}`);
      return Buffer.from(into!.buffer, into!.byteOffset, count * 4).fill(9);
    },
  } as never;
  const taken: number[] = [];
  const mapped: string[] = [];
  const map = async (c: ChunkRef) => {
    mapped.push(`${c.name}@${c.r0}`);
    return c.name === 'b' ? undefined : Buffer.alloc(c.bytes, 1);
  };
  const ra = new ReadAhead(ck, chunks, (n) => new Uint8Array(taken[taken.push(n) - 1]), 100, undefined, map);
  assert.deepEqual([...(await ra.read('a', 0, 2)!)], [1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...(await ra.read('a', 2, 2)!)], [1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...(await ra.read('b', 0, 1)!)], [9, 9, 9, 9], 'b could not be mapped: read');
  assert.deepEqual(mapped, ['a@0', 'a@2', 'b@0'], 'each chunk mapped once, in order');
  assert.deepEqual(reads, ['b@0']);
  assert.deepEqual(taken, [4], 'a buffer only for the chunk read');
});

test('a conversion writes the same bytes with the rows mapped and read', async (t) => {
  const outs: Buffer[][] = [];
  const env = mmapEnv(t);
  for (const mmap of ['1', undefined]) {
    env(mmap);
    const out = tempDir(t);
    const r = await convertModel({ source: tinyModel, bits: 4, name: 'tiny', outDir: out }, () => {});
    const report = JSON.parse(readFileSync(r.report, 'utf8'));
    delete report.seconds;
    outs.push([readFileSync(r.npz), Buffer.from(JSON.stringify(report))]);
  }
  assert.ok(outs[0][0].equals(outs[1][0]), 'the NPZ');
  assert.ok(outs[0][1].equals(outs[1][1]), 'the report (but its seconds)');
});
