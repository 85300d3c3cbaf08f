// The NPY header parser against hand-made headers, in memory (no numpy, no files), so that the mutation group
// `formats` runs in seconds per mutant: every field a reader gets, and the one-line refusal of each malformed header.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MAX_NPY_HEADER_BYTES,
  parseDescr,
  parseNpyAnyHeader,
  parseNpyHeader,
  shapeCount,
} from '../../../server/src/formats/npy';
import { bufferSource } from '../../../server/src/formats/source';
import { refusedFor } from '../../helpers/refused';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** A .npy file: magic, version, the header text as given (no padding added), then `data` bytes. */
function npy(header: string, data = 0, version: [number, number] = [1, 0], lead = 0): Buffer {
  const text = Buffer.from(header, version[0] === 3 ? 'utf8' : 'latin1');
  const len = Buffer.alloc(version[0] === 1 ? 2 : 4);
  if (version[0] === 1) len.writeUInt16LE(text.length);
  else len.writeUInt32LE(text.length);
  return Buffer.concat([Buffer.alloc(lead, 0xee), Buffer.from([...MAGIC, ...version]), len, text, Buffer.alloc(data)]);
}
const dict = (descr: string, shape: string, fortran = 'False') =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

const parse = (b: Buffer, offset = 0) => parseNpyHeader(bufferSource(b, 'w.npy'), offset);
const parseAny = (b: Buffer, offset = 0) => parseNpyAnyHeader(bufferSource(b, 'w.npy'), offset);
const refused = refusedFor('w.npy');

test('every field of a version 1.0 header', async () => {
  const head = dict('<f4', '(3, 4)');
  const h = await parse(npy(head, 48));
  assert.deepEqual(h, {
    dtype: 'float32',
    descr: '<f4',
    littleEndian: true,
    fortranOrder: false,
    shape: [3, 4],
    headerBytes: 10 + head.length,
    dataOffset: 10 + head.length,
    dataBytes: 48,
    itemSize: 4,
    count: 12,
    version: [1, 0],
  });
});

test('at an offset (a member inside a larger source): offsets are absolute, lengths are not', async () => {
  const head = dict('>i2', '(5,)', 'True');
  const h = await parse(npy(head, 10, [1, 0], 7), 7);
  assert.equal(h.dtype, 'int16');
  assert.equal(h.littleEndian, false);
  assert.equal(h.fortranOrder, true);
  assert.equal(h.headerBytes, 10 + head.length);
  assert.equal(h.dataOffset, 7 + 10 + head.length);
  assert.equal(h.dataBytes, 10);
  // One byte short of the data, at that offset: refused.
  await refused(parse(npy(head, 9, [1, 0], 7), 7), /needs 10 bytes of data but only 9 remain/);
});

test('versions 2.0 and 3.0: a 4-byte length, 12-byte prefix; 3.0 reads the header as UTF-8', async () => {
  const head = dict('|u1', '(2,)');
  const h2 = await parse(npy(head, 2, [2, 0]));
  assert.deepEqual([h2.headerBytes, h2.dataOffset, h2.version], [12 + head.length, 12 + head.length, [2, 0]]);
  const u = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'é': 1}";
  const h3 = await parse(npy(u, 8, [3, 0]));
  assert.equal(h3.headerBytes, 12 + Buffer.byteLength(u));
  assert.equal(h3.dtype, 'float64');
  // The same bytes as version 2.0 are latin-1: still a valid dict (two characters instead of one).
  const b = Buffer.from(u, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  const as2 = Buffer.concat([Buffer.from([...MAGIC, 2, 0]), len, b, Buffer.alloc(8)]);
  assert.equal((await parse(as2)).headerBytes, 12 + b.length);
});

test('version 3.0 decodes the header as UTF-8, 2.0 as latin-1: two invalid UTF-8 keys collide only in 3.0', async () => {
  const text = Buffer.concat([
    Buffer.from("{'"),
    Buffer.from([0xff]),
    Buffer.from("': 1, '"),
    Buffer.from([0xfe]),
    Buffer.from("': 2, 'descr': '<f4', 'fortran_order': False, 'shape': ()}"),
  ]);
  const file = (major: number) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(text.length);
    return Buffer.concat([Buffer.from([...MAGIC, major, 0]), len, text, Buffer.alloc(4)]);
  };
  assert.equal((await parse(file(2))).count, 1);
  await refused(parse(file(3)), "duplicate key '\ufffd' in header");
});

