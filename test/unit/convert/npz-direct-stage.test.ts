// The quantize stage's choice of NPZ write path: O_DIRECT (the writer's default, where the addon has it) unless the
// run reads the NPZ back at once (--eval: npzDirect false), which writes through the page cache. The bytes are the
// same either way; the staging buffers are sized by the checkpoint (stagingBytesFor) and asked for.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { engineInfo } from '../../../native/index';
import { settingsFrom } from '../../../server/src/convert/options';
import { quantizeStage, stagingBytesFor } from '../../../server/src/convert/quantize-stage';
import { NpzWriter } from '../../../server/src/formats/npz';
import { openCheckpoint } from '../../../server/src/formats/safetensors';
import { tempDir, tinyModel } from './helpers';

test('quantize stage: O_DIRECT by default, page cache when told (--eval), the same bytes', async (t) => {
  const create = NpzWriter.create;
  const modes: string[] = [];
  const staging: unknown[] = [];
  NpzWriter.create = async (path, opts) => {
    staging.push(opts?.staging);
    const w = await create.call(NpzWriter, path, opts);
    const close = w.close.bind(w);
    w.close = async () => {
      await close();
      modes.push(w.writeMode);
    };
    return w;
  };
  t.after(() => {
    NpzWriter.create = create;
  });
  const dir = tempDir(t);
  const ck = await openCheckpoint(tinyModel);
  t.after(() => void ck.close());
  const settings = settingsFrom({ source: tinyModel, bits: 4, outDir: dir });
  const bytes: Buffer[] = [];
  for (const npzDirect of [undefined, false]) {
    const npzTmp = join(dir, `.m.npz.staged-${bytes.length}`);
    await quantizeStage({
      ck,
      settings,
      npzTmp,
      dir: tinyModel,
      npzPath: join(dir, 'm.npz'),
      emit: () => {},
      npzDirect,
    });
    bytes.push(readFileSync(npzTmp));
  }
  const native = engineInfo().native;
  // 'buffered': a temp folder on a file system that refuses O_DIRECT (the DirectFile still wrote it).
  assert.ok(native ? ['o_direct', 'buffered'].includes(modes[0]) : modes[0] === 'node', modes[0]);
  assert.equal(modes[1], 'node');
  assert.ok(bytes[0].equals(bytes[1]), 'the same NPZ bytes');
  assert.deepEqual(staging, [{ bufferBytes: 2 << 20 }, undefined], 'a small checkpoint: 2 MiB staging buffers');
});

test('staging buffers: about 1/128 of the checkpoint, a power of two from 2 to 8 MiB', () => {
  const MiB = 1 << 20;
  assert.equal(stagingBytesFor(0), 2 * MiB);
  assert.equal(stagingBytesFor(210e6), 2 * MiB, "the bench's small checkpoint");
  assert.equal(stagingBytesFor(128 * 4 * MiB), 4 * MiB);
  assert.equal(stagingBytesFor(128 * 8 * MiB - 1), 4 * MiB);
  assert.equal(stagingBytesFor(2.2e9), 8 * MiB, 'TinyLlama-shaped');
  assert.equal(stagingBytesFor(140e9), 8 * MiB, '70B');
});
