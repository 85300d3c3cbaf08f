// Interop both ways with numpy: what numpy writes (savez, savez_compressed; every dtype, both byte orders, Fortran
// order, 0-d, empty, hundreds of members, names with slashes) reads back exactly here, and what NpzWriter writes
// loads in numpy bit for bit with zipfile.testzip passing.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { byteswapInPlace } from '../../../server/src/formats/dtypes';
import { dtypeItemSize, NP_DTYPES, type NpDtype } from '../../../server/src/formats/npy';
import { NpzWriter, openNpzFile } from '../../../server/src/formats/npz';
import { requireNumpy, runPython } from '../../helpers/numpy';

const dir = mkdtempSync(join(tmpdir(), 'apl-interop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: ArrayBufferView) =>
  createHash('sha256')
    .update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
    .digest('hex');

// numpy side: builds the arrays; prints {key: [descr, shape, fortran, sha256 of little-endian bytes in memory order]}
const MAKE = `
rng = np.random.default_rng(42)
codes = ['?', 'u1', 'i1', 'u2', 'i2', 'u4', 'i4', 'u8', 'i8', 'f2', 'f4', 'f8']
arrs = {}
for c in codes:
    for order in ('<', '>'):
        dt = np.dtype(order + c) if c not in ('?', 'u1', 'i1') else np.dtype(c)
        if dt.kind == 'f':
            a = (rng.standard_normal((5, 7)) * 100).astype(dt)
            a.flat[3] = np.nan; a.flat[4] = np.inf
        elif dt.kind == 'b':
            a = rng.random((5, 7)) > 0.5
        else:
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, (5, 7), dtype=dt.newbyteorder('='), endpoint=True).astype(dt)
        arrs[f'{dt.name}_{"be" if dt.byteorder == ">" else "le"}'] = a
arrs['fortran'] = np.asfortranarray(rng.standard_normal((3, 4, 5)).astype('<f4'))
arrs['fortran_be'] = np.asfortranarray(np.arange(24, dtype='>i8').reshape(4, 6))
arrs['zero_d'] = np.array(2.5, dtype='<f8')
arrs['empty'] = np.zeros((0, 4), dtype='<f2')
arrs['empty1d'] = np.zeros(0, dtype='u1')
arrs['model/layers.0/self_attn/q_proj.weight'] = rng.integers(0, 255, (16, 8), dtype=np.uint8)
for i in range(300):
    arrs[f'many/m{i:03d}'] = np.full((i % 5 + 1,), i, dtype='<i4')
np.savez(sys.argv[1], **arrs)
np.savez_compressed(sys.argv[2], **arrs)
out = {}
for k, a in arrs.items():
    le = a.astype(a.dtype.newbyteorder('<'))
    out[k] = [a.dtype.str, list(a.shape), bool(np.isfortran(a)) and a.ndim > 1, hashlib.sha256(le.tobytes(order='A')).hexdigest()]
print(json.dumps(out))
`;

test('numpy savez and savez_compressed read back exactly, for every dtype and layout', async (t) => {
  if (!requireNumpy(t)) return;
  const stored = join(dir, 'np_stored.npz');
  const deflated = join(dir, 'np_deflated.npz');
  const ref: Record<string, [string, number[], boolean, string]> = JSON.parse(runPython(MAKE, [stored, deflated]));
  const keys = Object.keys(ref);
  assert.ok(keys.length > 320);
  for (const path of [stored, deflated]) {
    const z = await openNpzFile(path);
    try {
      assert.deepEqual(
        z.members.map((m) => m.key),
        keys,
      );
      assert.equal(
        z.members.every((m) => m.compressed === (path === deflated)),
        true,
      );
      for (const k of keys) {
        const [descr, shape, fortran, hash] = ref[k];
        const { header, data } = await z.readArray(k);
        assert.equal(header.descr, descr, `${path} ${k} descr`);
        assert.deepEqual(header.shape, shape, `${k} shape`);
        assert.equal(header.fortranOrder && shape.length > 1, fortran, `${k} fortran`);
        assert.equal(sha(data), hash, `${path} ${k} data`);
      }
      // a byte range of the data on demand, compressed or not
      const h = await z.readHeader('float64_be');
      const slice = await z.readData('float64_be', 8, 16);
      const full = await z.readArray('float64_be');
      const le = byteswapInPlace(Uint8Array.from(slice), 8);
      assert.deepEqual([...new Float64Array(le.buffer)], [...(full.data as Float64Array).subarray(1, 3)]);
      assert.equal(h.littleEndian, false);
    } finally {
      await z.close();
    }
  }
});

function sampleBytes(dtype: NpDtype, count: number, seed: number): Buffer {
  const item = dtypeItemSize(dtype);
  const b = Buffer.alloc(count * item);
  let x = seed;
  for (let i = 0; i < b.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  if (dtype === 'bool') for (let i = 0; i < b.length; i++) b[i] &= 1;
  return b;
}

test('numpy loads what NpzWriter writes bit for bit (every dtype, both byte orders, Fortran, 0-d, empty, 300 members)', async (t) => {
  if (!requireNumpy(t)) return;
  const p = join(dir, 'ours.npz');
  const w = await NpzWriter.create(p);
  const expect: Record<string, [string, number[], boolean, string]> = {};
  let seed = 1;
  const add = async (name: string, descr: string, shape: number[], fortranOrder: boolean, dtype: NpDtype) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const bytes = sampleBytes(dtype, count, seed++);
    await w.addArray(name, { descr, shape, fortranOrder }, bytes);
    expect[name] = [descr, shape, fortranOrder, sha(bytes)];
  };
  for (const dtype of NP_DTYPES) {
    const item = dtypeItemSize(dtype);
    const code = { bool: 'b1' }[dtype as 'bool'] ?? `${dtype[0] === 'f' ? 'f' : dtype[0] === 'u' ? 'u' : 'i'}${item}`;
    await add(`${dtype}_le`, item === 1 ? `|${code}` : `<${code}`, [3, 5], false, dtype);
    if (item > 1) await add(`${dtype}_be`, `>${code}`, [3, 5], false, dtype);
  }
  await add('fortran', '<f4', [3, 4, 5], true, 'float32');
  await add('zero_d', '<f8', [], false, 'float64');
  await add('empty', '<i2', [0, 7], false, 'int16');
  await add('layers/0/attn/q.weight', '|u1', [16, 8], false, 'uint8');
  for (let i = 0; i < 300; i++) await add(`many/m${i}`, '<i4', [i % 4], false, 'int32');
  await w.close();
  const got = JSON.parse(
    runPython(
      `
assert zipfile.ZipFile(sys.argv[1]).testzip() is None
f = np.load(sys.argv[1])
out = {}
for k in f.files:
    a = f[k]
    out[k] = [a.dtype.str, list(a.shape), bool(np.isfortran(a)) and a.ndim > 1, hashlib.sha256(a.tobytes(order='A')).hexdigest()]
print(json.dumps(out))
`,
      [p],
    ),
  );
  assert.deepEqual(Object.keys(got), Object.keys(expect));
  for (const [k, v] of Object.entries(expect)) {
    assert.deepEqual(got[k], [v[0], v[1], v[2] && v[1].length > 1, v[3]], k);
  }
});

test('a large savez_compressed member streams in chunks and reads by range (streaming inflate path)', async (t) => {
  if (!requireNumpy(t)) return;
  const p = join(dir, 'large_deflated.npz');
  const hash = runPython(
    `
a = np.random.default_rng(3).standard_normal(1_500_001).astype('<f4')
np.savez_compressed(sys.argv[1], big=a, small=np.arange(3))
print(hashlib.sha256(a.tobytes()).hexdigest(), a[1_000_000].tobytes().hex())
`,
    [p],
  ).trim();
  const [full, at] = hash.split(' ');
  const z = await openNpzFile(p);
  try {
    const m = z.member('big')!;
    assert.ok(m.compressed && m.compressedSize > 1 << 20, 'large enough to stream');
    const h = createHash('sha256');
    let n = 0;
    let chunks = 0;
    for await (const c of z.dataChunks('big', 1 << 20)) {
      assert.equal(c.length % 4, 0, 'whole elements');
      h.update(c);
      n += c.length;
      chunks++;
    }
    assert.equal(n, 1_500_001 * 4);
    assert.ok(chunks >= 5);
    assert.equal(h.digest('hex'), full);
    assert.equal((await z.readData('big', 4_000_000, 4)).toString('hex'), at);
    await z.verify('big');
  } finally {
    await z.close();
  }
});
