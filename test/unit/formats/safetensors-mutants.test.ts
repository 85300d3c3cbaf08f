// openSafetensors and toF32Into against hand-made headers in memory (no files, no Python), for the mutation group
// formats-safetensors: every refusal with its message, the boundaries of each check, and the values readRaw and
// readF32 give (pieces of 2 MiB, output views).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f32ToBf16Bytes, f32ToF16Bytes } from '../../../server/src/formats/dtypes';
import {
  encodeSafetensors,
  MAX_SAFETENSORS_HEADER,
  openSafetensors,
  toF32,
  toF32Into,
} from '../../../server/src/formats/safetensors';
import { bufferSource } from '../../../server/src/formats/source';
import { refusedFor } from '../../helpers/refused';

/** A safetensors file from a header given as JSON text (not padded) and `data` bytes after it. */
function st(header: string, data: Uint8Array | number = 0): Buffer {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data)]);
}
const open = (b: Buffer) => openSafetensors(bufferSource(b, 'm.safetensors'));
const refused = refusedFor('m.safetensors');
const entry = (dtype: unknown, shape: unknown, off: unknown) => ({ dtype, shape, data_offsets: off });
const one = (e: unknown, data = 64) => st(JSON.stringify({ w: e }), data);

test('tensors, metadata and offsets as written', async () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const b = f32ToF16Bytes([0.5, -1]);
  const f = await open(
    encodeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: new Uint8Array(a.buffer) },
        { name: 'b', dtype: 'F16', shape: [2], data: b },
      ],
      { format: 'pt' },
    ),
  );
  assert.deepEqual(f.metadata, { format: 'pt' });
  assert.deepEqual(
    f.tensors.map((t) => [t.name, t.dtype, t.shape, t.dataOffsets, t.byteLength]),
    [
      ['a', 'F32', [2, 3], [0, 24], 24],
      ['b', 'F16', [2], [24, 28], 4],
    ],
  );
  assert.equal(f.tensor('b')?.byteLength, 4);
  assert.equal(f.tensor('c'), undefined);
  assert.deepEqual(await f.readF32('a'), a);
  assert.deepEqual(Array.from(await f.readF32('b')), [0.5, -1]);
  assert.deepEqual(Array.from(await f.readRaw('b')), Array.from(b));
  assert.deepEqual(Array.from(await f.readRaw('a', 4, 4)), Array.from(new Uint8Array(a.buffer, 4, 4)));
  assert.deepEqual(Array.from(await f.readRaw('a', 20)), Array.from(new Uint8Array(a.buffer, 20, 4)));
  assert.equal(f.dataStart + 28, (await f.readRaw('a')).length + f.dataStart + 4);
});

