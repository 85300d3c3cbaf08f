import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readNpyArray, writeNpyFile } from '../../../server/src/formats/npy';
import { openFileSource } from '../../../server/src/formats/source';
import { InspectorSession, MAX_PAGE_ELEMENTS } from '../../../server/src/inspect/session';
import { tempDir } from '../../helpers/tmp';

const fixtures = join(__dirname, 'fixtures');

for (const file of ['numpy_stored.npz', 'numpy_deflated.npz']) {
  test(`members and pages of a numpy-written archive (${file})`, async () => {
    const s = await InspectorSession.open(join(fixtures, file));
    try {
      assert.equal(s.kind, 'npz');
      assert.equal(s.manifest, null);
      const members = await s.members();
      const by = Object.fromEntries(members.map((m) => [m.name, m]));
      assert.deepEqual(
        members.map((m) => m.name),
        ['weight.npy', 'half.npy', 'flags.npy', 'ids.npy', 'big_endian.npy', 'fortran.npy', 'cube.npy', 'scalar.npy'],
      );
      assert.deepEqual(
        [by['weight.npy'].dtype, by['weight.npy'].shape, by['weight.npy'].bytes],
        ['float32', [6, 10], 240],
      );
      assert.equal(by['weight.npy'].compressed, file.includes('deflated'));
      assert.deepEqual(by['scalar.npy'].shape, []);
      assert.equal(by['ids.npy'].dtype, 'int64');

      const half = await s.tensor('half.npy');
      assert.equal(half.stats.nan, 1);
      assert.equal(half.stats.inf, 1);
      assert.equal(half.stats.max, 65504);
      assert.equal(half.preview, null, '1-D tensors get no heat map');
      assert.deepEqual((await s.page('half.npy', 'raw', 0, 10, 0, 1)).values, [1, -2.5, 'Infinity', 'NaN', 65504]);

      const be = await s.page('big_endian', 'raw', 1, 2, 1, 2);
      assert.deepEqual(be.values, [5, 6, 9, 10]);
      // Fortran order: logical [r, c] = r * 6 + c regardless of the memory layout
      const f = await s.page('fortran.npy', 'raw', 2, 2, 3, 3);
      assert.deepEqual(f.values, [15, 16, 17, 21, 22, 23]);
      const ft = await s.tensor('fortran.npy');
      assert.equal(ft.preview?.values[0], 0);
      assert.equal(ft.stats.max, 23);
      const cube = await s.tensor('cube.npy');
      assert.deepEqual([cube.rows, cube.cols], [6, 4]);
      assert.deepEqual((await s.page('cube.npy', 'raw', 5, 1, 0, 4)).values, [20, 21, 22, 23]);
      assert.deepEqual((await s.page('ids.npy', 'raw', 0, 3, 0, 1)).values, [2 ** 40, -3, 7]);
      assert.deepEqual((await s.page('flags.npy', 'raw', 0, 3, 0, 1)).values, [1, 0, 1]);
      assert.deepEqual((await s.page('scalar.npy', 'raw', 0, 1, 0, 1)).values, [3.25]);

      // the values match numpy's own .npy of the same array
      const refSrc = await openFileSource(join(fixtures, 'numpy_single.npy'));
      const ref = await readNpyArray(refSrc);
      await refSrc.close();
      const w = await s.page('weight.npy', 'raw', 0, 6, 0, 10);
      assert.deepEqual(w.values, Array.from(ref.data as Float32Array));
      const wt = await s.tensor('weight.npy');
      assert.equal(wt.stats.count, 60);
      assert.equal(wt.stats.sampled, false);
      assert.equal(
        wt.histogram.counts.reduce((a, b) => a + b, 0),
        60,
      );
      assert.deepEqual([wt.preview?.rows, wt.preview?.cols], [6, 10]);
      assert.equal(wt.dequant, undefined);
      // clamped pages, and refusals
      const clamped = await s.page('weight.npy', 'raw', 5, 100, 8, 100);
      assert.deepEqual([clamped.rowCount, clamped.colCount, clamped.values.length], [1, 2, 2]);
      await assert.rejects(s.page('weight.npy', 'raw', -1, 1, 0, 1), /bad page request/);
      await assert.rejects(s.page('weight.npy', 'dequant', 0, 1, 0, 1), /not a quantized weight/);
      await assert.rejects(s.tensor('nope.npy'), /no member named nope\.npy/);
    } finally {
      await s.close();
    }
  });
}

