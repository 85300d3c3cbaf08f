// `apl-quant run --prompt-tokens`: what parseRunArgs accepts and how it refuses (found by the run-inputs fuzz target:
// a value holding a line break was echoed raw, so the refusal spanned two lines).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CliError } from '../../../server/src/cli/common';
import { parseRunArgs } from '../../../server/src/cli/run';

test('--prompt-tokens: comma- or space-separated ids are accepted', () => {
  const a = parseRunArgs(['m.json', '--prompt-tokens', '1, 2 3']);
  assert.ok(a !== 'help');
  assert.deepEqual(a.promptTokens, [1, 2, 3]);
});

test('--prompt-tokens: a bad value is refused on one line, the value quoted', () => {
  for (const bad of ['\n', '1\n2x', '-1', '1.5', '']) {
    assert.throws(
      () => parseRunArgs(['m.json', '--prompt-tokens', bad]),
      (e: unknown) =>
        e instanceof CliError &&
        e.exitCode === 2 &&
        !/[\r\n]/.test(e.message) &&
        e.message.includes(`(got ${JSON.stringify(bad)})`),
      JSON.stringify(bad),
    );
  }
});
