import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { f32ToBf16Bytes, f32ToF16Bytes } from '../../../server/src/formats/dtypes';
import { FormatError } from '../../../server/src/formats/errors';
import {
  encodeSafetensors,
  openCheckpoint,
  openSafetensors,
  SAFETENSORS_DTYPE_BITS,
  type SafetensorsDtype,
  toF32,
  writeSafetensors,
} from '../../../server/src/formats/safetensors';
import { bufferSource, openFileSource } from '../../../server/src/formats/source';

const dir = mkdtempSync(join(tmpdir(), 'apl-st-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const vals = new Float32Array([0, 1, -1, 0.5, -2, 3.140625, 65504, -0.25]);

test('every safetensors dtype is recognised, with metadata and range reads', async () => {
  const tensors = (Object.keys(SAFETENSORS_DTYPE_BITS) as SafetensorsDtype[]).map((dtype, i) => {
    const shape = [2, 4];
    const bytes = (8 * SAFETENSORS_DTYPE_BITS[dtype]) / 8;
    return { name: `t${i}.${dtype}`, dtype, shape, data: Buffer.alloc(bytes, i + 1) };
  });
  const f = await openSafetensors(bufferSource(encodeSafetensors(tensors, { format: 'pt' }), 'all.safetensors'));
  assert.deepEqual(f.metadata, { format: 'pt' });
  assert.equal(f.tensors.length, tensors.length);
  for (const t of tensors) {
    const got = f.tensor(t.name)!;
    assert.equal(got.dtype, t.dtype);
    assert.deepEqual(got.shape, [2, 4]);
    assert.ok((await f.readRaw(t.name)).equals(t.data));
  }
  const i16 = tensors.find((t) => t.dtype === 'I16')!.name;
  assert.ok((await f.readRaw(i16, 2, 4)).equals(Buffer.alloc(4, 10)));
  await assert.rejects(f.readRaw(i16, 10, 10), /outside its 16 bytes/);
});

test('F32, F16 and BF16 convert to float32', async () => {
  const f = await openSafetensors(
    bufferSource(
      encodeSafetensors([
        { name: 'f32', dtype: 'F32', shape: [8], data: new Uint8Array(vals.buffer) },
        { name: 'f16', dtype: 'F16', shape: [8], data: f32ToF16Bytes(vals) },
        { name: 'bf16', dtype: 'BF16', shape: [2, 4], data: f32ToBf16Bytes(vals) },
      ]),
    ),
  );
  assert.deepEqual([...(await f.readF32('f32'))], [...vals]);
  assert.deepEqual([...(await f.readF32('f16'))], [...vals]);
  const bf = [...(await f.readF32('bf16'))];
  assert.deepEqual(bf.slice(0, 5), [0, 1, -1, 0.5, -2]);
  assert.equal(bf[6], 65536); // 65504 rounds to 65536 in bf16
  assert.throws(() => toF32(new Uint8Array(4), 'I32'), /cannot convert I32/);
});

test('sharded checkpoints through model.safetensors.index.json, readRows', async () => {
  const ck = join(dir, 'sharded');
  mkdirSync(ck);
  const rows = new Float32Array(12).map((_, i) => i);
  await writeSafetensors(join(ck, 'model-00001-of-00002.safetensors'), [
    { name: 'a', dtype: 'F32', shape: [3, 4], data: new Uint8Array(rows.buffer) },
  ]);
  await writeSafetensors(join(ck, 'model-00002-of-00002.safetensors'), [
    { name: 'b', dtype: 'BF16', shape: [4], data: f32ToBf16Bytes([1, 2, 3, 4]) },
  ]);
  writeFileSync(
    join(ck, 'model.safetensors.index.json'),
    JSON.stringify({
      metadata: {},
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    }),
  );
  const c = await openCheckpoint(ck);
  try {
    assert.deepEqual(c.files, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    assert.deepEqual(
      c.tensors.map((t) => [t.name, t.file]),
      [
        ['a', 'model-00001-of-00002.safetensors'],
        ['b', 'model-00002-of-00002.safetensors'],
      ],
    );
    const r = toF32(await c.readRows('a', 1, 2), 'F32');
    assert.deepEqual([...r], [4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual([...(await c.readF32('b'))], [1, 2, 3, 4]);
    await assert.rejects(c.readRows('a', 2, 2), /outside its 3 rows/);
  } finally {
    await c.close();
  }
  writeFileSync(
    join(ck, 'model.safetensors.index.json'),
    JSON.stringify({ weight_map: { c: 'model-00001-of-00002.safetensors' } }),
  );
  await assert.rejects(openCheckpoint(ck), /tensor 'c' listed in model.safetensors.index.json is missing/);
  writeFileSync(join(ck, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { c: '../etc.safetensors' } }));
  await assert.rejects(openCheckpoint(ck), /invalid file/);
});

test('single-file checkpoint', async () => {
  const ck = join(dir, 'single');
  mkdirSync(ck);
  await writeSafetensors(join(ck, 'model.safetensors'), [
    { name: 'w', dtype: 'F16', shape: [2, 2], data: f32ToF16Bytes([1, 2, 3, 4]) },
  ]);
  const c = await openCheckpoint(ck);
  assert.deepEqual(c.files, ['model.safetensors']);
  assert.deepEqual([...toF32(await c.readRows('w', 1, 1), 'F16')], [3, 4]);
  await c.close();
  await assert.rejects(openCheckpoint(join(dir, 'nothing-here')), FormatError);
});

function hostile(header: unknown, dataBytes = 16, lenOverride?: bigint): Buffer {
  const hb = Buffer.from(JSON.stringify(header));
  const b = Buffer.alloc(8 + hb.length + dataBytes);
  b.writeBigUInt64LE(lenOverride ?? BigInt(hb.length), 0);
  hb.copy(b, 8);
  return b;
}

test('hostile safetensors files give FormatErrors naming the file', async () => {
  const bad = async (buf: Buffer, re: RegExp) => {
    await assert.rejects(openSafetensors(bufferSource(buf, 'evil.safetensors')), (e: unknown) => {
      assert.ok(e instanceof FormatError, String(e));
      assert.ok(e.message.startsWith('evil.safetensors: '), e.message);
      assert.match(e.message, re);
      return true;
    });
  };
  const t = (o: object) => ({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16], ...o } });
  await bad(Buffer.alloc(4), /too short/);
  await bad(hostile({}, 0, 1n << 40n), /header length 1099511627776 exceeds/);
  await bad(hostile({}, 0, 1000n), /past the end/);
  await bad(hostile(t({})).subarray(0, 20), /past the end/);
  const trunc = Buffer.from('{"x": ');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(trunc.length));
  await bad(Buffer.concat([lenBuf, trunc]), /not valid JSON/);
  await bad(hostile(t({ dtype: 'F3' })), /unknown dtype "F3"/);
  await bad(hostile(t({ shape: [-4] })), /invalid shape dimension -4/);
  await bad(hostile(t({ shape: [2 ** 40, 2 ** 40] })), /overflows/);
  await bad(hostile(t({ shape: [5] })), /needs 20/);
  await bad(hostile(t({ data_offsets: [0, 32] })), /run past the data/);
  await bad(hostile(t({ data_offsets: [16, 0] })), /reversed/);
  await bad(
    hostile({ ...t({}), y: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }),
    /tensors 'x' and 'y' overlap/,
  );
  await bad(hostile(t({ data_offsets: 'no' })), /data_offsets must be/);
  await bad(hostile({ __metadata__: { a: 1 } }), /__metadata__.a is not a string/);
  await bad(hostile([1, 2]), /not a JSON object/);
});

test('readF32 of a tensor larger than its 4 MiB read step, from a file', async () => {
  const p = join(dir, 'big.safetensors');
  const n = 3_000_001;
  const bf = new Uint16Array(n);
  for (let i = 0; i < n; i++) bf[i] = 0x3f80 + (i % 300);
  const f32 = new Float32Array(n).map((_, i) => i * 0.5);
  await writeSafetensors(p, [
    { name: 'odd', dtype: 'U8', shape: [3], data: new Uint8Array(3) },
    { name: 'bf', dtype: 'BF16', shape: [n], data: new Uint8Array(bf.buffer) },
    { name: 'f', dtype: 'F32', shape: [n], data: new Uint8Array(f32.buffer) },
  ]);
  const f = await openSafetensors(await openFileSource(p));
  try {
    const a = await f.readF32('bf');
    assert.equal(a.length, n);
    assert.equal(a[n - 1], toF32(Buffer.from(bf.buffer, (n - 1) * 2, 2), 'BF16')[0]);
    assert.deepEqual(a, toF32(await f.readRaw('bf'), 'BF16'));
    assert.deepEqual(await f.readF32('f'), f32);
    const into = new Float32Array(n + 5);
    const r = await f.readF32('bf', into);
    assert.equal(r.buffer, into.buffer);
    assert.deepEqual(r, a);
    await assert.rejects(f.readF32('bf', new Float32Array(10)), /output holds 10 values/);
    await assert.rejects(f.readF32('odd'), /cannot convert U8/);
  } finally {
    await f.close();
  }
});

// Found by the fuzzer (test/fuzz, target safetensors): a header that is not JSON made the parser's excerpt of the
// raw bytes, control characters and all, part of the message. The refusal must stay one line.
test('fuzz regression: a non-JSON header with line breaks gives a one-line error', async () => {
  const header = Buffer.from('x\r\n\u2028y', 'utf8');
  const file = Buffer.concat([Buffer.alloc(8), header]);
  file.writeBigUInt64LE(BigInt(header.length));
  await assert.rejects(openSafetensors(bufferSource(file, 'bad.safetensors')), (e: Error) => {
    assert.ok(e instanceof FormatError);
    assert.match(e.message, /^bad\.safetensors: header is not valid JSON/);
    assert.doesNotMatch(e.message, /[\r\n\u2028\u2029]/);
    return true;
  });
});
