// The NPZ writer through the native DirectFile (O_DIRECT from reused aligned staging buffers, native/src/io.cc):
// the same bytes as the Node file handle path, on the disk, on tmpfs (/dev/shm), on a file system that refuses
// O_DIRECT (ramfs, and the APL_IO_REFUSE_DIRECT hook), with small staging buffers so the CRC patches land on disk
// (read, modify, write of the aligned block) and the writer waits for free buffers; atomic on failure; a full disk
// is ENOSPC naming the file. Mounting ramfs / a small tmpfs needs root: those cases skip with the reason otherwise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { _forceReference, openDirectFile } from '../../../native/index';
import { NpzWriter, type NpzWriterOptions, openNpzFile } from '../../../server/src/formats/npz';
import { xorshiftBytes } from '../../helpers/random';

const dir = mkdtempSync(join(tmpdir(), 'apl-npz-direct-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const probe = (() => {
  try {
    const f = openDirectFile(join(dir, '.probe'));
    f?.abort();
    return f ? undefined : 'the native addon (or its DirectFile) is not built';
  } catch (e) {
    return `DirectFile failed: ${(e as Error).message}`;
  }
})();
const noAddon = probe ? { skip: probe } : {};

const SMALL: NpzWriterOptions['staging'] = { bufferBytes: 3 * 4096, buffers: 2 };

/** Members of awkward sizes: headers straddle blocks and buffers, big ones stream in uneven chunks. */
async function writeSample(path: string, opts: NpzWriterOptions): Promise<NpzWriter> {
  const w = await NpzWriter.create(path, opts);
  await w.addArray('a', { dtype: 'float32', shape: [3] }, new Uint8Array(new Float32Array([1, -2.5, 3.25]).buffer));
  const big = xorshiftBytes(1_000_003, 7);
  async function* chunks() {
    for (let o = 0; o < big.length; o += 65_537) yield big.subarray(o, o + 65_537);
  }
  await w.addArray('layers/0/q', { dtype: 'uint8', shape: [1_000_003] }, chunks());
  for (let i = 0; i < 40; i++)
    await w.addArray(`s${i}`, { dtype: 'uint8', shape: [i * 331] }, xorshiftBytes(i * 331, i));
  await w.addArray('whole', { dtype: 'uint8', shape: [300_000] }, xorshiftBytes(300_000, 3));
  await w.addArray('empty', { dtype: 'int16', shape: [0, 5] }, new Uint8Array(0));
  await w.close();
  return w;
}

const reference = new Map<boolean, Buffer>();
async function expected(forceZip64: boolean): Promise<Buffer> {
  let b = reference.get(forceZip64);
  if (!b) {
    const p = join(dir, `node-${forceZip64}.npz`);
    const w = await writeSample(p, { direct: false, forceZip64 });
    assert.equal(w.writeMode, 'node');
    b = readFileSync(p);
    reference.set(forceZip64, b);
  }
  return b;
}

