// N-d slices (two axes on screen, an index for the others; a page reads only the slice's elements, so a
// 452 × 800 × 800 tensor opens as fast as a small one) and comparisons (difference statistics, relative error,
// shapes that differ refused, the same tensor in another file).
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareMetrics } from '../../../native/index';
import { inspectorHost } from '../../../server/src/inspect/host';
import { InspectorSession } from '../../../server/src/inspect/session';
import type { HostToInspector } from '../../../server/src/protocol';
import { tempDir } from '../../helpers/tmp';

const fixtures = join(__dirname, '..', '..', 'fixtures', 'inspector');
const cubeAt = (i: number, j: number, k: number) => 100 * i + 10 * j + k;

test('a 3-d tensor pages by slice along any two axes', async () => {
  const s = await InspectorSession.open(join(fixtures, 'cube.npy'));
  try {
    // rows: axis 0 (4), columns: axis 2 (6), axis 1 fixed at 3
    const p = await s.page('cube.npy', 'raw', 0, 64, 0, 16, { rowAxis: 0, colAxis: 2, index: [0, 3, 0] });
    assert.deepEqual([p.rowCount, p.colCount], [4, 6]);
    const want: number[] = [];
    for (let i = 0; i < 4; i++) for (let k = 0; k < 6; k++) want.push(cubeAt(i, 3, k));
    assert.deepEqual(p.values, want);
    // transposed: rows axis 2, columns axis 1, axis 0 fixed at 2
    const q = await s.page('cube.npy', 'raw', 1, 2, 0, 5, { rowAxis: 2, colAxis: 1, index: [2, 0, 0] });
    assert.deepEqual(
      q.values,
      [1, 2].flatMap((k) => [0, 1, 2, 3, 4].map((j) => cubeAt(2, j, k))),
    );
    const f = await s.slice('cube.npy', { rowAxis: 1, colAxis: 2, index: [3, 0, 0] });
    assert.deepEqual([f.rows, f.cols, f.stats.count, f.stats.min, f.stats.max], [5, 6, 30, 300, 345]);
    await assert.rejects(s.slice('cube.npy', { rowAxis: 1, colAxis: 1, index: [0, 0, 0] }), /bad slice axes 1, 1/);
    await assert.rejects(
      s.page('cube.npy', 'raw', 0, 4, 0, 4, { rowAxis: 1, colAxis: 2, index: [4, 0, 0] }),
      /index 4 on axis 0 is outside 0 … 3/,
    );
  } finally {
    await s.close();
  }
});

test('a slice page reads only bytes inside its slice', async () => {
  const s = await InspectorSession.open(join(fixtures, 'cube.npy'));
  try {
    s.reader.readLog = [];
    const sl = { rowAxis: 1, colAxis: 2, index: [2, 0, 0] };
    await s.page('cube.npy', 'raw', 0, 64, 0, 16, sl);
    await s.slice('cube.npy', sl);
    const [from, to] = [2 * 30 * 4, 3 * 30 * 4]; // slice [2, :, :] of float32 (4, 5, 6)
    assert.ok(s.reader.readLog.length > 0);
    for (const [, off, len] of s.reader.readLog) assert.ok(off >= from && off + len <= to, `read ${off}+${len}`);
  } finally {
    await s.close();
  }
});

test('a 452 × 800 × 800 float32 tensor (1.1 GB, sparse) shows a slice reading only that slice', async () => {
  const dir = tempDir('apl-insp-big-');
  const file = join(dir, 'big.npy');
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (452, 800, 800), }";
  header += `${' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64)}\n`;
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  const fd = openSync(file, 'w');
  writeSync(fd, Buffer.concat([pre, Buffer.from(header, 'latin1')]));
  ftruncateSync(fd, pre.length + header.length + 452 * 800 * 800 * 4); // holes: no disk used
  closeSync(fd);
  const s = await InspectorSession.open(file);
  try {
    const sl = { rowAxis: 1, colAxis: 2, index: [451, 0, 0] };
    const p = await s.page('big.npy', 'raw', 64, 64, 16, 16, sl);
    assert.equal(p.values.length, 64 * 16);
    assert.ok(s.reader.bytesRead <= 64 * 800 * 4, `a page read ${s.reader.bytesRead} bytes`);
    const before = s.reader.bytesRead;
    const f = await s.slice('big.npy', sl);
    assert.equal(f.stats.count, 800 * 800);
    assert.ok(s.reader.bytesRead - before <= 800 * 800 * 4, 'the slice figures read the slice only');
  } finally {
    await s.close();
  }
});

