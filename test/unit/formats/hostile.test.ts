// Hostile and broken archives: each gives a FormatError that names the file (and the member) and the problem;
// none crashes, hangs, or allocates in proportion to a size the file merely claims.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32 } from '../../../server/src/formats/crc32';
import { FormatError } from '../../../server/src/formats/errors';
import { encodeNpyHeader } from '../../../server/src/formats/npy';
import { openNpz } from '../../../server/src/formats/npz';
import { bufferSource, openFileSource } from '../../../server/src/formats/source';
import { xorshiftBytes } from '../../helpers/random';
import { makeZip } from '../../helpers/zip';

const npy = (shape: number[], dataBytes: number, descr = '<f4') =>
  Buffer.concat([encodeNpyHeader({ descr, shape }), Buffer.alloc(dataBytes, 7)]);

function rawNpy(dict: string, dataBytes: number): Buffer {
  const body = Buffer.from(`${dict}\n`, 'latin1');
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(body.length, 8);
  return Buffer.concat([pre, body, Buffer.alloc(dataBytes)]);
}

async function expectError(p: Promise<unknown>, re: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FormatError, `not a FormatError: ${String(e)}`);
    assert.equal(e.file, 'evil.npz');
    assert.ok(e.message.startsWith('evil.npz: '), e.message);
    assert.match(e.message, re);
    return true;
  });
}

const open = (b: Buffer) => openNpz(bufferSource(b, 'evil.npz'));

test('a well-formed hand-made zip opens (the builder itself is sound)', async () => {
  const z = await open(
    makeZip([
      { name: 'a.npy', data: npy([4], 16) },
      { name: 'b.npy', data: npy([2], 8), deflate: true },
    ]),
  );
  assert.deepEqual((await z.readArray('a')).header.shape, [4]);
  assert.deepEqual((await z.readArray('b')).header.shape, [2]);
});

test('truncated archives', async () => {
  const good = makeZip([{ name: 'a.npy', data: npy([1000], 4000) }]);
  await expectError(open(good.subarray(0, 10)), /too short/);
  await expectError(open(good.subarray(0, good.length - 5)), /no end-of-central-directory/);
  await expectError(open(good.subarray(0, 2000)), /no end-of-central-directory/);
  // the end record survives but the data before it is cut
  const cut = Buffer.concat([good.subarray(0, 100), good.subarray(good.length - 22 - 46 - 5)]);
  await expectError(open(cut), /runs past|central directory/);
});

test('member headers: length past the end, negative, overflowing, or bigger than the data', async () => {
  const lenPast = npy([4], 16);
  lenPast.writeUInt16LE(50000, 8);
  for (const deflate of [false, true]) {
    const cases: [Buffer, RegExp][] = [
      [lenPast, /member 'x.npy': header length 50000 runs past/],
      [
        rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 16),
        /member 'x.npy': invalid shape dimension -3/,
      ],
      [rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0), /overflows/],
      [rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }", 16), /needs 4000000 bytes/],
      [Buffer.from('not an npy file at all'), /bad magic/],
      [Buffer.alloc(3), /too short/],
    ];
    for (const [data, re] of cases) {
      const z = await open(makeZip([{ name: 'x.npy', data, deflate }]));
      await expectError(z.readHeader('x'), re);
      await expectError(z.readArray('x'), re);
    }
  }
});

test('unsafe and duplicate member names, bad directory counts and offsets', async () => {
  const d = npy([1], 4);
  await expectError(open(makeZip([{ name: '../evil.npy', data: d }])), /unsafe/);
  await expectError(open(makeZip([{ name: 'a/../../evil.npy', data: d }])), /unsafe/);
  await expectError(open(makeZip([{ name: '/etc/passwd', data: d }])), /unsafe/);
  await expectError(open(makeZip([{ name: 'C:\\x.npy', data: d }])), /unsafe/);
  await expectError(
    open(
      makeZip([
        { name: 'a.npy', data: d },
        { name: 'a.npy', data: d },
      ]),
    ),
    /duplicate member name 'a.npy'/,
  );
  await expectError(open(makeZip([{ name: 'a.npy', data: d }], { count: 60000 })), /claims 60000 members/);
  await expectError(open(makeZip([{ name: 'a.npy', data: d }], { cdOffset: 1 << 30 })), /runs past/);
  await expectError(open(makeZip([{ name: 'a.npy', data: d, size: 999 }])), /compressed size .* ≠ size/);
});

