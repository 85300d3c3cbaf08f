import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(__dirname, '../../..');
const fixture = join(root, 'test/fixtures/tiny-llama');

test('make-tiny-model.mjs reproduces the committed fixture byte for byte', () => {
  const out = mkdtempSync(join(tmpdir(), 'tiny-'));
  try {
    const r = spawnSync(process.execPath, [join(root, 'scripts/make-tiny-model.mjs'), '--out', out], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const made = readdirSync(out).sort();
    assert.deepEqual(made, readdirSync(fixture).sort());
    for (const f of made) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(fixture, f))), f);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the fixture is small, sharded with an index, and every indexed tensor is in its shard', () => {
  let total = 0;
  for (const f of readdirSync(fixture)) total += statSync(join(fixture, f)).size;
  assert.ok(total < 2_000_000, `fixture is ${total} bytes`);
  const index = JSON.parse(readFileSync(join(fixture, 'model.safetensors.index.json'), 'utf8'));
  const shards = new Set(Object.values(index.weight_map as Record<string, string>));
  assert.equal(shards.size, 2);
  let bytes = 0;
  for (const shard of shards) {
    const buf = readFileSync(join(fixture, shard));
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    for (const [name, t] of Object.entries(header as Record<string, { dtype: string; data_offsets: number[] }>)) {
      if (name === '__metadata__') continue;
      assert.equal(index.weight_map[name], shard, name);
      assert.equal(t.dtype, 'BF16');
      bytes += t.data_offsets[1] - t.data_offsets[0];
    }
  }
  assert.equal(bytes, index.metadata.total_size);
  assert.equal(Object.keys(index.weight_map).length, 2 + 2 * 9 + 1);
});