test('a single .npy opens as one member', async () => {
  const s = await InspectorSession.open(join(fixtures, 'numpy_single.npy'));
  try {
    assert.equal(s.kind, 'npy');
    const [m] = await s.members();
    assert.deepEqual([m.name, m.dtype, m.shape], ['numpy_single.npy', 'float32', [6, 10]]);
    const p = await s.page('numpy_single.npy', 'raw', 0, 1, 0, 3);
    assert.equal(p.values.length, 3);
  } finally {
    await s.close();
  }
});

test('the manifest beside the archive gives roles and the dequantized view, matching numpy', async () => {
  const s = await InspectorSession.open(join(fixtures, 'tiny_quantized_q4.npz'));
  try {
    assert.match(s.manifest?.path ?? '', /tiny_manifest_q4\.json$/);
    const members = await s.members();
    assert.deepEqual(
      members.map((m) => m.role?.part),
      ['q', 'q_scales', 'q_zero_point', 'float'],
    );
    const t = await s.tensor('layers_0_q_proj_weight_q4.npy');
    assert.ok(t.dequant);
    assert.deepEqual([t.dequant.rows, t.dequant.cols, t.dequant.bits, t.dequant.groupSize], [6, 10, 4, 4]);
    assert.equal(t.dequant.accuracy?.rel_error, 0.0712);
    assert.deepEqual(t.dequant.source, { available: false, detail: 'the manifest names no source' });
    await assert.rejects(
      s.page('layers_0_q_proj_weight_q4.npy', 'error', 0, 1, 0, 1),
      /source weights are not available/,
    );
    const src = await openFileSource(join(fixtures, 'tiny_expected_dequant.npy'));
    const ref = await readNpyArray(src);
    await src.close();
    const page = await s.page('layers_0_q_proj_weight_q4.npy', 'dequant', 0, 6, 0, 10);
    const got = page.values as number[];
    const want = Array.from(ref.data as Float32Array);
    assert.equal(got.length, 60);
    for (let i = 0; i < 60; i++)
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])), `at ${i}`);
    const part = await s.page('layers_0_q_proj_weight_q4', 'dequant', 2, 2, 3, 4);
    assert.deepEqual(part.values, [got[23], got[24], got[25], got[26], got[33], got[34], got[35], got[36]]);
    assert.ok(Math.abs(t.dequant.stats.mean - want.reduce((a, b) => a + b, 0) / 60) < 1e-6);
  } finally {
    await s.close();
  }
});

test('bad files give errors naming the file; a broken member is one row with its error', async () => {
  const dir = tempDir('apl-inspect-');
  const junk = join(dir, 'junk.npz');
  writeFileSync(junk, 'this is not a zip at all, just words');
  await assert.rejects(InspectorSession.open(junk), (e: Error) => e.message.includes('junk.npz'));
  await assert.rejects(InspectorSession.open(join(dir, 'missing.npz')), /missing\.npz/);
  // corrupt the .npy magic of one member of a stored archive: the table still lists the others
  const bad = join(dir, 'bad.npz');
  copyFileSync(join(fixtures, 'numpy_stored.npz'), bad);
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(bad);
  const at = bytes.indexOf(Buffer.from('\x93NUMPY', 'latin1'));
  bytes[at + 1] = 0x41;
  writeFileSync(bad, bytes);
  const s = await InspectorSession.open(bad);
  try {
    const members = await s.members();
    assert.equal(members.length, 8);
    assert.match(members[0].error ?? '', /bad\.npz/);
    assert.equal(members[1].error, undefined);
    await assert.rejects(s.tensor(members[0].name), /bad\.npz/);
  } finally {
    await s.close();
  }
});

test('a large tensor: pages over the cap are refused, statistics come from a bounded sample', async () => {
  const dir = tempDir('apl-inspect-');
  const rows = 2100;
  const cols = 512; // 1,075,200 values: just over the sample cap
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = (i % cols) - 100;
  const p = join(dir, 'big.npy');
  await writeNpyFile(p, 'float32', [rows, cols], data);
  const s = await InspectorSession.open(p);
  try {
    await assert.rejects(s.page('big.npy', 'raw', 0, 1000, 0, 512), /larger than/);
    const ok = await s.page('big.npy', 'raw', 2000, 2, 510, 2);
    assert.deepEqual(ok.values, [410, 411, 410, 411]);
    assert.ok(MAX_PAGE_ELEMENTS >= 4096);
    const t = await s.tensor('big.npy');
    assert.equal(t.stats.sampled, true);
    assert.ok(t.stats.count <= 1 << 20);
    assert.equal(t.stats.min, -100);
    assert.equal(t.stats.max, 411);
    assert.ok(t.preview && t.preview.rows <= 128 && t.preview.cols <= 128);
  } finally {
    await s.close();
  }
});
