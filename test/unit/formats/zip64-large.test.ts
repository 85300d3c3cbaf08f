// Real ZIP64 at scale: a member over 4 GiB and members at offsets past 4 GiB, checked here and by Python's zipfile.
// Writes about 4.3 GB to a temp dir, so it is opt-in: it runs only with APL_SLOW_TESTS=1 (nothing sets it, CI
// included) and is skipped otherwise, saying so. numpy follows the suite's rule: missing under CI=true fails (before
// anything is written), elsewhere the numpy half is skipped with a warning.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NpzWriter, openNpzFile } from '../../../server/src/formats/npz';
import { requireNumpy, runPython } from '../../helpers/numpy';

const slow = process.env.APL_SLOW_TESTS === '1';
const optIn = 'opt-in, set APL_SLOW_TESTS=1 to run it (writes 4.3 GB)';
if (!slow) console.log(`# SKIPPED: ZIP64 over 4 GiB: ${optIn}`);

test('ZIP64 for a member over 4 GiB and offsets past 4 GiB', { skip: slow ? false : optIn }, async (t) => {
  const numpy = requireNumpy(t);
  const dir = mkdtempSync(join(tmpdir(), 'apl-zip64-'));
  try {
    const p = join(dir, 'huge.npz');
    const big = 4_400_000_000;
    const chunk = Buffer.alloc(64 << 20, 1);
    async function* data() {
      for (let o = 0; o < big; o += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, big - o));
    }
    const w = await NpzWriter.create(p);
    await w.addArray('head', { dtype: 'uint8', shape: [3] }, Uint8Array.from([1, 2, 3]));
    await w.addArray('big', { dtype: 'uint8', shape: [big] }, data());
    await w.addArray('tail', { dtype: 'float32', shape: [2] }, new Uint8Array(new Float32Array([1.5, -2]).buffer));
    await w.close();
    const z = await openNpzFile(p);
    try {
      assert.ok(z.member('big')!.size > 2 ** 32);
      assert.ok(z.member('tail')!.localHeaderOffset > 2 ** 32);
      assert.deepEqual([...((await z.readArray('tail')).data as Float32Array)], [1.5, -2]);
      assert.deepEqual([...(await z.readData('big', big - 2, 2))], [1, 1]);
    } finally {
      await z.close();
    }
    if (!numpy) return;
    const out = runPython(
      `
z = zipfile.ZipFile(sys.argv[1])
i = {x.filename: (x.file_size, x.header_offset) for x in z.infolist()}
f = np.load(sys.argv[1])
print(json.dumps([i['big.npy'][0], i['tail.npy'][1], f['tail'].tolist(), f['head'].tolist()]))
`,
      [p],
      { timeoutMs: 300_000 },
    );
    const [size, off, tail, head] = JSON.parse(out);
    assert.ok(size > 2 ** 32 && off > 2 ** 32);
    assert.deepEqual(tail, [1.5, -2]);
    assert.deepEqual(head, [1, 2, 3]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
