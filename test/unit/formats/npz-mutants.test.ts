// openNpz's central directory reader against hand-made zip structures in memory (no files, no numpy), for the
// mutation group formats-npz: the end record and its search, ZIP64 records and extra fields, each member check
// with its message and its boundary, and the members listed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openNpz } from '../../../server/src/formats/npz';
import { bufferSource } from '../../../server/src/formats/source';
import { refusedFor } from '../../helpers/refused';

interface Member {
  name: string | Buffer;
  flags?: number;
  method?: number;
  crc?: number;
  csize?: number;
  usize?: number;
  lho?: number;
  extra?: Buffer;
  comment?: string;
}

function central(m: Member): Buffer {
  const name =
    typeof m.name === 'string' ? Buffer.from(m.name, m.flags && m.flags & 0x800 ? 'utf8' : 'latin1') : m.name;
  const extra = m.extra ?? Buffer.alloc(0);
  const comment = Buffer.from(m.comment ?? '');
  const h = Buffer.alloc(46);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(m.flags ?? 0, 8);
  h.writeUInt16LE(m.method ?? 0, 10);
  h.writeUInt32LE(m.crc ?? 0x12345678, 16);
  h.writeUInt32LE(m.csize ?? 10, 20);
  h.writeUInt32LE(m.usize ?? m.csize ?? 10, 24);
  h.writeUInt16LE(name.length, 28);
  h.writeUInt16LE(extra.length, 30);
  h.writeUInt16LE(comment.length, 32);
  h.writeUInt32LE(m.lho ?? 0, 42);
  return Buffer.concat([h, name, extra, comment]);
}

interface Opts {
  /** Bytes before the central directory (the members' data). */
  data?: number;
  count?: number;
  cdSize?: number;
  cdOffset?: number;
  comment?: Buffer;
  disk?: [number, number];
  zip64?: { count?: number; cdSize?: number; cdOffset?: number; offset?: number; sig?: number; big?: bigint };
  cdBytes?: Buffer;
}

/** A zip: `data` bytes, the central directory of `members`, [ZIP64 end record + locator], the end record. */
function zip(members: Member[], o: Opts = {}): Buffer {
  const data = Buffer.alloc(o.data ?? 100);
  const cd = o.cdBytes ?? Buffer.concat(members.map(central));
  const parts = [data, cd];
  if (o.zip64) {
    const z = o.zip64;
    const e64 = Buffer.alloc(56);
    e64.writeUInt32LE(z.sig ?? 0x06064b50, 0);
    e64.writeBigUInt64LE(BigInt(z.count ?? members.length), 32);
    e64.writeBigUInt64LE(BigInt(z.cdSize ?? cd.length), 40);
    e64.writeBigUInt64LE(z.big ?? BigInt(z.cdOffset ?? data.length), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(z.offset ?? data.length + cd.length), 8);
    parts.push(e64, loc);
  }
  const comment = o.comment ?? Buffer.alloc(0);
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(o.disk?.[0] ?? 0, 4);
  e.writeUInt16LE(o.disk?.[1] ?? 0, 6);
  e.writeUInt16LE(o.zip64 ? 0xffff : (o.count ?? members.length), 10);
  e.writeUInt32LE(o.zip64 ? 0xffffffff : (o.cdSize ?? cd.length), 12);
  e.writeUInt32LE(o.zip64 ? 0xffffffff : (o.cdOffset ?? data.length), 16);
  e.writeUInt16LE(comment.length, 20);
  parts.push(e, comment);
  return Buffer.concat(parts);
}
const open = (b: Buffer) => openNpz(bufferSource(b, 'q.npz'));
const refused = refusedFor('q.npz');
/** A ZIP64 extra field holding the given 64-bit values. */
function x64(...vals: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * vals.length);
  b.writeUInt16LE(1, 0);
  b.writeUInt16LE(8 * vals.length, 2);
  for (const [i, v] of vals.entries()) b.writeBigUInt64LE(BigInt(v), 4 + 8 * i);
  return b;
}

