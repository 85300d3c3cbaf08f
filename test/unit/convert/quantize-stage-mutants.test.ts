// The quantize stage in process (so mutation testing reaches it): its stage and progress events, the counts it
// returns, and how a failure inside a tensor's work reaches the user (io naming the NPZ, cancelled, as it is).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConvertError } from '../../../server/src/convert/errors';
import { settingsFrom } from '../../../server/src/convert/options';
import { quantizeStage } from '../../../server/src/convert/quantize-stage';
import { type Checkpoint, openCheckpoint } from '../../../server/src/formats/safetensors';
import type { ConvertEvent } from '../../../server/src/protocol';
import { tempDir, tinyModel } from './helpers';

async function run(
  t: { after(fn: () => void): void },
  extra: { chunkBytes?: number; afterTensor?: (i: number, s?: AbortSignal) => void; signal?: AbortSignal } = {},
) {
  const dir = tempDir(t);
  const settings = settingsFrom({
    source: tinyModel,
    bits: 4,
    format: 'groupwise',
    outDir: dir,
    chunkBytes: extra.chunkBytes,
  });
  const ck = await openCheckpoint(tinyModel);
  t.after(() => void ck.close());
  const events: ConvertEvent[] = [];
  const npzTmp = join(dir, '.m.npz.staged-1');
  const npzPath = join(dir, 'm_quantized_q4.npz');
  const p = quantizeStage({
    ck,
    settings,
    npzTmp,
    dir: tinyModel,
    npzPath,
    emit: (e) => events.push(e),
    signal: extra.signal,
    hooks: extra.afterTensor ? { afterTensor: extra.afterTensor } : undefined,
  });
  return { p, events, ck, npzTmp, npzPath };
}

test('stage and progress events, and the counts returned', async (t) => {
  const { p, events, ck, npzTmp, npzPath } = await run(t, { chunkBytes: 64 });
  const r = await p;
  const quant = r.plans.filter((x) => x.kind === 'quantize').length;
  assert.ok(quant > 0 && quant < r.plans.length);
  assert.equal(r.keptFloat, r.plans.length - quant);
  assert.equal(r.entries.length, r.plans.length);
  assert.equal(r.weights.length, quant);
  const total = ck.tensors.reduce((n, x) => n + x.byteLength, 0);
  assert.equal(r.sourceBytes, total);
  const stages = events.filter((e) => e.type === 'stage');
  assert.deepEqual(
    stages.map((e) => (e as { message?: string }).message),
    [`${r.plans.length} tensors, ${quant} quantized`, npzPath],
  );
  const prog = events.filter((e) => e.type === 'progress') as unknown as {
    tensor: number;
    tensors: number;
    name: string;
    bytesDone: number;
    bytesTotal: number;
  }[];
  let last = 0;
  let within = 0;
  const byName = new Map(ck.tensors.map((x) => [x.name, x]));
  let start = 0;
  let prevTensor = -1;
  const ends = new Map<number, number>();
  for (const e of prog) {
    assert.equal(e.tensors, r.plans.length);
    assert.equal(e.bytesTotal, total);
    assert.equal(e.name, r.plans[e.tensor]?.name);
    assert.ok(e.bytesDone >= last, `progress goes forward (${e.bytesDone} after ${last})`);
    if (e.tensor !== prevTensor) {
      start = last;
      prevTensor = e.tensor;
    }
    const size = byName.get(e.name)!.byteLength;
    assert.ok(e.bytesDone > start || size === 0, 'progress within a tensor is past its start');
    assert.ok(e.bytesDone <= start + size, `${e.name}: ${e.bytesDone} > ${start} + ${size}`);
    if (e.bytesDone < start + size) within++;
    else ends.set(e.tensor, (ends.get(e.tensor) ?? 0) + 1);
    // Row progress lands on whole rows of the source tensor.
    const rows = byName.get(e.name)!.shape[0] ?? 1;
    assert.equal((e.bytesDone - start) % (size / rows), 0, `${e.name}: ${e.bytesDone - start} not whole rows`);
    last = e.bytesDone;
  }
  assert.equal(last, total);
  assert.ok(within > 0, 'row progress inside a tensor');
  assert.deepEqual(
    [...ends.values()],
    r.plans.map(() => 1),
    'one progress event at the end of each tensor',
  );
  for (const w of r.weights) assert.equal(w.params, w.shape[0] * w.shape[1]);
  assert.ok(existsSync(npzTmp));
  assert.ok(r.outputBytes > 0);
});

