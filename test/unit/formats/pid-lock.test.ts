// formats/pid-lock.ts: lock files holding their owner's pid (the Hub's blob lock, convert's output lock).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConvertError } from '../../../server/src/convert/errors';
import { outputPaths } from '../../../server/src/convert/names';
import { StagedOutputs } from '../../../server/src/convert/outputs';
import { processAlive, tryPidLock } from '../../../server/src/formats/pid-lock';

const root = mkdtempSync(join(tmpdir(), 'apl-pidlock-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('taken, held (the holder named), released; a dead holder taken over', () => {
  const p = join(root, 'a.lock');
  const got = tryPidLock(p);
  assert.ok('release' in got);
  assert.equal(readFileSync(p, 'utf8'), `${process.pid}\n`);
  assert.deepEqual(tryPidLock(p), { owner: process.pid });
  got.release();
  assert.ok(!existsSync(p));
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout);
  assert.ok(!processAlive(dead));
  for (const junk of [`${dead}\n`, '', 'not a pid']) {
    writeFileSync(p, junk);
    const again = tryPidLock(p);
    assert.ok('release' in again, JSON.stringify(junk));
    assert.equal(readFileSync(p, 'utf8'), `${process.pid}\n`);
    again.release();
  }
  assert.deepEqual(readdirSync(root), [], 'no stale copies left');
});

test('a lock that cannot be written throws, leaving nothing; convert says so on one line', () => {
  assert.throws(() => tryPidLock(join(root, 'missing', 'x.lock')), { code: 'ENOENT' });
  assert.ok(!existsSync(join(root, 'missing')));
  const dir = join(root, 'out');
  const staged = StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  rmSync(dir, { recursive: true });
  assert.throws(
    () => staged.lock(),
    (e: unknown) => e instanceof ConvertError && e.code === 'io' && e.message.startsWith(`cannot write in ${dir}: `),
  );
});