test('descr: byte orders, every numeric code, and what is not numeric', () => {
  assert.deepEqual(parseDescr('<f4'), { dtype: 'float32', littleEndian: true });
  assert.deepEqual(parseDescr('>f4'), { dtype: 'float32', littleEndian: false });
  assert.deepEqual(parseDescr('=i8'), { dtype: 'int64', littleEndian: true });
  assert.deepEqual(parseDescr('|b1'), { dtype: 'bool', littleEndian: true });
  assert.deepEqual(parseDescr('u2'), { dtype: 'uint16', littleEndian: true });
  assert.deepEqual(parseDescr('<f2'), { dtype: 'float16', littleEndian: true });
  for (const bad of ['<f3', 'f', '<f4 ', ' <f4', '<c8', '<U5', '<<f4', 'xf4', '<f44']) {
    assert.equal(parseDescr(bad), undefined, bad);
  }
});

test('strings, bytes and objects: parseNpyAnyHeader takes them, parseNpyHeader refuses them by name', async () => {
  const u = await parseAny(npy(dict('<U5', '(2,)'), 40));
  assert.deepEqual([u.dtype, u.itemSize, u.dataBytes, u.littleEndian], ['unicode', 20, 40, true]);
  const be = await parseAny(npy(dict('>U3', '(1,)'), 12));
  assert.deepEqual([be.dtype, be.itemSize, be.littleEndian], ['unicode', 12, false]);
  const s = await parseAny(npy(dict('|S8', '(3,)'), 24));
  assert.deepEqual([s.dtype, s.itemSize, s.dataBytes], ['bytes', 8, 24]);
  const s0 = await parseAny(npy(dict('|S', '(3,)'), 0));
  assert.deepEqual([s0.dtype, s0.itemSize, s0.dataBytes], ['bytes', 0, 0]);
  const o = await parseAny(npy(dict('|O', '(3,)'), 77));
  assert.deepEqual([o.dtype, o.itemSize, o.dataBytes], ['object', 0, 77]);
  assert.equal((await parseAny(npy(dict('|O8', '(1,)'), 0))).dataBytes, 0);
  await refused(parseAny(npy(dict('|O4', '(1,)'), 8)), "unsupported dtype '|O4'");
  await refused(parse(npy(dict('<U5', '(2,)'), 40)), "unsupported dtype '<U5'");
  await refused(parseAny(npy(dict('<c8', '(2,)'), 16)), "unsupported dtype '<c8'");
});

test('the Python literal: whitespace, trailing commas, lists, longs, True/False/None, double quotes', async () => {
  const h = await parse(
    npy(`  {\n"descr" :"<i4" ,\t'fortran_order':True,'shape':[2,3L],'extra':None,'n':-5,'f':False}  \n`, 24),
  );
  assert.deepEqual([h.dtype, h.fortranOrder, h.shape, h.count], ['int32', true, [2, 3], 6]);
  const empty = await parse(npy(dict('<f4', '()'), 4));
  assert.deepEqual([empty.shape, empty.count, empty.dataBytes], [[], 1, 4]);
  const nested = await parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), 'x': {'y': [(1, 2), []]}}"));
  assert.deepEqual([nested.count, nested.dataBytes], [0, 0]);
});

test('each malformed header is refused with its own one-line message', async () => {
  const cases: [string, string | RegExp][] = [
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}' in header at character 54"],
    ["{'descr' '<f4'}", "expected ':' in header dict"],
    ["{1: '<f4'}", 'header dict keys must be strings'],
    ["{'descr': '<f4', 'descr': '<f8'}", "duplicate key 'descr' in header"],
    ["{'descr': '<f4}", 'unterminated string in header'],
    ["{'descr': '<f\\4'}", 'escape sequences in header strings are not supported'],
    ["{'descr': <f4}", 'unexpected text in header at character 10'],
    ["{'shape': (99999999999999999,)}", 'number 99999999999999999 in header is too large'],
    ["{'descr': '<f4'} x", 'trailing text after header dict'],
    ["{'descr': '<f4'}}", 'trailing text after header dict'],
    ["[('descr', '<f4')]", 'header is not a dict'],
    ["'just a string'", 'header is not a dict'],
    ['None', 'header is not a dict'],
    ["{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}", 'structured dtypes are not supported'],
    ["{'fortran_order': False, 'shape': ()}", "header has no 'descr' string"],
    ["{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", "header has no boolean 'fortran_order'"],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': 3}", "header has no 'shape' tuple"],
    ["{'descr': '<f4', 'fortran_order': False}", "header has no 'shape' tuple"],
    [`${'['.repeat(9)}${']'.repeat(9)}`, 'header is not a dict'],
    [`${'['.repeat(10)}${']'.repeat(10)}`, 'header nests too deeply'],
    [`{'a': ${'['.repeat(8)}${']'.repeat(8)}}`, "header has no 'descr' string"],
    [`{'a': ${'['.repeat(9)}${']'.repeat(9)}}`, 'header nests too deeply'],
  ];
  for (const [text, message] of cases) await refused(parse(npy(text, 64)), message);
});

