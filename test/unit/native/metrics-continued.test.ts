// A tensor quantized in several calls, each continuing the metrics' sums of the one before (metricsFrom →
// metricsSums), has one call's metrics: to the last bit when every call starts on a multiple of the engine's chunk
// of rows (engineChunkRows), within rounding elsewhere; the TypeScript reference (one chain over the elements) to
// the last bit wherever the calls split. Both quantization types, both engines; bad sums are refused by name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  _forceReference,
  engineChunkRows,
  engineInfo,
  type Metrics,
  type MetricsSums,
  quantize,
} from '../../../native/index';
import { _kqForceReference, KQ_PRESETS, kquantize } from '../../../native/kquant';
import { gaussian } from '../../helpers/random';

const ROWS = 150;
const COLS = 1024; // engineChunkRows(1024) = 64: chunks of 64 rows

function bf16(n: number, seed: number): Uint8Array {
  const f = gaussian(n, seed, 0.05);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = u[i] >>> 16;
  return new Uint8Array(out.buffer);
}
const RAW = bf16(ROWS * COLS, 17);

type Run = (r0: number, count: number, from?: MetricsSums) => Promise<{ metrics?: Metrics; metricsSums?: MetricsSums }>;

const slice = (r0: number, count: number) => RAW.subarray(r0 * COLS * 2, (r0 + count) * COLS * 2);
const groupwise: Run = (r0, count, from) =>
  quantize({
    data: slice(r0, count),
    dtype: 'bf16',
    rows: count,
    cols: COLS,
    bits: 4,
    groupSize: 64,
    symmetric: false,
    mode: 'optimized',
    scaleDtype: 'f16',
    metrics: true,
    threads: 2,
    name: 'w',
    ...(from ? { metricsFrom: from } : {}),
  });
const kquant: Run = (r0, count, from) =>
  kquantize({
    ...KQ_PRESETS[4],
    data: slice(r0, count),
    dtype: 'bf16',
    rows: count,
    cols: COLS,
    metrics: true,
    threads: 2,
    name: 'w',
    ...(from ? { metricsFrom: from } : {}),
  });

/** The tensor in calls of `split` rows each (the last one shorter), each continuing the one before. */
async function inCalls(run: Run, split: number) {
  let last: Awaited<ReturnType<Run>> | undefined;
  for (let r0 = 0; r0 < ROWS; r0 += split) last = await run(r0, Math.min(split, ROWS - r0), last?.metricsSums);
  return last!;
}

function near(a: number, b: number, rel: number, what: string): void {
  assert.ok(Math.abs(a - b) <= rel * Math.abs(b), `${what}: ${a} is not within ${rel} of ${b}`);
}

for (const [type, run] of [
  ['groupwise', groupwise],
  ['kquant', kquant],
] as const) {
  test(`${type}: calls on engine chunks continue the metrics to one call's bits`, async (t) => {
    if (!engineInfo().native) return t.skip('native addon not built');
    assert.equal(engineChunkRows(COLS), 64);
    const whole = await run(0, ROWS);
    assert.ok(whole.metrics && whole.metricsSums, 'metrics and their sums');
    assert.ok(whole.metrics.relError > 0 && whole.metricsSums.sxx > 0);
    for (const split of [64, 128]) {
      const c = await inCalls(run, split);
      assert.deepEqual(c.metrics, whole.metrics, `calls of ${split} rows`);
      assert.deepEqual(c.metricsSums, whole.metricsSums, `calls of ${split} rows: sums`);
    }
    // Off the engine's chunks: the same within rounding, max |error| exactly.
    const off = await inCalls(run, 50);
    assert.equal(off.metrics!.maxAbsError, whole.metrics.maxAbsError);
    near(off.metrics!.relError, whole.metrics.relError, 1e-12, 'relError, calls of 50 rows');
    near(off.metrics!.cosine, whole.metrics.cosine, 1e-14, 'cosine, calls of 50 rows');
    // Not continued, the last call's metrics are its own rows' only.
    const last = await run(128, ROWS - 128);
    assert.notDeepEqual(last.metrics, whole.metrics);
  });

  test(`${type}: the TypeScript reference continues its chain to one call's bits, wherever the calls split`, async () => {
    _forceReference(true);
    _kqForceReference(true);
    try {
      const whole = await run(0, ROWS);
      for (const split of [1, 50, 64]) {
        const c = await inCalls(run, split);
        assert.deepEqual(c.metrics, whole.metrics, `reference, calls of ${split} rows`);
        assert.deepEqual(c.metricsSums, whole.metricsSums, `reference, calls of ${split} rows: sums`);
      }
    } finally {
      _forceReference(false);
      _kqForceReference(false);
    }
  });

  test(`${type}: metricsFrom must hold five numbers, and the error names the tensor`, async () => {
    const bad = { sdd: 0, sxx: 0, sww: 0, sxw: 0 } as unknown as MetricsSums;
    await assert.rejects(run(0, 2, bad), /^Error: w: metricsFrom\.maxAbs must be a number/);
  });
}
