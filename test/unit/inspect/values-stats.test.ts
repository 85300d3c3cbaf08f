import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, decodeInto, elementSize } from '../../../native/index';
import { computeStats, downsample2d, samplePlan } from '../../../server/src/inspect/stats';
import { gridShape, jsonValue } from '../../../server/src/inspect/values';

test('the engine decodes every dtype the inspector shows, in both byte orders', () => {
  const dv = new DataView(new ArrayBuffer(16));
  dv.setFloat32(0, -1.5, false);
  dv.setInt32(4, -7, true);
  assert.deepEqual([...decode(new Uint8Array(dv.buffer, 0, 4), 'float32', false)], [-1.5]);
  assert.deepEqual([...decode(new Uint8Array(dv.buffer, 4, 4), 'int32', true)], [-7]);
  assert.deepEqual(
    [...decode(Uint8Array.of(0x00, 0x3c, 0x00, 0xfc, 0x00, 0x7e), 'float16')],
    [1, -Infinity, Number.NaN],
  );
  assert.deepEqual([...decode(Uint8Array.of(0x80, 0x3f), 'bfloat16')], [1]);
  assert.deepEqual([...decode(Uint8Array.of(0, 2, 1), 'bool')], [0, 1, 1]);
  assert.deepEqual([...decode(Uint8Array.of(0xff, 0x80), 'int8')], [-1, -128]);
  const i64 = new DataView(new ArrayBuffer(8));
  i64.setBigInt64(0, -(2n ** 40n), true);
  assert.deepEqual([...decode(new Uint8Array(i64.buffer), 'int64')], [-(2 ** 40)]);
  assert.deepEqual([...decode(Uint8Array.of(0x38, 0x7f), 'float8_e4m3fn')], [1, Number.NaN]);
  assert.equal(elementSize('complex64'), undefined);
  assert.throws(() => decode(Uint8Array.of(1), 'complex64' as never), /complex64/);
});

test('decodeInto refuses to write past the array it is given', () => {
  assert.equal(decodeInto(new Uint8Array(6), 'float32', true, new Float64Array(2)), 1);
  assert.throws(() => decodeInto(new Uint8Array(8), 'float32', true, new Float64Array(2), 1), /do not fit/);
});

test('jsonValue and gridShape', () => {
  assert.deepEqual([1.5, Number.NaN, -Infinity].map(jsonValue), [1.5, 'NaN', '-Infinity']);
  assert.deepEqual(gridShape([]), { rows: 1, cols: 1 });
  assert.deepEqual(gridShape([7]), { rows: 7, cols: 1 });
  assert.deepEqual(gridShape([2, 3, 4]), { rows: 6, cols: 4 });
});

test('computeStats: moments, non-finite counts and a histogram that holds every finite value', () => {
  const { stats, histogram } = computeStats([1, 2, 3, 4, Number.NaN, Infinity], 3);
  assert.equal(stats.count, 6);
  assert.equal(stats.min, 1);
  assert.equal(stats.max, 4);
  assert.equal(stats.mean, 2.5);
  assert.ok(Math.abs(stats.std - Math.sqrt(1.25)) < 1e-12);
  assert.equal(stats.nan, 1);
  assert.equal(stats.inf, 1);
  assert.deepEqual(histogram.counts, [1, 1, 2]);
  const flat = computeStats([5, 5, 5], 4);
  assert.deepEqual(flat.histogram.counts, [3, 0, 0, 0]);
  assert.equal(flat.stats.std, 0);
  const none = computeStats([Number.NaN], 2);
  assert.equal(none.stats.nan, 1);
  assert.deepEqual(none.histogram.counts, [0, 0]);
});

test('downsample2d averages |value| over blocks', () => {
  // 4 × 4 → 2 × 2
  const v = [1, -1, 2, 2, 1, 1, 2, -2, 3, 3, 4, 4, 3, -3, 4, Number.NaN];
  const p = downsample2d(v, 4, 4, 2, 2);
  assert.equal(p.rows, 2);
  assert.equal(p.cols, 2);
  assert.deepEqual(p.values, [1, 2, 3, 4]);
  assert.equal(p.min, 1);
  assert.equal(p.max, 4);
  const small = downsample2d([1, 2, 3], 1, 3, 128, 128);
  assert.deepEqual([small.rows, small.cols], [1, 3]);
  assert.throws(() => downsample2d([1], 2, 2), /need 4 values/);
});

test('samplePlan reads everything that fits and evenly spaced runs otherwise', () => {
  assert.deepEqual(samplePlan(10, 10, 1000), { ranges: [[0, 10]], colsRead: 10, rowsRead: 10, sampled: false });
  const p = samplePlan(1_000_000, 1, 1000, 10);
  assert.equal(p.ranges.length, 10);
  assert.equal(p.rowsRead, 1000);
  assert.ok(p.sampled);
  for (let i = 1; i < p.ranges.length; i++) assert.ok(p.ranges[i][0] >= p.ranges[i - 1][0] + p.ranges[i - 1][1]);
  assert.ok(p.ranges.at(-1)![0] + p.ranges.at(-1)![1] <= 1_000_000);
  const wide = samplePlan(4, 5000, 1000);
  assert.deepEqual([wide.colsRead, wide.rowsRead, wide.sampled], [1000, 1, true]);
  assert.deepEqual(samplePlan(0, 5, 10).ranges, []);
  // one range (a deflated member): its first rows
  assert.deepEqual(samplePlan(1000, 10, 100, 1), { ranges: [[0, 10]], colsRead: 10, rowsRead: 10, sampled: true });
});
