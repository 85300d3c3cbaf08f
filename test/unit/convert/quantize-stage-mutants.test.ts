// The quantize stage in process (so mutation testing reaches it): its stage and progress events, the counts it
// returns, and how a failure inside a tensor's work reaches the user (io naming the NPZ, cancelled, as it is).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConvertError } from '../../../server/src/convert/errors';
import { settingsFrom } from '../../../server/src/convert/options';
import { quantizeStage } from '../../../server/src/convert/quantize-stage';
import { NpzWriter, openNpzFile } from '../../../server/src/formats/npz';
import { type Checkpoint, openCheckpoint, toF32, writeSafetensors } from '../../../server/src/formats/safetensors';
import type { ConvertEvent } from '../../../server/src/protocol';
import { copyTiny, tempDir, tinyModel } from './helpers';

async function run(
  t: { after(fn: () => void): void },
  extra: {
    chunkBytes?: number;
    afterTensor?: (i: number, s?: AbortSignal) => void;
    signal?: AbortSignal;
    format?: 'groupwise' | 'kquant';
    scaleDtype?: 'f16' | 'f32';
    model?: string;
  } = {},
) {
  const dir = tempDir(t);
  const model = extra.model ?? tinyModel;
  const settings = settingsFrom({
    source: model,
    scaleDtype: extra.scaleDtype,
    bits: 4,
    format: extra.format ?? 'groupwise',
    outDir: dir,
    chunkBytes: extra.chunkBytes,
    tolerance: { 4: 0.25, 8: 0.03 },
  });
  const ck = await openCheckpoint(model);
  t.after(() => void ck.close());
  const events: ConvertEvent[] = [];
  const npzTmp = join(dir, '.m.npz.staged-1');
  const npzPath = join(dir, 'm_quantized_q4.npz');
  const p = quantizeStage({
    ck,
    settings,
    npzTmp,
    dir: model,
    npzPath,
    emit: (e) => events.push(e),
    signal: extra.signal,
    hooks: extra.afterTensor ? { afterTensor: extra.afterTensor } : undefined,
  });
  return { p, events, ck, npzTmp, npzPath, settings, dir };
}