test('the header length: too short a file, over the limit, past the end; exactly to the end is fine', async () => {
  await refused(open(Buffer.alloc(7)), 'not a safetensors file (7 bytes is too short)');
  const big = Buffer.alloc(16);
  big.writeBigUInt64LE(BigInt(MAX_SAFETENSORS_HEADER) + 1n);
  await refused(
    open(big),
    `header length ${MAX_SAFETENSORS_HEADER + 1} exceeds the ${MAX_SAFETENSORS_HEADER}-byte limit`,
  );
  big.writeBigUInt64LE(BigInt(MAX_SAFETENSORS_HEADER));
  await refused(
    open(big),
    `header length ${MAX_SAFETENSORS_HEADER} runs past the end of the file (16 bytes; truncated?)`,
  );
  big.writeBigUInt64LE(2n ** 63n);
  await refused(open(big), /exceeds the/);
  const exact = st('{}');
  assert.deepEqual((await open(exact)).tensors, []);
  assert.equal((await open(exact)).dataStart, 10);
  await refused(open(exact.subarray(0, 9)), 'header length 2 runs past the end of the file (9 bytes; truncated?)');
  // An 8-byte file announcing an empty header: reaches JSON.parse.
  await refused(open(Buffer.alloc(8)), /^m\.safetensors: header is not valid JSON \(/);
});

test('the header must be a JSON object; __metadata__ an object of strings', async () => {
  await refused(open(st('{"a": ')), /header is not valid JSON/);
  for (const h of ['[]', 'null', '3', '"x"']) await refused(open(st(h)), 'header is not a JSON object');
  for (const m of ['[]', 'null', '"x"', '1']) {
    await refused(open(st(`{"__metadata__": ${m}}`)), '__metadata__ is not an object');
  }
  await refused(open(st('{"__metadata__": {"a": "1", "b": 2}}')), '__metadata__.b is not a string');
  assert.deepEqual((await open(st('{"__metadata__": {}}'))).tensors, []);
});

test('each bad tensor entry is refused by name', async () => {
  const cases: [unknown, string, number?][] = [
    [null, "tensor 'w': entry is not an object"],
    ['x', "tensor 'w': entry is not an object"],
    [entry('F33', [1], [0, 4]), `tensor 'w': unknown dtype "F33"`],
    [entry(5, [1], [0, 4]), "tensor 'w': unknown dtype 5"],
    [{ shape: [1], data_offsets: [0, 4] }, "tensor 'w': unknown dtype undefined"],
    [entry('F32', 4, [0, 4]), "tensor 'w': shape is not an array"],
    [entry('F32', [2, -1], [0, 4]), "tensor 'w': invalid shape dimension -1 in [2, -1]"],
    [entry('F32', [2 ** 30, 2 ** 30], [0, 4]), "tensor 'w': shape [1073741824, 1073741824] overflows"],
    // A safe element count whose bits are not: 2^50 F64 values.
    [entry('F64', [2 ** 50], [0, 4]), "tensor 'w': shape [1125899906842624] overflows"],
    [entry('F4', [3], [0, 2]), "tensor 'w': 3 elements of F4 are not a whole number of bytes"],
    [entry('F6_E2M3', [2], [0, 2]), "tensor 'w': 2 elements of F6_E2M3 are not a whole number of bytes"],
    [entry('F32', [1], [0]), "tensor 'w': data_offsets must be two non-negative integers"],
    [entry('F32', [1], [0, 4, 8]), "tensor 'w': data_offsets must be two non-negative integers"],
    [entry('F32', [1], [-4, 0]), "tensor 'w': data_offsets must be two non-negative integers"],
    [entry('F32', [1], [0, 4.5]), "tensor 'w': data_offsets must be two non-negative integers"],
    [entry('F32', [1], ['0', 4]), "tensor 'w': data_offsets must be two non-negative integers"],
    [entry('F32', [1], [0, 2 ** 53]), "tensor 'w': data_offsets must be two non-negative integers"],
    [entry('F32', [1], '0,4'), "tensor 'w': data_offsets must be two non-negative integers"],
    [entry('F32', [0], [4, 0]), "tensor 'w': data_offsets [4, 0] are reversed"],
    [entry('F32', [1], [61, 65]), "tensor 'w': data_offsets [61, 65] run past the data (64 bytes)"],
    [entry('F32', [2], [0, 4]), "tensor 'w': data_offsets span 4 bytes but shape [2] of F32 needs 8"],
    [entry('F32', [1], [0, 8]), "tensor 'w': data_offsets span 8 bytes but shape [1] of F32 needs 4"],
  ];
  for (const [e, problem] of cases) await refused(open(one(e)), problem);
  // The boundaries that are fine: up to the end of the data exactly, 4-bit pairs, empty tensors.
  assert.equal((await open(one(entry('F32', [1], [60, 64])))).tensors[0].byteLength, 4);
  assert.equal((await open(one(entry('F4', [4], [0, 2])))).tensors[0].byteLength, 2);
  assert.equal((await open(one(entry('F6_E3M2', [4], [0, 3])))).tensors[0].byteLength, 3);
  assert.equal((await open(one(entry('F32', [0], [64, 64])))).tensors[0].byteLength, 0);
  assert.equal((await open(one(entry('U64', [2], [0, 16])))).tensors[0].dtype, 'U64');
});

test('overlapping tensors are refused (in any order); touching ones are fine', async () => {
  const h = (x: [number, number], y: [number, number]) =>
    st(JSON.stringify({ x: entry('U8', [x[1] - x[0]], x), y: entry('U8', [y[1] - y[0]], y) }), 16);
  await refused(open(h([0, 8], [7, 9])), "tensors 'x' and 'y' overlap in the data");
  await refused(open(h([7, 9], [0, 8])), "tensors 'y' and 'x' overlap in the data");
  await refused(open(h([4, 8], [4, 6])), "tensors 'y' and 'x' overlap in the data");
  await refused(open(h([2, 2], [0, 4])), /overlap/);
  const ok = await open(h([8, 16], [0, 8]));
  assert.deepEqual(
    ok.tensors.map((t) => t.name),
    ['x', 'y'],
    'tensors keep the header order',
  );
  await open(h([4, 4], [4, 8])); // an empty tensor where another starts
  await open(h([0, 4], [4, 4]));
});

test('readRaw: byte ranges outside the tensor are refused; into a buffer large enough, or a fresh one', async () => {
  const data = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
  const f = await open(st(JSON.stringify({ a: entry('U8', [4], [0, 4]), b: entry('U8', [8], [4, 12]) }), data));
  assert.deepEqual(Array.from(await f.readRaw('b')), [5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepEqual(Array.from(await f.readRaw('b', 8)), []);
  assert.deepEqual(Array.from(await f.readRaw('b', 0, 8)), [5, 6, 7, 8, 9, 10, 11, 12]);
  for (const [o, l] of [
    [1, 8],
    [9, undefined],
    [-1, 2],
    [0, -1],
    [0.5, 2],
    [0, 1.5],
  ] as [number, number | undefined][]) {
    await refused(
      f.readRaw('b', o, l),
      /^m\.safetensors: tensor 'b': byte range -?[\d.]+\+-?[\d.]+ is outside its 8 bytes$/,
    );
  }
  await refused(f.readRaw('b', 1, 8), "tensor 'b': byte range 1+8 is outside its 8 bytes");
  await refused(f.readRaw('zz'), "no tensor named 'zz'");
  const into = new Uint8Array(10).fill(0xff);
  const got = await f.readRaw('b', 2, 3, into.subarray(1));
  assert.deepEqual(Array.from(got), [7, 8, 9]);
  assert.equal(got.buffer, into.buffer, 'read into the buffer given');
  assert.deepEqual(Array.from(into), [0xff, 7, 8, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  const exact = new Uint8Array(3);
  assert.equal((await f.readRaw('b', 0, 3, exact)).buffer, exact.buffer, 'a buffer of exactly the length is used');
  const small = new Uint8Array(2);
  const fresh = await f.readRaw('b', 0, 3, small);
  assert.deepEqual(
    [Array.from(fresh), Array.from(small)],
    [
      [5, 6, 7],
      [0, 0],
    ],
    'too small a buffer is not written',
  );
});

test('readF32: F32, F16 and BF16 in 2 MiB pieces, into a larger output, refusals for other dtypes and short outputs', async () => {
  const n = (3 << 20) / 2 + 5; // F16/BF16: over one piece
  const vals = Float32Array.from({ length: n }, (_, i) => (i % 251) - 125);
  const f32 = new Uint8Array(vals.buffer);
  const f16 = f32ToF16Bytes(vals);
  const bf16 = f32ToBf16Bytes(vals);
  const f = await open(
    encodeSafetensors([
      { name: 'h', dtype: 'F16', shape: [n], data: f16 },
      { name: 'f', dtype: 'F32', shape: [n], data: f32 },
      { name: 'b', dtype: 'BF16', shape: [n], data: bf16 },
      { name: 'i', dtype: 'I32', shape: [2], data: new Uint8Array(8) },
    ]),
  );
  for (const name of ['h', 'f', 'b']) assert.deepEqual(await f.readF32(name), vals, name);
  const out = new Float32Array(n + 3).fill(9);
  const got = await f.readF32('h', out);
  assert.equal(got.length, n);
  assert.equal(got.buffer, out.buffer);
  assert.deepEqual(got, vals);
  assert.deepEqual(Array.from(out.subarray(n)), [9, 9, 9]);
  const exact = new Float32Array(n);
  const whole = await f.readF32('b', exact);
  assert.equal(whole.buffer, exact.buffer, 'an output of exactly n values is used');
  assert.deepEqual(exact, vals);
  await assert.rejects(f.readF32('b', new Float32Array(n - 1)), {
    message: `m.safetensors: tensor 'b': output holds ${n - 1} values, needs ${n}`,
  });
  await assert.rejects(f.readF32('i'), {
    message: "m.safetensors: tensor 'i': cannot convert I32 to float32 (only F32, F16 and BF16)",
  });
  await refused(f.readF32('nope'), "no tensor named 'nope'");
});

test('toF32Into: each dtype into a view; F32 copies only the values the output holds', () => {
  const v = Float32Array.from([1.5, -2, 3]);
  const big = new Float32Array(5).fill(7);
  const out = new Float32Array(big.buffer, 4, 3);
  assert.equal(toF32Into(new Uint8Array(v.buffer), 'F32', out), out);
  assert.deepEqual(Array.from(big), [7, 1.5, -2, 3, 7]);
  big.fill(7);
  toF32Into(new Uint8Array(v.buffer), 'F32', new Float32Array(big.buffer, 4, 2));
  assert.deepEqual(Array.from(big), [7, 1.5, -2, 7, 7]);
  big.fill(7);
  toF32Into(f32ToF16Bytes(v), 'F16', out);
  assert.deepEqual(Array.from(big), [7, 1.5, -2, 3, 7]);
  big.fill(7);
  toF32Into(f32ToBf16Bytes(v), 'BF16', out);
  assert.deepEqual(Array.from(big), [7, 1.5, -2, 3, 7]);
  assert.throws(() => toF32Into(new Uint8Array(4), 'I8', out, 'x.safetensors: w'), {
    message: 'x.safetensors: w: cannot convert I8 to float32 (only F32, F16 and BF16)',
  });
  assert.throws(() => toF32(new Uint8Array(4), 'F64'), {
    message: 'tensor: cannot convert F64 to float32 (only F32, F16 and BF16)',
  });
  assert.deepEqual(Array.from(toF32(new Uint8Array(v.buffer), 'F32')), [1.5, -2, 3]);
  assert.deepEqual(Array.from(toF32(f32ToF16Bytes(v), 'F16')), [1.5, -2, 3]);
});

test('a dtype that is not a string is refused even when it would name a dtype as a property key', async () => {
  // As an object key, ["F32"] would read "F32".
  await refused(open(one(entry(['F32'], [1], [0, 4]))), `tensor 'w': unknown dtype ["F32"]`);
});

test('the span message counts the bytes between the offsets (not from 0)', async () => {
  await refused(
    open(one(entry('F32', [1], [8, 20]))),
    "tensor 'w': data_offsets span 12 bytes but shape [1] of F32 needs 4",
  );
});

test('close() closes the source', async () => {
  let closed = 0;
  const src = bufferSource(one(entry('F32', [1], [0, 4])), 'm.safetensors');
  const f = await openSafetensors({
    name: src.name,
    size: src.size,
    read: (o, n) => src.read(o, n),
    close: async () => {
      closed++;
    },
  });
  assert.equal(closed, 0);
  await f.close();
  assert.equal(closed, 1);
});