test('members as listed: name, key, compression, sizes, crc, offset; folder entries skipped', async () => {
  const z = await open(
    zip([
      { name: 'a.npy', csize: 20, lho: 0, crc: 0xdeadbeef },
      { name: 'dir/', csize: 0, lho: 50 },
      { name: 'dir/b.npy', method: 8, csize: 10, usize: 300, lho: 50 },
      { name: 'notes', csize: 5, lho: 65, comment: 'hi' },
    ]),
  );
  assert.deepEqual(z.members, [
    {
      name: 'a.npy',
      key: 'a',
      compressed: false,
      compressedSize: 20,
      size: 20,
      crc32: 0xdeadbeef,
      localHeaderOffset: 0,
    },
    {
      name: 'dir/b.npy',
      key: 'dir/b',
      compressed: true,
      compressedSize: 10,
      size: 300,
      crc32: 0x12345678,
      localHeaderOffset: 50,
    },
    {
      name: 'notes',
      key: 'notes',
      compressed: false,
      compressedSize: 5,
      size: 5,
      crc32: 0x12345678,
      localHeaderOffset: 65,
    },
  ]);
  assert.equal(z.member('dir/b')?.name, 'dir/b.npy');
  assert.equal(z.member('a.npy')?.key, 'a');
});

test('names: UTF-8 with flag 0x800, latin-1 without', async () => {
  const z = await open(
    zip([
      { name: 'é.npy', flags: 0x800 },
      { name: Buffer.from([0xe9, 0x62, 0x2e, 0x6e, 0x70, 0x79]), lho: 40 },
    ]),
  );
  assert.deepEqual(
    z.members.map((m) => m.name),
    ['é.npy', 'éb.npy'],
  );
  await refused(open(zip([{ name: 'x.npy' }, { name: 'x.npy', lho: 40 }])), "duplicate member name 'x.npy'");
});

test('the end record: found after a comment, at the very start of a 22-byte file, or refused', async () => {
  const withComment = zip([{ name: 'a.npy' }], { comment: Buffer.alloc(65535, 0x20) });
  assert.equal((await open(withComment)).members.length, 1);
  // A comment that itself holds an end-record signature whose own comment would run past the end: skipped.
  const fake = Buffer.alloc(30, 0x20);
  fake.writeUInt32LE(0x06054b50, 4);
  fake.writeUInt16LE(500, 24);
  assert.equal((await open(zip([{ name: 'a.npy' }], { comment: fake }))).members.length, 1);
  const empty = zip([], { data: 0 });
  assert.equal(empty.length, 22);
  assert.deepEqual((await open(empty)).members, []);
  await refused(open(empty.subarray(0, 21)), 'not a zip/npz file (21 bytes is too short)');
  await refused(open(Buffer.alloc(22)), 'not a zip/npz file (no end-of-central-directory record; truncated?)');
  await refused(open(withComment.subarray(0, withComment.length - 1)), /no end-of-central-directory record/);
  // A comment longer than 64 KiB puts the record out of reach.
  const far = Buffer.concat([zip([], { data: 0 }), Buffer.alloc(65536)]);
  await refused(open(far), /no end-of-central-directory record/);
  await refused(open(zip([], { disk: [1, 0] })), 'multi-disk zip archives are not supported');
  await refused(open(zip([], { disk: [0, 1] })), 'multi-disk zip archives are not supported');
});

test('the central directory: bounds, size limit, member count, each corrupt entry', async () => {
  const m = [{ name: 'a.npy' }];
  const cdLen = central(m[0]).length;
  await refused(
    open(zip(m, { cdSize: cdLen + 1 })),
    `central directory (offset 100, ${cdLen + 1} bytes) runs past its end record (truncated?)`,
  );
  await refused(open(zip(m, { cdOffset: 101 })), /central directory \(offset 101, \d+ bytes\) runs past/);
  await refused(open(zip(m, { count: 2 })), `central directory claims 2 members but has only ${cdLen} bytes`);
  // 46 bytes a member is the least: exactly that is not refused here (the entry check comes next).
  await refused(open(zip([], { cdBytes: Buffer.alloc(46), count: 1 })), 'corrupt central directory at entry 0');
  const bad = central(m[0]);
  bad.writeUInt16LE(200, 28); // a name running past the directory
  await refused(open(zip([], { cdBytes: bad, count: 1 })), 'corrupt central directory at entry 0');
  const two = Buffer.concat([central(m[0]), Buffer.alloc(46)]);
  await refused(open(zip([], { cdBytes: two, count: 2 })), 'corrupt central directory at entry 1');
  // A big archive (the 128 KiB tail starts past 0) whose directory lies inside the tail: same result.
  const big = await open(zip([{ name: 'a.npy', csize: 199_000 }], { data: 200_000 }));
  assert.equal(big.members[0].size, 199_000);
});

