// The inspector on safetensors checkpoints: one file and a sharded folder through its index, every common dtype
// decoded, pages read lazily (only the bytes of the rows shown), hostile headers refused with one line naming the file.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeSafetensors } from '../../../server/src/formats/safetensors';
import { InspectorSession } from '../../../server/src/inspect/session';
import { tempDir } from '../../helpers/tmp';

const fixtures = join(__dirname, '..', '..', 'fixtures', 'inspector');
const embed = Array.from({ length: 24 }, (_, k) => Math.fround(k / 7 - 1.5));
/** float32 → bfloat16 → float32, round to nearest even. */
const bf16 = (v: number) => {
  const u = new Uint32Array(Float32Array.of(v).buffer)[0];
  return new Float32Array(Uint32Array.of(((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16).buffer)[0];
};

test('a .safetensors file lists its tensors with numpy dtype names and pages every dtype', async () => {
  const s = await InspectorSession.open(join(fixtures, 'tiny.safetensors'));
  try {
    assert.equal(s.kind, 'safetensors');
    const members = await s.members();
    assert.deepEqual(
      members.map((m) => [m.name, m.dtype, m.shape, m.bytes]),
      [
        ['embed.weight', 'bfloat16', [6, 4], 48],
        ['embed.weight_f32', 'float32', [6, 4], 96],
        ['norm.weight', 'float16', [4], 8],
        ['positions', 'int32', [6], 24],
        ['mask', 'uint8', [2, 3], 6],
        ['odd', 'float32', [3, 4], 48],
      ],
    );
    assert.deepEqual((await s.page('embed.weight_f32', 'raw', 0, 6, 0, 4)).values, embed);
    assert.deepEqual((await s.page('embed.weight', 'raw', 0, 6, 0, 4)).values, embed.map(bf16));
    assert.deepEqual((await s.page('norm.weight', 'raw', 0, 4, 0, 1)).values, [1, 0.5, 0.25, 2]);
    assert.deepEqual((await s.page('positions', 'raw', 0, 6, 0, 1)).values, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual((await s.page('mask', 'raw', 0, 2, 0, 3)).values, [1, 0, 1, 0, 1, 1]);
    const t = await s.tensor('embed.weight');
    assert.equal(t.dtype, 'bfloat16');
    assert.equal(t.stats.count, 24);
    assert.equal(t.stats.min, bf16(-1.5));
    assert.equal(t.stats.max, bf16(23 / 7 - 1.5));
    assert.ok(t.preview);
  } finally {
    await s.close();
  }
});

test('a sharded checkpoint opens through its index: tensors in index order, each with its shard', async () => {
  const s = await InspectorSession.open(join(fixtures, 'sharded', 'model.safetensors.index.json'));
  try {
    assert.equal(s.kind, 'safetensors');
    const members = await s.members();
    assert.deepEqual(
      members.map((m) => [m.name, m.dtype, m.shard]),
      [
        ['layers.0.weight', 'float32', 'model-00001-of-00002.safetensors'],
        ['embed.weight', 'bfloat16', 'model-00001-of-00002.safetensors'],
        ['layers.1.weight', 'float16', 'model-00002-of-00002.safetensors'],
        ['norm.weight', 'float32', 'model-00002-of-00002.safetensors'],
      ],
    );
    assert.ok(s.fileBytes > 295 + 328 + 224 - 1, 'the index and both shards count as on disk');
    assert.deepEqual((await s.page('layers.1.weight', 'raw', 3, 1, 5, 3)).values, [3.25, 3.5, 3.75]);
    assert.deepEqual((await s.page('norm.weight', 'raw', 0, 4, 0, 1)).values, [1, 2, 3, 4]);
  } finally {
    await s.close();
  }
});

test('pages are read lazily: only the bytes of the rows and columns shown', async () => {
  const s = await InspectorSession.open(join(fixtures, 'tiny.safetensors'));
  try {
    s.reader.readLog = [];
    await s.members();
    assert.equal(s.reader.bytesRead, 0, 'listing reads no tensor data');
    await s.page('embed.weight_f32', 'raw', 2, 2, 1, 2);
    // rows 2..3, columns 1..2: elements 9, 10, 13, 14 — one coalesced read of elements 9 … 14
    assert.deepEqual(s.reader.readLog, [['embed.weight_f32', 9 * 4, 6 * 4]]);
  } finally {
    await s.close();
  }
});

test('hostile safetensors headers and indexes are refused with one line naming the file', async () => {
  const dir = tempDir('apl-insp-st-');
  const good = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: new Uint8Array(8) }]);
  const cases: [string, Buffer | string, RegExp][] = [];
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(1n << 60n, 0);
  cases.push(['huge-header.safetensors', huge, /header length \d+ exceeds/]);
  const bad = Buffer.from(good);
  bad.write('!', 8);
  cases.push(['bad-json.safetensors', bad, /header is not valid JSON/]);
  const past = Buffer.from(good.toString('latin1').replace('[0,8]', '[0,9]'), 'latin1');
  cases.push(['past-end.safetensors', past, /run past the data|span/]);
  cases.push(['short.safetensors', Buffer.alloc(3), /too short/]);
  for (const [name, data, why] of cases) {
    const p = join(dir, name);
    writeFileSync(p, data);
    await assert.rejects(InspectorSession.open(p), (e: Error) => {
      assert.ok(e.message.startsWith(p), e.message);
      assert.match(e.message, why);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  }
  const sharded = join(dir, 'ckpt');
  mkdirSync(sharded);
  writeFileSync(join(sharded, 'a.safetensors'), good);
  const idx = join(sharded, 'model.safetensors.index.json');
  for (const [map, why, file] of [
    [{ w: '../a.safetensors' }, /invalid file/, idx],
    [
      { w: 'a.safetensors', v: 'a.safetensors' },
      /tensor 'v' listed in model.safetensors.index.json is missing/,
      join(sharded, 'a.safetensors'),
    ],
    [{ w: 'missing.safetensors' }, /no such file|ENOENT/, join(sharded, 'missing.safetensors')],
  ] as const) {
    writeFileSync(idx, JSON.stringify({ weight_map: map }));
    await assert.rejects(InspectorSession.open(idx), (e: Error) => {
      assert.ok(e.message.startsWith(file), e.message);
      assert.match(e.message, why);
      return true;
    });
  }
  writeFileSync(idx, '{"weight_map": ');
  await assert.rejects(InspectorSession.open(idx), /model\.safetensors\.index\.json: not valid JSON/);
});