test('two members compared: difference statistics, relative error, histogram and heat map', async () => {
  const s = await InspectorSession.open(join(fixtures, 'tiny.safetensors'));
  const sent: HostToInspector[] = [];
  const host = inspectorHost(s, (m) => sent.push(m));
  try {
    await host({ type: 'compare', a: 'embed.weight_f32', b: { name: 'embed.weight' } });
    const c = sent.pop();
    assert.equal(c?.type, 'comparison');
    if (c?.type !== 'comparison') return;
    const a = Float32Array.from((await s.page('embed.weight_f32', 'raw', 0, 6, 0, 4)).values as number[]);
    const b = Float32Array.from((await s.page('embed.weight', 'raw', 0, 6, 0, 4)).values as number[]);
    const d = Array.from(b, (v, i) => v - a[i]);
    assert.equal(c.comparison.maxAbs, Math.max(...d.map(Math.abs)));
    assert.ok(c.comparison.maxAbs > 0);
    const rms = Math.sqrt(d.reduce((x, v) => x + v * v, 0) / d.length);
    assert.ok(Math.abs(c.comparison.rms - rms) <= 1e-12 + 1e-9 * rms);
    const norm = Math.sqrt(Array.from(a).reduce((x, v) => x + v * v, 0));
    const rel = Math.sqrt(d.reduce((x, v) => x + v * v, 0)) / norm;
    assert.ok(Math.abs(c.comparison.relError - rel) <= 1e-5 * rel, `${c.comparison.relError} vs ${rel}`);
    assert.equal(c.comparison.relError, compareMetrics(a, b).relError);
    assert.equal(
      c.comparison.diff.histogram.counts.reduce((x, y) => x + y, 0),
      24,
    );
    assert.deepEqual([c.comparison.diff.preview?.rows, c.comparison.diff.preview?.cols], [6, 4]);
    // the difference page
    await host({
      type: 'page',
      requestId: 7,
      name: 'embed.weight_f32',
      view: 'diff',
      row: 0,
      rowCount: 6,
      col: 0,
      colCount: 4,
      compare: { name: 'embed.weight' },
    });
    const p = sent.pop();
    assert.deepEqual(p?.type === 'page' && p.values, d);

    // shapes that differ: one clear line
    await host({ type: 'compare', a: 'embed.weight', b: { name: 'odd' } });
    const e = sent.pop();
    assert.equal(e?.type, 'error');
    assert.equal(
      e?.type === 'error' && e.message,
      'cannot compare embed.weight (6, 4) with odd (3, 4): the shapes differ',
    );
    assert.equal(e?.type === 'error' && e.what, 'compare');
  } finally {
    await host.dispose();
    await s.close();
  }
});

test('the same tensor in another file (picked in a dialog): before vs after a change', async () => {
  const s = await InspectorSession.open(join(fixtures, 'tiny.safetensors'));
  const sent: HostToInspector[] = [];
  const after = join(fixtures, 'after.safetensors');
  const host = inspectorHost(s, (m) => sent.push(m), { pickFile: async () => after });
  try {
    await host({ type: 'pickCompareFile', name: 'embed.weight_f32' });
    const c = sent.pop();
    assert.equal(c?.type, 'comparison');
    if (c?.type !== 'comparison') return;
    assert.deepEqual([c.comparison.b.name, c.comparison.b.file], ['embed.weight_f32', after]);
    assert.equal(Math.round(c.comparison.maxAbs * 1e6) / 1e6, 0.5);
    assert.equal(c.comparison.diff.stats.count, 24);
    await host({
      type: 'page',
      requestId: 1,
      name: 'embed.weight_f32',
      view: 'diff',
      row: 2,
      rowCount: 1,
      col: 0,
      colCount: 4,
      compare: { name: 'embed.weight_f32', file: after },
    });
    const p = sent.pop();
    assert.deepEqual(p?.type === 'page' && p.values.map((v) => Math.round(Number(v) * 1e6) / 1e6), [0, 0, 0, 0.5]);
    await host({ type: 'pickCompareFile', name: 'positions' });
    const e = sent.pop();
    assert.match(e?.type === 'error' ? e.message : '', /after\.safetensors has no tensor named positions/);
  } finally {
    await host.dispose();
    await s.close();
  }
});