/** Runs with afterTensor(0) throwing `err` (or aborting); returns the error the stage ends with. */
async function failWith(t: { after(fn: () => void): void }, err: unknown, abort = false) {
  const ac = new AbortController();
  const { p, npzTmp } = await run(t, {
    signal: ac.signal,
    afterTensor: () => {
      if (abort) ac.abort();
      throw err;
    },
  });
  const e = await p.then(
    () => assert.fail('the stage should fail'),
    (x: unknown) => x,
  );
  assert.ok(!existsSync(npzTmp), 'the partial NPZ is removed');
  return e;
}

test('a file-system failure is an io error naming the NPZ', async (t) => {
  const e = await failWith(t, Object.assign(new Error('no space'), { code: 'ENOSPC' }));
  assert.ok(e instanceof ConvertError);
  assert.equal(e.code, 'io');

  assert.match(e.message, /^writing .*m_quantized_q4\.npz: disk full \(ENOSPC\)$/);
});

test('an abort error, or any error once aborted, is the one cancelled error', async (t) => {
  const a = await failWith(t, Object.assign(new Error('x'), { code: 'ABORT_ERR' }));
  assert.ok(a instanceof ConvertError && a.code === 'cancelled');
  assert.equal(a.message, 'conversion cancelled; no output was written');
  const b = await failWith(t, new Error('anything'), true);
  assert.ok(b instanceof ConvertError && b.code === 'cancelled');
});

test('our own errors and other errors pass as they are', async (t) => {
  const mine = new ConvertError('invalid-input', 'x.safetensors: bad');
  assert.equal(await failWith(t, mine), mine);
  const cancelledMine = new ConvertError('cancelled', 'stopped by the hook');
  assert.equal(await failWith(t, cancelledMine), cancelledMine);
  const other = new TypeError('boom');
  assert.equal(await failWith(t, other), other);
});

test('a checkpoint without a 2-D float weight is unsupported, naming the folder', async () => {
  const ck = {
    tensors: [{ name: 'model.norm.weight', shape: [4], dtype: 'F32', byteLength: 16, file: 'model.safetensors' }],
  } as unknown as Checkpoint;
  const settings = settingsFrom({ source: 'x', bits: 4, format: 'groupwise', outDir: '/nonexistent' });
  await assert.rejects(
    quantizeStage({
      ck,
      settings,
      npzTmp: '/nonexistent/t',
      dir: '/models/x',
      npzPath: '/nonexistent/n',
      emit: () => {},
    }),
    (e: unknown) =>
      e instanceof ConvertError &&
      e.code === 'unsupported' &&
      e.message === '/models/x: No quantized data extracted: 1 tensors, none of them a 2-D float weight',
  );
});

test('an abort stops the run at the next tensor, or before the NPZ is closed', async (t) => {
  const ck = await openCheckpoint(tinyModel);
  const last = ck.tensors.length - 1;
  await ck.close();
  for (const at of ['first', 'last'] as const) {
    const ac = new AbortController();
    const calls: number[] = [];
    const { p, npzTmp } = await run(t, {
      signal: ac.signal,
      afterTensor: (i) => {
        calls.push(i);
        if (at === 'first' || i === last) ac.abort();
      },
    });
    await assert.rejects(p, (e: unknown) => e instanceof ConvertError && e.code === 'cancelled');
    assert.ok(!existsSync(npzTmp), 'the partial NPZ is removed');
    if (at === 'first') assert.deepEqual(calls, [0]);
    else assert.equal(calls.length, last + 1);
  }
});