test('DirectFile writes the bytes the Node path writes (large and small staging, ZIP64 or not)', noAddon, async () => {
  for (const forceZip64 of [false, true]) {
    for (const staging of [undefined, SMALL]) {
      const p = join(dir, `direct-${forceZip64}-${staging ? 'small' : 'default'}.npz`);
      const w = await writeSample(p, { direct: true, forceZip64, staging });
      // The test folder is on the disk (ext4 here, where O_DIRECT works); elsewhere the fallback is fine too.
      assert.ok(w.writeMode === 'o_direct' || w.writeMode === 'buffered', w.writeMode);
      assert.ok(readFileSync(p).equals(await expected(forceZip64)), `${p}: not the Node path's bytes`);
      const z = await openNpzFile(p);
      try {
        assert.equal(z.members.length, 44);
        for (const m of z.members) await z.verify(m.name); // every member's CRC checks
      } finally {
        await z.close();
      }
    }
  }
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test(
  'on tmpfs (/dev/shm): O_DIRECT or, where the kernel refuses it, ordinary writes; the same bytes',
  noAddon,
  async (t) => {
    if (!existsSync('/dev/shm')) return t.skip('no /dev/shm here');
    const d = mkdtempSync('/dev/shm/apl-npz-direct-');
    t.after(() => rmSync(d, { recursive: true, force: true }));
    const p = join(d, 'x.npz');
    const w = await writeSample(p, { direct: true, staging: SMALL });
    // Linux < 6.6 refuses O_DIRECT on tmpfs (EINVAL at open): 'buffered'; 6.6 and later take it.
    t.diagnostic(`tmpfs write mode: ${w.writeMode}`);
    assert.ok(w.writeMode === 'o_direct' || w.writeMode === 'buffered', w.writeMode);
    assert.ok(readFileSync(p).equals(await expected(false)));
  },
);

test(
  'a refused O_DIRECT (EINVAL at open, or at the first write, as the hook answers) falls back',
  noAddon,
  async (t) => {
    t.after(() => {
      delete process.env.APL_IO_REFUSE_DIRECT;
    });
    for (const when of ['1', 'write']) {
      process.env.APL_IO_REFUSE_DIRECT = when;
      for (const staging of [undefined, SMALL]) {
        const p = join(dir, `refused-${when}.npz`);
        const w = await NpzWriter.create(p, { direct: true, staging });
        assert.equal(w.writeMode, when === 'write' ? 'o_direct' : 'buffered', `${when}: the mode at open`);
        await w.abort();
        const w2 = await writeSample(p, { direct: true, staging });
        assert.equal(w2.writeMode, 'buffered', `${when}: the mode after the writes`);
        assert.ok(readFileSync(p).equals(await expected(false)), `${when}: not the Node path's bytes`);
      }
    }
  },
);

/** Mounts a file system of `type` in a new folder (root only); returns it or why not. */
function mount(t: { after(fn: () => void): void }, type: string, options: string): string | { skip: string } {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return { skip: 'mounting needs root on Linux' };
  const d = mkdtempSync(join(tmpdir(), `apl-${type}-`));
  const r = spawnSync('mount', ['-t', type, '-o', options, 'none', d], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(d, { recursive: true, force: true });
    return { skip: `mount -t ${type} failed: ${(r.stderr || r.error?.message || '').trim()}` };
  }
  t.after(() => {
    spawnSync('umount', [d]);
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}

test('ramfs refuses O_DIRECT for real: ordinary writes, the same bytes', noAddon, async (t) => {
  const d = mount(t, 'ramfs', 'mode=0755');
  if (typeof d !== 'string') return t.skip(d.skip);
  const p = join(d, 'x.npz');
  const w = await writeSample(p, { direct: true, staging: SMALL });
  assert.equal(w.writeMode, 'buffered');
  assert.ok(readFileSync(p).equals(await expected(false)));
});

test('a full disk: ENOSPC naming the file, no temporary left, the earlier file kept', noAddon, async (t) => {
  const d = mount(t, 'tmpfs', 'size=256k');
  if (typeof d !== 'string') return t.skip(d.skip);
  const p = join(d, 'x.npz');
  writeFileSync(p, 'earlier result');
  for (const staging of [undefined, SMALL]) {
    const w = await NpzWriter.create(p, { direct: true, staging });
    const e = await (async () => {
      await w.addArray('big', { dtype: 'uint8', shape: [1 << 20] }, xorshiftBytes(1 << 20, 1));
      await w.close();
    })().then(
      () => assert.fail('a 1 MiB member fits in a 256 KiB tmpfs'),
      (x: NodeJS.ErrnoException) => x,
    );
    assert.equal(e.code, 'ENOSPC', String(e));
    assert.match(e.message, /x\.npz\.tmp-\d+-[0-9a-f]+: writing failed: No space left on device \(ENOSPC\)$/);
    await w.abort();
    assert.deepEqual(readdirSync(d), ['x.npz']);
    assert.equal(readFileSync(p, 'utf8'), 'earlier result');
  }
});

test('abort while writes are queued: nothing left, no crash; a second close is refused', noAddon, async (t) => {
  const sub = join(dir, 'abort');
  mkdirSync(sub);
  t.after(() => rmSync(sub, { recursive: true, force: true }));
  const p = join(sub, 'x.npz');
  const w = await NpzWriter.create(p, { direct: true, staging: SMALL });
  await w.addArray('a', { dtype: 'uint8', shape: [200_000] }, xorshiftBytes(200_000, 2));
  await w.abort();
  assert.deepEqual(readdirSync(sub), []);
  // The DirectFile alone: a write not awaited, then abort; the write settles, the file is closed.
  const f = openDirectFile(join(sub, 'raw'), SMALL);
  assert.ok(f);
  const pending = f.write(xorshiftBytes(1 << 20, 5)).then(
    () => 'written',
    (e: Error) => e.message,
  );
  f.abort();
  const r = await pending;
  assert.ok(r === 'written' || /aborted/.test(r), r);
  assert.throws(() => f.patch(0, new Uint8Array(1)), /already closed/);
  assert.throws(() => f.close(), /already closed/);
});

test('DirectFile.patch outside the bytes written is refused; patches in memory and on disk land', noAddon, async () => {
  const p = join(dir, 'patch.bin');
  const f = openDirectFile(p, SMALL);
  assert.ok(f);
  const data = xorshiftBytes(5 * 4096 + 100, 9);
  await f.write(data);
  assert.throws(() => f.patch(data.length - 2, new Uint8Array(4)), /patch outside the bytes written/);
  const a = new Uint8Array([1, 2, 3, 4]);
  f.patch(10, a); // on disk by now or soon: queued after the writes before it
  f.patch(3 * 4096 - 2, a); // across the first staging buffer's end (the second part in memory or on disk)
  f.patch(data.length - 4, a); // still in the staging buffer
  await f.close();
  const want = Buffer.from(data);
  want.set(a, 10);
  want.set(a, 3 * 4096 - 2);
  want.set(a, data.length - 4);
  assert.ok(readFileSync(p).equals(want));
});

test('without the addon the writer uses Node file handles (the fallback), the same bytes', async () => {
  _forceReference(true);
  try {
    const p = join(dir, 'no-addon.npz');
    const w = await writeSample(p, {});
    assert.equal(w.writeMode, 'node');
    assert.ok(readFileSync(p).equals(await expected(false)));
  } finally {
    _forceReference(false);
  }
});
