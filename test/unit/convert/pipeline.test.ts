import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020';
import { ConvertError } from '../../../server/src/convert/errors';
import { type ConvertOptions, convertModel, outputPaths } from '../../../server/src/convert/pipeline';
import type { Manifest } from '../../../server/src/formats/manifest';
import { openNpzFile } from '../../../server/src/formats/npz';
import { openCheckpoint } from '../../../server/src/formats/safetensors';
import type { ConvertEvent } from '../../../server/src/protocol';
import type { AccuracyReport } from '../../../server/src/report';
import { copyTiny, numpyCheck, root, snapshot, tempDir, tinyModel } from './helpers';

async function convert(o: Partial<ConvertOptions> & { outDir: string }, signal?: AbortSignal) {
  const events: ConvertEvent[] = [];
  const r = await convertModel({ source: tinyModel, bits: 4, name: 'tiny', ...o }, (e) => events.push(e), signal);
  const manifest = JSON.parse(readFileSync(r.manifest, 'utf8')) as Manifest;
  const report = JSON.parse(readFileSync(r.report, 'utf8')) as AccuracyReport;
  return { r, events, manifest, report };
}

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ConvertError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('tiny model at 4 bits, groupwise: every tensor in NPZ and manifest; numpy reproduces the reported errors', async (t) => {
  const out = tempDir(t);
  const { r, events, manifest, report } = await convert({ outDir: out, format: 'groupwise' });
  assert.deepEqual(readdirSync(out).sort(), [
    'tiny_accuracy_q4.json',
    'tiny_generation_config_q4.json',
    'tiny_manifest_q4.json',
    'tiny_quantized_q4.npz',
    'tiny_tokenizer_config_q4.json',
    'tiny_tokenizer_q4.json',
  ]);
  assert.deepEqual(r, { ...outputPaths(out, 'tiny', 4), ...r });

  // Every checkpoint tensor has exactly one entry naming it, and its members are in the NPZ with matching CRCs.
  const ck = await openCheckpoint(tinyModel);
  const npz = await openNpzFile(r.npz);
  try {
    assert.deepEqual(
      manifest.weights.map((w) => w.source.tensor),
      ck.tensors.map((x) => x.name),
    );
    for (const w of manifest.weights) {
      const src = ck.tensor(w.source.tensor)!;
      assert.deepEqual(w.shape, src.shape);
      assert.equal(w.source.dtype, 'BF16');
      for (const k of ['q', 'q_scales', 'q_zero_point'] as const) {
        const name = w[k];
        if (name === null) continue;
        const m = npz.member(name);
        assert.ok(m, `${name} missing`);
        assert.equal(w.checksums?.[k], (m.crc32 >>> 0).toString(16).padStart(8, '0'));
      }
      if (w.shape.length === 1) {
        assert.equal(w.quantization.type, 'none');
        assert.equal((await npz.readHeader(w.q)).dtype, 'float32');
      } else {
        const h = await npz.readHeader(w.q);
        const bits = /embed_tokens|lm_head/.test(w.name) ? 8 : 4;
        assert.equal(w.bit_width, bits, w.name);
        assert.deepEqual(h.shape, [w.shape[0], (w.shape[1] * bits) / 8]);
        assert.deepEqual((await npz.readHeader(w.q_scales!)).shape, [w.shape[0], Math.ceil(w.shape[1] / 64)]);
      }
    }
    assert.equal(npz.members.length, 16 * 3 + 5);
  } finally {
    await npz.close();
    await ck.close();
  }

  // The model block and metadata.
  assert.equal(manifest.format_version, '2');
  assert.equal(manifest.model.family, 'llama');
  assert.equal(manifest.model.num_layers, 2);
  assert.equal(manifest.metadata.npz, 'tiny_quantized_q4.npz');
  assert.equal(manifest.metadata.accuracy_report, 'tiny_accuracy_q4.json');
  assert.equal(manifest.metadata.output_bytes, readFileSync(r.npz).length);

  // The report: honest figures, consistent with the manifest, per-layer aggregates.
  assert.equal(report.weights.length, 16);
  assert.equal(report.layers.length, 2);
  const index = JSON.parse(readFileSync(join(tinyModel, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(report.sizes.source_bytes, index.metadata.total_size);
  assert.ok(report.sizes.bits_per_weight > 4 && report.sizes.bits_per_weight < 8, String(report.sizes.bits_per_weight));
  for (const w of report.weights) {
    const tol = w.bits === 8 ? 0.02 : 0.1;
    assert.equal(w.tolerance, tol);
    assert.equal(w.pass, w.rel_error <= tol && w.output_rel_error <= tol);
    assert.ok(w.cosine > 0.99 && w.cosine <= 1, `${w.name} cosine ${w.cosine}`);
    assert.ok(Math.abs(w.snr_db + 20 * Math.log10(w.rel_error)) < 0.05, w.name);
    // The output error estimates the weight error for Gaussian inputs.
    assert.ok(Math.abs(w.output_rel_error - w.rel_error) < 0.25 * w.rel_error, w.name);
    const entry = manifest.weights.find((e) => e.name === w.name)!;
    assert.equal(entry.accuracy?.rel_error, w.rel_error);
  }
  assert.equal(
    report.pass,
    report.weights.every((w) => w.pass),
  );

  // numpy, with the documented snippet and formula, reproduces every reported error; kept tensors are exact.
  const np = numpyCheck(r.manifest, tinyModel);
  assert.match(np.line, /^model\.embed_tokens\.weight 0\.00/);
  assert.ok(Math.abs(Number(np.line.split(' ')[1]) - report.weights[0].rel_error) < 1e-4 * report.weights[0].rel_error);
  for (const w of manifest.weights) {
    const got = np.errors[w.name];
    if (w.quantization.type === 'none') assert.equal(got, 0, w.name);
    else assert.ok(Math.abs(got - w.accuracy!.rel_error) <= 1e-4 * w.accuracy!.rel_error, `${w.name}: ${got}`);
  }

  // Events: start, stages in order, per-tensor progress, result, done.
  assert.equal(events[0].type, 'start');
  const stages = events.filter((e) => e.type === 'stage').map((e) => (e as { stage: string }).stage);
  assert.deepEqual(stages, ['resolve', 'quantize', 'write', 'validate', 'done']);
  const prog = events.filter((e) => e.type === 'progress' && e.stage === 'quantize');
  assert.ok(prog.length >= 21);
  const last = prog.at(-1) as Extract<ConvertEvent, { type: 'progress' }>;
  assert.equal(last.bytesDone, last.bytesTotal);
  assert.equal(last.tensors, 21);
  assert.equal(events.find((e) => e.type === 'result') && true, true);

  // The manifest passes the schema.
  const schemaFile = join(root, 'schemas/manifest.schema.json');
  if (existsSync(schemaFile)) {
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(
      JSON.parse(readFileSync(schemaFile, 'utf8')),
    );
    assert.ok(validate(manifest), JSON.stringify(validate.errors?.slice(0, 3)));
  }
});

test('1, 2 and 8 bits, symmetric, per-row and minmax: numpy agrees with the report for each', async (t) => {
  const out = tempDir(t);
  const variants: Partial<ConvertOptions>[] = [
    { bits: 1, embeddingsBits: 1, name: 'b1' },
    { bits: 2, symmetric: true, groupSize: 'row', name: 'b2' },
    { bits: 8, mode: 'minmax', groupSize: 32, embeddingsBits: 4, name: 'b8' },
  ];
  for (const v of variants) {
    const { r, manifest, report } = await convert({ outDir: out, ...v });
    const np = numpyCheck(r.manifest, tinyModel);
    for (const w of manifest.weights.filter((x) => x.quantization.type !== 'none')) {
      assert.ok(
        Math.abs(np.errors[w.name] - w.accuracy!.rel_error) <= 1e-4 * w.accuracy!.rel_error,
        `${v.name} ${w.name}`,
      );
    }
    const q = manifest.weights.find((w) => w.name.endsWith('q_proj.weight'))!;
    if (v.bits === 1) {
      assert.equal(q.quantization.method, 'sign');
      // 1 bit cannot meet 50 % on Gaussian weights; the report says so instead of passing.
      assert.equal(report.pass, false);
      assert.ok(report.weights.every((w) => w.rel_error > 0.5 && !w.pass));
    }
    if (v.bits === 2) {
      assert.deepEqual(
        [q.quantization.type, q.quantization.method, q.quantization.group_size],
        ['perrow_int', 'symmetric', 128],
      );
    }
    if (v.bits === 8) {
      assert.equal(manifest.weights[0].bit_width, 4);
      assert.equal(q.quantization.rounding, 'minmax');
      assert.ok(report.weights.filter((w) => w.bits === 8).every((w) => w.rel_error < 0.01));
    }
  }
});

test('row chunks give the same NPZ bytes and the same errors as whole tensors', async (t) => {
  const out = tempDir(t);
  const whole = await convert({ outDir: join(out, 'a') });
  const chunked = await convert({ outDir: join(out, 'b'), chunkBytes: 4096 });
  assert.ok(readFileSync(whole.r.npz).equals(readFileSync(chunked.r.npz)));
  for (let i = 0; i < whole.report.weights.length; i++) {
    const a = whole.report.weights[i];
    const b = chunked.report.weights[i];
    assert.ok(Math.abs(a.rel_error - b.rel_error) < 1e-6 * a.rel_error, a.name);
    assert.ok(Math.abs(a.cosine - b.cosine) < 1e-4, a.name);
    assert.equal(a.max_abs_error, b.max_abs_error);
  }
});

test('an existing result is kept without force and replaced with it', async (t) => {
  const out = tempDir(t);
  await convert({ outDir: out });
  writeFileSync(join(out, 'tiny_manifest_q4.json'), 'old');
  const before = snapshot(out);
  await rejectsWith(convert({ outDir: out }), 'exists', /tiny_quantized_q4\.npz already exists; pass --force/);
  assert.deepEqual(snapshot(out), before);
  await convert({ outDir: out, force: true });
  assert.notEqual(readFileSync(join(out, 'tiny_manifest_q4.json'), 'utf8'), 'old');
});

test('cancellation at any tensor or before the renames leaves no output and the earlier result intact', async (t) => {
  const out = tempDir(t);
  await convert({ outDir: out });
  const before = snapshot(out);
  for (const at of [0, 3, 20]) {
    const ac = new AbortController();
    const p = convertModel(
      { source: tinyModel, bits: 2, name: 'tiny', outDir: out },
      (e) => {
        if (e.type === 'progress' && e.tensor === at) ac.abort();
      },
      ac.signal,
    );
    await rejectsWith(p, 'cancelled');
    assert.deepEqual(snapshot(out), before, `cancel at ${at}`);
  }
  const ac = new AbortController();
  const p = convertModel(
    { source: tinyModel, bits: 4, name: 'tiny', outDir: out, force: true },
    (e) => {
      if (e.type === 'stage' && e.stage === 'validate') ac.abort();
    },
    ac.signal,
  );
  await rejectsWith(p, 'cancelled');
  assert.deepEqual(snapshot(out), before);
});

test('unknown architecture, pickle-only, not a model folder: clear errors, nothing written', async (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'out');
  const gpt = copyTiny(join(dir, 'gpt'));
  writeFileSync(join(gpt, 'config.json'), JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }));
  await rejectsWith(
    convertModel({ source: gpt, bits: 4, outDir: out }, () => {}),
    'unsupported',
    /No quantized data extracted.*gpt2.*GPT2LMHeadModel.*supported: llama/,
  );
  const pickle = join(dir, 'pickle');
  mkdirSync(pickle);
  writeFileSync(join(pickle, 'config.json'), readFileSync(join(tinyModel, 'config.json')));
  writeFileSync(join(pickle, 'pytorch_model.bin'), 'not loaded');
  await rejectsWith(
    convertModel({ source: pickle, bits: 4, outDir: out }, () => {}),
    'unsupported',
    /pytorch_model\.bin.*never loaded.*safetensors/,
  );
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  await rejectsWith(
    convertModel({ source: empty, bits: 4, outDir: out }, () => {}),
    'invalid-input',
    /config\.json missing/,
  );
  await rejectsWith(
    convertModel({ source: './no/such/dir', bits: 4, outDir: out }, () => {}),
    'not-found',
    /no such folder/,
  );
  await rejectsWith(
    convertModel({ source: 'what', bits: 4, outDir: out }, () => {}),
    'not-found',
    /not a known alias/,
  );
  // What the user typed is shown with its control characters escaped: the message stays one line (a fuzz finding).
  await rejectsWith(
    convertModel({ source: '\u000e\r!', bits: 4, outDir: out }, () => {}),
    'not-found',
    /^'\\u000e\\u000d!' is not a known alias[^\r\n]*$/,
  );
  const broken = copyTiny(join(dir, 'broken'));
  const shard = join(broken, 'model-00002-of-00002.safetensors');
  writeFileSync(shard, readFileSync(shard).subarray(0, 1000));
  await assert.rejects(
    convertModel({ source: broken, bits: 4, outDir: out }, () => {}),
    /model-00002-of-00002/,
  );
  assert.ok(!existsSync(out) || readdirSync(out).length === 0);
});

