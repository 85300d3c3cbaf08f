import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NpzWriter, openNpz, openNpzFile } from '../../../server/src/formats/npz';
import { bufferSource } from '../../../server/src/formats/source';
import { requireNumpy, runPython } from '../../helpers/numpy';
import { xorshiftBytes } from '../../helpers/random';

const dir = mkdtempSync(join(tmpdir(), 'apl-npz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function writeSample(path: string, forceZip64 = false) {
  const w = await NpzWriter.create(path, { forceZip64 });
  const a = new Float32Array([1, -2.5, 3.25, 0, Number.NaN, Number.POSITIVE_INFINITY]);
  await w.addArray('a', { dtype: 'float32', shape: [2, 3] }, new Uint8Array(a.buffer));
  // streamed in uneven chunks from an async generator
  const big = xorshiftBytes(300_001, 7);
  async function* chunks() {
    for (let o = 0; o < big.length; o += 65_537) yield big.subarray(o, o + 65_537);
  }
  await w.addArray('dir/sub/big.npy', { dtype: 'uint8', shape: [300_001] }, chunks());
  await w.addArray('scalar', { descr: '<f8', shape: [] }, new Uint8Array(new Float64Array([Math.PI]).buffer));
  await w.addArray('empty', { dtype: 'int16', shape: [0, 5] }, new Uint8Array(0));
  await w.close();
  return { a, big };
}

test('NpzWriter output reads back, is deterministic, leaves no temp file', async () => {
  const p1 = join(dir, 'one.npz');
  const p2 = join(dir, 'two.npz');
  const { a, big } = await writeSample(p1);
  await writeSample(p2);
  assert.ok(readFileSync(p1).equals(readFileSync(p2)), 'same input, same bytes');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
  const z = await openNpzFile(p1);
  try {
    assert.deepEqual(
      z.members.map((m) => m.name),
      ['a.npy', 'dir/sub/big.npy', 'scalar.npy', 'empty.npy'],
    );
    assert.equal(z.member('a')?.key, 'a');
    assert.equal(z.member('a.npy')?.name, 'a.npy');
    assert.equal(z.member('nope'), undefined);
    const ra = await z.readArray('a');
    assert.deepEqual(ra.header.shape, [2, 3]);
    assert.deepEqual([...(ra.data as Float32Array)], [...a]);
    const h = await z.readHeader('dir/sub/big');
    assert.equal(h.dataBytes, big.length);
    assert.ok((await z.readData('dir/sub/big', 123_456, 1000)).equals(big.subarray(123_456, 124_456)));
    const chunks: Buffer[] = [];
    for await (const c of z.dataChunks('dir/sub/big', 100_000)) chunks.push(c);
    assert.ok(Buffer.concat(chunks).equals(big));
    const copies: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const c of z.dataChunks('dir/sub/big', 100_000, { reuseBuffer: true })) {
      buffers.add(c.buffer);
      copies.push(Buffer.from(c));
    }
    assert.equal(buffers.size, 1, 'one shared buffer');
    assert.ok(Buffer.concat(copies).equals(big));
    const s = await z.readArray('scalar');
    assert.deepEqual(s.header.shape, []);
    assert.equal((s.data as Float64Array)[0], Math.PI);
    const e = await z.readArray('empty');
    assert.deepEqual(e.header.shape, [0, 5]);
    assert.equal(e.data.length, 0);
    for (const m of z.members) await z.verify(m.name);
  } finally {
    await z.close();
  }
});

test('forced ZIP64 archives read back here and in numpy/zipfile', async (t) => {
  const p = join(dir, 'z64.npz');
  const { big } = await writeSample(p, true);
  const z = await openNpz(bufferSource(readFileSync(p), p));
  assert.equal(z.members.length, 4);
  assert.ok((await z.readData('dir/sub/big', 0, big.length)).equals(big));
  if (!requireNumpy(t)) return;
  const out = runPython(
    `
assert zipfile.ZipFile(sys.argv[1]).testzip() is None
f = np.load(sys.argv[1])
print(json.dumps({k: [str(f[k].dtype), list(f[k].shape), hashlib.sha256(f[k].tobytes()).hexdigest()] for k in f.files}))
`,
    [p],
  );
  const got = JSON.parse(out);
  assert.deepEqual(got['dir/sub/big'], ['uint8', [300001], createHash('sha256').update(big).digest('hex')]);
  assert.deepEqual(got.scalar.slice(0, 2), ['float64', []]);
});

test('numpy loads what NpzWriter writes, bit for bit; zipfile.testzip passes', async (t) => {
  if (!requireNumpy(t)) return;
  const p = join(dir, 'np.npz');
  const { a, big } = await writeSample(p);
  const out = runPython(
    `
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
f = np.load(sys.argv[1])
print(json.dumps({k: [str(f[k].dtype), list(f[k].shape), f[k].tobytes().hex() if f[k].nbytes < 100 else hashlib.sha256(f[k].tobytes()).hexdigest()] for k in f.files}))
`,
    [p],
  );
  const got = JSON.parse(out);
  assert.deepEqual(got.a, ['float32', [2, 3], Buffer.from(a.buffer).toString('hex')]);
  assert.deepEqual(got['dir/sub/big'], ['uint8', [300001], createHash('sha256').update(big).digest('hex')]);
  assert.deepEqual(got.empty, ['int16', [0, 5], '']);
});

test('NpzWriter rejects bad input and abort() removes the temp file', async () => {
  const p = join(dir, 'bad.npz');
  const w = await NpzWriter.create(p);
  await w.addArray('x', { dtype: 'uint8', shape: [2] }, new Uint8Array(2));
  await assert.rejects(w.addArray('x.npy', { dtype: 'uint8', shape: [1] }, new Uint8Array(1)), /duplicate/);
  await assert.rejects(w.addArray('../evil', { dtype: 'uint8', shape: [1] }, new Uint8Array(1)), /unsafe/);
  await w.abort();
  assert.equal(existsSync(p), false);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('bad.npz')),
    [],
  );
  const w2 = await NpzWriter.create(p);
  await assert.rejects(
    w2.addArray('y', { dtype: 'float32', shape: [4] }, new Uint8Array(15)),
    /15 data bytes, expected 16/,
  );
  await assert.rejects(w2.close(), /earlier addArray failed/);
  assert.equal(existsSync(p), false);
});
