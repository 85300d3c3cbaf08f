// The format readers' refusals as the mutants tests assert them: a FormatError naming the file.
import assert from 'node:assert/strict';
import { FormatError } from '../../server/src/formats/errors';

/**
 * `refused(p, problem)` for a reader opened on `file`: p rejects with a FormatError whose message is exactly
 * `<file>: <problem>` (problem a string) or matches problem (a RegExp).
 */
export function refusedFor(file: string): (p: Promise<unknown>, problem: string | RegExp) => Promise<void> {
  return async (p, problem) => {
    await assert.rejects(p, (e: Error) => {
      assert.ok(e instanceof FormatError, `a FormatError, not ${e}`);
      if (typeof problem === 'string') assert.equal(e.message, `${file}: ${problem}`);
      else assert.match(e.message, problem);
      return true;
    });
  };
}