test('each member check refuses with its message, and its boundary passes', async () => {
  const cases: [Member, string][] = [
    [{ name: '../x.npy' }, "member name '../x.npy' is unsafe (absolute or contains '..')"],
    [{ name: '/x.npy' }, "member name '/x.npy' is unsafe (absolute or contains '..')"],
    [{ name: 'x.npy', flags: 1 }, "member 'x.npy' is encrypted"],
    [{ name: 'x.npy', method: 12 }, "member 'x.npy' uses unsupported compression method 12"],
    [{ name: 'x.npy', method: 1 }, "member 'x.npy' uses unsupported compression method 1"],
    [{ name: 'x.npy', csize: 10, usize: 11 }, "stored member 'x.npy' has compressed size 10 ≠ size 11"],
    [
      { name: 'x.npy', method: 8, csize: 10, usize: 10 * 1032 + 1025 },
      "member 'x.npy' declares 11345 bytes from 10 compressed bytes, more than deflate can produce",
    ],
    [{ name: 'x.npy', csize: 71, lho: 0 }, "member 'x.npy' data (offset 0, 71 bytes) runs past the archive"],
    [{ name: 'x.npy', csize: 10, lho: 61 }, "member 'x.npy' data (offset 61, 10 bytes) runs past the archive"],
  ];
  for (const [mem, problem] of cases) await refused(open(zip([mem])), problem);
  const okCases: Member[] = [
    { name: 'x.npy', method: 8, csize: 10, usize: 10 * 1032 + 1024 },
    { name: 'x.npy', method: 8, csize: 0, usize: 1024 },
    { name: 'x.npy', csize: 70, lho: 0 },
    { name: 'x.npy', csize: 10, lho: 60 },
    { name: 'x.npy', flags: 2 },
    { name: 'x.npy', method: 8, csize: 10, usize: 5 },
  ];
  for (const mem of okCases) assert.equal((await open(zip([mem]))).members.length, 1, JSON.stringify(mem));
});

test('ZIP64: the end record through its locator, and the sizes and offset from the extra field', async () => {
  const U = 0xffffffff;
  const z = await open(
    zip(
      [
        { name: 'a.npy', csize: U, usize: U, lho: U, extra: x64(30, 30, 5) },
        { name: 'b.npy', csize: 20, usize: U, lho: 40, method: 8, extra: x64(2000) },
        { name: 'c.npy', csize: U, usize: 8, lho: 70, extra: x64(8) },
      ],
      { zip64: {}, data: 200 },
    ),
  );
  assert.deepEqual(
    z.members.map((m) => [m.name, m.size, m.compressedSize, m.localHeaderOffset]),
    [
      ['a.npy', 30, 30, 5],
      ['b.npy', 2000, 20, 40],
      ['c.npy', 8, 8, 70],
    ],
  );
  // An unrelated extra field before the ZIP64 one is skipped by its length.
  const other = Buffer.from([0x55, 0x54, 2, 0, 9, 9]);
  const z2 = await open(zip([{ name: 'a.npy', csize: U, usize: U, extra: Buffer.concat([other, x64(7, 7)]) }]));
  assert.deepEqual([z2.members[0].size, z2.members[0].compressedSize], [7, 7]);
  // Sizes that fit in 32 bits ignore the extra field.
  const z3 = await open(zip([{ name: 'a.npy', csize: 9, usize: 9, extra: x64(50, 50) }]));
  assert.equal(z3.members[0].size, 9);
});