test('stage and progress events, and the counts returned', async (t) => {
  const { p, events, ck, npzTmp, npzPath } = await run(t, { chunkBytes: 4096 });
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
async function failWith(t: { after(fn: () => void): void }, err: unknown, abort = false, withSignal = true) {
  const ac = new AbortController();
  const { p, npzTmp, dir } = await run(t, {
    signal: withSignal ? ac.signal : undefined,
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
  assert.deepEqual(readdirSync(dir), [], "the NPZ writer's own temporary is removed too");
  return e;
}

test('a file-system failure is an io error naming the NPZ', async (t) => {
  const e = await failWith(t, Object.assign(new Error('no space'), { code: 'ENOSPC' }));
  assert.ok(e instanceof ConvertError);
  assert.equal(e.code, 'io');

  assert.match(e.message, /^writing .*m_quantized_q4\.npz: disk full \(ENOSPC\)$/);
  // The same without a cancel signal (a caller that passes none).
  const n = await failWith(t, Object.assign(new Error('no space'), { code: 'ENOSPC' }), false, false);
  assert.ok(n instanceof ConvertError && n.code === 'io', String(n));
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

const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

for (const [format, scaleDtype] of [
  ['groupwise', 'f16'],
  ['groupwise', 'f32'],
  ['kquant', 'f16'],
] as const) {
  test(`${format}, ${scaleDtype} scales: the NPZ holds what each manifest entry and report row says`, async (t) => {
    const { p, ck, npzTmp } = await run(t, { chunkBytes: 4096, format, scaleDtype });
    const r = await p;
    assert.equal(
      r.totalParams,
      ck.tensors.reduce((n, x) => n + x.shape.reduce((a, b) => a * b, 1), 0),
    );
    assert.equal(r.outputBytes, statSync(npzTmp).size);
    assert.ok(r.backends.size > 0, 'the engine backend is recorded');
    assert.deepEqual(
      r.entries.map((e) => e.name),
      ck.tensors.map((x) => x.name),
    );
    const npz = await openNpzFile(npzTmp);
    t.after(() => npz.close());
    const members = new Set<string>();
    for (const e of r.entries) {
      const src = ck.tensor(e.name)!;
      assert.deepEqual(e.shape, src.shape);
      assert.deepEqual(e.source, { tensor: e.name, dtype: 'BF16', file: src.file.split('/').pop() });
      const layer = /layers\.(\d+)\./.exec(e.name)?.[1];
      assert.equal(e.layer, layer === undefined ? undefined : Number(layer), e.name);
      // The members of its type, each in the NPZ with the CRC-32 the entry records.
      const kind = e.quantization.type === 'kquant' ? 'kquant' : e.quantization.type === 'none' ? 'none' : 'groupwise';
      assert.deepEqual(
        Object.keys(e.checksums ?? {}),
        { none: ['q'], groupwise: ['q', 'q_scales', 'q_zero_point'], kquant: ['q', 'q_codes', 'q_d', 'q_dmin'] }[kind],
        e.name,
      );
      for (const [k, crc] of Object.entries(e.checksums ?? {})) {
        const name = (e as unknown as Record<string, string>)[k];
        const m = npz.member(name);
        assert.ok(m, `${e.name}: ${k} ${name} missing`);
        assert.equal(crc, hex(m.crc32), `${e.name}: ${k}`);
        members.add(m.name);
      }
      if (e.quantization.type === 'none') {
        // Kept as float: bf16 widened to float32, values unchanged.
        const { header, data } = await npz.readArray(e.q);
        assert.equal(header.dtype, 'float32');
        assert.deepEqual(header.shape, src.shape);
        assert.deepEqual(Array.from(data as Float32Array), Array.from(toF32(await ck.readRaw(e.name), 'BF16')));
      } else {
        assert.equal(
          e.quantization.type,
          e.bit_width === 8 || format === 'groupwise' ? 'groupwise_int' : 'kquant',
          e.name,
        );
        if (e.quantization.type === 'groupwise_int') {
          const groups = Math.ceil(e.shape[1] / (e.quantization.group_size as number));
          for (const k of ['q_scales', 'q_zero_point'] as const) {
            const h = await npz.readHeader(e[k]!);
            assert.equal(h.dtype, scaleDtype === 'f32' ? 'float32' : 'float16', `${e.name} ${k}`);
            assert.equal(e.quantization.scale_dtype, h.dtype);
            assert.deepEqual(h.shape, [e.shape[0], groups], `${e.name} ${k}`);
          }
        }
      }
    }
    assert.equal(members.size, npz.members.length, 'no member that no entry names');
    // One report row and one Σw² per quantized tensor, with the tolerance of its width.
    const quantized = r.entries.filter((e) => e.quantization.type !== 'none');
    assert.deepEqual(
      r.weights.map((w) => w.name),
      quantized.map((e) => e.name),
    );
    assert.deepEqual(
      [...r.sums.keys()],
      r.weights.map((w) => w.name),
    );
    for (const w of r.weights) {
      const e = r.entries.find((x) => x.name === w.name)!;
      assert.equal(w.bits, e.bit_width);
      const plan = r.plans.find((x) => x.name === w.name);
      assert.ok(plan?.kind === 'quantize');
      assert.equal(w.group_size, plan.groupSize);
      assert.deepEqual(w.shape, e.shape);
      assert.equal(w.params, e.shape[0] * e.shape[1]);
      assert.equal(w.layer, e.layer ?? null);
      assert.equal(w.tolerance, w.bits === 8 ? 0.03 : 0.25);
      assert.equal(w.pass, w.rel_error <= w.tolerance && w.output_rel_error <= w.tolerance, w.name);
      assert.deepEqual(e.accuracy, { ...e.accuracy, rel_error: w.rel_error, pass: w.pass });
      assert.ok(r.sums.get(w.name)!.refSq > 0);
    }
  });
}

test('the NPZ cannot be created: an io error naming the output folder', async (t) => {
  const ck = await openCheckpoint(tinyModel);
  t.after(() => void ck.close());
  const outDir = join(tempDir(t), 'gone');
  const settings = settingsFrom({ source: tinyModel, bits: 4, format: 'groupwise', outDir });
  await assert.rejects(
    quantizeStage({
      ck,
      settings,
      npzTmp: join(outDir, '.m.npz.staged-1'),
      dir: tinyModel,
      npzPath: join(outDir, 'm.npz'),
      emit: () => {},
    }),
    (e: unknown) => e instanceof ConvertError && e.code === 'io' && e.message.startsWith(`cannot write to ${outDir}: `),
  );
});

test('closing the NPZ fails (disk full): an io error naming the NPZ, nothing left', async (t) => {
  const close = NpzWriter.prototype.close;
  NpzWriter.prototype.close = async () => {
    throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
  };
  t.after(() => {
    NpzWriter.prototype.close = close;
  });
  const { p, dir } = await run(t, { chunkBytes: 1 << 20 });
  await assert.rejects(
    p,
    (e: unknown) =>
      e instanceof ConvertError && e.code === 'io' && /^writing .*m_quantized_q4\.npz: disk full/.test(e.message),
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('a safetensors file that shrinks during the run: the error names it, nothing left', async (t) => {
  const model = copyTiny(join(tempDir(t), 'model'));
  const { p, dir } = await run(t, { model, chunkBytes: 1 << 20 });
  // The checkpoint was opened (sizes checked); the second shard is cut before its tensors are read.
  truncateSync(join(model, 'model-00002-of-00002.safetensors'), 1000);
  await assert.rejects(p, /model-00002-of-00002\.safetensors: file shrank while reading/);
  assert.deepEqual(readdirSync(dir), []);
});

test('float32 and float16 checkpoints: kept tensors stored unchanged, 2-D weights quantized', async (t) => {
  const model = join(tempDir(t), 'model');
  mkdirSync(model);
  const f32 = Float32Array.from({ length: 16 * 128 }, (_, i) => Math.sin(i * 0.37));
  const norm = Float32Array.from({ length: 8 }, (_, i) => 1 + i / 3);
  const half = new Uint16Array([0x3c00, 0x4000, 0xbc00, 0x3555]); // 1, 2, -1, 0.333 in float16
  await writeSafetensors(join(model, 'model.safetensors'), [
    { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [16, 128], data: new Uint8Array(f32.buffer) },
    { name: 'model.norm.weight', dtype: 'F32', shape: [8], data: new Uint8Array(norm.buffer) },
    { name: 'model.layers.0.input_layernorm.weight', dtype: 'F16', shape: [4], data: new Uint8Array(half.buffer) },
  ]);
  const { p, npzTmp } = await run(t, { model, chunkBytes: 1 << 20 });
  const r = await p;
  assert.deepEqual(
    r.entries.map((e) => [e.name, e.quantization.type, e.source.dtype]),
    [
      ['model.layers.0.mlp.up_proj.weight', 'groupwise_int', 'F32'],
      ['model.norm.weight', 'none', 'F32'],
      ['model.layers.0.input_layernorm.weight', 'none', 'F16'],
    ],
  );
  assert.ok(r.weights[0].rel_error > 0 && r.weights[0].rel_error < 0.25);
  const npz = await openNpzFile(npzTmp);
  t.after(() => npz.close());
  const kept = await npz.readArray(r.entries[1].q);
  assert.equal(kept.header.dtype, 'float32');
  assert.deepEqual(Array.from(kept.data as Float32Array), Array.from(norm));
  const h = await npz.readArray(r.entries[2].q);
  assert.equal(h.header.dtype, 'float16');
  assert.deepEqual(Array.from(h.data as Uint16Array), Array.from(half));
});
