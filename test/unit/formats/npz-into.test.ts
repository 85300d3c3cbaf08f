// NpzArchive.readArrayInto (the weight arena's read: server/src/run/load.ts) against readArray on a zip made here:
// a stored member, a deflated one, a big-endian float16 one (swapped in place), a target of the wrong size, and a
// stored member whose bytes no longer match the directory's CRC-32.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { crc32 } from '../../../server/src/formats/crc32';
import { encodeNpyHeader } from '../../../server/src/formats/npy';
import { openNpz } from '../../../server/src/formats/npz';
import { bufferSource } from '../../../server/src/formats/source';

interface M {
  name: string;
  npy: Buffer;
  deflate?: boolean;
  crc?: number;
}

/** A zip of the members (stored or deflated), local headers, central directory, end record. */
function zip(members: M[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const m of members) {
    const name = Buffer.from(m.name);
    const data = m.deflate ? zlib.deflateRawSync(m.npy) : m.npy;
    const crc = m.crc ?? crc32(m.npy);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(m.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(m.npy.length, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(m.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(m.npy.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(at, 42);
    central.push(ch, name);
    parts.push(lh, name, data);
    at += 30 + name.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(at, 16);
  return Buffer.concat([...parts, cd, end]);
}

const npy = (descr: string, shape: number[], data: Buffer) => Buffer.concat([encodeNpyHeader({ descr, shape }), data]);

test('readArrayInto: the same bytes as readArray, into the buffer given (stored, deflated, big-endian)', async () => {
  const codes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) & 255));
  const be = Buffer.alloc(200);
  for (let i = 0; i < 100; i++) be.writeUInt16BE(0x3c00 + i, 2 * i);
  const z = await openNpz(
    bufferSource(
      zip([
        { name: 'q.npy', npy: npy('|u1', [30, 100], codes) },
        { name: 'd.npy', npy: npy('|u1', [30, 100], codes), deflate: true },
        { name: 's.npy', npy: npy('>f2', [100], be) },
        { name: 'bad.npy', npy: npy('|u1', [30, 100], codes), crc: 1234 },
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