test('ZIP64 refusals: each with its message', async () => {
  const U = 0xffffffff;
  await refused(
    open(zip([{ name: 'a.npy', csize: U, usize: U, extra: x64(30) }])),
    "member 'a.npy': ZIP64 extra field lacks the compressed size",
  );
  await refused(
    open(zip([{ name: 'a.npy', lho: U, extra: x64() }])),
    "member 'a.npy': ZIP64 extra field lacks the offset",
  );
  await refused(open(zip([{ name: 'a.npy', usize: U, csize: 10, extra: x64() }])), /lacks the size$/);
  const cut = x64(30);
  cut.writeUInt16LE(9, 2);
  await refused(open(zip([{ name: 'a.npy', extra: cut }])), "member 'a.npy': corrupt extra field");
  await refused(
    open(zip([{ name: 'a.npy', usize: U, csize: U, extra: x64(2 ** 53, 1) }])),
    "member 'a.npy' size 9007199254740992 is too large",
  );
  const m = [{ name: 'a.npy' }];
  const n = 100 + central(m[0]).length;
  await refused(open(zip(m, { zip64: { offset: n + 1 } })), `ZIP64 end record offset ${n + 1} is out of range`);
  await refused(open(zip(m, { zip64: { sig: 0x06054b50 } })), 'bad ZIP64 end-of-central-directory record');
  await refused(
    open(zip(m, { zip64: { big: 2n ** 60n } })),
    'central directory offset 1152921504606846976 is too large',
  );
  await refused(open(zip(m, { zip64: { count: 3 } })), /claims 3 members/);
  await refused(open(zip(m, { zip64: { cdOffset: 101 } })), /central directory \(offset 101/);
  // The locator's record offset exactly at its limit is accepted.
  assert.equal((await open(zip(m, { zip64: { offset: n } }))).members.length, 1);
});

test('a ZIP64 locator at the very start of the file (no room for its record) is refused', async () => {
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  await refused(open(Buffer.concat([loc, zip([], { data: 0 })])), 'ZIP64 end record offset 0 is out of range');
});

test('an entry of exactly 46 bytes ending the directory is read (its empty name is then refused as unsafe)', async () => {
  await refused(open(zip([{ name: '', csize: 0 }])), "member name '' is unsafe (absolute or contains '..')");
});

test('a file comment on a member that is not the last: the next entry is found after it', async () => {
  const z = await open(
    zip([
      { name: 'a.npy', comment: 'hi' },
      { name: 'b.npy', lho: 40 },
    ]),
  );
  assert.deepEqual(
    z.members.map((m) => m.name),
    ['a.npy', 'b.npy'],
  );
});

test('an entry whose fixed 46 bytes run past the directory is refused, not read past its end', async () => {
  // Entry 0 (51 bytes) is whole; entry 1 has its signature but only 44 of its 46 fixed bytes.
  const cdBytes = Buffer.concat([central({ name: 'a.npy' }), central({ name: 'b.npy' }).subarray(0, 44)]);
  await refused(open(zip([], { cdBytes, count: 2 })), 'corrupt central directory at entry 1');
});

/** data bytes, the directory of `members`, `gap` bytes, the end record pointing back at offset `data`. */
function zipWithGap(members: Member[], data: number, gap: number): Buffer {
  const cd = Buffer.concat(members.map(central));
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(members.length, 10);
  e.writeUInt32LE(cd.length, 12);
  e.writeUInt32LE(data, 16);
  return Buffer.concat([Buffer.alloc(data), cd, Buffer.alloc(gap), e]);
}

test('a directory that starts before the 128 KiB tail is read from the file', async () => {
  // 140 000 bytes between the directory and its end record: the directory lies before the tail read.
  const z = await open(
    zipWithGap(
      [
        { name: 'a.npy', csize: 20 },
        { name: 'b.npy', lho: 50 },
      ],
      100,
      140_000,
    ),
  );
  assert.deepEqual(
    z.members.map((m) => [m.name, m.size]),
    [
      ['a.npy', 20],
      ['b.npy', 10],
    ],
  );
});

test('in a big archive, a directory inside the tail is cut at its declared size', async () => {
  // The entry needs 51 bytes but the end record declares 46: refused, even with more bytes after it in the tail.
  await refused(
    open(zip([{ name: 'a.npy', csize: 199_000 }], { data: 200_000, cdSize: 46 })),
    'corrupt central directory at entry 0',
  );
});

/** A source of `size` bytes, zeros except the end record (empty directory of cdSize bytes at 0) at its end. */
function hugeDirectory(cdSize: number) {
  const size = cdSize + 22;
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt32LE(cdSize, 12);
  return {
    name: 'q.npz',
    size,
    async read(offset: number, length: number) {
      const b = Buffer.alloc(length);
      if (offset + length === size) e.copy(b, length - 22);
      return b;
    },
    async close() {},
  };
}

test('the central directory size limit (256 MiB): over it refused, exactly it read', async () => {
  const MAX = 256 << 20;
  await refused(openNpz(hugeDirectory(MAX + 1)), `central directory of ${MAX + 1} bytes exceeds the limit`);
  assert.deepEqual((await openNpz(hugeDirectory(MAX))).members, []);
});