test('an output folder under a regular file: one-line io error', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'file'), 'x');
  await rejectsWith(
    convertModel({ source: tinyModel, bits: 4, outDir: join(dir, 'file', 'out') }, () => {}),
    'io',
    /cannot create the output folder .*file\/out: a part of the path is a file/,
  );
  rmSync(join(dir, 'file'));
});

/** A one-tensor F32 llama checkpoint (plus a norm) whose weight has the given values. */
function writeModel(dir: string, values: Float32Array, rows: number, cols: number): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), readFileSync(join(tinyModel, 'config.json')));
  const norm = new Float32Array(cols).fill(1);
  const header: Record<string, unknown> = {
    'model.layers.0.mlp.up_proj.weight': { dtype: 'F32', shape: [rows, cols], data_offsets: [0, values.byteLength] },
    'model.norm.weight': {
      dtype: 'F32',
      shape: [cols],
      data_offsets: [values.byteLength, values.byteLength + cols * 4],
    },
  };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(
    join(dir, 'model.safetensors'),
    Buffer.concat([len, Buffer.from(json), Buffer.from(values.buffer), Buffer.from(norm.buffer)]),
  );
  return dir;
}

test('scales beyond float16: the tensor switches to float32 scales by itself; --scale-dtype f32 for all', async (t) => {
  const dir = tempDir(t);
  const rows = 8;
  const cols = 96;
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 0.37) * (Math.floor(i / cols) === 2 ? 3e9 : 1);
  const model = writeModel(join(dir, 'm'), v, rows, cols);
  for (const scaleDtype of [undefined, 'f32'] as const) {
    const r = await convertModel(
      { source: model, bits: 8, outDir: join(dir, 'out'), force: true, scaleDtype },
      () => {},
    );
    const manifest = JSON.parse(readFileSync(r.manifest, 'utf8')) as Manifest;
    const w = manifest.weights[0];
    assert.equal(w.source.dtype, 'F32');
    assert.equal(w.quantization.scale_dtype, 'float32');
    assert.equal(manifest.weights[1].quantization.type, 'none');
    const np = numpyCheck(r.manifest, model);
    assert.ok(Math.abs(np.errors[w.name] - w.accuracy!.rel_error) <= 1e-4 * w.accuracy!.rel_error + 1e-9);
    assert.ok(w.accuracy!.rel_error < 0.01);
  }
  // NaN in a weight: an error that names the tensor and where, nothing written.
  v[5] = Number.NaN;
  const bad = writeModel(join(dir, 'bad'), v, rows, cols);
  await rejectsWith(
    convertModel({ source: bad, bits: 4, outDir: join(dir, 'out2') }, () => {}),
    'invalid-input',
    /bad\/model\.safetensors: model\.layers\.0\.mlp\.up_proj\.weight.*NaN.*index 5/,
  );
  assert.ok(!existsSync(join(dir, 'out2')) || readdirSync(join(dir, 'out2')).length === 0);
});

test('rows that do not fill whole bytes or whole groups (97 columns) at 1, 2 and 4 bits: numpy agrees', async (t) => {
  const dir = tempDir(t);
  const rows = 5;
  const cols = 97;
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 1.7) * 0.05 + Math.cos(i * 0.13) * 0.01;
  const model = writeModel(join(dir, 'm'), v, rows, cols);
  for (const bits of [1, 2, 4] as const) {
    const r = await convertModel({ source: model, bits, groupSize: 32, outDir: join(dir, 'out') }, () => {});
    const manifest = JSON.parse(readFileSync(r.manifest, 'utf8')) as Manifest;
    const w = manifest.weights[0];
    assert.equal(w.quantization.group_size, 32);
    const npz = await openNpzFile(r.npz);
    try {
      assert.deepEqual((await npz.readHeader(w.q)).shape, [rows, Math.ceil((cols * bits) / 8)]);
      assert.deepEqual((await npz.readHeader(w.q_scales!)).shape, [rows, 4]);
    } finally {
      await npz.close();
    }
    const np = numpyCheck(r.manifest, model);
    assert.ok(Math.abs(np.errors[w.name] - w.accuracy!.rel_error) <= 1e-4 * w.accuracy!.rel_error, `${bits} bits`);
  }
});
