// readRegularFileSync / readRegularFile: a whole file through one descriptor opened without blocking, so a FIFO or
// device is refused at once (from the descriptor itself: nothing can be swapped in after a check), with one
// FormatError naming the file for each problem. Every JSON and text reader of the commands goes through them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FormatError } from '../../../server/src/formats/errors';
import { readRegularFile, readRegularFileSync } from '../../../server/src/formats/source';
import { tempDir } from '../../helpers/tmp';

const readers = [
  ['sync', async (p: string, max?: number) => readRegularFileSync(p, max)],
  ['async', (p: string, max?: number) => readRegularFile(p, max)],
] as const;

test('a regular file is read whole; each problem is one FormatError naming the file', async () => {
  const dir = tempDir('apl-regular-');
  const file = join(dir, 'a.json');
  writeFileSync(file, '{"a": 1}');
  const fifo = join(dir, 'fifo.json');
  if (process.platform !== 'win32') execFileSync('mkfifo', [fifo]);
  for (const [how, read] of readers) {
    assert.equal((await read(file)).toString(), '{"a": 1}', how);
    assert.equal((await read(file, 8)).length, 8, `${how}: at the limit`);
    const refused = async (p: string, problem: string, max?: number) =>
      assert.rejects(read(p, max), (e: unknown) => {
        assert.ok(e instanceof FormatError, `${how}: ${String(e)}`);
        assert.equal(e.file, p);
        assert.equal(e.problem, problem, how);
        assert.equal(e.message, `${p}: ${problem}`);
        return true;
      });
    await refused(join(dir, 'nope.json'), 'no such file');
    await refused(dir, 'is a directory');
    await refused(file, 'is 8 bytes, more than the 7-byte limit', 7);
    if (process.platform !== 'win32') await refused(fifo, 'not a regular file (a pipe, socket or device)');
  }
});
