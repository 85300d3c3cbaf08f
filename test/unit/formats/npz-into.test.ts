// NpzArchive.readArrayInto (the weight arena's read: server/src/run/load.ts) against readArray on a zip made here
// (test/helpers/zip.ts): a stored member, a deflated one, a big-endian float16 one (swapped in place), a target of
// the wrong size, and a stored member whose bytes no longer match the directory's CRC-32.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeNpyHeader } from '../../../server/src/formats/npy';
import { openNpz } from '../../../server/src/formats/npz';
import { bufferSource } from '../../../server/src/formats/source';
import { makeZip } from '../../helpers/zip';

const npy = (descr: string, shape: number[], data: Buffer) => Buffer.concat([encodeNpyHeader({ descr, shape }), data]);

test('readArrayInto: the same bytes as readArray, into the buffer given (stored, deflated, big-endian)', async () => {
  const codes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) & 255));
  const be = Buffer.alloc(200);
  for (let i = 0; i < 100; i++) be.writeUInt16BE(0x3c00 + i, 2 * i);
  const z = await openNpz(
    bufferSource(
      makeZip([
        { name: 'q.npy', data: npy('|u1', [30, 100], codes) },
        { name: 'd.npy', data: npy('|u1', [30, 100], codes), deflate: true },
        { name: 's.npy', data: npy('>f2', [100], be) },
        { name: 'bad.npy', data: npy('|u1', [30, 100], codes), crc: 1234 },
      ]),
      'w.npz',
    ),
  );
  const arena = new Uint8Array(8192).fill(0xee);
  let used = 64;
  const take = (h: { dataBytes: number }) => {
    const v = arena.subarray(used, used + h.dataBytes);
    used += Math.ceil(h.dataBytes / 64) * 64;
    return v;
  };
  for (const name of ['q', 'd', 's']) {
    const before = used;
    const got = await z.readArrayInto(name, take);
    const want = await z.readArray(name);
    assert.equal(got.data.buffer, arena.buffer, `${name}: not read into the buffer given`);
    assert.equal(got.data.byteOffset, before);
    assert.deepEqual(got.header, want.header);
    const w = want.data as ArrayBufferView;
    assert.deepEqual(Buffer.from(got.data), Buffer.from(w.buffer, w.byteOffset, w.byteLength), name);
  }
  assert.equal(arena[63], 0xee, 'wrote before the target');
  const s = await z.readArrayInto('s', (h) => new Uint8Array(h.dataBytes));
  assert.equal(new DataView(s.data.buffer).getUint16(2 * 7, true), 0x3c07, 'big-endian float16 not swapped');
  await assert.rejects(
    z.readArrayInto('q', () => new Uint8Array(10)),
    /target of 10 bytes for 3000/,
  );
  await assert.rejects(
    z.readArrayInto('bad', (h) => new Uint8Array(h.dataBytes)),
    /w\.npz.*bad\.npy.*CRC-32 mismatch/,
  );
});
