// One conversion at a time into the same outputs (StagedOutputs.lock, formats/pid-lock.ts): a second one while the
// first runs is refused on one line and touches nothing; a lock left by a killed run is taken over; the lock is gone
// after every run, finished or failed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConvertError } from '../../../server/src/convert/errors';
import { convertModel } from '../../../server/src/convert/pipeline';
import { copyTiny, snapshot, tempDir, tinyModel } from './helpers';

const LOCK = '.tiny_manifest_q4.json.apl-lock';
const run = (outDir: string, source = tinyModel) =>
  convertModel({ source, bits: 4, name: 'tiny', outDir, force: true }, () => {});

test('a live holder: refused on one line naming it, and the earlier result untouched', async (t) => {
  const out = tempDir(t);
  await run(out);
  assert.ok(!existsSync(join(out, LOCK)), 'released after a finished run');
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.after(() => holder.kill());
  writeFileSync(join(out, LOCK), `${holder.pid}\n`);
  const before = snapshot(out); // the holder's lock among them: it stays
  await assert.rejects(run(out), (e: unknown) => {
    assert.ok(e instanceof ConvertError, String(e));
    assert.equal(e.code, 'io');
    assert.equal(
      e.message,
      `${join(out, 'tiny_manifest_q4.json')}: another conversion or an evaluation storing its figures (process ` +
        `${holder.pid}) holds these outputs; wait for it to finish, or choose another --out`,
    );
    return true;
  });
  assert.deepEqual(snapshot(out), before);
});

test('a lock left by a killed run (its process gone) is taken over, then released', async (t) => {
  const out = tempDir(t);
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(join(out, LOCK), `${gone.stdout}\n`);
  await run(out);
  assert.ok(existsSync(join(out, 'tiny_manifest_q4.json')));
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('.')),
    [],
    'neither the lock nor a stale copy is left',
  );
});

test('a run that fails after taking the lock releases it', async (t) => {
  const out = tempDir(t);
  const broken = copyTiny(join(tempDir(t), 'm'));
  writeFileSync(join(broken, 'model-00002-of-00002.safetensors'), Buffer.alloc(16)); // a header past the end
  await assert.rejects(run(out, broken), /model-00002-of-00002\.safetensors: header is not valid JSON/);
  assert.ok(!existsSync(join(out, LOCK)));
  await run(out); // and the next run goes ahead
});