test('the prefix: magic, versions, the header length against the file and the limit', async () => {
  const ok = npy(dict('<f4', '(1,)'), 4);
  await refused(parse(ok.subarray(0, 9)), 'not a .npy file: 9 bytes is too short for a header (truncated?)');
  await refused(parse(ok, ok.length - 9), 'not a .npy file: 9 bytes is too short for a header (truncated?)');
  const bad = Buffer.from(ok);
  bad[5] = 0x58;
  await refused(parse(bad), 'not a .npy file (bad magic)');
  const v4 = Buffer.from(ok);
  v4[6] = 4;
  v4[7] = 1;
  await refused(parse(v4), 'unsupported .npy version 4.1');
  const v0 = Buffer.from(ok);
  v0[6] = 0;
  await refused(parse(v0), 'unsupported .npy version 0.0');
  // Version 2 with only 10 bytes: no room for its 4-byte length.
  await refused(parse(Buffer.from([...MAGIC, 2, 0, 1, 0])), 'truncated .npy header');
  // Exactly 10 bytes of a version 1 file with an empty header: reaches the dict, which is empty text.
  await refused(parse(Buffer.from([...MAGIC, 1, 0, 0, 0])), /unexpected text in header at character 0/);
  const head = dict('<f4', '(1,)');
  await refused(
    parse(npy(head).subarray(0, 10 + head.length - 1)),
    `header length ${head.length} runs past the end of the file (${10 + head.length - 1} bytes)`,
  );
  // A header that ends exactly at the end of the file (no data needed) is fine.
  assert.equal((await parse(npy(dict('<f4', '(0,)')))).dataBytes, 0);
  const huge = Buffer.concat([Buffer.from([...MAGIC, 2, 0]), Buffer.alloc(4), Buffer.alloc(16)]);
  huge.writeUInt32LE(MAX_NPY_HEADER_BYTES + 1, 8);
  await refused(parse(huge), `header length ${MAX_NPY_HEADER_BYTES + 1} exceeds the 1048576-byte limit`);
  huge.writeUInt32LE(MAX_NPY_HEADER_BYTES, 8);
  await refused(parse(huge), /runs past the end of the file/);
});

test('data size: exactly enough is accepted, one byte less is refused with both numbers', async () => {
  assert.equal((await parse(npy(dict('<f8', '(2, 3)'), 48))).dataBytes, 48);
  assert.equal((await parse(npy(dict('<f8', '(2, 3)'), 60))).dataBytes, 48, 'trailing bytes are not data');
  await refused(
    parse(npy(dict('<f8', '(2, 3)'), 47)),
    'shape [2, 3] needs 48 bytes of data but only 47 remain (truncated?)',
  );
});

test('shapeCount: the product, with every bad dimension and an overflow refused by name', () => {
  assert.equal(shapeCount('f', []), 1);
  assert.equal(shapeCount('f', [2, 3, 4]), 24);
  assert.equal(shapeCount('f', [5, 0, 7]), 0);
  assert.equal(shapeCount('f', [2 ** 26, 2 ** 26], 1), 2 ** 52);
  assert.throws(() => shapeCount('f', [2 ** 26, 2 ** 26], 2), /overflows/);
  assert.throws(() => shapeCount('f', [2, -1]), { message: 'f: invalid shape dimension -1 in [2, -1]' });
  assert.throws(() => shapeCount('f', [1.5]), { message: 'f: invalid shape dimension 1.5 in [1.5]' });
  assert.throws(() => shapeCount('f', ['2']), { message: 'f: invalid shape dimension 2 in [2]' });
  assert.throws(() => shapeCount('f', [2 ** 53]), /invalid shape dimension/);
  assert.throws(() => shapeCount('f', [2 ** 27, 2 ** 26], 1), { message: 'f: shape [134217728, 67108864] overflows' });
  assert.throws(() => shapeCount('f', [2 ** 26, 2 ** 26], 4), /overflows/);
  assert.equal(shapeCount('f', [Number.MAX_SAFE_INTEGER], 1), Number.MAX_SAFE_INTEGER);
  assert.throws(() => shapeCount('f', [Number.MAX_SAFE_INTEGER], 2), /overflows/);
});

test('string and bytes descrs: without a byte-order mark accepted, with text before or after refused', async () => {
  const s = await parseAny(npy(dict('S3', '(2,)'), 6));
  assert.deepEqual([s.dtype, s.itemSize, s.dataBytes], ['bytes', 3, 6]);
  for (const bad of ['x<U5', '<U5x', '<<S2', 'UU2']) {
    await refused(parseAny(npy(dict(bad, '(1,)'), 40)), `unsupported dtype '${bad}'`);
  }
});

test('None is neither True nor False: a fortran_order of None is refused', async () => {
  await refused(parse(npy(dict('<f4', '(1,)', 'None'), 4)), "header has no boolean 'fortran_order'");
});

test('a bare word is refused where it stands, even with True later in the header', async () => {
  await refused(
    parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'a': zzzz, 'b': True}", 4)),
    /^w\.npy: unexpected text in header at character 59$/,
  );
});
