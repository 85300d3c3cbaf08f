import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FormatError } from '../../../server/src/formats/errors';
import {
  encodeNpyHeader,
  NP_DTYPES,
  parseNpyHeader,
  readNpyArray,
  toTypedArray,
  writeNpyFile,
} from '../../../server/src/formats/npy';
import { bufferSource } from '../../../server/src/formats/source';
import { requireNumpy, runPython } from '../../helpers/numpy';

const dir = mkdtempSync(join(tmpdir(), 'apl-npy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('encodeNpyHeader is 64-byte aligned and parses back', async () => {
  for (const shape of [[], [0], [5], [3, 4], [2, 3, 4], [100000, 7]]) {
    for (const fortranOrder of [false, true]) {
      const h = encodeNpyHeader({ dtype: 'float32', shape, fortranOrder });
      assert.equal(h.length % 64, 0);
      const count = shape.reduce((a, b) => a * b, 1);
      const file = Buffer.concat([h, Buffer.alloc(count * 4)]);
      const p = await parseNpyHeader(bufferSource(file, 'x.npy'));
      assert.deepEqual(p.shape, shape);
      assert.equal(p.fortranOrder, fortranOrder);
      assert.equal(p.dtype, 'float32');
      assert.equal(p.dataOffset, h.length);
      assert.equal(p.dataBytes, count * 4);
    }
  }
});

test('a header over 64 KiB switches to version 2', async () => {
  const shape = Array.from({ length: 25000 }, () => 1);
  const h = encodeNpyHeader({ dtype: 'uint8', shape });
  assert.equal(h[6], 2);
  assert.equal(h.length % 64, 0);
  const p = await parseNpyHeader(bufferSource(Buffer.concat([h, Buffer.alloc(1)])));
  assert.equal(p.shape.length, 25000);
  assert.deepEqual(p.version, [2, 0]);
});

test('our headers are byte-identical to numpy.save', (t) => {
  if (!requireNumpy(t)) return;
  const cases: [string, number[], boolean][] = [
    ['float32', [3, 4], false],
    ['float16', [], false],
    ['int64', [0], false],
    ['uint8', [7], false],
    ['bool', [2, 2], true],
    ['float64', [2, 3, 5], true],
  ];
  const out = runPython(
    `
for spec in json.loads(sys.argv[1]):
    dt, shape, f = spec
    a = np.zeros(shape, dtype=dt, order='F' if f else 'C')
    p = os.path.join(sys.argv[2], 'h.npy')
    np.save(p, a)
    b = open(p, 'rb').read()
    print(b[:len(b) - a.nbytes].hex())
`,
    [JSON.stringify(cases), dir],
  );
  const lines = out.trim().split('\n');
  cases.forEach(([dtype, shape, f], i) => {
    const ours = encodeNpyHeader({ dtype: dtype as 'float32', shape, fortranOrder: f }).toString('hex');
    assert.equal(ours, lines[i], `header for ${dtype} ${JSON.stringify(shape)}`);
  });
});

test('writeNpyFile writes what numpy loads, for every dtype', async (t) => {
  if (!requireNumpy(t)) return;
  const expected: Record<string, string> = {};
  for (const dtype of NP_DTYPES) {
    const p = join(dir, `${dtype}.npy`);
    const bytes = Buffer.alloc(
      6 * (dtype === 'bool' || dtype.endsWith('int8') ? 1 : Number(/\d+/.exec(dtype)![0]) / 8),
    );
    for (let i = 0; i < bytes.length; i++) bytes[i] = dtype === 'bool' ? i & 1 : (i * 37 + 11) & 0xff;
    if (dtype.startsWith('float')) bytes.fill(0x3c, 1, 2); // keep some ordinary values
    await writeNpyFile(p, dtype, [2, 3], bytes);
    expected[dtype] = bytes.toString('hex');
    const back = await readNpyArray(bufferSource(readFileSync(p), p));
    assert.equal(back.header.dtype, dtype);
    assert.deepEqual(back.header.shape, [2, 3]);
    assert.equal(Buffer.from(back.data.buffer).toString('hex'), bytes.toString('hex'));
  }
  const out = runPython(
    `
res = {}
for dt in json.loads(sys.argv[1]):
    a = np.load(os.path.join(sys.argv[2], dt + '.npy'))
    assert a.shape == (2, 3) and a.dtype == np.dtype(dt), (dt, a.shape, a.dtype)
    res[dt] = a.tobytes().hex()
print(json.dumps(res))
`,
    [JSON.stringify(NP_DTYPES), dir],
  );
  assert.deepEqual(JSON.parse(out), expected);
});

test('big-endian arrays become native order', () => {
  const be = Buffer.from([0x3f, 0x80, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00]);
  const a = toTypedArray('float32', be, false) as Float32Array;
  assert.deepEqual([...a], [1, -2]);
});

test('hostile headers give FormatErrors naming the file', async () => {
  const good = Buffer.concat([encodeNpyHeader({ dtype: 'float32', shape: [4] }), Buffer.alloc(16)]);
  const bad = async (buf: Buffer, re: RegExp) => {
    await assert.rejects(parseNpyHeader(bufferSource(buf, 'bad.npy')), (e: unknown) => {
      assert.ok(e instanceof FormatError, String(e));
      assert.equal(e.file, 'bad.npy');
      assert.ok(e.message.startsWith('bad.npy: '), e.message);
      assert.match(e.message, re);
      return true;
    });
  };
  await bad(good.subarray(0, 5), /too short/);
  await bad(Buffer.concat([Buffer.from('NOTNPY'), good.subarray(6)]), /magic/);
  await bad(good.subarray(0, 140), /needs 16 bytes/);
  const longLen = Buffer.from(good);
  longLen.writeUInt16LE(60000, 8);
  await bad(longLen, /past the end/);
  const v2 = Buffer.from(good);
  v2[6] = 2;
  v2.writeUInt32LE(0xfffffff0, 8);
  await bad(v2, /exceeds/);
  const mk = (dict: string) => {
    const body = Buffer.from(`${dict}\n`, 'latin1');
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    pre.writeUInt16LE(body.length, 8);
    return Buffer.concat([pre, body, Buffer.alloc(64)]);
  };
  await bad(mk("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4), }"), /invalid shape dimension -1/);
  await bad(mk("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"), /overflows/);
  await bad(mk("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"), /too large/);
  await bad(mk("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"), /unsupported dtype/);
  await bad(mk("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"), /structured/);
  await bad(mk("{'descr': '<f4', 'fortran_order': False, 'shape': (1,"), /expected|unexpected/);
  await bad(mk("{'descr': '<f4', 'shape': (1,), }"), /fortran_order/);
  await bad(mk(`{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(50)}`), /nests/);
});

test('version 3 headers (utf-8) are read', async () => {
  const dict = Buffer.from("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }          \n", 'utf8');
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 3, 0, 0, 0, 0, 0]);
  pre.writeUInt32LE(dict.length, 8);
  const file = Buffer.concat([pre, dict, Buffer.from([1, 0, 255, 255])]);
  const { header, data } = await readNpyArray(bufferSource(file, 'v3.npy'));
  assert.deepEqual(header.version, [3, 0]);
  assert.deepEqual([...(data as Int16Array)], [1, -1]);
});
