// Issue 15 item 9: settings win over the last values used; --mode, --embeddings-bits and --tolerance reach the CLI;
// the bit picker's size estimate for a local folder is close to what the converter writes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type ConvertDefaults,
  cliArgs,
  estimateFromTensors,
  mergeDefaults,
  settingsFormat,
  type TensorInfoLike,
  tolerancesOf,
} from '../../../client/src/convert/options';
import { convertModel } from '../../../server/src/convert/pipeline';
import { tempDir, tinyModel } from '../convert/helpers';

test('a setting the user wrote wins over the last value used; unset ones take the last value', () => {
  const settings: ConvertDefaults = { bits: 1, groupSize: 64, symmetric: false, backend: 'auto', mode: 'optimized' };
  const last: Partial<ConvertDefaults> = { bits: 8, groupSize: 32, backend: 'gpu', lastModel: 'x', mode: 'minmax' };
  const d = mergeDefaults(settings, new Set(['bits']), last);
  assert.equal(d.bits, 1);
  assert.equal(d.groupSize, 32);
  assert.equal(d.mode, 'minmax');
  assert.equal(d.backend, 'auto', 'the backend is always the setting');
  assert.equal(d.lastModel, 'x');
});

test('the picks start from apl.convert.format (kquant, the CLI default) unless a written group size or symmetric asks for groupwise', () => {
  assert.equal(settingsFormat('kquant', new Set()), 'kquant');
  assert.equal(settingsFormat('kquant', new Set(['groupSize'])), 'groupwise');
  assert.equal(settingsFormat('kquant', new Set(['symmetric'])), 'groupwise');
  assert.equal(settingsFormat('kquant', new Set(['groupSize', 'format'])), 'kquant', 'a written format wins');
  assert.equal(settingsFormat('groupwise', new Set(['format'])), 'groupwise');
  const kq = cliArgs({
    model: 'm',
    bits: 4,
    groupSize: 64,
    symmetric: false,
    format: 'kquant',
    backend: 'auto',
    outDir: 'o',
  });
  assert.deepEqual(kq.slice(kq.indexOf('--format'), kq.indexOf('--format') + 2), ['--format', 'kquant']);
  assert.ok(!kq.includes('--group-size'), 'kquant sends no group size (it would select groupwise)');
});

test('--mode, --embeddings-bits and --tolerance reach the CLI; tolerancesOf reads the spec', () => {
  const a = cliArgs({
    model: 'm',
    bits: 2,
    groupSize: 64,
    symmetric: false,
    backend: 'auto',
    outDir: '/o',
    mode: 'minmax',
    embeddingsBits: 4,
    tolerance: '2=0.35',
  });
  assert.deepEqual(a.slice(a.indexOf('--mode'), a.indexOf('--mode') + 2), ['--mode', 'minmax']);
  assert.ok(a.join(' ').includes('--embeddings-bits 4'));
  assert.ok(a.join(' ').includes('--tolerance 2=0.35'));
  assert.equal(tolerancesOf('2=0.35')[2], 0.35);
  assert.equal(tolerancesOf('4=5%')[4], 0.05);
  assert.equal(tolerancesOf('nonsense')[2], 0.2);
});

function headers(dir: string): TensorInfoLike[] {
  const out: TensorInfoLike[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
    const b = readFileSync(join(dir, f));
    const n = Number(b.readBigUInt64LE(0));
    const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
    for (const [name, t] of Object.entries(h)) if (name !== '__metadata__') out.push({ name, ...t });
  }
  return out;
}

test('the size estimate of a local folder is within 10 % of the NPZ written', async (t) => {
  const out = tempDir(t);
  for (const bits of [4, 2] as const) {
    const r = await convertModel({ source: tinyModel, bits, name: `tiny${bits}`, outDir: out }, () => {});
    const est = estimateFromTensors(headers(tinyModel), { bits, groupSize: 64, symmetric: false });
    const actual = r.outputBytes;
    assert.ok(Math.abs(est - actual) / actual < 0.1, `${bits}-bit: estimate ${est} vs ${actual}`);
  }
});