test('zip bomb: a member that inflates far past its declared size stops there with an error', async () => {
  const header = encodeNpyHeader({ descr: '|u1', shape: [1000] });
  const huge = Buffer.concat([header, Buffer.alloc(16 << 20)]); // 16 MiB of zeros, ~16 KiB compressed
  const declared = header.length + 1000;
  const crc = crc32(huge.subarray(0, declared));
  const zip = makeZip([{ name: 'bomb.npy', data: huge, deflate: true, size: declared, crc }]);
  assert.ok(zip.length < 50_000);
  const z = await open(zip);
  // small enough to inflate in one call, bounded by the declared size: even the header read sees the lie
  await expectError(z.readHeader('bomb'), /inflates past its declared size/);
  await expectError(z.readArray('bomb'), /inflates past its declared size/);
  await expectError(z.verify('bomb'), /inflates past its declared size/);
  const chunks = async () => {
    for await (const _ of z.dataChunks('bomb')) {
    }
  };
  await expectError(chunks(), /inflates past its declared size/);
  // a declared size no deflate stream could reach from so few bytes is refused at once
  const liar = makeZip([{ name: 'big.npy', data: npy([4], 16), deflate: true, size: 2 ** 31 }]);
  await expectError(open(liar), /more than deflate can produce/);
  // and a large streamed bomb (compressed bigger than the one-shot threshold)
  const rnd = xorshiftBytes(1 << 20, 88172645);
  const big = Buffer.concat([header, rnd, Buffer.alloc(8 << 20)]);
  const z2 = await open(makeZip([{ name: 'b2.npy', data: big, deflate: true, size: declared + (1 << 20), crc: 0 }]));
  assert.ok(z2.member('b2')!.compressedSize > 256 << 10, 'takes the streaming path');
  await expectError(z2.readArray('b2'), /inflates past its declared size/);
});

test('corrupt data: CRC mismatch, corrupt deflate stream, member shorter than declared', async () => {
  const d = npy([4], 16);
  const z = await open(makeZip([{ name: 'a.npy', data: d, crc: 12345 }]));
  await expectError(z.readArray('a'), /CRC-32 mismatch/);
  await expectError(z.verify('a'), /CRC-32 mismatch/);
  const broken = makeZip([{ name: 'a.npy', data: d, deflate: true }]);
  const at = broken.indexOf('a.npy') + 5 + 3;
  broken[at] ^= 0xff;
  broken[at + 1] ^= 0xff;
  const z2 = await open(broken);
  await expectError(z2.readArray('a'), /member 'a.npy'/);
  const short = await open(makeZip([{ name: 'a.npy', data: d, deflate: true, size: d.length + 10 }]));
  await expectError(short.readArray('a'), /inflates to \d+ bytes/);
});

test('special files (a FIFO with no writer, a device) are refused at once, not waited on', {
  timeout: 10_000,
}, async (t) => {
  if (process.platform === 'win32') {
    t.skip('no FIFOs or /dev here');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'apl-hostile-'));
  try {
    const fifo = join(dir, 'model.safetensors');
    execFileSync('mkfifo', [fifo]);
    for (const p of [fifo, '/dev/zero']) {
      await assert.rejects(openFileSource(p), (e: unknown) => {
        assert.ok(e instanceof FormatError, String(e));
        assert.equal(e.message, `${p}: not a regular file (a pipe, socket or device)`);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
